import Foundation
import TestSupport
import Testing

@testable import Postgres

@Suite("Migration runner")
struct MigrationRunnerTests {
    /// A migrations directory with the given files, removed afterwards.
    @discardableResult
    private func withDirectory<T>(_ files: [String: String], _ body: (URL) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("migrations-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, sql) in files {
            try sql.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return try await body(directory)
    }

    private let basic = [
        "0001_create_accounts.sql": "CREATE TABLE accounts (id int PRIMARY KEY);\n",
        "0002_add_name.sql": "ALTER TABLE accounts ADD COLUMN name text;\nCREATE INDEX ON accounts (name);\n",
    ]

    @Test("migrations apply in order, are recorded, and a second run is a no-op")
    func appliesInOrderOnce() async throws {
        try await withDirectory(basic) { directory in
            try await TestDatabase.withFreshDatabase { configuration in
                let pool = ConnectionPool(configuration: configuration)
                defer { pool.close() }
                let runner = MigrationRunner(directory: directory, pool: pool)
                #expect(try await runner.status().map(\.state) == [.pending, .pending])
                #expect(await (try? runner.isCurrent(runner.loadMigrations())) != true)
                let first = try await runner.migrate()
                #expect(first.map(\.version) == [1, 2])
                #expect(try await runner.migrate().isEmpty)
                #expect(try await runner.isCurrent(runner.loadMigrations()))
                let rows = try await pool.query("SELECT version, name, length(checksum) AS len FROM schema_migrations ORDER BY version")
                    .rows
                #expect(try rows.map { try $0.decode("name", as: String.self) } == ["create_accounts", "add_name"])
                #expect(try rows.allSatisfy { try $0.decode("len", as: Int.self) == 64 })
                #expect(try await runner.status().map(\.state) == [.applied, .applied])
            }
        }
    }

    @Test("an applied migration whose file changed is refused by name, and nothing else is applied")
    func changedMigrationRefused() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            let pool = ConnectionPool(configuration: configuration)
            defer { pool.close() }
            try await withDirectory(basic) { directory in
                try await MigrationRunner(directory: directory, pool: pool).migrate()
            }
            var edited = basic
            edited["0001_create_accounts.sql"] = "CREATE TABLE accounts (id bigint PRIMARY KEY);\n"
            edited["0003_more.sql"] = "CREATE TABLE more (x int);\n"
            try await withDirectory(edited) { directory in
                let runner = MigrationRunner(directory: directory, pool: pool)
                let error = await #expect(throws: PostgresError.self) { try await runner.migrate() }
                #expect(error?.code == .migration)
                #expect(error?.description.contains("0001_create_accounts.sql was changed") == true)
                #expect(try await runner.status().map(\.state) == [.changed, .applied, .pending])
                let more = try await pool.query("SELECT to_regclass('public.more') IS NULL AS absent").first?.decode(
                    "absent", as: Bool.self)
                #expect(more == true)
            }
        }
    }

    @Test("a migration with an SQL error is rolled back and named with the server's message and line")
    func failingMigrationRolledBack() async throws {
        let files = [
            "0001_ok.sql": "CREATE TABLE ok (id int);\n",
            "0002_broken.sql": "CREATE TABLE half (id int);\n\nINSERT INTO half VALUES (1);\nSELECT * FROM no_such_table;\n",
        ]
        try await withDirectory(files) { directory in
            try await TestDatabase.withFreshDatabase { configuration in
                let pool = ConnectionPool(configuration: configuration)
                defer { pool.close() }
                let runner = MigrationRunner(directory: directory, pool: pool)
                let error = await #expect(throws: PostgresError.self) { try await runner.migrate() }
                #expect(error?.migration == "0002_broken.sql")
                #expect(error?.line == 4)
                #expect(error?.sqlState == "42P01")
                #expect(
                    error?.description.contains("migration 0002_broken.sql (line 4): relation \"no_such_table\" does not exist") == true)
                let state = try await pool.query(
                    "SELECT to_regclass('public.ok') IS NOT NULL AS ok, to_regclass('public.half') IS NULL AS half_gone"
                ).first!
                #expect(try state.decode("ok", as: Bool.self))
                #expect(try state.decode("half_gone", as: Bool.self))
                #expect(try await runner.status().map(\.state) == [.applied, .pending])
            }
        }
    }

    @Test("badly named migration files and duplicate versions are refused")
    func invalidNames() async throws {
        let pool = ConnectionPool(configuration: try PostgresConfiguration("postgresql://unused@127.0.0.1:1/none"))
        try await withDirectory(["1_short.sql": "SELECT 1;"]) { directory in
            let error = #expect(throws: PostgresError.self) { try MigrationRunner(directory: directory, pool: pool).loadMigrations() }
            #expect(error?.message.contains("\"1_short.sql\" is invalid") == true)
        }
        try await withDirectory(["0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 2;"]) { directory in
            let error = #expect(throws: PostgresError.self) { try MigrationRunner(directory: directory, pool: pool).loadMigrations() }
            #expect(error?.message.contains("share version 1") == true)
        }
        let missing = URL(fileURLWithPath: "/nonexistent/migrations")
        #expect(throws: PostgresError.self) { try MigrationRunner(directory: missing, pool: pool).loadMigrations() }
    }

    @Test("two runners at once apply each migration exactly once")
    func concurrentRunners() async throws {
        let files = [
            "0001_slow.sql": "CREATE TABLE counter (n int); SELECT pg_sleep(0.3); INSERT INTO counter VALUES (1);\n",
            "0002_next.sql": "INSERT INTO counter VALUES (2);\n",
        ]
        try await withDirectory(files) { directory in
            try await TestDatabase.withFreshDatabase { configuration in
                let poolA = ConnectionPool(configuration: configuration)
                let poolB = ConnectionPool(configuration: configuration)
                defer { poolA.close(); poolB.close() }
                async let a = MigrationRunner(directory: directory, pool: poolA).migrate()
                async let b = MigrationRunner(directory: directory, pool: poolB).migrate()
                let applied = try await a.count + b.count
                #expect(applied == 2)
                let values = try await poolA.query("SELECT n FROM counter ORDER BY n").rows.map { try $0.decode("n", as: Int.self) }
                #expect(values == [1, 2])
            }
        }
    }

    @Test("line numbers count characters, not bytes")
    func lineOfPosition() {
        let text = "-- é\nSELECT 1;\nSELECT x;"
        #expect(MigrationRunner.line(ofCharacter: 1, in: text) == 1)
        #expect(MigrationRunner.line(ofCharacter: 23, in: text) == 3)
    }
}
