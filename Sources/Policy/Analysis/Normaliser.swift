/// Rewrites an expression into a normal form so that two expressions with the same meaning
/// compare equal, whoever wrote them — a policy file or `pg_get_expr`:
///
/// - column references: qualified by scope level, not by alias (`sitemaps.project_id` ≡ `project_id`,
///   `p.id` ≡ `projects_alias.id`); EXISTS tables lose their schema and alias;
/// - casts on literals dropped where harmless (`'x'::text` ≡ `'x'`), literals read as the type of what
///   they are compared with (`'1'::integer` ≡ `1`), implicit casts of text-like columns to text dropped;
/// - `a = ANY (ARRAY[x, y])` ≡ `a IN (x, y)`, `a <> ALL (ARRAY[…])` ≡ `a NOT IN (…)`, and a one-element
///   IN ≡ `=` (Postgres rewrites `a IN (x)` to `a = x`);
/// - `NOT` pushed into comparisons and tests (`NOT a = b` ≡ `a <> b`; exact under three-valued logic);
/// - AND/OR flattened, operands of AND, OR, =, <> and IN sorted and de-duplicated; `a > b` ≡ `b < a`.
struct Normaliser<C: TableCatalogue> {
    let catalogue: C

    func normalise(_ expression: PolicyExpression, table: TablePolicy) -> PolicyExpression {
        var scopes = [Scope(table: table, name: table.name)]
        return normalise(expression, scopes: &scopes)
    }

    private func normalise(_ expression: PolicyExpression, scopes: inout [Scope]) -> PolicyExpression {
        switch expression {
        case .column(let reference):
            guard let resolved = try? Binder.resolve(reference, in: scopes) else {
                // Unknown to the catalogue: kept as written, so it differs from anything declared.
                return .column(.init(qualifier: reference.qualifier.map { "?" + $0 }, name: reference.name))
            }
            return .column(.init(qualifier: resolved.level == 0 ? nil : "#\(resolved.level)", name: resolved.column.name))
        case .literal(.string(let text)):
            return .literal(.string(text))
        case .literal:
            return expression
        case .cast(let inner, let type):
            let normalised = normalise(inner, scopes: &scopes)
            if case .literal(let literal) = normalised {
                return Normaliser.literal(literal, as: type.valueKind) ?? .cast(normalised, type)
            }
            if type.kind == .text, staticType(normalised, scopes: scopes)?.kind == .text {
                return normalised
            }
            return .cast(normalised, type)
        case .auth, .jwtClaim:
            return expression
        case .comparison(let lhs, let op, let rhs):
            let (left, right) = typedOperands(lhs, rhs, scopes: &scopes)
            return Normaliser.comparison(left, op, right)
        case .and(let terms):
            return Normaliser.junction(terms.map { normalise($0, scopes: &scopes) }, or: false)
        case .or(let terms):
            return Normaliser.junction(terms.map { normalise($0, scopes: &scopes) }, or: true)
        case .not(let inner):
            return Normaliser.negate(normalise(inner, scopes: &scopes))
        case .isNull(let inner, let negated):
            return .isNull(normalise(inner, scopes: &scopes), negated: negated)
        case .isBoolean(let inner, let value, let negated):
            return .isBoolean(normalise(inner, scopes: &scopes), value, negated: negated)
        case .inList(let lhs, let items, let negated):
            let left = normalise(lhs, scopes: &scopes)
            let kind = staticType(left, scopes: scopes)?.valueKind
            let list = items.map { typed(normalise($0, scopes: &scopes), as: kind) }
            return Normaliser.inList(left, list, negated: negated)
        case .quantified(let lhs, let op, let quantifier, let array):
            let left = normalise(lhs, scopes: &scopes)
            let kind = staticType(left, scopes: scopes)?.valueKind
            var right = normalise(array, scopes: &scopes)
            if case .array(let items) = right {
                let list = items.map { typed($0, as: kind) }
                // Postgres prints `a IN (x, y)` as `a = ANY (ARRAY[x, y])` and `NOT IN` as `<> ALL`.
                if op == .equal, quantifier == .any { return Normaliser.inList(left, list, negated: false) }
                if op == .notEqual, quantifier == .all { return Normaliser.inList(left, list, negated: true) }
                right = .array(list)
            }
            return .quantified(left, op, quantifier, right)
        case .array(let items):
            return .array(items.map { normalise($0, scopes: &scopes) })
        case .exists(let subquery):
            guard let inner = try? Binder.subqueryTable(subquery, of: scopes[0].table, catalogue: catalogue) else {
                return .exists(.init(schema: subquery.schema, table: "?" + subquery.table, alias: nil, condition: subquery.condition))
            }
            scopes.append(Scope(table: inner, name: subquery.scopeName))
            defer { scopes.removeLast() }
            let condition = subquery.condition.map { normalise($0, scopes: &scopes) }
            return .exists(.init(table: inner.name, alias: "#\(scopes.count - 1)", condition: condition))
        }
    }

