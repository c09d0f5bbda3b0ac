import Foundation
import Hummingbird
import HTTPTypes
import Policy
import Postgres

/// One REST request turned into statements, and their results turned into PostgREST's answer.
///
/// Every main statement yields one row: `body` (the JSON answer, built by Postgres with
/// `json_agg`) and `n` (rows affected or returned). A second statement, when present, counts:
/// the total for `Prefer: count=exact`, or — after a write that touched nothing — the rows the
/// caller can see, so a write hidden by policy is explained instead of answered with silence.
///
/// Write safeguards run inside the write statement, before anything is committed: a singular
/// `Accept` or `Prefer: handling=strict, max-affected=N` wraps the row count in
/// `auth.check_affected`, which raises (and so rolls the request back) when the count is out
/// of bounds; ``safeguardError(_:)`` turns that into PostgREST's answer. `Prefer: tx=rollback`
/// ends the pipeline with ``transactionEnd``.
struct RESTPlan {
    let command: PolicyCommand
    let table: TablePolicy
    let query: RESTQuery
    let caller: AuthenticatedRequest
    private(set) var statements: [Statement] = []
    /// The rows an insert writes, or the values an update sets, for explaining a rejection.
    private var written: [PolicyRow] = []
    /// Whether `resolution=` shaped the insert (it needs a column list).
    private var resolutionApplied = false
    /// What a read's or a representation's embedded resources need.
    private let embedding: RESTStatementBuilder.Embedding
    /// `Accept: …;nulls=stripped` (RESTRepresentation).
    private let stripNulls: Bool

    private static let rowAlias = "_pgw_row"

    init(
        command: PolicyCommand, table: TablePolicy, query: RESTQuery, body: [UInt8]?, caller: AuthenticatedRequest, policies: PolicySet,
        relationships: RelationshipCatalog = .empty,
        stripNulls: Bool = false
    ) throws {
        self.stripNulls = stripNulls
        self.command = command
        self.table = table
        self.query = query
        self.caller = caller
        let auth = caller.authContext
        self.embedding = RESTStatementBuilder.Embedding(policies: policies, auth: auth, catalog: relationships, options: query.embedded)
        do {
            switch command {
            case .select: try planSelect(policies, auth)
            case .insert: try planInsert(policies, auth, body: body ?? [])
            case .update: try planUpdate(policies, auth, body: body ?? [])
            case .delete: try planDelete(policies, auth)
            case .all: break
            }
        } catch let error as PolicyError {
            throw GatewayError(.badRequest, code: "PGRST100", "\(error)")
        }
    }

    // MARK: - Reads

    private mutating func planSelect(_ policies: PolicySet, _ auth: AuthContext) throws {
        var builder = RESTStatementBuilder(table: table)
        builder.embedding = embedding
        let columns = try builder.selectList(query.select)
        try builder.requireEmbeddedOptionsUsed(query.embedded)
        // Embedded resources are lateral joins after the table; `!inner` ones filter its rows.
        let condition = try whereClause(&builder, policies, .select, .using, auth)
            + builder.innerConditions.map { " AND " + $0 }.joined()
        let order = try builder.orderBy(query.order)
        var paging = ""
        if let limit = query.limit { paging += " LIMIT " + builder.bind(.text(String(limit)), as: "bigint") }
        if query.offset > 0 { paging += " OFFSET " + builder.bind(.text(String(query.offset)), as: "bigint") }
        statements.append(Statement(
            aggregate("SELECT \(columns) FROM \(table.quotedName)\(builder.joins) WHERE \(condition)\(order)\(paging)"),
            builder.binds))
        if query.preferences.count != nil {
            var counter = RESTStatementBuilder(table: table)
            var joins = ""
            var inner = ""
            if !builder.innerConditions.isEmpty {
                counter.embedding = embedding
                _ = try counter.selectList(query.select)
                joins = counter.joins
                inner = counter.innerConditions.map { " AND " + $0 }.joined()
            }
            let condition = try whereClause(&counter, policies, .select, .using, auth) + inner
            statements += RESTRepresentation.countStatements(
                query.preferences.count, from: table.quotedName + joins, condition: condition, binds: counter.binds)
        }
    }

