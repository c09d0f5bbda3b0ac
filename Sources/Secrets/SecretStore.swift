import Audit
import Foundation
import Keyring
import Postgres
import Sodium

/// The secret store (DESIGN.md §7): one secret per (tenant, user, service), sealed with
/// XChaCha20-Poly1305-IETF under the subject's DEK, every access audited.
///
/// Every statement on `user_secrets` runs as ``databaseRole`` with the caller's claims, so the
/// database's RLS re-checks that the subject is the caller (or the user a `service_role` caller
/// names) and the tenant is theirs. No request role has any right on the secrets tables: only
/// this store, which audits every access, reaches them. The value is bound by associated data to tenant, user,
/// service, secret id and version: a ciphertext moved to another row does not open.
///
/// Auditing is fail closed. Changes append their entry in their own transaction. A read's
/// entry is appended (group commit) and awaited before the value is returned: no entry, no value.
/// Failed and denied attempts are recorded too. Entries carry the HMAC of the service name
/// (`AuditKeys.pseudonym`), the subject and the version — never a value.
public final class SecretStore: Sendable {
    public struct Options: Sendable {
        /// Past versions kept per secret; older ones are destroyed when a new value is written.
        public var keptVersions: Int
        /// A read updates `last_used_at` at most this often per secret (a write per read would
        /// serialise readers of one secret on its row).
        public var lastUsedResolutionSeconds: Int
        /// The largest value accepted, in UTF-8 bytes.
        public var maximumValueBytes: Int

        public init(keptVersions: Int = 10, lastUsedResolutionSeconds: Int = 60, maximumValueBytes: Int = 65_536) {
            self.keptVersions = max(0, keptVersions)
            self.lastUsedResolutionSeconds = max(0, lastUsedResolutionSeconds)
            self.maximumValueBytes = maximumValueBytes
        }
    }

    /// Generation of the subject DEK that seals values (`key_version`); KEK rotation rewraps the
    /// DEK without changing it.
    static let dekGeneration = 1
    static let metadataColumns = "service_name, version, created_at, updated_at, last_used_at, deleted_at"

    private let pool: ConnectionPool
    private let keyring: Keyring
    private let audit: AuditAppender
    private let auditKeys: AuditKeys
    private let options: Options

    /// Every operation's database work is its tenant's (``ConnectionPool/withConnection(tenant:_:)``):
    /// it holds one of the tenant's slots in `pool`'s per-tenant cap while a connection is checked
    /// out, and only then — an audited read gives it back before its audit entry commits.
    public init(pool: ConnectionPool, keyring: Keyring, audit: AuditAppender, auditKeys: AuditKeys, options: Options = Options()) {
        self.pool = pool
        self.keyring = keyring
        self.audit = audit
        self.auditKeys = auditKeys
        self.options = options
    }

    // MARK: - Reading

