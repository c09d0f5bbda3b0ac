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

/// Issue 12's security review: the attacks that got through the merged work, each through the
/// real router or the real start-up check, against a real database.
@Suite("Review attacks")
struct ReviewAttackTests {
    // MARK: - Bad input is the caller's error (item 11)

    @Test("a secret version past 32 bits is answered 400 naming the range, never 503 'the store is unavailable'")
    func secretVersionPastThirtyTwoBitsIsTheCallersError() async throws {
        try await AuthFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let auditKeys = try AuditKeys(rootKey: f.keyring.serviceMaster)
            let audit = AuditAppender(pool: f.gateway, keys: auditKeys)
            let services = GatewayServices(
                pool: f.gateway, policies: policies, authenticator: f.authenticator,
                readiness: try Readiness(pool: f.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: audit, secrets: SecretStore(pool: f.gateway, keyring: f.keyring, audit: audit, auditKeys: auditKeys),
                auditKeys: auditKeys)
            let tenant = try await f.tenant("review-versions", scopes: [.secretsRead, .secretsWrite])
            let jwt = try await Tokens.hs256(claims: Tokens.user(UUID()), secret: tenant.secret!)
            let headers: HTTPFields = [.apikey: tenant.apikey, .authorization: "Bearer \(jwt)", .contentType: "application/json"]

            try await Application(router: GatewayApplication.router(services: services)).test(.router) { client in
                let put = try await client.execute(
                    uri: "/v1/secrets/openai", method: .put, headers: headers, body: ByteBuffer(string: #"{"value": "v1"}"#)
                ) { $0.status }
                #expect(put == .created)
                for uri in [
                    "/v1/secrets/openai?version=2147483648", "/v1/secrets/openai?version=9223372036854775807",
                    "/v1/secrets/openai?version=0",
                ] {
                    let (status, body) = try await client.execute(uri: uri, method: .get, headers: headers) {
                        ($0.status, String(buffer: $0.body))
                    }
                    #expect(status == .badRequest, "GET \(uri): \(status) \(body)")
                    #expect(body.contains("2147483647"), "\(body)")
                }
                let (destroy, body) = try await client.execute(
                    uri: "/v1/secrets/openai?destroy=true&version=2147483648", method: .delete, headers: headers
                ) { ($0.status, String(buffer: $0.body)) }
                #expect(destroy == .badRequest, "\(destroy) \(body)")
                // In range and absent is still a plain 404; the secret itself is untouched.
                let missing = try await client.execute(uri: "/v1/secrets/openai?version=2147483647", method: .get, headers: headers) {
                    $0.status
                }
                #expect(missing == .notFound)
                let read = try await client.execute(uri: "/v1/secrets/openai", method: .get, headers: headers) { String(buffer: $0.body) }
                #expect(read.contains(#""value":"v1""#))
            }
        }
    }

    @Test("a report period outside years 1-9999 is answered 400, never 503 'the report could not be made'")
    func reportPeriodOutOfRangeIsTheCallersError() async throws {
        try await RESTFixture.run { f in
            let auditor = try await f.auth.tenant("review-auditor", scopes: [.auditRead])
            for query in ["until=0000-01-01", "until=0000-06-01T00:00:00Z", "since=0000-01-01&until=2026-01-01"] {
                let response = try await f.request(.get, "/v1/audit/report?\(query)", as: auditor, nil)
                #expect(response.status == .badRequest, "\(query): \(response.status) \(response.body)")
                #expect(response.body.contains("must be a date"), "\(query): \(response.body)")
            }
        }
    }

    // MARK: - Least privilege (item 7)

    /// Runs `body` with a fresh login role (trust authentication, as the test cluster has), dropped afterwards.
    private static func withLogin(
        _ admin: ConnectionPool, _ owner: PostgresConfiguration, setUp: (String) -> [String], tearDown: (String) -> [String],
        _ body: (ConnectionPool) async throws -> Void
    ) async throws {
        let name = "review_\(UInt32.random(in: 0...UInt32.max))"
        try await admin.query("CREATE ROLE \(name) LOGIN NOSUPERUSER NOBYPASSRLS")
        do {
            for statement in setUp(name) { try await admin.query(statement) }
            let pool = ConnectionPool(configuration: owner.with(user: name), options: .init(maxConnections: 1))
            do {
                try await body(pool)
                pool.close()
            } catch {
                pool.close()
                throw error
            }
        } catch {
            for statement in tearDown(name) { try? await admin.query(statement) }
            try? await admin.query("DROP ROLE IF EXISTS \(name)")
            throw error
        }
        for statement in tearDown(name) { try await admin.query(statement) }
        try await admin.query("DROP ROLE \(name)")
    }

    private static func refusal(_ pool: ConnectionPool) async -> String? {
        do {
            try await LeastPrivilege.requireRLSBound(pool)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("the start-up check refuses a login that is a member of the owner's role: it reads every tenant's rows past RLS")
    func refusesMemberOfTheOwnersRole() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let admin = ConnectionPool(configuration: owner, options: .init(maxConnections: 1))
            defer { admin.close() }
            // A dedicated, non-superuser owner role, as production has one, owning a governed table.
            let tableOwner = "review_owner_\(UInt32.random(in: 0...UInt32.max))"
            try await admin.query("CREATE ROLE \(tableOwner) NOLOGIN NOSUPERUSER NOBYPASSRLS")
            let tenant = UUID(), user = UUID()
            try await admin.query("INSERT INTO public.tenants (id, name) VALUES ($1, 'review-owner-member')", [tenant])
            try await admin.query("INSERT INTO auth.users (tenant_id, id) VALUES ($1, $2)", [tenant, user])
            try await admin.query(
                "INSERT INTO public.projects (tenant_id, user_id, name, type) VALUES ($1, $2, 'another tenant''s project', 'website')",
                [tenant, user])

            try await Self.withLogin(
                admin, owner,
                setUp: { ["ALTER TABLE public.projects OWNER TO \(tableOwner)", "GRANT \(tableOwner) TO \($0)"] },
                tearDown: { _ in ["ALTER TABLE public.projects OWNER TO CURRENT_USER"] }
            ) { login in
                // The door: no tenant set, yet every tenant's rows, because the owner's role bypasses RLS.
                let leaked = try await login.query("SELECT count(*) AS n FROM public.projects").first!.decode("n", as: Int.self)
                #expect(leaked >= 1)
                let refusal = await Self.refusal(login)
                #expect(refusal != nil, "a login that inherits a table owner's rights must not serve")
                #expect(refusal?.contains("owns 1 tables") == true, "\(refusal ?? "")")
            }
            try? await admin.query("DROP ROLE IF EXISTS \(tableOwner)")
        }
    }

    @Test("the start-up check refuses a login that can SET ROLE to a superuser role")
    func refusesMemberOfASuperuserRole() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let admin = ConnectionPool(configuration: owner, options: .init(maxConnections: 1))
            defer { admin.close() }
            // The test cluster's owner is a superuser: its members become it with SET ROLE.
            try await Self.withLogin(
                admin, owner, setUp: { ["GRANT \(owner.user ?? "postgres") TO \($0)"] }, tearDown: { _ in [] }
            ) { login in
                let refusal = await Self.refusal(login)
                #expect(refusal?.contains("superuser or BYPASSRLS role") == true, "\(refusal ?? "nil")")
            }
            // The gateway's own login, member of the request roles, the secrets and the privacy roles only, still serves.
            let gateway = ConnectionPool(configuration: TestDatabase.gateway(owner), options: .init(maxConnections: 1))
            defer { gateway.close() }
            #expect(await Self.refusal(gateway) == nil)
        }
    }
    // MARK: - Side doors that held (regressions: each spelling stays refused)

    @Test(
        "no spelling of a hidden table or column gets through: schema, case, encoding, slashes, profiles, casts, JSON paths, logic trees, on_conflict, columns"
    )
    func hiddenTablesAndColumnsByAnySpelling() async throws {
        try await RESTFixture.run { f in
            try await f.auth.owner.query(
                """
                INSERT INTO public.data_deletion_requests (tenant_id, user_id, status, plan, result, certificate, certificate_signature)
                VALUES ($1, $2, 'completed', '{"tables":{}}', '{"tables":{}}', '{"id":"x"}', decode(repeat('ab', 64), 'hex'))
                """, [f.acme.id, f.alice])
            // Tables: never served under another spelling (404 or 403, never 200).
            for path in [
                "/rest/v1/public.user_secrets", "/rest/v1/USER_SECRETS", "/rest/v1/user%5Fsecrets", "/rest/v1/user_secrets/",
                "/rest/v1/users", "/rest/v1/auth.users", "/rest/v1/service_keys", "/rest/v1/tenants", "/rest/v1/audit_events",
                "/rest/v1/root_keys", "/rest/v1/keyring.root_keys", "/rest/v1/schema_migrations", "/rest/v1/PROVIDER_USAGE_STATS",
                "/rest/v1/public.provider_usage_stats", "/rest/v1/rpc", "/rest/v1/rpc/",
            ] {  // (provider_usage_stats itself is a declared view now: RPCTests)
                let response = try await f.request(.get, path, as: f.acme, f.alice)
                #expect(response.status == .notFound || response.status == .forbidden, "GET \(path): \(response.status) \(response.body)")
            }
            for profile in ["auth", "keyring", "privacy", "public,auth", "Public"] {
                let read = try await f.request(
                    .get, "/rest/v1/users", as: f.acme, f.alice, headers: [HTTPField.Name("Accept-Profile")!: profile])
                #expect(read.status == .notAcceptable || read.status == .notFound, "Accept-Profile \(profile): \(read.status) \(read.body)")
                let write = try await f.request(
                    .post, "/rest/v1/users", as: f.acme, f.alice, body: "{}",
                    headers: [HTTPField.Name("Content-Profile")!: profile])
                #expect(write.status == .notAcceptable || write.status == .notFound, "Content-Profile \(profile): \(write.status)")
            }
            // Hidden columns of a readable table, by alias, cast, JSON path, logic tree or order.
            for query in [
                "select=x:certificate", "select=certificate::text", "select=x:certificate->>id", "select=result->tables",
                "select=id,certificate_signature::text", "or=(certificate.is.null,id.is.null)", "and=(plan->>tables.is.null)",
                "not.or=(certificate->>id.eq.x)", "order=certificate->>id.desc", "certificate->>id=eq.x",
                "select=*,certificate", "select=id&certificate_signature=not.is.null",
            ] {
                let response = try await f.request(.get, "/rest/v1/data_deletion_requests?\(query)", as: f.acme, f.alice)
                #expect(response.status == .badRequest, "\(query): \(response.status) \(response.body)")
                #expect(!response.body.contains("abab"), "\(query) leaked the signature")
            }
            let head = try await f.request(.head, "/rest/v1/data_deletion_requests?certificate=is.null", as: f.acme, f.alice)
            #expect(head.status == .badRequest, "HEAD: \(head.status)")
            // Writes naming hidden columns through on_conflict or columns= on a writable table never reach SQL.
            for query in ["on_conflict=certificate", "columns=certificate"] {
                let response = try await f.request(
                    .post, "/rest/v1/data_deletion_requests?\(query)", as: f.acme, f.alice, body: #"{"status":"pending"}"#,
                    headers: [HTTPField.Name("Prefer")!: "resolution=merge-duplicates"])
                #expect(response.status == .forbidden, "\(query): \(response.status) \(response.body)")
            }
            let count = try await f.auth.owner.query("SELECT count(*) AS n FROM public.data_deletion_requests")
            #expect(try count.rows[0].decode("n", as: Int.self) == 1)
        }
    }

    @Test("a JWT role claim naming the secrets, privacy, owner or login role is refused before any SQL (401 PGRST303)")
    func roleClaimCannotAssumeGatewayRoles() async throws {
        try await RESTFixture.run { f in
            for role in [
                "gateway_secrets", "privacy_worker", "privacy_gateway", "postgres", "pg_read_all_data", "Service_Role", "service_role ",
            ] {
                let token = try await Tokens.hs256(claims: Tokens.user(f.alice, role: role), secret: f.acme.secret!)
                for path in ["/rest/v1/projects", "/v1/privacy/settings"] {
                    let response = try await f.request(.get, path, as: f.acme, nil, headers: [.authorization: "Bearer \(token)"])
                    #expect(response.status == .unauthorized, "role \(role) on \(path): \(response.status) \(response.body)")
                }
            }
            // A token signed for another tenant does not verify with this tenant's key.
            let foreign = try await Tokens.hs256(claims: Tokens.user(f.alice, role: "service_role"), secret: f.globex.secret!)
            let crossed = try await f.request(.get, "/rest/v1/projects", as: f.acme, nil, headers: [.authorization: "Bearer \(foreign)"])
            #expect(crossed.status == .unauthorized)
        }
    }
}
