import ArgumentParser
import Audit
import Catalog
import Config
import Foundation
import Gateway
import Keyring
import Logging
import NIOCore
import NIOPosix
import Policy
import Postgres
import Privacy
import Secrets
import ServiceLifecycle
import Sodium
import Tenancy

@main
struct PrivacyGateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privacy-gateway",
        abstract: "A privacy and secrets gateway in front of Postgres.",
        discussion: """
            Configuration comes from the environment (GATEWAY_DATABASE_URL — the gateway's own login, never
            the owner: it refuses to serve as a superuser, a BYPASSRLS role or a table owner —
            PRIVACY_ROOT_KEY_FILE, PRIVACY_SIGNING_KEY_FILE, PRIVACY_AUDIT_PUBLIC_KEYS, PRIVACY_POLICIES_DIR,
            PRIVACY_MIGRATIONS_DIR, PORT, HOST, GATEWAY_POOL_SIZE, GATEWAY_JWT_LEEWAY_SECONDS,
            GATEWAY_JWT_ALLOW_MISSING_EXP, GATEWAY_OPERATOR_TENANT, GATEWAY_JWKS_ALLOW_INSECURE_LOOPBACK,
            GATEWAY_METRICS_TOKEN(_FILE), LOG_LEVEL); flags override it.
            For a ready-made local setup, run scripts/run.
            """,
        version: PrivacyGatewayVersion.string,
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self)

    static func main() async {
        // Swift tasks (route handlers) run on NIO's event loop threads instead of a second thread
        // pool, which saves a thread hop per request in each direction.
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await main(nil)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve HTTP until SIGINT or SIGTERM, then drain in-flight requests and exit 0.",
        discussion: """
            Endpoints: /rest/v1/{table} (PostgREST grammar), /health, /ready (database reachable, migrations
            current, no policy drift), /metrics (Prometheus).
            Example: GATEWAY_DATABASE_URL=postgresql://privacy_gateway@localhost/app privacy-gateway serve --port 8080
            """)

    @Option(help: "Port to listen on (default: $PORT or 8080).")
    var port: Int?

    @Option(help: "Address to listen on (default: $HOST or 127.0.0.1).")
    var host: String?

    func run() async throws {
        let observability: ObservabilityConfiguration
        do {
            observability = try ObservabilityConfiguration.fromEnvironment(ProcessInfo.processInfo.environment)
        } catch let error as ConfigurationError {
            LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
            Logger(label: "privacy-gateway").critical("cannot start: \(error.description)")
            throw ExitCode.failure
        }
        LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: observability.logLevel) }
        // Before any pool or appender exists: the Postgres and Audit modules' metrics go to this
        // registry. No tracer is bootstrapped in this build (README, "Tracing").
        let metrics = GatewayMetrics()
        metrics.bootstrapGlobal()
        let logger = Logger(label: "privacy-gateway")
        do {
            var configuration = try GatewayConfiguration.fromEnvironment(ProcessInfo.processInfo.environment)
            if let port { configuration.port = try GatewayConfiguration.parsePort(String(port), source: "--port") }
            if let host { configuration.host = host }
            try await serve(configuration, observability: observability, metrics: metrics, logger: logger)
        } catch  where error is ConfigurationError || error is TenancyError || error is GatewayError {
            // Configuration, key files, the database login: one line naming what to fix.
            logger.critical("cannot start: \(error)")
            throw ExitCode.failure
        }
    }

    private func serve(
        _ configuration: GatewayConfiguration, observability: ObservabilityConfiguration, metrics: GatewayMetrics, logger: Logger
    ) async throws {
        // The listener's certificate and key are checked first: a bad file stops the start, naming it.
        let tls = try configuration.listenerTLS()
        let database = try configuration.gatewayDatabase()
        // One per-tenant cap for the process, held by every tenant's database work through either
        // pool (REST, RPC, secrets, audit, reports, privacy requests); the audit appender's group
        // commit is outside it (AuditAppender.write).
        let tenantLimiter = configuration.limits.tenantLimiter(poolSize: configuration.poolSize)
        let pool = ConnectionPool(
            configuration: database,
            options: .init(
                maxConnections: configuration.poolSize, sharedConnections: configuration.effectivePoolSharedConnections,
                tenantLimiter: tenantLimiter),
            logger: Logger(label: "postgres"))
        defer { pool.close() }
        let policies = try PolicySet.loadForGateway(directory: configuration.policiesDirectory)
        // Before anything else touches the database: a login that escapes RLS never serves.
        do {
            try await LeastPrivilege.requireRLSBound(pool)
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError("cannot check the gateway's database login (\(database.redacted)): the database is not reachable")
        }
        let readiness = try Readiness(
            pool: pool, migrationsDirectory: URL(fileURLWithPath: configuration.migrationsDirectory), policies: policies)
        let rootKey = try KeyFile.rootKeySource(keyFile: configuration.rootKeyFile, passphraseFile: configuration.rootPassphraseFile)
        // A wrong root key stops the start here, before anything is served.
        let keyring = try await Keyring.open(pool: pool, root: rootKey)
        var authOptions = RequestAuthenticator.Options()
        authOptions.jwtLeewaySeconds = configuration.jwtLeewaySeconds
        authOptions.requiresJWTExpiry = !configuration.jwtAllowsMissingExpiry
        authOptions.jwksAllowsInsecureLoopback = configuration.jwksAllowsInsecureLoopback
        if configuration.jwksAllowsInsecureLoopback {
            logger.warning("GATEWAY_JWKS_ALLOW_INSECURE_LOOPBACK is set: tenants' http:// JWKS URLs on this machine are fetched")
        }
        if configuration.jwtAllowsMissingExpiry {
            logger.warning("GATEWAY_JWT_ALLOW_MISSING_EXP is set: user JWTs without exp are accepted and never expire")
        }
        let authenticator = try RequestAuthenticator(pool: pool, keyring: keyring, options: authOptions)
        // Checkpoints are verified against configured keys only, never keys stored in the database.
        let auditTrustedKeys = try configuration.pinnedAuditKeys()
        // Only these witnesses' cosignatures are stored (none declared: none are).
        let auditWitnesses = try configuration.declaredWitnesses()
        let auditKeys = try AuditKeys(rootKey: keyring.serviceMaster)
        let audit = AuditAppender(pool: pool, keys: auditKeys)
        let secrets = SecretStore(pool: pool, keyring: keyring, audit: audit, auditKeys: auditKeys)

        var background: [any Service] = []
        // Tenant keys and service keys changed by another gateway or privacyctl are dropped here within ~250 ms.
        background.append(CacheInvalidationService(pool: pool, authenticator: authenticator, logger: logger))
        var signingKey: Ed25519.SigningKey?
        if let signingKeyFile = configuration.signingKeyFile {
            let key = try Ed25519.SigningKey(seed: try KeyFile.load(signingKeyFile, purpose: "signing key"))
            signingKey = key
            background.append(
                CheckpointService(
                    checkpointer: AuditCheckpointer(pool: pool, signingKey: key, trustedKeys: auditTrustedKeys),
                    interval: .seconds(configuration.checkpointIntervalSeconds), logger: logger, metrics: metrics))
        } else {
            logger.warning("PRIVACY_SIGNING_KEY_FILE is not set: audit checkpoints are not signed by this gateway")
        }

        // Data-subject requests and the retention sweep run on the gateway's own login, as the
        // privacy worker role (0015_privacy_worker.sql): this process holds no owner credentials.
        // Their own small pool: the worker's role is a session setting while a request runs.
        // (Through a pooler in transaction mode this is GATEWAY_WORKER_DATABASE_URL, a direct connection.)
        let privacyPool = ConnectionPool(
            configuration: try configuration.workerDatabase(), options: .init(maxConnections: 4, tenantLimiter: tenantLimiter),
            logger: Logger(label: "postgres"))
        defer { privacyPool.close() }
        var settings = PrivacyConfiguration(
            policyVersion: try PrivacyConfiguration.policyVersion(directory: configuration.policiesDirectory),
            exportDirectory: configuration.exportDirectory)
        settings.archiveTTLSeconds = configuration.exportTTLDays * 86_400
        settings.auditTrustedKeys = auditTrustedKeys
        settings.duplicateWindow = .seconds(configuration.duplicateWindowSeconds)
        settings.processorsAllowPrivateNetwork = configuration.processorsAllowPrivateNetwork
        settings.processorCallbacksPerMinute = configuration.processorCallbacksPerMinute
        settings.identity = IdentityPolicy(maxAuthAge: configuration.identityMaxAuthAgeSeconds.map { .seconds($0) })
        var notifier: (any IdentityNotifier)?
        switch configuration.identityNotifier {
        case .webhook(let url, let secretFile)?:
            notifier = try WebhookNotifier(url: url, secret: try KeyFile.load(secretFile, purpose: "identity webhook secret"))
        case .file(let path)?:
            logger.warning("identity codes go to a development file, not to subjects", metadata: ["path": "\(path)"])
            notifier = FileNotifier(path: path)
        case nil:
            notifier = nil
        }
        let privacy = PrivacyService(
            pool: privacyPool, graph: try await SubjectGraph.load(policies: policies, pool: privacyPool),
            // The gateway's appender: one group-commit lane per tenant chain in this process.
            audit: audit, signingKey: signingKey,
            tokenKey: try PrivacyService.tokenKey(serviceMaster: keyring.serviceMaster),
            keyring: keyring, configuration: settings, notifier: notifier)
        background.append(
            PrivacyWorkerService(
                privacy: privacy, logger: logger, metrics: metrics, stuckAfter: .seconds(configuration.stuckAfterSeconds)))

        var services = GatewayServices(
            pool: pool, policies: policies, authenticator: authenticator, readiness: readiness, audit: audit, metrics: metrics,
            secrets: secrets, auditKeys: auditKeys, privacy: privacy, auditTrustedKeys: auditTrustedKeys,
            certificatePublicKey: signingKey?.publicKey, limits: configuration.limits,
            auditWitnesses: auditWitnesses)
        services.trustedProxies = configuration.trustedProxies
        services.operatorTenant = configuration.operatorTenant
        services.keyring = keyring
        services.sessionPool = privacyPool
        services.metricsToken = observability.metricsToken
        let application = try GatewayApplication.make(configuration: configuration, services: services, logger: logger, tls: tls)
        let group = ServiceGroup(
            configuration: .init(
                services: [application] + background,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        logger.info("serving", metadata: ["address": "\(configuration.host):\(configuration.port)", "database": "\(database.redacted)"])
        try await group.run()
        logger.info("stopped")
    }
}