    /// The secret's value (the current version, or past `version`), audited before it is returned.
    public func read(_ caller: SecretCaller, service: String, version: Int? = nil) async throws -> SecretValue {
        try Self.validate(service: service)
        try Self.validate(version: version)
        let keyring = self.keyring, resolution = options.lastUsedResolutionSeconds
        let outcome: Result<SecretValue, Error>
        do {
            let value = try await pool.withConnection(tenant: caller.tenant) { pooled -> SecretValue in
                // A read of the current value also records when it was last used (at most once per
                // `resolution` seconds, so readers of one secret do not queue on its row).
                let select =
                    version == nil
                    ? """
                    WITH touched AS (
                        UPDATE public.user_secrets SET last_used_at = now()
                        WHERE user_id = $1 AND service_name = $2 AND deleted_at IS NULL
                          AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $3))
                        RETURNING id)
                    SELECT id, encrypted_value, initialization_vector, key_version, \(Self.metadataColumns)
                    FROM public.user_secrets WHERE user_id = $1 AND service_name = $2
                    """
                    : """
                    SELECT id, encrypted_value, initialization_vector, key_version, \(Self.metadataColumns)
                    FROM public.user_secrets WHERE user_id = $1 AND service_name = $2
                    """
                var statements = [
                    Keyring.subjectKeyStatement(tenant: caller.tenant, user: caller.subject),
                    Self.assume(caller),
                    Statement(select, version == nil ? [caller.subject, service, resolution] : [caller.subject, service]),
                ]
                if let version {
                    statements.append(
                        Statement(
                            """
                            SELECT v.encrypted_value, v.initialization_vector, v.key_version, v.created_at
                            FROM public.user_secret_versions v JOIN public.user_secrets s ON s.tenant_id = v.tenant_id AND s.id = v.secret_id
                            WHERE s.user_id = $1 AND s.service_name = $2 AND v.version = $3
                            """, [caller.subject, service, version]))
                }
                let results = try await pooled.pipeline(statements)
                guard let row = results[2].first else { throw SecretsError(.notFound, "no secret \"\(service)\" for this user") }
                var metadata = try Self.metadata(row)
                if metadata.deletedAt != nil {
                    throw SecretsError(.deleted, "the secret \"\(service)\" is deleted; undelete it to read it again")
                }
                let id: UUID = try row.decode("id")
                var sealed = row
                if let version, version != metadata.version {
                    guard let past = results[3].first else {
                        throw SecretsError(.notFound, "the secret \"\(service)\" has no version \(version)")
                    }
                    sealed = past
                    metadata.version = version
                    metadata.createdAt = try past.decode("created_at")
                }
                guard let keyRow = results[0].first else {
                    throw SecretsError(.cannotOpen, "the secret \"\(service)\" has no subject key to open it with")
                }
                // The tenant's KEK is loaded from the database once per process and version.
                let dek: SecureBytes
                if let cached = try Self.keyring({ try keyring.cachedSubjectKey(caller.tenant, user: caller.subject, row: keyRow) }) {
                    dek = cached
                } else {
                    dek = try await pooled.run { connection in
                        try Self.keyring { try keyring.subjectKey(caller.tenant, user: caller.subject, row: keyRow, in: connection) }
                    }
                }
                let plaintext = try Self.open(sealed, dek: dek, caller: caller, service: service, id: id, version: metadata.version)
                return SecretValue(metadata: metadata, value: plaintext)
            }
            outcome = .success(value)
        } catch {
            outcome = .failure(error)
        }
        let details: [String: AuditValue] = version.map { ["version": .int(Int64($0))] } ?? [:]
        switch outcome {
        case .success(let value):
            try await record(
                caller, "secret.read", service: service, outcome: .success, details: ["version": .int(Int64(value.metadata.version))])
            return value
        case .failure(let error):
            try await recordFailure(error, caller, "secret.read", service: service, details: details)
            throw Self.mapped(error)
        }
    }

    /// A page of the subject's secrets (metadata only), ordered by service name, after `after`.
    public func list(_ caller: SecretCaller, limit: Int = 100, after: String? = nil, includeDeleted: Bool = false) async throws
        -> SecretPage
    {
        guard Self.pageSizes.contains(limit) else { throw SecretsError(.invalidInput, "limit must be from 1 to 1000") }
        if let after, after.unicodeScalars.count > Self.maximumServiceLength || after.unicodeScalars.contains(where: { $0 == "\0" }) {
            throw SecretsError(.invalidInput, "after must be a service name from a previous page")
        }
        let page: SecretPage
        do {
            let results = try await pool.withConnection(tenant: caller.tenant) {
                try await $0.pipeline([
                    Self.assume(caller),
                    Statement(
                        """
                        SELECT \(Self.metadataColumns) FROM public.user_secrets
                        WHERE user_id = $1 AND service_name > $2 AND ($3 OR deleted_at IS NULL)
                        ORDER BY service_name LIMIT $4
                        """, [caller.subject, after ?? "", includeDeleted, limit + 1]),
                ])
            }
            var secrets = try results[1].rows.map(Self.metadata)
            var next: String?
            if secrets.count > limit {
                secrets.removeLast()
                next = secrets.last?.serviceName
            }
            page = SecretPage(secrets: secrets, next: next)
        } catch {
            try await recordFailure(error, caller, "secret.list", service: nil, details: [:])
            throw Self.mapped(error)
        }
        try await record(caller, "secret.list", service: nil, outcome: .success, details: ["count": .int(Int64(page.secrets.count))])
        return page
    }

