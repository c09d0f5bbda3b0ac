import Audit
import Foundation
import Postgres
import Sodium

/// Everything the gateway and `privacyctl` are configured with (DESIGN.md §6).
///
/// Built once by an executable from the environment and its flags, then passed in; no module
/// reads the environment itself.
public struct GatewayConfiguration: Sendable {
    /// Owner role: migrations and admin commands. `DATABASE_URL`.
    public var databaseURL: String?
    /// The gateway's own login (not superuser, not BYPASSRLS, owns no table). `GATEWAY_DATABASE_URL`, required to serve.
    public var gatewayDatabaseURL: String?
    /// 32-byte root key, base64 on one line, mode 0600. `PRIVACY_ROOT_KEY_FILE`.
    public var rootKeyFile: String?
    /// Alternative to the root key file: a file (mode 0600) holding a passphrase from which the
    /// root key is derived with Argon2id. `PRIVACY_ROOT_PASSPHRASE_FILE`.
    public var rootPassphraseFile: String?
    /// 32-byte Ed25519 signing seed, same format. `PRIVACY_SIGNING_KEY_FILE`.
    public var signingKeyFile: String?
    /// `PRIVACY_POLICIES_DIR`, default `policies`.
    public var policiesDirectory: String
    /// `PRIVACY_MIGRATIONS_DIR`, default `migrations`.
    public var migrationsDirectory: String
    /// `PORT`, default 8080.
    public var port: Int
    /// Address to listen on; `HOST`, default 127.0.0.1.
    public var host: String
    /// TLS on the listener: a PEM certificate chain and its private key (`GATEWAY_TLS_CERT_FILE`,
    /// `GATEWAY_TLS_KEY_FILE`; both or neither). Unset: plain HTTP (behind a TLS-terminating proxy).
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    /// Maximum connections the gateway opens to Postgres; `GATEWAY_POOL_SIZE`, default 32.
    public var poolSize: Int
    /// Of those, how many carry REST pipelines shared among requests (ConnectionPool.Options
    /// .sharedConnections); `GATEWAY_POOL_SHARED`, default: the pool's own (2 for 8 or more).
    public var poolSharedConnections: Int?
    /// `GATEWAY_DB_PREPARED`: `on` (default) keeps named prepared statements per connection; `off`
    /// sends every statement unnamed and shares no connection among pipelines (GATEWAY_POOL_SHARED
    /// defaults to 0) — for pgbouncer in transaction mode (README "Deployment").
    public var databasePreparedStatements = true
    /// `GATEWAY_WORKER_DATABASE_URL`: the same login, connected directly (or through a pooler in
    /// session mode), for the work that keeps session state — the privacy worker's role and tenant,
    /// the KEK rotation's lock. Unset: `GATEWAY_DATABASE_URL`. Required with `GATEWAY_DB_PREPARED=off`.
    public var workerDatabaseURL: String?
    /// Where the gateway's export worker writes archives; `PRIVACY_EXPORT_DIR`, default `.data/exports`.
    public var exportDirectory: String = ".data/exports"
    /// Days an export archive that was not downloaded is kept; `PRIVACY_EXPORT_TTL_DAYS`, default 7.
    public var exportTTLDays: Int = 7
    /// How often the gateway signs audit checkpoints; `PRIVACY_CHECKPOINT_INTERVAL` (seconds), default 300.
    public var checkpointIntervalSeconds: Int = 300
    /// Ed25519 public keys (64 hex characters each) whose audit checkpoints are trusted, besides the
    /// signing key's own public half; `PRIVACY_AUDIT_PUBLIC_KEYS`, comma- or space-separated. Keep
    /// retired signing keys here so their checkpoints still verify.
    public var auditPublicKeys: [[UInt8]] = []
    /// The witnesses allowed to submit cosignatures (`POST /v1/audit/checkpoints/{seq}/cosignatures`):
    /// `PRIVACY_AUDIT_WITNESS_KEYS`, `name+hex` entries (the witness's name and its Ed25519 public key,
    /// 64 hex characters) separated by commas, spaces or newlines. None declared: the route refuses all.
    public var auditWitnessKeys: [(name: String, publicKey: [UInt8])] = []
    /// The same list in a file, one `name+hex` per line, `#` comments; `PRIVACY_AUDIT_WITNESS_KEYS_FILE`.
    /// Read by ``declaredWitnesses()``, added to ``auditWitnessKeys``.
    public var auditWitnessKeysFile: String?
    /// Clock skew allowed on a JWT's `exp`, `nbf` and `iat`; `GATEWAY_JWT_LEEWAY_SECONDS`, 0 to 30, default 30.
    public var jwtLeewaySeconds: Int = 30
    /// Accept user JWTs without an `exp` claim; `GATEWAY_JWT_ALLOW_MISSING_EXP=true`. Off by default:
    /// a token that never expires cannot be taken back.
    public var jwtAllowsMissingExpiry = false
    /// Fetch tenants' `http://` JWKS URLs on a loopback address; `GATEWAY_JWKS_ALLOW_INSECURE_LOOPBACK=true`.
    /// Development only: otherwise only https JWKS URLs are fetched.
    public var jwksAllowsInsecureLoopback = false
    /// Statement timeout, row cap, per-tenant concurrency and the HTTP server's limits (`GATEWAY_*`, README "Limits").
    public var limits = GatewayLimits()
    /// Seconds without progress that make an open data-subject request stuck (`PRIVACY_STUCK_AFTER_SECONDS`).
    public var stuckAfterSeconds = 3600
    /// A request filed while an open one of the same kind for the same subject is younger than this
    /// is linked to it as a duplicate and never run (`PRIVACY_DUPLICATE_WINDOW`: seconds, or with a
    /// unit `s`/`m`/`h`/`d`; 0 turns linking off). 30 days: about the month a request has to be answered.
    public var duplicateWindowSeconds = 30 * 86_400
    /// `PRIVACY_PROCESSORS_ALLOW_PRIVATE_NETWORK`: a processor's webhook may name a loopback, private
    /// or link-local address (a processor inside the deployment's own network). Off: refused.
    public var processorsAllowPrivateNetwork = false
    /// `PRIVACY_PROCESSOR_CALLBACKS_PER_MINUTE`: callbacks the unauthenticated processor callback route
    /// takes per minute from one address and naming one processor (1 to 100000, default 120); past it 429.
    public var processorCallbacksPerMinute = 120
    /// Proxies whose `Forwarded`/`X-Forwarded-For` name the client (`GATEWAY_TRUSTED_PROXIES`).
    public var trustedProxies = TrustedProxies.none
    /// `GATEWAY_OPERATOR_TENANT`: the tenant whose `admin` keys are deployment operators in
    /// `/v1/admin` (create, list, disable tenants; reach every tenant). Unset: no operators.
    public var operatorTenant: UUID?
    /// A subject's own request is verified by their JWT only when its `auth_time` is at most this
    /// many seconds old; otherwise it waits for a one-time code. `PRIVACY_IDENTITY_MAX_AUTH_AGE`
    /// (60 to 86400); unset: any valid JWT of the subject verifies them (no codes).
    public var identityMaxAuthAgeSeconds: Int?
    /// Where one-time codes go: `webhook:https://…` (signed with `PRIVACY_IDENTITY_WEBHOOK_SECRET_FILE`)
    /// or, for development, `file:<path>`. `PRIVACY_IDENTITY_NOTIFIER`; required with a maximum auth age.
    public var identityNotifier: IdentityNotifierSetting?

