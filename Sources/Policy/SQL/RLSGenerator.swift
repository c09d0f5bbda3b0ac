extension PolicySet {
    /// The row-level security DDL for `table`, one statement per element (each ending in `;`):
    /// enable RLS, then for the implied `tenant_isolation` policy and each file entry a
    /// `DROP POLICY IF EXISTS` followed by its `CREATE POLICY`. Identifiers are quoted; `TO public`
    /// stays a keyword.
    ///
    /// Re-running it is safe. A live policy whose name is no longer in the file is not dropped —
    /// ``drift(live:tables:)`` reports it.
    public func rowLevelSecurityStatements(for table: String) throws -> [String] {
        let compiled = try compiledTable(table)
        let governed = compiled.table
        var statements = ["ALTER TABLE \(governed.quotedName) ENABLE ROW LEVEL SECURITY;"]
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
            script += "\n-- \(table.qualifiedName)" + (table.file.map { " (\($0))" } ?? "") + "\n"
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