    /// The secret's versions, newest first (metadata only).
    public func versions(_ caller: SecretCaller, service: String) async throws -> [SecretVersion] {
        try Self.validate(service: service)
        let versions: [SecretVersion]
        do {
            let results = try await pool.withConnection(tenant: caller.tenant) {
                try await $0.pipeline([
                    Self.assume(caller),
                    Statement(
                        "SELECT version, updated_at AS created_at, NULL::timestamptz AS superseded_at, true AS current FROM public.user_secrets WHERE user_id = $1 AND service_name = $2",
                        [caller.subject, service]),
                    Statement(
                        """
                        SELECT v.version, v.created_at, v.superseded_at, false AS current
                        FROM public.user_secret_versions v JOIN public.user_secrets s ON s.tenant_id = v.tenant_id AND s.id = v.secret_id
                        WHERE s.user_id = $1 AND s.service_name = $2 ORDER BY v.version DESC
                        """, [caller.subject, service]),
                ])
            }
            guard !results[1].rows.isEmpty else { throw SecretsError(.notFound, "no secret \"\(service)\" for this user") }
            versions = try (results[1].rows + results[2].rows).map { row in
                SecretVersion(
                    version: try row.decode("version"), createdAt: try row.decode("created_at"),
                    supersededAt: try row.decodeIfPresent("superseded_at"), current: try row.decode("current"))
            }
        } catch {
            try await recordFailure(error, caller, "secret.versions", service: service, details: [:])
            throw Self.mapped(error)
        }
        try await record(caller, "secret.versions", service: service, outcome: .success, details: ["count": .int(Int64(versions.count))])
        return versions
    }

    // MARK: - Changing

    /// Writes a new value. `ifMatch` is check-and-set: the write happens only if the current
    /// version is `ifMatch` (0: only if the secret does not exist yet). Writing a deleted secret
    /// undeletes it with the new value. The replaced value is kept as a past version.
    public func write(_ caller: SecretCaller, service: String, value: String, ifMatch: Int? = nil) async throws -> SecretMetadata {
        try Self.validate(service: service)
        guard value.utf8.count <= options.maximumValueBytes else {
            throw SecretsError(.invalidInput, "the value is larger than \(options.maximumValueBytes) bytes")
        }
        if let ifMatch, !(0...Self.versions.upperBound).contains(ifMatch) {
            throw SecretsError(.invalidInput, "If-Match is a version from 0 (does not exist yet) to \(Self.versions.upperBound)")
        }
        let keyring = self.keyring, audit = self.audit, kept = options.keptVersions
        let event = try self.event(caller, "secret.write", service: service, outcome: .success, details: [:])
        do {
            return try await pool.transaction(tenant: caller.tenant) { connection in
                let dek = try Self.keyring { try keyring.subjectKey(caller.tenant, user: caller.subject, create: true, in: connection)! }
                let current = try connection.pipeline([
                    Self.assume(caller),
                    Statement(
                        "SELECT id, version FROM public.user_secrets WHERE user_id = $1 AND service_name = $2 FOR UPDATE",
                        [caller.subject, service]),
                ])[1].first
                let currentVersion = try current?.decode("version", as: Int.self) ?? 0
                if let ifMatch, ifMatch != currentVersion {
                    throw SecretsError(
                        .versionConflict,
                        currentVersion == 0
                            ? "the secret \"\(service)\" does not exist (If-Match: \(ifMatch))"
                            : "the secret \"\(service)\" is at version \(currentVersion), not \(ifMatch)")
                }
                let id: UUID = try current?.decode("id") ?? UUID()
                let version = currentVersion + 1
                let (nonce, ciphertext) = try XChaCha20Poly1305.seal(
                    Array(value.utf8), key: dek,
                    associatedData: Self.associatedData(caller: caller, service: service, id: id, version: version))
                let row: PostgresRow
                if current == nil {
                    row = try connection.query(
                        """
                        INSERT INTO public.user_secrets (id, user_id, service_name, encrypted_value, initialization_vector, key_version, version)
                        VALUES ($1, $2, $3, $4, $5, $6, 1) RETURNING \(Self.metadataColumns)
                        """, [id, caller.subject, service, ciphertext, nonce, Self.dekGeneration]
                    ).first!
                } else {
                    row = try connection.pipeline([
                        Statement(
                            """
                            INSERT INTO public.user_secret_versions (secret_id, user_id, version, encrypted_value, initialization_vector, key_version, created_at)
                            SELECT id, user_id, version, encrypted_value, initialization_vector, key_version, updated_at
                            FROM public.user_secrets WHERE id = $1
                            """, [id]),
                        Statement(
                            "DELETE FROM public.user_secret_versions WHERE secret_id = $1 AND version <= $2",
                            [id, version - 1 - kept]),
                        Statement(
                            """
                            UPDATE public.user_secrets
                            SET encrypted_value = $2, initialization_vector = $3, key_version = $4, version = $5, deleted_at = NULL
                            WHERE id = $1 RETURNING \(Self.metadataColumns)
                            """, [id, ciphertext, nonce, Self.dekGeneration, version]),
                    ])[2].first!
                }
                var entry = event
                entry.details["version"] = .int(Int64(version))
                try Self.appendInTransaction(audit, connection, caller.tenant, entry)
                return try Self.metadata(row)
            }
        } catch {
            try await recordFailure(
                error, caller, "secret.write", service: service, details: ifMatch.map { ["if_match": .int(Int64($0))] } ?? [:])
            throw Self.mapped(error, conflict: "the secret \"\(service)\" was created by another request at the same time; retry")
        }
    }

