import Catalog
import Foundation
import Gateway
import Policy
import Postgres
import TestSupport
import Testing

/// The policy files are the one source of the database's row-level security: the RLS migration is
/// what `privacyctl policy sql` prints, byte for byte, and applying it leaves exactly the files'
/// policies on a live database.
@Suite("RLS generated from the policy files")
struct GeneratedRLSTests {
    static let header = "-- Row-level security generated from the policy files. Do not edit by hand.\n"

    /// The migrations in version order, with their text.
    static func migrations() throws -> [(name: String, sql: String)] {
        let directory = TestDatabase.repositoryMigrations
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted().map {
            ($0, try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8))
        }
    }

    @Test("the newest generated RLS migration is exactly what the policy files generate, and no later migration writes a policy by hand")
    func committedMigrationMatchesFiles() throws {
        let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
        let migrations = try Self.migrations()
        let generated = try #require(
            migrations.lastIndex { $0.sql.hasPrefix(Self.header) },
            "no migration starts with the generator's header; run: privacyctl policy sql > migrations/NNNN_rls.sql")
        let expected = policies.rowLevelSecurityScript()
        #expect(
            migrations[generated].sql == expected,
            "\(migrations[generated].name) differs from what the policy files generate; add a new migration: privacyctl policy sql > migrations/NNNN_rls.sql"
        )
        for later in migrations[(generated + 1)...] {
            #expect(
                !later.sql.contains("CREATE POLICY") && !later.sql.contains("DROP POLICY"),
                "\(later.name) writes row-level security by hand after \(migrations[generated].name); declare it in policies/ and generate instead"
            )
        }
    }

    @Test("applying the generated script drops a hand-added policy and restores an edited one: no drift after")
    func scriptIsTheWholeTruth() async throws {
        try await TestDatabase.withMigratedDatabase { configuration in
            let owner = ConnectionPool(configuration: configuration, options: .init(maxConnections: 1))
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            // A door a hand-written migration (or an operator) could open, and a policy weakened in place.
            try await owner.query(#"CREATE POLICY "hand added" ON public.projects AS PERMISSIVE FOR SELECT TO anon USING (true)"#)
            try await owner.query(#"ALTER POLICY "Users can view their projects" ON public.projects USING (true)"#)
            var report = try await LiveSchema.read(from: owner).drift(of: policies)
            #expect(!report.isClean)
            try await owner.withConnection { connection in
                try await connection.run { try $0.simple(policies.rowLevelSecurityScript()) }
            }
            report = try await LiveSchema.read(from: owner).drift(of: policies)
            #expect(report.isClean, "\(report)")
            let names = try await owner.query(
                "SELECT policyname FROM pg_policies WHERE tablename = 'projects' AND policyname = 'hand added'")
            #expect(names.rows.isEmpty)
        }
    }
}
