/// A policy condition as SQL for a `WHERE` clause: text with `$n` placeholders, and the values
/// to bind to them.
///
/// Bind strategy: auth values (`auth.uid()`, `auth.role()`, `auth.tenant_id()`, `auth.jwt() ->> 'x'`)
/// and every string literal become bind parameters, each typed with an explicit cast
/// (`$1::uuid`, `$2::text`), so no value — neither a JWT claim nor a policy literal — is ever part of
/// the SQL text and Postgres never has to guess a parameter's type. Numbers, booleans and NULL
/// stay inline: they come from the policy file and were parsed as such. A value used twice is
/// bound once. Columns are quoted and qualified with the table's name (`"projects"."user_id"`), so
/// the statement must refer to the table by its own name; subqueries get their own aliases.
///
/// The result is the same condition Postgres' RLS applies (the database still applies its RLS as
/// the second line of defence, including inside EXISTS subqueries).
public struct CompiledPredicate: Sendable, Hashable {
    public let sql: String
    public let binds: [PolicyValue]
    /// The placeholder number after the last one used, for the rest of the statement.
    public let nextBind: Int
}

extension PolicySet {
    /// The combined RLS condition of `clause` for `command` on `table`, for the request's role:
    /// restrictive policies (including `tenant_isolation`) AND-ed with the OR of the permissive
    /// ones; `false` when no permissive policy applies.
    ///
    /// Valid pairs: select/using, insert/with_check, update/using, update/with_check, delete/using.
    /// Compiled once per (table, command, role) at load; this only numbers the placeholders from
    /// `firstBind` and fills in the auth values.
    public func predicate(
        for command: PolicyCommand, clause: PolicyClause, on table: String, auth: AuthContext, firstBind: Int = 1
    ) throws -> CompiledPredicate {
        let compiled = try compiledTable(table)
        guard let slot = ClauseSlot(command: command, clause: clause) else {
            throw PolicyError(
                .invalidRequest, "\(command.rawValue) has no \(clause.rawValue) clause",
                help: "expected select/using, insert/with_check, update/using, update/with_check or delete/using")
        }
        return compiled.plans(for: auth.role)[slot].sql.render(auth: auth, firstBind: firstBind)
    }

    /// Compiles one expression over `table` (e.g. a filter the gateway adds), refusing columns
    /// that are not in the table's catalogue.
    public func compile(
        _ expression: PolicyExpression, on table: String, auth: AuthContext, firstBind: Int = 1
    ) throws -> CompiledPredicate {
        let compiled = try compiledTable(table)
        try Binder.check(expression, table: compiled.table, catalogue: catalogue)
        return SQLTemplate.build(expression, table: compiled.table, catalogue: catalogue)
            .render(auth: auth, firstBind: firstBind)
    }
}

/// SQL text with holes for bind parameters; rendered per request.
struct SQLTemplate: Sendable {
    enum Source: Sendable, Hashable {
        case authUID, authRole, authTenantID
        case claim(String)
        case constant(String)
    }

    enum Segment: Sendable {
        case text(String)
        /// `$n` followed by `::cast`.
        case bind(Source, cast: String)
    }

    var segments: [Segment] = []

    mutating func append(_ text: String) {
        if case .text(let previous)? = segments.last {
            segments[segments.count - 1] = .text(previous + text)
        } else {
            segments.append(.text(text))
        }
    }

    mutating func append(_ other: SQLTemplate) {
        for segment in other.segments {
            if case .text(let text) = segment { append(text) } else { segments.append(segment) }
        }
    }

    func render(auth: AuthContext, firstBind: Int) -> CompiledPredicate {
        var sql = ""
        var binds: [PolicyValue] = []
        var numbers: [Source: Int] = [:]
        for segment in segments {
            switch segment {
            case .text(let text):
                sql += text
            case .bind(let source, let cast):
                let number: Int
                if let known = numbers[source] {
                    number = known
                } else {
                    number = firstBind + binds.count
                    numbers[source] = number
                    binds.append(SQLTemplate.value(of: source, auth: auth))
                }
                sql += "$\(number)::\(cast)"
            }
        }
        return CompiledPredicate(sql: sql, binds: binds, nextBind: firstBind + binds.count)
    }

    private static func value(of source: Source, auth: AuthContext) -> PolicyValue {
        switch source {
        case .authUID: return auth.uidValue
        case .authTenantID: return auth.tenantValue
        case .authRole: return auth.roleClaimValue
        case .claim(let name): return auth.claimText(name)
        case .constant(let text): return .text(text)
        }
    }

    static func combine(restrictive: [SQLTemplate], permissive: [SQLTemplate]) -> SQLTemplate {
        var result = SQLTemplate()
        guard !permissive.isEmpty else {
            result.append("false")
            return result
        }
        var permissivePart = SQLTemplate()
        if permissive.count == 1 {
            permissivePart = permissive[0]
        } else {
            permissivePart.append("(")
            for (index, template) in permissive.enumerated() {
                if index > 0 { permissivePart.append(" OR ") }
                permissivePart.append(template)
            }
            permissivePart.append(")")
        }
        if restrictive.isEmpty { return permissivePart }
        result.append("(")
        for template in restrictive {
            result.append(template)
            result.append(" AND ")
        }
        result.append(permissivePart)
        result.append(")")
        return result
    }

    static func build(_ expression: PolicyExpression, table: TablePolicy, catalogue: some TableCatalogue) -> SQLTemplate {
        var renderer = SQLRenderer(
            catalogue: catalogue, scopes: [Scope(table: table, name: table.name)], aliases: [SQLText.quoted(table.name)])
        renderer.render(expression)
        return renderer.template
    }
}

