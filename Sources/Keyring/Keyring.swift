import Foundation
import Postgres
import Sodium
import Synchronization

/// The key hierarchy (DESIGN.md §7): root key → tenant KEKs (versioned) → subject DEKs.
///
/// Opening a keyring checks the root key against the registered fingerprints, so a wrong
/// root key is refused at start with a clear error instead of failing later on every secret.
/// Unwrapped KEKs are cached in secure memory. Each use of a subject DEK reads its wrapped form
/// from the database, so destroying it takes effect at once in every process; unwrapped DEKs are
/// kept (bounded) only to skip unwrapping that same wrapped key again.
///
/// Statements that take a `Connection` run there (inside the caller's transaction) as the
/// connection's session user — the gateway's login or the owner — before any request role is
/// assumed: request roles have no right on the `keyring` schema.
public final class Keyring: Sendable {
    let root: RootKey
    /// The key from which keys that must survive root rotation are derived.
    public let serviceMaster: SecureBytes
    private let keks = Mutex<[KEKIdentity: SecureBytes]>([:])
    /// Unwrapped DEKs by the exact wrapped key they came from (its random nonce identifies it).
    private let deks = Mutex<[DEKIdentity: SecureBytes]>([:])
    static let dekCacheCapacity = 1024

    struct DEKIdentity: Hashable {
        let tenant: UUID
        let user: UUID
        let kekVersion: Int
        let nonce: [UInt8]
    }

    struct KEKIdentity: Hashable {
        let tenant: UUID
        let version: Int
    }

    /// The version of the root key this keyring holds.
    public var rootVersion: Int { root.version }

    private init(root: RootKey, serviceMaster: SecureBytes) {
        self.root = root
        self.serviceMaster = serviceMaster
    }

    /// Opens the keyring with `source`, registering it as root version 1 on an empty database.
    ///
    /// - Throws: ``KeyringError/Code/wrongRootKey`` when another root key is registered,
    ///   ``KeyringError/Code/retiredRootKey`` for a key replaced by root rotation,
    ///   ``KeyringError/Code/rootRotationInProgress`` when the service master is wrapped under
    ///   another root version.
    public static func open(pool: ConnectionPool, root source: RootKeySource) async throws -> Keyring {
        try await database {
            try await pool.transaction { connection in
                try connection.query("SELECT pg_advisory_xact_lock(hashtext('privacy-gateway keyring'))")
                let root = try Self.register(source, in: connection)
                let master = try Self.serviceMaster(root: root, in: connection)
                return Keyring(root: root, serviceMaster: master)
            }
        }
    }

    /// Finds (or, on an empty database, registers) the root key `source` gives.
    static func register(_ source: RootKeySource, in connection: borrowing Connection, allowNew: Bool = false) throws -> RootKey {
        let registered = try connection.query(
            "SELECT version, fingerprint, kdf_salt, kdf_ops_limit, kdf_mem_limit, retired_at IS NOT NULL AS retired FROM keyring.root_keys ORDER BY version"
        ).rows
        var salt: [UInt8]?
        var limits: (ops: Int64, mem: Int64)?
        let key: SecureBytes
        switch source {
        case .key(let bytes):
            guard bytes.count == 32 else { throw KeyringError(.invalidInput, "a root key is 32 bytes; this one is \(bytes.count)") }
            key = bytes
        case .passphrase(let passphrase):
            guard passphrase.count >= RootKeySource.minimumPassphraseLength else {
                throw KeyringError(.invalidInput, "a root passphrase needs at least \(RootKeySource.minimumPassphraseLength) characters")
            }
            // The newest registered passphrase root gives the salt; a new database gets a fresh one.
            if let row = try registered.last(where: { try $0.decodeIfPresent("kdf_salt", as: [UInt8].self) != nil }),
                !allowNew
            {
                salt = try row.decode("kdf_salt")
                limits = (try row.decode("kdf_ops_limit"), try row.decode("kdf_mem_limit"))
            } else {
                salt = Random.bytes(Argon2id.saltLength)
                limits = (Int64(Argon2id.interactiveOpsLimit), Int64(Argon2id.interactiveMemLimit))
            }
            key = try Argon2id.deriveKey(
                passphrase: passphrase, salt: salt!, opsLimit: UInt64(limits!.ops), memLimit: Int(limits!.mem))
        }
        let fingerprint = try RootKey.fingerprint(of: key)
        if let row = try registered.first(where: { ConstantTime.equals(try $0.decode("fingerprint"), fingerprint) }) {
            let version: Int = try row.decode("version")
            if try row.decode("retired", as: Bool.self) {
                throw KeyringError(
                    .retiredRootKey, "this root key (version \(version)) was retired by a root rotation; start with the current root key")
            }
            return RootKey(key: key, version: version)
        }
        guard registered.isEmpty || allowNew else {
            throw KeyringError(
                .wrongRootKey,
                "the root key does not match the one this database was set up with (registered root versions: \(registered.count)); nothing was changed"
            )
        }
        let version = (try registered.last?.decode("version", as: Int.self) ?? 0) + 1
        try connection.query(
            "INSERT INTO keyring.root_keys (version, fingerprint, kdf_salt, kdf_ops_limit, kdf_mem_limit) VALUES ($1, $2, $3, $4, $5)",
            [version, fingerprint, salt, limits?.ops, limits?.mem])
        return RootKey(key: key, version: version)
    }

