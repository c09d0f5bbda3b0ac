import Foundation
import Policy
import Testing

@Suite("Loading policy files")
struct LoaderTests {
    @Test("every file in policies/ loads, one per governed table of the migrations")
    func repositoryLoads() throws {
        let policies = try repositoryPolicies.get()
        let live = try LiveFixture.shared.get()
        #expect(policies.tables.count == 33)
        #expect(Set(policies.tables.map(\.name)) == Set(live.tables.filter(\.rlsEnabled).map(\.tablename)))
        for table in policies.tables {
            #expect(table.file?.hasSuffix("policies/\(table.name).yaml") == true)
            #expect(table.schema == "public")
            #expect(table.tenantColumn == "tenant_id")
        }
    }

    @Test("every expression round-trips: parse → print → parse gives the same AST")
    func roundTrip() throws {
        let policies = try repositoryPolicies.get()
        var count = 0
        for table in policies.tables {
            for rule in table.effectivePolicies {
                for expression in [rule.using, rule.withCheck].compactMap({ $0 }) {
                    #expect(try PolicyExpression.parse(expression.description) == expression, "\(table.name): \(rule.name)")
                    #expect(try PolicyExpression.parse(expression.quotedSQL) == expression, "\(table.name): \(rule.name)")
                    count += 1
                }
            }
        }
        #expect(count > 200)
    }

    @Test("enums and other types of the database's own are declared schema-qualified; a misspelt built-in is still refused")
    func userDefinedTypes() {
        #expect(SQLType("public.project_status")?.canonical == "public.project_status")
        #expect(SQLType("public.project_status[]")?.canonical == "public.project_status[]")
        #expect(SQLType("Public.Mood")?.canonical == "public.mood")
        for refused in [
            "intger", "project_status", "pg_catalog.int4", "information_schema.sql_identifier", "public.mood(3)",
            "public.a.b", "public.", ".mood", "public.mo-od", "public.1mood",
        ] {
            #expect(SQLType(refused) == nil, "\(refused)")
        }
    }

    @Test("each file's columns mirror the migrated table exactly, in order and type")
    func columnsMirrorTheDatabase() throws {
        let policies = try repositoryPolicies.get()
        for live in try CatalogueFixture.shared.get().tables {
            let table = try #require(policies.table(named: live.tablename))
            #expect(table.columns.map(\.name) == live.columns.map { $0[0] }, "\(live.tablename)")
            #expect(table.columns.map(\.type.canonical) == live.columns.map { $0[1] }, "\(live.tablename)")
        }
    }

    @Test("each file's indexes mirror the migrated table's indexes")
    func indexesMirrorTheDatabase() throws {
        let policies = try repositoryPolicies.get()
        for live in try CatalogueFixture.shared.get().tables {
            let table = try #require(policies.table(named: live.tablename))
            #expect(Set(table.indexes) == Set(live.indexes), "\(live.tablename)")
        }
    }

    @Test("subjects and privacy sections are read as written")
    func subjectsAndPrivacy() throws {
        let policies = try repositoryPolicies.get()
        #expect(policies.table(named: "projects")?.subject == .column("user_id"))
        #expect(policies.table(named: "profiles")?.subject == .column("id"))
        #expect(policies.table(named: "sitemaps")?.subject == .via(column: "project_id", table: "projects", referencedColumn: "id"))
        #expect(policies.table(named: "ai_model_configs")?.subject == nil)
        #expect(policies.table(named: "ai_model_configs")?.privacy == nil)
        let deletion = try #require(policies.table(named: "data_deletion_requests")?.privacy)
        guard case .retain(let basis, let until) = deletion.erasure else {
            Issue.record("data_deletion_requests should be retained")
            return
        }
        #expect(basis == "Art. 17(3)(e) proof of erasure")
        #expect(until.description == "3 years")
        let analytics = try #require(policies.table(named: "analytics")?.privacy)
        #expect(analytics.retentionDays == 730)
        guard case .anonymize(let columns) = analytics.erasure else {
            Issue.record("analytics should be anonymised")
            return
        }
        #expect(columns.first?.column == "user_id")
        #expect(columns.first?.method == .null)
        #expect(policies.table(named: "version_history")?.deniedCommands[.update] != nil)
    }

