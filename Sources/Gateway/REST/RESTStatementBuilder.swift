import Foundation
import Policy
import Postgres

/// Turns a parsed PostgREST request into SQL for one governed table.
///
/// The one place REST SQL is written. Identifiers are checked against the table's catalogue in
/// the policy file and quoted; every value is a bind parameter cast to the column's type; the
/// policy predicate comes from the policy engine with its own binds.
struct RESTStatementBuilder {
    let table: TablePolicy
    private(set) var binds: [PostgresBind] = []

    init(table: TablePolicy) {
        self.table = table
    }

    /// Adds a bind parameter and returns its placeholder, cast when a type is given.
    mutating func bind(_ value: PostgresBind, as type: String? = nil) -> String {
        binds.append(value)
        return "$\(binds.count)" + (type.map { "::\($0)" } ?? "")
    }

    /// Appends the policy engine's predicate, renumbered after the binds so far.
    mutating func policy(_ policies: PolicySet, _ command: PolicyCommand, _ clause: PolicyClause, auth: AuthContext) throws -> String {
        let predicate = try policies.predicate(for: command, clause: clause, on: table.name, auth: auth, firstBind: binds.count + 1)
        binds.append(contentsOf: predicate.binds.map(\.postgresBind))
        return "(\(predicate.sql))"
    }

    // MARK: Identifiers

    /// The quoted column and its type; an unknown column is PostgREST's 42703, decided before any SQL is sent.
    func column(_ name: String) throws -> (sql: String, type: SQLType) {
        guard let column = table.restColumn(named: name) else {
            throw GatewayError(
                .badRequest, code: "42703", "column \(table.name).\(name) does not exist",
                hint: "columns of \(table.name): \(table.restColumns.map(\.name).joined(separator: ", "))")
        }
        return (SQLText.quoted(name), column.type)
    }

    /// The type a value is cast to: the column's type without length modifiers, so a bound value
    /// is compared, never truncated (`varchar(5)` compares as `character varying`).
    static func castName(_ type: SQLType) -> String {
        var name = type.canonical
        while let open = name.firstIndex(of: "("), let close = name[open...].firstIndex(of: ")") {
            name.removeSubrange(open...close)
        }
        return name
    }

    /// A column with an optional JSON path, and the type its values compare as.
    mutating func field(_ field: RESTQuery.Field) throws -> (sql: String, castType: String) {
        let (sql, type) = try column(field.column)
        guard !field.jsonPath.isEmpty else { return (sql, Self.castName(type)) }
        guard type.canonical == "jsonb" || type.canonical == "json" else {
            throw GatewayError(.badRequest, code: "42883", "operator does not exist: \(type.canonical) -> unknown",
                               hint: "JSON paths apply to json and jsonb columns only")
        }
        var expression = sql
        for step in field.jsonPath {
            let operand: String
            switch step.operand {
            case .key(let key): operand = bind(.text(key), as: "text")
            case .index(let index): operand = String(index)
            }
            expression = "(\(expression) \(step.arrow.rawValue) \(operand))"
        }
        let lastIsText = field.jsonPath.last?.arrow.rawValue == "->>"
        return (expression, lastIsText ? "text" : type.canonical)
    }

    // MARK: Clauses

    /// `select=` → the select list. Casts must name a known type.
    mutating func selectList(_ items: [RESTQuery.SelectItem]) throws -> String {
        guard !items.isEmpty else { return "" }
        var parts: [String] = []
        for item in items {
            switch item {
            case .all:
                parts.append(table.restColumns.map { SQLText.quoted($0.name) }.joined(separator: ", "))
            case .column(let column):
                var expression = try field(column.field).sql
                if let cast = column.cast {
                    guard let type = SQLType(cast) else {
                        throw GatewayError(.badRequest, code: "42704", "type \"\(cast)\" does not exist")
                    }
                    expression = "(\(expression))::\(type.canonical)"
                }
                parts.append("\(expression) AS \(SQLText.quoted(column.outputName))")
            }
        }
        return parts.joined(separator: ", ")
    }

    /// The filter tree → a boolean SQL expression.
    mutating func filter(_ tree: RESTQuery.FilterTree) throws -> String {
        switch tree {
        case .condition(let condition): return try self.condition(condition)
        case .and(let terms): return terms.isEmpty ? "true" : "(" + (try terms.map { try filter($0) }).joined(separator: " AND ") + ")"
        case .or(let terms): return terms.isEmpty ? "false" : "(" + (try terms.map { try filter($0) }).joined(separator: " OR ") + ")"
        case .not(let inner): return "NOT " + (try filter(inner))
        }
    }

    private mutating func condition(_ condition: RESTQuery.Condition) throws -> String {
        let (sql, type) = try field(condition.field)
        switch condition.operation {
        case .compare(let op, let value):
            return "\(sql) \(op.sqlOperator) \(bind(.text(value), as: type))"
        case .pattern(let op, let value):
            return "(\(sql))::text \(op.sqlOperator) \(bind(.text(value), as: "text"))"
        case .is(let value):
            switch value {
            case .null: return "\(sql) IS NULL"
            case .notNull: return "\(sql) IS NOT NULL"
            case .true: return "\(sql) IS TRUE"
            case .false: return "\(sql) IS FALSE"
            case .unknown: return "\(sql) IS UNKNOWN"
            }
        case .in(let values):
            guard !values.isEmpty else { return "false" }
            return "\(sql) = ANY(\(bind(PostgresTextArray(values).postgresBind, as: type + "[]")))"
        case .array(let op, let value):
            return "\(sql) \(op.sqlOperator) \(bind(.text(value), as: type))"
        }
    }

    /// `order=` → `ORDER BY …`, or empty.
    mutating func orderBy(_ terms: [RESTQuery.OrderTerm]) throws -> String {
        guard !terms.isEmpty else { return "" }
        let parts = try terms.map { term -> String in
            var part = try field(term.field).sql
            if let direction = term.direction { part += direction == .desc ? " DESC" : " ASC" }
            if let nulls = term.nulls { part += nulls == .first ? " NULLS FIRST" : " NULLS LAST" }
            return part
        }
        return " ORDER BY " + parts.joined(separator: ", ")
    }
}

extension PolicyValue {
    /// A policy engine value as a bind parameter (text format; the SQL casts it).
    var postgresBind: PostgresBind {
        switch self {
        case .null: return .null
        case .bool(let value): return .text(value ? "true" : "false")
        case .int(let value): return .text(String(value))
        case .double(let value): return .text(String(value))
        case .text(let value): return .text(value)
        case .uuid(let value): return .text(value.lowercasedString)
        case .array(let values): return PostgresTextArray(values.map { $0.textValue }).postgresBind
        }
    }
}
