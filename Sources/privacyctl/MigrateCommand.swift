import ArgumentParser
import Catalog
import Config
import Foundation
import Postgres
import Tenancy

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending migrations, or show their status.",
        discussion: """
            Applies migrations/NNNN_name.sql in order, each in its own transaction, as the owner role
            ($DATABASE_URL). Safe to run twice (a no-op) and from two processes at once (an advisory
            lock serialises them). A migration changed after it was applied is refused.
            """,
        subcommands: [Apply.self, Status.self],
        defaultSubcommand: Apply.self)

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply every pending migration (the default).")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Migrations directory (default: $PRIVACY_MIGRATIONS_DIR or migrations).")
        var migrationsDir: String?

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                let configuration = try database.configuration()
                let pool = try database.ownerPool()
                defer { pool.close() }
                let directory = URL(fileURLWithPath: migrationsDir ?? configuration.migrationsDirectory)
                let applied = try await MigrationRunner(directory: directory, pool: pool).migrate { migration in
                    Output.progress("applying \(migration.fileName)…")
                }
                struct Result: Encodable { let applied: [String] }
                try out.emit(Result(applied: applied.map(\.fileName))) {
                    applied.isEmpty
                        ? "database is up to date"
                        : "applied \(applied.count) migration(s): " + applied.map(\.fileName).joined(separator: ", ")
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List applied, pending, changed and missing migrations.",
            discussion: "Exits 3 when a migration changed after it was applied or its file is missing.")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Migrations directory (default: $PRIVACY_MIGRATIONS_DIR or migrations).")
        var migrationsDir: String?

        func run() async throws {
            let out = Output(json: output.json)
            var problems = false
            try await out.run {
                let configuration = try database.configuration()
                let pool = try database.ownerPool()
                defer { pool.close() }
                let directory = URL(fileURLWithPath: migrationsDir ?? configuration.migrationsDirectory)
                let statuses = try await MigrationRunner(directory: directory, pool: pool).status()
                struct Row: Encodable {
                    let version: Int, name: String, state: String, applied_at: Date?
                }
                try out.emit(statuses.map { Row(version: $0.version, name: $0.name, state: $0.state.rawValue, applied_at: $0.appliedAt) }) {
                    statuses.map { status in
                        let version = String(format: "%04d", status.version)
                        return "\(status.state.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(version)_\(status.name)"
                    }.joined(separator: "\n")
                }
                problems = statuses.contains { $0.state == .changed || $0.state == .missing }
            }
            if problems { throw ExitCode(3) }
        }
    }
}
