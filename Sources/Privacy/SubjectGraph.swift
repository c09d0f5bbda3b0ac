import Foundation
import Policy
import Postgres

/// Every governed table that holds a data subject's rows — directly (`subject: { column: … }`) or
/// through a chain of parents (`subject: { via: …, references: … }`) — in the order erasure must
/// visit them: children before parents.
///
/// The one place export, erasure, verification and retention learn which rows are a subject's.
/// Identifiers come only from the policy catalogue and are quoted; values are always bound.
public struct SubjectGraph: Sendable {
    /// One table of the graph.
    public struct Node: Sendable {
        public let table: TablePolicy
        /// Parent tables this one's subject is reached through (nearest first); empty for a direct subject.
        public let chain: [String]
        /// `public.x` names of the governed tables whose rows reference this one (foreign keys and via chains).
        public let children: [String]

        public var name: String { table.name }
        public var qualifiedName: String { table.qualifiedName }
        public var rules: PrivacyRules? { table.privacy }
        public var exported: Bool { table.privacy?.export ?? false }
    }

    /// Children before parents; ties in name order.
    public let nodes: [Node]
    let policies: PolicySet

    /// Builds the graph from the policy files; `foreignKeys` (child, parent) — table names without
    /// schema — add the schema's other references to the ordering (see ``loadForeignKeys(_:)``).
    public init(policies: PolicySet, foreignKeys: [(child: String, parent: String)] = []) throws {
        self.policies = policies
        let subjectTables = policies.tables.filter { $0.subject != nil }
        let names = Set(subjectTables.map(\.name))
        var parentsOf: [String: Set<String>] = [:]
        var chains: [String: [String]] = [:]
        for table in subjectTables {
            var chain: [String] = []
            var current = table
            var seen: Set<String> = [table.name]
            while case .via(_, let parentName, _)? = current.subject {
                let bare = Self.bareName(parentName)
                guard let parent = policies.table(named: bare), parent.subject != nil else {
                    throw PrivacyError(.graph, "\(current.qualifiedName): subject.via references \(parentName), which has no subject")
                }
                guard seen.insert(bare).inserted else {
                    throw PrivacyError(.graph, "\(table.qualifiedName): subject.via chain loops through \(bare)")
                }
                chain.append(bare)
                current = parent
            }
            chains[table.name] = chain
            if let first = chain.first { parentsOf[table.name, default: []].insert(first) }
        }
        for (child, parent) in foreignKeys where child != parent && names.contains(child) && names.contains(parent) {
            parentsOf[child, default: []].insert(parent)
        }
        var childrenOf: [String: [String]] = [:]
        for (child, parents) in parentsOf {
            for parent in parents { childrenOf[parent, default: []].append(child) }
        }
        // Kahn's algorithm from the leaves: a table is emitted once every table referencing it is.
        var remaining = Set(names)
        var order: [String] = []
        while !remaining.isEmpty {
            let ready = remaining.filter { name in (childrenOf[name] ?? []).allSatisfy { !remaining.contains($0) } }.sorted()
            guard !ready.isEmpty else {
                throw PrivacyError(.graph, "the references between \(remaining.sorted().joined(separator: ", ")) form a cycle")
            }
            order.append(contentsOf: ready)
            remaining.subtract(ready)
        }
        nodes = order.map { name in
            Node(table: policies.table(named: name)!, chain: chains[name] ?? [], children: (childrenOf[name] ?? []).sorted())
        }
    }

    /// Builds the graph with the live database's foreign keys between governed tables.
    /// Refuses (``PrivacyError/Code/graph``, naming each file:line) a policy set whose `anonymize:`
    /// would give rows equal values in a column of a unique index
    /// (``PolicySet/maskingFindings(uniqueIndexes:)``): such an erasure could only fail midway, so
    /// the gateway and privacyctl do not start with it.
    public static func load(policies: PolicySet, pool: ConnectionPool) async throws -> SubjectGraph {
        let (keys, unique) = try await pool.withConnection { connection in
            try await connection.run { (try loadForeignKeys($0), try loadUniqueIndexes($0)) }
        }
        let findings = policies.maskingFindings(uniqueIndexes: unique)
        guard findings.isEmpty else {
            throw PrivacyError(.graph, findings.map(\.description).joined(separator: "\n"))
        }
        return try SubjectGraph(policies: policies, foreignKeys: keys)
    }

