import Foundation
import JSON
import JWTKit
import Keyring
import Postgres
import Sodium
import Synchronization
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// A clock the authenticator's caches read, moved forward by the test instead of sleeping.
final class TestClock: Sendable {
    let start = ContinuousClock.now
    let offset = Mutex(Duration.zero)
    func advance(_ duration: Duration) { offset.withLock { $0 += duration } }
    var now: ContinuousClock.Instant { start + offset.withLock { $0 } }
}

/// A migrated database with an owner pool (to set tenants up) and an authenticator on the
/// gateway's own login role (as in production).
struct AuthFixture {
    let owner: ConnectionPool
    let gateway: ConnectionPool
    let rootKey: SecureBytes
    /// Seals tenants' HS256 secrets (they are never stored in plaintext).
    let keyring: Keyring
    let authenticator: RequestAuthenticator

    /// A 48-byte HS256 secret, distinct per call.
    static func secret() -> String {
        // Passed to privacyctl as `--secret=…`: a base64url text may begin with "-", which would read as an option.
        Base64URL.encode(Random.bytes(36))
    }

    /// How the fixture's two pools connect.
    struct Pools {
        var ownerConnections = 2
        var gatewayConnections = 6
        /// Session settings of the gateway's connections (libpq `options`, e.g. `-c name=value`).
        var gatewaySessionOptions: String?

        /// One connection each, the gateway's planning every prepared statement generically from
        /// its first execution (as Postgres may after five): the worst plan a cached statement can
        /// get. One connection per pool keeps each pool on one backend, whose statistics
        /// ``rowsExamined(_:during:)`` reads.
        static let genericPlans = Pools(
            ownerConnections: 1, gatewayConnections: 1, gatewaySessionOptions: "-c plan_cache_mode=force_generic_plan")
    }

    /// `tenantLimiter`: the gateway pool's per-tenant cap (none by default).
    static func run(
        options: RequestAuthenticator.Options = .init(), tenantLimiter: TenantLimiter? = nil, pools: Pools = Pools(),
        _ body: (AuthFixture) async throws -> Void
    ) async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let ownerPool = ConnectionPool(configuration: owner, options: .init(maxConnections: pools.ownerConnections))
            var gateway = TestDatabase.gateway(owner)
            if let session = pools.gatewaySessionOptions { gateway = gateway.with("options", session) }
            // A generous acquire timeout: the concurrency tests queue hundreds of cold-cache lookups on a loaded CI machine.
            let gatewayPool = ConnectionPool(
                configuration: gateway,
                options: .init(maxConnections: pools.gatewayConnections, acquireTimeout: .seconds(60), tenantLimiter: tenantLimiter))
            defer {
                gatewayPool.close()
                ownerPool.close()
            }
            let rootKey = try SecureBytes(count: 32)
            let keyring = try await Keyring.open(pool: ownerPool, root: .key(try SecureBytes(count: 32)))
            let authenticator = try RequestAuthenticator(pool: gatewayPool, rootKey: rootKey, keyring: keyring, options: options)
            try await body(
                AuthFixture(
                    owner: ownerPool, gateway: gatewayPool, rootKey: rootKey, keyring: keyring, authenticator: authenticator))
        }
    }

    /// Creates a tenant and a service key for it (scopes data:read and data:write unless given).
    func tenant(
        _ name: String, secret: String? = AuthFixture.secret(), scopes: [Scope] = [.dataRead, .dataWrite]
    ) async throws -> TestTenant {
        let tenant = try await TenantRegistry(pool: owner, auditing: .disabled, keyring: keyring).create(name: name, jwtSecret: secret)
        let (key, apikey) = try await ServiceKeyRegistry(pool: owner, rootKey: rootKey).create(tenant: tenant.id, scopes: scopes, name: nil)
        return TestTenant(id: tenant.id, secret: secret, keyID: key.id, apikey: apikey)
    }

    /// Stores `secret` as the tenant's HS256 secret, sealed, without the registry's length check
    /// (so tests can store unusable ones), and without invalidating any cache.
    func storeSecret(_ tenant: UUID, _ secret: String) async throws {
        let keyring = self.keyring
        _ = try await owner.transaction { connection in
            let sealed = try keyring.sealTenantSecret(
                Array(secret.utf8), tenant: tenant, purpose: TenantSecretPurpose.jwtSecret, in: connection)
            return try connection.query(
                "UPDATE public.tenants SET jwt_secret_sealed = $2, jwt_secret_nonce = $3, jwt_secret_kek_version = $4 WHERE id = $1",
                [tenant, sealed.ciphertext, sealed.nonce, sealed.kekVersion])
        }
    }

    /// Replaces a tenant's public keys (a JSON array of JWKs).
    func setPublicKeys(_ tenant: UUID, _ jwks: [JSONValue]) async throws {
        try await owner.query(
            "UPDATE public.tenants SET jwt_public_keys = $1::jsonb WHERE id = $2", [JSONValue.array(jwks).jsonText, tenant])
        authenticator.invalidateTenant(tenant)
    }

    func authenticate(_ tenant: TestTenant, _ token: String?) async throws -> AuthenticatedRequest {
        try await authenticator.authenticate(apikey: tenant.apikey, authorization: token.map { "Bearer \($0)" })
    }
}

