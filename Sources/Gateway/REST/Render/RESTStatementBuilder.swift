import Foundation
import Policy
import Postgres

/// Turns a parsed PostgREST request into SQL clauses for one governed table.
///
/// With ``RESTRenderer`` (whole statements) the one place REST SQL is written. Identifiers are checked against the table's catalogue in
/// the policy file and quoted; every value is a bind parameter cast to the column's type; the
/// policy predicate comes from the policy engine with its own binds.
struct RESTStatementBuilder {
    let table: TablePolicy
    private(set) var binds: [PostgresBind] = []

    /// What embedding needs beyond the table; nil where no embed is rendered.
    struct Embedding {
        let policies: PolicySet
        let auth: AuthContext
        let catalog: RelationshipCatalog
        let options: [[String]: RESTQuery.EmbeddedOptions]
    }

    var embedding: Embedding?
    /// `LEFT JOIN LATERAL …` for the embeds of ``selectList(_:)``, to follow the FROM item.
    private(set) var joins = ""
    /// What `!inner` embeds require of the parent row, to AND into its WHERE.
    private(set) var innerConditions: [String] = []
    /// The embed paths rendered so far, to refuse `rel.…=` parameters naming no embed.
    private(set) var embeddedPaths: Set<[String]> = []
    /// This level's embeds by name, as ``EmbedSource``s: for `order=relation(column)` and for
    /// conditions on embedded resources (`or=(…,rel.col.eq.x)`, `rel=not.is.null`).
    private var embedSources: [String: EmbedSource] = [:]

    /// Where an embed's related rows come from: its table and `FROM … WHERE …` (join, the
    /// table's own policy, its filters and `!inner` requirements), without order or window.
    struct EmbedSource {
        let table: TablePolicy
        let isToOne: Bool
        let source: String
        /// The embed's own embeds, for paths `rel.sub.col`.
        let children: [String: EmbedSource]
    }
    private var lateralCount = 0
    private var path: [String] = []
    private var tablesInScope: [String]

