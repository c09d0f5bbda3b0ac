import Foundation
import Postgres

/// What `/ready` checks: the database answers and every migration in the directory is applied.
/// (Policies loaded and drift-free join this list with the policy engine.)
public struct Readiness: Sendable {
    public struct Report: Sendable, Codable, Equatable {
        public var ready: Bool
        /// Check name → "ok" or the reason it failed.
        public var checks: [String: String]
    }

    private let pool: ConnectionPool
    private let runner: MigrationRunner
    private let migrations: [Migration]

    /// Reads the migrations directory once; a bad directory is a start-up error.
    public init(pool: ConnectionPool, migrationsDirectory: URL) throws {
        self.pool = pool
        self.runner = MigrationRunner(directory: migrationsDirectory, pool: pool)
        do {
            self.migrations = try runner.loadMigrations()
        } catch let error as PostgresError {
            throw GatewayError.configuration(error.message)
        }
    }

    public func check() async -> Report {
        var checks: [String: String] = [:]
        do {
            try await pool.ping()
            checks["database"] = "ok"
            checks["migrations"] = try await runner.isCurrent(migrations)
                ? "ok" : "pending migrations: run privacyctl migrate"
        } catch let error as PostgresError {
            checks["database"] = error.sqlState == "42P01" ? "ok" : "unreachable: \(error.code)"
            checks["migrations"] = error.sqlState == "42P01" ? "not migrated: run privacyctl migrate" : "unknown"
        } catch {
            checks["database"] = "unreachable"
        }
        return Report(ready: checks.values.allSatisfy { $0 == "ok" }, checks: checks)
    }
}
