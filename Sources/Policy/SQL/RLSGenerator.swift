extension PolicySet {
    /// The row-level security DDL for `table`, one statement per element (each ending in `;`):
    /// enable RLS, then for the implied `tenant_isolation` policy and each file entry a
    /// `DROP POLICY IF EXISTS` followed by its `CREATE POLICY`. Identifiers are quoted; `TO public`
    /// stays a keyword.
    ///
    /// Re-running it is safe, and it is the whole truth: a live policy on the table whose name is
    /// not in the file (renamed, removed, hand-added) is dropped first, so applying the script
    /// leaves exactly the file's policies (``drift(live:tables:)`` would otherwise report it).
    public func rowLevelSecurityStatements(for table: String) throws -> [String] {
        let compiled = try compiledTable(table)
        let governed = compiled.table
        var statements = [
            "ALTER TABLE \(governed.quotedName) ENABLE ROW LEVEL SECURITY;",
            Self.dropUndeclaredPolicies(on: governed, keeping: governed.effectivePolicies.map(\.name)),
        ]
        for rule in governed.effectivePolicies {
            statements.append("DROP POLICY IF EXISTS \(SQLText.quoted(rule.name)) ON \(governed.quotedName);")
            statements.append(PolicySet.createPolicy(rule, on: governed))
        }
        return statements
    }

    /// The DDL for every governed table, in table order, as one script: its RLS, then the grants
    /// its `rest:` and `managed_by:` declare.
    public func rowLevelSecurityScript() -> String {
        var script = "-- Row-level security generated from the policy files. Do not edit by hand.\n"
        for table in tables {
            // The file's name alone, so the script is the same whichever directory it was loaded from.
            script += "\n-- \(table.qualifiedName)" + (table.file.map { " (\($0.split(separator: "/").last ?? ""))" } ?? "") + "\n"
            // Every table in `tables` is governed, so this cannot throw.
            for statement in (try? rowLevelSecurityStatements(for: table.name)) ?? [] {
                script += statement + "\n"
            }
            for statement in (try? grantStatements(for: table.name)) ?? [] {
                script += statement + "\n"
            }
        }
        return script
    }

    /// A `DO` block dropping the table's live policies not named in `names` (names are SQL
    /// literals inside it; the dollar-quote tag is one no name contains).
    static func dropUndeclaredPolicies(on table: TablePolicy, keeping names: [String]) -> String {
        let literals = names.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }.joined(separator: ", ")
        let relation = "'" + table.quotedName.replacingOccurrences(of: "'", with: "''") + "'"
        let body =
            "DECLARE stale text; BEGIN FOR stale IN SELECT policyname FROM pg_policies"
            + " WHERE schemaname = '\(table.schema.replacingOccurrences(of: "'", with: "''"))'"
            + " AND tablename = '\(table.name.replacingOccurrences(of: "'", with: "''"))'"
            + " AND policyname <> ALL (ARRAY[\(literals)]::text[])"
            + " LOOP EXECUTE format('DROP POLICY %I ON %s', stale, \(relation)); END LOOP; END"
        var tag = "$rls$"
        while body.contains(tag) { tag = "$rls" + String(tag.count) + "$" }
        return "DO \(tag) \(body) \(tag);"
    }

    static func createPolicy(_ rule: PolicyRule, on table: TablePolicy) -> String {
        let roles = rule.roles.map { $0 == publicRole ? "public" : SQLText.quoted($0) }.joined(separator: ", ")
        var statement = "CREATE POLICY \(SQLText.quoted(rule.name)) ON \(table.quotedName)"
        statement += " AS \(rule.kind.rawValue.uppercased()) FOR \(rule.command.sqlKeyword) TO \(roles)"
        if let using = rule.using {
            statement += " USING (\(using.quotedSQL))"
        }
        if let withCheck = rule.withCheck {
            statement += " WITH CHECK (\(withCheck.quotedSQL))"
        }
        return statement + ";"
    }
}
