import Policy
import Testing

@Suite("Drift between the policy files and the database")
struct DriftTests {
    @Test("the repository's policies match a freshly migrated database")
    func noDrift() throws {
        let policies = try repositoryPolicies.get()
        let live = try LiveFixture.shared.get()
        let report = policies.drift(live: live.policies, tables: live.tables)
        #expect(report.isClean, "\(report)")
        #expect(report.description == "no drift: the database's policies match the policy files")
    }

    @Test("a live policy altered by hand is drift, reported for its table")
    func alteredPolicy() throws {
        let policies = try repositoryPolicies.get()
        let live = try LiveFixture.shared.get()
        var altered = live.policies
        let index = try #require(altered.firstIndex { $0.tablename == "projects" && $0.policyname == "Users can view their projects" })
        altered[index].qual = "(auth.uid() = user_id)"
        let report = policies.drift(live: altered, tables: live.tables)
        #expect(!report.isClean)
        #expect(report.tables.map(\.table) == ["public.projects"])
        let difference = try #require(report.tables.first?.differing.first)
        #expect(difference.declared.name == "Users can view their projects")
        #expect(difference.fields == ["using"])
        #expect(report.description.contains("public.projects"))
    }

    @Test("a change inside an EXISTS is drift too")
    func alteredSubquery() throws {
        let policies = try repositoryPolicies.get()
        let live = try LiveFixture.shared.get()
        var altered = live.policies
        let index = try #require(altered.firstIndex { $0.tablename == "sitemaps" && $0.cmd == "SELECT" })
        altered[index].qual = altered[index].qual?.replacingOccurrences(of: "(p.is_public = true)", with: "(p.is_public = false)")
        #expect(policies.drift(live: altered, tables: live.tables).tables.map(\.table) == ["public.sitemaps"])
    }

    @Test("policies match by meaning, not by name or spelling")
    func renamedAndRespelled() throws {
        let policies = try repositoryPolicies.get()
        let live = try LiveFixture.shared.get()
        var respelled = live.policies
        let index = try #require(respelled.firstIndex { $0.tablename == "projects" && $0.cmd == "SELECT" })
        respelled[index].policyname = "renamed by hand"
        respelled[index].qual = "is_public = true OR user_id = auth.uid()"
        respelled[index].roles = ["public"]
        #expect(policies.drift(live: respelled, tables: live.tables).isClean)
    }

    @Test("missing, extra and RLS-off tables are each reported")
    func missingExtraAndRLSOff() throws {
        let policies = try repositoryPolicies.get()
        let live = try LiveFixture.shared.get()
        var changed = live.policies.filter { !($0.tablename == "brands" && $0.cmd == "DELETE") }
        changed.append(
            LivePolicy(
                tablename: "leads", policyname: "debug", permissive: "PERMISSIVE", roles: ["anon"], cmd: "SELECT",
                qual: "true", withCheck: nil))
        let tables = live.tables.map { $0.tablename == "analytics" ? LiveTable(tablename: "analytics", rlsEnabled: false) : $0 }
        let report = policies.drift(live: changed, tables: tables)
        #expect(report.tables.map(\.table) == ["public.analytics", "public.brands", "public.leads"])
        #expect(report.tables[0].rlsDisabled)
        #expect(report.tables[1].missing.map(\.name) == ["Users can delete own brands"])
        #expect(report.tables[2].extra.map(\.name) == ["debug"])
    }

    @Test("a live policy whose expression does not parse is reported, not skipped")
    func unreadableLivePolicy() throws {
        let policies = try repositoryPolicies.get()
        let live = try LiveFixture.shared.get()
        var changed = live.policies
        let index = try #require(changed.firstIndex { $0.tablename == "brands" && $0.cmd == "SELECT" })
        changed[index].qual = "(auth.uid() = user_id) OR pg_has_role('admin', 'member')"
        let report = policies.drift(live: changed, tables: live.tables)
        let drift = try #require(report.tables.first)
        #expect(drift.table == "public.brands")
        #expect(drift.differing.first?.live.problem?.contains("pg_has_role") == true)
    }