    /// The live database's unique indexes (key columns only; expression keys are left out) of
    /// user schemas.
    public static func loadUniqueIndexes(_ connection: borrowing Connection) throws -> [LiveUniqueIndex] {
        try connection.query(
            """
            SELECT n.nspname || '.' || c.relname AS tbl, x.relname AS name,
                   array_to_string(array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                                         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord), ',') AS columns,
                   coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) AS nulls_not_distinct
            FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_class x ON x.oid = i.indexrelid
            WHERE i.indisunique AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
            """
        ).rows.map {
            LiveUniqueIndex(
                table: try $0.decode("tbl"), name: try $0.decode("name"),
                columns: (try $0.decode("columns", as: String.self)).split(separator: ",").map(String.init),
                nullsNotDistinct: try $0.decode("nulls_not_distinct"))
        }
    }

    /// Foreign keys between tables of the `public` schema, as (child, parent) names.
    public static func loadForeignKeys(_ connection: borrowing Connection) throws -> [(child: String, parent: String)] {
        try connection.query(
            """
            SELECT c.relname AS child, p.relname AS parent
            FROM pg_constraint k
            JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
            JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
            WHERE k.contype = 'f' AND cn.nspname = 'public' AND pn.nspname = 'public'
            """
        ).rows.map { (try $0.decode("child", as: String.self), try $0.decode("parent", as: String.self)) }
    }

    public func node(named name: String) -> Node? { nodes.first { $0.name == name } }

    /// Parents before children: the order rows are created in, and the order of export files.
    public var parentsFirst: [Node] { nodes.reversed() }

    static func bareName(_ name: String) -> String {
        name.split(separator: ".").last.map(String.init) ?? name
    }

    // MARK: - SQL

    /// `alias.tenant = <tenant> AND <alias's subject is subject>`; `tenant` and `subject` are SQL
    /// expressions such as `$1` or `current_setting('privacy.subject')::uuid`.
    public func predicate(_ table: TablePolicy, alias: String = "t0", tenant: String, subject: String) throws -> String {
        try predicate(table, depth: 0, alias: alias, tenant: tenant, subject: subject)
    }

    private func predicate(_ table: TablePolicy, depth: Int, alias: String, tenant: String, subject: String) throws -> String {
        let tenantColumn = "\(alias).\(try table.quotedColumn(table.tenantColumn))"
        switch table.subject {
        case .column(let column)?:
            return "\(tenantColumn) = \(tenant) AND \(alias).\(try table.quotedColumn(column)) = \(subject)"
        case .via(let column, let parentName, let referenced)?:
            guard let parent = policies.table(named: Self.bareName(parentName)) else {
                throw PrivacyError(.graph, "unknown table \(parentName)")
            }
            let inner = "t\(depth + 1)"
            let parentPredicate = try predicate(parent, depth: depth + 1, alias: inner, tenant: tenant, subject: subject)
            return "\(tenantColumn) = \(tenant) AND \(alias).\(try table.quotedColumn(column)) IN "
                + "(SELECT \(inner).\(try parent.quotedColumn(referenced)) FROM \(parent.quotedName) \(inner) WHERE \(parentPredicate))"
        case nil:
            throw PrivacyError(.graph, "\(table.qualifiedName) has no subject")
        }
    }

    /// An SQL expression for the subject (user id) of the row `alias` of `table`; through parents
    /// for a via chain. Used by retention, which sweeps every subject's rows at once.
    public func subjectValue(_ table: TablePolicy, alias: String = "t0") throws -> String {
        try subjectValue(table, depth: 0, alias: alias)
    }

    private func subjectValue(_ table: TablePolicy, depth: Int, alias: String) throws -> String {
        switch table.subject {
        case .column(let column)?:
            return "\(alias).\(try table.quotedColumn(column))"
        case .via(let column, let parentName, let referenced)?:
            guard let parent = policies.table(named: Self.bareName(parentName)) else {
                throw PrivacyError(.graph, "unknown table \(parentName)")
            }
            let inner = "t\(depth + 1)"
            return "(SELECT \(try subjectValue(parent, depth: depth + 1, alias: inner)) FROM \(parent.quotedName) \(inner) "
                + "WHERE \(inner).\(try parent.quotedColumn(parent.tenantColumn)) = \(alias).\(try table.quotedColumn(table.tenantColumn)) "
                + "AND \(inner).\(try parent.quotedColumn(referenced)) = \(alias).\(try table.quotedColumn(column)))"
        case nil:
            throw PrivacyError(.graph, "\(table.qualifiedName) has no subject")
        }
    }
}
