/// The rows and command status of one statement, decoded from libpq's text format.
public struct QueryResult: Sendable {
    /// Column names in select-list order.
    public let columns: [String]
    public let rows: [PostgresRow]
    /// Rows inserted/updated/deleted/selected, as the command tag reports it.
    public let affectedRows: Int
    /// The command tag, e.g. `INSERT 0 1` or `SELECT 3`.
    public let commandTag: String

    /// The first row, if any.
    public var first: PostgresRow? { rows.first }
}

/// One result row. Cells are addressed by column index or name.
public struct PostgresRow: Sendable {
    let index: ColumnIndex
    let values: [String?]

    /// Column names in select-list order.
    public var columns: [String] { index.names }

    /// Whether the named column is SQL NULL (or absent).
    public func isNull(_ column: String) -> Bool {
        guard let i = index.positions[column] else { return true }
        return values[i] == nil
    }

    /// Raw text of a cell, `nil` for NULL.
    public func text(at position: Int) -> String? { values[position] }

    /// Decodes a non-NULL column; NULL or a missing column is an error naming the column.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let value = try decodeIfPresent(column, as: T.self) else {
            throw PostgresError(.decoding, "column \"\(column)\" is NULL")
        }
        return value
    }

    /// Decodes a nullable column.
    public func decodeIfPresent<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T? {
        guard let i = index.positions[column] else {
            throw PostgresError(.decoding, "result has no column \"\(column)\"")
        }
        guard let text = values[i] else { return nil }
        do {
            return try T(postgresText: text)
        } catch var error as PostgresError {
            error.message = "column \"\(column)\": \(error.message)"
            throw error
        }
    }

    /// Decodes the cell at `position`.
    public func decode<T: PostgresDecodable>(at position: Int, as type: T.Type = T.self) throws -> T {
        guard position < values.count, let text = values[position] else {
            throw PostgresError(.decoding, "column \(position) is NULL or missing")
        }
        return try T(postgresText: text)
    }
}

/// Column names and their positions, shared by all rows of a result.
final class ColumnIndex: Sendable {
    let names: [String]
    let positions: [String: Int]

    init(names: [String]) {
        self.names = names
        var positions = [String: Int](minimumCapacity: names.count)
        for (i, name) in names.enumerated() where positions[name] == nil { positions[name] = i }
        self.positions = positions
    }
}
