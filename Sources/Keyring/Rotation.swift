import Foundation
import Postgres
import Sodium

/// Where a tenant's KEK rotation stands, reported after every batch.
public struct RotationProgress: Sendable, Equatable {
    public var tenant: UUID
    /// The KEK version DEKs are being rewrapped under.
    public var toVersion: Int
    public var rewrapped: Int
    public var remaining: Int
}

/// What a finished rotation did.
public struct RotationReport: Sendable, Codable, Equatable {
    public var tenant: UUID
    /// The versions that were current before; empty for a tenant that had no key yet.
    public var fromVersions: [Int]
    public var toVersion: Int
    /// Whether this run continued an interrupted rotation instead of starting a new one.
    public var resumed: Bool
    public var rewrappedSubjectKeys: Int
    public var rewrappedTenantSecrets: Int
    public var retiredVersions: [Int]

    enum CodingKeys: String, CodingKey {
        case tenant
        case fromVersions = "from_versions"
        case toVersion = "to_version"
        case resumed
        case rewrappedSubjectKeys = "rewrapped_subject_keys"
        case rewrappedTenantSecrets = "rewrapped_tenant_secrets"
        case retiredVersions = "retired_versions"
    }
}

extension Keyring {
    /// Rotates a tenant's KEK: adds a version, rewraps every subject DEK (and the tenant's sealed
    /// JWT secret) under it in batches, then retires the versions nothing refers to any more.
    ///
    /// No plaintext secret is touched: only DEKs are unwrapped and wrapped again. Each batch is one
    /// short transaction (`FOR UPDATE SKIP LOCKED`), so readers keep opening secrets throughout —
    /// a DEK row is always wrapped under a version that still exists. Killed at any point, a new
    /// run resumes the unfinished rotation instead of starting another.
    public func rotateTenantKey(
        _ tenant: UUID, pool: ConnectionPool, batchSize: Int = 500,
        progress: @Sendable (RotationProgress) -> Void = { _ in }
    ) async throws -> RotationReport {
        guard batchSize > 0 else { throw KeyringError(.invalidInput, "the batch size must be positive") }
        let (target, previous, resumed) = try await Self.database {
            try await pool.transaction { connection in
                guard try connection.query("SELECT 1 FROM public.tenants WHERE id = $1", [tenant]).first != nil else {
                    throw KeyringError(.keyMissing, "tenant \(tenant.lowercasedString) does not exist")
                }
                try connection.query(
                    "SELECT pg_advisory_xact_lock(hashtext('privacy-gateway keyring rotation'), hashtext($1))", [tenant.lowercasedString])
                let live: [Int] = try connection.query(
                    "SELECT version FROM keyring.tenant_keys WHERE tenant_id = $1 AND retired_at IS NULL ORDER BY version", [tenant]
                ).rows.map { try $0.decode("version") }
                if let current = live.last, live.count > 1 {
                    return (current, Array(live.dropLast()), true)  // an earlier run stopped part-way
                }
                let highest = try connection.query(
                    "SELECT coalesce(max(version), 0) AS version FROM keyring.tenant_keys WHERE tenant_id = $1", [tenant]
                ).first!.decode("version", as: Int.self)
                let (version, _) = try self.createTenantKey(tenant, version: highest + 1, in: connection)
                return (version, live, false)
            }
        }
        var rewrapped = 0
        while true {
            let (count, remaining) = try await Self.database {
                try await pool.transaction { connection in
                    try self.rewrapSubjectKeys(tenant, to: target, limit: batchSize, in: connection)
                }
            }
            rewrapped += count
            progress(RotationProgress(tenant: tenant, toVersion: target, rewrapped: rewrapped, remaining: remaining))
            if remaining == 0 { break }
        }
        let (secrets, retired) = try await Self.database {
            try await pool.transaction { connection in
                let secrets = try self.rewrapTenantSecrets(tenant, to: target, in: connection)
                // Destroyed subjects keep their marker row; it carries no key, so it moves along.
                try connection.query(
                    "UPDATE keyring.subject_keys SET kek_version = $2 WHERE tenant_id = $1 AND kek_version < $2 AND destroyed_at IS NOT NULL",
                    [tenant, target])
                let retired: [Int] = try connection.query(
                    """
                    UPDATE keyring.tenant_keys k SET retired_at = now()
                    WHERE k.tenant_id = $1 AND k.version < $2 AND k.retired_at IS NULL
                      AND NOT EXISTS (SELECT 1 FROM keyring.subject_keys s WHERE s.tenant_id = k.tenant_id AND s.kek_version = k.version)
                      AND NOT EXISTS (SELECT 1 FROM public.tenants t WHERE t.id = k.tenant_id
                                      AND (t.jwt_secret_kek_version = k.version OR t.jwt_previous_secret_kek_version = k.version))
                    RETURNING version
                    """, [tenant, target]
                ).rows.map { try $0.decode("version") }
                return (secrets, retired.sorted())
            }
        }
        return RotationReport(
            tenant: tenant, fromVersions: previous, toVersion: target, resumed: resumed,
            rewrappedSubjectKeys: rewrapped, rewrappedTenantSecrets: secrets, retiredVersions: retired)
    }

