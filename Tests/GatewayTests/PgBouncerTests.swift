import Audit
import Config
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Keyring
import Policy
import Postgres
import Secrets
import Sodium
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// Issue 17, item 7: the gateway through Debian's pgbouncer (1.18) in transaction mode. pgbouncer
/// 1.18 has no protocol-level prepared statements in that mode (the next transaction may run on
/// another server connection, where a statement named earlier does not exist), so the gateway is
/// configured to send unnamed statements (`GATEWAY_DB_PREPARED=off` → ``PostgresConfiguration/namedStatements``).
@Suite("Through pgbouncer in transaction mode", .serialized)
struct PgBouncerTests {
    /// pgbouncer on a free port in front of `owner`'s server, as an unprivileged user (it refuses
    /// to run as root), transaction pooling, two server connections per pool so consecutive
    /// transactions of one client do land on different server connections.
    final class Bouncer {
        let directory: URL
        let process: Subprocess.Running
        let port: Int

        init(server owner: PostgresConfiguration) throws {
            directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("pgbouncer-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory.path)
            port = try GatewayProcess.freePort()
            let users = try String(contentsOfFile: "/etc/passwd", encoding: .utf8)
            let runAs = getuid() == 0 ? (users.contains("\npostgres:") || users.hasPrefix("postgres:") ? "postgres" : "nobody") : nil
            let authFile = directory.appendingPathComponent("users.txt").path
            try "\"privacy_gateway\" \"\"\n\"postgres\" \"\"\n".write(toFile: authFile, atomically: true, encoding: .utf8)
            // The gateway's session options (TimeZone, DateStyle) arrive in the startup packet's
            // `options`, which pgbouncer 1.18 cannot pass on: it ignores them, and each server
            // connection sets them itself (connect_query).
            let ini = """
                [databases]
                * = host=\(owner.host ?? "127.0.0.1") port=\(owner.port ?? "5432") connect_query='SET TimeZone = UTC; SET DateStyle = ISO'
                [pgbouncer]
                listen_addr = 127.0.0.1
                listen_port = \(port)
                unix_socket_dir =
                auth_type = trust
                auth_file = \(authFile)
                pool_mode = transaction
                default_pool_size = 2
                max_client_conn = 100
                ignore_startup_parameters = options
                logfile = \(directory.appendingPathComponent("pgbouncer.log").path)
                pidfile = \(directory.appendingPathComponent("pgbouncer.pid").path)

                """
            let config = directory.appendingPathComponent("pgbouncer.ini").path
            try ini.write(toFile: config, atomically: true, encoding: .utf8)
            for file in [config, authFile] { try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file) }
            let (executable, arguments) =
                runAs.map { ("/usr/sbin/runuser", ["-u", $0, "--", "/usr/sbin/pgbouncer", config]) }
                ?? ("/usr/sbin/pgbouncer", [config])
            process = try Subprocess.start(executable, arguments, environment: ["PATH": "/usr/bin:/bin:/usr/sbin"])
        }