    /// Soft delete: the value stays (and can be undeleted) but cannot be read. Idempotent.
    public func delete(_ caller: SecretCaller, service: String) async throws -> SecretMetadata {
        try await change(
            caller, "secret.delete", service: service, sql: "UPDATE public.user_secrets SET deleted_at = coalesce(deleted_at, now())")
    }

    /// Brings a soft-deleted secret back. Idempotent.
    public func undelete(_ caller: SecretCaller, service: String) async throws -> SecretMetadata {
        try await change(caller, "secret.undelete", service: service, sql: "UPDATE public.user_secrets SET deleted_at = NULL")
    }

    /// Destroys the secret with all its versions, or one past `version`. Irrecoverable.
    public func destroy(_ caller: SecretCaller, service: String, version: Int? = nil) async throws -> [Int] {
        try Self.validate(service: service)
        try Self.validate(version: version)
        let audit = self.audit
        let event = try self.event(caller, "secret.destroy", service: service, outcome: .success, details: [:])
        do {
            return try await pool.transaction(tenant: caller.tenant) { connection in
                let results = try connection.pipeline([
                    Self.assume(caller),
                    Statement(
                        "SELECT id, version FROM public.user_secrets WHERE user_id = $1 AND service_name = $2 FOR UPDATE",
                        [caller.subject, service]),
                ])
                guard let row = results[1].first else { throw SecretsError(.notFound, "no secret \"\(service)\" for this user") }
                let id: UUID = try row.decode("id")
                let current: Int = try row.decode("version")
                var destroyed: [Int]
                if let version {
                    guard version != current else {
                        throw SecretsError(
                            .invalidInput,
                            "version \(version) is the current value; destroy the whole secret, or write a new value first")
                    }
                    destroyed = try connection.query(
                        "DELETE FROM public.user_secret_versions WHERE secret_id = $1 AND version = $2 RETURNING version", [id, version]
                    ).rows.map { try $0.decode("version") }
                    guard !destroyed.isEmpty else { throw SecretsError(.notFound, "the secret \"\(service)\" has no version \(version)") }
                } else {
                    destroyed = try connection.query(
                        "DELETE FROM public.user_secret_versions WHERE secret_id = $1 RETURNING version", [id]
                    ).rows.map { try $0.decode("version") }
                    try connection.query("DELETE FROM public.user_secrets WHERE id = $1", [id])
                    destroyed.append(current)
                }
                destroyed.sort()
                var entry = event
                entry.details["versions"] = .string(destroyed.map(String.init).joined(separator: ","))
                try Self.appendInTransaction(audit, connection, caller.tenant, entry)
                return destroyed
            }
        } catch {
            try await recordFailure(
                error, caller, "secret.destroy", service: service, details: version.map { ["version": .int(Int64($0))] } ?? [:])
            throw Self.mapped(error)
        }
    }