    init(table: TablePolicy) {
        self.table = table
        self.tablesInScope = [table.name]
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

    /// The type a value is cast to: the column's type with its length or precision dropped
    /// (array-ness kept), so a bound value is compared, never truncated or rounded:
    /// `'abcdef'::varchar(5)` would be `'abcde'` and `1.005::numeric(5,2)` would be `1.01`,
    /// both matching rows they should not. Dropping the modifier means "unbounded" for every
    /// declarable type but one: bare `character` is `character(1)`, so `iso=eq.DZ` on a
    /// `character(2)` column compared `'D'` and matched nothing. It takes its unbounded
    /// spelling, `bpchar`, which compares blank-padded as the column does.
    static func castName(_ type: SQLType) -> String {
        var name = type.canonical
        var arraySuffix = ""
        while name.hasSuffix("[]") {
            name.removeLast(2)
            arraySuffix += "[]"
        }
        while let open = name.firstIndex(of: "("), let close = name[open...].firstIndex(of: ")") {
            name.removeSubrange(open...close)
        }
        return (name == "character" ? "bpchar" : name) + arraySuffix
    }

    /// A column with an optional JSON path, and the type its values compare as.
    mutating func field(_ field: RESTQuery.Field) throws -> (sql: String, castType: String) {
        let (sql, type) = try column(field.column)
        guard !field.jsonPath.isEmpty else { return (sql, Self.castName(type)) }
        guard type.canonical == "jsonb" || type.canonical == "json" else {
            throw GatewayError(
                .badRequest, code: "42883", "operator does not exist: \(type.canonical) -> unknown",
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
            case .embed(let embed):
                parts.append(contentsOf: try self.embed(embed))
            }
        }
        return parts.joined(separator: ", ")
    }

    // MARK: Embedding

    /// One embedded resource: a lateral subquery over the related table, joined on the foreign
    /// key, under that table's own policy predicate (the database's RLS applies again) and
    /// `rest:` exposure, with its own filters, order and window; returns its select items.
    ///
    /// To-many embeds aggregate with `json_agg`, to-one ones with `row_to_json`, as PostgREST
    /// does, so the whole answer is one statement. The related table is not aliased: its policy
    /// predicate qualifies columns with the table's name. For the same reason a table cannot be
    /// embedded inside itself (the join would not know which is which).
    private mutating func embed(_ embed: RESTQuery.Embed) throws -> [String] {
        guard let embedding else {
            throw GatewayError(.badRequest, code: "PGRST100", "embedded resources need return=representation")
        }
        let path = self.path + [embed.name]
        guard let target = embedding.policies.table(named: embed.relation) else { throw relationshipNotFound(embed) }
        // Exposure before relationships, as at the top level: a table /rest/v1 does not serve is
        // refused the same whether or not a foreign key leads to it.
        guard target.rest.allows(.select) else {
            throw GatewayError(
                .forbidden, code: "42501", "permission denied for table \(target.name)",
                details: "\(target.qualifiedName) is not served through /rest/v1 (rest: \(target.rest.rawValue)) and cannot be embedded")
        }
        let relationship = try self.relationship(embed, embedding)
        guard !tablesInScope.contains(target.name) else {
            throw GatewayError(
                .badRequest, code: "PGRST100", "embedding '\(target.name)' inside itself is not supported",
                details: "path: \(path.joined(separator: "."))", hint: "Query \(target.name) separately.")
        }
        if embed.spread, !relationship.isToOne {
            throw GatewayError(
                .badRequest, code: "PGRST119", "A spread operation on '\(embed.relation)' is not possible",
                details: "'\(table.name)' and '\(embed.relation)' do not form a many-to-one or one-to-one relationship")
        }

        var child = RESTStatementBuilder(table: target)
        child.binds = binds
        child.lateralCount = lateralCount + 1
        child.embedding = embedding
        child.path = path
        child.tablesInScope = tablesInScope + [target.name]
        child.embeddedPaths = embeddedPaths
        let columns = try child.selectList(embed.select)
        let options = embedding.options[path] ?? RESTQuery.EmbeddedOptions()
        var conditions: [String]
        if let junction = relationship.junction {
            // Through a junction the caller must be able to read too: a link its policies hide
            // relates nothing. EXISTS, so a pair linked twice is one related row.
            let junctionName = relationship.foreignKey.table
            guard let junctionTable = embedding.policies.table(named: junctionName), junctionTable.rest.allows(.select) else {
                throw GatewayError(
                    .forbidden, code: "42501", "permission denied for table \(junctionName)",
                    details: "public.\(junctionName) is not served through /rest/v1 and cannot join an embed")
            }
            guard !child.tablesInScope.contains(junctionName) else {
                throw GatewayError(.badRequest, code: "PGRST100", "embedding '\(junctionName)' inside itself is not supported")
            }
            var through = RESTStatementBuilder(table: junctionTable)
            through.binds = child.binds
            let junctionPolicy = try through.policy(embedding.policies, .select, .using, auth: embedding.auth)
            child.binds = through.binds
            let quotedJunction = SQLText.quoted(junctionName)
            let links =
                relationship.pairs.map {
                    "\(quotedJunction).\(SQLText.quoted($0.target)) = \(SQLText.quoted(table.name)).\(SQLText.quoted($0.source))"
                }
                + junction.pairs.map {
                    "\(quotedJunction).\(SQLText.quoted($0.junction)) = \(SQLText.quoted(target.name)).\(SQLText.quoted($0.target))"
                }
            conditions = [
                "EXISTS (SELECT 1 FROM \(junctionTable.quotedName) WHERE \((links + [junctionPolicy]).joined(separator: " AND ")))"
            ]
        } else {
            conditions = relationship.pairs.map {
                "\(SQLText.quoted(target.name)).\(SQLText.quoted($0.target)) = \(SQLText.quoted(table.name)).\(SQLText.quoted($0.source))"
            }
        }
        conditions.append(try child.policy(embedding.policies, .select, .using, auth: embedding.auth))
        if let filter = options.filter { conditions.append(try child.filter(filter)) }
        conditions += child.innerConditions
        let order = try child.orderBy(options.order)
        var paging = ""
        if let limit = options.limit { paging += " LIMIT " + child.bind(.text(String(limit)), as: "bigint") }
        if options.offset > 0 { paging += " OFFSET " + child.bind(.text(String(options.offset)), as: "bigint") }
        let source =
            "SELECT \(columns) FROM \(target.quotedName)\(child.joins) WHERE \(conditions.joined(separator: " AND "))\(order)\(paging)"

        let number = lateralCount + 1
        embedSources[embed.name] = EmbedSource(
            table: target, isToOne: relationship.isToOne,
            source: "FROM \(target.quotedName)\(child.joins) WHERE \(conditions.joined(separator: " AND "))",
            children: child.embedSources)
        binds = child.binds
        lateralCount = child.lateralCount
        embeddedPaths = child.embeddedPaths.union([path])
        let alias = SQLText.quoted("_pgw_\(number)")
        let row = SQLText.quoted("_pgw_\(number)_row")
        // Lateral columns are named _pgw_*: the parent's unqualified columns stay unambiguous.
        // A spread also keeps the row's own columns, so each spread key is a typed column of the
        // parent (CSV prints `gamma` and a timestamp as Postgres writes it, not JSON) — renamed
        // _pgw_s<n>: as `row.*` they made the parent's own `id` ambiguous (42702 on `*,...rel(*)`).
        let spreadNames = embed.spread && relationship.isToOne ? Self.outputNames(embed.select, of: target, embedding.policies) : []
        if relationship.isToOne {
            let columns = spreadNames.enumerated().map { ", \(row).\(SQLText.quoted($0.element)) AS _pgw_s\($0.offset)" }.joined()
            joins += " LEFT JOIN LATERAL (SELECT row_to_json(\(row)) AS _pgw_body\(columns) FROM (\(source)) \(row)) \(alias) ON true"
            if embed.join == .inner { innerConditions.append("\(alias)._pgw_body IS NOT NULL") }
        } else {
            joins +=
                " LEFT JOIN LATERAL (SELECT coalesce(json_agg(\(row)), '[]'::json) AS _pgw_body, count(*) AS _pgw_n FROM (\(source)) \(row)) \(alias) ON true"
            if embed.join == .inner { innerConditions.append("\(alias)._pgw_n > 0") }
        }
        guard embed.spread else { return ["\(alias)._pgw_body AS \(SQLText.quoted(embed.name))"] }
        // A spread to-one row: its keys become the parent's columns.
        return spreadNames.enumerated().map { "\(alias)._pgw_s\($0.offset) AS \(SQLText.quoted($0.element))" }
    }

    private func relationshipNotFound(_ embed: RESTQuery.Embed) -> GatewayError {
        let hinted = embed.hint.map { " using the hint '\($0)'" } ?? ""
        return GatewayError(
            .badRequest, code: "PGRST200",
            "Could not find a relationship between '\(table.name)' and '\(embed.relation)' in the schema cache",
            details:
                "Searched for a foreign key relationship between '\(table.name)' and '\(embed.relation)'\(hinted) in the schema 'public', but no matches were found."
        )
    }

    /// The one relationship `embed` names from this table, or PostgREST's error.
    private func relationship(_ embed: RESTQuery.Embed, _ embedding: Embedding) throws -> RelationshipCatalog.Relationship {
        var candidates = embedding.catalog.relationships(from: table.name, to: embed.relation)
        if let hint = embed.hint {
            candidates = candidates.filter { $0.names.contains(hint) }
        }
        guard let first = candidates.first else { throw relationshipNotFound(embed) }
        guard candidates.count == 1 else {
            let described = candidates.map(\.described)
            throw GatewayError(
                .multipleChoices, code: "PGRST201",
                "Could not embed because more than one relationship was found for '\(table.name)' and '\(embed.relation)'",
                details: described.joined(separator: "; "),
                hint: "Try changing '\(embed.relation)' to one of the following: "
                    + candidates.map { "'\(embed.relation)!\($0.hint)'" }.joined(separator: ", ")
                    + ". Find the desired relationship in the 'details' key.")
        }
        return first
    }

    /// The keys a select list produces, in order (a spread's are its relation's columns).
    static func outputNames(_ items: [RESTQuery.SelectItem], of table: TablePolicy, _ policies: PolicySet) -> [String] {
        var names: [String] = []
        for item in items {
            switch item {
            case .all: names += table.restColumns.map(\.name)
            case .column(let column): names.append(column.outputName)
            case .embed(let embed):
                if embed.spread, let target = policies.table(named: embed.relation) {
                    names += outputNames(embed.select, of: target, policies)
                } else {
                    names.append(embed.name)
                }
            }
        }
        return names
    }

    /// `order=relation(column)`: a served column of a to-one embed, as a scalar subquery.
    private mutating func relatedField(_ field: RESTQuery.Field, of relation: String) throws -> String {
        let embedded = try embedSource([relation])
        guard embedded.isToOne else {
            throw GatewayError(
                .badRequest, code: "PGRST118", "A related order on '\(relation)' is not possible",
                details: "'\(table.name)' and '\(relation)' do not form a many-to-one or one-to-one relationship")
        }
        let (target, source) = (embedded.table, embedded.source)
        guard target.restColumn(named: field.column) != nil else {
            throw GatewayError(
                .badRequest, code: "42703", "column \(target.name).\(field.column) does not exist",
                hint: "columns of \(target.name): \(target.restColumns.map(\.name).joined(separator: ", "))")
        }
        // Read again with the embed's own join, policy and filters, so any served column sorts
        // with its own type and collation, selected in the embed or not.
        var expression = "\(SQLText.quoted(target.name)).\(SQLText.quoted(field.column))"
        for step in field.jsonPath {
            let operand: String
            switch step.operand {
            case .key(let key): operand = bind(.text(key), as: "text")
            case .index(let index): operand = String(index)
            }
            expression = "(\(expression) \(step.arrow.rawValue) \(operand))"
        }
        return "(SELECT \(expression) \(source))"
    }

    /// The embed a path names from this level (aliases count), or PostgREST's PGRST108.
    private func embedSource(_ path: [String]) throws -> EmbedSource {
        var sources = embedSources
        var found: EmbedSource?
        for name in path {
            guard let next = sources[name] else {
                let named = path.joined(separator: ".")
                throw GatewayError(
                    .badRequest, code: "PGRST108", "'\(named)' is not an embedded resource in this request",
                    hint: "Verify that '\(named)' is included in the 'select' query parameter.")
            }
            found = next
            sources = next.children
        }
        return found!
    }

    /// The sources along a path, outermost first.
    private func embedChain(_ path: [String]) throws -> [EmbedSource] {
        try path.indices.map { try embedSource(Array(path[...$0])) }
    }

    /// A condition on an embedded resource's column: true when a related row the caller can
    /// see (the embed's join, policy and filters, at every level of the path) passes it —
    /// `negated`: passes its negation. An `EXISTS`, so the parent's row is tested, never widened.
    ///
    /// Several conditions on the same path become one `EXISTS` over their disjunction
    /// (∃r.P(r) ∨ ∃r.Q(r) ≡ ∃r.(P(r) ∨ Q(r))): an `or=` of a thousand terms on one embed is one
    /// subplan for Postgres to plan and run, not a thousand (measured: seconds against milliseconds).
    private mutating func embeddedCondition(_ conditions: [(RESTQuery.Condition, negated: Bool)]) throws -> String {
        let path = conditions[0].0.path
        let chain = try embedChain(path)
        var inner = RESTStatementBuilder(table: chain.last!.table)
        inner.binds = binds
        var tests: [String] = []
        for (condition, negated) in conditions {
            let test = try inner.condition(RESTQuery.Condition(condition.field, condition.operation))
            tests.append(negated ? "NOT (\(test))" : test)
        }
        binds = inner.binds
        var test = tests.count == 1 ? tests[0] : "(" + tests.joined(separator: " OR ") + ")"
        for link in chain.reversed() { test = "EXISTS (SELECT 1 \(link.source) AND \(test))" }
        return test
    }

    /// The terms of an `or=`, with the conditions on each embedded path gathered into one
    /// `EXISTS` (see `embeddedCondition`), placed where the path's first condition stood.
    private mutating func disjuncts(_ terms: [RESTQuery.FilterTree]) throws -> [String] {
        enum Slot { case rendered(String), embedded([String]) }
        var slots: [Slot] = []
        var groups: [[String]: [(RESTQuery.Condition, negated: Bool)]] = [:]
        for term in terms {
            let embedded: (RESTQuery.Condition, negated: Bool)?
            switch term {
            case .condition(let condition): embedded = (condition, false)
            case .not(.condition(let condition)): embedded = (condition, true)
            default: embedded = nil
            }
            if let (condition, negated) = embedded, !condition.path.isEmpty,
                try embedPresence(condition, negated: negated) == nil
            {
                if groups[condition.path] == nil { slots.append(.embedded(condition.path)) }
                groups[condition.path, default: []].append((condition, negated))
            } else {
                slots.append(.rendered(try filter(term)))
            }
        }
        return try slots.map { slot in
            switch slot {
            case .rendered(let sql): return sql
            case .embedded(let path): return try embeddedCondition(groups[path]!)
            }
        }
    }

    /// `rel=is.null` / `rel=not.is.null` (PostgREST's null filter on an embedded resource, here
    /// also inside `or=(…)`): whether the parent has a related row the caller can see.
    private func embedPresence(_ condition: RESTQuery.Condition, negated: Bool) throws -> String? {
        let name = condition.field.column
        guard condition.field.jsonPath.isEmpty, case .is(let value) = condition.operation else { return nil }
        let owner = condition.path.isEmpty ? nil : try embedSource(condition.path)
        guard (owner?.table ?? table).restColumn(named: name) == nil, (owner?.children ?? embedSources)[name] != nil else { return nil }
        let chain = try embedChain(condition.path + [name])
        let exists = "EXISTS (SELECT 1 \(chain.last!.source))"
        var test: String
        switch (value, negated) {
        case (.notNull, false), (.null, true): test = exists
        case (.null, false), (.notNull, true): test = "NOT " + exists
        default:
            throw GatewayError(
                .badRequest, code: "PGRST100", "'\(name)' is an embedded resource",
                hint: "an embedded resource takes is.null or not.is.null")
        }
        for link in chain.dropLast().reversed() { test = "EXISTS (SELECT 1 \(link.source) AND \(test))" }
        return test
    }

    /// `rel.…=` parameters must name an embed of `select=` (PostgREST's PGRST108).
    func requireEmbeddedOptionsUsed(_ options: [[String]: RESTQuery.EmbeddedOptions]) throws {
        for path in options.keys.sorted(by: { $0.joined(separator: ".") < $1.joined(separator: ".") }) where !embeddedPaths.contains(path) {
            let name = path.joined(separator: ".")
            throw GatewayError(
                .badRequest, code: "PGRST108", "'\(name)' is not an embedded resource in this request",
                hint: "Verify that '\(name)' is included in the 'select' query parameter.")
        }
    }

    /// The filter tree → a boolean SQL expression.
    mutating func filter(_ tree: RESTQuery.FilterTree) throws -> String {
        switch tree {
        case .condition(let condition): return try self.condition(condition, negated: false)
        case .and(let terms): return terms.isEmpty ? "true" : "(" + (try terms.map { try filter($0) }).joined(separator: " AND ") + ")"
        case .or(let terms): return terms.isEmpty ? "false" : "(" + (try disjuncts(terms)).joined(separator: " OR ") + ")"
        case .not(.condition(let condition)): return try self.condition(condition, negated: true)
        case .not(let inner): return "NOT " + (try filter(inner))
        }
    }

    private mutating func condition(_ condition: RESTQuery.Condition, negated: Bool) throws -> String {
        if let presence = try embedPresence(condition, negated: negated) { return presence }
        if !condition.path.isEmpty { return try embeddedCondition([(condition, negated)]) }
        let test = try self.condition(condition)
        return negated ? "NOT " + test : test
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
        case .distinct(let value):
            return "\(sql) IS DISTINCT FROM \(bind(.text(value), as: type))"
        case .range(let op, let value):
            // Checked here: on another type Postgres' "operator does not exist" would be 42883,
            // which PostgREST answers 404 (a missing function).
            guard type.hasSuffix("range") else {
                throw GatewayError(
                    .badRequest, code: "42883", "operator does not exist: \(type) \(op.sqlOperator) \(type)",
                    hint: "\(op.rawValue) applies to range columns only")
            }
            return "\(sql) \(op.sqlOperator) \(bind(.text(value), as: type))"
        case .textSearch(let op, let language, let value):
            let configuration = language.map { bind(.text($0), as: "regconfig") + ", " } ?? ""
            let query = "\(op.function)(\(configuration)\(bind(.text(value), as: "text")))"
            switch type {
            case "tsvector": return "\(sql) @@ \(query)"
            case "text", "character varying", "bpchar", "citext", "name", "json", "jsonb":
                return "to_tsvector(\(configuration)\(sql)) @@ \(query)"
            default:
                throw GatewayError(
                    .badRequest, code: "42883", "operator does not exist: \(type) @@ tsquery",
                    hint: "\(op.rawValue) applies to tsvector, text and json columns")
            }
        case .quantified(let op, let quantifier, let value):
            let quantified = quantifier == .any ? "ANY" : "ALL"
            switch op {
            case .eq, .neq, .gt, .gte, .lt, .lte:
                let comparison = RESTQuery.ComparisonOperator(rawValue: op.rawValue)!.sqlOperator
                return "\(sql) \(comparison) \(quantified)(\(bind(.text(value), as: type + "[]")))"
            case .like, .ilike, .match, .imatch:
                let pattern = RESTQuery.PatternOperator(rawValue: op.rawValue)!.sqlOperator
                return "(\(sql))::text \(pattern) \(quantified)(\(bind(.text(value), as: "text[]")))"
            }
        }
    }

