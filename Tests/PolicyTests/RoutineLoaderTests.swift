import Foundation
import Policy
import Testing

/// `functions:` and `views:` in a policy file: what /rest/v1/rpc may call and which views it serves.
@Suite("Loading declared functions and views")
struct RoutineLoaderTests {
    static let policy = """
          - name: Own things
            command: select
            roles: [authenticated]
            using: auth.uid() = user_id
        """

    static func things(_ extra: String) -> PolicySource {
        thingsFile(policies: policy, extra: extra)
    }

    @Test("a security definer function without a justification is refused; with one it loads and the linter reports it")
    func definerNeedsJustification() throws {
        let definer = """
            functions:
              - name: count_things
                returns: bigint
                volatility: stable
                security: definer
                roles: [authenticated]
            """
        let error = try #require(loadError([Self.things(definer)]))
        #expect(error.description.contains("security definer without a justification"))
        let justified = definer + "\n    justification: counts every tenant's things for the status page"
        let policies = try PolicySet.load(sources: [Self.things(justified)])
        let function = try #require(policies.function(named: "count_things"))
        #expect(function.security == .definer)
        let findings = policies.lint().filter { $0.code == .securityDefinerFunction }
        #expect(findings.count == 1)
        #expect(findings.first?.message.contains("counts every tenant's things") == true)
    }

    @Test(
        "roles, return types, optional arguments and names are checked: non-request roles, unknown types, setof an ungoverned table, duplicates"
    )
    func badDeclarations() {
        let cases: [(String, String)] = [
            ("functions:\n  - { name: f, returns: integer, volatility: stable, roles: [privacy_worker] }", "cannot call through /rest/v1"),
            ("functions:\n  - { name: f, returns: integer, volatility: stable, roles: [public] }", "cannot call through /rest/v1"),
            ("functions:\n  - { name: f, returns: integer, volatility: sometimes, roles: [anon] }", "unknown volatility"),
            ("functions:\n  - { name: f, returns: widget, volatility: stable, roles: [anon] }", "unknown return type"),
            ("functions:\n  - { name: f, returns: setof pg_authid, volatility: stable, roles: [anon] }", "not governed"),
            (
                "functions:\n  - { name: f, arguments: { a: uuid }, optional: [b], returns: integer, volatility: stable, roles: [anon] }",
                "not an argument"
            ),
            ("functions:\n  - { name: f, returns: table, volatility: stable, roles: [anon] }", "columns"),
            (
                "functions:\n  - { name: f, returns: integer, columns: { a: text }, volatility: stable, roles: [anon] }",
                "only used with returns: table"
            ),
            ("functions:\n  - { name: \"f; drop\", returns: integer, volatility: stable, roles: [anon] }", "not a plain"),
            (
                "functions:\n  - { name: f, returns: integer, volatility: stable, roles: [anon] }\n  - { name: f, returns: integer, volatility: stable, roles: [anon] }",
                "not a plain, new"
            ),
            ("functions:\n  - { name: f, returns: integer, volatility: stable, roles: [anon], grant: all }", "unknown key 'grant'"),
            ("views:\n  - { name: things, columns: { id: uuid }, roles: [anon] }", "not a plain, new view name"),
            ("views:\n  - { name: v, tenant_column: nope, columns: { id: uuid }, roles: [anon] }", "tenant_column"),
            (
                "views:\n  - { name: v, columns: { id: uuid }, roles: [anon] }\nfunctions:\n  - { name: v, returns: integer, volatility: stable, roles: [anon] }",
                "declared twice"
            ),
        ]
        for (extra, expected) in cases {
            let error = loadError([Self.things(extra)])
            #expect(error?.description.contains(expected) == true, "\(extra): \(error?.description ?? "loaded")")
        }
    }

    @Test("a function name may not be a governed table's, nor declared in two files")
    func namesAcrossFiles() {
        let other = thingsFile(policies: Self.policy, extra: "", file: "policies/others.yaml")
            .text.replacingOccurrences(of: "public.things", with: "public.others")
        let others = PolicySource(
            file: "policies/others.yaml",
            text: other + "\nfunctions:\n  - { name: things, returns: integer, volatility: stable, roles: [anon] }")
        #expect(loadError([Self.things(""), others])?.description.contains("governed table's name") == true)
        let twice = PolicySource(
            file: "policies/others.yaml", text: other + "\nfunctions:\n  - { name: f, returns: integer, volatility: stable, roles: [anon] }"
        )
        let once = Self.things("functions:\n  - { name: f, returns: integer, volatility: stable, roles: [anon] }")
        #expect(loadError([once, twice])?.description.contains("declared twice") == true)
    }

    @Test("the seeds' declarations: eight functions of the request roles, none definer, the grants 0018 applies")
    func seeds() throws {
        let policies = try repositoryPolicies.get()
        #expect(
            policies.functions.map(\.name) == [
                "cancel_conversation_session", "complete_conversation_session", "create_version_history", "get_conversation_history",
                "get_next_version", "get_session_analytics", "get_session_cost", "get_session_message_stats",
            ])
        #expect(policies.functions.allSatisfy { $0.security == .invoker && !$0.roles.contains("anon") })
        let migration = try String(contentsOf: Repository.root.appendingPathComponent("migrations/0018_rpc_grants.sql"), encoding: .utf8)
        for statement in policies.functionGrantStatements + policies.viewGrantStatements {
            #expect(migration.contains(statement + ";"), "\(statement)")
        }
    }
}
