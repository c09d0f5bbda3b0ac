import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Policy
import Postgres
import Privacy
import Sodium
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// `/v1/admin` through the real router, as an attacker would call it (issue 17, item 1).
@Suite("/v1/admin: scope admin, tenant-local admin keys, operator-only tenant management, audited")
struct AdminRouteTests {
    struct Answer {
        let status: HTTPResponse.Status
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    @Test(
        "narrower keys, user JWTs and no key are refused; another tenant's ids are 404; bad input is 400/409; operators manage tenants; every action is in the right trail"
    )
    func adminRoutes() async throws {
        try await AuthFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("admin-routes-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            var configuration = PrivacyConfiguration(
                policyVersion: try PrivacyConfiguration.policyVersion(directory: TestDatabase.repositoryPolicies.path),
                exportDirectory: directory.path)
            configuration.encryptionLimits = .testing
            let privacy = PrivacyService(
                pool: f.gateway, graph: try await SubjectGraph.load(policies: policies, pool: f.gateway),
                audit: AuditAppender(pool: f.gateway), signingKey: try Ed25519.SigningKey.generate(), tokenKey: try SecureBytes(count: 32),
                keyring: f.keyring, configuration: configuration)
            var services = GatewayServices(
                pool: f.gateway, policies: policies, authenticator: f.authenticator,
                readiness: try Readiness(pool: f.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: AuditAppender(pool: f.gateway), privacy: privacy)
            let ops = try await f.tenant("ops", scopes: [.admin])
            let acme = try await f.tenant("acme", scopes: [.admin])
            let globex = try await f.tenant("globex", scopes: [.admin, .dataRead])
            services.operatorTenant = ops.id
            services.keyring = f.keyring
            let keys = ServiceKeyRegistry.self
            let (narrow, narrowKey) = try await ServiceKeyRegistry(pool: f.owner, rootKey: f.rootKey)
                .create(
                    tenant: acme.id, scopes: [.dataRead, .dataWrite, .secretsRead, .auditRead, .privacyExport, .privacyErase],
                    name: "narrow")
            let (globexOther, _) = try await ServiceKeyRegistry(pool: f.owner, rootKey: f.rootKey).create(
                tenant: globex.id, scopes: [.dataRead], name: "g")
            // One request in each of acme and globex.
            let alice = UUID(), bob = UUID()
            try await f.authenticator.subjects.register(alice, tenant: acme.id)
            try await f.authenticator.subjects.register(bob, tenant: globex.id)
            let acmeRequest = try await privacy.requestExport(tenant: acme.id, subject: alice, actor: PrivacyActor("test")).request
            let globexRequest = try await privacy.requestExport(tenant: globex.id, subject: bob, actor: PrivacyActor("test")).request
            let newSecret = AuthFixture.secret()

            try await Application(router: GatewayApplication.router(services: services)).test(.router) { client in
                func call(_ method: HTTPRequest.Method, _ uri: String, _ key: String?, bearer: String? = nil, body: String? = nil)
                    async throws -> Answer
                {
                    var headers: HTTPFields = [:]
                    if let key { headers[.apikey] = key }
                    if let bearer { headers[.authorization] = "Bearer \(bearer)" }
                    return try await client.execute(
                        uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }
                    ) { Answer(status: $0.status, body: String(buffer: $0.body)) }
                }
                let routes: [(HTTPRequest.Method, String, String?)] = [
                    (.get, "/v1/admin/tenants", nil), (.post, "/v1/admin/tenants", #"{"name": "x"}"#),
                    (.get, "/v1/admin/tenants/\(acme.id.lowercasedString)", nil),
                    (.post, "/v1/admin/tenants/\(acme.id.lowercasedString)/disable", nil),
                    (.post, "/v1/admin/tenants/\(acme.id.lowercasedString)/enable", nil),
                    (.get, "/v1/admin/service-keys", nil), (.post, "/v1/admin/service-keys", #"{"scopes": ["data:read"]}"#),
                    (.post, "/v1/admin/service-keys/\(narrow.id.lowercasedString)/revoke", nil),
                    (.post, "/v1/admin/service-keys/\(narrow.id.lowercasedString)/rotate", "{}"),
                    (.get, "/v1/admin/requests", nil), (.get, "/v1/admin/requests/overdue", nil),
                    (.post, "/v1/admin/requests/export/\(acmeRequest.id)/extend", #"{"months": 1, "reason": "r"}"#),
                    (.put, "/v1/admin/tenants/\(acme.id.lowercasedString)/jwt", #"{"audience": "x"}"#),
                    (.post, "/v1/admin/tenants/\(acme.id.lowercasedString)/kek/rotate", nil),
                    (.get, "/v1/admin/tenants/\(acme.id.lowercasedString)/kek", nil),
                ]
                // 1. No key: 401. Every scope but admin: 403, recorded in the key's tenant's trail.
                //    A user's JWT with an admin key: 403 (an end user's session never administers).
                let token = try await Tokens.hs256(claims: Tokens.user(alice), secret: acme.secret!)
                for (method, uri, body) in routes {
                    #expect(try await call(method, uri, nil, body: body).status == .unauthorized, "\(uri)")
                    let narrower = try await call(method, uri, narrowKey, body: body)
                    #expect(narrower.status == .forbidden && narrower.body.contains("admin"), "\(uri): \(narrower.body)")
                    #expect(try await call(method, uri, acme.apikey, bearer: token, body: body).status == .forbidden, "\(uri)")
                    #expect(
                        try await call(
                            method, uri, "pgw_" + String(repeating: "0", count: 32) + "_" + String(repeating: "A", count: 43), body: body
                        )
                        .status == .unauthorized)
                }
                let denied = try await f.owner.query(
                    "SELECT count(*)::int AS n FROM public.audit_events WHERE tenant_id = $1 AND action = 'admin.denied' AND actor = $2",
                    [acme.id, "service_key:" + narrow.id.lowercasedString]
                ).first!.decode("n", as: Int.self)
                #expect(denied == routes.count)
                // Nothing changed: the narrow key still works, acme is enabled.
                #expect(try await f.authenticator.authenticate(apikey: narrowKey, authorization: nil).tenantID == acme.id)

                // 2. A tenant's admin key is tenant-local: tenant management is an operator's (403);
                //    another tenant's tenant, keys and requests are 404, like ids that do not exist.
                for (method, uri, body) in routes.prefix(5) where !uri.hasSuffix(acme.id.lowercasedString) {
                    let answer = try await call(method, uri, acme.apikey, body: body)
                    #expect(answer.status == .forbidden && answer.body.contains("operator"), "\(uri): \(answer.body)")
                }
                let g = globex.id.lowercasedString
                for (method, uri, body) in [
                    (HTTPRequest.Method.get, "/v1/admin/tenants/\(g)", nil as String?),
                    (.get, "/v1/admin/tenants/\(UUID().lowercasedString)", nil),
                    (.get, "/v1/admin/service-keys?tenant_id=\(g)", nil),
                    (.post, "/v1/admin/service-keys", #"{"tenant_id": "\#(g)", "scopes": ["admin"]}"#),
                    (.post, "/v1/admin/service-keys/\(globexOther.id.lowercasedString)/revoke", nil),
                    (.post, "/v1/admin/service-keys/\(globex.keyID.lowercasedString)/rotate", "{}"),
                    (.post, "/v1/admin/service-keys/\(UUID().lowercasedString)/revoke", nil),
                    (.get, "/v1/admin/requests?tenant_id=\(g)", nil),
                    (.get, "/v1/admin/requests/overdue?tenant_id=\(g)", nil),
                    (.post, "/v1/admin/requests/export/\(globexRequest.id)/extend", #"{"months": 1, "reason": "r"}"#),
                    (.post, "/v1/admin/requests/export/\(globexRequest.id)/extend?tenant_id=\(g)", #"{"months": 1, "reason": "r"}"#),
                ] {
                    let answer = try await call(method, uri, acme.apikey, body: body)
                    #expect(answer.status == .notFound, "\(uri): \(answer.status) \(answer.body)")
                }
                #expect(try await ServiceKeyRegistry.find(pool: f.owner, id: globexOther.id)?.revokedAt == nil)
                #expect(try await privacy.request(.export, tenant: globex.id, id: UUID(uuidString: globexRequest.id)!).extendedDueAt == nil)
                let globexKeys = try await keys.list(pool: f.owner, tenant: globex.id)
                #expect(globexKeys.count == 2, "no key was created in globex")

                // Its own tenant and keys: listed with scopes and last use, never a key or a hash.
                #expect(
                    try await call(.get, "/v1/admin/tenants/\(acme.id.lowercasedString)", acme.apikey).json["name"] as? String == "acme")
                let listed = try await call(.get, "/v1/admin/service-keys", acme.apikey)
                #expect(listed.status == .ok)
                #expect(!listed.body.contains("pgw_") && !listed.body.contains("hash"), "\(listed.body)")
                let listedKeys = listed.json["service_keys"] as? [[String: Any]] ?? []
                #expect(Set(listedKeys.compactMap { $0["id"] as? String }) == [acme.keyID.lowercasedString, narrow.id.lowercasedString])
                #expect(listedKeys.allSatisfy { $0["last_used_at"] is String }, "both keys were used: \(listed.body)")

                // 3. Bad input: 400 naming the problem, nothing written.
                let before = try await keys.list(pool: f.owner, tenant: acme.id).count
                let past = Date(timeIntervalSinceNow: -60).formatted(.iso8601)
                for (body, needle) in [
                    (#"{"scopes": ["data:read", "data:everything"]}"#, "data:everything"),
                    (#"{"scopes": []}"#, "at least one scope"),
                    (#"{"scopes": "admin"}"#, "scopes"),
                    (#"{"scopes": ["data:read"], "expires_at": "\#(past)"}"#, "past"),
                    (#"{"scopes": ["data:read"], "expires_at": "tomorrow"}"#, "RFC 3339"),
                    (#"{"scopes": ["data:read"], "name": "a\u0001b"}"#, "control"),
                    (#"{"scopes": ["data:read"], "name": ""}"#, "name"),
                    (#"{"scopes": ["data:read"], "tenant_id": "acme"}"#, "UUID"),
                    (#"{"scopes": ["data:read"], "admin": true}"#, "unknown field"),
                    ("not json", "JSON object"),
                ] {
                    let answer = try await call(.post, "/v1/admin/service-keys", acme.apikey, body: body)
                    #expect(answer.status == .badRequest && answer.body.contains(needle), "\(body): \(answer.status) \(answer.body)")
                }
                for uri in ["/v1/admin/service-keys?tenant_id=nope", "/v1/admin/requests?overdue=maybe", "/v1/admin/tenants/nope"] {
                    #expect(try await call(.get, uri, acme.apikey).status == .badRequest, "\(uri)")
                }
                #expect(
                    try await call(
                        .post, "/v1/admin/requests/erasure/\(acmeRequest.id)/extend", acme.apikey, body: #"{"months": 1, "reason": "r"}"#
                    )
                    .status == .badRequest)
                #expect(
                    try await call(
                        .post, "/v1/admin/requests/export/\(acmeRequest.id)/extend", acme.apikey, body: #"{"months": 3, "reason": "r"}"#
                    )
                    .status == .badRequest)
                for body in [#"{"overlap_seconds": -1}"#, #"{"overlap_seconds": 99999999999}"#, #"{"overlap": 5}"#] {
                    #expect(
                        try await call(.post, "/v1/admin/service-keys/\(narrow.id.lowercasedString)/rotate", acme.apikey, body: body)
                            .status == .badRequest, "\(body)")
                }
                #expect(try await keys.list(pool: f.owner, tenant: acme.id).count == before)

                // 4. Create, rotate (with and without overlap), revoke — each takes effect at once.
                let future = Date(timeIntervalSinceNow: 86_400).formatted(.iso8601)
                let created = try await call(
                    .post, "/v1/admin/service-keys", acme.apikey,
                    body: #"{"scopes": ["data:read", "data:read", "secrets:read"], "name": "worker", "expires_at": "\#(future)"}"#)
                #expect(created.status == .created, "\(created.body)")
                let newKey = try #require(created.json["key"] as? String)
                let record = try #require(created.json["service_key"] as? [String: Any])
                #expect(record["scopes"] as? [String] == ["data:read", "secrets:read"])
                #expect(record["expires_at"] is String)
                #expect(
                    try await f.authenticator.authenticate(apikey: newKey, authorization: nil).serviceKey.scopes == [
                        .dataRead, .secretsRead,
                    ])
                let newID = try #require(record["id"] as? String)

                let rotated = try await call(
                    .post, "/v1/admin/service-keys/\(newID)/rotate", acme.apikey, body: #"{"overlap_seconds": 3600}"#)
                #expect(rotated.status == .created, "\(rotated.body)")
                let rotatedKey = try #require(rotated.json["key"] as? String)
                #expect(
                    try await f.authenticator.authenticate(apikey: newKey, authorization: nil).tenantID == acme.id,
                    "the overlap keeps the old key")
                #expect(
                    try await f.authenticator.authenticate(apikey: rotatedKey, authorization: nil).serviceKey.scopes == [
                        .dataRead, .secretsRead,
                    ])
                let rotatedID = try #require((rotated.json["service_key"] as? [String: Any])?["id"] as? String)
                // No overlap (an empty body takes the default of an hour; 0 ends the old key now).
                #expect(
                    try await call(.post, "/v1/admin/service-keys/\(rotatedID)/rotate", acme.apikey, body: #"{"overlap_seconds": 0}"#)
                        .status == .created)
                await #expect(throws: GatewayError.self) { try await f.authenticator.authenticate(apikey: rotatedKey, authorization: nil) }
                let rotatedAgain = try await call(.post, "/v1/admin/service-keys/\(rotatedID)/rotate", acme.apikey)
                #expect(rotatedAgain.status == .conflict, "an expired key is not rotated: \(rotatedAgain.body)")

                let revoked = try await call(.post, "/v1/admin/service-keys/\(newID)/revoke", acme.apikey)
                #expect(revoked.status == .ok && revoked.json["revoked_at"] is String, "\(revoked.body)")
                await #expect(throws: GatewayError.self) { try await f.authenticator.authenticate(apikey: newKey, authorization: nil) }
                #expect(
                    try await call(.post, "/v1/admin/service-keys/\(newID)/revoke", acme.apikey).status == .ok, "revoking twice is harmless"
                )
                #expect(try await call(.post, "/v1/admin/service-keys/\(newID)/rotate", acme.apikey).status == .conflict)

                // 5. The request queue: own requests only; an extension once.
                let requests = try await call(.get, "/v1/admin/requests", acme.apikey)
                #expect(requests.status == .ok)
                #expect((requests.json["requests"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [acmeRequest.id])
                #expect((try await call(.get, "/v1/admin/requests/overdue", acme.apikey).json["requests"] as? [Any])?.isEmpty == true)
                let extended = try await call(
                    .post, "/v1/admin/requests/export/\(acmeRequest.id)/extend", acme.apikey,
                    body: #"{"months": 2, "reason": "complex request"}"#)
                #expect(extended.status == .ok && extended.json["extended_due_at"] is String, "\(extended.body)")
                #expect(
                    try await call(
                        .post, "/v1/admin/requests/export/\(acmeRequest.id)/extend", acme.apikey,
                        body: #"{"months": 1, "reason": "again"}"#
                    ).status == .conflict)

                // JWT settings: the own tenant's only; the secret sealed, never echoed; the old token refused at once.
                let jwt = "/v1/admin/tenants/\(acme.id.lowercasedString)/jwt"
                #expect(try await call(.put, "/v1/admin/tenants/\(g)/jwt", acme.apikey, body: #"{"audience": "a"}"#).status == .notFound)
                for body in [
                    #"{"secret": "short"}"#, "{}", #"{"jwks": {"keys": [{"kty": "oct"}]}}"#, #"{"audience": " padded "}"#,
                    #"{"secret": 5}"#, #"{"issuer": "x", "kid": "y"}"#,
                ] {
                    let answer = try await call(.put, jwt, acme.apikey, body: body)
                    #expect(answer.status == .badRequest, "\(body): \(answer.status) \(answer.body)")
                }
                let oldToken = try await Tokens.hs256(claims: Tokens.user(alice), secret: acme.secret!)
                #expect(try await f.authenticator.authenticate(apikey: narrowKey, authorization: "Bearer \(oldToken)").userID == alice)
                // Overlap 0: the old secret stops at once (the default keeps it for an hour: JWTRotationTests).
                let updated = try await call(
                    .put, jwt, acme.apikey, body: #"{"secret": "\#(newSecret)", "audience": "authenticated", "secret_overlap_seconds": 0}"#)
                #expect(updated.status == .ok && updated.json["has_jwt_secret"] as? Bool == true, "\(updated.body)")
                #expect(!updated.body.contains(newSecret))
                await #expect(throws: GatewayError.self) {
                    try await f.authenticator.authenticate(apikey: narrowKey, authorization: "Bearer \(oldToken)")
                }
                let newToken = try await Tokens.hs256(claims: Tokens.user(alice), secret: newSecret)
                #expect(try await f.authenticator.authenticate(apikey: narrowKey, authorization: "Bearer \(newToken)").userID == alice)

                // KEK rotation: an operator's (a tenant admin gets 403, even for its own tenant); the
                // status is the own tenant's only; the sealed JWT secret is rewrapped and still verifies.
                #expect(try await call(.post, "/v1/admin/tenants/\(g)/kek/rotate", acme.apikey).status == .forbidden)
                #expect(try await call(.get, "/v1/admin/tenants/\(g)/kek", acme.apikey).status == .notFound)
                let kek = "/v1/admin/tenants/\(acme.id.lowercasedString)/kek"
                #expect(try await call(.post, kek + "/rotate", acme.apikey).status == .forbidden)
                let rotation = try await call(.post, kek + "/rotate", ops.apikey)
                #expect(rotation.status == .ok && rotation.json["rewrapped_tenant_secrets"] as? Int == 1, "\(rotation.body)")
                let kekStatus = try await call(.get, kek, acme.apikey)
                #expect(kekStatus.status == .ok && kekStatus.json["rotation_unfinished"] as? Bool == false, "\(kekStatus.body)")
                let versions = kekStatus.json["versions"] as? [[String: Any]] ?? []
                #expect(
                    versions.last?["version"] as? Int == rotation.json["to_version"] as? Int && versions.last?["retired_at"] == nil,
                    "\(versions)")
                #expect(versions.dropLast().allSatisfy { $0["retired_at"] is String }, "the old versions are retired: \(versions)")
                f.authenticator.invalidateTenant(acme.id)
                #expect(try await f.authenticator.authenticate(apikey: narrowKey, authorization: "Bearer \(newToken)").userID == alice)

                // 6. The operator: tenants; duplicate names 409; its own tenant cannot be disabled.
                let initech = try await call(.post, "/v1/admin/tenants", ops.apikey, body: #"{"name": "initech"}"#)
                #expect(initech.status == .created, "\(initech.body)")
                let initechID = try #require(initech.json["id"] as? String)
                let duplicate = try await call(.post, "/v1/admin/tenants", ops.apikey, body: #"{"name": "acme"}"#)
                #expect(duplicate.status == .conflict && duplicate.body.contains("already exists"), "\(duplicate.body)")
                for body in [#"{"name": "   "}"#, #"{"name": 5}"#, "{}", #"{"name": "x", "jwt_secret": "s"}"#] {
                    #expect(try await call(.post, "/v1/admin/tenants", ops.apikey, body: body).status == .badRequest, "\(body)")
                }
                let all = try await call(.get, "/v1/admin/tenants", ops.apikey)
                #expect(
                    Set((all.json["tenants"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }) == [
                        "ops", "acme", "globex", "initech",
                    ])
                let firstKey = try await call(
                    .post, "/v1/admin/service-keys", ops.apikey, body: #"{"tenant_id": "\#(initechID)", "scopes": ["admin"]}"#)
                #expect(firstKey.status == .created, "\(firstKey.body)")
                let initechKey = try #require(firstKey.json["key"] as? String)
                #expect(try await call(.get, "/v1/admin/tenants/\(initechID)", initechKey).status == .ok)
                #expect(try await call(.get, "/v1/admin/tenants/\(acme.id.lowercasedString)", initechKey).status == .notFound)
                #expect(
                    try await call(
                        .post, "/v1/admin/service-keys", ops.apikey,
                        body: #"{"tenant_id": "\#(UUID().lowercasedString)", "scopes": ["admin"]}"#
                    ).status == .notFound)
                #expect(try await call(.post, "/v1/admin/tenants/\(ops.id.lowercasedString)/disable", ops.apikey).status == .conflict)
                #expect(try await call(.post, "/v1/admin/tenants/\(UUID().lowercasedString)/disable", ops.apikey).status == .notFound)

                // Disabled: every key of the tenant is refused at once; enabled: they work again.
                #expect(try await call(.get, "/v1/admin/service-keys", globex.apikey).status == .ok)
                let disabled = try await call(.post, "/v1/admin/tenants/\(g)/disable", ops.apikey)
                #expect(disabled.status == .ok && disabled.json["disabled_at"] is String, "\(disabled.body)")
                #expect(try await call(.get, "/v1/admin/service-keys", globex.apikey).status == .unauthorized)
                await #expect(throws: GatewayError.self) {
                    try await f.authenticator.authenticate(apikey: globex.apikey, authorization: nil)
                }
                #expect(try await call(.post, "/v1/admin/tenants/\(g)/disable", ops.apikey).status == .ok, "disabling twice is harmless")
                #expect(try await call(.post, "/v1/admin/tenants/\(g)/enable", ops.apikey).status == .ok)
                #expect(try await call(.get, "/v1/admin/service-keys", globex.apikey).status == .ok)
                // The operator reaches every tenant's queue.
                let everyRequest = try await call(.get, "/v1/admin/requests", ops.apikey)
                #expect(
                    Set((everyRequest.json["requests"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
                        == [acmeRequest.id, globexRequest.id])
            }

            // 7. The trails: each action in the trail of the tenant it concerns, actor the calling key.
            func actions(_ tenant: UUID) async throws -> [(String, String?)] {
                try await f.owner.query(
                    "SELECT action, actor FROM public.audit_events WHERE tenant_id = $1 AND action NOT LIKE 'privacy.%' ORDER BY seq",
                    [tenant]
                ).rows.map { (try $0.decode("action"), try $0.decodeIfPresent("actor")) }
            }
            let acmeAdmin = "service_key:" + acme.keyID.lowercasedString, operatorActor = "service_key:" + ops.keyID.lowercasedString
            let acmeTrail = try await actions(acme.id)
            for action in [
                "service_key.created", "service_key.rotated", "service_key.revoked", "admin.tenant_shown", "admin.service_keys_listed",
                "admin.requests_listed", "tenant.jwt_updated", "admin.kek_status_read",
            ] {
                #expect(acmeTrail.contains { $0.0 == action && $0.1 == acmeAdmin }, "acme's trail lacks \(action): \(acmeTrail)")
            }
            #expect(acmeTrail.contains { $0.0 == "keys.rotated" && $0.1 == operatorActor }, "\(acmeTrail)")
            // The refused attempts on globex are in acme's (the actor's) trail, not in globex's.
            #expect(acmeTrail.filter { $0.0 == "admin.denied" && $0.1 == acmeAdmin }.count >= 5)
            let globexTrail = try await actions(globex.id)
            #expect(!globexTrail.contains { $0.1 == acmeAdmin }, "\(globexTrail)")
            let secretInTrail = try await f.owner.query(
                "SELECT count(*)::int AS n FROM public.audit_events WHERE details::text LIKE '%' || $1 || '%'", [newSecret]
            ).first!.decode("n", as: Int.self)
            #expect(secretInTrail == 0, "the JWT secret is never in an audit entry")
            for action in ["tenant.disabled", "tenant.enabled"] {
                #expect(globexTrail.contains { $0.0 == action && $0.1 == operatorActor }, "globex's trail lacks \(action): \(globexTrail)")
            }
            let initechTrail = try await actions(
                try #require(try await TenantRegistry(pool: f.owner, auditing: .disabled).list().first { $0.name == "initech" }).id)
            #expect(initechTrail.first?.0 == "tenant.created" && initechTrail.first?.1 == operatorActor, "\(initechTrail)")
            #expect(initechTrail.contains { $0.0 == "service_key.created" && $0.1 == operatorActor })
            let opsTrail = try await actions(ops.id)
            #expect(opsTrail.contains { $0.0 == "admin.tenants_listed" }, "\(opsTrail)")
            let extensions = try await f.owner.query(
                "SELECT count(*)::int AS n FROM public.audit_events WHERE tenant_id = $1 AND action = 'privacy.request_extended' AND actor = $2",
                [acme.id, acmeAdmin]
            ).first!.decode("n", as: Int.self)
            #expect(extensions == 1)
            for tenant in [acme.id, globex.id, ops.id] {
                let report = try await AuditBundle.verifyLive(pool: f.owner, tenant: tenant, trustedKeys: [:])
                #expect(report.isValid, "\(report.failures)")
            }
        }
    }
}