/// Writes a checked expression as SQL, fully parenthesised (as `pg_get_expr` does), so operator
/// precedence never depends on context.
private struct SQLRenderer<C: TableCatalogue> {
    let catalogue: C
    var scopes: [Scope]
    /// The quoted name each scope level is referred to by.
    var aliases: [String]
    var template = SQLTemplate()

    init(catalogue: C, scopes: [Scope], aliases: [String]) {
        self.catalogue = catalogue
        self.scopes = scopes
        self.aliases = aliases
    }

    mutating func render(_ expression: PolicyExpression, castLiteralAs contextType: String? = nil) {
        switch expression {
        case .column(let reference):
            guard let resolved = try? Binder.resolve(reference, in: scopes) else {
                // Unreachable for checked expressions; NULL never grants access.
                template.append("NULL")
                return
            }
            template.append(aliases[resolved.level] + "." + SQLText.quoted(resolved.column.name))
        case .literal(let literal):
            switch literal {
            case .string(let text): template.segments.append(.bind(.constant(text), cast: contextType ?? "text"))
            default: template.append(ExpressionPrinter.literal(literal))
            }
        case .cast(let inner, let type):
            if case .literal(.string(let text)) = inner {
                template.segments.append(.bind(.constant(text), cast: type.canonical))
            } else {
                template.append("(")
                render(inner)
                template.append(")::" + type.canonical)
            }
        case .auth(.uid):
            template.segments.append(.bind(.authUID, cast: "uuid"))
        case .auth(.tenantID):
            template.segments.append(.bind(.authTenantID, cast: "uuid"))
        case .auth(.role):
            template.segments.append(.bind(.authRole, cast: "text"))
        case .jwtClaim(let claim):
            template.segments.append(.bind(.claim(claim), cast: "text"))
        case .comparison(let lhs, let op, let rhs):
            template.append("(")
            render(lhs, castLiteralAs: literalType(matching: rhs))
            template.append(" \(op.rawValue) ")
            render(rhs, castLiteralAs: literalType(matching: lhs))
            template.append(")")
        case .and(let terms):
            join(terms, " AND ")
        case .or(let terms):
            join(terms, " OR ")
        case .not(let inner):
            template.append("(NOT ")
            render(inner)
            template.append(")")
        case .isNull(let inner, let negated):
            template.append("(")
            render(inner)
            template.append(negated ? " IS NOT NULL)" : " IS NULL)")
        case .isBoolean(let inner, let value, let negated):
            template.append("(")
            render(inner)
            template.append((negated ? " IS NOT " : " IS ") + (value ? "TRUE)" : "FALSE)"))
        case .inList(let lhs, let items, let negated):
            let type = literalType(matching: lhs)
            template.append("(")
            render(lhs)
            template.append(negated ? " NOT IN (" : " IN (")
            for (index, item) in items.enumerated() {
                if index > 0 { template.append(", ") }
                render(item, castLiteralAs: type)
            }
            template.append("))")
        case .quantified(let lhs, let op, let quantifier, let array):
            template.append("(")
            render(lhs, castLiteralAs: literalType(matching: array))
            template.append(" \(op.rawValue) \(quantifier.rawValue) (")
            render(array, castLiteralAs: literalType(matching: lhs))
            template.append("))")
        case .array(let items):
            template.append("ARRAY[")
            for (index, item) in items.enumerated() {
                if index > 0 { template.append(", ") }
                render(item, castLiteralAs: contextType)
            }
            template.append("]")
        case .exists(let subquery):
            guard let inner = try? Binder.subqueryTable(subquery, of: scopes[0].table, catalogue: catalogue) else {
                template.append("false")
                return
            }
            // A fresh alias per level: the source's alias could shadow the outer table's name.
            var alias = "_s\(scopes.count)"
            while scopes.contains(where: { $0.table.name == alias }) { alias += "_" }
            template.append("EXISTS (SELECT 1 FROM \(inner.quotedName) \(SQLText.quoted(alias))")
            scopes.append(Scope(table: inner, name: subquery.scopeName))
            aliases.append(SQLText.quoted(alias))
            if let condition = subquery.condition {
                template.append(" WHERE ")
                render(condition)
            }
            scopes.removeLast()
            aliases.removeLast()
            template.append(")")
        }
    }

    private mutating func join(_ terms: [PolicyExpression], _ separator: String) {
        template.append("(")
        for (index, term) in terms.enumerated() {
            if index > 0 { template.append(separator) }
            render(term)
        }
        template.append(")")
    }

    /// The type an untyped string literal compared with `other` takes: text for every text-like
    /// type (as Postgres resolves `varchar = unknown` to text equality), the other's type otherwise.
    private func literalType(matching other: PolicyExpression) -> String? {
        let type: SQLType?
        switch other {
        case .column(let reference): type = (try? Binder.resolve(reference, in: scopes))?.column.type
        case .cast(_, let cast): type = cast
        case .auth(.uid), .auth(.tenantID): return "uuid"
        case .auth(.role), .jwtClaim: return "text"
        case .literal(.integer): return "bigint"
        case .literal(.decimal): return "numeric"
        case .literal(.bool): return "boolean"
        default: type = nil
        }
        guard let type else { return nil }
        if type.kind == .text { return "text" }
        if let element = type.elementType { return element.kind == .text ? "text" : element.canonical }
        return type.canonical
    }
}