        /// Waits until pgbouncer accepts a connection to `database`.
        func waitUntilReady(_ database: PostgresConfiguration) async throws {
            for _ in 0..<200 {
                let pool = ConnectionPool(configuration: database, options: .init(maxConnections: 1, acquireTimeout: .seconds(2)))
                defer { pool.close() }
                if (try? await pool.query("SELECT 1 AS one")) != nil { return }
                if process.hasExited { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let log = (try? String(contentsOf: directory.appendingPathComponent("pgbouncer.log"), encoding: .utf8)) ?? ""
            Issue.record("pgbouncer did not come up: \(process.hasExited ? process.wait().stderr : "") \(log.suffix(2000))")
            throw CancellationError()
        }

        func stop() {
            process.kill(SIGTERM)
            _ = process.wait()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test(
        "GATEWAY_DB_PREPARED: on or off; off without GATEWAY_WORKER_DATABASE_URL is refused by name (the privacy worker keeps session state)"
    )
    func configuration() throws {
        let url = "postgresql://privacy_gateway@127.0.0.1:6432/app"
        for (environment, expected) in [
            (["GATEWAY_DATABASE_URL": url, "GATEWAY_DB_PREPARED": "off"], "GATEWAY_WORKER_DATABASE_URL"),
            (["GATEWAY_DATABASE_URL": url, "GATEWAY_DB_PREPARED": "sometimes"], "GATEWAY_DB_PREPARED must be on or off"),
        ] {
            #expect(throws: ConfigurationError.self) { try GatewayConfiguration.fromEnvironment(environment) }
            do { _ = try GatewayConfiguration.fromEnvironment(environment) } catch let error as ConfigurationError {
                #expect(error.message.contains(expected), "\(error.message)")
            }
        }
        let defaults = try GatewayConfiguration.fromEnvironment(["GATEWAY_DATABASE_URL": url])
        #expect(try defaults.gatewayDatabase().namedStatements && defaults.effectivePoolSharedConnections == nil)
        #expect(try defaults.workerDatabase() == defaults.gatewayDatabase())
        let pinned = try GatewayConfiguration.fromEnvironment([
            "GATEWAY_DATABASE_URL": url, "GATEWAY_DB_PREPARED": "off",
            "GATEWAY_WORKER_DATABASE_URL": "postgresql://privacy_gateway@db:5432/app",
            "GATEWAY_POOL_SHARED": "1",
        ])
        #expect(try !pinned.gatewayDatabase().namedStatements && pinned.effectivePoolSharedConnections == 1)
    }

    @Test(
        "with GATEWAY_DB_PREPARED=off, REST reads and writes, secrets and /v1/admin work through pgbouncer in transaction mode, across server connections"
    )
    func restAndSecrets() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let bouncer = try Bouncer(server: owner)
            defer { bouncer.stop() }
            // The gateway's configuration, read as the executable reads it, pointed at pgbouncer.
            let configuration = try GatewayConfiguration.fromEnvironment([
                "GATEWAY_DATABASE_URL": "postgresql://privacy_gateway@127.0.0.1:\(bouncer.port)/\(owner.database!)",
                "GATEWAY_DB_PREPARED": "off",
                "GATEWAY_WORKER_DATABASE_URL": "postgresql://privacy_gateway@\(owner.host!):\(owner.port!)/\(owner.database!)",
            ])
            #expect(try configuration.workerDatabase().port == owner.port, "session-state work bypasses the pooler")
            let through = try configuration.gatewayDatabase()
            #expect(!through.namedStatements && configuration.effectivePoolSharedConnections == 0)
            try await bouncer.waitUntilReady(through)

            let ownerPool = ConnectionPool(configuration: owner, options: .init(maxConnections: 2))
            let pool = ConnectionPool(
                configuration: through,
                options: .init(
                    maxConnections: 6, acquireTimeout: .seconds(60), sharedConnections: configuration.effectivePoolSharedConnections))
            defer {
                pool.close()
                ownerPool.close()
            }
            let rootKey = try SecureBytes(count: 32)
            let keyring = try await Keyring.open(pool: ownerPool, root: .key(rootKey))
            let secret = AuthFixture.secret()
            let tenant = try await TenantRegistry(pool: ownerPool, auditing: .disabled, keyring: keyring).create(
                name: "acme", jwtSecret: secret)
            let (_, apikey) = try await ServiceKeyRegistry(pool: ownerPool, rootKey: keyring.serviceMaster)
                .create(tenant: tenant.id, scopes: [.dataRead, .dataWrite, .secretsRead, .secretsWrite, .admin], name: "acme")
            let gatewayKeyring = try await Keyring.open(pool: pool, root: .key(rootKey))
            let authenticator = try RequestAuthenticator(pool: pool, keyring: gatewayKeyring)
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let auditKeys = try AuditKeys(rootKey: gatewayKeyring.serviceMaster)
            let audit = AuditAppender(pool: pool, keys: auditKeys)
            let services = GatewayServices(
                pool: pool, policies: policies, authenticator: authenticator,
                readiness: try Readiness(pool: pool, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: audit, secrets: SecretStore(pool: pool, keyring: gatewayKeyring, audit: audit, auditKeys: auditKeys),
                auditKeys: auditKeys)
            let user = UUID()
            let jwt = try await Tokens.hs256(claims: Tokens.user(user), secret: secret)
            let headers: HTTPFields = [.apikey: apikey, .authorization: "Bearer \(jwt)", .contentType: "application/json"]

            try await Application(router: GatewayApplication.router(services: services)).test(.router) { client in
                // Each statement text is sent many times, by requests that land on either server connection.
                for round in 0..<12 {
                    let body =
                        #"{"name": "p\#(round)", "type": "website", "is_public": false, "user_id": "\#(user.uuidString.lowercased())"}"#
                    let (created, text) = try await client.execute(
                        uri: "/rest/v1/projects", method: .post, headers: headers, body: ByteBuffer(string: body)
                    ) { ($0.status, String(buffer: $0.body)) }
                    #expect(created == .created, "round \(round): \(created) \(text)")
                    let (listed, rows) = try await client.execute(
                        uri: "/rest/v1/projects?select=name&order=name", method: .get, headers: headers
                    ) { ($0.status, String(buffer: $0.body)) }
                    #expect(listed == .ok && rows.contains("\"p\(round)\""), "round \(round): \(rows)")
                    let value = "sk-\(round)-" + AuthFixture.secret()
                    let stored = try await client.execute(
                        uri: "/v1/secrets/openai", method: .put, headers: headers, body: ByteBuffer(string: #"{"value": "\#(value)"}"#)
                    ) { $0.status }
                    #expect(stored == .ok || stored == .created, "round \(round): \(stored)")
                    let read = try await client.execute(uri: "/v1/secrets/openai", method: .get, headers: headers) {
                        String(buffer: $0.body)
                    }
                    #expect(read.contains(value), "round \(round): \(read)")
                    let keys = try await client.execute(uri: "/v1/admin/service-keys", method: .get, headers: [.apikey: apikey]) {
                        $0.status
                    }
                    #expect(keys == .ok)
                }
                // RLS still binds through the pooler: another user sees none of these rows.
                let stranger = try await Tokens.hs256(claims: Tokens.user(UUID()), secret: secret)
                let (status, rows) = try await client.execute(
                    uri: "/rest/v1/projects?select=name", method: .get,
                    headers: [.apikey: apikey, .authorization: "Bearer \(stranger)"]
                ) { ($0.status, String(buffer: $0.body)) }
                #expect(status == .ok && rows == "[]", "\(rows)")
            }
            // The work really went through pgbouncer: its server connections were used (SHOW STATS-free check:
            // the gateway login's backends came from pgbouncer, with its application_name absent from `options`).
            let backends = try await ownerPool.query(
                "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'privacy_gateway' AND datname = current_database()"
            ).first!.decode("n", as: Int.self)
            #expect(backends >= 1 && backends <= 2, "pgbouncer's default_pool_size is 2: \(backends) gateway backends")
        }
    }
}
