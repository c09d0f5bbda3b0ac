import Foundation
import JSON
import Policy
import Postgres
import Tenancy

/// Renders a ``RESTPlan`` as the statements of its pipeline: the one place `/rest/v1` SQL is
/// written, with ``RESTStatementBuilder`` (clauses: select lists and embeds, filters, order,
/// policy predicates, binds) and ``RESTRepresentation``'s bodies and counts.
///
/// Identifiers come from the policy catalogue and are quoted; every value is a bind parameter.
struct RESTRenderer {
    let plan: RESTPlan

    private static let rowAlias = "_pgw_row"

    private var table: TablePolicy { plan.table }
    private var query: RESTQuery { plan.query }
    private var auth: AuthContext { plan.caller.authContext }
    private var policies: PolicySet { plan.policies }

    /// The request's own statements: the main one (body and row count), then the count for
    /// `Prefer: count=` on a read, or the visible rows after an update or delete.
    func statements() throws -> [Statement] {
        switch plan.operation {
        case .read: return try read()
        case .insert(let objects, let columns, let conflict): return [try insert(objects, columns, conflict)]
        case .update(let object, let columns): return [try update(object, columns), try visibleRows()]
        case .delete: return [try delete(), try visibleRows()]
        }
    }

    /// `Prefer: tx=rollback`: after the request's statements, a ROLLBACK inside the pipeline's
    /// implicit transaction (its "no transaction in progress" warning silenced).
    static let rollback = [Statement("SELECT set_config('client_min_messages', 'error', true)"), Statement("ROLLBACK")]

    // MARK: - Reads

    private func read() throws -> [Statement] {
        var builder = RESTStatementBuilder(table: table)
        builder.embedding = plan.embedding
        let columns = try builder.selectList(query.select)
        try builder.requireEmbeddedOptionsUsed(query.embedded)
        // Embedded resources are lateral joins after the table; `!inner` ones filter its rows.
        let condition =
            try whereClause(&builder, .select)
            + builder.innerConditions.map { " AND " + $0 }.joined()
        let order = try builder.orderBy(query.order)
        let paging = window(&builder, limit: query.limit, offset: query.offset)
        var statements = [
            Statement(
                aggregate("SELECT \(columns) FROM \(table.quotedName)\(builder.joins) WHERE \(condition)\(order)\(paging)"),
                builder.binds)
        ]
        if query.preferences.count != nil {
            var counter = RESTStatementBuilder(table: table)
            var joins = ""
            var inner = ""
            // The count reads the same embeds when the parent's rows depend on them.
            if !builder.innerConditions.isEmpty || (query.filter.map { RESTPlan.mentionsEmbeds($0, of: table) } ?? false) {
                counter.embedding = plan.embedding
                _ = try counter.selectList(query.select)
                joins = counter.joins
                inner = counter.innerConditions.map { " AND " + $0 }.joined()
            }
            let condition = try whereClause(&counter, .select) + inner
            statements += RESTRepresentation.countStatements(
                query.preferences.count, from: table.quotedName + joins, condition: condition, binds: counter.binds)
        }
        return statements
    }

    /// The request's filters AND the policy predicate for `command`.
    private func whereClause(_ builder: inout RESTStatementBuilder, _ command: PolicyCommand) throws -> String {
        let policy = try builder.policy(policies, command, .using, auth: auth)
        guard let filter = query.filter else { return policy }
        return "\(policy) AND \(try builder.filter(filter))"
    }

    private func window(_ builder: inout RESTStatementBuilder, limit: Int?, offset: Int) -> String {
        var paging = ""
        if let limit { paging += " LIMIT " + builder.bind(.text(String(limit)), as: "bigint") }
        if offset > 0 { paging += " OFFSET " + builder.bind(.text(String(offset)), as: "bigint") }
        return paging
    }

    /// Wraps a row source so Postgres returns the JSON answer and the row count in one row.
    private func aggregate(_ source: String, selectList: String? = nil) -> String {
        // CSV for reads; a write's representation stays JSON.
        let format = plan.command == .select ? query.format : (query.singular ? .singleObject : .json)
        let json = RESTRepresentation.body(
            format: format, names: RESTStatementBuilder.outputNames(query.select, of: table, policies), stripNulls: plan.stripNulls)
        let inner = selectList.map { "SELECT \($0) FROM \(source)" } ?? source
        return "SELECT (\(json))::text AS body, count(*) AS n FROM (\(inner)) \(Self.rowAlias)"
    }

    // MARK: - Writes

    /// `RETURNING *` only when the rows are answered: a RETURNING that reads columns makes
    /// Postgres check the SELECT policies on the written rows (an error when they fail), so a
    /// `return=minimal` insert the SELECT policy would hide — anon's analytics event — succeeds,
    /// as under PostgREST, which returns `1` for the same reason.
    private var returning: String { plan.wantsRepresentation ? "RETURNING *" : "RETURNING 1" }

