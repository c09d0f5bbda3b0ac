import Foundation
import Postgres
import TestSupport
import Testing

/// The repository's own migrations: every seed table governed, multi-tenant, under RLS.
@Suite("Repository schema")
struct SchemaTests {
    /// The tables the Foundation issue names, per seed.
    static let governedTables = [
        // privacy and secrets (seed 003)
        "user_secrets", "user_privacy_settings", "data_export_requests", "data_deletion_requests",
        // seed 000
        "job_drafts", "analytics", "ghl_opportunities", "ai_assistant_sessions",
        // seed 001
        "brands", "conversation_sessions", "conversation_messages",
        // seed 002
        "profiles", "projects", "sitemaps", "wireframes", "style_guides", "builder_sessions", "version_history",
        // seed 003
        "campaigns", "campaign_tasks", "leads", "lead_activities", "chat_sessions", "chat_messages",
        "content_calendar", "support_tickets", "user_preferences", "ai_model_configs",
        // seed 004
        "optimizations", "ai_threads", "content_modifications", "style_customization_history",
    ]

    @Test("every seed table exists with a non-null tenant_id, RLS enabled and a restrictive tenant policy")
    func everyTableGoverned() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let pool = ConnectionPool(configuration: owner)
            defer { pool.close() }
            let rows = try await pool.query(
                """
                SELECT c.relname AS table_name,
                       c.relrowsecurity AS rls,
                       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                               AND a.attnotnull AND NOT a.attisdropped) AS has_tenant,
                       EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname
                               AND p.policyname = 'tenant_isolation' AND p.permissive = 'RESTRICTIVE' AND p.cmd = 'ALL') AS isolated,
                       (SELECT count(*) FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname
                               AND p.permissive = 'PERMISSIVE') AS permissive
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname = ANY($1::text[])
                """, [PostgresTextArray(Self.governedTables)]
            ).rows
            let found = Dictionary(uniqueKeysWithValues: try rows.map { (try $0.decode("table_name", as: String.self), $0) })
            for table in Self.governedTables {
                let row = try #require(found[table], "table \(table) is missing")
                let rls: Bool = try row.decode("rls"), hasTenant: Bool = try row.decode("has_tenant")
                let isolated: Bool = try row.decode("isolated"), permissive: Int = try row.decode("permissive")
                #expect(rls, "RLS is off on \(table)")
                #expect(hasTenant, "no NOT NULL tenant_id on \(table)")
                #expect(isolated, "no restrictive tenant_isolation policy on \(table)")
                #expect(permissive > 0, "no permissive policy on \(table)")
            }
            let extras = try await pool.query(
                """
                SELECT count(*) AS n FROM information_schema.columns
                WHERE table_schema = 'public' AND ((table_name = 'chat_sessions' AND column_name = 'openai_thread_id')
                   OR (table_name = 'optimizations' AND column_name = 'ai_modification_count'))
                """
            ).first!.decode("n", as: Int.self)
            #expect(extras == 2)
        }
    }

    @Test("migrating an up-to-date database again changes nothing")
    func migrateTwiceIsNoOp() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let pool = ConnectionPool(configuration: owner)
            defer { pool.close() }
            let runner = MigrationRunner(directory: TestDatabase.repositoryMigrations, pool: pool)
            let applied = try await runner.migrate()
            let states = try await runner.status().map(\.state)
            #expect(applied.isEmpty)
            #expect(states.allSatisfy { $0 == .applied })
        }
    }

    /// What the gateway does per request, as PostgREST does.
    private static func asUser(_ user: UUID, tenant: UUID, role: String = "authenticated") -> [Statement] {
        [
            Statement("SELECT set_config('role', $1, true)", [role]),
            Statement(
                "SELECT set_config('request.jwt.claims', $1, true)", [#"{"sub":"\#(user.uuidString.lowercased())","role":"\#(role)"}"#]),
            Statement("SELECT set_config('request.tenant_id', $1, true)", [tenant.uuidString.lowercased()]),
        ]
    }

    @Test("the database's own RLS keeps users and tenants apart for the gateway role")
    func rowLevelSecurityIsolation() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let admin = ConnectionPool(configuration: owner)
            let gateway = ConnectionPool(configuration: TestDatabase.gateway(owner))
            defer { admin.close(); gateway.close() }
            let tenantA = UUID(), tenantB = UUID(), alice = UUID(), bob = UUID(), mallory = UUID()
            try await admin.query("INSERT INTO tenants (id, name) VALUES ($1, 'a'), ($2, 'b')", [tenantA, tenantB])
            try await admin.query(
                "INSERT INTO auth.users (id, tenant_id) VALUES ($1, $3), ($2, $3), ($4, $5)", [alice, bob, tenantA, mallory, tenantB])

            // Alice creates a private project; tenant_id comes from her request's tenant.
            let inserted = try await gateway.withConnection { connection in
                try await connection.run { connection in
                    try connection.transaction { connection in
                        _ = try connection.pipeline(Self.asUser(alice, tenant: tenantA))
                        return try connection.query(
                            "INSERT INTO projects (user_id, name, type) VALUES ($1, $2, 'website') RETURNING tenant_id",
                            [alice, "secret plan"]
                        ).first!.decode("tenant_id", as: UUID.self)
                    }
                }
            }
            #expect(inserted == tenantA)

            func visibleProjects(_ user: UUID, _ tenant: UUID) async throws -> Int {
                try await gateway.withConnection { connection in
                    try await connection.run { connection in
                        try connection.transaction { connection in
                            _ = try connection.pipeline(Self.asUser(user, tenant: tenant))
                            return try connection.query("SELECT count(*) AS n FROM projects").first!.decode("n", as: Int.self)
                        }
                    }
                }
            }
            #expect(try await visibleProjects(alice, tenantA) == 1)
            #expect(try await visibleProjects(bob, tenantA) == 0)
            // Even Alice's own id cannot see her rows from another tenant.
            #expect(try await visibleProjects(alice, tenantB) == 0)

            // Writing a row into another tenant is refused by the restrictive policy.
            let error = await #expect(throws: PostgresError.self) {
                try await gateway.withConnection { connection in
                    try await connection.run { connection in
                        try connection.transaction { connection in
                            _ = try connection.pipeline(Self.asUser(mallory, tenant: tenantB))
                            try connection.query(
                                "INSERT INTO projects (tenant_id, user_id, name, type) VALUES ($1, $2, 'x', 'website')", [tenantA, mallory])
                        }
                    }
                }
            }
            #expect(error?.sqlState == "42501" || error?.sqlState == "23503")
        }
    }

    @Test("the gateway role cannot read governed tables before it assumes a request role")
    func gatewayRoleHasNoDirectAccess() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let gateway = ConnectionPool(configuration: TestDatabase.gateway(owner))
            defer { gateway.close() }
            let error = await #expect(throws: PostgresError.self) { try await gateway.query("SELECT * FROM user_secrets") }
            #expect(error?.sqlState == "42501")
            let flags = try await gateway.query("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").first!
            #expect(try flags.decode("rolsuper", as: Bool.self) == false)
            #expect(try flags.decode("rolbypassrls", as: Bool.self) == false)
        }
    }
}
