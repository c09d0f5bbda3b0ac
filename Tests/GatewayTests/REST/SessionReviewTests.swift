import Audit
import Config
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Keyring
import Policy
import Postgres
import Privacy
import Reports
import Secrets
import Sodium
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// The review of authentication moved into middleware, the one error map and the processors'
/// callback route: each test is an attacker's attempt through the real router and a real Postgres.
@Suite("Session review: every route's credential, privacy scopes per kind, revocation on /rest/v1, the callback limiter")
struct SessionReviewTests {
    typealias Answer = (status: HTTPResponse.Status, body: String)

    /// Routes no service key guards, and what guards them instead (nothing: public by design).
    static let publicRoutes: Set<String> = [
        "/health", "/ready", "/openapi.json", "/metrics", "/rest/v1", "/rest/v1/{table}/**",
        "/v1/privacy/exports/{id}/download",  // its single-use token
        "/v1/privacy/processors/{id}/callback",  // the processor's HMAC
    ]

    /// A route template with its parameters filled: ids random, a real table, function and secret name.
    static func uri(_ template: String) -> String {
        template.split(separator: "/", omittingEmptySubsequences: false).map { part -> String in
            switch part {
            case "{table}": "projects"
            case "{function}": "get_session_cost"
            case "{service}": "openai"
            case "{seq}": "1"
            case "{kind}": "export"
            case "**", "*": "x"
            case _ where part.hasPrefix("{"): UUID().uuidString.lowercased()
            default: String(part)
            }
        }.joined(separator: "/")
    }

    static func body(_ method: HTTPRequest.Method) -> String? {
        [.post, .put, .patch].contains(method) ? "{}" : nil
    }