    private func change(_ caller: SecretCaller, _ action: String, service: String, sql: String) async throws -> SecretMetadata {
        try Self.validate(service: service)
        let audit = self.audit
        let event = try self.event(caller, action, service: service, outcome: .success, details: [:])
        do {
            return try await pool.transaction(tenant: caller.tenant) { connection in
                let results = try connection.pipeline([
                    Self.assume(caller),
                    Statement(
                        "\(sql) WHERE user_id = $1 AND service_name = $2 RETURNING \(Self.metadataColumns)", [caller.subject, service]),
                ])
                guard let row = results[1].first else { throw SecretsError(.notFound, "no secret \"\(service)\" for this user") }
                let metadata = try Self.metadata(row)
                var entry = event
                entry.details["version"] = .int(Int64(metadata.version))
                try Self.appendInTransaction(audit, connection, caller.tenant, entry)
                return metadata
            }
        } catch {
            try await recordFailure(error, caller, action, service: service, details: [:])
            throw Self.mapped(error)
        }
    }

    // MARK: - Auditing

    /// Records an attempt refused by the caller's rights before the store was reached (a missing
    /// scope, another user's secrets without `service_role`).
    public func recordDenied(_ caller: SecretCaller, action: String, service: String?, reason: String) async throws {
        try await record(caller, action, service: service, outcome: .denied, details: ["reason": .string(reason)])
    }

    private func event(
        _ caller: SecretCaller, _ action: String, service: String?, outcome: AuditOutcome, details: [String: AuditValue]
    ) throws -> AuditEvent {
        var details = details
        details["user_id"] = .string(caller.subject.lowercasedString)
        return AuditEvent(
            actor: caller.actor, action: action,
            target: try service.map { try auditKeys.pseudonym($0, tenant: caller.tenant) },
            outcome: outcome, requestID: caller.requestID, ip: caller.ip, userAgent: caller.userAgent, details: details)
    }

    /// Appends and awaits the durable entry; without it, the caller gets nothing.
    private func record(
        _ caller: SecretCaller, _ action: String, service: String?, outcome: AuditOutcome, details: [String: AuditValue]
    ) async throws {
        let event = try event(caller, action, service: service, outcome: outcome, details: details)
        do {
            _ = try await audit.append(tenant: caller.tenant, event)
        } catch {
            throw SecretsError(.auditUnavailable, "the audit trail is unavailable; nothing was returned or changed")
        }
    }

    /// Records a failed or refused operation (its own transaction rolled back).
    private func recordFailure(
        _ error: Error, _ caller: SecretCaller, _ action: String, service: String?, details: [String: AuditValue]
    ) async throws {
        if let error = error as? SecretsError, error.code == .auditUnavailable { return }
        // Refused before any work for the tenant's load: nothing happened to audit.
        if let error = error as? PostgresError, error.code == .tenantBusy { throw error }
        var details = details
        let mapped = Self.mapped(error)
        details["reason"] = .string(mapped.code.description)
        let outcome: AuditOutcome = mapped.code == .forbidden ? .denied : .failure
        try await record(caller, action, service: service, outcome: outcome, details: details)
    }

    private static func appendInTransaction(_ audit: AuditAppender, _ connection: borrowing Connection, _ tenant: UUID, _ event: AuditEvent)
        throws
    {
        do {
            _ = try audit.append(in: connection, tenant: tenant, event)
        } catch {
            throw SecretsError(.auditUnavailable, "the audit trail is unavailable; nothing was changed")
        }
    }

    // MARK: - Helpers

    /// The NOLOGIN role the store runs as (`PolicySet.secretsRole`; created by 0011_exposure.sql):
    /// the only role with rights on the tables the policy files mark `managed_by: secrets`.
    public static let databaseRole = "gateway_secrets"

    static func assume(_ caller: SecretCaller) -> Statement {
        Statement.assumeRequestRole(databaseRole, claims: caller.claimsJSON, tenant: caller.tenant)
    }

