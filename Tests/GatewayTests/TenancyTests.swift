import Audit
import Foundation
import JSON
import JWTKit
import Keyring
import Postgres
import Sodium
import Tenancy
import TestSupport
import Testing

@testable import Gateway

@Suite("Tenants and service keys")
struct TenancyTests {
    @Test("tenants are created once per name and listed without their JWT secret")
    func tenants() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let pool = ConnectionPool(configuration: owner)
            defer { pool.close() }
            // Without the root key, no secret can be stored (it is only ever stored sealed).
            let unkeyed = await #expect(throws: TenancyError.self) {
                try await TenantRegistry(pool: pool, auditing: .disabled).create(name: "acme", jwtSecret: String(repeating: "s", count: 40))
            }
            #expect(unkeyed?.message.contains("root key") == true)
            let keyring = try await Keyring.open(pool: pool, root: .key(try SecureBytes(count: 32)))
            let registry = TenantRegistry(pool: pool, auditing: .disabled, keyring: keyring)
            let acme = try await registry.create(name: "acme", jwtSecret: String(repeating: "s", count: 40))
            #expect(acme.hasJWTSecret)
            let duplicate = await #expect(throws: TenancyError.self) { try await registry.create(name: "acme", jwtSecret: nil) }
            #expect(duplicate?.kind == .conflict)
            let weak = await #expect(throws: TenancyError.self) { try await registry.create(name: "weak", jwtSecret: "short") }
            #expect(weak?.message.contains("at least 32") == true)
            let empty = await #expect(throws: TenancyError.self) { try await registry.create(name: "  ", jwtSecret: nil) }
            #expect(empty?.kind == .invalidInput)
            #expect(try await registry.list().map(\.name) == ["acme"])
            let json = String(decoding: try JSONEncoder().encode(acme), as: UTF8.self)
            #expect(!json.contains("ssss"))
            #expect(json.contains(acme.id.uuidString.lowercased()))
        }
    }

    @Test("a service key authenticates; a forged, tampered or revoked one does not")
    func serviceKeys() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let pool = ConnectionPool(configuration: owner)
            defer { pool.close() }
            let rootKey = try SecureBytes(count: 32)
            let keys = try ServiceKeyRegistry(pool: pool, rootKey: rootKey)
            let tenant = try await TenantRegistry(pool: pool, auditing: .disabled).create(name: "t", jwtSecret: nil)
            let (record, secret) = try await keys.create(tenant: tenant.id, scopes: [.secretsRead, .dataRead, .dataRead], name: "billing")
            #expect(record.scopes == [.dataRead, .secretsRead])
            #expect(secret.hasPrefix("pgw_"))
            #expect(try await keys.authenticate(secret)?.id == record.id)

            // Only the keyed hash is stored.
            let stored = try await pool.query("SELECT key_hash FROM service_keys WHERE id = $1", [record.id]).first!.decode(
                "key_hash", as: [UInt8].self)
            #expect(stored.count == 32)
            #expect(!String(decoding: stored, as: UTF8.self).contains(secret.suffix(20)))

            var tampered = Array(secret)
            tampered[tampered.count - 1] = tampered.last == "A" ? "B" : "A"
            #expect(try await keys.authenticate(String(tampered)) == nil)
            #expect(try await keys.authenticate("pgw_nonsense") == nil)
            #expect(try await keys.authenticate("") == nil)
            // The same key checked under another root key (another deployment) fails.
            let other = try ServiceKeyRegistry(pool: pool, rootKey: try SecureBytes(count: 32))
            #expect(try await other.authenticate(secret) == nil)

            let revoked = try await keys.revoke(id: record.id)
            #expect(revoked.revokedAt != nil)
            #expect(try await keys.authenticate(secret) == nil)
            let unknown = await #expect(throws: TenancyError.self) { try await keys.revoke(id: UUID()) }
            #expect(unknown?.kind == .notFound)
        }
    }

    @Test("a service key needs a scope and an existing tenant")
    func serviceKeyValidation() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let pool = ConnectionPool(configuration: owner)
            defer { pool.close() }
            let keys = try ServiceKeyRegistry(pool: pool, rootKey: try SecureBytes(count: 32))
            let noScope = await #expect(throws: TenancyError.self) { try await keys.create(tenant: UUID(), scopes: [], name: nil) }
            #expect(noScope?.kind == .invalidInput)
            let noTenant = await #expect(throws: TenancyError.self) { try await keys.create(tenant: UUID(), scopes: [.admin], name: nil) }
            #expect(noTenant?.kind == .notFound)
            #expect(throws: TenancyError.self) { try Scope.parse("root") }
        }
    }
}

@Suite("Service key format")
struct ServiceKeyFormatTests {
    @Test("a key whose secret part contains underscores still names its key id")
    func underscoresInSecret() throws {
        let id = UUID()
        let hex = id.uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let secret = "ab_" + String(repeating: "x", count: 37) + "_-_"
        #expect(secret.count == 43)
        #expect(ServiceKeyRegistry.keyID(of: "pgw_\(hex)_\(secret)") == id)
        #expect(ServiceKeyRegistry.keyID(of: "pgw_\(hex)_short") == nil)
        #expect(ServiceKeyRegistry.keyID(of: "xyz_\(hex)_\(secret)") == nil)
        #expect(ServiceKeyRegistry.keyID(of: "pgw_\(String(repeating: "g", count: 32))_\(secret)") == nil)
    }

    static let id = UUID(uuidString: "0123ABCD-4567-89EF-0123-456789ABCDEF")!
    static let hex = "0123abcd456789ef0123456789abcdef"
    static let secret = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE"