    /// Unwraps the service master; on a database that predates the keyring, adopts the root key
    /// itself (so service-key hashes and audit pseudonyms made before stay valid).
    private static func serviceMaster(root: RootKey, in connection: borrowing Connection) throws -> SecureBytes {
        if let row = try connection.query("SELECT root_version, nonce, wrapped_key FROM keyring.service_master").first {
            let wrappedUnder: Int = try row.decode("root_version")
            guard wrappedUnder == root.version else {
                throw KeyringError(
                    .rootRotationInProgress,
                    "keys are wrapped under root version \(wrappedUnder), this root key is version \(root.version): finish `privacyctl keys rotate --root` or start with the current root key"
                )
            }
            return try unwrap(
                row, key: root.key, associatedData: AssociatedData.serviceMaster(root: root.version), what: "the service master")
        }
        let (nonce, wrapped) = try XChaCha20Poly1305.wrap(
            root.key, key: root.key, associatedData: AssociatedData.serviceMaster(root: root.version))
        try connection.query(
            "INSERT INTO keyring.service_master (root_version, nonce, wrapped_key) VALUES ($1, $2, $3)", [root.version, nonce, wrapped])
        return root.key
    }

    // MARK: - Tenant KEKs

    /// The tenant's current KEK (the highest version not retired), created as version 1 on first use.
    public func currentTenantKey(_ tenant: UUID, in connection: borrowing Connection) throws -> (version: Int, key: SecureBytes) {
        if let row = try connection.query(
            "SELECT version, root_version, nonce, wrapped_key FROM keyring.tenant_keys WHERE tenant_id = $1 AND retired_at IS NULL ORDER BY version DESC LIMIT 1",
            [tenant]
        ).first {
            let version: Int = try row.decode("version")
            return (version, try tenantKey(tenant, row: row))
        }
        return try createTenantKey(tenant, version: 1, in: connection)
    }

    /// A given version of the tenant's KEK (retired versions included: a reader may hold a DEK
    /// row read just before its rewrap committed).
    public func tenantKey(_ tenant: UUID, version: Int, in connection: borrowing Connection) throws -> SecureBytes {
        if let key = keks.withLock({ $0[KEKIdentity(tenant: tenant, version: version)] }) { return key }
        guard
            let row = try connection.query(
                "SELECT version, root_version, nonce, wrapped_key FROM keyring.tenant_keys WHERE tenant_id = $1 AND version = $2",
                [tenant, version]
            ).first
        else {
            throw KeyringError(.keyMissing, "tenant \(tenant.lowercasedString) has no key version \(version)")
        }
        return try tenantKey(tenant, row: row)
    }

    private func tenantKey(_ tenant: UUID, row: PostgresRow) throws -> SecureBytes {
        let version: Int = try row.decode("version")
        let identity = KEKIdentity(tenant: tenant, version: version)
        if let key = keks.withLock({ $0[identity] }) { return key }
        let rootVersion: Int = try row.decode("root_version")
        guard rootVersion == root.version else {
            throw KeyringError(
                .rootRotationInProgress,
                "key version \(version) of tenant \(tenant.lowercasedString) is wrapped under root version \(rootVersion); this process holds root version \(root.version)"
            )
        }
        let key = try Self.unwrap(
            row, key: root.key, associatedData: AssociatedData.tenantKey(tenant: tenant, version: version, root: rootVersion),
            what: "key version \(version) of tenant \(tenant.lowercasedString)")
        keks.withLock { $0[identity] = key }
        return key
    }

