/// Rows of other governed tables, for `EXISTS (SELECT 1 FROM other alias WHERE …)`.
///
/// The evaluator never reads a database: whoever asks for a decision supplies the rows an EXISTS
/// may need (the gateway from the statement's context, tests from memory).
public protocol RowLookup {
    /// Whether some row of `table` makes `predicate` true.
    ///
    /// `key` is an equality the subquery requires of its rows (`id = <the outer row's project_id>`),
    /// when it has one, so an implementation can look the row up instead of scanning. It is only
    /// a hint: `predicate` checks it again, together with the rest of the subquery's condition and
    /// the table's own SELECT policies.
    func containsRow(
        in table: String, key: (column: String, value: PolicyValue)?, where predicate: (PolicyRow) -> Bool
    ) -> Bool
}

/// No rows anywhere: every EXISTS is false.
public struct NoRows: RowLookup, Sendable {
    public init() {}

    public func containsRow(
        in table: String, key: (column: String, value: PolicyValue)?, where predicate: (PolicyRow) -> Bool
    ) -> Bool {
        false
    }
}

/// Tables held in memory, indexed on `id`; for tests, benchmarks and tools.
public struct InMemoryRows: RowLookup, Sendable {
    private struct Table: Sendable {
        let rows: [PolicyRow]
        let byID: [PolicyValue: [Int]]
    }
    private let tables: [String: Table]

    /// `tables` maps a table name (without schema) to its rows.
    public init(_ tables: [String: [PolicyRow]]) {
        self.tables = tables.mapValues { rows in
            var index: [PolicyValue: [Int]] = [:]
            for (position, row) in rows.enumerated() {
                if let id = row["id"], !id.isNull {
                    index[InMemoryRows.indexKey(id), default: []].append(position)
                }
            }
            return Table(rows: rows, byID: index)
        }
    }

    /// uuid and its text spelling must find the same row.
    private static func indexKey(_ value: PolicyValue) -> PolicyValue {
        if case .text(let text) = value, let uuid = PolicyValue.parse(text, as: .uuid) {
            return uuid
        }
        return value
    }

    public func containsRow(
        in table: String, key: (column: String, value: PolicyValue)?, where predicate: (PolicyRow) -> Bool
    ) -> Bool {
        guard let table = tables[table] else { return false }
        if let key, key.column == "id" {
            for position in table.byID[InMemoryRows.indexKey(key.value)] ?? [] where predicate(table.rows[position]) {
                return true
            }
            return false
        }
        return table.rows.contains(where: predicate)
    }
}