    public init(
        databaseURL: String? = nil, gatewayDatabaseURL: String? = nil, rootKeyFile: String? = nil,
        signingKeyFile: String? = nil, rootPassphraseFile: String? = nil, policiesDirectory: String = "policies",
        migrationsDirectory: String = "migrations", port: Int = 8080, host: String = "127.0.0.1", poolSize: Int = 32
    ) {
        self.databaseURL = databaseURL
        self.gatewayDatabaseURL = gatewayDatabaseURL
        self.rootKeyFile = rootKeyFile
        self.signingKeyFile = signingKeyFile
        self.rootPassphraseFile = rootPassphraseFile
        self.policiesDirectory = policiesDirectory
        self.migrationsDirectory = migrationsDirectory
        self.port = port
        self.host = host
        self.poolSize = poolSize
    }

    /// Reads the documented variables; an empty variable counts as unset. Bad values are errors
    /// that name the variable.
    public static func fromEnvironment(_ environment: [String: String]) throws -> GatewayConfiguration {
        func value(_ name: String) -> String? {
            guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }
        var configuration = GatewayConfiguration(
            databaseURL: value("DATABASE_URL"),
            gatewayDatabaseURL: value("GATEWAY_DATABASE_URL"),
            rootKeyFile: value("PRIVACY_ROOT_KEY_FILE"),
            signingKeyFile: value("PRIVACY_SIGNING_KEY_FILE"),
            rootPassphraseFile: value("PRIVACY_ROOT_PASSPHRASE_FILE"),
            policiesDirectory: value("PRIVACY_POLICIES_DIR") ?? "policies",
            migrationsDirectory: value("PRIVACY_MIGRATIONS_DIR") ?? "migrations",
            host: value("HOST") ?? "127.0.0.1")
        configuration.tlsCertificateFile = value("GATEWAY_TLS_CERT_FILE")
        configuration.tlsKeyFile = value("GATEWAY_TLS_KEY_FILE")
        if let directory = value("PRIVACY_EXPORT_DIR") { configuration.exportDirectory = directory }
        if let ttl = value("PRIVACY_EXPORT_TTL_DAYS") {
            guard let days = Int(ttl), (1...365).contains(days) else {
                throw ConfigurationError("PRIVACY_EXPORT_TTL_DAYS must be a number of days from 1 to 365, got \"\(ttl)\"")
            }
            configuration.exportTTLDays = days
        }
        if let port = value("PORT") { configuration.port = try parsePort(port, source: "PORT") }
        if let interval = value("PRIVACY_CHECKPOINT_INTERVAL") {
            guard let seconds = Int(interval), (1...86_400).contains(seconds) else {
                throw ConfigurationError("PRIVACY_CHECKPOINT_INTERVAL must be a number of seconds from 1 to 86400, got \"\(interval)\"")
            }
            configuration.checkpointIntervalSeconds = seconds
        }
        if let keys = value("PRIVACY_AUDIT_PUBLIC_KEYS") {
            configuration.auditPublicKeys = try keys.split(whereSeparator: { $0 == "," || $0 == " " }).map { text in
                guard let key = Hex.decode(String(text)), key.count == Ed25519.publicKeyLength else {
                    throw ConfigurationError(
                        "PRIVACY_AUDIT_PUBLIC_KEYS must list Ed25519 public keys as 64 hex characters, separated by commas; \"\(text)\" is not one"
                    )
                }
                return key
            }
        }
        if let witnesses = value("PRIVACY_AUDIT_WITNESS_KEYS") {
            configuration.auditWitnessKeys = try parseWitnessKeys(witnesses, source: "PRIVACY_AUDIT_WITNESS_KEYS")
        }
        configuration.auditWitnessKeysFile = value("PRIVACY_AUDIT_WITNESS_KEYS_FILE")
        if let leeway = value("GATEWAY_JWT_LEEWAY_SECONDS") {
            guard let seconds = Int(leeway), (0...30).contains(seconds) else {
                throw ConfigurationError("GATEWAY_JWT_LEEWAY_SECONDS must be a number of seconds from 0 to 30, got \"\(leeway)\"")
            }
            configuration.jwtLeewaySeconds = seconds
        }
        if let allow = value("GATEWAY_JWT_ALLOW_MISSING_EXP") {
            switch allow.lowercased() {
            case "true", "1", "yes": configuration.jwtAllowsMissingExpiry = true
            case "false", "0", "no": configuration.jwtAllowsMissingExpiry = false
            default: throw ConfigurationError("GATEWAY_JWT_ALLOW_MISSING_EXP must be true or false, got \"\(allow)\"")
            }
        }
        if let allow = value("GATEWAY_JWKS_ALLOW_INSECURE_LOOPBACK") {
            switch allow.lowercased() {
            case "true", "1", "yes": configuration.jwksAllowsInsecureLoopback = true
            case "false", "0", "no": configuration.jwksAllowsInsecureLoopback = false
            default: throw ConfigurationError("GATEWAY_JWKS_ALLOW_INSECURE_LOOPBACK must be true or false, got \"\(allow)\"")
            }
        }
        if let size = value("GATEWAY_POOL_SIZE") {
            guard let number = Int(size), (1...1000).contains(number) else {
                throw ConfigurationError("GATEWAY_POOL_SIZE must be a number from 1 to 1000, got \"\(size)\"")
            }
            configuration.poolSize = number
        }
        if let prepared = value("GATEWAY_DB_PREPARED") {
            switch prepared.lowercased() {
            case "on", "true", "1", "yes": configuration.databasePreparedStatements = true
            case "off", "false", "0", "no": configuration.databasePreparedStatements = false
            default: throw ConfigurationError("GATEWAY_DB_PREPARED must be on or off, got \"\(prepared)\"")
            }
        }
        configuration.workerDatabaseURL = value("GATEWAY_WORKER_DATABASE_URL")
        if !configuration.databasePreparedStatements, configuration.workerDatabaseURL == nil {
            throw ConfigurationError(
                "GATEWAY_DB_PREPARED=off (a pooler in transaction mode) needs GATEWAY_WORKER_DATABASE_URL",
                hint:
                    "the privacy worker and KEK rotations keep session state: give them a direct connection (or a session-mode pool) as the same login"
            )
        }
        if let shared = value("GATEWAY_POOL_SHARED") {
            guard let number = Int(shared), (0...configuration.poolSize).contains(number) else {
                throw ConfigurationError("GATEWAY_POOL_SHARED must be a number from 0 to GATEWAY_POOL_SIZE, got \"\(shared)\"")
            }
            configuration.poolSharedConnections = number
        }
        if let tenant = value("GATEWAY_OPERATOR_TENANT") {
            guard let id = UUID(uuidString: tenant) else {
                throw ConfigurationError("GATEWAY_OPERATOR_TENANT must be a tenant id (a UUID), got \"\(tenant)\"")
            }
            configuration.operatorTenant = id
        }
        configuration.limits = try GatewayLimits.fromEnvironment(value)
        if let stuck = value("PRIVACY_STUCK_AFTER_SECONDS") {
            guard let seconds = Int(stuck), (60...31_536_000).contains(seconds) else {
                throw ConfigurationError("PRIVACY_STUCK_AFTER_SECONDS must be a number of seconds from 60 to 31536000, got \"\(stuck)\"")
            }
            configuration.stuckAfterSeconds = seconds
        }
        if let window = value("PRIVACY_DUPLICATE_WINDOW") {
            let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
            let unit = window.last.flatMap { units[$0] }
            guard let number = Int(unit == nil ? window : String(window.dropLast())), number >= 0,
                case let seconds = number.multipliedReportingOverflow(by: unit ?? 1), !seconds.overflow,
                seconds.partialValue <= 31_536_000
            else {
                throw ConfigurationError(
                    "PRIVACY_DUPLICATE_WINDOW must be 0 to 365 days, in seconds or with s, m, h or d (e.g. 30d), got \"\(window.prefix(40))\""
                )
            }
            configuration.duplicateWindowSeconds = seconds.partialValue
        }
        if let allow = value("PRIVACY_PROCESSORS_ALLOW_PRIVATE_NETWORK") {
            switch allow.lowercased() {
            case "true", "1", "yes": configuration.processorsAllowPrivateNetwork = true
            case "false", "0", "no": configuration.processorsAllowPrivateNetwork = false
            default: throw ConfigurationError("PRIVACY_PROCESSORS_ALLOW_PRIVATE_NETWORK must be true or false, got \"\(allow.prefix(40))\"")
            }
        }
        if let rate = value("PRIVACY_PROCESSOR_CALLBACKS_PER_MINUTE") {
            guard let perMinute = Int(rate), (1...100_000).contains(perMinute) else {
                throw ConfigurationError(
                    "PRIVACY_PROCESSOR_CALLBACKS_PER_MINUTE must be a number from 1 to 100000, got \"\(rate.prefix(40))\"")
            }
            configuration.processorCallbacksPerMinute = perMinute
        }
        if let proxies = value("GATEWAY_TRUSTED_PROXIES") { configuration.trustedProxies = try TrustedProxies(parsing: proxies) }
        if let age = value("PRIVACY_IDENTITY_MAX_AUTH_AGE") {
            guard let seconds = Int(age), (60...86_400).contains(seconds) else {
                throw ConfigurationError("PRIVACY_IDENTITY_MAX_AUTH_AGE must be a number of seconds from 60 to 86400, got \"\(age)\"")
            }
            configuration.identityMaxAuthAgeSeconds = seconds
        }
        if let notifier = value("PRIVACY_IDENTITY_NOTIFIER") {
            if notifier.hasPrefix("webhook:"), let url = URL(string: String(notifier.dropFirst(8))), url.host != nil {
                guard let secret = value("PRIVACY_IDENTITY_WEBHOOK_SECRET_FILE") else {
                    throw ConfigurationError(
                        "PRIVACY_IDENTITY_NOTIFIER=webhook:… needs PRIVACY_IDENTITY_WEBHOOK_SECRET_FILE (32 bytes, base64, mode 0600)")
                }
                configuration.identityNotifier = .webhook(url: url, secretFile: secret)
            } else if notifier.hasPrefix("file:"), notifier.count > 5 {
                configuration.identityNotifier = .file(path: String(notifier.dropFirst(5)))
            } else {
                throw ConfigurationError("PRIVACY_IDENTITY_NOTIFIER must be webhook:<https url> or file:<path>, got \"\(notifier)\"")
            }
        }
        if configuration.identityMaxAuthAgeSeconds != nil && configuration.identityNotifier == nil {
            throw ConfigurationError(
                "PRIVACY_IDENTITY_MAX_AUTH_AGE needs PRIVACY_IDENTITY_NOTIFIER: without a recent sign-in the subject gets a one-time code")
        }
        return configuration
    }

