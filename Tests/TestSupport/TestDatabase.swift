import Foundation
import Postgres
import Testing

/// The throwaway cluster `scripts/test` starts. Tests that need a database fail — loudly, never
/// skip — when it is missing.
public enum TestDatabase {
    public static func ownerConfiguration() throws -> PostgresConfiguration {
        guard let url = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"], !url.isEmpty else {
            Issue.record("TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL")
            throw PostgresError(.invalidConfiguration, "TEST_DATABASE_URL is not set")
        }
        return try PostgresConfiguration(url)
    }

    /// Runs `body` against a fresh, empty database that is dropped afterwards.
    public static func withFreshDatabase<T>(_ body: (PostgresConfiguration) async throws -> T) async throws -> T {
        try await withDatabase(template: nil, body)
    }

    /// Runs `body` against a fresh copy of a database with the repository's migrations applied.
    /// The migrated template is built once per test process. `body` gets the owner configuration;
    /// use ``gateway(_:)`` for the gateway's own login on the same database.
    public static func withMigratedDatabase<T>(_ body: (PostgresConfiguration) async throws -> T) async throws -> T {
        let template = try await MigratedTemplate.shared.name()
        return try await withDatabase(template: template, body)
    }

    /// The same database as the gateway's own login role (not superuser, RLS applies).
    public static func gateway(_ owner: PostgresConfiguration) -> PostgresConfiguration {
        owner.with(user: "privacy_gateway")
    }

    /// `configuration` as the URL the executables read (`DATABASE_URL`, `GATEWAY_DATABASE_URL`).
    public static func url(_ configuration: PostgresConfiguration) -> String {
        let o = configuration.options
        return "postgresql://\(o["user"]!)@\(o["host"]!):\(o["port"]!)/\(o["dbname"]!)"
    }

    /// The repository's `migrations/` directory.
    public static var repositoryMigrations: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("migrations")
    }

    /// The repository's `policies/` directory.
    public static var repositoryPolicies: URL {
        repositoryMigrations.deletingLastPathComponent().appendingPathComponent("policies")
    }

    static func uniqueName(_ prefix: String) -> String {
        prefix + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
    }

    private static func withDatabase<T>(template: String?, _ body: (PostgresConfiguration) async throws -> T) async throws -> T {
        let owner = try ownerConfiguration()
        let name = uniqueName("test_")
        let admin = ConnectionPool(configuration: owner, options: .init(maxConnections: 1))
        defer { admin.close() }
        // Identifiers cannot be bound; these are generated from hex digits only.
        let create = template.map { "CREATE DATABASE \(name) TEMPLATE \($0)" } ?? "CREATE DATABASE \(name)"
        try await admin.withConnection { connection in
            try await connection.run { try $0.simple(create) }
        }
        do {
            let value = try await body(owner.with(database: name))
            try await drop(name, using: admin)
            return value
        } catch {
            try? await drop(name, using: admin)
            throw error
        }
    }

    static func drop(_ name: String, using admin: ConnectionPool) async throws {
        try await admin.withConnection { connection in
            try await connection.run { try $0.simple("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        }
    }
}

/// One migrated database per test process, copied by `CREATE DATABASE … TEMPLATE`.
private actor MigratedTemplate {
    static let shared = MigratedTemplate()
    private var built: Task<String, Error>?

    func name() async throws -> String {
        if let built { return try await built.value }
        let task = Task { try await Self.build() }
        built = task
        return try await task.value
    }

    private static func build() async throws -> String {
        let owner = try TestDatabase.ownerConfiguration()
        let name = TestDatabase.uniqueName("template_")
        let admin = ConnectionPool(configuration: owner, options: .init(maxConnections: 1))
        defer { admin.close() }
        try await admin.withConnection { connection in
            try await connection.run { try $0.simple("CREATE DATABASE \(name)") }
        }
        let pool = ConnectionPool(configuration: owner.with(database: name), options: .init(maxConnections: 1))
        try await MigrationRunner(directory: TestDatabase.repositoryMigrations, pool: pool).migrate()
        pool.close()  // a template must have no open connections while it is copied
        return name
    }
}
