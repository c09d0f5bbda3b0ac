import Audit
import Foundation
import Keyring
import Policy
import Postgres
import Sodium

/// How the Privacy module runs; built by an executable and passed in.
public struct PrivacyConfiguration: Sendable {
    /// Identifies the policy files the work ran under (``PrivacyConfiguration/policyVersion(directory:)``).
    public var policyVersion: String
    /// Rows per erasure / retention batch.
    public var batchSize: Int = 5000
    /// `statement_timeout` of each batch.
    public var statementTimeout: Duration = .seconds(10)
    /// A request in `processing` whose row was not touched for this long is taken over by another worker.
    public var leaseSeconds: Int = 120
    /// Where the gateway keeps finished export archives (mode 0700).
    public var exportDirectory: String
    /// How long a download link stays valid.
    public var downloadTTLSeconds: Int = 3600
    /// How long a finished archive is kept if it is not downloaded (it is removed after its one
    /// download, and when the subject is erased, whichever comes first). Default 7 days.
    public var archiveTTLSeconds: Int = 7 * 86_400
    /// Argon2id limits for passphrase-encrypted archives.
    public var encryptionLimits = ArchiveEncryption.Limits()
    /// Earlier signing keys (key id → public key, ``GatewayConfiguration/pinnedAuditKeys()``) whose
    /// checkpoints the erasure's own checkpoint may extend, and that its audit proof may verify with.
    public var auditTrustedKeys: [String: [UInt8]] = [:]
    /// How subjects who file their own requests prove who they are (``IdentityPolicy``).
    public var identity = IdentityPolicy()
    /// A request filed while an open one of the same kind for the same subject is younger than this is
    /// linked to it (`duplicate_of`) and closed, never run twice (`PRIVACY_DUPLICATE_WINDOW`, default 30 days).
    public var duplicateWindow: Duration = .seconds(30 * 86_400)
    /// The longest one HTTP attempt to a processor may take (also bounded by the call's deadline).
    public var processorAttemptTimeout: Duration = .seconds(10)
    /// Backoff after a processor's failed attempt n: this × 2^(n-1), at most an hour.
    public var processorRetryBase: Duration = .seconds(30)
    /// Whether a processor's webhook may be plain http to this machine (tests, development); else https only.
    public var processorsAllowLoopbackHTTP = false
    /// Whether a processor's webhook may name a loopback, private, link-local or otherwise internal
    /// address (`PRIVACY_PROCESSORS_ALLOW_PRIVATE_NETWORK`): off, so a tenant's admin key cannot make
    /// the gateway post to its own network (169.254.169.254, 10.0.0.0/8, ::1, fc00::/7).
    public var processorsAllowPrivateNetwork = false
    /// The most processors one tenant may declare: every erasure calls each of them.
    public var maxProcessorsPerTenant = 50
    /// Callbacks per minute the unauthenticated callback route takes from one client address, and
    /// naming one processor (`PRIVACY_PROCESSOR_CALLBACKS_PER_MINUTE`, default 120); past it 429
    /// with `Retry-After` (``CallbackRateLimiter``).
    public var processorCallbacksPerMinute = 120

    public init(policyVersion: String, exportDirectory: String) {
        self.policyVersion = policyVersion
        self.exportDirectory = exportDirectory
    }

    /// `sha256:<hex>` over the `*.yaml` files of `directory`, by name: changes whenever a policy file does.
    public static func policyVersion(directory: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.sorted()
        var hasher = SHA256.Hasher()
        for name in names {
            hasher.update(Array(name.utf8) + [0])
            hasher.update(Array(try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(name))))
            hasher.update([0])
        }
        return "sha256:" + Hex.encode(hasher.finalize())
    }
}

/// Data-subject requests (DESIGN.md §9): exports, erasure with a signed certificate, request
/// lifecycle, consents and retention. All state lives in Postgres; every step is idempotent.
///
/// `pool` must reach every governed table of every subject of a tenant (the owner role, as
/// `privacyctl` uses): erasure anonymises rows so they no longer belong to anyone, which the
/// subject-scoped RLS policies cannot allow. Every statement names the tenant and the subject
/// explicitly, with bound values.
public final class PrivacyService: Sendable {
    public let pool: ConnectionPool
    public let graph: SubjectGraph
    public let audit: AuditAppender
    public let configuration: PrivacyConfiguration
    let signingKey: Ed25519.SigningKey?
    let tokenKey: SecureBytes
    let keyring: Keyring?
    /// Sends one-time identity codes (``IdentityNotifier``); nil: codes cannot be asked for.
    let notifier: (any IdentityNotifier)?
    /// Bounds the unauthenticated processor callback route (``PrivacyConfiguration/processorCallbacksPerMinute``).
    public let callbackLimiter: CallbackRateLimiter