    /// The checkpoint keys live verification and reports trust: ``auditPublicKeys`` plus the
    /// public half of the signing key file, when there is one. Never read from the database.
    public func pinnedAuditKeys() throws -> [String: [UInt8]] {
        var keys = auditPublicKeys
        if let signingKeyFile {
            keys.append(try Ed25519.SigningKey(seed: try KeyFile.load(signingKeyFile, purpose: "signing key")).publicKey)
        }
        return AuditCheckpoint.trustedKeys(keys)
    }

    /// The witnesses the gateway accepts cosignatures from: ``auditWitnessKeys`` plus the entries of
    /// ``auditWitnessKeysFile``. Like the pinned checkpoint keys, never read from the database: a key
    /// holder who could add a witness could fill a checkpoint's cosignature slots with its own.
    public func declaredWitnesses() throws -> [(name: String, publicKey: [UInt8])] {
        var witnesses = auditWitnessKeys
        if let auditWitnessKeysFile {
            guard let data = FileManager.default.contents(atPath: auditWitnessKeysFile) else {
                throw ConfigurationError("PRIVACY_AUDIT_WITNESS_KEYS_FILE: \(auditWitnessKeysFile) cannot be read")
            }
            let text = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "" }
                .joined(separator: "\n")
            witnesses += try Self.parseWitnessKeys(text, source: "PRIVACY_AUDIT_WITNESS_KEYS_FILE (\(auditWitnessKeysFile))")
        }
        return witnesses
    }

    /// `name+hex` entries separated by commas or white space. The name is a signed-note key name
    /// (no spaces or `+`, at most 255 bytes), so the last `+` splits it from the key unambiguously.
    static func parseWitnessKeys(_ text: String, source: String) throws -> [(name: String, publicKey: [UInt8])] {
        try text.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map { entry in
            let parts = entry.split(separator: "+", omittingEmptySubsequences: false)
            guard parts.count == 2, SignedNote.isValidName(String(parts[0])), parts[0].utf8.count <= 255,
                let key = Hex.decode(String(parts[1])), key.count == Ed25519.publicKeyLength
            else {
                throw ConfigurationError(
                    "\(source) must list witnesses as name+hex (a name without spaces or '+', then its Ed25519 public key as 64 hex characters), separated by commas; \"\(entry)\" is not one"
                )
            }
            return (String(parts[0]), key)
        }
    }

    public static func parsePort(_ text: String, source: String) throws -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw ConfigurationError("\(source) must be a port number from 1 to 65535, got \"\(text)\"")
        }
        return port
    }

    /// The owner connection (`DATABASE_URL`), required by migrations and admin commands.
    public func ownerDatabase() throws -> PostgresConfiguration {
        guard let databaseURL else {
            throw ConfigurationError(
                "DATABASE_URL is not set",
                hint:
                    "set DATABASE_URL=postgresql://owner@host:5432/db (or pass --database-url), or use scripts/run for an embedded development database"
            )
        }
        return try Self.parse(databaseURL, variable: "DATABASE_URL")
    }

    /// The gateway's own connection: `GATEWAY_DATABASE_URL`. Never the owner's `DATABASE_URL`:
    /// the serving process runs with least privilege (and refuses a login that escapes RLS).
    public func gatewayDatabase() throws -> PostgresConfiguration {
        guard let gatewayDatabaseURL else {
            throw ConfigurationError(
                "GATEWAY_DATABASE_URL is not set",
                hint: "set GATEWAY_DATABASE_URL=postgresql://privacy_gateway@host:5432/db (the login the migrations create; "
                    + "the gateway never serves with the owner's DATABASE_URL), or use scripts/run for an embedded development database")
        }
        var database = try Self.parse(gatewayDatabaseURL, variable: "GATEWAY_DATABASE_URL")
        database.namedStatements = databasePreparedStatements
        return database
    }

    /// The connection for work that keeps session state (``workerDatabaseURL``, else the gateway's).
    public func workerDatabase() throws -> PostgresConfiguration {
        guard let workerDatabaseURL else { return try gatewayDatabase() }
        return try Self.parse(workerDatabaseURL, variable: "GATEWAY_WORKER_DATABASE_URL")
    }

    /// `GATEWAY_POOL_SHARED`, or 0 when prepared statements are off (a pooler in transaction mode:
    /// several pipelines in flight on one client connection are not safe through pgbouncer 1.18).
    public var effectivePoolSharedConnections: Int? {
        poolSharedConnections ?? (databasePreparedStatements ? nil : 0)
    }

    private static func parse(_ url: String, variable: String) throws -> PostgresConfiguration {
        do {
            return try PostgresConfiguration(url)
        } catch let error as PostgresError {
            throw ConfigurationError("\(variable): \(error.message)")
        }
    }
}

/// Where one-time identity codes are delivered (`PRIVACY_IDENTITY_NOTIFIER`).
public enum IdentityNotifierSetting: Sendable, Equatable {
    case webhook(url: URL, secretFile: String)
    /// Development only: codes are appended to this file (mode 0600), never logged.
    case file(path: String)
}
