/// Name resolution for expressions, shared by the loader's checks, the evaluator, the SQL
/// compiler and the drift normaliser so all four agree on what a name means.
///
/// Scopes follow SQL: the policy's own table is level 0 (named by its table name), each enclosing
/// `EXISTS` adds a level named by its alias (or its table name when it has none). An unqualified
/// column belongs to the innermost level that has it; a qualified one to the innermost level of
/// that name.
struct Scope: Sendable {
    let table: TablePolicy
    let name: String
}

struct ResolvedColumn {
    let level: Int
    let table: TablePolicy
    let column: TableColumn
}

/// Looks governed tables up by name while binding.
protocol TableCatalogue {
    func governedTable(named name: String) -> TablePolicy?
    var governedTableNames: [String] { get }
}

enum Binder {
    static func resolve(_ reference: PolicyExpression.ColumnReference, in scopes: [Scope]) throws -> ResolvedColumn {
        if let qualifier = reference.qualifier {
            guard let level = scopes.lastIndex(where: { $0.name == qualifier }) else {
                throw PolicyError(
                    .unknownTable, "'\(qualifier)' is not a table or alias in scope here",
                    help: PolicyError.expectedOneOf(scopes.reversed().map(\.name)),
                    expressionOffset: reference.position)
            }
            let table = scopes[level].table
            guard let column = table.column(named: reference.name) else {
                throw unknownColumn(reference, in: table)
            }
            return ResolvedColumn(level: level, table: table, column: column)
        }
        for level in scopes.indices.reversed() {
            if let column = scopes[level].table.column(named: reference.name) {
                return ResolvedColumn(level: level, table: scopes[level].table, column: column)
            }
        }
        throw unknownColumn(reference, in: scopes[scopes.count - 1].table)
    }

    private static func unknownColumn(_ reference: PolicyExpression.ColumnReference, in table: TablePolicy) -> PolicyError {
        PolicyError(
            .unknownColumn, "column '\(reference.name)' does not exist in \(table.qualifiedName)",
            help: "available columns: " + table.columns.map(\.name).joined(separator: ", "),
            expressionOffset: reference.position)
    }

    static func subqueryTable(
        _ subquery: PolicyExpression.Subquery, of outer: TablePolicy, catalogue: some TableCatalogue
    ) throws -> TablePolicy {
        guard let table = catalogue.governedTable(named: subquery.table),
            subquery.schema == nil || subquery.schema == table.schema
        else {
            let written = (subquery.schema.map { $0 + "." } ?? "") + subquery.table
            throw PolicyError(
                .unknownTable, "EXISTS over '\(written)', which is not a governed table",
                help: "expected one of: " + catalogue.governedTableNames.joined(separator: ", "),
                expressionOffset: subquery.position)
        }
        return table
    }

    // MARK: - Checking

    /// Checks that every name resolves and that the expression is boolean, as `CREATE POLICY` would.
    static func check(
        _ expression: PolicyExpression, table: TablePolicy, catalogue: some TableCatalogue
    ) throws {
        var scopes = [Scope(table: table, name: table.name)]
        try requireBoolean(expression, scopes: &scopes, catalogue: catalogue)
    }

    private static func requireBoolean(
        _ expression: PolicyExpression, scopes: inout [Scope], catalogue: some TableCatalogue
    ) throws {
        let type = try infer(expression, scopes: &scopes, catalogue: catalogue)
        switch type {
        case .boolean, .null, .unknownLiteral: return
        default:
            throw PolicyError(
                .typeMismatch, "'\(expression)' is \(type.name), not boolean",
                help: "expected a condition such as a comparison, IS NULL, IN (…) or EXISTS (…)",
                expressionOffset: firstPosition(expression))
        }
    }

    /// The static type of an expression, enough to refuse what Postgres would refuse at CREATE POLICY.
    enum InferredType: Equatable {
        case boolean, text, uuid, integer, numeric, null
        /// An uncast string literal: Postgres gives it the type of the other operand.
        case unknownLiteral
        case array(SQLType?)
        case other(SQLType)