    private func insert(_ objects: [[String: JSONValue]], _ columns: [String], _ conflict: RESTPlan.Conflict?) throws -> Statement {
        var builder = RESTStatementBuilder(table: table)
        let input = builder.bind(.text(JSONValue.array(objects.map(JSONValue.object)).jsonText), as: "json")
        let list = columns.map(SQLText.quoted).joined(separator: ", ")
        var insert =
            columns.isEmpty
            ? "INSERT INTO \(table.quotedName) SELECT FROM json_populate_recordset(NULL::\(table.quotedName), \(input)) \(returning)"
            : "INSERT INTO \(table.quotedName) (\(list)) SELECT \(list) FROM json_populate_recordset(NULL::\(table.quotedName), \(input))"
        if !columns.isEmpty {
            if let conflict {
                let target = try conflict.target.map { try builder.column($0).sql }.joined(separator: ", ")
                let updates = columns.filter { !conflict.target.contains($0) }
                    .map { "\(SQLText.quoted($0)) = EXCLUDED.\(SQLText.quoted($0))" }
                insert +=
                    conflict.ignoreDuplicates || updates.isEmpty
                    ? " ON CONFLICT (\(target)) DO NOTHING"
                    : " ON CONFLICT (\(target)) DO UPDATE SET " + updates.joined(separator: ", ")
            }
            insert += " " + returning
        }
        return Statement(try rowsFromWrite(&builder, cte: insert), builder.binds)
    }

    private func update(_ object: [String: JSONValue], _ columns: [String]) throws -> Statement {
        var builder = RESTStatementBuilder(table: table)
        let input = builder.bind(.text(JSONValue.object(object).jsonText), as: "json")
        let list = columns.map(SQLText.quoted).joined(separator: ", ")
        // A row-valued subquery rather than FROM: no second relation whose columns could make the
        // filter's column names ambiguous.
        let set =
            columns.count == 1
            ? "\(list) = (SELECT \(list) FROM json_populate_record(NULL::\(table.quotedName), \(input)))"
            : "(\(list)) = (SELECT \(list) FROM json_populate_record(NULL::\(table.quotedName), \(input)))"
        let filtered = try whereClause(&builder, .update)
        let condition = try limited(&builder, filtered, .update)
        let update = "UPDATE \(table.quotedName) SET \(set) WHERE \(condition) \(returning)"
        return Statement(try rowsFromWrite(&builder, cte: update), builder.binds)
    }

    private func delete() throws -> Statement {
        var builder = RESTStatementBuilder(table: table)
        let filtered = try whereClause(&builder, .delete)
        let condition = try limited(&builder, filtered, .delete)
        return Statement(try rowsFromWrite(&builder, cte: "DELETE FROM \(table.quotedName) WHERE \(condition) \(returning)"), builder.binds)
    }

    /// The write as a CTE named after the table, so a representation's embeds join its rows as
    /// they join the table's on a read (`"projects"."id"`); the embedded tables themselves, and
    /// their policies' subqueries (schema-qualified), read the statement's snapshot, as PostgREST's do.
    private func rowsFromWrite(_ builder: inout RESTStatementBuilder, cte: String) throws -> String {
        builder.embedding = plan.wantsRepresentation ? plan.embedding : nil
        let columns = plan.wantsRepresentation ? try builder.selectList(query.select) : "1"
        if plan.wantsRepresentation { try builder.requireEmbeddedOptionsUsed(query.embedded) }
        let rows = SQLText.quoted(table.name)
        let inner = builder.innerConditions.isEmpty ? "" : " WHERE " + builder.innerConditions.joined(separator: " AND ")
        let answer = aggregate(rows + builder.joins + inner, selectList: columns.isEmpty ? "1" : columns)
        let (lowest, highest) = plan.affectedBounds
        guard lowest != nil || highest != nil else { return "WITH \(rows) AS (\(cte)) " + answer }
        let low = builder.bind(lowest.map { .text(String($0)) } ?? .null, as: "bigint")
        let high = builder.bind(highest.map { .text(String($0)) } ?? .null, as: "bigint")
        return "WITH \(rows) AS (\(cte)) SELECT body, auth.check_affected(n, \(low), \(high)) AS n FROM (\(answer)) _pgw_answer"
    }

    /// `limit=`/`offset=` on PATCH and DELETE, as PostgREST's limited update and delete: the
    /// rows are picked by `order` among those the filters and policies match, in the same
    /// statement, so exactly that many (at most) change. Without `order` the choice would be
    /// arbitrary: refused (`PGRST109`), as PostgREST does.
    private func limited(_ builder: inout RESTStatementBuilder, _ condition: String, _ command: PolicyCommand) throws -> String {
        guard query.limit != nil || query.offset > 0 else { return condition }
        guard !query.order.isEmpty else {
            throw GatewayError(
                .badRequest, code: "PGRST109", "A 'limit' was applied without an explicit 'order'",
                hint: "Apply an 'order' using unique column(s)")
        }
        let inner = try whereClause(&builder, command)
        let order = try builder.orderBy(query.order)
        let paging = window(&builder, limit: query.limit, offset: query.offset)
        return "\(condition) AND ctid = ANY(ARRAY(SELECT ctid FROM \(table.quotedName) WHERE \(inner)\(order)\(paging)))"
    }

    /// After an update or delete, in the same transaction: how many rows the filter matches among
    /// those the caller may see, and one of them (scalar columns only) for the explanation.
    private func visibleRows() throws -> Statement {
        var builder = RESTStatementBuilder(table: table)
        let condition = try whereClause(&builder, .select)
        // The whole-row reference is the table's own name, which the policy predicate qualifies
        // its columns with; no alias, so the predicate applies unchanged.
        let row = SQLText.quoted(table.name)
        return Statement(
            """
            SELECT count(*) AS visible,
                   (array_agg((SELECT jsonb_object_agg(key, value) FROM jsonb_each(to_jsonb(\(row)))
                               WHERE jsonb_typeof(value) <> 'object')))[1]::text AS sample
            FROM \(table.quotedName) WHERE \(condition)
            """, builder.binds)
    }
}