    @Test(
        "equivalent spellings normalise to the same meaning",
        arguments: [
            ("status IN ('a', 'b')", "(status = ANY (ARRAY['b'::text, 'a'::text]))"),
            ("status NOT IN ('a', 'b')", "(status <> ALL (ARRAY['a'::text, 'b'::text]))"),
            ("status IN ('a')", "status = 'a'::text"),
            ("auth.uid() = user_id", "(user_id = auth.uid())"),
            ("score > 5", "5 < score"),
            ("status <> 'x'", "NOT (status = 'x')"),
            ("status != 'x'", "status <> 'x'"),
            ("user_id IS NOT NULL", "NOT (user_id IS NULL)"),
            ("a_flag AND b_flag AND a_flag", "(b_flag AND a_flag)"),
            ("score = 5", "score = '5'::integer"),
            ("things.user_id = auth.uid()", "user_id = auth.uid()"),
            ("user_id = 'A11CE000-0000-4000-8000-000000000001'", "user_id = 'a11ce000-0000-4000-8000-000000000001'::uuid"),
        ] as [(String, String)])
    func equivalentSpellings(declared: String, live: String) throws {
        let set = try PolicySet.load(sources: [thingsFileWithFlags(using: declared)])
        let livePolicies = [
            LivePolicy(
                tablename: "things", policyname: "tenant_isolation", permissive: "RESTRICTIVE", roles: ["public"], cmd: "ALL",
                qual: "(tenant_id = auth.tenant_id())", withCheck: "(tenant_id = auth.tenant_id())"),
            LivePolicy(
                tablename: "things", policyname: "privacy_worker", permissive: "PERMISSIVE", roles: ["privacy_worker"], cmd: "ALL",
                qual: "true", withCheck: "true"),
            LivePolicy(
                tablename: "things", policyname: "p", permissive: "PERMISSIVE", roles: ["authenticated"], cmd: "SELECT", qual: live,
                withCheck: nil),
        ]
        let report = set.drift(live: livePolicies, tables: [LiveTable(tablename: "things", rlsEnabled: true)])
        #expect(report.isClean, "\(report)")
    }

    @Test(
        "different meanings stay different",
        arguments: [
            ("status IN ('a', 'b')", "status IN ('a', 'c')"),
            ("auth.uid() = user_id", "auth.uid() <> user_id"),
            ("score > 5", "score >= 5"),
            ("a_flag OR b_flag", "a_flag AND b_flag"),
            ("user_id IS NULL", "user_id IS NOT NULL"),
            ("(a_flag = b_flag) IS NOT TRUE", "a_flag <> b_flag"),
        ] as [(String, String)])
    func differentMeanings(declared: String, live: String) throws {
        let set = try PolicySet.load(sources: [thingsFileWithFlags(using: declared)])
        let livePolicies = [
            LivePolicy(
                tablename: "things", policyname: "tenant_isolation", permissive: "RESTRICTIVE", roles: ["public"], cmd: "ALL",
                qual: "(tenant_id = auth.tenant_id())", withCheck: "(tenant_id = auth.tenant_id())"),
            LivePolicy(
                tablename: "things", policyname: "privacy_worker", permissive: "PERMISSIVE", roles: ["privacy_worker"], cmd: "ALL",
                qual: "true", withCheck: "true"),
            LivePolicy(
                tablename: "things", policyname: "p", permissive: "PERMISSIVE", roles: ["authenticated"], cmd: "SELECT", qual: live,
                withCheck: nil),
        ]
        #expect(!set.drift(live: livePolicies, tables: nil).isClean)
    }

    @Test("an UPDATE policy without WITH CHECK means the same as one repeating USING")
    func implicitWithCheck() throws {
        let set = try PolicySet.load(sources: [
            thingsFile(
                policies: """
                      - name: p
                        command: update
                        roles: [authenticated]
                        using: auth.uid() = user_id
                    """)
        ])
        let live = [
            LivePolicy(
                tablename: "things", policyname: "tenant_isolation", permissive: "RESTRICTIVE", roles: ["public"], cmd: "ALL",
                qual: "(tenant_id = auth.tenant_id())", withCheck: "(tenant_id = auth.tenant_id())"),
            LivePolicy(
                tablename: "things", policyname: "privacy_worker", permissive: "PERMISSIVE", roles: ["privacy_worker"], cmd: "ALL",
                qual: "true", withCheck: "true"),
            LivePolicy(
                tablename: "things", policyname: "p", permissive: "PERMISSIVE", roles: ["authenticated"], cmd: "UPDATE",
                qual: "(auth.uid() = user_id)", withCheck: "(auth.uid() = user_id)"),
        ]
        #expect(set.drift(live: live, tables: nil).isClean)
    }
}

/// `things` with two boolean columns for junction tests, and one SELECT policy.
func thingsFileWithFlags(using expression: String) -> PolicySource {
    var source = thingsFile(
        policies: """
              - name: p
                command: select
                roles: [authenticated]
                using: "\(expression.replacingOccurrences(of: "\"", with: "\\\""))"
            """)
    source.text = source.text.replacingOccurrences(
        of: "  is_public: boolean\n", with: "  is_public: boolean\n  a_flag: boolean\n  b_flag: boolean\n")
    return source
}
