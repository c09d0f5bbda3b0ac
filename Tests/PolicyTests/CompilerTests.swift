import Foundation
import Policy
import Testing

@Suite("SQL compiler")
struct CompilerTests {
    let policies: PolicySet
    init() throws { policies = try repositoryPolicies.get() }

    @Test("a policy compiles to quoted, qualified identifiers and typed bind parameters")
    func quotedAndBound() throws {
        let predicate = try policies.predicate(for: .select, clause: .using, on: "projects", auth: People.user(People.alice))
        #expect(
            predicate.sql
                == #"(("projects"."tenant_id" = $1::uuid) AND (($2::uuid = "projects"."user_id") OR ("projects"."is_public" = true)))"#)
        #expect(predicate.binds == [.uuid(People.tenant), .uuid(People.alice)])
        #expect(predicate.nextBind == 3)
    }

    @Test("placeholders start at the given number and a value used twice is bound once")
    func offsetsAndReuse() throws {
        let predicate = try policies.predicate(
            for: .update, clause: .withCheck, on: "conversation_sessions", auth: People.user(People.alice), firstBind: 4)
        #expect(
            predicate.sql
                == #"(("conversation_sessions"."tenant_id" = $4::uuid) AND (($5::uuid = "conversation_sessions"."user_id") AND EXISTS (SELECT 1 FROM "public"."brands" "_s1" WHERE (("_s1"."id" = "conversation_sessions"."brand_id") AND ("_s1"."user_id" = $5::uuid)))))"#
        )
        #expect(predicate.binds == [.uuid(People.tenant), .uuid(People.alice)])
        #expect(predicate.nextBind == 6)
    }

    @Test("anonymous callers bind NULL for auth.uid(), which matches no owner")
    func anonymousBindsNull() throws {
        let predicate = try policies.predicate(for: .select, clause: .using, on: "user_secrets", auth: People.anonymous())
        #expect(predicate.sql == "false")
        let projects = try policies.predicate(for: .select, clause: .using, on: "projects", auth: People.anonymous())
        #expect(projects.binds == [.uuid(People.tenant), .null])
    }

    @Test("SQL-looking text in a JWT claim stays in the binds, never in the SQL")
    func injectionStaysInBinds() throws {
        let hostile = "x'); DROP TABLE projects; --"
        let predicate = try policies.predicate(
            for: .select, clause: .using, on: "ai_assistant_sessions", auth: People.anonymous(claims: ["session_id": .text(hostile)]))
        #expect(!predicate.sql.contains("DROP"))
        #expect(predicate.sql.contains(#""ai_assistant_sessions"."session_id" = $2::text"#))
        #expect(predicate.binds.contains(.text(hostile)))
    }

    @Test("string literals of a policy are bound too, cast to the type they meet")
    func literalsAreBound() throws {
        let predicate = try policies.predicate(for: .insert, clause: .withCheck, on: "ai_model_configs", auth: People.service())
        #expect(predicate.sql == #"(("ai_model_configs"."tenant_id" = $1::uuid) AND ($2::text = $3::text))"#)
        #expect(predicate.binds == [.uuid(People.tenant), "service_role", "service_role"])
        let filter = try policies.compile(
            PolicyExpression.parse("status IN ('draft', 'active') AND user_id = 'a11ce000-0000-4000-8000-000000000001'"), on: "projects",
            auth: People.user(People.alice))
        #expect(filter.sql == #"(("projects"."status" IN ($1::text, $2::text)) AND ("projects"."user_id" = $3::uuid))"#)
        #expect(filter.binds == ["draft", "active", "a11ce000-0000-4000-8000-000000000001"])
    }

    @Test("no applicable permissive policy compiles to false")
    func noPolicyIsFalse() throws {
        #expect(try policies.predicate(for: .update, clause: .using, on: "version_history", auth: People.user(People.alice)).sql == "false")
        #expect(
            try policies.predicate(for: .insert, clause: .withCheck, on: "ai_model_configs", auth: People.user(People.alice)).sql == "false"
        )
    }

    @Test("a column not in the table's catalogue is refused")
    func unknownColumnRefused() throws {
        #expect {
            try policies.compile(PolicyExpression.parse(#""user_id""; --" = auth.uid()"#), on: "projects", auth: People.user(People.alice))
        } throws: { error in
            (error as? PolicyError)?.code == .unknownColumn
        }
        #expect(throws: PolicyError.self) {
            try policies.compile(PolicyExpression.parse("owner = auth.uid()"), on: "projects", auth: People.user(People.alice))
        }
        let table = try #require(policies.table(named: "projects"))
        #expect(try table.quotedColumn("user_id") == #""user_id""#)
        #expect(throws: PolicyError.self) { try table.quotedColumn("password") }
    }

    @Test("a command and clause Postgres does not have is refused")
    func invalidClause() {
        #expect(throws: PolicyError.self) {
            try policies.predicate(for: .select, clause: .withCheck, on: "projects", auth: People.user(People.alice))
        }
    }
}