    /// The request's filters AND the policy predicate for `command`/`clause`.
    private func whereClause(
        _ builder: inout RESTStatementBuilder, _ policies: PolicySet, _ command: PolicyCommand, _ clause: PolicyClause,
        _ auth: AuthContext
    ) throws -> String {
        let policy = try builder.policy(policies, command, clause, auth: auth)
        guard let filter = query.filter else { return policy }
        return "\(policy) AND \(try builder.filter(filter))"
    }

    /// Wraps a row source so Postgres returns the JSON answer and the row count in one row.
    private func aggregate(_ source: String, selectList: String? = nil) -> String {
        // CSV for reads; a write's representation stays JSON.
        let format = command == .select ? query.format : (query.singular ? .singleObject : .json)
        let json = RESTRepresentation.body(
            format: format, names: RESTStatementBuilder.outputNames(query.select, of: table, embedding.policies), stripNulls: stripNulls)
        let inner = selectList.map { "SELECT \($0) FROM \(source)" } ?? source
        return "SELECT (\(json))::text AS body, count(*) AS n FROM (\(inner)) \(Self.rowAlias)"
    }

    // MARK: - Writes

    /// The JSON body as objects, with every key a column of the table. The tenant column may be
    /// present only with the caller's own tenant; it is never written from the body.
    private func objects(_ body: [UInt8], allowArray: Bool) throws -> [[String: JSONValue]] {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(body))
        } catch {
            throw GatewayError(.badRequest, code: "PGRST102", "Empty or invalid json")
        }

        let objects: [[String: JSONValue]]
        switch value {
        case .object(let object): objects = [object]
        case .array(let items) where allowArray:
            objects = try items.map { item in
                guard case .object(let object) = item else {
                    throw GatewayError(.badRequest, code: "PGRST102", "All object keys must match", details: "every element must be a JSON object")
                }
                return object
            }
        default:
            throw GatewayError(.badRequest, code: "PGRST102", "Empty or invalid json", details: allowArray ? "expected a JSON object or an array of objects" : "expected a JSON object")
        }
        let tenant = caller.tenantID.lowercasedString
        for object in objects {
            for key in object.keys where table.restColumn(named: key) == nil {
                throw GatewayError(
                    .badRequest, code: "PGRST204", "Could not find the '\(key)' column of '\(table.name)' in the schema cache")
            }
            if let value = object[table.tenantColumn], value.stringValue?.lowercased() != tenant {
                throw GatewayError(
                    .forbidden, code: "42501", "\(table.tenantColumn) is set from the caller's tenant and cannot name another",
                    hint: "leave \(table.tenantColumn) out of the body")
            }
        }
        return objects
    }

    /// The columns written: `columns=` when given, else every key in order of first appearance.
    private func writtenColumns(_ objects: [[String: JSONValue]]) throws -> [String] {
        var columns: [String] = []
        if let requested = query.columns {
            for column in requested where table.restColumn(named: column) == nil {
                throw GatewayError(.badRequest, code: "PGRST204", "Could not find the '\(column)' column of '\(table.name)' in the schema cache")
            }
            columns = requested
        } else {
            var seen = Set<String>()
            for object in objects {
                for key in object.keys.sorted() where seen.insert(key).inserted { columns.append(key) }
            }
        }
        return columns.filter { $0 != table.tenantColumn }
    }

    private func jsonText(_ objects: [[String: JSONValue]], asArray: Bool) -> String {
        asArray ? JSONValue.array(objects.map(JSONValue.object)).jsonText : JSONValue.object(objects[0]).jsonText
    }

    private var wantsRepresentation: Bool { query.preferences.returning == .representation }

    /// `RETURNING *` only when the rows are answered: a RETURNING that reads columns makes
    /// Postgres check the SELECT policies on the written rows (an error when they fail), so a
    /// `return=minimal` insert the SELECT policy would hide — anon's analytics event — succeeds,
    /// as under PostgREST, which returns `1` for the same reason.
    private var returning: String { wantsRepresentation ? "RETURNING *" : "RETURNING 1" }

    /// The write as a CTE named after the table, so a representation's embeds join its rows as
    /// they join the table's on a read (`"projects"."id"`); the embedded tables themselves, and
    /// their policies' subqueries (schema-qualified), read the statement's snapshot, as PostgREST's do.
    private func rowsFromWrite(_ builder: inout RESTStatementBuilder, cte: String) throws -> String {
        builder.embedding = wantsRepresentation ? embedding : nil
        let columns = wantsRepresentation ? try builder.selectList(query.select) : "1"
        if wantsRepresentation { try builder.requireEmbeddedOptionsUsed(query.embedded) }
        let rows = SQLText.quoted(table.name)
        let inner = builder.innerConditions.isEmpty ? "" : " WHERE " + builder.innerConditions.joined(separator: " AND ")
        let answer = aggregate(rows + builder.joins + inner, selectList: columns.isEmpty ? "1" : columns)
        let (lowest, highest) = affectedBounds
        guard lowest != nil || highest != nil else { return "WITH \(rows) AS (\(cte)) " + answer }
        let low = builder.bind(lowest.map { .text(String($0)) } ?? .null, as: "bigint")
        let high = builder.bind(highest.map { .text(String($0)) } ?? .null, as: "bigint")
        return "WITH \(rows) AS (\(cte)) SELECT body, auth.check_affected(n, \(low), \(high)) AS n FROM (\(answer)) _pgw_answer"
    }

    /// How many rows this write may affect before it is rolled back: exactly one for a singular
    /// insert; at most one for a singular update or delete (none is the hidden-write answer,
    /// after the fact: nothing changed); at most `max-affected` with `handling=strict`.
    private var affectedBounds: (lowest: Int?, highest: Int?) {
        var lowest: Int?, highest: Int?
        if query.singular {
            highest = 1
            if command == .insert { lowest = 1 }
        }
        if command == .update || command == .delete, query.preferences.handling == .strict,
           let maximum = query.preferences.maxAffected {
            highest = min(highest ?? maximum, maximum)
        }
        return (lowest, highest)
    }

    /// `limit=`/`offset=` on PATCH and DELETE, as PostgREST's limited update and delete: the
    /// rows are picked by `order` among those the filters and policies match, in the same
    /// statement, so exactly that many (at most) change. Without `order` the choice would be
    /// arbitrary: refused (`PGRST109`), as PostgREST does.
    private func limited(
        _ builder: inout RESTStatementBuilder, _ condition: String, _ policies: PolicySet, _ command: PolicyCommand, _ auth: AuthContext
    ) throws -> String {
        guard query.limit != nil || query.offset > 0 else { return condition }
        guard !query.order.isEmpty else {
            throw GatewayError(
                .badRequest, code: "PGRST109", "A 'limit' was applied without an explicit 'order'",
                hint: "Apply an 'order' using unique column(s)")
        }
        let inner = try whereClause(&builder, policies, command, .using, auth)
        let order = try builder.orderBy(query.order)
        var paging = ""
        if let limit = query.limit { paging += " LIMIT " + builder.bind(.text(String(limit)), as: "bigint") }
        if query.offset > 0 { paging += " OFFSET " + builder.bind(.text(String(query.offset)), as: "bigint") }
        return "\(condition) AND ctid = ANY(ARRAY(SELECT ctid FROM \(table.quotedName) WHERE \(inner)\(order)\(paging)))"
    }

    /// Statements that end the request's transaction after its own: `Prefer: tx=rollback` runs
    /// everything, reads the results and rolls back (a ROLLBACK inside the pipeline's implicit
    /// transaction; its "no transaction in progress" warning is silenced). Empty for commit.
    var transactionEnd: [Statement] {
        guard query.preferences.transaction == .rollback else { return [] }
        return [Statement("SELECT set_config('client_min_messages', 'error', true)"), Statement("ROLLBACK")]
    }

    /// The write safeguard's refusal (SQLSTATE `PGW24` from `auth.check_affected`, with the row
    /// count as its detail) as PostgREST answers it; the transaction was rolled back.
    func safeguardError(_ error: PostgresError) -> GatewayError? {
        guard error.sqlState == "PGW24", let affected = error.detail.flatMap({ Int($0) }) else { return nil }
        if query.singular, command == .insert ? affected != 1 : affected > 1 {
            return GatewayError(
                .notAcceptable, code: "PGRST116", "JSON object requested, multiple (or no) rows returned",
                details: "The result contains \(affected) rows")
        }
        return GatewayError(
            .badRequest, code: "PGRST124", "Query result exceeds max-affected preference constraint",
            details: "The query affects \(affected) rows")
    }

    /// The preferences this request honours, for `Preference-Applied`: `resolution=` on an
    /// insert with columns; `missing=null` (what an insert does) but not `missing=default`
    /// (not implemented); `return=` on writes, except `headers-only` (no `Location`);
    /// `count=exact` on reads; `max-affected=` on PATCH and DELETE with `handling=strict`.
    var appliedPreferences: RESTQuery.Preferences {
        var applied = query.preferences
        if !resolutionApplied { applied.resolution = nil }
        if command != .insert || applied.missing != .null { applied.missing = nil }
        if command == .select || applied.returning == .headersOnly { applied.returning = nil }
        if command != .select { applied.count = nil }
        if command != .update && command != .delete { applied.maxAffected = nil }
        return applied
    }

    private mutating func planInsert(_ policies: PolicySet, _ auth: AuthContext, body: [UInt8]) throws {
        let objects = try objects(body, allowArray: true)
        let columns = try writtenColumns(objects)
        var builder = RESTStatementBuilder(table: table)
        let input = builder.bind(.text(jsonText(objects, asArray: true)), as: "json")
        let list = columns.map(SQLText.quoted).joined(separator: ", ")
        var insert = columns.isEmpty
            ? "INSERT INTO \(table.quotedName) SELECT FROM json_populate_recordset(NULL::\(table.quotedName), \(input)) \(returning)"
            : "INSERT INTO \(table.quotedName) (\(list)) SELECT \(list) FROM json_populate_recordset(NULL::\(table.quotedName), \(input))"
        if !columns.isEmpty {
            if let resolution = query.preferences.resolution {
                var target = query.onConflict
                if target.isEmpty, table.column(named: "id") != nil { target = ["id"] }
                guard !target.isEmpty else {
                    throw GatewayError(.badRequest, code: "PGRST100", "resolution needs on_conflict=<columns>")
                }
                // Keys unique per tenant (e.g. profiles' (tenant_id, id)): the row's tenant is the
                // caller's, so a target without the tenant column means the index with it.
                if !target.contains(table.tenantColumn), !table.indexes.contains(target),
                   table.indexes.contains([table.tenantColumn] + target) {
                    target = [table.tenantColumn] + target
                }
                resolutionApplied = true
                let conflict = try target.map { try builder.column($0).sql }.joined(separator: ", ")
                if resolution == .ignoreDuplicates {
                    insert += " ON CONFLICT (\(conflict)) DO NOTHING"
                } else {
                    let updates = columns.filter { !target.contains($0) }
                        .map { "\(SQLText.quoted($0)) = EXCLUDED.\(SQLText.quoted($0))" }
                    insert += updates.isEmpty ? " ON CONFLICT (\(conflict)) DO NOTHING" : " ON CONFLICT (\(conflict)) DO UPDATE SET " + updates.joined(separator: ", ")
                }
            }
            insert += " " + returning
        }
        statements.append(Statement(try rowsFromWrite(&builder, cte: insert), builder.binds))
        written = objects.map { object in
            var row = object.mapValues(\.policyValue)
            row[table.tenantColumn] = .text(caller.tenantID.lowercasedString)
            return row
        }
    }

    private mutating func planUpdate(_ policies: PolicySet, _ auth: AuthContext, body: [UInt8]) throws {
        let object = try objects(body, allowArray: false)[0]
        let columns = try writtenColumns([object])
        guard !columns.isEmpty else {
            throw GatewayError(.badRequest, code: "PGRST102", "the PATCH body sets no column")
        }
        var builder = RESTStatementBuilder(table: table)
        let input = builder.bind(.text(JSONValue.object(object).jsonText), as: "json")
        let list = columns.map(SQLText.quoted).joined(separator: ", ")
        // A row-valued subquery rather than FROM: no second relation whose columns could make the
        // filter's column names ambiguous.
        let set = columns.count == 1
            ? "\(list) = (SELECT \(list) FROM json_populate_record(NULL::\(table.quotedName), \(input)))"
            : "(\(list)) = (SELECT \(list) FROM json_populate_record(NULL::\(table.quotedName), \(input)))"
        let filtered = try whereClause(&builder, policies, .update, .using, auth)
        let condition = try limited(&builder, filtered, policies, .update, auth)
        let update = "UPDATE \(table.quotedName) SET \(set) WHERE \(condition) \(returning)"
        statements.append(Statement(try rowsFromWrite(&builder, cte: update), builder.binds))
        try appendVisibleRows(policies, auth)
        written = [object.mapValues(\.policyValue)]
    }

    private mutating func planDelete(_ policies: PolicySet, _ auth: AuthContext) throws {
        var builder = RESTStatementBuilder(table: table)
        let filtered = try whereClause(&builder, policies, .delete, .using, auth)
        let condition = try limited(&builder, filtered, policies, .delete, auth)
        statements.append(Statement(
            try rowsFromWrite(&builder, cte: "DELETE FROM \(table.quotedName) WHERE \(condition) \(returning)"), builder.binds))
        try appendVisibleRows(policies, auth)
    }

    /// After the write, in the same transaction: how many rows the filter matches among those the
    /// caller may see, and one of them (scalar columns only) for the explanation.
    private mutating func appendVisibleRows(_ policies: PolicySet, _ auth: AuthContext) throws {
        var builder = RESTStatementBuilder(table: table)
        let condition = try whereClause(&builder, policies, .select, .using, auth)
        // The whole-row reference is the table's own name, which the policy predicate qualifies
        // its columns with; no alias, so the predicate applies unchanged.
        let row = SQLText.quoted(table.name)
        statements.append(Statement("""
            SELECT count(*) AS visible,
                   (array_agg((SELECT jsonb_object_agg(key, value) FROM jsonb_each(to_jsonb(\(row)))
                               WHERE jsonb_typeof(value) <> 'object')))[1]::text AS sample
            FROM \(table.quotedName) WHERE \(condition)
            """, builder.binds))
    }

    // MARK: - Answers

    func response(results: [QueryResult], policies: PolicySet, isHead: Bool) throws -> Response {
        guard let row = results.first?.first else {
            throw GatewayError(.internalServerError, code: "PGW500", "the database returned no result")
        }
        let body = try row.decodeIfPresent("body", as: String.self) ?? (query.singular ? "null" : "[]")
        let count: Int = try row.decode("n")
        var headers = HTTPFields()
        if let applied = appliedPreferences.appliedHeaderValue { headers[.preferenceApplied] = applied }

        if command == .update || command == .delete, count == 0, let refused = hiddenWriteError(results: results, policies: policies) {
            throw refused
        }
        // Writes were checked before commit (affectedBounds); this is for reads.
        if query.singular, count != 1, command == .select {
            throw GatewayError(
                .notAcceptable, code: "PGRST116", "JSON object requested, multiple (or no) rows returned",
                details: "The result contains \(count) rows")
        }

        switch command {
        case .select:
            var status: HTTPResponse.Status = .ok
            var total = "*"
            if let counted = try RESTRepresentation.total(results.dropFirst(), count: query.preferences.count) {
                total = String(counted)
                if count < counted { status = .partialContent }
            }
            headers[.contentRange] = count == 0 ? "*/\(total)" : "\(query.offset)-\(query.offset + count - 1)/\(total)"
            var response = Self.json(status, body: isHead ? nil : body, headers: headers, singular: query.singular)
            response.headers[.contentType] = RESTRepresentation.contentType(query.format, stripNulls: stripNulls)
            return response
        case .insert:
            headers[.contentRange] = "*/*"
            return Self.json(.created, body: wantsRepresentation ? body : nil, headers: headers, singular: query.singular)
        default:
            // PostgREST: an update or delete that matched nothing is `*/*` with `[]` or 204 (and
            // 406 for a singular one, as for a read).
            if query.singular, count == 0 {
                throw GatewayError(
                    .notAcceptable, code: "PGRST116", "JSON object requested, multiple (or no) rows returned",
                    details: "The result contains 0 rows")
            }
            headers[.contentRange] = count == 0 ? "*/*" : "0-\(count - 1)/*"
            return wantsRepresentation
                ? Self.json(.ok, body: body, headers: headers, singular: query.singular)
                : Response(status: .noContent, headers: headers)
        }
    }

    /// A write that touched no row: nil when nothing matches among the rows the caller can see
    /// (PostgREST's empty success: rows the policies hide are no match), or 403 naming the
    /// command's policy when rows the caller can see match but none may be changed — where
    /// PostgREST answers an empty success that looks like a missing row.
    private func hiddenWriteError(results: [QueryResult], policies: PolicySet) -> GatewayError? {
        let verb = command == .update ? "update" : "delete"
        guard results.count > 1, let visibleRow = results[1].first,
              let visible = try? visibleRow.decode("visible", as: Int.self), visible > 0
        else { return nil }
        var error = GatewayError(
            caller.role == .anon ? .unauthorized : .forbidden, code: "42501",  // anon: 401, as PostgREST answers anon's 42501
            "\(visible) row(s) of \(table.name) match but no \(verb) policy allows this caller to \(verb) them",
            details: "nothing was \(verb)d")
        if let sample = try? visibleRow.decodeIfPresent("sample", as: String.self),
           let existing = try? JSONDecoder().decode(PolicyRow.self, from: Data(sample.utf8)) {
            let new = command == .update ? existing.merging(written.first ?? [:]) { $1 } : nil
            if let explanation = try? policies.explain(command, on: table.name, auth: caller.authContext, existing: existing, new: new) {
                error.details = explanation.description
                error.message = "\(verb) of \(table.name) denied by row-level security: " + explanation.reason
                error.policy = explanation.decidingPolicy
            }
        }
        return error
    }

    /// After the database refused a write (42501): which row and which policy, from the evaluator.
    /// An insert's rows are all known; an update's old rows are not (the statement was rolled
    /// back), so its answer names the update policies whose WITH CHECK the new row must pass.
    func explainRejection(policies: PolicySet) -> GatewayError? {
        let status: HTTPResponse.Status = caller.role == .anon ? .unauthorized : .forbidden
        switch command {
        case .insert:
            for row in written {
                if let explanation = try? policies.explain(.insert, on: table.name, auth: caller.authContext, new: row, returning: wantsRepresentation),
                   explanation.decision != .allowed {
                    var error = GatewayError(
                        status, code: "42501", "new row violates row-level security policy for table \"\(table.name)\": " + explanation.reason,
                        details: explanation.description)
                    error.policy = explanation.decidingPolicy
                    if explanation.checks.first(where: { !$0.passed })?.policies == .select {
                        // The insert policy admits the row; reading it back is what fails.
                        error.hint = "the insert policy admits the row but no select policy lets role \(caller.role.rawValue) read it back; send Prefer: return=minimal"
                    }
                    return error
                }
            }
        case .update:
            let names = table.policies.filter { ($0.command == .update || $0.command == .all) && $0.applies(to: caller.role.rawValue) }.map(\.name)
            var error = GatewayError(
                status, code: "42501", "updated row violates row-level security policy for table \"\(table.name)\"",
                details: names.isEmpty
                    ? "no update policy applies to role \(caller.role.rawValue)"
                    : "the new row must pass WITH CHECK of: " + names.map { "\"\($0)\"" }.joined(separator: ", "))
            error.policy = names.isEmpty ? nil : names.joined(separator: ", ")
            return error
        default:
            break
        }
        return GatewayError(
            status, code: "42501", "new row violates row-level security policy for table \"\(table.name)\"",
            hint: "privacyctl policy explain --table \(table.name) --command \(command.rawValue) shows which policy decides")
    }

    static func json(_ status: HTTPResponse.Status, body: String?, headers: HTTPFields, singular: Bool) -> Response {
        var headers = headers
        headers[.contentType] = singular ? "application/vnd.pgrst.object+json; charset=utf-8" : "application/json; charset=utf-8"
        guard let body else { return Response(status: status, headers: headers) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