    /// Rewraps up to `limit` DEKs still under an older KEK; returns how many, and how many remain.
    private func rewrapSubjectKeys(_ tenant: UUID, to target: Int, limit: Int, in connection: borrowing Connection) throws -> (Int, Int) {
        let newKEK = try tenantKey(tenant, version: target, in: connection)
        let rows = try connection.query(
            """
            SELECT user_id, kek_version, nonce, wrapped_key FROM keyring.subject_keys
            WHERE tenant_id = $1 AND kek_version < $2 AND destroyed_at IS NULL
            ORDER BY user_id LIMIT $3 FOR UPDATE SKIP LOCKED
            """, [tenant, target, limit]
        ).rows
        var users: [String] = [], nonces: [String] = [], wrapped: [String] = []
        for row in rows {
            let user: UUID = try row.decode("user_id")
            let oldVersion: Int = try row.decode("kek_version")
            let dek = try Self.unwrap(
                row, key: try tenantKey(tenant, version: oldVersion, in: connection),
                associatedData: AssociatedData.subjectKey(tenant: tenant, user: user, kekVersion: oldVersion),
                what: "the key of subject \(user.lowercasedString)")
            let (nonce, sealed) = try XChaCha20Poly1305.wrap(
                dek, key: newKEK, associatedData: AssociatedData.subjectKey(tenant: tenant, user: user, kekVersion: target))
            users.append(user.lowercasedString)
            nonces.append(Hex.encode(nonce))
            wrapped.append(Hex.encode(sealed))
        }
        if !users.isEmpty {
            try connection.query(
                """
                UPDATE keyring.subject_keys s
                SET kek_version = $2, nonce = decode(n.nonce, 'hex'), wrapped_key = decode(n.wrapped, 'hex'), rewrapped_at = now()
                FROM unnest($3::uuid[], $4::text[], $5::text[]) AS n(user_id, nonce, wrapped)
                WHERE s.tenant_id = $1 AND s.user_id = n.user_id
                """, [tenant, target, PostgresTextArray(users), PostgresTextArray(nonces), PostgresTextArray(wrapped)])
        }
        let remaining = try connection.query(
            "SELECT count(*) AS n FROM keyring.subject_keys WHERE tenant_id = $1 AND kek_version < $2 AND destroyed_at IS NULL",
            [tenant, target]
        ).first!.decode("n", as: Int.self)
        return (users.count, remaining)
    }