    private func typedOperands(_ lhs: PolicyExpression, _ rhs: PolicyExpression, scopes: inout [Scope]) -> (
        PolicyExpression, PolicyExpression
    ) {
        let left = normalise(lhs, scopes: &scopes)
        let right = normalise(rhs, scopes: &scopes)
        return (
            typed(left, as: staticType(right, scopes: scopes)?.valueKind),
            typed(right, as: staticType(left, scopes: scopes)?.valueKind)
        )
    }

    /// An untyped string literal read as the type it meets, so `'1'` and `1` agree against an integer.
    private func typed(_ expression: PolicyExpression, as kind: PolicyValue.Kind?) -> PolicyExpression {
        guard case .literal(let literal) = expression else { return expression }
        return Normaliser.literal(literal, as: kind) ?? expression
    }

    private func staticType(_ expression: PolicyExpression, scopes: [Scope]) -> SQLType? {
        switch expression {
        case .column(let reference):
            guard let qualifier = reference.qualifier else {
                return scopes[0].table.column(named: reference.name)?.type
            }
            guard qualifier.hasPrefix("#"), let level = Int(qualifier.dropFirst()), level < scopes.count else { return nil }
            return scopes[level].table.column(named: reference.name)?.type
        case .cast(_, let type): return type
        case .auth(.uid), .auth(.tenantID): return SQLType("uuid")
        case .auth(.role), .jwtClaim: return SQLType("text")
        default: return nil
        }
    }

    static func literal(_ literal: PolicyExpression.Literal, as kind: PolicyValue.Kind?) -> PolicyExpression? {
        guard let kind else {
            if case .string = literal { return .literal(literal) }
            return nil
        }
        let value: PolicyValue
        switch literal {
        case .null: return .literal(.null)
        case .string(let text): value = PolicyValue.parse(text, as: kind) ?? .text(text)
        case .integer(let number): value = kind == .text ? .text(String(number)) : .int(number)
        case .decimal(let text): value = kind == .text ? .text(text) : (Double(text).map(PolicyValue.double) ?? .text(text))
        case .bool(let flag): value = kind == .text ? .text(flag ? "true" : "false") : .bool(flag)
        }
        switch value {
        case .text(let text): return .literal(.string(text))
        case .uuid(let uuid): return .literal(.string(uuid.uuidString.lowercased()))
        case .int(let number): return .literal(.integer(number))
        case .double(let number):
            if number.rounded() == number, abs(number) < 9.2e18 { return .literal(.integer(Int64(number))) }
            return .literal(.decimal(String(number)))
        case .bool(let flag): return .literal(.bool(flag))
        case .null, .array: return nil
        }
    }

    private static func sortKey(_ expression: PolicyExpression) -> String { expression.description }

    static func comparison(_ lhs: PolicyExpression, _ op: PolicyExpression.ComparisonOperator, _ rhs: PolicyExpression) -> PolicyExpression
    {
        // Order operands canonically; the operator swaps with them (a > b ≡ b < a).
        if sortKey(rhs) < sortKey(lhs) {
            return .comparison(rhs, op.swapped, lhs)
        }
        return .comparison(lhs, op, rhs)
    }

    static func inList(_ lhs: PolicyExpression, _ items: [PolicyExpression], negated: Bool) -> PolicyExpression {
        var unique: [PolicyExpression] = []
        for item in items.sorted(by: { sortKey($0) < sortKey($1) }) where !unique.contains(item) {
            unique.append(item)
        }
        if unique.count == 1 {
            return comparison(lhs, negated ? .notEqual : .equal, unique[0])
        }
        return .inList(lhs, unique, negated: negated)
    }

    static func junction(_ terms: [PolicyExpression], or: Bool) -> PolicyExpression {
        var flat: [PolicyExpression] = []
        for term in terms {
            switch (term, or) {
            case (.or(let inner), true), (.and(let inner), false): flat.append(contentsOf: inner)
            default: flat.append(term)
            }
        }
        var unique: [PolicyExpression] = []
        for term in flat.sorted(by: { sortKey($0) < sortKey($1) }) where !unique.contains(term) {
            unique.append(term)
        }
        if unique.count == 1 { return unique[0] }
        return or ? .or(unique) : .and(unique)
    }

    static func negate(_ expression: PolicyExpression) -> PolicyExpression {
        switch expression {
        case .not(let inner):
            return inner
        case .comparison(let lhs, let op, let rhs):
            let negated: PolicyExpression.ComparisonOperator
            switch op {
            case .equal: negated = .notEqual
            case .notEqual: negated = .equal
            case .less: negated = .greaterOrEqual
            case .lessOrEqual: negated = .greater
            case .greater: negated = .lessOrEqual
            case .greaterOrEqual: negated = .less
            }
            return comparison(lhs, negated, rhs)
        case .isNull(let inner, let negated):
            return .isNull(inner, negated: !negated)
        case .isBoolean(let inner, let value, let negated):
            // NOT (x IS TRUE) ≡ x IS NOT TRUE: IS tests are never unknown.
            return .isBoolean(inner, value, negated: !negated)
        case .inList(let lhs, let items, let negated):
            return .inList(lhs, items, negated: !negated)
        case .literal(.bool(let value)):
            return .literal(.bool(!value))
        default:
            return .not(expression)
        }
    }
}