        init(_ type: SQLType) {
            if let element = type.elementType {
                self = .array(element)
                return
            }
            switch type.kind {
            case .boolean: self = .boolean
            case .text: self = .text
            case .uuid: self = .uuid
            case .integer: self = .integer
            case .numeric: self = .numeric
            case .other: self = .other(type)
            }
        }

        var name: String {
            switch self {
            case .boolean: return "boolean"
            case .text: return "text"
            case .uuid: return "uuid"
            case .integer: return "an integer"
            case .numeric: return "numeric"
            case .null: return "NULL"
            case .unknownLiteral: return "a string literal"
            case .array(let element): return "an array" + (element.map { " of \($0.spelling)" } ?? "")
            case .other(let type): return type.canonical
            }
        }

        var isNumber: Bool { self == .integer || self == .numeric }
    }

    static func infer(
        _ expression: PolicyExpression, scopes: inout [Scope], catalogue: some TableCatalogue
    ) throws -> InferredType {
        switch expression {
        case .column(let reference):
            return InferredType(try resolve(reference, in: scopes).column.type)
        case .literal(let literal):
            switch literal {
            case .null: return .null
            case .bool: return .boolean
            case .integer: return .integer
            case .decimal: return .numeric
            case .string: return .unknownLiteral
            }
        case .cast(let inner, let type):
            let from = try infer(inner, scopes: &scopes, catalogue: catalogue)
            if case .literal(.string(let text)) = inner {
                try checkLiteral(text, fits: InferredType(type), at: firstPosition(inner))
            } else if case .boolean = from, type.kind != .boolean, type.kind != .text {
                throw PolicyError(
                    .typeMismatch, "cannot cast boolean to \(type.spelling)", help: "expected a cast to text or boolean",
                    expressionOffset: firstPosition(inner))
            }
            return InferredType(type)
        case .auth(let function):
            return function == .role ? .text : .uuid
        case .jwtClaim:
            return .text
        case .comparison(let lhs, _, let rhs):
            let left = try infer(lhs, scopes: &scopes, catalogue: catalogue)
            let right = try infer(rhs, scopes: &scopes, catalogue: catalogue)
            try checkComparable(left, right, lhs: lhs, rhs: rhs)
            return .boolean
        case .and(let terms), .or(let terms):
            for term in terms { try requireBoolean(term, scopes: &scopes, catalogue: catalogue) }
            return .boolean
        case .not(let inner):
            try requireBoolean(inner, scopes: &scopes, catalogue: catalogue)
            return .boolean
        case .isNull(let inner, _):
            _ = try infer(inner, scopes: &scopes, catalogue: catalogue)
            return .boolean
        case .isBoolean(let inner, _, _):
            try requireBoolean(inner, scopes: &scopes, catalogue: catalogue)
            return .boolean
        case .inList(let lhs, let items, _):
            let left = try infer(lhs, scopes: &scopes, catalogue: catalogue)
            for item in items {
                try checkComparable(left, try infer(item, scopes: &scopes, catalogue: catalogue), lhs: lhs, rhs: item)
            }
            return .boolean
        case .quantified(let lhs, _, _, let array):
            let left = try infer(lhs, scopes: &scopes, catalogue: catalogue)
            let right = try infer(array, scopes: &scopes, catalogue: catalogue)
            switch right {
            case .array(let element):
                if let element {
                    try checkComparable(left, InferredType(element), lhs: lhs, rhs: array)
                }
            case .null, .unknownLiteral:
                break
            default:
                throw PolicyError(
                    .typeMismatch, "ANY/ALL needs an array, but '\(array)' is \(right.name)",
                    help: "expected an array column or ARRAY[…]", expressionOffset: firstPosition(array))
            }
            return .boolean
        case .array(let items):
            var element: InferredType?
            for item in items {
                let type = try infer(item, scopes: &scopes, catalogue: catalogue)
                if let known = element {
                    try checkComparable(known, type, lhs: items[0], rhs: item)
                } else if type != .null && type != .unknownLiteral {
                    element = type
                }
            }
            return .array(nil)
        case .exists(let subquery):
            let inner = try subqueryTable(subquery, of: scopes[0].table, catalogue: catalogue)
            scopes.append(Scope(table: inner, name: subquery.scopeName))
            defer { scopes.removeLast() }
            if let condition = subquery.condition {
                try requireBoolean(condition, scopes: &scopes, catalogue: catalogue)
            }
            return .boolean
        }
    }