    /// Adds KEK `version` for `tenant` (if another process added it first, that one is used).
    func createTenantKey(_ tenant: UUID, version: Int, in connection: borrowing Connection) throws -> (version: Int, key: SecureBytes) {
        let key = try SecureBytes(count: XChaCha20Poly1305.keyLength)
        let (nonce, wrapped) = try XChaCha20Poly1305.wrap(
            key, key: root.key, associatedData: AssociatedData.tenantKey(tenant: tenant, version: version, root: root.version))
        let inserted = try connection.query(
            """
            INSERT INTO keyring.tenant_keys (tenant_id, version, root_version, nonce, wrapped_key) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT DO NOTHING RETURNING version
            """, [tenant, version, root.version, nonce, wrapped])
        if inserted.rows.isEmpty { return (version, try tenantKey(tenant, version: version, in: connection)) }
        keks.withLock { $0[KEKIdentity(tenant: tenant, version: version)] = key }
        return (version, key)
    }

    // MARK: - Subject DEKs

    /// The statement that reads a subject's wrapped DEK; send it in the caller's pipeline and hand
    /// its row to ``subjectKey(_:user:row:in:)``.
    public static func subjectKeyStatement(tenant: UUID, user: UUID) -> Statement {
        Statement(
            "SELECT kek_version, nonce, wrapped_key, destroyed_at IS NOT NULL AS destroyed FROM keyring.subject_keys WHERE tenant_id = $1 AND user_id = $2",
            [tenant, user])
    }

    /// Opens the subject's DEK from a row of ``subjectKeyStatement(tenant:user:)``.
    ///
    /// - Throws: ``KeyringError/Code/subjectKeyDestroyed`` for a shredded subject.
    public func subjectKey(_ tenant: UUID, user: UUID, row: PostgresRow, in connection: borrowing Connection) throws -> SecureBytes {
        try subjectKey(tenant, user: user, row: row) { try tenantKey(tenant, version: $0, in: connection) }!
    }

    /// Like ``subjectKey(_:user:row:in:)`` but without the database: `nil` when opening the DEK
    /// needs a KEK this process has not loaded yet (then call that one on a connection).
    public func cachedSubjectKey(_ tenant: UUID, user: UUID, row: PostgresRow) throws -> SecureBytes? {
        try subjectKey(tenant, user: user, row: row) { version in keks.withLock { $0[KEKIdentity(tenant: tenant, version: version)] } }
    }

    private func subjectKey(
        _ tenant: UUID, user: UUID, row: PostgresRow, kek loadKEK: (_ version: Int) throws -> SecureBytes?
    ) throws -> SecureBytes? {
        if try row.decode("destroyed", as: Bool.self) {
            deks.withLock { cache in cache = cache.filter { $0.key.tenant != tenant || $0.key.user != user } }
            throw KeyringError(
                .subjectKeyDestroyed, "the key of subject \(user.lowercasedString) was destroyed; their secrets cannot be opened")
        }
        let kekVersion: Int = try row.decode("kek_version")
        let identity = DEKIdentity(tenant: tenant, user: user, kekVersion: kekVersion, nonce: try row.decode("nonce"))
        if let key = deks.withLock({ $0[identity] }) { return key }
        guard let kek = try loadKEK(kekVersion) else { return nil }
        let key = try Self.unwrap(
            row, key: kek, associatedData: AssociatedData.subjectKey(tenant: tenant, user: user, kekVersion: kekVersion),
            what: "the key of subject \(user.lowercasedString)")
        deks.withLock { cache in
            if cache.count >= Self.dekCacheCapacity { cache.removeAll() }
            cache[identity] = key
        }
        return key
    }

    /// The subject's DEK; with `create`, one is made on first use. Nil when there is none and
    /// `create` is false.
    public func subjectKey(_ tenant: UUID, user: UUID, create: Bool, in connection: borrowing Connection) throws -> SecureBytes? {
        if let row = try connection.pipeline([Self.subjectKeyStatement(tenant: tenant, user: user)])[0].first {
            return try subjectKey(tenant, user: user, row: row, in: connection)
        }
        guard create else { return nil }
        let (kekVersion, kek) = try currentTenantKey(tenant, in: connection)
        let key = try SecureBytes(count: XChaCha20Poly1305.keyLength)
        let (nonce, wrapped) = try XChaCha20Poly1305.wrap(
            key, key: kek, associatedData: AssociatedData.subjectKey(tenant: tenant, user: user, kekVersion: kekVersion))
        let inserted = try connection.query(
            """
            INSERT INTO keyring.subject_keys (tenant_id, user_id, kek_version, nonce, wrapped_key) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT DO NOTHING RETURNING user_id
            """, [tenant, user, kekVersion, nonce, wrapped])
        if inserted.rows.isEmpty {
            // Another writer created it first: use theirs.
            return try subjectKey(tenant, user: user, create: false, in: connection)
        }
        return key
    }

