import Foundation
import Audit
import Postgres
import Sodium

/// A service key's stored record: never the key itself, only its keyed hash.
public struct ServiceKey: Sendable, Codable, Equatable {
    public let id: UUID
    public let tenantID: UUID
    public let name: String?
    public let scopes: [Scope]
    public let createdAt: Date
    public let revokedAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, name, scopes
        case tenantID = "tenant_id"
        case createdAt = "created_at"
        case revokedAt = "revoked_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.lowercasedString, forKey: .id)
        try container.encode(tenantID.lowercasedString, forKey: .tenantID)
        try container.encode(name, forKey: .name)
        try container.encode(scopes, forKey: .scopes)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(revokedAt, forKey: .revokedAt)
    }
}

/// Service keys: how internal services authenticate (the `apikey` header).
///
/// A key is `pgw_<key id, 32 hex>_<secret, 43 base64url>`; it is shown once at creation.
/// The database keeps HMAC-SHA-256 of the whole key under a subkey of the root key, so a stolen
/// table can neither be replayed nor brute-forced offline without the root key.
public struct ServiceKeyRegistry: Sendable {
    private let pool: ConnectionPool
    private let keyHashKey: SecureBytes

    private let auditing: AdminAuditing

    /// `auditing` records key creation and revocation in the tenant's audit chain, in the same
    /// transaction; authentication alone needs none (``AdminAuditing/disabled``).
    public init(pool: ConnectionPool, rootKey: SecureBytes, auditing: AdminAuditing = .disabled) throws {
        self.pool = pool
        self.auditing = auditing
        self.keyHashKey = try KeyDerivation.subkey(from: rootKey, id: 1, context: "svc-keys")
    }

    /// Creates a key; returns its record and the key text, which is never retrievable again.
    public func create(tenant: UUID, scopes: [Scope], name: String?) async throws -> (key: ServiceKey, secret: String) {
        let scopes = Array(Set(scopes)).sorted()
        guard !scopes.isEmpty else {
            throw GatewayError.invalidInput("a service key needs at least one scope", hint: "valid scopes: \(Scope.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let id = UUID()
        let secret = "pgw_" + Hex.encode(Self.bytes(of: id)) + "_" + Base64URL.encode(Random.bytes(32))
        do {
            let actor = auditing.actor
            let row = try await auditing.write(pool, Statement(
                """
                INSERT INTO public.service_keys (id, tenant_id, name, key_hash, scopes)
                VALUES ($1, $2, $3, $4, $5::text[])
                RETURNING id, tenant_id, name, scopes, created_at, revoked_at
                """,
                [id, tenant, name, hash(secret), PostgresTextArray(scopes.map(\.rawValue))])) { row in
                let key = try Self.serviceKey(row)
                return (key.tenantID, AuditEvent(
                    actor: actor, action: "service_key.created", target: "service_key:" + key.id.lowercasedString,
                    details: ["scopes": .array(key.scopes.map { .string($0.rawValue) }), "name": key.name.map(AuditValue.string) ?? .null]))
            }
            return (try Self.serviceKey(row.first!), secret)
        } catch let error as PostgresError where error.sqlState == "23503" {
            throw GatewayError.notFound("tenant \(tenant.lowercasedString) does not exist")
        }
    }

    /// Revokes a key; revoking twice is harmless. Unknown ids are an error. Once this returns, every
    /// gateway process refuses the key from its next request (each request re-checks the key in
    /// the database); a request already past that check may still complete.
    @discardableResult
    public func revoke(id: UUID) async throws -> ServiceKey {
        let actor = auditing.actor
        let result = try await auditing.write(pool, Statement(
            """
            UPDATE public.service_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
            RETURNING id, tenant_id, name, scopes, created_at, revoked_at
            """, [id])) { row in
            let key = try Self.serviceKey(row)
            return (key.tenantID, AuditEvent(
                actor: actor, action: "service_key.revoked", target: "service_key:" + key.id.lowercasedString))
        }
        guard let row = result.first else {
            throw GatewayError.notFound("service key \(id.lowercasedString) does not exist")
        }
        return try Self.serviceKey(row)
    }

    /// The keys of `tenant` (every tenant's when nil), newest first: id, name, scopes, created and
    /// revoked times — never a key nor its hash. Needs no root key.
    public static func list(pool: ConnectionPool, tenant: UUID?) async throws -> [ServiceKey] {
        try await pool.query(
            """
            SELECT id, tenant_id, name, scopes, created_at, revoked_at FROM public.service_keys
            WHERE $1::uuid IS NULL OR tenant_id = $1::uuid ORDER BY created_at DESC, id
            """, [tenant]).rows.map(serviceKey)
    }

    /// The active key matching `presented`, or nil. The stored hash is compared in constant time.
    public func authenticate(_ presented: String) async throws -> ServiceKey? {
        guard let id = Self.keyID(of: presented) else { return nil }
        let result = try await pool.query(
            "SELECT id, tenant_id, name, scopes, created_at, revoked_at, key_hash FROM public.service_keys WHERE id = $1 AND revoked_at IS NULL",
            [id])
        guard let row = result.first else { return nil }
        let stored: [UInt8] = try row.decode("key_hash")
        guard ConstantTime.equals(stored, hash(presented)) else { return nil }
        return try Self.serviceKey(row)
    }

    /// Whether the key `id` exists and is not revoked, asked of the database now (one primary-key
    /// lookup): how a cached key is re-checked per request.
    public func isActive(_ id: UUID) async throws -> Bool {
        try await pool.query("SELECT 1 FROM public.service_keys WHERE id = $1 AND revoked_at IS NULL", [id]).first != nil
    }

    func hash(_ key: String) -> [UInt8] {
        HMACSHA256.authenticate(Array(key.utf8), key: keyHashKey)
    }

    static func keyID(of key: String) -> UUID? {
        let parts = key.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "pgw", parts[1].count == 32, parts[2].count == 43,
              let bytes = Hex.decode(String(parts[1])), bytes.count == 16 else { return nil }
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }

    private static func bytes(of id: UUID) -> [UInt8] {
        withUnsafeBytes(of: id.uuid) { Array($0) }
    }


    private static func serviceKey(_ row: PostgresRow) throws -> ServiceKey {
        let scopes = try row.decode("scopes", as: PostgresTextArray.self).elements.compactMap { $0.flatMap(Scope.init(rawValue:)) }
        return ServiceKey(
            id: try row.decode("id"), tenantID: try row.decode("tenant_id"), name: try row.decodeIfPresent("name"),
            scopes: scopes, createdAt: try row.decode("created_at"), revokedAt: try row.decodeIfPresent("revoked_at"))
    }
}