    @Test("a policy's roles, command and kind are read; as: restrictive is honoured")
    func policyFields() throws {
        let set = try PolicySet.load(sources: [
            thingsFile(
                policies: """
                      - name: Own things
                        command: select
                        roles: [authenticated, service_role]
                        using: auth.uid() = user_id
                      - name: Only active
                        command: all
                        roles: [public]
                        as: restrictive
                        using: status <> 'archived'
                        with_check: status <> 'archived'
                    """)
        ])
        let rules = try #require(set.table(named: "things")?.policies)
        #expect(rules.map(\.name) == ["Own things", "Only active"])
        #expect(rules[0].roles == ["authenticated", "service_role"])
        #expect(rules[0].kind == .permissive)
        #expect(rules[1].kind == .restrictive)
        #expect(rules[1].command == .all)
        #expect(rules[1].applies(to: "anon"))
    }
}

@Suite("Malformed policy files")
struct MalformedFileTests {
    private func error(_ policies: String) -> String? {
        loadError([thingsFile(policies: policies)])?.description
    }

    @Test("an unknown key names the file, line, column and the keys that are allowed")
    func unknownKey() {
        #expect(
            error(
                """
                  - name: Own things
                    command: select
                    roles: [authenticated]
                    usingg: auth.uid() = user_id
                """) == "policies/things.yaml:19:5: unknown key 'usingg' — expected one of: name, command, roles, using, with_check, as")
    }

    @Test("an unknown top-level key is an error too, not ignored")
    func unknownTopLevelKey() {
        let source = PolicySource(
            file: "policies/things.yaml",
            text: """
                table: public.things
                tenant_column: tenant_id
                colums:
                  id: uuid
                """)
        #expect(
            loadError([source])?.description
                == "policies/things.yaml:3:1: unknown key 'colums' — expected one of: table, tenant_column, subject, columns, indexes, policies, denied_commands, privacy, rest, rest_hidden, managed_by, functions, views"
        )
        #expect(loadError([source])?.code == .unknownKey)
    }

    @Test("a bad command says which commands exist")
    func badCommand() {
        #expect(
            error(
                """
                  - name: Own things
                    command: selct
                    roles: [authenticated]
                    using: auth.uid() = user_id
                """) == "policies/things.yaml:17:14: unknown command 'selct' — expected one of: select, insert, update, delete, all")
    }

    @Test("an unknown column points into the expression and lists the table's columns")
    func unknownColumn() {
        let found = loadError([
            thingsFile(
                policies: """
                      - name: Own things
                        command: select
                        roles: [authenticated]
                        using: auth.uid() = owner_id
                    """)
        ])
        #expect(found?.code == .unknownColumn)
        #expect(
            found?.description
                == "policies/things.yaml:19:25: column 'owner_id' does not exist in public.things — available columns: id, tenant_id, user_id, status, score, is_public, collaborators"
        )
    }

    @Test("an unknown column on a later line of a block scalar is located on that line")
    func unknownColumnInBlock() {
        let found = loadError([
            thingsFile(
                policies: """
                      - name: Own things
                        command: select
                        roles: [authenticated]
                        using: |
                          auth.uid() = user_id
                            OR is_publik = true
                    """)
        ])
        #expect(found?.location == SourceLocation(file: "policies/things.yaml", line: 21, column: 12))
        #expect(found?.message == "column 'is_publik' does not exist in public.things")
    }

    @Test("an unbalanced parenthesis points at the '(' that is never closed")
    func unbalancedParenthesis() {
        #expect(
            error(
                """
                  - name: Own things
                    command: select
                    roles: [authenticated]
                    using: (auth.uid() = user_id OR is_public
                """) == "policies/things.yaml:19:12: unbalanced parenthesis: '(' is never closed — expected ')'")
        #expect(
            error(
                """
                  - name: Own things
                    command: select
                    roles: [authenticated]
                    using: auth.uid() = user_id)
                """)
                == "policies/things.yaml:19:32: unbalanced parenthesis: ')' has no matching '(' — remove the ')' or add a '(' before it")
    }

    @Test("a function other than the auth helpers is refused, naming the allowed ones")
    func functionNotAllowed() {
        let found = loadError([
            thingsFile(
                policies: """
                      - name: Own things
                        command: select
                        roles: [authenticated]
                        using: auth.uid() = user_id AND now() IS NOT NULL
                    """)
        ])
        #expect(found?.code == .functionNotAllowed)
        #expect(
            found?.description
                == "policies/things.yaml:19:37: function now() is not allowed in a policy — expected one of: auth.uid(), auth.role(), auth.tenant_id(), auth.jwt() ->> 'claim'"
        )
    }

    @Test("an unknown role says which roles exist")
    func unknownRole() {
        #expect(
            error(
                """
                  - name: Own things
                    command: select
                    roles: [authenticated, admin]
                    using: auth.uid() = user_id
                """)
                == "policies/things.yaml:18:28: unknown role 'admin' — expected one of: anon, authenticated, service_role, gateway_secrets, privacy_worker, public"
        )
    }

    @Test("with_check on a select policy is refused, as Postgres refuses it")
    func withCheckOnSelect() {
        let found = loadError([
            thingsFile(
                policies: """
                      - name: Own things
                        command: select
                        roles: [authenticated]
                        using: auth.uid() = user_id
                        with_check: auth.uid() = user_id
                    """)
        ])
        #expect(found?.location?.line == 20)
        #expect(found?.message == "a select policy cannot have with_check")
    }

    @Test("a non-boolean condition is a type error")
    func nonBoolean() {
        let found = loadError([
            thingsFile(
                policies: """
                      - name: Own things
                        command: select
                        roles: [authenticated]
                        using: user_id
                    """)
        ])
        #expect(found?.code == .typeMismatch)
        #expect(found?.message == "'user_id' is uuid, not boolean")
    }

    @Test("a literal that cannot be its column's type is a type error")
    func badLiteral() {
        let found = loadError([
            thingsFile(
                policies: """
                      - name: Own things
                        command: select
                        roles: [authenticated]
                        using: user_id = 'not-a-uuid'
                    """)
        ])
        #expect(found?.code == .typeMismatch)
        #expect(found?.location?.column == 12)
    }

    @Test("EXISTS over a table without a policy file is refused")
    func existsOverUngovernedTable() {
        let found = loadError([
            thingsFile(
                policies: """
                      - name: Own things
                        command: select
                        roles: [authenticated]
                        using: EXISTS (SELECT 1 FROM public.tenants t WHERE t.id = tenant_id)
                    """)
        ])
        #expect(found?.code == .unknownTable)
        #expect(found?.location == SourceLocation(file: "policies/things.yaml", line: 19, column: 41))
    }

    @Test("a file whose table does not match its name is refused")
    func fileNameMismatch() {
        let found = loadError([thingsFile(policies: "  []", file: "policies/other.yaml")])
        #expect(found?.message == "table 'public.things' does not match the file name 'other'")
    }

    @Test("invalid YAML is reported with its position")
    func invalidYAML() {
        let found = loadError([PolicySource(file: "policies/things.yaml", text: "table: [public.things\ncolumns: {")])
        #expect(found?.code == .invalidYAML)
        #expect(found?.location?.file == "policies/things.yaml")
    }

    @Test("missing keys and bad privacy values name what is expected")
    func privacyErrors() {
        let missingBasis = loadError([
            thingsFile(policies: "  []").withPrivacy(
                """
                privacy:
                  export: true
                  erasure: retain
                  retain:
                    until: 3 years
                """)
        ])
        #expect(missingBasis?.code == .missingKey)
        #expect(missingBasis?.message == "missing key 'basis' in retain")
        let badErasure = loadError([
            thingsFile(policies: "  []").withPrivacy(
                """
                privacy:
                  export: true
                  erasure: shred
                """)
        ])
        #expect(
            badErasure?.description == "policies/things.yaml:19:12: unknown erasure 'shred' — expected one of: delete, anonymize, retain")
    }

    @Test("SELECT policies that reach each other through EXISTS are refused (Postgres would recurse)")
    func subqueryCycle() {
        let found = loadError([
            PolicySource(
                file: "policies/a.yaml",
                text: """
                    table: public.a
                    tenant_column: tenant_id
                    columns: { id: uuid, tenant_id: uuid, b_id: uuid }
                    policies:
                      - name: via b
                        command: select
                        roles: [authenticated]
                        using: EXISTS (SELECT 1 FROM b WHERE b.id = a.b_id)
                    """),
            PolicySource(
                file: "policies/b.yaml",
                text: """
                    table: public.b
                    tenant_column: tenant_id
                    columns: { id: uuid, tenant_id: uuid, a_id: uuid }
                    policies:
                      - name: via a
                        command: select
                        roles: [authenticated]
                        using: EXISTS (SELECT 1 FROM a WHERE a.id = b.a_id)
                    """),
        ])
        #expect(found?.message == "SELECT policies reach each other through EXISTS: a → b → a")
    }
}

extension PolicySource {
    /// The same file with its `privacy:` section replaced (it starts at line 17 when `policies`
    /// is the one-line `  []`).
    func withPrivacy(_ privacy: String) -> PolicySource {
        guard let range = text.range(of: "privacy:") else { return self }
        return PolicySource(file: file, text: String(text[..<range.lowerBound]) + privacy)
    }
}