    @Test(
        "every route the router holds: no key, a malformed key and a revoked key are 401; a key without the route's scope is 401/403; only the documented public routes answer without a key; every /v1 route is in /openapi.json"
    )
    func everyRouteNeedsItsCredential() async throws {
        try await AuthFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let auditKeys = try AuditKeys(rootKey: f.keyring.serviceMaster)
            let audit = AuditAppender(pool: f.gateway, keys: auditKeys)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("review-routes-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            var configuration = PrivacyConfiguration(
                policyVersion: try PrivacyConfiguration.policyVersion(directory: TestDatabase.repositoryPolicies.path),
                exportDirectory: directory.path)
            configuration.encryptionLimits = .testing
            let privacy = PrivacyService(
                pool: f.gateway, graph: try await SubjectGraph.load(policies: policies, pool: f.gateway), audit: audit,
                signingKey: try Ed25519.SigningKey.generate(), tokenKey: try SecureBytes(count: 32), keyring: f.keyring,
                configuration: configuration)
            var services = GatewayServices(
                pool: f.gateway, policies: policies, authenticator: f.authenticator,
                readiness: try Readiness(pool: f.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: audit, secrets: SecretStore(pool: f.gateway, keyring: f.keyring, audit: audit, auditKeys: auditKeys),
                auditKeys: auditKeys, privacy: privacy)
            services.keyring = f.keyring
            let acme = try await f.tenant("review-acme", scopes: Scope.allCases)
            let registry = try ServiceKeyRegistry(pool: f.owner, rootKey: f.rootKey)
            let (revokedKey, revoked) = try await registry.create(tenant: acme.id, scopes: Scope.allCases, name: nil)
            let dataOnly = try await registry.create(tenant: acme.id, scopes: [.dataRead], name: nil).secret
            let exportOnly = try await registry.create(tenant: acme.id, scopes: [.privacyExport], name: nil).secret
            let eraseOnly = try await registry.create(tenant: acme.id, scopes: [.privacyErase], name: nil).secret
            let alice = UUID()
            let jwt = try await Tokens.hs256(claims: Tokens.user(alice), secret: acme.secret!)

            let router = GatewayApplication.router(services: services)
            let routes = router.routes.map { (method: $0.method, path: $0.path.description) }
            // The enumeration itself is not empty or partial: every module's group is there.
            for prefix in ["/v1/admin/", "/v1/secrets", "/v1/privacy/", "/v1/audit/", "/rest/v1/rpc/"] {
                #expect(routes.contains { $0.path.hasPrefix(prefix) }, "no route under \(prefix)")
            }
            try await Application(router: router).test(.router) { client in
                func call(_ method: HTTPRequest.Method, _ uri: String, key: String?, bearer: String? = nil) async throws -> Answer {
                    var headers: HTTPFields = [.contentType: "application/json"]
                    if let key { headers[.apikey] = key }
                    if let bearer { headers[.authorization] = "Bearer " + bearer }
                    let body = Self.body(method)
                    return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
                        (status: $0.status, body: String(buffer: $0.body))
                    }
                }
                // The revoked key is known (cached) to the authenticator before it is revoked behind its back.
                #expect(try await call(.get, "/v1/audit/events", key: revoked).status == .ok)
                #expect(try await call(.get, "/rest/v1/projects", key: revoked, bearer: jwt).status == .ok)
                _ = try await registry.revoke(id: revokedKey.id)

                var adminRoutes = 0, secretRoutes = 0
                for route in routes {
                    let uri = Self.uri(route.path)
                    let label = "\(route.method) \(route.path)"
                    if Self.publicRoutes.contains(route.path) {
                        continue
                    }
                    let none = try await call(route.method, uri, key: nil)
                    #expect(none.status == .unauthorized, "\(label) without a key: \(none.status) \(none.body)")
                    let malformed = try await call(
                        route.method, uri, key: "pgw_" + String(repeating: "0", count: 32) + "_" + String(repeating: "A", count: 43))
                    #expect(malformed.status == .unauthorized, "\(label) with a made-up key: \(malformed.status)")
                    // Revoked: also as the bearer with a user's JWT on /rest/v1, where the check rides in the pipeline.
                    let revokedAnswer = try await call(route.method, uri, key: revoked, bearer: route.path.hasPrefix("/rest/") ? jwt : nil)
                    #expect(
                        revokedAnswer.status == .unauthorized, "\(label) with a revoked key: \(revokedAnswer.status) \(revokedAnswer.body)")
                    let revokedAsBearer = try await call(route.method, uri, key: nil, bearer: revoked)
                    #expect(revokedAsBearer.status == .unauthorized, "\(label) with a revoked key as bearer: \(revokedAsBearer.status)")
                    // A key without the route's scope (a user's JWT beside it): refused, never served.
                    if route.path.hasPrefix("/v1/") && !route.path.hasPrefix("/v1/privacy/") {
                        let narrow = try await call(
                            route.method, uri, key: dataOnly, bearer: route.path.hasPrefix("/v1/admin/") ? nil : jwt)
                        #expect(
                            [.forbidden, .unauthorized].contains(narrow.status),
                            "\(label) with data:read only: \(narrow.status) \(narrow.body)")
                    }
                    if route.path.hasPrefix("/v1/admin/") {
                        adminRoutes += 1
                        // An admin key with a user's JWT: the admin API takes a key alone.
                        let withUser = try await call(route.method, uri, key: acme.apikey, bearer: jwt)
                        #expect(withUser.status == .forbidden, "\(label) admin key + JWT: \(withUser.status) \(withUser.body)")
                    }
                    if route.path.hasPrefix("/v1/secrets") { secretRoutes += 1 }
                    // Privacy: the export group needs privacy:export, the erasure group privacy:erase, on every route.
                    if route.path.hasPrefix("/v1/privacy/") {
                        let erasure = route.path.contains("/deletions")
                        let wrong = try await call(route.method, uri, key: erasure ? exportOnly : eraseOnly, bearer: jwt)
                        #expect(wrong.status == .forbidden, "\(label) with the other privacy scope: \(wrong.status) \(wrong.body)")
                        let right = try await call(route.method, uri, key: erasure ? eraseOnly : exportOnly, bearer: jwt)
                        #expect(
                            ![.forbidden, .unauthorized].contains(right.status), "\(label) with its scope: \(right.status) \(right.body)")
                    }
                }
                #expect(adminRoutes >= 20 && secretRoutes >= 6, "\(adminRoutes) admin, \(secretRoutes) secret routes")
                // The refusals of an authenticated key on /v1/admin are recorded with the action refused:
                // one per route for the narrow key and one per route for the admin key with a JWT.
                let denied = try await f.owner.query(
                    """
                    SELECT actor, count(DISTINCT details->>'action')::int AS actions, count(*)::int AS n FROM public.audit_events
                    WHERE tenant_id = $1 AND action = 'admin.denied' GROUP BY actor
                    """, [acme.id])
                let byActor = Dictionary(
                    uniqueKeysWithValues: try denied.rows.map {
                        (try $0.decode("actor", as: String.self), try $0.decode("n", as: Int.self))
                    })
                #expect(byActor.values.allSatisfy { $0 == adminRoutes }, "\(byActor) for \(adminRoutes) admin routes")
                #expect(byActor.count == 2, "\(byActor)")
                // The secret routes' refusals (a key without secrets:*) are recorded as denied, with their action.
                let secretDenials = try await f.owner.query(
                    """
                    SELECT action FROM public.audit_events WHERE tenant_id = $1 AND outcome = 'denied' AND action LIKE 'secret.%'
                    """, [acme.id]
                ).rows.map { try $0.decode("action", as: String.self) }
                #expect(secretDenials.count == secretRoutes, "\(secretDenials)")

                // The public routes: the download needs its token, the callback its signature.
                let id = UUID().uuidString.lowercased()
                let noToken = try await call(.get, "/v1/privacy/exports/\(id)/download", key: acme.apikey)
                #expect(noToken.status == .badRequest, "\(noToken.body)")
                let forged = try await call(
                    .get, "/v1/privacy/exports/\(id)/download?token=" + String(repeating: "ab", count: PrivacyService.downloadTokenBytes),
                    key: acme.apikey)
                #expect([.forbidden, .notFound, .gone].contains(forged.status), "\(forged.status) \(forged.body)")
                let unsigned = try await call(.post, "/v1/privacy/processors/\(id)/callback", key: acme.apikey, bearer: jwt)
                #expect(unsigned.status == .unauthorized, "\(unsigned.body)")
                // Views on /rest/v1: the revoked key is refused there too.
                let view = try await call(.get, "/rest/v1/provider_usage_stats", key: revoked, bearer: jwt)
                #expect(view.status == .unauthorized, "\(view.status) \(view.body)")

                // Every /v1 route is documented in /openapi.json with its method.
                let document = try await call(.get, "/openapi.json", key: nil)
                let paths = try #require(
                    (try JSONSerialization.jsonObject(with: Data(document.body.utf8)) as? [String: Any])?["paths"] as? [String: Any])
                for route in routes where route.path.hasPrefix("/v1/") {
                    let documented = route.path
                    let operations = paths[documented] as? [String: Any]
                    #expect(operations?[route.method.rawValue.lowercased()] != nil, "\(route.method) \(documented) is not in /openapi.json")
                }
            }
        }
    }

    @Test(
        "the error map: a database error wrapped by the audit, report or keyring module (or unreachable, 08/53) never brings its server detail, SQL or bound values into the answer"
    )
    func wrappedDatabaseDetailStaysOut() throws {
        let leaky = PostgresError(
            .server, "new row for relation \"tenants\" violates check constraint", sqlState: "23514",
            detail: "Failing row contains (hunter2-detail)", hint: "SELECT jwt_secret FROM tenants")
        let outage = PostgresError(.server, "could not write to file", sqlState: "58030", detail: "Failing row contains (hunter2-detail)")
        let wrapped: [any Error] = [
            AuditError(.database, "the audit trail could not be read", underlying: leaky),
            AuditError(.database, "the audit trail could not be read", underlying: outage),
            ReportError(.database, "the report could not be made", underlying: leaky),
            ReportError(.database, "the report could not be made", underlying: outage),
            ReportError(.database, "the report could not be made", underlying: AuditError(.database, "audit", underlying: leaky)),
            KeyringError(.database, "the keyring could not be read or written: \(outage.summary)", underlying: outage),
            leaky, outage,
            PostgresError(.server, "too many connections", sqlState: "53300", detail: "Failing row contains (hunter2-detail)"),
        ]
        for error in wrapped {
            let answer = GatewayError(mapping: error)
            let text = [answer.message, answer.details ?? "", answer.hint ?? ""].joined(separator: " | ")
            #expect(!text.contains("hunter2") && !text.contains("SELECT"), "\(type(of: error)) → \(answer.status): \(text)")
            #expect(answer.status != .internalServerError, "\(type(of: error)) → 500")
        }
        // The data error the caller caused is theirs (400), not the server's.
        #expect(GatewayError(mapping: ReportError(.database, "x", underlying: leaky)).status == .badRequest)
        #expect(GatewayError(mapping: AuditError(.database, "x", underlying: leaky)).status == .badRequest)
    }

    @Test("the callback limiter: a flood of fresh addresses past its memory bound does not reopen a processor's full window")
    func limiterFloodKeepsFullWindows() {
        let limiter = CallbackRateLimiter(limit: 3)
        let processor = UUID().uuidString.lowercased()
        for index in 0..<3 { #expect(limiter.admit(processor: processor, address: "198.51.100.\(index)") == nil) }
        #expect(limiter.admit(processor: processor, address: "198.51.100.9") != nil)
        // An attacker with many addresses (an IPv6 /64 is plenty) names the same processor from each:
        // every attempt is refused, and together they fill the table past its bound.
        var admitted = 0
        for index in 0..<(CallbackRateLimiter.maxKeys + 10) {
            if limiter.admit(processor: processor, address: "2001:db8::\(String(index, radix: 16))") == nil { admitted += 1 }
        }
        // Before the fix the table was wiped at its bound and the processor's window reopened: 3 more unsealings.
        #expect(admitted == 0)
        for index in 0..<5 {
            #expect(limiter.admit(processor: processor, address: "2001:db8:1::\(index)") != nil, "attempt \(index) after the flood")
        }
    }

    @Test("the callback limiter counts an IPv6 client by its /64, and X-Forwarded-For from an untrusted peer names no one")
    func limiterAddressKeys() {
        #expect(PrivacyRoutes.limiterAddress("2001:db8:1:2:aaaa::1") == PrivacyRoutes.limiterAddress("2001:db8:1:2:bbbb::2"))
        #expect(PrivacyRoutes.limiterAddress("2001:db8:1:2::1") != PrivacyRoutes.limiterAddress("2001:db8:1:3::1"))
        #expect(PrivacyRoutes.limiterAddress("198.51.100.7") == "198.51.100.7")
        #expect(PrivacyRoutes.limiterAddress("::ffff:198.51.100.7") == "198.51.100.7")
        #expect(PrivacyRoutes.limiterAddress(nil) == nil)
        // Spoofed hops: without trusted proxies the peer is the client; behind one, only the hop the proxy appended counts.
        let spoofed: HTTPFields = [HTTPField.Name("X-Forwarded-For")!: "203.0.113.1, 203.0.113.2"]
        #expect(TrustedProxies.none.clientAddress(peer: "198.51.100.7", headers: spoofed) == "198.51.100.7")
        let proxies = try! TrustedProxies(parsing: "10.0.0.0/8")
        #expect(proxies.clientAddress(peer: "10.0.0.1", headers: spoofed) == "203.0.113.2")
        #expect(proxies.clientAddress(peer: "198.51.100.7", headers: spoofed) == "198.51.100.7")
    }

    @Test("the callback route: X-Forwarded-For changed on every attempt does not dodge the limit")
    func callbackSpoofedForwardingIsLimited() async throws {
        try await PrivacyRouteFixture.run(configure: { $0.processorCallbacksPerMinute = 3 }) { f in
            var statuses: [HTTPResponse.Status] = []
            for index in 0..<6 {
                let headers: HTTPFields = [
                    HTTPField.Name("X-Forwarded-For")!: "203.0.113.\(index)", .contentType: "application/json",
                    HTTPField.Name("X-PGW-Timestamp")!: String(Int(Date().timeIntervalSince1970)),
                    HTTPField.Name("X-PGW-Request-Id")!: UUID().uuidString.lowercased(),
                    HTTPField.Name("X-PGW-Signature")!: "v2=" + String(repeating: "0", count: 64),
                ]
                statuses.append(
                    try await f.client.execute(
                        uri: "/v1/privacy/processors/\(UUID().uuidString.lowercased())/callback", method: .post, headers: headers,
                        body: ByteBuffer(string: #"{"status": "done"}"#)
                    ) { $0.status })
            }
            #expect(statuses.prefix(3).allSatisfy { $0 == .unauthorized }, "\(statuses)")
            #expect(statuses.suffix(3).allSatisfy { $0 == .tooManyRequests }, "\(statuses)")
        }
    }
}
