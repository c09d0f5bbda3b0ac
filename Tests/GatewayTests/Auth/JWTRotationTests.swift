import Audit
import Config
import Crypto
import CryptoExtras
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import JWTKit
import Keyring
import Policy
import Postgres
import Sodium
import Synchronization
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// Issue 17, item 1: tenant JWT settings through `/v1/admin` — HS256 secret rotation with an
/// overlap window, RS256/ES256 keys from a JWKS URL (cached, refreshed on an unknown `kid` with a
/// rate limit, failing closed when the JWKS is down past expiry), and no algorithm confusion.
@Suite("Tenant JWT settings: secret rotation with overlap, JWKS URL, no algorithm confusion")
struct JWTRotationTests {
    struct Answer {
        let status: HTTPResponse.Status
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    /// The gateway's router on the fixture's database, with a keyring and an operator tenant.
    static func services(_ f: AuthFixture, operatorTenant: UUID?) throws -> GatewayServices {
        let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
        var services = GatewayServices(
            pool: f.gateway, policies: policies, authenticator: f.authenticator,
            readiness: try Readiness(pool: f.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
            audit: AuditAppender(pool: f.gateway))
        services.operatorTenant = operatorTenant
        services.keyring = f.keyring
        return services
    }

    typealias Call = @Sendable (HTTPRequest.Method, String, String?, String?, String?) async throws -> Answer

    static func withRouter(_ services: GatewayServices, _ body: @Sendable (Call) async throws -> Void) async throws {
        try await Application(router: GatewayApplication.router(services: services)).test(.router) { client in
            try await body { method, uri, key, bearer, text in
                var headers: HTTPFields = [:]
                if let key { headers[.apikey] = key }
                if let bearer { headers[.authorization] = "Bearer \(bearer)" }
                return try await client.execute(uri: uri, method: method, headers: headers, body: text.map { ByteBuffer(string: $0) }) {
                    Answer(status: $0.status, body: String(buffer: $0.body))
                }
            }
        }
    }

    /// A REST read as the token's user: 200 when the token verifies.
    static func read(_ call: Call, _ tenant: TestTenant, _ token: String) async throws -> Answer {
        try await call(.get, "/rest/v1/projects?select=id", tenant.apikey, token, nil)
    }

    // MARK: - HS256 rotation

    @Test(
        "a rotated HS256 secret keeps verifying until its overlap ends, then is refused and dropped; bad values are 400; nothing in plaintext"
    )
    func secretRotation() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme", scopes: [.admin, .dataRead])
            let globex = try await f.tenant("globex", scopes: [.admin, .dataRead])
            let services = try Self.services(f, operatorTenant: nil)
            let path = "/v1/admin/tenants/\(acme.id.lowercasedString)/jwt"
            let user = UUID()
            let oldToken = try await Tokens.hs256(claims: Tokens.user(user), secret: acme.secret!)
            let newSecret = AuthFixture.secret(), thirdSecret = AuthFixture.secret(), fourth = AuthFixture.secret()
            let newToken = try await Tokens.hs256(claims: Tokens.user(user), secret: newSecret)
            let thirdToken = try await Tokens.hs256(claims: Tokens.user(user), secret: thirdSecret)

            try await Self.withRouter(services) { call in
                // Bad input: 400 with the reason, nothing changed.
                for (body, reason) in [
                    (#"{"secret": "short"}"#, "at least 32"),
                    (#"{"secret_overlap_seconds": 60}"#, "new secret only"),
                    (#"{"secret": "\#(newSecret)", "secret_overlap_seconds": -1}"#, "0 to 2592000"),
                    (#"{"secret": "\#(newSecret)", "secret_overlap_seconds": 2592001}"#, "0 to 2592000"),
                    (#"{"secret": "\#(newSecret)", "secret_overlap_seconds": "an hour"}"#, "secret_overlap_seconds"),
                    (#"{"secret": "\#(newSecret)", "overlap": 5}"#, "unknown field"),
                ] {
                    let answer = try await call(.put, path, acme.apikey, nil, body)
                    #expect(answer.status == .badRequest && answer.body.contains(reason), "\(body): \(answer.status) \(answer.body)")
                    #expect(!answer.body.contains(newSecret))
                }
                // Another tenant's admin key: 404, as for a tenant that does not exist.
                #expect(try await call(.put, path, globex.apikey, nil, #"{"secret": "\#(newSecret)"}"#).status == .notFound)
                #expect(try await Self.read(call, acme, oldToken).status == .ok)
                #expect(try await Self.read(call, acme, newToken).status == .unauthorized)

                // Rotation with the default overlap (an hour): old and new tokens both verify.
                let rotated = try await call(.put, path, acme.apikey, nil, #"{"secret": "\#(newSecret)"}"#)
                #expect(rotated.status == .ok, "\(rotated.body)")
                #expect(rotated.json["previous_jwt_secret_expires_at"] is String, "\(rotated.body)")
                #expect(!rotated.body.contains(newSecret) && !rotated.body.contains(acme.secret!))
                #expect(try await Self.read(call, acme, oldToken).status == .ok)
                #expect(try await Self.read(call, acme, newToken).status == .ok)
                // Either secret of acme means nothing to globex.
                #expect(try await Self.read(call, globex, oldToken).status == .unauthorized)
                #expect(try await Self.read(call, globex, newToken).status == .unauthorized)

                // Both are sealed at rest: no column holds either in plaintext.
                for secret in [acme.secret!, newSecret] {
                    let found = try await PlaintextAtRestTests.scan(f.owner, for: secret)
                    #expect(found.hits.isEmpty, "secret found in \(found.hits)")
                }
                // A KEK rotation rewraps both; the old KEK retires; both still verify.
                let report = try await f.keyring.rotateTenantKey(acme.id, pool: f.owner)
                #expect(report.rewrappedTenantSecrets == 2)
                #expect(report.retiredVersions == report.fromVersions)
                let versions = try await f.owner.query(
                    "SELECT jwt_secret_kek_version AS a, jwt_previous_secret_kek_version AS b FROM public.tenants WHERE id = $1",
                    [acme.id]
                ).first!
                #expect(try versions.decode("a", as: Int.self) == report.toVersion)
                #expect(try versions.decode("b", as: Int.self) == report.toVersion)
                f.authenticator.invalidateTenant(acme.id)
                #expect(try await Self.read(call, acme, oldToken).status == .ok)
                #expect(try await Self.read(call, acme, newToken).status == .ok)

                // The window ends (moved into the past, as time would): the old secret is refused and
                // the gateway drops it from the row; the new one goes on.
                try await f.owner.query(
                    "UPDATE public.tenants SET jwt_previous_secret_expires_at = now() - interval '1 second' WHERE id = $1", [acme.id])
                f.authenticator.invalidateTenant(acme.id)  // as CacheInvalidationService does on the trigger's row
                let refused = try await Self.read(call, acme, oldToken)
                #expect(refused.status == .unauthorized && refused.json["code"] as? String == "PGRST301", "\(refused.body)")
                #expect(try await Self.read(call, acme, newToken).status == .ok)
                let dropped = try await f.owner.query(
                    "SELECT jwt_previous_secret_sealed IS NULL AND jwt_previous_secret_expires_at IS NULL AS gone FROM public.tenants WHERE id = $1",
                    [acme.id]
                ).first!.decode("gone", as: Bool.self)
                #expect(dropped)

                // Overlap 0 (a leaked secret): the current one stops at once.
                let immediate = try await call(.put, path, acme.apikey, nil, #"{"secret": "\#(thirdSecret)", "secret_overlap_seconds": 0}"#)
                #expect(immediate.status == .ok && immediate.json["previous_jwt_secret_expires_at"] is NSNull, "\(immediate.body)")
                #expect(try await Self.read(call, acme, newToken).status == .unauthorized)
                #expect(try await Self.read(call, acme, thirdToken).status == .ok)

                // A one-second window ends on its own: the cached keys are read again when it ends,
                // with no invalidation from outside.
                let short = try await call(.put, path, acme.apikey, nil, #"{"secret": "\#(fourth)", "secret_overlap_seconds": 1}"#)
                #expect(short.status == .ok)
                let fourthToken = try await Tokens.hs256(claims: Tokens.user(user), secret: fourth)
                #expect(try await Self.read(call, acme, fourthToken).status == .ok)  // loads the keys (and the window) into the cache
                while try await f.owner.query(
                    "SELECT jwt_previous_secret_expires_at > now() AS open FROM public.tenants WHERE id = $1", [acme.id]
                ).first!.decodeIfPresent("open", as: Bool.self) == true {
                    try await Task.sleep(for: .milliseconds(200))
                }
                #expect(try await Self.read(call, acme, thirdToken).status == .unauthorized)
            }

            // Audited in acme's chain, the overlap recorded, never a secret.
            let entries = try await f.owner.query(
                "SELECT details::text AS d FROM public.audit_events WHERE tenant_id = $1 AND action = 'tenant.jwt_updated' ORDER BY seq",
                [acme.id]
            ).rows.map { try $0.decode("d", as: String.self) }
            #expect(entries.count == 3)
            #expect(entries.first?.contains("\"secret_overlap_seconds\": 3600") == true, "\(entries)")
            for entry in entries {
                for secret in [acme.secret!, newSecret, thirdSecret, fourth] { #expect(!entry.contains(secret)) }
            }
        }
    }

    // MARK: - JWKS URL

    /// A JWK Set server on 127.0.0.1 for the tests: sets by name, a switch to answer 503, a fetch count.
    final class JWKSServer: Sendable {
        struct State {
            var sets: [String: [JSONValue]] = [:]
            var down = false
            var fetches: [String: Int] = [:]
        }
        let state = Mutex(State())

        func publish(_ name: String, _ keys: [JSONValue]) { state.withLock { $0.sets[name] = keys } }
        func setDown(_ down: Bool) { state.withLock { $0.down = down } }
        func fetches(_ name: String) -> Int { state.withLock { $0.fetches[name, default: 0] } }

        func run(_ body: @Sendable (Int) async throws -> Void) async throws {
            let router = Router()
            router.get("/jwks/:name") { _, context -> Response in
                let name = context.parameters.get("name") ?? ""
                let (down, keys) = self.state.withLock { state -> (Bool, [JSONValue]?) in
                    state.fetches[name, default: 0] += 1
                    return (state.down, state.sets[name])
                }
                if down { return Response(status: .serviceUnavailable) }
                guard let keys else { return Response(status: .notFound) }
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: JSONValue.object(["keys": .array(keys)]).jsonText)))
            }
            try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
                .test(.live) { client in try await body(client.port!) }
        }
    }

    @Test(
        "JWKS URL: bad URLs are 400; keys are fetched once and cached; an unknown kid refetches at most once per interval; down past expiry fails closed with 401"
    )
    func jwksURL() async throws {
        let clock = TestClock()
        var options = RequestAuthenticator.Options()
        options.jwksAllowsInsecureLoopback = true
        options.clock = { clock.now }
        try await AuthFixture.run(options: options) { f in
            let acme = try await f.tenant("acme", secret: nil, scopes: [.admin, .dataRead])
            let services = try Self.services(f, operatorTenant: nil)
            let path = "/v1/admin/tenants/\(acme.id.lowercasedString)/jwt"
            let server = JWKSServer()
            let k1 = try JWTKit.Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
            let k2 = ES256PrivateKey()
            server.publish("acme", [try rsaJWK(k1, kid: "k1")])
            let user = UUID()
            @Sendable func token(_ kid: String, rsa key: JWTKit.Insecure.RSA.PrivateKey) async throws -> String {
                try Tokens.make(
                    header: ["alg": "RS256", "kid": .string(kid)], claims: Tokens.user(user), signer: try await Tokens.signer(rsa: key))
            }
            let t1 = try await token("k1", rsa: k1)

            try await server.run { port in
                let url = "http://127.0.0.1:\(port)/jwks/acme"
                try await Self.withRouter(services) { call in
                    for (bad, reason) in [
                        ("http://auth.example.com/jwks.json", "only https"),
                        ("ftp://auth.example.com/jwks.json", "only https"),
                        ("https://user:pw@auth.example.com/jwks.json", "credentials"),
                        ("https://auth.example.com/jwks.json#x", "fragment"),
                        ("https://auth.example.com/a b", "spaces"),
                        ("jwks.json", "absolute"),
                        ("http://127.evil.example/jwks.json", "only https"),
                        // The gateway fetches what a tenant's admin names: never the metadata
                        // service or the deployment's own network, in any spelling (OutboundHost).
                        ("https://169.254.169.254/latest/meta-data", "internal address"),
                        ("https://10.0.0.7/jwks.json", "internal address"),
                        ("https://[fe80::1]/jwks.json", "internal address"),
                        ("https://[::ffff:169.254.169.254]/jwks.json", "internal address"),
                        ("https://2852039166/jwks.json", "internal address"),
                        ("https://metadata.google.internal/jwks.json", "internal address"),
                        ("https://auth.example.com/" + String(repeating: "a", count: 2000), "longer than"),
                    ] {
                        let answer = try await call(.put, path, acme.apikey, nil, #"{"jwks_url": "\#(bad)"}"#)
                        #expect(answer.status == .badRequest && answer.body.contains(reason), "\(bad): \(answer.body)")
                    }
                    // Before any URL: RS256 tokens have no key.
                    #expect(try await Self.read(call, acme, t1).status == .unauthorized)
                    let set = try await call(.put, path, acme.apikey, nil, #"{"jwks_url": "\#(url)"}"#)
                    #expect(set.status == .ok && set.json["jwks_url"] as? String == url, "\(set.body)")

                    // Fetched once, then served from the cache.
                    #expect(try await Self.read(call, acme, t1).status == .ok)
                    #expect(try await Self.read(call, acme, try await token("k1", rsa: k1)).status == .ok)
                    #expect(server.fetches("acme") == 1)

                    // Unknown kids: one refetch, then none within the interval (no amplification).
                    let stranger = try JWTKit.Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
                    for kid in ["zz1", "zz2", "zz3"] {
                        #expect(try await Self.read(call, acme, try await token(kid, rsa: stranger)).status == .unauthorized)
                    }
                    #expect(server.fetches("acme") == 1, "the first fetch was just now: inside the refresh interval")

                    // The provider adds a key: a token with its kid refetches once the interval passed.
                    server.publish("acme", [try rsaJWK(k1, kid: "k1"), ecJWK(k2, kid: "k2")])
                    let t2 = try Tokens.make(
                        header: ["alg": "ES256", "kid": "k2"], claims: Tokens.user(user), signer: try await Tokens.signer(es256: k2))
                    clock.advance(.seconds(31))
                    #expect(try await Self.read(call, acme, t2).status == .ok)
                    #expect(server.fetches("acme") == 2)
                    #expect(try await Self.read(call, acme, try await token("zz4", rsa: stranger)).status == .unauthorized)
                    #expect(server.fetches("acme") == 2)

                    // Down: stale keys keep serving until they expire (an hour after the last fetch) …
                    server.setDown(true)
                    clock.advance(.seconds(600))
                    f.authenticator.invalidateTenant(acme.id)  // drop verified tokens: each read verifies again
                    #expect(try await Self.read(call, acme, try await token("k1", rsa: k1)).status == .ok)
                    // … then the tenant's tokens fail closed: 401, never a 5xx.
                    clock.advance(.seconds(3600))
                    f.authenticator.invalidateTenant(acme.id)
                    let closed = try await Self.read(call, acme, try await token("k1", rsa: k1))
                    #expect(closed.status == .unauthorized && closed.json["code"] as? String == "PGRST301", "\(closed.body)")
                    #expect((closed.json["details"] as? String)?.contains("JWKS") == true, "\(closed.body)")
                    // Back up: the next fetch (after the interval) restores them.
                    server.setDown(false)
                    clock.advance(.seconds(31))
                    #expect(try await Self.read(call, acme, try await token("k1", rsa: k1)).status == .ok)

                    // Removing the URL: RS256 tokens have no key again.
                    #expect(try await call(.put, path, acme.apikey, nil, #"{"jwks_url": ""}"#).json["jwks_url"] is NSNull)
                    #expect(try await Self.read(call, acme, try await token("k1", rsa: k1)).status == .unauthorized)
                }
            }
            // The URL is recorded in acme's trail (it is not secret).
            let recorded = try await f.owner.query(
                "SELECT count(*)::int AS n FROM public.audit_events WHERE tenant_id = $1 AND action = 'tenant.jwt_updated' AND details ? 'jwks_url'",
                [acme.id]
            ).first!.decode("n", as: Int.self)
            #expect(recorded == 2)
        }
    }

    @Test(
        "algorithm confusion is impossible: HS256 signed with the RSA public key, alg none, an oct key in a JWKS, another tenant's kid — all 401"
    )
    func algorithmConfusion() async throws {
        var options = RequestAuthenticator.Options()
        options.jwksAllowsInsecureLoopback = true
        try await AuthFixture.run(options: options) { f in
            // acme has an HS256 secret and a JWKS; globex has its own JWKS.
            let acme = try await f.tenant("acme", scopes: [.admin, .dataRead])
            let globex = try await f.tenant("globex", secret: nil, scopes: [.admin, .dataRead])
            let services = try Self.services(f, operatorTenant: nil)
            let server = JWKSServer()
            let acmeKey = try JWTKit.Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
            let globexKey = try JWTKit.Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
            let symmetric = AuthFixture.secret()
            server.publish(
                "acme",
                [
                    try rsaJWK(acmeKey, kid: "acme-1"),
                    // A symmetric key published at a URL must never become an HMAC key.
                    .object(["kty": "oct", "kid": "sym", "k": .string(Base64URL.encode(Array(symmetric.utf8)))]),
                ])
            server.publish("globex", [try rsaJWK(globexKey, kid: "globex-1")])
            let user = UUID()

            try await server.run { port in
                try await Self.withRouter(services) { call in
                    for (tenant, name) in [(acme, "acme"), (globex, "globex")] {
                        let answer = try await call(
                            .put, "/v1/admin/tenants/\(tenant.id.lowercasedString)/jwt", tenant.apikey, nil,
                            #"{"jwks_url": "http://127.0.0.1:\#(port)/jwks/\#(name)"}"#)
                        #expect(answer.status == .ok, "\(answer.body)")
                    }
                    let good = try Tokens.make(
                        header: ["alg": "RS256", "kid": "acme-1"], claims: Tokens.user(user), signer: try await Tokens.signer(rsa: acmeKey))
                    #expect(try await Self.read(call, acme, good).status == .ok)

                    let primitives = try acmeKey.publicKey.getKeyPrimitives()
                    var forged: [String] = []
                    // HS256 "signed" with the RSA public key (PEM, DER modulus), with and without its kid.
                    for material in [acmeKey.publicKey.pemRepresentation, String(decoding: primitives.modulus, as: UTF8.self)] {
                        for header: [String: JSONValue] in [["alg": "HS256"], ["alg": "HS256", "kid": "acme-1"]] {
                            let signer = material.utf8.count >= 32 ? try await Tokens.hs256(material) : nil
                            forged.append(try Tokens.make(header: header, claims: Tokens.user(user), signer: signer))
                        }
                    }
                    // alg none, with the key's kid and no signature.
                    forged.append(try Tokens.make(header: ["alg": "none", "kid": "acme-1"], claims: Tokens.user(user), signer: nil))
                    // The oct key's secret as an HS256 secret, naming it.
                    forged.append(
                        try Tokens.make(
                            header: ["alg": "HS256", "kid": "sym"], claims: Tokens.user(user), signer: try await Tokens.hs256(symmetric)))
                    // globex's own key and kid, presented with acme's service key; and the reverse.
                    let globexToken = try Tokens.make(
                        header: ["alg": "RS256", "kid": "globex-1"], claims: Tokens.user(user),
                        signer: try await Tokens.signer(rsa: globexKey))
                    forged.append(globexToken)
                    // acme's RSA signature relabelled as another algorithm.
                    let parts = good.split(separator: ".")
                    forged.append(Tokens.part(["alg": "ES256", "kid": "acme-1"]) + "." + parts[1] + "." + parts[2])
                    forged.append(Tokens.part(["alg": "RS384", "kid": "acme-1"]) + "." + parts[1] + "." + parts[2])
                    for token in forged {
                        let answer = try await Self.read(call, acme, token)
                        #expect(answer.status == .unauthorized, "\(token.prefix(60)): \(answer.body)")
                        #expect(answer.json["code"] as? String == "PGRST301")
                    }
                    #expect(try await Self.read(call, globex, globexToken).status == .ok)
                    #expect(try await Self.read(call, globex, good).status == .unauthorized)
                }
            }
        }
    }

    @Test("privacyctl tenant set-jwt: overlap and JWKS URL over HTTP (no database URL, no root key) and directly; bad values refused")
    func privacyctlSetJWT() async throws {
        try await GatewayProcessFixture.run("set-jwt") { f in
            let acme = try await f.tenants.create(name: "acme", jwtSecret: AuthFixture.secret())
            let (_, acmeKey) = try await f.keys.create(tenant: acme.id, scopes: [.admin], name: "acme-admin")
            let gateway = try await f.startGateways(1, poolSize: 4)[0]
            defer { _ = gateway.stop() }
            let id = acme.id.lowercasedString
            let http = ["PRIVACY_ADDR": "127.0.0.1:\(gateway.port)", "PRIVACY_TOKEN": acmeKey]
            let direct = ["DATABASE_URL": TestDatabase.url(f.owner), "PRIVACY_ROOT_KEY_FILE": f.rootKeyFile]

            for (mode, environment) in [("http", http), ("direct", direct)] {
                let rotated = try Subprocess.runProduct(
                    "privacyctl",
                    ["tenant", "set-jwt", "--tenant", id, "--secret=" + AuthFixture.secret(), "--secret-overlap-seconds", "600", "--json"],
                    environment: environment)
                #expect(rotated.status == 0, "\(mode): \(rotated.stderr)")
                #expect(jsonObject(rotated.stdout)["previous_jwt_secret_expires_at"] is String, "\(mode): \(rotated.stdout)")
                let jwks = try Subprocess.runProduct(
                    "privacyctl",
                    ["tenant", "set-jwt", "--tenant", id, "--jwks-url", "https://auth.example.com/\(mode)/jwks.json", "--json"],
                    environment: environment)
                #expect(jwks.status == 0, "\(mode): \(jwks.stderr)")
                #expect(jsonObject(jwks.stdout)["jwks_url"] as? String == "https://auth.example.com/\(mode)/jwks.json")
                let plain = try Subprocess.runProduct(
                    "privacyctl", ["tenant", "set-jwt", "--tenant", id, "--jwks-url", "http://auth.example.com/jwks.json"],
                    environment: environment)
                #expect(plain.status != 0 && plain.stderr.contains("only https"), "\(mode): \(plain.stderr)")
                let tooLong = try Subprocess.runProduct(
                    "privacyctl",
                    ["tenant", "set-jwt", "--tenant", id, "--secret=" + AuthFixture.secret(), "--secret-overlap-seconds", "99999999"],
                    environment: environment)
                #expect(tooLong.status != 0 && tooLong.stderr.contains("2592000"), "\(mode): \(tooLong.stderr)")
                let alone = try Subprocess.runProduct(
                    "privacyctl", ["tenant", "set-jwt", "--tenant", id, "--secret-overlap-seconds", "60"], environment: environment)
                #expect(alone.status == 2, "\(mode): \(alone.stderr)")
            }
            // Over HTTP the secret never needed the root key on the operator's side; both modes audited.
            let updates = try await f.ownerPool.query(
                "SELECT count(*)::int AS n FROM public.audit_events WHERE tenant_id = $1 AND action = 'tenant.jwt_updated'", [acme.id]
            ).first!.decode("n", as: Int.self)
            #expect(updates == 4)
        }
    }
}
