import Audit
import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Policy
import Postgres
import Secrets
import TestSupport
import Testing

@testable import Gateway

/// The side doors: for every relation and every request role, what `/rest/v1` and the database
/// allow, against what the policy files declare (`rest:`, `rest_hidden:`, `managed_by:`). A new
/// migration or policy file that opens a door fails here.
@Suite("Exposure: /rest/v1 and the grants reach exactly what the policy files declare")
struct ExposureTests {
    static let methods: [(HTTPRequest.Method, PolicyCommand)] = [(.get, .select), (.post, .insert), (.patch, .update), (.delete, .delete)]

    /// The refusal `/rest/v1` gives a table its `rest:` does not open for the command.
    static func isExposureRefusal(_ response: (status: HTTPResponse.Status, body: String, headers: HTTPFields)) -> Bool {
        response.status == .forbidden && error(response.body)["details"]?.contains("through /rest/v1 (rest:") == true
    }

    /// A PostgREST error body's fields.
    static func error(_ body: String) -> [String: String] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?.compactMapValues { $0 as? String } ?? [:]
    }

    @Test("every relation's grants to the request roles and the secrets role match the policy files, and nothing else is reachable")
    func grantsMatchDeclarations() async throws {
        try await RESTFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let live = try await LiveSchema.read(from: f.auth.owner)
            // The query covers every schema: the audit log, keyring, tenants, auth.users and the
            // report views are in it and must grant the checked roles nothing.
            #expect(live.rights.contains { $0.schemaname == "keyring" })
            #expect(live.rights.contains { $0.schemaname == "auth" && $0.tablename == "users" })
            let rights = policies.rightsDrift(live: live.rights)
            #expect(rights.isEmpty, "\(rights)")
            let report = live.drift(of: policies)
            #expect(report.isClean, "\(report)")
        }
    }

    @Test("a grant the files do not declare is drift: policy check catches a migration that opens a door")
    func extraGrantIsDrift() async throws {
        try await RESTFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            try await f.auth.owner.query("GRANT UPDATE (status, result) ON public.data_deletion_requests TO authenticated")
            try await f.auth.owner.query("GRANT SELECT ON keyring.subject_keys TO anon")
            let report = try await LiveSchema.read(from: f.auth.owner).drift(of: policies)
            let deletion = try #require(report.tables.first { $0.table == "public.data_deletion_requests" })
            #expect(deletion.rights.map(\.role) == ["authenticated"])
            #expect(deletion.rights.first?.live.contains("UPDATE (result, status)") == true, "\(deletion.rights)")
            let keyring = try #require(report.tables.first { $0.table == "keyring.subject_keys" })
            #expect(keyring.rights.first?.role == "anon")
            #expect(report.description.contains("grants:"))
        }
    }

    @Test("for every governed table, role and method, /rest/v1 refuses exactly what rest: does not allow")
    func everyTableEveryMethod() async throws {
        try await RESTFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let serviceToken = try await Tokens.hs256(claims: Tokens.user(f.carol, role: "service_role"), secret: f.acme.secret!)
            let callers: [(String, HTTPFields)] = [
                ("anon", [:]),
                ("authenticated", try await f.headers(f.acme, f.alice)),
                ("service_role", [.authorization: "Bearer " + serviceToken]),
            ]
            let nobody = UUID().lowercasedString
            for table in policies.tables {
                for (method, command) in Self.methods {
                    for (role, headers) in callers {
                        // Filters no row can match: the allowed requests change nothing.
                        let uri = "/rest/v1/\(table.name)" + (method == .post ? "" : "?\(table.tenantColumn)=eq.\(nobody)")
                        let response = try await f.request(
                            method, uri, as: f.acme, nil, body: method == .post || method == .patch ? "{}" : nil, headers: headers)
                        if table.rest.allows(command) {
                            #expect(
                                !Self.isExposureRefusal(response), "\(role) \(method) \(table.name): \(response.status) \(response.body)")
                        } else {
                            #expect(
                                Self.isExposureRefusal(response),
                                "\(role) \(method) \(table.name) must be refused: \(response.status) \(response.body)")
                            #expect(response.body.contains("\"code\":\"42501\""), "\(response.body)")
                        }
                    }
                }
            }
        }
    }

    @Test("a data:write key cannot file, move or forge a privacy request through /rest/v1")
    func privacyRequestsCannotBeForged() async throws {
        try await RESTFixture.run { f in
            let alice = f.alice.lowercasedString
            let forged = #"{"user_id":"\#(alice)","status":"pending","result":{"tables":{"public.projects":999999}}}"#
            let deletion = try await f.request(.post, "/rest/v1/data_deletion_requests", as: f.acme, f.alice, body: forged)
            #expect(Self.isExposureRefusal(deletion), "\(deletion.status) \(deletion.body)")
            #expect(Self.error(deletion.body)["hint"] == "use /v1/privacy to change it")
            let export = try await f.request(.post, "/rest/v1/data_export_requests", as: f.acme, f.alice, body: #"{"user_id":"\#(alice)"}"#)
            #expect(Self.isExposureRefusal(export))
            let count = try await f.auth.owner.query(
                "SELECT (SELECT count(*) FROM public.data_deletion_requests) + (SELECT count(*) FROM public.data_export_requests) AS n")
            #expect(try count.rows[0].decode("n", as: Int.self) == 0)

            // A request filed properly (here: by the owner) cannot be moved along through REST either.
            let id = UUID()
            try await f.auth.owner.query(
                "INSERT INTO public.data_deletion_requests (id, tenant_id, user_id, status) VALUES ($1, $2, $3, 'awaiting_confirmation')",
                [id, f.acme.id, f.alice])
            let patch = try await f.request(
                .patch, "/rest/v1/data_deletion_requests?id=eq.\(id.lowercasedString)", as: f.acme, f.alice,
                body: #"{"status":"pending","confirmed_at":"2026-01-01T00:00:00Z"}"#)
            #expect(Self.isExposureRefusal(patch))
            let status = try await f.auth.owner.query("SELECT status, confirmed_at FROM public.data_deletion_requests WHERE id = $1", [id])
            #expect(try status.rows[0].decode("status", as: String.self) == "awaiting_confirmation")
            #expect(try status.rows[0].decodeIfPresent("confirmed_at", as: Date.self) == nil)

            // Consents change only through /v1/privacy/settings, which audits them.
            let consent = try await f.request(
                .post, "/rest/v1/user_privacy_settings", as: f.acme, f.alice,
                body: #"{"user_id":"\#(alice)","marketing_consent":true}"#)
            #expect(Self.isExposureRefusal(consent))
        }
    }

    @Test("a user reads the status of their own privacy requests, never plans, results, certificates or download links")
    func requestStatusWithoutInternals() async throws {
        try await RESTFixture.run { f in
            try await f.auth.owner.query(
                """
                INSERT INTO public.data_deletion_requests (tenant_id, user_id, status, plan, result, certificate, certificate_signature)
                VALUES ($1, $2, 'completed', '{"tables":{}}', '{"tables":{}}', '{"id":"x"}', decode(repeat('ab', 64), 'hex'))
                """, [f.acme.id, f.alice])
            let own = try await f.request(.get, "/rest/v1/data_deletion_requests", as: f.acme, f.alice)
            #expect(own.status == .ok, "\(own.body)")
            let row = try #require(try f.json(own.body).first)
            #expect(row["status"] as? String == "completed")
            for hidden in ["plan", "result", "certificate", "certificate_signature"] {
                #expect(row[hidden] == nil, "\(hidden) served: \(own.body)")
                let selected = try await f.request(.get, "/rest/v1/data_deletion_requests?select=\(hidden)", as: f.acme, f.alice)
                #expect(selected.status == .badRequest && selected.body.contains("42703"), "\(hidden): \(selected.body)")
                let filtered = try await f.request(.get, "/rest/v1/data_deletion_requests?\(hidden)=is.null", as: f.acme, f.alice)
                #expect(filtered.status == .badRequest, "\(hidden) filter: \(filtered.body)")
                let ordered = try await f.request(.get, "/rest/v1/data_deletion_requests?order=\(hidden)", as: f.acme, f.alice)
                #expect(ordered.status == .badRequest, "\(hidden) order: \(ordered.body)")
            }
            #expect(try f.json(try await f.request(.get, "/rest/v1/data_deletion_requests", as: f.acme, f.bob).body).isEmpty)
        }
    }

    @Test("sealed secret rows are unreachable through /rest/v1 and to every request role in the database")
    func sealedRowsUnreachable() async throws {
        try await RESTFixture.run { f in
            for table in ["user_secrets", "user_secret_versions"] {
                for method in [HTTPRequest.Method.get, .head, .post, .patch, .delete] {
                    let response = try await f.request(
                        method, "/rest/v1/\(table)?user_id=eq.\(f.alice.lowercasedString)", as: f.acme, f.alice,
                        body: method == .post || method == .patch ? #"{"encrypted_value":"\\x00"}"# : nil)
                    #expect(response.status == .forbidden, "\(method) \(table): \(response.status) \(response.body)")
                }
            }
            // The second line: the database itself refuses every request role, whatever the gateway does.
            for role in PolicySet.requestRoles {
                for statement in [
                    "SELECT count(*) FROM public.user_secrets", "SELECT count(*) FROM public.user_secret_versions",
                    "DELETE FROM public.user_secrets", "UPDATE public.user_secrets SET version = version",
                    "INSERT INTO public.data_deletion_requests (user_id) VALUES (gen_random_uuid())",
                    "UPDATE public.data_export_requests SET status = 'pending'",
                    "SELECT certificate FROM public.data_deletion_requests",
                    "UPDATE public.user_privacy_settings SET marketing_consent = true",
                ] {
                    do {
                        _ = try await f.auth.gateway.pipeline([
                            Statement.assumeRequestRole(
                                role, claims: #"{"role":"\#(role)","sub":"\#(f.alice.lowercasedString)"}"#, tenant: f.acme.id),
                            Statement(statement),
                        ])
                        Issue.record("\(role) ran: \(statement)")
                    } catch let error as PostgresError {
                        #expect(error.sqlState == "42501", "\(role): \(statement): \(error)")
                    }
                }
            }
        }
    }

    @Test("the secret store runs as the one role the files give the secrets tables to")
    func secretStoreRole() {
        #expect(SecretStore.databaseRole == PolicySet.secretsRole)
    }

    @Test(
        "the privacy worker role reaches one tenant's personal data and nothing else: no other tenant, no keys, no secrets of the gateway")
    func privacyWorkerIsBounded() async throws {
        try await RESTFixture.run { f in
            for (tenant, user) in [(f.acme, f.alice), (f.globex, f.bob)] {
                _ = try await f.request(.get, "/rest/v1/projects", as: tenant, user)  // registers the subject
                try await f.auth.owner.query(
                    "INSERT INTO public.projects (tenant_id, user_id, name, type) VALUES ($1, $2, 'p', 'website')", [tenant.id, user])
            }
            func asWorker(_ tenant: UUID?, _ sql: String) async throws -> QueryResult {
                try await f.auth.gateway.pipeline([
                    Statement(
                        "SELECT set_config('role', $1, true), set_config('request.tenant_id', $2, true)",
                        [PolicySet.privacyRole, tenant?.lowercasedString ?? ""]),
                    Statement(sql),
                ])[1]
            }
            // Within its tenant: everything the eraser needs.
            #expect(try await asWorker(f.acme.id, "SELECT user_id FROM public.projects").rows.count == 1)
            #expect(try await asWorker(f.acme.id, "SELECT count(*) AS n FROM auth.users").rows.count == 1)
            // Another tenant's rows are out of reach even for the worker.
            let deleted = try await asWorker(f.acme.id, "DELETE FROM public.projects WHERE tenant_id <> auth.tenant_id()")
            #expect(deleted.affectedRows == 0)
            #expect(try await asWorker(nil, "SELECT user_id FROM public.projects").rows.isEmpty)
            #expect(try await f.auth.owner.query("SELECT count(*) AS n FROM public.projects").rows[0].decode("n", as: Int.self) == 2)
            // Nothing of the gateway's own: keys, service keys, tenants' sealed JWT secrets, the audit log's writes, secrets' grants elsewhere.
            for statement in [
                "SELECT * FROM keyring.subject_keys", "SELECT * FROM keyring.tenant_keys", "SELECT * FROM keyring.root_keys",
                "SELECT key_hash FROM public.service_keys", "SELECT jwt_secret_sealed FROM public.tenants",
                "INSERT INTO public.audit_events (tenant_id) VALUES (gen_random_uuid())", "SELECT * FROM public.schema_migrations",
            ] {
                do {
                    _ = try await asWorker(f.acme.id, statement)
                    Issue.record("privacy_worker ran: \(statement)")
                } catch let error as PostgresError {
                    #expect(error.sqlState == "42501", "\(statement): \(error)")
                }
            }
            // A request's JWT cannot name the role: the authenticator maps only the three request roles.
            let forged = try await Tokens.hs256(claims: Tokens.user(f.alice, role: PolicySet.privacyRole), secret: f.acme.secret!)
            let response = try await f.request(.get, "/rest/v1/projects", as: f.acme, nil, headers: [.authorization: "Bearer " + forged])
            #expect(response.status == .unauthorized || response.status == .forbidden, "\(response.status) \(response.body)")
        }
    }

    @Test("an attempt on a table rest: does not open is audited as a denial, like a policy's")
    func refusalIsAudited() async throws {
        try await RESTFixture.run { f in
            let response = try await f.request(.get, "/rest/v1/user_secrets", as: f.acme, f.alice)
            #expect(Self.isExposureRefusal(response))
            let entries = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "policy.denied")
            let entry = try #require(entries.first { $0.target == "public.user_secrets" })
            #expect(entry.outcome == "denied")
            #expect(entry.actor == "user:" + f.alice.lowercasedString)
            // Without a user's JWT the actor is the key, spelled as /v1 spells it: one key, one
            // actor in every report (REST once wrote the role name, "anon").
            let anonymous = try await f.request(.get, "/rest/v1/user_secrets", as: f.acme, nil)
            #expect(Self.isExposureRefusal(anonymous))
            let byKey = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "policy.denied")
            #expect(byKey.contains { $0.target == "public.user_secrets" && $0.actor == "service_key:" + f.acme.keyID.lowercasedString })
            #expect(!byKey.contains { $0.actor == "anon" })
        }
    }

    @Test("a NUL in a filter or a body value is refused, never cut short at the C string's end")
    func nulIsRefused() async throws {
        try await RESTFixture.run { f in
            let alice = f.alice.lowercasedString
            _ = try await f.request(.get, "/rest/v1/projects", as: f.acme, f.alice)  // registers alice
            try await f.auth.owner.query(
                "INSERT INTO public.projects (tenant_id, user_id, name, type) VALUES ($1, $2, 'abc', 'website')", [f.acme.id, f.alice])
            let filter = try await f.request(.get, "/rest/v1/projects?name=eq.abc%00x", as: f.acme, f.alice)
            #expect(filter.status == .badRequest && Self.error(filter.body)["code"] == "22021", "\(filter.body)")
            let body = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body: #"{"name": "abc\u0000def", "type": "website", "user_id": "\#(alice)"}"#)
            #expect(body.status == .badRequest, "\(body.body)")
            #expect(try await f.auth.owner.query("SELECT count(*) AS n FROM public.projects").rows[0].decode("n", as: Int.self) == 1)
        }
    }
}
