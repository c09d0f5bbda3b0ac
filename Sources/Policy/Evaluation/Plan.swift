/// An expression compiled for evaluation: names resolved to scope levels, literals converted to
/// the type they are compared with, constant casts folded. Built once at load time.
indirect enum Plan: Sendable {
    /// A column of the row at `level` (0 = the row being decided, 1… = enclosing EXISTS rows).
    case column(level: Int, name: String)
    case constant(PolicyValue)
    case authUID
    case authRole
    case authTenantID
    case claim(String)
    case cast(Plan, PolicyValue.Kind?)
    case compare(Plan, PolicyExpression.ComparisonOperator, Plan)
    /// `column op operand`: the shape nearly every policy is made of (`auth.uid() = user_id`,
    /// `tenant_id = auth.tenant_id()`, `is_public = true`), evaluated without recursing.
    case compareColumn(level: Int, name: String, PolicyExpression.ComparisonOperator, Operand)
    case and([Plan])
    case or([Plan])
    case not(Plan)
    case isNull(Plan, negated: Bool)
    case isBoolean(Plan, Bool, negated: Bool)
    case inList(Plan, [Plan], negated: Bool)
    case quantified(Plan, PolicyExpression.ComparisonOperator, all: Bool, Plan)
    case array([Plan])
    case exists(ExistsPlan)
}

/// A leaf value that needs no row.
enum Operand: Sendable {
    case constant(PolicyValue)
    case authUID
    case authRole
    case authTenantID
    case claim(String)

    var plan: Plan {
        switch self {
        case .constant(let value): return .constant(value)
        case .authUID: return .authUID
        case .authRole: return .authRole
        case .authTenantID: return .authTenantID
        case .claim(let name): return .claim(name)
        }
    }

    init?(_ plan: Plan) {
        switch plan {
        case .constant(let value): self = .constant(value)
        case .authUID: self = .authUID
        case .authRole: self = .authRole
        case .authTenantID: self = .authTenantID
        case .claim(let name): self = .claim(name)
        default: return nil
        }
    }
}

struct ExistsPlan: Sendable {
    /// Index of the subquery's table in the policy set.
    let tableIndex: Int
    let tableName: String
    /// The scope level the subquery's rows take.
    let level: Int
    /// `inner.column = <expression over outer rows>` taken from the top of the condition, so a
    /// lookup can find the row by key (and a NULL key ends the search at once).
    let key: (column: String, value: Plan)?
    let condition: Plan?
}

/// Three-valued logic: SQL's unknown is what a comparison with NULL gives.
enum Truth: UInt8, Sendable {
    case no, yes, unknown

    var negated: Truth {
        switch self {
        case .no: return .yes
        case .yes: return .no
        case .unknown: return .unknown
        }
    }

    var value: PolicyValue {
        switch self {
        case .no: return .bool(false)
        case .yes: return .bool(true)
        case .unknown: return .null
        }
    }

    var text: String {
        switch self {
        case .no: return "false"
        case .yes: return "true"
        case .unknown: return "null"
        }
    }
}

extension SQLType {
    var valueKind: PolicyValue.Kind? {
        switch kind {
        case .text: return .text
        case .uuid: return .uuid
        case .integer: return .integer
        case .numeric: return .number
        case .boolean: return .boolean
        case .other: return nil
        }
    }
}

struct PlanBuilder {
    let catalogue: Catalogue

    func plan(_ expression: PolicyExpression, table: TablePolicy) -> Plan {
        var scopes = [Scope(table: table, name: table.name)]
        return plan(expression, scopes: &scopes)
    }

