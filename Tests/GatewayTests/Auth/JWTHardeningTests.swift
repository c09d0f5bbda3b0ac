import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import Policy
import Postgres
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// Issue 12, item 10: `exp` required, a bounded leeway, per-tenant `aud`/`iss`, and revocation
/// that reaches every gateway process at once.
@Suite("Auth: JWT hardening and immediate revocation")
struct JWTHardeningTests {
    private static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }

    @Test("a token without exp is refused with 401 PGRST303 unless explicitly allowed")
    func missingExpiry() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            var claims = Tokens.user()
            claims.removeValue(forKey: "exp")
            let token = try await Tokens.hs256(claims: claims, secret: acme.secret!)
            await expectAuthError(401, "PGRST303", message: "The JWT has no 'exp' claim", secrets: [token, acme.secret]) {
                _ = try await f.authenticate(acme, token)
            }
            // Only an explicit setting accepts it.
            var options = RequestAuthenticator.Options()
            options.requiresJWTExpiry = false
            let lenient = try RequestAuthenticator(pool: f.gateway, rootKey: f.rootKey, keyring: f.keyring, options: options)
            #expect(try await lenient.authenticate(apikey: acme.apikey, authorization: "Bearer \(token)").role == .authenticated)
        }
    }

    @Test("a token expired beyond the leeway is refused; the leeway is configurable and defaults to 30 s")
    func leeway() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let beyond = try await Tokens.hs256(claims: Tokens.user(extra: ["exp": .int(Self.now() - 45)]), secret: acme.secret!)
            await expectAuthError(401, "PGRST303", message: "JWT expired") { _ = try await f.authenticate(acme, beyond) }
            let within = try await Tokens.hs256(claims: Tokens.user(extra: ["exp": .int(Self.now() - 10)]), secret: acme.secret!)
            #expect(try await f.authenticate(acme, within).role == .authenticated)

            var options = RequestAuthenticator.Options()
            options.jwtLeewaySeconds = 0
            let strict = try RequestAuthenticator(pool: f.gateway, rootKey: f.rootKey, keyring: f.keyring, options: options)
            await expectAuthError(401, "PGRST303", message: "JWT expired") {
                _ = try await strict.authenticate(apikey: acme.apikey, authorization: "Bearer \(within)")
            }
            // More than 30 s is never allowed, whatever the option says.
            options.jwtLeewaySeconds = 3600
            let capped = try RequestAuthenticator(pool: f.gateway, rootKey: f.rootKey, keyring: f.keyring, options: options)
            await expectAuthError(401, "PGRST303", message: "JWT expired") {
                _ = try await capped.authenticate(apikey: acme.apikey, authorization: "Bearer \(beyond)")
            }
        }
    }

    @Test("with a tenant audience and issuer set, a token with another or no aud/iss is refused with 401 PGRST303")
    func audienceAndIssuer() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let globex = try await f.tenant("globex")
            let registry = TenantRegistry(pool: f.owner, auditing: .disabled, keyring: f.keyring)
            try await registry.setJWT(tenant: acme.id, secret: nil, jwks: nil, audience: "acme-api", issuer: "https://auth.acme.test")
            f.authenticator.invalidateTenant(acme.id)

            func token(_ tenant: TestTenant, _ extra: [String: JSONValue]) async throws -> String {
                try await Tokens.hs256(claims: Tokens.user(extra: extra), secret: tenant.secret!)
            }
            let good = try await token(acme, ["aud": "acme-api", "iss": "https://auth.acme.test"])
            #expect(try await f.authenticate(acme, good).role == .authenticated)
            let inList = try await token(acme, ["aud": .array(["other", "acme-api"]), "iss": "https://auth.acme.test"])
            #expect(try await f.authenticate(acme, inList).role == .authenticated)

            let refused: [([String: JSONValue], String)] = [
                (["aud": "authenticated", "iss": "https://auth.acme.test"], "JWT not in audience"),
                (["aud": .null, "iss": "https://auth.acme.test"], "JWT not in audience"),
                (["aud": "acme-api", "iss": "https://evil.test"], "JWT issuer not accepted"),
                (["aud": "acme-api"], "JWT issuer not accepted"),
            ]
            for (extra, message) in refused {
                let bad = try await token(acme, extra)
                await expectAuthError(401, "PGRST303", message: message, secrets: [bad, acme.secret]) {
                    _ = try await f.authenticate(acme, bad)
                }
            }
            // Another tenant without pins is not affected.
            #expect(try await f.authenticate(globex, try await token(globex, ["aud": "anything"])).role == .authenticated)
            // An empty value removes the pin.
            try await registry.setJWT(tenant: acme.id, secret: nil, jwks: nil, audience: "", issuer: "")
            f.authenticator.invalidateTenant(acme.id)
            #expect(try await f.authenticate(acme, try await token(acme, ["aud": "authenticated"])).role == .authenticated)
            await #expect(throws: TenancyError.self) {
                try await registry.setJWT(tenant: acme.id, secret: nil, jwks: nil, audience: " padded ")
            }
        }
    }

    @Test("a revoked key is refused at once over HTTP by two gateways that had it cached; a refused write changes nothing")
    func revocationAcrossGateways() async throws {
        try await AuthFixture.run(options: .init(serviceKeyTTL: .seconds(600))) { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let acme = try await f.tenant("acme", scopes: [.dataRead, .dataWrite, .auditRead])
            let readiness = try Readiness(pool: f.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies)
            let second = try RequestAuthenticator(
                pool: f.gateway, rootKey: f.rootKey, keyring: f.keyring, options: .init(serviceKeyTTL: .seconds(600)))
            // Two gateways: the same database, each with its own authenticator and caches.
            let gateways = [f.authenticator, second].map { authenticator in
                GatewayServices(
                    pool: f.gateway, policies: policies, authenticator: authenticator, readiness: readiness,
                    audit: AuditAppender(pool: f.gateway))
            }
            let user = UUID()
            let jwt = try await Tokens.hs256(claims: Tokens.user(user), secret: acme.secret!)
            let headers: HTTPFields = [.apikey: acme.apikey, .authorization: "Bearer \(jwt)", .contentType: "application/json"]
            let body =
                #"{"name": "after revocation", "type": "website", "is_public": false, "user_id": "\#(user.uuidString.lowercased())"}"#

            var claims = Tokens.user(user)
            claims.removeValue(forKey: "exp")
            let eternal = try await Tokens.hs256(claims: claims, secret: acme.secret!)

            // Both gateways have the key cached.
            for services in gateways {
                try await Application(router: GatewayApplication.router(services: services)).test(.router) { client in
                    // A token without exp: PostgREST's error document, 401.
                    let (refused, text) = try await client.execute(
                        uri: "/rest/v1/projects?select=id", method: .get,
                        headers: [.apikey: acme.apikey, .authorization: "Bearer \(eternal)"]
                    ) { ($0.status, String(buffer: $0.body)) }
                    #expect(refused == .unauthorized)
                    let error = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
                    #expect(error["code"] as? String == "PGRST303" && error["message"] as? String == "The JWT has no 'exp' claim")
                    #expect(Set(error.keys) == ["code", "message", "details", "hint"])

                    let status = try await client.execute(uri: "/rest/v1/projects?select=id", method: .get, headers: headers) { $0.status }
                    #expect(status == .ok)
                    let audit = try await client.execute(uri: "/v1/audit/events", method: .get, headers: headers) { $0.status }
                    #expect(audit == .ok)
                }
            }
            // privacyctl servicekey revoke's code path, from its own connection.
            try await ServiceKeyRegistry(pool: f.owner, rootKey: f.rootKey).revoke(id: acme.keyID)
            for services in gateways {
                try await Application(router: GatewayApplication.router(services: services)).test(.router) { client in
                    for uri in ["/rest/v1/projects?select=id", "/v1/audit/events"] {
                        let (status, text) = try await client.execute(uri: uri, method: .get, headers: headers) {
                            ($0.status, String(buffer: $0.body))
                        }
                        #expect(status == .unauthorized, "\(uri)")
                        let error = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
                        #expect(error["code"] as? String == "PGW401")
                        #expect(error["message"] as? String == "Invalid API key")
                        #expect(!text.contains(acme.apikey))
                    }
                    let write = try await client.execute(
                        uri: "/rest/v1/projects", method: .post, headers: headers, body: ByteBuffer(string: body)
                    ) { $0.status }
                    #expect(write == .unauthorized)
                }
            }
            let written = try await f.owner.query("SELECT count(*) AS n FROM public.projects WHERE name = 'after revocation'")
                .first!.decode("n", as: Int.self)
            #expect(written == 0)
        }
    }
}
