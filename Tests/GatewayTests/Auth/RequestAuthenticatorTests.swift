import Crypto
import CryptoExtras
import Foundation
import JSON
import JWTKit
import Postgres
import Sodium
import Tenancy
import TestSupport
import Testing

@testable import Gateway

@Suite("Auth: request authentication (apikey + JWT)")
struct RequestAuthenticatorTests {
    // MARK: Accepted

    @Test("a valid HS256 token authenticates its user; the claims reach auth.uid() and auth.role()")
    func validHS256() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let user = UUID()
            let token = try await Tokens.hs256(claims: Tokens.user(user, extra: ["app_metadata": ["plan": "pro"]]), secret: acme.secret!)
            let request = try await f.authenticate(acme, token)
            #expect(request.tenantID == acme.id)
            #expect(request.serviceKey.id == acme.keyID)
            #expect(request.role == .authenticated)
            #expect(request.userID == user)
            #expect(request.claims["app_metadata"] == ["plan": "pro"])
            #expect(request.authContext.userID == user)
            #expect(request.authContext.tenantID == acme.id)

            // The claims text is what the request transaction hands to Postgres.
            let results = try await f.gateway.withConnection { connection in
                try await connection.pipeline([
                    Statement("SELECT set_config('request.jwt.claims', $1, true)", [request.claimsJSON]),
                    Statement("SELECT auth.uid() AS uid, auth.role() AS role, auth.jwt() -> 'app_metadata' ->> 'plan' AS plan"),
                ])
            }
            let row = try #require(results[1].first)
            #expect(try row.decode("uid", as: UUID.self) == user)
            #expect(try row.decode("role", as: String.self) == "authenticated")
            #expect(try row.decode("plan", as: String.self) == "pro")
        }
    }

    @Test("no Authorization header is the anon role with no user")
    func anonymous() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let request = try await f.authenticate(acme, nil)
            #expect(request.role == .anon)
            #expect(request.userID == nil)
            #expect(request.claims == ["role": "anon"])
            #expect(request.claimsJSON == #"{"role":"anon"}"#)
            #expect(request.tenantID == acme.id)
        }
    }

    @Test("service_role and anon tokens; a token without role is anon; the Bearer scheme is case-insensitive")
    func otherRoles() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let now = Int64(Date().timeIntervalSince1970)
            let service = try await Tokens.hs256(claims: ["role": "service_role", "exp": .int(now + 60)], secret: acme.secret!)
            let request = try await f.authenticate(acme, service)
            #expect(request.role == .serviceRole)
            #expect(request.userID == nil)

            let anon = try await Tokens.hs256(claims: ["role": "anon", "exp": .int(now + 60)], secret: acme.secret!)
            #expect(try await f.authenticate(acme, anon).role == .anon)

            // PostgREST: no role claim means the anon role; the claims then carry it.
            let roleless = try await Tokens.hs256(claims: ["exp": .int(now + 60)], secret: acme.secret!)
            let defaulted = try await f.authenticate(acme, roleless)
            #expect(defaulted.role == .anon)
            #expect(defaulted.claims["role"] == "anon")

            let lower = try await f.authenticator.authenticate(apikey: acme.apikey, authorization: "bearer \(service)")
            #expect(lower.role == .serviceRole)
        }
    }

    @Test("exp within the 30 s clock skew is still accepted (as PostgREST)")
    func clockSkew() async throws {
        // The tokens are checked at a fixed date, so a slow machine cannot carry the first past the skew.
        let checkedAt = Date()
        var options = RequestAuthenticator.Options()
        options.wallClock = { checkedAt }
        try await AuthFixture.run(options: options) { f in
            let acme = try await f.tenant("acme")
            let now = Int64(checkedAt.timeIntervalSince1970)
            let justExpired = try await Tokens.hs256(
                claims: Tokens.user(extra: ["iat": .int(now - 20), "exp": .int(now - 10)]), secret: acme.secret!)
            #expect(try await f.authenticate(acme, justExpired).role == .authenticated)
            let almostValid = try await Tokens.hs256(
                claims: Tokens.user(extra: ["iat": .int(now), "nbf": .int(now + 10)]), secret: acme.secret!)
            #expect(try await f.authenticate(acme, almostValid).role == .authenticated)
        }
    }

    // MARK: Refused tokens

    @Test("a forged signature or a tampered payload is refused with 401 PGRST301")
    func forged() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let forged = try await Tokens.hs256(claims: Tokens.user(), secret: AuthFixture.secret())
            await expectAuthError(401, "PGRST301", message: "No suitable key or wrong key type", secrets: [forged, acme.secret]) {
                _ = try await f.authenticate(acme, forged)
            }

            // A genuine token whose payload is swapped for a more privileged one.
            let genuine = try await Tokens.hs256(claims: Tokens.user(), secret: acme.secret!)
            let parts = genuine.split(separator: ".")
            let tampered = [String(parts[0]), Tokens.part(Tokens.user(role: "service_role")), String(parts[2])].joined(separator: ".")
            await expectAuthError(401, "PGRST301", secrets: [tampered, acme.secret]) {
                _ = try await f.authenticate(acme, tampered)
            }

            // Signature bytes flipped.
            var signature = Base64URL.decode(Array(parts[2].utf8))!
            signature[0] ^= 0x01
            let flipped = parts[0] + "." + parts[1] + "." + Base64URL.encode(signature)
            await expectAuthError(401, "PGRST301", message: "No suitable key or wrong key type", secrets: [flipped]) {
                _ = try await f.authenticate(acme, flipped)
            }
        }
    }

    @Test("alg none, an unsigned token and unsupported algorithms are refused with 401 PGRST301")
    func algNone() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            for alg in ["none", "None", "NONE"] {
                let unsigned = try Tokens.make(
                    header: ["alg": .string(alg), "typ": "JWT"], claims: Tokens.user(role: "service_role"), signer: nil)
                #expect(unsigned.hasSuffix("."))
                let error = await expectAuthError(401, "PGRST301", message: "Wrong or unsupported encoding algorithm", secrets: [unsigned])
                {
                    _ = try await f.authenticate(acme, unsigned)
                }
                #expect(error?.details?.contains("alg none") == true)
            }
            // A signed-looking header with no signature at all.
            let empty = try Tokens.make(claims: Tokens.user(), signer: nil)
            await expectAuthError(401, "PGRST301", message: "No suitable key or wrong key type", secrets: [empty]) {
                _ = try await f.authenticate(acme, empty)
            }
            // HS512 with the right secret: a real signature, but not an accepted algorithm. (Signed
            // with swift-crypto: jwt-kit asserts on HS512 keys under 64 bytes.)
            let input = Tokens.part(["alg": "HS512"]) + "." + Tokens.part(Tokens.user())
            let mac = Crypto.HMAC<Crypto.SHA512>.authenticationCode(
                for: Array(input.utf8), using: SymmetricKey(data: Array(acme.secret!.utf8)))
            let strong = input + "." + Base64URL.encode(Array(mac))
            await expectAuthError(401, "PGRST301", message: "Wrong or unsupported encoding algorithm", secrets: [strong]) {
                _ = try await f.authenticate(acme, strong)
            }
            let noAlg = try Tokens.make(header: ["typ": "JWT"], claims: Tokens.user(), signer: try await Tokens.hs256(acme.secret!))
            await expectAuthError(401, "PGRST301", secrets: [noAlg]) { _ = try await f.authenticate(acme, noAlg) }
        }
    }

    @Test("expired, not yet valid, issued in the future, and non-numeric time claims: 401 PGRST303")
    func timeClaims() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let now = Int64(Date().timeIntervalSince1970)
            let cases: [([String: JSONValue], String)] = [
                (["exp": .int(now - 3600)], "JWT expired"),
                (["exp": .double(Double(now) - 31.5)], "JWT expired"),
                (["nbf": .int(now + 3600)], "JWT not yet valid"),
                (["iat": .int(now + 3600)], "JWT issued at future"),
                (["exp": "tomorrow"], "The JWT 'exp' claim must be a number"),
                (["nbf": true], "The JWT 'nbf' claim must be a number"),
                (["aud": 42], "The JWT 'aud' claim must be a string or an array of strings"),
            ]
            for (extra, message) in cases {
                let token = try await Tokens.hs256(claims: Tokens.user(extra: extra), secret: acme.secret!)
                await expectAuthError(401, "PGRST303", message: message, secrets: [token, acme.secret]) {
                    _ = try await f.authenticate(acme, token)
                }
            }
        }
    }

    @Test("malformed tokens and Authorization headers are refused with 401 PGRST301")
    func malformed() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let signer = try await Tokens.hs256(acme.secret!)
            let good = try Tokens.make(claims: Tokens.user(), signer: signer)
            let parts = good.split(separator: ".").map(String.init)
            let notJSON = Base64URL.encode(Array("not json at all".utf8))
            let cases: [(String, String)] = [
                ("abcdefghijklmnop", "Expected 3 parts in JWT; got 1"),
                (parts[0] + "." + parts[1], "Expected 3 parts in JWT; got 2"),
                (good + ".extra", "Expected 3 parts in JWT; got 4"),
                ("%%%%" + parts[0] + "." + parts[1] + "." + parts[2], "JWT couldn't be decoded"),  // bad base64 header
                (notJSON + "." + parts[1] + "." + parts[2], "JWT couldn't be decoded"),  // header not JSON
                (parts[0] + "." + parts[1] + "." + parts[2] + "*", "JWT couldn't be decoded"),  // bad base64 signature
                (String(repeating: "a", count: 20_000), "JWT couldn't be decoded"),
            ]
            for (token, message) in cases {
                await expectAuthError(401, "PGRST301", message: message, secrets: [token, acme.secret]) {
                    _ = try await f.authenticate(acme, token)
                }
            }

            // A correctly signed payload that is not JSON: a claims error, as in PostgREST.
            let header = Tokens.part(["alg": "HS256", "typ": "JWT"])
            let input = header + "." + notJSON
            let badPayload = input + "." + Base64URL.encode(try signer.sign(Array(input.utf8)))
            await expectAuthError(401, "PGRST303", message: "Parsing claims failed", secrets: [badPayload]) {
                _ = try await f.authenticate(acme, badPayload)
            }

            for header in ["Bearer", "Bearer    ", "", "   "] {
                await expectAuthError(401, "PGRST301", message: "Empty JWT is sent in Authorization header") {
                    _ = try await f.authenticator.authenticate(apikey: acme.apikey, authorization: header)
                }
            }
            await expectAuthError(401, "PGRST301", message: "Authorization header must use the Bearer scheme", secrets: [good]) {
                _ = try await f.authenticator.authenticate(apikey: acme.apikey, authorization: "Basic \(good)")
            }
        }
    }

    @Test("a token signed with another tenant's secret is refused; so is another tenant's apikey with this tenant's token")
    func crossTenant() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let globex = try await f.tenant("globex")
            let globexToken = try await Tokens.hs256(claims: Tokens.user(), secret: globex.secret!)
            await expectAuthError(
                401, "PGRST301", message: "No suitable key or wrong key type", secrets: [globexToken, globex.secret, acme.secret]
            ) {
                _ = try await f.authenticate(acme, globexToken)
            }
            // The token is verified with the apikey's tenant: acme's token with globex's key fails.
            let acmeToken = try await Tokens.hs256(claims: Tokens.user(), secret: acme.secret!)
            await expectAuthError(401, "PGRST301", secrets: [acmeToken]) {
                _ = try await f.authenticate(globex, acmeToken)
            }
            #expect(try await f.authenticate(globex, globexToken).tenantID == globex.id)
        }
    }

    @Test("RS256 and ES256 tokens verify against the tenant's JWKs, with and without kid")
    func publicKeys() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme", secret: nil)
            let rsa = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
            let ec = ES256PrivateKey()
            try await f.setPublicKeys(acme.id, [try rsaJWK(rsa, kid: "rsa-1"), ecJWK(ec)])

            let user = UUID()
            let rs256 = try Tokens.make(
                header: ["alg": "RS256", "typ": "JWT", "kid": "rsa-1"], claims: Tokens.user(user), signer: try await Tokens.signer(rsa: rsa)
            )
            #expect(try await f.authenticate(acme, rs256).userID == user)
            let rs256NoKid = try Tokens.make(header: ["alg": "RS256"], claims: Tokens.user(user), signer: try await Tokens.signer(rsa: rsa))
            #expect(try await f.authenticate(acme, rs256NoKid).userID == user)
            let es256 = try Tokens.make(
                header: ["alg": "ES256", "typ": "JWT"], claims: Tokens.user(user), signer: try await Tokens.signer(es256: ec))
            #expect(try await f.authenticate(acme, es256).userID == user)
            // The EC JWK has no kid: it applies to any kid.
            let es256Kid = try Tokens.make(
                header: ["alg": "ES256", "kid": "whatever"], claims: Tokens.user(user), signer: try await Tokens.signer(es256: ec))
            #expect(try await f.authenticate(acme, es256Kid).userID == user)

            // A kid that names no RSA key, and keys of another party.
            let wrongKid = try Tokens.make(
                header: ["alg": "RS256", "kid": "rsa-2"], claims: Tokens.user(), signer: try await Tokens.signer(rsa: rsa))
            await expectAuthError(401, "PGRST301", message: "No suitable key or wrong key type", secrets: [wrongKid]) {
                _ = try await f.authenticate(acme, wrongKid)
            }
            let otherRSA = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
            let strangerRS = try Tokens.make(
                header: ["alg": "RS256"], claims: Tokens.user(), signer: try await Tokens.signer(rsa: otherRSA))
            await expectAuthError(401, "PGRST301", secrets: [strangerRS]) { _ = try await f.authenticate(acme, strangerRS) }
            let strangerES = try Tokens.make(
                header: ["alg": "ES256"], claims: Tokens.user(), signer: try await Tokens.signer(es256: ES256PrivateKey()))
            await expectAuthError(401, "PGRST301", secrets: [strangerES]) { _ = try await f.authenticate(acme, strangerES) }

            // Algorithm confusion: an ES256 signature presented as RS256, and an HS256 token whose
            // "secret" is the public RSA key — the classic attack. Neither reaches a matching key.
            let relabelled = try Tokens.make(header: ["alg": "RS256"], claims: Tokens.user(), signer: try await Tokens.signer(es256: ec))
            await expectAuthError(401, "PGRST301", secrets: [relabelled]) { _ = try await f.authenticate(acme, relabelled) }
            let confused = try Tokens.make(claims: Tokens.user(), signer: try await Tokens.hs256(rsa.publicKey.pemRepresentation))
            await expectAuthError(401, "PGRST301", message: "No suitable key or wrong key type", secrets: [confused]) {
                _ = try await f.authenticate(acme, confused)
            }
        }
    }

    @Test("an RS256 token presented to an HS256-only tenant is refused with 401 PGRST301")
    func rs256ToHS256Tenant() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let rsa = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
            let token = try Tokens.make(
                header: ["alg": "RS256", "typ": "JWT"], claims: Tokens.user(), signer: try await Tokens.signer(rsa: rsa))
            await expectAuthError(401, "PGRST301", message: "No suitable key or wrong key type", secrets: [token, acme.secret]) {
                _ = try await f.authenticate(acme, token)
            }
        }
    }

    @Test("an unknown or non-string role, a non-UUID sub and an authenticated token without sub: 401 PGRST303")
    func claimsRefused() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let cases: [([String: JSONValue], String)] = [
                (Tokens.user(role: "postgres"), "The JWT 'role' claim is not a permitted role"),
                (Tokens.user(role: "privacy_gateway"), "The JWT 'role' claim is not a permitted role"),
                (Tokens.user(extra: ["role": 1]), "The JWT 'role' claim is not a permitted role"),
                (Tokens.user(extra: ["sub": "user-42"]), "The JWT 'sub' claim must be a UUID"),
                (Tokens.user(extra: ["sub": 42]), "The JWT 'sub' claim must be a UUID"),
                (Tokens.user(role: "service_role", extra: ["sub": "not-a-uuid"]), "The JWT 'sub' claim must be a UUID"),
                (Tokens.user(extra: ["sub": nil]), "The JWT 'sub' claim must be a UUID"),
            ]
            for (claims, message) in cases {
                let token = try await Tokens.hs256(claims: claims, secret: acme.secret!)
                await expectAuthError(401, "PGRST303", message: message, secrets: [token, acme.secret]) {
                    _ = try await f.authenticate(acme, token)
                }
            }
        }
    }

    // MARK: API key and scopes

    @Test("a missing, malformed, wrong or revoked apikey is refused with 401 PGW401")
    func apiKeys() async throws {
        try await AuthFixture.run(options: .init(serviceKeyTTL: .zero)) { f in
            let acme = try await f.tenant("acme")
            let token = try await Tokens.hs256(claims: Tokens.user(), secret: acme.secret!)
            for apikey in [nil, ""] as [String?] {
                await expectAuthError(401, "PGW401", message: "No API key found in request", secrets: [token]) {
                    _ = try await f.authenticator.authenticate(apikey: apikey, authorization: "Bearer \(token)")
                }
            }
            var wrong = Array(acme.apikey)
            wrong[wrong.count - 2] = wrong[wrong.count - 2] == "A" ? "B" : "A"
            for apikey in [
                String(wrong), "pgw_nonsense", token, "pgw_" + String(repeating: "0", count: 32) + "_" + String(repeating: "A", count: 43),
            ] {
                await expectAuthError(401, "PGW401", message: "Invalid API key", secrets: [apikey, acme.apikey, token]) {
                    _ = try await f.authenticator.authenticate(apikey: apikey, authorization: nil)
                }
            }
            // A key from another deployment (another root key) is unknown here.
            let foreign = try await ServiceKeyRegistry(pool: f.owner, rootKey: try .init(count: 32)).create(
                tenant: acme.id, scopes: [.dataRead], name: nil)
            await expectAuthError(401, "PGW401", secrets: [foreign.secret]) {
                _ = try await f.authenticator.authenticate(apikey: foreign.secret, authorization: nil)
            }

            #expect(try await f.authenticate(acme, token).tenantID == acme.id)
            try await ServiceKeyRegistry(pool: f.owner, rootKey: f.rootKey).revoke(id: acme.keyID)
            await expectAuthError(401, "PGW401", message: "Invalid API key", secrets: [acme.apikey]) {
                _ = try await f.authenticate(acme, token)
            }
        }
    }

    @Test("a revoked key is refused on the very next request by every authenticator that had it cached; a new key works at once")
    func serviceKeyCache() async throws {
        try await AuthFixture.run(options: .init(serviceKeyTTL: .seconds(600))) { f in
            let acme = try await f.tenant("acme")
            // A second gateway process: its own caches, the same database.
            let second = try RequestAuthenticator(
                pool: f.gateway, rootKey: f.rootKey, keyring: f.keyring, options: .init(serviceKeyTTL: .seconds(600)))
            let keys = try ServiceKeyRegistry(pool: f.owner, rootKey: f.rootKey)
            // An unknown key is not remembered as unknown: once created it works immediately.
            let (record, later) = try await keys.create(tenant: acme.id, scopes: [.dataRead], name: "later")
            #expect(try await f.authenticator.authenticate(apikey: later, authorization: nil).serviceKey.id == record.id)

            for authenticator in [f.authenticator, second] {
                #expect(try await authenticator.authenticate(apikey: acme.apikey, authorization: nil).serviceKey.id == acme.keyID)
            }
            // Revoked the way privacyctl servicekey revoke does it, from another process's connection.
            try await ServiceKeyRegistry(pool: f.owner, rootKey: f.rootKey, auditing: .disabled).revoke(id: acme.keyID)
            for authenticator in [f.authenticator, second] {
                await expectAuthError(401, "PGW401", message: "Invalid API key", secrets: [acme.apikey]) {
                    _ = try await authenticator.authenticate(apikey: acme.apikey, authorization: nil)
                }
            }
            // The other key of the tenant is untouched.
            #expect(try await second.authenticate(apikey: later, authorization: nil).serviceKey.id == record.id)
        }
    }

    @Test("tenant keys are cached; a new secret takes effect after the TTL or an invalidation")
    func tenantKeyCache() async throws {
        let clock = TestClock()
        var options = RequestAuthenticator.Options(tenantKeysTTL: .seconds(60))
        options.clock = { clock.now }
        try await AuthFixture.run(options: options) { f in
            let acme = try await f.tenant("acme")
            let oldToken = try await Tokens.hs256(claims: Tokens.user(), secret: acme.secret!)
            #expect(try await f.authenticate(acme, oldToken).role == .authenticated)
            let rotated = AuthFixture.secret()
            try await f.storeSecret(acme.id, rotated)
            let newToken = try await Tokens.hs256(claims: Tokens.user(), secret: rotated)
            // Still the cached secret...
            #expect(try await f.authenticate(acme, oldToken).role == .authenticated)
            clock.advance(.seconds(59))
            #expect(try await f.authenticate(acme, oldToken).role == .authenticated)
            clock.advance(.seconds(2))
            // ...until the TTL has passed.
            await expectAuthError(401, "PGRST301") { _ = try await f.authenticate(acme, oldToken) }
            #expect(try await f.authenticate(acme, newToken).role == .authenticated)

            // A change made in this process can take effect at once.
            let third = AuthFixture.secret()
            try await f.storeSecret(acme.id, third)
            f.authenticator.invalidateTenant(acme.id)
            await expectAuthError(401, "PGRST301") { _ = try await f.authenticate(acme, newToken) }
            #expect(try await f.authenticate(acme, try await Tokens.hs256(claims: Tokens.user(), secret: third)).role == .authenticated)
        }
    }

    @Test("require(scope) answers 403 PGW403 naming the missing scope")
    func scopes() async throws {
        try await AuthFixture.run { f in
            let reader = try await f.tenant("acme", scopes: [.dataRead])
            let request = try await f.authenticate(reader, nil)
            try request.require(.dataRead)
            #expect(request.has(.dataRead))
            #expect(!request.has(.dataWrite))
            let error = await expectAuthError(
                403, "PGW403", message: "the service key lacks the scope \"data:write\"", secrets: [reader.apikey]
            ) {
                try request.require(.dataWrite)
            }
            #expect(error?.hint?.contains("data:write") == true)
            // admin does not imply the data scopes.
            let admin = try await f.tenant("admin", scopes: [.admin])
            await expectAuthError(403, "PGW403") { try await f.authenticate(admin, nil).require(.secretsRead) }
        }
    }

    // MARK: Unusable tenant keys

    @Test("a tenant with a short or no HS256 secret refuses HS256 tokens with 401, without crashing")
    func shortSecret() async throws {
        try await AuthFixture.run { f in
            let short = "only-20-bytes-secret"
            // TenantRegistry refuses short secrets, so the row is written directly.
            let id: UUID = try await f.owner.query("INSERT INTO public.tenants (name) VALUES ('short') RETURNING id").first!.decode("id")
            try await f.storeSecret(id, short)
            let (_, apikey) = try await ServiceKeyRegistry(pool: f.owner, rootKey: f.rootKey).create(
                tenant: id, scopes: [.dataRead], name: nil)
            // Signed with swift-crypto directly: jwt-kit itself would trap on the short key.
            let input = Tokens.part(["alg": "HS256", "typ": "JWT"]) + "." + Tokens.part(Tokens.user())
            let mac = Crypto.HMAC<Crypto.SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(short.utf8)))
            let token = input + "." + Base64URL.encode(Array(mac))
            await expectAuthError(401, "PGRST301", message: "No suitable key or wrong key type", secrets: [token, short]) {
                _ = try await f.authenticator.authenticate(apikey: apikey, authorization: "Bearer \(token)")
            }
            // Anonymous requests still work for such a tenant.
            #expect(try await f.authenticator.authenticate(apikey: apikey, authorization: nil).role == .anon)

            let none = try await f.tenant("none", secret: nil)
            let any = try await Tokens.hs256(claims: Tokens.user(), secret: AuthFixture.secret())
            await expectAuthError(401, "PGRST301", message: "No suitable key or wrong key type", secrets: [any]) {
                _ = try await f.authenticate(none, any)
            }
        }
    }

    @Test("concurrent requests share the caches safely")
    func concurrent() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let users = (0..<8).map { _ in UUID() }
            var tokens: [String] = []
            for user in users { tokens.append(try await Tokens.hs256(claims: Tokens.user(user), secret: acme.secret!)) }
            let authenticator = f.authenticator
            let apikey = acme.apikey
            let seen = try await withThrowingTaskGroup(of: UUID?.self) { group in
                for index in 0..<200 {
                    let token = tokens[index % tokens.count]
                    group.addTask { try await authenticator.authenticate(apikey: apikey, authorization: "Bearer \(token)").userID }
                }
                var seen: Set<UUID> = []
                for try await user in group { if let user { seen.insert(user) } }
                return seen
            }
            #expect(seen == Set(users))
            let registered = try await f.owner.query("SELECT count(*) AS n FROM auth.users WHERE tenant_id = $1", [acme.id]).first!.decode(
                "n", as: Int.self)
            #expect(registered == users.count)
        }
    }
}
