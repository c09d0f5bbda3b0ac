import Policy
import Testing

@Suite("Linter")
struct LinterTests {
    @Test("the repository's policies lint clean against a migrated database")
    func repositoryIsClean() throws {
        let findings = try repositoryPolicies.get().lint(liveTables: LiveFixture.shared.get().tables)
        #expect(findings.isEmpty, "\(findings.map(\.description).joined(separator: "\n"))")
    }

    @Test("RLS off in the database is an error naming the table")
    func rlsOff() throws {
        let live = try LiveFixture.shared.get().tables.map {
            $0.tablename == "leads" ? LiveTable(tablename: "leads", rlsEnabled: false) : $0
        }
        let findings = try repositoryPolicies.get().lint(liveTables: live)
        #expect(findings.map(\.code) == [.rlsDisabled])
        #expect(findings.first?.table == "public.leads")
        #expect(findings.first?.severity == .error)
    }

    @Test("crafted bad policies raise each finding")
    func craftedFindings() throws {
        let set = try PolicySet.load(sources: [
            PolicySource(
                file: "policies/things.yaml",
                text: """
                    table: public.things
                    tenant_column: tenant_id
                    subject: { column: user_id }
                    columns: { id: uuid, tenant_id: uuid, user_id: uuid, status: text }
                    indexes: [[id]]
                    policies:
                      - name: Anyone may write
                        command: insert
                        roles: [public]
                        with_check: "true"
                      - name: Update without check
                        command: update
                        roles: [authenticated]
                        using: auth.uid() IS NULL OR auth.uid() = user_id
                    """),
            PolicySource(
                file: "policies/children.yaml",
                text: """
                    table: public.children
                    tenant_column: tenant_id
                    subject: { via: thing_id, references: nowhere.id }
                    columns: { id: uuid, tenant_id: uuid, thing_id: uuid }
                    indexes: [[tenant_id, thing_id]]
                    policies:
                      - name: Read
                        command: select
                        roles: [authenticated]
                        using: EXISTS (SELECT 1 FROM things t WHERE t.id = children.thing_id AND t.status = 'open')
                      - name: Write
                        command: all
                        roles: [authenticated]
                        using: "true"
                        with_check: "true"
                    privacy: { export: true, erasure: delete }
                    denied_commands: { delete: never }
                    """),
        ])
        let findings = set.lint()
        func codes(_ table: String) -> Set<String> {
            Set(findings.filter { $0.table == table }.map(\.code.rawValue))
        }
        #expect(
            codes("public.things") == [
                "command-without-policy", "update-without-with-check", "always-true-on-write", "uid-is-null-or",
                "unindexed-policy-column", "subject-without-privacy",
            ])
        #expect(
            codes("public.children") == [
                "always-true-on-write", "denied-command-has-policy", "subject-via-unknown", "unindexed-policy-column",
            ])
        let unindexed = findings.filter { $0.code == .unindexedPolicyColumn }.map(\.message)
        #expect(unindexed.contains { $0.hasPrefix("things.tenant_id ") })
        #expect(unindexed.contains { $0.hasPrefix("things.user_id ") })
        #expect(unindexed.contains { $0.hasPrefix("things.status ") })
        let trueWrite = try #require(findings.first { $0.code == .alwaysTrueOnWrite && $0.table == "public.things" })
        #expect(
            trueWrite.description
                == "policies/things.yaml:7:5: error[always-true-on-write]: with_check (true) on insert policy 'Anyone may write' lets every caller it applies to write any row"
        )
    }
}
