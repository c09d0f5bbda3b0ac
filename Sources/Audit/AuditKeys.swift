import Foundation
import Sodium
import Synchronization

/// Per-tenant audit keys, for pseudonymising sensitive values in entries.
///
/// tenant key = HMAC-SHA-256(key: crypto_kdf(root, id 2, context `"auditkey"`), message: the
/// tenant id's 16 bytes). crypto_kdf ids are 64-bit, too small for a tenant uuid, so the KDF
/// gives one audit master key and HMAC spreads it over tenants. A tenant key can be handed to
/// that tenant's auditor without revealing the root key or other tenants' keys.
public final class AuditKeys: Sendable {
    /// The crypto_kdf id and context of the audit master key (id 1 is the service-key hash key).
    public static let derivationID: UInt64 = 2
    public static let derivationContext = "auditkey"
    /// The prefix of a pseudonymised value in `details`.
    public static let prefix = "hmac:"

    private let master: SecureBytes
    // Deriving is cheap, but a busy tenant pseudonymises on every append; keep derived keys.
    private let cache = Mutex<[UUID: SecureBytes]>([:])

    /// Derives the audit master key from the 32-byte root key.
    public init(rootKey: SecureBytes) throws(SodiumError) {
        master = try KeyDerivation.subkey(from: rootKey, id: Self.derivationID, context: Self.derivationContext)
    }

    /// The tenant's audit key (32 bytes).
    public func tenantKey(_ tenant: UUID) throws -> SecureBytes {
        if let key = cache.withLock({ $0[tenant] }) { return key }
        let key = try SecureBytes(copying: HMACSHA256.authenticate(Self.bytes(of: tenant), key: master))
        cache.withLock { $0[tenant] = key }
        return key
    }

    /// `hmac:<hex>` of `value` under the tenant's audit key: what the appender stores.
    public func pseudonym(_ value: String, tenant: UUID) throws -> String {
        Self.pseudonym(value, tenantKey: try tenantKey(tenant))
    }

    /// `hmac:<hex>` of `value` (its UTF-8 bytes) under `tenantKey`.
    public static func pseudonym(_ value: String, tenantKey: SecureBytes) -> String {
        prefix + Hex.encode(HMACSHA256.authenticate(Array(value.utf8), key: tenantKey))
    }

    /// For auditors: whether `stored` (an `hmac:<hex>` value from an entry) is the pseudonym
    /// of `value` under `tenantKey`. Compared in constant time.
    public static func matches(_ value: String, stored: String, tenantKey: SecureBytes) -> Bool {
        guard stored.hasPrefix(prefix), let mac = Hex.decode(String(stored.dropFirst(prefix.count))) else {
            return false
        }
        return HMACSHA256.isValid(mac, for: Array(value.utf8), key: tenantKey)
    }

    static func bytes(of uuid: UUID) -> [UInt8] {
        withUnsafeBytes(of: uuid.uuid) { Array($0) }
    }
}