    @Test("a well-formed key gives its id; upper-case hex too")
    func wellFormed() {
        #expect(Self.secret.utf8.count == 43)
        #expect(ServiceKeyRegistry.keyID(of: "pgw_\(Self.hex)_\(Self.secret)") == Self.id)
        #expect(ServiceKeyRegistry.keyID(of: "pgw_\(Self.hex.uppercased())_\(Self.secret)") == Self.id)
        // `_` is base64url: a secret part may hold it anywhere.
        #expect(ServiceKeyRegistry.keyID(of: "pgw_\(Self.hex)_" + String(repeating: "_", count: 43)) == Self.id)
    }

    @Test("anything else has no id: prefix, lengths, separators, alphabets, non-ASCII")
    func malformed() {
        let good = "pgw_\(Self.hex)_\(Self.secret)"
        var bad = [
            "", "pgw_", "PGW_\(Self.hex)_\(Self.secret)", "pgx_\(Self.hex)_\(Self.secret)",
            good + "A", String(good.dropLast()), "pgw_\(Self.hex)-\(Self.secret)",
            "pgw_\(Self.hex.dropLast())g_\(Self.secret)", "pgw_\(Self.hex)_\(Self.secret.dropLast())=",
            "pgw_\(Self.hex)_\(Self.secret.dropLast())é", "pgw_\(Self.hex)_\(Self.secret.dropLast(2))é",
            "pgw_\(Self.hex)_\(Self.secret.dropLast()) ", "pgw_\(Self.hex)_\(Self.secret.dropLast())\u{0}",
        ]
        bad.append(String(repeating: "x", count: 80))
        for key in bad {
            #expect(ServiceKeyRegistry.keyID(of: key) == nil, "\(key)")
        }
    }
}

@Suite("Tenant JWT settings")
struct TenantJWTSettingsTests {
    @Test("public keys are set from a JWKS; unusable keys and malformed documents are refused with the reason")
    func setPublicKeys() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let pool = ConnectionPool(configuration: owner)
            defer { pool.close() }
            let registry = TenantRegistry(pool: pool, auditing: .disabled)
            let tenant = try await registry.create(name: "t", jwtSecret: nil)
            let malformed = await #expect(throws: TenancyError.self) {
                try await registry.setJWT(tenant: tenant.id, secret: nil, jwks: "not json")
            }
            #expect(malformed?.kind == .invalidInput)
            let symmetric = await #expect(throws: TenancyError.self) {
                try await registry.setJWT(tenant: tenant.id, secret: nil, jwks: #"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#)
            }
            #expect(symmetric?.message.contains("\"oct\" is not supported") == true)
            let key = ecJWK(ES256PrivateKey(), kid: "k1")
            try await registry.setJWT(tenant: tenant.id, secret: nil, jwks: JSONValue.object(["keys": .array([key])]).jsonText)
            let stored = try await pool.query("SELECT jsonb_array_length(jwt_public_keys) AS n FROM tenants WHERE id = $1", [tenant.id])
            #expect(try stored.first?.decode("n", as: Int.self) == 1)
            let unknown = await #expect(throws: TenancyError.self) {
                try await registry.setJWT(tenant: UUID(), secret: nil, jwks: JSONValue.array([key]).jsonText)
            }
            #expect(unknown?.kind == .notFound)
            // A secret is only ever stored sealed: without the keyring (the root key) it is refused.
            let unkeyed = await #expect(throws: TenancyError.self) {
                try await registry.setJWT(tenant: tenant.id, secret: String(repeating: "x", count: 40), jwks: nil)
            }
            #expect(unkeyed?.message.contains("root key") == true)
        }
    }
}

@Suite("Admin actions are audited")
struct AdminAuditTests {
    @Test("tenant and service key changes are recorded in the tenant's chain, in the same transaction")
    func recorded() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let pool = ConnectionPool(configuration: owner)
            defer { pool.close() }
            let auditing = AdminAuditing(appender: AuditAppender(pool: pool), actor: "test-operator")
            let tenant = try await TenantRegistry(pool: pool, auditing: auditing).create(name: "audited", jwtSecret: nil)
            let keys = try ServiceKeyRegistry(pool: pool, rootKey: try SecureBytes(count: 32), auditing: auditing)
            let (key, _) = try await keys.create(tenant: tenant.id, scopes: [.dataRead], name: "svc")
            try await keys.revoke(id: key.id)
            let keyring = try await Keyring.open(pool: pool, root: .key(try SecureBytes(count: 32)))
            try await TenantRegistry(pool: pool, auditing: auditing, keyring: keyring)
                .setJWT(tenant: tenant.id, secret: String(repeating: "k", count: 40), jwks: nil)
            let actions = try await pool.query(
                "SELECT action, actor FROM audit_events WHERE tenant_id = $1 ORDER BY seq", [tenant.id]
            ).rows.map { try $0.decode("action", as: String.self) }
            #expect(actions == ["tenant.created", "service_key.created", "service_key.revoked", "tenant.jwt_updated"])
        }
    }

    @Test("when the audit entry cannot be written, the admin change does not happen")
    func failClosed() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let pool = ConnectionPool(configuration: owner)
            defer { pool.close() }
            try await pool.query("ALTER TABLE audit_events ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
            let auditing = AdminAuditing(appender: AuditAppender(pool: pool), actor: "test-operator")
            await #expect(throws: (any Error).self) {
                try await TenantRegistry(pool: pool, auditing: auditing).create(name: "ghost", jwtSecret: nil)
            }
            let count = try await pool.query("SELECT count(*) AS n FROM tenants WHERE name = 'ghost'").first!.decode("n", as: Int.self)
            #expect(count == 0)
        }
    }
}
