import Config
import Foundation
import Keyring
import Postgres
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// A real `privacy-gateway serve` process on a free loopback port.
final class GatewayProcess: @unchecked Sendable {
    let process: Subprocess.Running
    let port: Int

    init(environment: [String: String]) throws {
        port = try Self.freePort()
        var environment = environment
        environment["PORT"] = String(port)
        process = try Subprocess.start(Subprocess.product("privacy-gateway"), ["serve"], environment: environment)
    }

    static func freePort() throws -> Int {
        let (fd, port) = try boundLoopbackSocket()
        close(fd)
        return port
    }

    /// One request on a fresh connection (`Connection: close`): status and body.
    func request(_ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil) -> (status: Int, body: String) {
        guard let connection = try? RawConnection(port: port) else { return (0, "") }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        connection.send(head + "\r\n" + (body ?? ""))
        let response = connection.readToEndBlocking()
        let status = response.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, HTTPLimitsTests.body(of: response))
    }

    /// Waits until `/ready` answers 200; fails with the process's stderr if it exits first.
    func waitUntilReady() async throws {
        for _ in 0..<600 {
            if request("GET", "/ready").status == 200 { return }
            if kill(process.pid, 0) != 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.kill()
        let result = process.wait()
        Issue.record("gateway on port \(port) did not become ready: \(result.stderr.suffix(2000))")
        throw CancellationError()
    }

    func stop() -> Subprocess.Result {
        process.kill(SIGTERM)
        return process.wait()
    }
}

/// What a test of real gateway processes stands on: a migrated database, a scratch directory with
/// a root key file (both removed afterwards), and on the owner's pool the keyring and registries to
/// bootstrap tenants and keys, as privacyctl's direct-database mode does.
struct GatewayProcessFixture: Sendable {
    let owner: PostgresConfiguration
    let directory: URL
    let rootKeyFile: String
    let ownerPool: ConnectionPool
    let keyring: Keyring
    let tenants: TenantRegistry
    let keys: ServiceKeyRegistry

    /// `name` prefixes the scratch directory; `ownerConnections` sizes the owner's pool.
    static func run(_ name: String, ownerConnections: Int = 2, _ body: (GatewayProcessFixture) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let rootKeyFile = directory.appendingPathComponent("root.key").path
        try KeyFile.generate(at: rootKeyFile)

        try await TestDatabase.withMigratedDatabase { owner in
            let ownerPool = ConnectionPool(configuration: owner, options: .init(maxConnections: ownerConnections))
            defer { ownerPool.close() }
            let keyring = try await Keyring.open(
                pool: ownerPool, root: try KeyFile.rootKeySource(keyFile: rootKeyFile, passphraseFile: nil))
            try await body(
                GatewayProcessFixture(
                    owner: owner, directory: directory, rootKeyFile: rootKeyFile, ownerPool: ownerPool, keyring: keyring,
                    tenants: TenantRegistry(pool: ownerPool, auditing: .disabled, keyring: keyring),
                    keys: try ServiceKeyRegistry(pool: ownerPool, rootKey: keyring.serviceMaster)))
        }
    }

    /// The environment a gateway serves this database with: its own login, the root key file, the
    /// repository's policies and migrations, exports in the scratch directory.
    func gatewayEnvironment(poolSize: Int, operatorTenant: UUID? = nil) -> [String: String] {
        var environment = [
            "GATEWAY_DATABASE_URL": TestDatabase.url(TestDatabase.gateway(owner)),
            "PRIVACY_ROOT_KEY_FILE": rootKeyFile,
            "PRIVACY_POLICIES_DIR": TestDatabase.repositoryPolicies.path,
            "PRIVACY_MIGRATIONS_DIR": TestDatabase.repositoryMigrations.path,
            "PRIVACY_EXPORT_DIR": directory.appendingPathComponent("exports").path,
            "GATEWAY_POOL_SIZE": String(poolSize),
            "PATH": "/usr/bin:/bin",
        ]
        if let operatorTenant { environment["GATEWAY_OPERATOR_TENANT"] = operatorTenant.lowercasedString }
        return environment
    }

    /// `count` gateways with ``gatewayEnvironment(poolSize:operatorTenant:)``, each ready (if one is
    /// not, all are stopped and it fails); the caller stops them.
    func startGateways(_ count: Int, poolSize: Int, operatorTenant: UUID? = nil) async throws -> [GatewayProcess] {
        let environment = gatewayEnvironment(poolSize: poolSize, operatorTenant: operatorTenant)
        var gateways: [GatewayProcess] = []
        do {
            for _ in 0..<count { gateways.append(try GatewayProcess(environment: environment)) }
            for gateway in gateways { try await gateway.waitUntilReady() }
            return gateways
        } catch {
            for gateway in gateways { _ = gateway.stop() }
            throw error
        }
    }
}

/// A JSON object an executable printed; empty when it printed none.
func jsonObject(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}