    /// Binds a value to its row: tenant, user, service, secret id and version (DESIGN.md §7).
    static func associatedData(caller: SecretCaller, service: String, id: UUID, version: Int) -> [UInt8] {
        AssociatedData.encode(
            "pgw.secret.v1",
            [
                caller.tenant.lowercasedString, caller.subject.lowercasedString, service,
                id.lowercasedString, String(version),
            ])
    }

    private static func open(_ row: PostgresRow, dek: SecureBytes, caller: SecretCaller, service: String, id: UUID, version: Int) throws
        -> String
    {
        let opened: [UInt8]
        do {
            opened = try XChaCha20Poly1305.open(
                try row.decode("encrypted_value"), nonce: try row.decode("initialization_vector"), key: dek,
                associatedData: associatedData(caller: caller, service: service, id: id, version: version))
        } catch is SodiumError {
            throw SecretsError(
                .cannotOpen,
                "the stored value of \"\(service)\" version \(version) does not open: it was altered or does not belong to this row")
        }
        guard let text = String(validating: opened, as: UTF8.self) else {
            throw SecretsError(.cannotOpen, "the stored value of \"\(service)\" is not text")
        }
        return text
    }

    static func metadata(_ row: PostgresRow) throws -> SecretMetadata {
        SecretMetadata(
            serviceName: try row.decode("service_name"), version: try row.decode("version"),
            createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"),
            lastUsedAt: try row.decodeIfPresent("last_used_at"), deletedAt: try row.decodeIfPresent("deleted_at"))
    }

    /// Versions are `integer` columns: a number outside this range names no version.
    public static let versions = 1...Int(Int32.max)
    /// Page sizes ``list(_:limit:after:includeDeleted:)`` accepts.
    public static let pageSizes = 1...1000
    /// The longest service name, in Unicode scalars (Postgres' `char_length`, which the column's
    /// CHECK constraint counts; Swift's `count` counts grapheme clusters, which can be fewer).
    public static let maximumServiceLength = 255

    /// A usable service name: 1 to 255 characters, not blank, no control characters.
    public static func validate(service: String) throws {
        guard !service.trimmingCharacters(in: .whitespaces).isEmpty, service.unicodeScalars.count <= maximumServiceLength,
            !service.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw SecretsError(.invalidInput, "a service name is 1 to 255 characters, not blank, without control characters")
        }
    }

    static func validate(version: Int?) throws {
        if let version, !versions.contains(version) {
            throw SecretsError(.invalidInput, "a version is an integer from \(versions.lowerBound) to \(versions.upperBound)")
        }
    }

    private static func keyring<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as KeyringError where error.code == .subjectKeyDestroyed {
            throw SecretsError(.shredded, "this user's key was destroyed (erasure): their secrets can never be opened")
        }
    }

    /// Failures as this module's errors; database detail (which may quote values) is dropped.
    static func mapped(_ error: Error, conflict: String = "the secret was changed by another request at the same time; retry")
        -> SecretsError
    {
        switch error {
        case let error as SecretsError: return error
        case let error as KeyringError where error.code == .subjectKeyDestroyed:
            return SecretsError(.shredded, "this user's key was destroyed (erasure): their secrets can never be opened")
        case let error as KeyringError: return SecretsError(.cannotOpen, error.message)
        case let error as PostgresError where error.sqlState == "23505" || error.sqlState == "40001":
            return SecretsError(.versionConflict, conflict)
        case let error as PostgresError where error.sqlState == "23503":
            return SecretsError(.notFound, "the user is not a registered subject of this tenant")
        case let error as PostgresError where error.sqlState == "42501":
            return SecretsError(.forbidden, "row level security refused this access to the user's secrets")
        // Data exceptions (22…: out of range, malformed text) and constraint checks are the
        // caller's input, not an outage; validation catches them first, this is the last line.
        case let error as PostgresError where error.isDataError:
            return SecretsError(.invalidInput, "the database refused a value as malformed or out of range; nothing was changed or returned")
        default:
            return SecretsError(.unavailable, "the secret store is unavailable; nothing was changed or returned")
        }
    }
}
