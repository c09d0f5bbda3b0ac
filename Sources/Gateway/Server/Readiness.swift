import Catalog
import Config
import Foundation
import Policy
import Postgres

/// What `/ready` checks: the database answers, every migration in the directory is applied, and
/// the live RLS matches the policy files (no drift). Policy files that fail to load stop the
/// gateway at start-up instead, so a running gateway always has them.
public struct Readiness: Sendable {
    public struct Report: Sendable, Codable, Equatable {
        public var ready: Bool
        /// Check name → "ok" or the reason it failed.
        public var checks: [String: String]
    }

    private let pool: ConnectionPool
    private let runner: MigrationRunner
    private let migrations: [Migration]
    private let policies: PolicySet

    /// Reads the migrations directory once; a bad directory is a start-up error.
    public init(pool: ConnectionPool, migrationsDirectory: URL, policies: PolicySet) throws {
        self.pool = pool
        self.policies = policies
        self.runner = MigrationRunner(directory: migrationsDirectory, pool: pool)
        do {
            self.migrations = try runner.loadMigrations()
        } catch let error as PostgresError {
            throw ConfigurationError(error.message)
        }
    }

    public func check() async -> Report {
        var checks: [String: String] = ["policies": "ok"]
        do {
            try await pool.ping()
            checks["database"] = "ok"
        } catch let error as PostgresError {
            checks["database"] = "unreachable: \(error.code)"
            return Report(ready: false, checks: checks)
        } catch {
            checks["database"] = "unreachable"
            return Report(ready: false, checks: checks)
        }
        do {
            checks["migrations"] = try await runner.isCurrent(migrations) ? "ok" : "pending migrations: run privacyctl migrate"
        } catch let error as PostgresError where error.sqlState == "42P01" {
            checks["migrations"] = "not migrated: run privacyctl migrate"
        } catch {
            checks["migrations"] = "unknown: \(error)"
        }
        do {
            let drift = try await LiveSchema.read(from: pool).drift(of: policies)
            checks["drift"] =
                drift.isClean
                ? "ok" : "drift on \(drift.tables.map(\.table).joined(separator: ", ")): run privacyctl policy check"
        } catch {
            checks["drift"] = "unknown: cannot read pg_policies"
        }
        return Report(ready: checks.values.allSatisfy { $0 == "ok" }, checks: checks)
    }
}