    /// `order=` → `ORDER BY …`, or empty.
    mutating func orderBy(_ terms: [RESTQuery.OrderTerm]) throws -> String {
        guard !terms.isEmpty else { return "" }
        let parts = try terms.map { term -> String in
            var part = try term.relation.map { try relatedField(term.field, of: $0) } ?? field(term.field).sql
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

// The grammar names operators as PostgREST spells them in a URL; their SQL is written here.
extension RESTQuery.ComparisonOperator {
    /// The Postgres operator PostgREST uses for it.
    var sqlOperator: String {
        switch self {
        case .eq: "="
        case .neq: "<>"
        case .gt: ">"
        case .gte: ">="
        case .lt: "<"
        case .lte: "<="
        }
    }
}

extension RESTQuery.PatternOperator {
    var sqlOperator: String {
        switch self {
        case .like: "LIKE"
        case .ilike: "ILIKE"
        case .match: "~"
        case .imatch: "~*"
        }
    }
}

extension RESTQuery.RangeOperator {
    var sqlOperator: String {
        switch self {
        case .sl: "<<"
        case .sr: ">>"
        case .nxr: "&<"
        case .nxl: "&>"
        case .adj: "-|-"
        }
    }
}

extension RESTQuery.TextSearchOperator {
    /// The function that turns the query text into a `tsquery`.
    var function: String {
        switch self {
        case .fts: "to_tsquery"
        case .plfts: "plainto_tsquery"
        case .phfts: "phraseto_tsquery"
        case .wfts: "websearch_to_tsquery"
        }
    }
}

extension RESTQuery.ArrayOperator {
    var sqlOperator: String {
        switch self {
        case .cs: "@>"
        case .cd: "<@"
        case .ov: "&&"
        }
    }
}