    /// Reseals the tenant's JWT secret, and the previous one a rotation keeps for its overlap
    /// window (migration 0027), under KEK `target` (plaintext secrets are gone since migration 0014).
    private func rewrapTenantSecrets(_ tenant: UUID, to target: Int, in connection: borrowing Connection) throws -> Int {
        var count = 0
        for prefix in ["jwt_secret", "jwt_previous_secret"] {
            guard
                let row = try connection.query(
                    "SELECT \(prefix)_sealed AS sealed, \(prefix)_nonce AS nonce, \(prefix)_kek_version AS version FROM public.tenants WHERE id = $1 FOR UPDATE",
                    [tenant]
                ).first
            else { return count }
            guard let version = try row.decodeIfPresent("version", as: Int.self), version != target else { continue }
            var plaintext = try openTenantSecret(
                SealedValue(ciphertext: try row.decode("sealed"), nonce: try row.decode("nonce"), kekVersion: version),
                tenant: tenant, purpose: TenantSecretPurpose.jwtSecret, in: connection)
            defer { plaintext.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
            let kek = try tenantKey(tenant, version: target, in: connection)
            let (nonce, sealed) = try XChaCha20Poly1305.seal(
                plaintext, key: kek,
                associatedData: AssociatedData.tenantSecret(tenant: tenant, purpose: TenantSecretPurpose.jwtSecret, kekVersion: target))
            try connection.query(
                "UPDATE public.tenants SET \(prefix)_sealed = $2, \(prefix)_nonce = $3, \(prefix)_kek_version = $4 WHERE id = $1",
                [tenant, sealed, nonce, target])
            count += 1
        }
        return count
    }

    // MARK: - Root rotation

    /// Replaces the root key: registers `newRoot`, rewraps the service master and every tenant
    /// KEK under it, then retires this keyring's root version. Resumable: run it again with the
    /// same new key after an interruption. Processes still holding the old root key must be
    /// restarted with the new one afterwards. Returns the new root version and the KEKs rewrapped.
    public func rotateRoot(to newRoot: SecureBytes, pool: ConnectionPool, batchSize: Int = 500) async throws -> (
        version: Int, rewrapped: Int
    ) {
        let new = try await Self.database {
            try await pool.transaction { connection in
                try connection.query("SELECT pg_advisory_xact_lock(hashtext('privacy-gateway keyring'))")
                let new = try Self.register(.key(newRoot), in: connection, allowNew: true)
                guard new.version != self.root.version else {
                    throw KeyringError(.invalidInput, "the new root key is the current one")
                }
                let master = try connection.query("SELECT root_version FROM keyring.service_master").first
                if try master?.decode("root_version", as: Int.self) == self.root.version {
                    let (nonce, wrapped) = try XChaCha20Poly1305.wrap(
                        self.serviceMaster, key: newRoot, associatedData: AssociatedData.serviceMaster(root: new.version))
                    try connection.query(
                        "UPDATE keyring.service_master SET root_version = $1, nonce = $2, wrapped_key = $3", [new.version, nonce, wrapped])
                }
                return new
            }
        }
        var rewrapped = 0
        while true {
            let count = try await Self.database {
                try await pool.transaction { connection in
                    let rows = try connection.query(
                        """
                        SELECT tenant_id, version, root_version, nonce, wrapped_key FROM keyring.tenant_keys
                        WHERE root_version = $1 ORDER BY tenant_id, version LIMIT $2 FOR UPDATE
                        """, [self.root.version, batchSize]
                    ).rows
                    for row in rows {
                        let tenant: UUID = try row.decode("tenant_id")
                        let version: Int = try row.decode("version")
                        let kek = try Self.unwrap(
                            row, key: self.root.key,
                            associatedData: AssociatedData.tenantKey(tenant: tenant, version: version, root: self.root.version),
                            what: "key version \(version) of tenant \(tenant.lowercasedString)")
                        let (nonce, wrapped) = try XChaCha20Poly1305.wrap(
                            kek, key: newRoot, associatedData: AssociatedData.tenantKey(tenant: tenant, version: version, root: new.version)
                        )
                        try connection.query(
                            "UPDATE keyring.tenant_keys SET root_version = $3, nonce = $4, wrapped_key = $5 WHERE tenant_id = $1 AND version = $2",
                            [tenant, version, new.version, nonce, wrapped])
                    }
                    return rows.count
                }
            }
            rewrapped += count
            if count < batchSize { break }
        }
        _ = try await Self.database {
            try await pool.query(
                "UPDATE keyring.root_keys SET retired_at = now() WHERE version = $1 AND retired_at IS NULL", [root.version])
        }
        return (new.version, rewrapped)
    }
}

/// Purposes of tenant-level sealed secrets (part of their associated data).
public enum TenantSecretPurpose {
    public static let jwtSecret = "jwt_secret"
}