    /// - Parameters:
    ///   - signingKey: signs deletion certificates (`PRIVACY_SIGNING_KEY_FILE`); erasure refuses to run without it.
    ///   - tokenKey: 32 bytes keying the stored hash of download tokens and the proofs in the
    ///     entries that file and confirm requests (``tokenKey(serviceMaster:)``): every process that
    ///     files or runs requests of one database must use the same.
    ///   - keyring: seals archives in the export directory under a key derived from the subject's
    ///     data key (so erasure's crypto-shredding makes every copy unreadable); exports into the
    ///     export directory refuse to run without it.
    public init(
        pool: ConnectionPool, graph: SubjectGraph, audit: AuditAppender, signingKey: Ed25519.SigningKey?,
        tokenKey: SecureBytes, keyring: Keyring? = nil, configuration: PrivacyConfiguration,
        notifier: (any IdentityNotifier)? = nil
    ) {
        self.notifier = notifier
        self.pool = pool
        self.graph = graph
        self.audit = audit
        self.signingKey = signingKey
        self.tokenKey = tokenKey
        self.keyring = keyring
        self.configuration = configuration
        self.callbackLimiter = CallbackRateLimiter(limit: configuration.processorCallbacksPerMinute)
    }

    /// The token key every process derives from the root key's service master (the gateway and
    /// privacyctl alike).
    public static func tokenKey(serviceMaster: SecureBytes) throws -> SecureBytes {
        try KeyDerivation.subkey(from: serviceMaster, id: 4, context: "dltokens")
    }

    /// The public key certificates verify with, if a signing key is configured.
    public var certificatePublicKey: [UInt8]? { signingKey?.publicKey }

    /// Runs blocking database work on one pooled connection as the privacy worker
    /// (`PolicySet.privacyRole`, 0015_privacy_worker.sql) within `tenant`: every statement, in
    /// every transaction of `work`, is bound by the tenant policy, so work for one tenant cannot
    /// touch another's rows, and the role reaches only the tables with personal data. `tenant`
    /// nil (the cross-tenant queue) sees no governed row at all. Role and tenant are session
    /// settings for the duration of `work` and are reset before the connection goes back.
    /// A tenant's work holds one of its slots in the pool (``ConnectionPool/withConnection(tenant:_:)``).
    func run<T: Sendable>(tenant: UUID?, _ work: @escaping @Sendable (borrowing Connection) throws -> T) async throws -> T {
        try await pool.withConnection(tenant: tenant) { pooled in
            try await pooled.run { connection in
                try connection.query(
                    "SELECT set_config('role', $1, false), set_config('request.tenant_id', $2, false)",
                    [PolicySet.privacyRole, tenant?.lowercasedString ?? ""])
                defer {
                    // After an error the connection may still be inside a transaction; leave it idle
                    // and as its own login, whatever happened.
                    if connection.inTransaction { _ = try? connection.simple("ROLLBACK") }
                    _ = try? connection.query("SELECT set_config('role', 'none', false), set_config('request.tenant_id', '', false)")
                }
                return try work(connection)
            }
        }
    }

    /// Runs `body` inside the current transaction as the connection's own login rather than the
    /// privacy worker: the keyring (wrapped keys) is the login's, never the worker's. As the
    /// audit appender does, with a transaction-local role.
    static func asLogin<T>(_ connection: borrowing Connection, _ body: () throws -> T) throws -> T {
        try connection.query("SELECT set_config('privacy.saved_role', current_user, true), set_config('role', 'none', true)")
        let result = try body()
        try connection.query("SELECT set_config('role', current_setting('privacy.saved_role'), true)")
        return result
    }

    /// Transaction-local settings that scope RLS to the tenant and name the subject for COPY
    /// statements (which take no bind parameters).
    static func scope(_ connection: borrowing Connection, tenant: UUID, subject: UUID) throws {
        try connection.query(
            "SELECT set_config('request.tenant_id', $1, true), set_config('privacy.tenant', $1, true), "
                + "set_config('privacy.subject', $2, true), set_config('TimeZone', 'UTC', true)",
            [tenant, subject])
    }

    static let tenantSetting = "current_setting('privacy.tenant')::uuid"
    static let subjectSetting = "current_setting('privacy.subject')::uuid"
}