    private func plan(_ expression: PolicyExpression, scopes: inout [Scope]) -> Plan {
        switch expression {
        case .column(let reference):
            // Expressions were checked at load, so resolution cannot fail here; a NULL is the safe fallback.
            guard let resolved = try? Binder.resolve(reference, in: scopes) else { return .constant(.null) }
            return .column(level: resolved.level, name: resolved.column.name)
        case .literal(let literal):
            return .constant(PlanBuilder.value(of: literal))
        case .cast(let inner, let type):
            if case .literal(let literal) = inner {
                let value = PlanBuilder.value(of: literal)
                if case .text(let text) = value, let kind = type.valueKind {
                    return .constant(PolicyValue.parse(text, as: kind) ?? .null)
                }
                return .constant(Evaluator.cast(value, to: type.valueKind))
            }
            return .cast(plan(inner, scopes: &scopes), type.valueKind)
        case .auth(.uid):
            return .authUID
        case .auth(.role):
            return .authRole
        case .auth(.tenantID):
            return .authTenantID
        case .jwtClaim(let claim):
            return .claim(claim)
        case .comparison(let lhs, let op, let rhs):
            let (left, right) = coerced(lhs, rhs, scopes: &scopes)
            if case .column(let level, let name) = left, let operand = Operand(right) {
                return .compareColumn(level: level, name: name, op, operand)
            }
            if case .column(let level, let name) = right, let operand = Operand(left) {
                return .compareColumn(level: level, name: name, op.swapped, operand)
            }
            return .compare(left, op, right)
        case .and(let terms):
            return .and(terms.map { plan($0, scopes: &scopes) })
        case .or(let terms):
            return .or(terms.map { plan($0, scopes: &scopes) })
        case .not(let inner):
            return .not(plan(inner, scopes: &scopes))
        case .isNull(let inner, let negated):
            return .isNull(plan(inner, scopes: &scopes), negated: negated)
        case .isBoolean(let inner, let value, let negated):
            return .isBoolean(plan(inner, scopes: &scopes), value, negated: negated)
        case .inList(let lhs, let items, let negated):
            let kind = staticKind(lhs, scopes: scopes)
            return .inList(
                plan(lhs, scopes: &scopes), items.map { literal($0, as: kind) ?? plan($0, scopes: &scopes) },
                negated: negated)
        case .quantified(let lhs, let op, let quantifier, let array):
            let kind = staticKind(lhs, scopes: scopes)
            let arrayPlan: Plan
            if case .array(let items) = array {
                arrayPlan = .array(items.map { literal($0, as: kind) ?? plan($0, scopes: &scopes) })
            } else {
                arrayPlan = plan(array, scopes: &scopes)
            }
            return .quantified(plan(lhs, scopes: &scopes), op, all: quantifier == .all, arrayPlan)
        case .array(let items):
            return .array(items.map { plan($0, scopes: &scopes) })
        case .exists(let subquery):
            guard let inner = try? Binder.subqueryTable(subquery, of: scopes[0].table, catalogue: catalogue),
                let tableIndex = catalogue.index[inner.name]
            else { return .constant(.bool(false)) }
            scopes.append(Scope(table: inner, name: subquery.scopeName))
            defer { scopes.removeLast() }
            let level = scopes.count - 1
            let condition = subquery.condition.map { plan($0, scopes: &scopes) }
            return .exists(
                ExistsPlan(
                    tableIndex: tableIndex, tableName: inner.name, level: level,
                    key: condition.flatMap { PlanBuilder.key(in: $0, level: level) }, condition: condition))
        }
    }

    /// An uncast string literal takes the type of what it is compared with, as in Postgres.
    private func coerced(_ lhs: PolicyExpression, _ rhs: PolicyExpression, scopes: inout [Scope]) -> (Plan, Plan) {
        if let left = literal(lhs, as: staticKind(rhs, scopes: scopes)) {
            return (left, plan(rhs, scopes: &scopes))
        }
        if let right = literal(rhs, as: staticKind(lhs, scopes: scopes)) {
            return (plan(lhs, scopes: &scopes), right)
        }
        return (plan(lhs, scopes: &scopes), plan(rhs, scopes: &scopes))
    }

    private func literal(_ expression: PolicyExpression, as kind: PolicyValue.Kind?) -> Plan? {
        guard case .literal(.string(let text)) = expression, let kind else { return nil }
        return .constant(PolicyValue.parse(text, as: kind) ?? .null)
    }

    private func staticKind(_ expression: PolicyExpression, scopes: [Scope]) -> PolicyValue.Kind? {
        switch expression {
        case .column(let reference):
            return (try? Binder.resolve(reference, in: scopes))?.column.type.valueKind
        case .cast(_, let type):
            return type.valueKind
        case .auth(.uid), .auth(.tenantID):
            return .uuid
        case .auth(.role), .jwtClaim:
            return .text
        case .literal(.integer):
            return .integer
        case .literal(.decimal):
            return .number
        case .literal(.bool):
            return .boolean
        default:
            return nil
        }
    }

    static func value(of literal: PolicyExpression.Literal) -> PolicyValue {
        switch literal {
        case .null: return .null
        case .bool(let value): return .bool(value)
        case .integer(let value): return .int(value)
        case .decimal(let text): return Double(text).map(PolicyValue.double) ?? .null
        case .string(let text): return .text(text)
        }
    }

    /// The first top-level conjunct `inner.column = outer expression` of a subquery condition.
    private static func key(in condition: Plan, level: Int) -> (column: String, value: Plan)? {
        let terms: [Plan]
        if case .and(let conjuncts) = condition { terms = conjuncts } else { terms = [condition] }
        for term in terms {
            guard case .compare(let lhs, .equal, let rhs) = term else { continue }
            if case .column(level, let name) = lhs, !references(rhs, level: level) { return (name, rhs) }
            if case .column(level, let name) = rhs, !references(lhs, level: level) { return (name, lhs) }
        }
        for term in terms {
            guard case .compareColumn(level, let name, .equal, let operand) = term else { continue }
            return (name, operand.plan)
        }
        return nil
    }

    private static func references(_ plan: Plan, level: Int) -> Bool {
        switch plan {
        case .column(let at, _): return at >= level
        case .compareColumn(let at, _, _, _): return at >= level
        case .constant, .authUID, .authRole, .authTenantID, .claim: return false
        case .cast(let inner, _), .not(let inner), .isNull(let inner, _), .isBoolean(let inner, _, _):
            return references(inner, level: level)
        case .compare(let lhs, _, let rhs), .quantified(let lhs, _, _, let rhs):
            return references(lhs, level: level) || references(rhs, level: level)
        case .and(let terms), .or(let terms), .array(let terms):
            return terms.contains { references($0, level: level) }
        case .inList(let lhs, let items, _):
            return references(lhs, level: level) || items.contains { references($0, level: level) }
        case .exists:
            return true
        }
    }
}