struct TestTenant {
    let id: UUID
    let secret: String?
    let keyID: UUID
    let apikey: String
}

/// Builds compact JWS tokens by hand, so tests can also build the broken ones.
enum Tokens {
    static func part(_ value: [String: JSONValue]) -> String {
        Base64URL.encode(Array(JSONValue.object(value).jsonText.utf8))
    }

    /// `header.payload.signature`, signed by `signer` (no signer: an empty signature).
    static func make(
        header: [String: JSONValue] = ["alg": "HS256", "typ": "JWT"], claims: [String: JSONValue],
        signer: (any JWTAlgorithm)?
    ) throws -> String {
        let input = part(header) + "." + part(claims)
        let signature = try signer.map { try $0.sign(Array(input.utf8)) } ?? []
        return input + "." + Base64URL.encode(signature)
    }

    static func hs256(_ secret: String) async throws -> any JWTAlgorithm {
        try await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256).getKey()
    }

    static func signer(rsa key: Insecure.RSA.PrivateKey) async throws -> any JWTAlgorithm {
        try await JWTKeyCollection().add(rsa: key, digestAlgorithm: .sha256).getKey()
    }

    static func signer(es256 key: ES256PrivateKey) async throws -> any JWTAlgorithm {
        try await JWTKeyCollection().add(ecdsa: key).getKey()
    }

    /// Supabase-style claims: an authenticated user valid for an hour.
    static func user(_ sub: UUID = UUID(), role: String = "authenticated", extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
        let now = Int64(Date().timeIntervalSince1970)
        var claims: [String: JSONValue] = [
            "sub": .string(sub.uuidString.lowercased()), "role": .string(role), "iat": .int(now), "exp": .int(now + 3600),
            "aud": "authenticated",
        ]
        claims.merge(extra) { $1 }
        return claims
    }

    static func hs256(claims: [String: JSONValue], secret: String) async throws -> String {
        try make(claims: claims, signer: try await hs256(secret))
    }
}

/// The JWK of an RSA public key.
func rsaJWK(_ key: Insecure.RSA.PrivateKey, kid: String?) throws -> JSONValue {
    let primitives = try key.publicKey.getKeyPrimitives()
    var jwk: [String: JSONValue] = [
        "kty": "RSA", "n": .string(Base64URL.encode(primitives.modulus)), "e": .string(Base64URL.encode(primitives.publicExponent)),
    ]
    if let kid { jwk["kid"] = .string(kid) }
    return .object(jwk)
}

/// The JWK of a P-256 public key.
func ecJWK(_ key: ES256PrivateKey, kid: String? = nil) -> JSONValue {
    let parameters = key.publicKey.parameters!
    var jwk: [String: JSONValue] = ["kty": "EC", "crv": "P-256", "x": .string(parameters.x), "y": .string(parameters.y)]
    if let kid { jwk["kid"] = .string(kid) }
    return .object(jwk)
}

/// Expects `body` to fail with a GatewayError of `status` and `code` (and `message`, when given),
/// whose text quotes none of `secrets` — neither whole nor any dot-separated part of a token.
@discardableResult
func expectAuthError(
    _ status: Int, _ code: String, message: String? = nil, secrets: [String?] = [],
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> GatewayError? {
    do {
        try await body()
        Issue.record("expected \(status) \(code), but authentication succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as GatewayError {
        #expect(error.status.code == status, "status", sourceLocation: sourceLocation)
        #expect(error.code == code, "code (message: \(error.message))", sourceLocation: sourceLocation)
        if let message {
            #expect(error.message == message, sourceLocation: sourceLocation)
        }
        let text = [error.message, error.details ?? "", error.hint ?? ""].joined(separator: "\n")
        for secret in secrets.compactMap({ $0 }) where !secret.isEmpty {
            let pieces = [secret] + secret.split(separator: ".").map(String.init).filter { $0.count >= 8 }
            for piece in pieces {
                #expect(!text.contains(piece), "error text quotes a secret or token", sourceLocation: sourceLocation)
            }
        }
        return error
    } catch {
        Issue.record("expected a GatewayError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
