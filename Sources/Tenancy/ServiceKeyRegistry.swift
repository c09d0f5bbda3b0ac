import Audit
import Foundation
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
    /// When the key stops working by itself (nil: never); set at creation or by a rotation's overlap.
    public var expiresAt: Date? = nil
    /// The last time a gateway looked the key up (at most once per cache lifetime, 30 s, per process).
    public var lastUsedAt: Date? = nil

    enum CodingKeys: String, CodingKey {
        case id, name, scopes
        case tenantID = "tenant_id"
        case createdAt = "created_at"
        case revokedAt = "revoked_at"
        case expiresAt = "expires_at"
        case lastUsedAt = "last_used_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.lowercasedString, forKey: .id)
        try container.encode(tenantID.lowercasedString, forKey: .tenantID)
        try container.encode(name, forKey: .name)
        try container.encode(scopes, forKey: .scopes)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(revokedAt, forKey: .revokedAt)
        try container.encode(expiresAt, forKey: .expiresAt)
        try container.encode(lastUsedAt, forKey: .lastUsedAt)
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

    private var auditing: AdminAuditing

    /// The same registry (same hashing key), its changes audited by `auditing`: how `/v1/admin`
    /// writes as the calling key with the key the gateway authenticates against.
    package func withAuditing(_ auditing: AdminAuditing) -> ServiceKeyRegistry {
        var copy = self
        copy.auditing = auditing
        return copy
    }

    /// What every query of a key's record selects.
    package static let recordColumns = "id, tenant_id, name, scopes, created_at, revoked_at, expires_at, last_used_at"

    /// `auditing` records key creation and revocation in the tenant's audit chain, in the same
    /// transaction; authentication alone needs none (``AdminAuditing/disabled``).
    public init(pool: ConnectionPool, rootKey: SecureBytes, auditing: AdminAuditing = .disabled) throws {
        self.pool = pool
        self.auditing = auditing
        self.keyHashKey = try KeyDerivation.subkey(from: rootKey, id: 1, context: "svc-keys")
    }

    /// Creates a key; returns its record and the key text, which is never retrievable again.
    /// `expiresAt`, when given, must be in the future.
    public func create(tenant: UUID, scopes: [Scope], name: String?, expiresAt: Date? = nil) async throws -> (
        key: ServiceKey, secret: String
    ) {
        let scopes = Array(Set(scopes)).sorted()
        guard !scopes.isEmpty else {
            throw TenancyError.invalidInput(
                "a service key needs at least one scope", hint: "valid scopes: \(Scope.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let expiresAt, expiresAt <= Date() {
            throw TenancyError.invalidInput(
                "the expiry \(expiresAt.formatted(.iso8601)) is in the past", hint: "give a time in the future, or none")
        }
        let id = UUID()
        let secret = "pgw_" + Hex.encode(Self.bytes(of: id)) + "_" + Base64URL.encode(Random.bytes(32))
        do {
            let actor = auditing.actor
            let row = try await auditing.write(
                pool,
                Statement(
                    """
                    INSERT INTO public.service_keys (id, tenant_id, name, key_hash, scopes, expires_at)
                    VALUES ($1, $2, $3, $4, $5::text[], $6)
                    RETURNING \(Self.recordColumns)
                    """,
                    [id, tenant, name, hash(secret), PostgresTextArray(scopes.map(\.rawValue)), expiresAt])
            ) { row in
                let key = try Self.serviceKey(row)
                var details: [String: AuditValue] = [
                    "scopes": .array(key.scopes.map { .string($0.rawValue) }), "name": key.name.map(AuditValue.string) ?? .null,
                ]
                if let expires = key.expiresAt { details["expires_at"] = .string(expires.formatted(.iso8601)) }
                return (
                    key.tenantID,
                    AuditEvent(
                        actor: actor, action: "service_key.created", target: "service_key:" + key.id.lowercasedString, details: details)
                )
            }
            return (try Self.serviceKey(row.first!), secret)
        } catch let error as PostgresError where error.sqlState == "23503" {
            throw TenancyError.notFound("tenant \(tenant.lowercasedString) does not exist")
        }
    }

    /// Revokes a key; revoking twice is harmless. Unknown ids are an error. Once this returns, every
    /// gateway process refuses the key from its next request (each request re-checks the key in
    /// the database); a request already past that check may still complete.
    @discardableResult
    public func revoke(id: UUID) async throws -> ServiceKey {
        let actor = auditing.actor
        let result = try await auditing.write(
            pool,
            Statement(
                """
                UPDATE public.service_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
                RETURNING \(Self.recordColumns)
                """, [id])
        ) { row in
            let key = try Self.serviceKey(row)
            return (
                key.tenantID,
                AuditEvent(
                    actor: actor, action: "service_key.revoked", target: "service_key:" + key.id.lowercasedString)
            )
        }
        guard let row = result.first else {
            throw TenancyError.notFound("service key \(id.lowercasedString) does not exist")
        }
        return try Self.serviceKey(row)
    }

    /// The longest overlap a rotation grants the old key.
    public static let maximumOverlap: Duration = .seconds(30 * 86_400)

    /// Replaces key `id` by a new key of the same tenant, name and scopes (and `expiresAt`, when
    /// given), and lets the old one work for `overlap` more (never longer than it already would),
    /// so callers can switch without an outage. One transaction, audited as `service_key.rotated`
    /// in the key's tenant's chain. A revoked or expired key cannot be rotated (409): create a new one.
    public func rotate(id: UUID, overlap: Duration, expiresAt: Date? = nil) async throws -> (
        old: ServiceKey, new: ServiceKey, secret: String
    ) {
        guard overlap >= .zero, overlap <= Self.maximumOverlap else {
            throw TenancyError.invalidInput("the overlap must be 0 to \(Self.maximumOverlap.components.seconds) seconds")
        }
        if let expiresAt, expiresAt <= Date() {
            throw TenancyError.invalidInput(
                "the expiry \(expiresAt.formatted(.iso8601)) is in the past", hint: "give a time in the future, or none")
        }
        let newID = UUID()
        let secret = "pgw_" + Hex.encode(Self.bytes(of: newID)) + "_" + Base64URL.encode(Random.bytes(32))
        let digest = hash(secret)
        let actor = auditing.actor
        let seconds = overlap.components.seconds
        let result = try await auditing.write(
            pool,
            { connection in
                guard
                    let old = try connection.query(
                        "SELECT \(Self.recordColumns), (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS usable "
                            + "FROM public.service_keys WHERE id = $1 FOR UPDATE", [id]
                    ).first
                else { throw TenancyError.notFound("service key \(id.lowercasedString) does not exist") }
                guard try old.decode("usable", as: Bool.self) else {
                    throw TenancyError(
                        .conflict, code: "PGW409", "service key \(id.lowercasedString) is revoked or expired and cannot be rotated",
                        hint: "create a new key instead")
                }
                try connection.query(
                    "UPDATE public.service_keys SET expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => $2)) WHERE id = $1",
                    [id, seconds])
                return try connection.query(
                    """
                    INSERT INTO public.service_keys (id, tenant_id, name, key_hash, scopes, expires_at)
                    SELECT $2::uuid, tenant_id, name, $3::bytea, scopes, $4::timestamptz FROM public.service_keys WHERE id = $1
                    RETURNING \(Self.recordColumns)
                    """, [id, newID, digest, expiresAt])
            }
        ) { row in
            let key = try Self.serviceKey(row)
            return (
                key.tenantID,
                AuditEvent(
                    actor: actor, action: "service_key.rotated", target: "service_key:" + id.lowercasedString,
                    details: ["new_key_id": .string(key.id.lowercasedString), "overlap_seconds": .int(seconds)])
            )
        }
        let new = try Self.serviceKey(result.first!)
        guard let old = try await Self.find(pool: pool, id: id) else {
            throw TenancyError.notFound("service key \(id.lowercasedString) does not exist")
        }
        return (old, new, secret)
    }

    /// One key's record (never the key nor its hash), or nil.
    public static func find(pool: ConnectionPool, id: UUID) async throws -> ServiceKey? {
        try await pool.query("SELECT \(recordColumns) FROM public.service_keys WHERE id = $1", [id]).first.map(serviceKey)
    }

    /// The keys of `tenant` (every tenant's when nil), newest first: id, name, scopes, created and
    /// revoked times — never a key nor its hash. Needs no root key.
    public static func list(pool: ConnectionPool, tenant: UUID?) async throws -> [ServiceKey] {
        try await pool.query(
            """
            SELECT \(recordColumns) FROM public.service_keys
            WHERE $1::uuid IS NULL OR tenant_id = $1::uuid ORDER BY created_at DESC, id
            """, [tenant]
        ).rows.map(serviceKey)
    }

    /// The active key matching `presented`, or nil. The stored hash is compared in constant time.
    public func authenticate(_ presented: String) async throws -> ServiceKey? {
        guard let id = Self.keyID(of: presented) else { return nil }
        let result = try await pool.query(
            """
            SELECT k.id, k.tenant_id, k.name, k.scopes, k.created_at, k.revoked_at, k.expires_at, k.last_used_at, k.key_hash
            FROM public.service_keys k WHERE k.id = $1 AND \(Self.activeCondition)
            """, [id])
        guard let row = result.first else { return nil }
        let stored: [UInt8] = try row.decode("key_hash")
        guard ConstantTime.equals(stored, hash(presented)) else { return nil }
        // Called once per cache lifetime per key and process: `last_used_at` is that precise.
        // At most one write a minute per key (the trigger of 0016 ignores this column).
        try await pool.query(
            "UPDATE public.service_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
            [id])
        return try Self.serviceKey(row)
    }

    /// A key that may authenticate (alias `k`): not revoked, not expired, its tenant not disabled
    /// (migration 0025; the same test as `public.assert_service_key_active`).
    package static let activeCondition = """
        k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
        AND NOT EXISTS (SELECT 1 FROM public.tenants t WHERE t.id = k.tenant_id AND t.disabled_at IS NOT NULL)
        """

    /// Whether the key `id` exists and is not revoked, asked of the database now (one primary-key
    /// lookup): how a cached key is re-checked per request.
    public func isActive(_ id: UUID) async throws -> Bool {
        try await pool.query("SELECT 1 FROM public.service_keys k WHERE k.id = $1 AND \(Self.activeCondition)", [id]).first != nil
    }

    package func hash(_ key: String) -> [UInt8] {
        HMACSHA256.authenticate(Array(key.utf8), key: keyHashKey)
    }

    package static func keyID(of key: String) -> UUID? {
        // `pgw_` + 32 hex digits + `_` + 43 base64url characters: 80 ASCII bytes, read as bytes.
        // Every request runs this; splitting and grapheme-counting Substrings cost 4% of a REST
        // read's gateway CPU (perf, rest-vs-pgbench).
        var key = key
        return key.withUTF8 { bytes -> UUID? in
            guard bytes.count == 80, bytes[0] == UInt8(ascii: "p"), bytes[1] == UInt8(ascii: "g"), bytes[2] == UInt8(ascii: "w"),
                bytes[3] == UInt8(ascii: "_"), bytes[36] == UInt8(ascii: "_"),
                bytes[37...].allSatisfy(Self.isBase64URL)
            else { return nil }
            var id = [UInt8](repeating: 0, count: 16)
            for index in 0..<16 {
                guard let high = Self.hexValue(bytes[4 + 2 * index]), let low = Self.hexValue(bytes[5 + 2 * index]) else { return nil }
                id[index] = high << 4 | low
            }
            return UUID(
                uuid: (
                    id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7],
                    id[8], id[9], id[10], id[11], id[12], id[13], id[14], id[15]
                ))
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }

    private static func bytes(of id: UUID) -> [UInt8] {
        withUnsafeBytes(of: id.uuid) { Array($0) }
    }

    private static func serviceKey(_ row: PostgresRow) throws -> ServiceKey {
        let scopes = try row.decode("scopes", as: PostgresTextArray.self).elements.compactMap { $0.flatMap(Scope.init(rawValue:)) }
        return ServiceKey(
            id: try row.decode("id"), tenantID: try row.decode("tenant_id"), name: try row.decodeIfPresent("name"),
            scopes: scopes, createdAt: try row.decode("created_at"), revokedAt: try row.decodeIfPresent("revoked_at"),
            expiresAt: try row.decodeIfPresent("expires_at"), lastUsedAt: try row.decodeIfPresent("last_used_at"))
    }
}