    private static func checkComparable(
        _ left: InferredType, _ right: InferredType, lhs: PolicyExpression, rhs: PolicyExpression
    ) throws {
        switch (left, right) {
        case (.null, _), (_, .null), (.unknownLiteral, .unknownLiteral):
            return
        case (.unknownLiteral, let typed):
            if case .literal(.string(let text)) = lhs { try checkLiteral(text, fits: typed, at: firstPosition(lhs) ?? firstPosition(rhs)) }
            return
        case (let typed, .unknownLiteral):
            if case .literal(.string(let text)) = rhs { try checkLiteral(text, fits: typed, at: firstPosition(rhs) ?? firstPosition(lhs)) }
            return
        case _ where left == right, _ where left.isNumber && right.isNumber:
            return
        case (.array, .array), (.other, .other), (.other, _), (_, .other):
            // Types this checker does not model; Postgres has the last word.
            return
        default:
            throw PolicyError(
                .typeMismatch, "cannot compare \(left.name) with \(right.name): '\(lhs)' and '\(rhs)'",
                help: "expected operands of the same type", expressionOffset: firstPosition(lhs))
        }
    }

    /// An untyped literal compared with a typed value must read as that type, as Postgres requires.
    static func checkLiteral(_ text: String, fits type: InferredType, at position: Int?) throws {
        let valid: Bool
        switch type {
        case .uuid: valid = PolicyValue.parse(text, as: .uuid) != nil
        case .integer: valid = PolicyValue.parse(text, as: .integer) != nil
        case .numeric: valid = PolicyValue.parse(text, as: .number) != nil
        case .boolean: valid = PolicyValue.parseBool(text) != nil
        default: valid = true
        }
        guard valid else {
            throw PolicyError(
                .typeMismatch, "'\(text)' is not a valid \(type.name) value", help: "expected a literal of the column's type",
                expressionOffset: position)
        }
    }

    static func firstPosition(_ expression: PolicyExpression) -> Int? {
        switch expression {
        case .column(let reference): return reference.position
        case .exists(let subquery): return subquery.position
        case .cast(let inner, _), .not(let inner), .isNull(let inner, _), .isBoolean(let inner, _, _):
            return firstPosition(inner)
        case .comparison(let lhs, _, _), .inList(let lhs, _, _), .quantified(let lhs, _, _, _):
            return firstPosition(lhs)
        case .and(let terms), .or(let terms), .array(let terms):
            return terms.lazy.compactMap(firstPosition).first
        case .literal, .auth, .jwtClaim:
            return nil
        }
    }

    /// Governed tables an expression reaches through EXISTS, at any depth.
    static func referencedTables(_ expression: PolicyExpression) -> [String] {
        var names: [String] = []
        visit(expression) { node in
            if case .exists(let subquery) = node { names.append(subquery.table) }
        }
        return names
    }

    /// Calls `body` on every node, parents first.
    static func visit(_ expression: PolicyExpression, _ body: (PolicyExpression) -> Void) {
        body(expression)
        switch expression {
        case .column, .literal, .auth, .jwtClaim: break
        case .cast(let inner, _), .not(let inner), .isNull(let inner, _), .isBoolean(let inner, _, _):
            visit(inner, body)
        case .comparison(let lhs, _, let rhs), .quantified(let lhs, _, _, let rhs):
            visit(lhs, body)
            visit(rhs, body)
        case .inList(let lhs, let items, _):
            visit(lhs, body)
            for item in items { visit(item, body) }
        case .and(let terms), .or(let terms), .array(let terms):
            for term in terms { visit(term, body) }
        case .exists(let subquery):
            if let condition = subquery.condition { visit(condition, body) }
        }
    }
}