    /// Crypto-shredding: destroys the subject's DEK, so every value sealed under it — in the
    /// database, its WAL and its backups — can no longer be opened. Idempotent; returns whether a
    /// live key was destroyed now. A subject without a key gets a destroyed marker, so no key can
    /// be made for them later by mistake.
    @discardableResult
    public static func shredSubjectKey(_ tenant: UUID, user: UUID, in connection: borrowing Connection) throws -> Bool {
        let destroyed = try connection.query(
            """
            UPDATE keyring.subject_keys SET nonce = NULL, wrapped_key = NULL, destroyed_at = now()
            WHERE tenant_id = $1 AND user_id = $2 AND destroyed_at IS NULL RETURNING user_id
            """, [tenant, user])
        if !destroyed.rows.isEmpty { return true }
        // No live key: record the destruction against the tenant's current KEK version.
        try connection.query(
            """
            INSERT INTO keyring.subject_keys (tenant_id, user_id, kek_version, destroyed_at)
            SELECT $1, $2, version, now() FROM keyring.tenant_keys WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1
            ON CONFLICT DO NOTHING
            """, [tenant, user])
        return false
    }

    // MARK: - Tenant secrets (JWT secrets)

    /// A value sealed under the tenant's current KEK.
    public struct SealedValue: Sendable {
        public var ciphertext: [UInt8]
        public var nonce: [UInt8]
        public var kekVersion: Int

        public init(ciphertext: [UInt8], nonce: [UInt8], kekVersion: Int) {
            self.ciphertext = ciphertext
            self.nonce = nonce
            self.kekVersion = kekVersion
        }
    }

    /// Seals a tenant-level secret (`purpose` e.g. `jwt_secret`) under the tenant's current KEK.
    public func sealTenantSecret(_ plaintext: [UInt8], tenant: UUID, purpose: String, in connection: borrowing Connection) throws
        -> SealedValue
    {
        let (version, kek) = try currentTenantKey(tenant, in: connection)
        let (nonce, ciphertext) = try XChaCha20Poly1305.seal(
            plaintext, key: kek, associatedData: AssociatedData.tenantSecret(tenant: tenant, purpose: purpose, kekVersion: version))
        return SealedValue(ciphertext: ciphertext, nonce: nonce, kekVersion: version)
    }

    /// Opens a value sealed by ``sealTenantSecret(_:tenant:purpose:in:)``.
    public func openTenantSecret(_ sealed: SealedValue, tenant: UUID, purpose: String, in connection: borrowing Connection) throws
        -> [UInt8]
    {
        let kek = try tenantKey(tenant, version: sealed.kekVersion, in: connection)
        do {
            return try XChaCha20Poly1305.open(
                sealed.ciphertext, nonce: sealed.nonce, key: kek,
                associatedData: AssociatedData.tenantSecret(tenant: tenant, purpose: purpose, kekVersion: sealed.kekVersion))
        } catch {
            throw KeyringError(.unwrapFailed, "the \(purpose) of tenant \(tenant.lowercasedString) does not open: it was altered or moved")
        }
    }

    // MARK: - Helpers

    static func unwrap(_ row: PostgresRow, key: SecureBytes, associatedData: [UInt8], what: String) throws -> SecureBytes {
        let nonce: [UInt8] = try row.decode("nonce")
        let wrapped: [UInt8] = try row.decode("wrapped_key")
        do {
            return try XChaCha20Poly1305.unwrap(wrapped, nonce: nonce, key: key, associatedData: associatedData)
        } catch {
            throw KeyringError(.unwrapFailed, "\(what) does not open: it was altered or moved, or the root key is wrong")
        }
    }

    /// Runs `body`, turning database failures into ``KeyringError/Code/database``.
    static func database<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresError {
            throw KeyringError(.database, "the keyring could not be read or written: \(error.summary)", underlying: error)
        }
    }
}