@Suite("RLS generator")
struct RLSGeneratorTests {
    @Test("generates ENABLE, the restrictive tenant policy and one CREATE POLICY per entry, identifiers quoted")
    func projects() throws {
        var statements = try repositoryPolicies.get().rowLevelSecurityStatements(for: "projects")
        // Second: drop the live policies the file does not name, so the script is the whole truth.
        let stale = statements.remove(at: 1)
        #expect(
            stale.hasPrefix(
                "DO $rls$ DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'projects' AND policyname <> ALL (ARRAY['tenant_isolation', 'privacy_worker', 'Users can view their projects', "
            ), "\(stale)")
        #expect(
            stale.hasSuffix(#"LOOP EXECUTE format('DROP POLICY %I ON %s', stale, '"public"."projects"'); END LOOP; END $rls$;"#), "\(stale)"
        )
        #expect(
            statements == [
                #"ALTER TABLE "public"."projects" ENABLE ROW LEVEL SECURITY;"#,
                #"DROP POLICY IF EXISTS "tenant_isolation" ON "public"."projects";"#,
                #"CREATE POLICY "tenant_isolation" ON "public"."projects" AS RESTRICTIVE FOR ALL TO public USING ("tenant_id" = auth.tenant_id()) WITH CHECK ("tenant_id" = auth.tenant_id());"#,
                #"DROP POLICY IF EXISTS "privacy_worker" ON "public"."projects";"#,
                #"CREATE POLICY "privacy_worker" ON "public"."projects" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);"#,
                #"DROP POLICY IF EXISTS "Users can view their projects" ON "public"."projects";"#,
                #"CREATE POLICY "Users can view their projects" ON "public"."projects" AS PERMISSIVE FOR SELECT TO public USING (auth.uid() = "user_id" OR "is_public" = true);"#,
                #"DROP POLICY IF EXISTS "Users can insert their projects" ON "public"."projects";"#,
                #"CREATE POLICY "Users can insert their projects" ON "public"."projects" AS PERMISSIVE FOR INSERT TO "authenticated", "service_role" WITH CHECK (auth.uid() = "user_id");"#,
                #"DROP POLICY IF EXISTS "Users can update their projects" ON "public"."projects";"#,
                #"CREATE POLICY "Users can update their projects" ON "public"."projects" AS PERMISSIVE FOR UPDATE TO "authenticated", "service_role" USING (auth.uid() = "user_id") WITH CHECK (auth.uid() = "user_id");"#,
                #"DROP POLICY IF EXISTS "Users can delete their projects" ON "public"."projects";"#,
                #"CREATE POLICY "Users can delete their projects" ON "public"."projects" AS PERMISSIVE FOR DELETE TO "authenticated", "service_role" USING (auth.uid() = "user_id");"#,
            ])
    }

    @Test("subqueries are written with quoted tables and aliases")
    func subqueries() throws {
        let statements = try repositoryPolicies.get().rowLevelSecurityStatements(for: "sitemaps")
        #expect(
            statements.contains(
                #"CREATE POLICY "Users can view sitemaps of visible projects" ON "public"."sitemaps" AS PERMISSIVE FOR SELECT TO public USING (EXISTS (SELECT 1 FROM "public"."projects" "p" WHERE "p"."id" = "sitemaps"."project_id" AND ("p"."user_id" = auth.uid() OR "p"."is_public" = true)));"#
            ))
    }

    @Test("the script covers every governed table with one CREATE POLICY per policy (159 as in the migrations)")
    func wholeScript() throws {
        let policies = try repositoryPolicies.get()
        let script = policies.rowLevelSecurityScript()
        #expect(script.components(separatedBy: "ENABLE ROW LEVEL SECURITY;").count - 1 == 33)
        #expect(script.components(separatedBy: "CREATE POLICY ").count - 1 == (try LiveFixture.shared.get()).policies.count)
    }

    @Test("a policy name with a quote is quoted safely")
    func quotedNames() throws {
        let set = try PolicySet.load(sources: [
            thingsFile(
                policies: """
                      - name: Alice's "own" things
                        command: select
                        roles: [authenticated]
                        using: auth.uid() = user_id
                    """)
        ])
        #expect(
            try set.rowLevelSecurityStatements(for: "things").contains(
                #"CREATE POLICY "Alice's ""own"" things" ON "public"."things" AS PERMISSIVE FOR SELECT TO "authenticated" USING (auth.uid() = "user_id");"#
            ))
        // Inside the stale-policy drop the name is a string literal, quote doubled.
        #expect(try set.rowLevelSecurityStatements(for: "things")[1].contains(#"'Alice''s "own" things'"#))
    }
}
