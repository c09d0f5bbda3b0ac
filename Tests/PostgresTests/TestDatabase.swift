import Foundation
import Postgres
import Testing

/// The throwaway cluster `scripts/test` starts. Tests that need a database fail — loudly, never
/// skip — when it is missing.
enum TestDatabase {
    static func ownerConfiguration() throws -> PostgresConfiguration {
        guard let url = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"], !url.isEmpty else {
            Issue.record("TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL")
            throw PostgresError(.invalidConfiguration, "TEST_DATABASE_URL is not set")
        }
        return try PostgresConfiguration(url)
    }

    /// Runs `body` against a fresh, empty database that is dropped afterwards.
    static func withFreshDatabase<T>(_ body: (PostgresConfiguration) async throws -> T) async throws -> T {
        let owner = try ownerConfiguration()
        let name = "test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let admin = ConnectionPool(configuration: owner, options: .init(maxConnections: 1))
        defer { admin.close() }
        // Identifiers cannot be bound; this one is generated above from hex digits only.
        try await admin.withConnection { connection in
            try await connection.run { try $0.simple("CREATE DATABASE \(name)") }
        }
        do {
            let value = try await body(owner.with(database: String(name)))
            try await drop(String(name), using: admin)
            return value
        } catch {
            try? await drop(String(name), using: admin)
            throw error
        }
    }

    private static func drop(_ name: String, using admin: ConnectionPool) async throws {
        try await admin.withConnection { connection in
            try await connection.run { try $0.simple("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        }
    }

    /// The repository's `migrations/` directory.
    static var repositoryMigrations: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("migrations")
    }
}
