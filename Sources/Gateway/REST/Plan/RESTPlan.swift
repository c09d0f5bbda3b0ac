import Foundation
import HTTPTypes
import Hummingbird
import JSON
import Policy
import Postgres
import Tenancy

/// One REST request, decided: what it does (``Operation``: a read, or a write with its checked
/// rows and columns, conflict target and affected-row bounds), and how its results become
/// PostgREST's answer. No SQL is written here: ``RESTRenderer`` renders ``statements`` from this
/// plan (and ``RESTStatementBuilder`` its clauses) — the grammar (module RESTGrammar), the plan
/// and the renderer are the three steps, as in PostgREST.
///
/// Every main statement yields one row: `body` (the JSON answer, built by Postgres with
/// `json_agg`) and `n` (rows affected or returned). A second statement, when present, counts:
/// the total for `Prefer: count=exact`, or — after a write that touched nothing — the rows the
/// caller can see, so a write hidden by policy is explained instead of answered with silence.
///
/// Write safeguards run inside the write statement, before anything is committed: a singular
/// `Accept` or `Prefer: handling=strict, max-affected=N` bounds the row count (``affectedBounds``),
/// which the statement checks with `auth.check_affected` and so rolls the request back when out
/// of bounds; ``safeguardError(_:)`` turns that into PostgREST's answer. `Prefer: tx=rollback`
/// ends the pipeline with ``transactionEnd``.
struct RESTPlan {
    /// What the request does, as data.
    enum Operation {
        case read
        /// Objects of the body (checked: keys are columns, the tenant is the caller's), the
        /// columns written, and the conflict handling of `resolution=`.
        case insert(objects: [[String: JSONValue]], columns: [String], conflict: Conflict?)
        case update(object: [String: JSONValue], columns: [String])
        case delete
    }

    /// `resolution=` with its target columns (`on_conflict=`, else `id`, widened to the tenant's
    /// unique key when only that one exists).
    struct Conflict {
        let target: [String]
        let ignoreDuplicates: Bool
    }

    let command: PolicyCommand
    let table: TablePolicy
    let query: RESTQuery
    let caller: AuthenticatedRequest
    let policies: PolicySet
    private(set) var operation: Operation = .read
    /// Rendered from the plan by ``RESTRenderer``.
    private(set) var statements: [Statement] = []
    /// The rows an insert writes, or the values an update sets, for explaining a rejection.
    private var written: [PolicyRow] = []
    /// What a read's or a representation's embedded resources need.
    let embedding: RESTStatementBuilder.Embedding
    /// `Accept: …;nulls=stripped` (RESTRepresentation).
    let stripNulls: Bool

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
        self.policies = policies
        self.embedding = RESTStatementBuilder.Embedding(
            policies: policies, auth: caller.authContext, catalog: relationships, options: query.embedded)
        do {
            switch command {
            case .select, .all: operation = .read
            case .insert: try planInsert(body: body ?? [])
            case .update: try planUpdate(body: body ?? [])
            case .delete: operation = .delete
            }
            statements = try RESTRenderer(plan: self).statements()
        } catch let error as PolicyError {
            throw GatewayError(.badRequest, code: "PGRST100", "\(error)")
        }
    }

    /// Whether filters test embedded resources (`or=(…,rel.col.eq.x)`, `rel=not.is.null`): then a
    /// count reads the same embeds.
    static func mentionsEmbeds(_ tree: RESTQuery.FilterTree, of table: TablePolicy) -> Bool {
        switch tree {
        case .condition(let condition): !condition.path.isEmpty || table.restColumn(named: condition.field.column) == nil
        case .not(let inner): mentionsEmbeds(inner, of: table)
        case .and(let terms), .or(let terms): terms.contains { mentionsEmbeds($0, of: table) }
        }
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
                    throw GatewayError(
                        .badRequest, code: "PGRST102", "All object keys must match", details: "every element must be a JSON object")
                }
                return object
            }
        default:
            throw GatewayError(
                .badRequest, code: "PGRST102", "Empty or invalid json",
                details: allowArray ? "expected a JSON object or an array of objects" : "expected a JSON object")
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
                throw GatewayError(
                    .badRequest, code: "PGRST204", "Could not find the '\(column)' column of '\(table.name)' in the schema cache")
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

    var wantsRepresentation: Bool { query.preferences.returning == .representation }

    /// How many rows this write may affect before it is rolled back: exactly one for a singular
    /// insert; at most one for a singular update or delete (none is the hidden-write answer,
    /// after the fact: nothing changed); at most `max-affected` with `handling=strict`.
    var affectedBounds: (lowest: Int?, highest: Int?) {
        var lowest: Int?, highest: Int?
        if query.singular {
            highest = 1
            if command == .insert { lowest = 1 }
        }
        if command == .update || command == .delete, query.preferences.handling == .strict,
            let maximum = query.preferences.maxAffected
        {
            highest = min(highest ?? maximum, maximum)
        }
        return (lowest, highest)
    }

    /// Statements that end the request's transaction after its own: `Prefer: tx=rollback` runs
    /// everything, reads the results and rolls back (a ROLLBACK inside the pipeline's implicit
    /// transaction; its "no transaction in progress" warning is silenced). Empty for commit.
    var transactionEnd: [Statement] {
        query.preferences.transaction == .rollback ? RESTRenderer.rollback : []
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
        if case .insert(_, _, let conflict) = operation, conflict != nil {} else { applied.resolution = nil }
        if command != .insert || applied.missing != .null { applied.missing = nil }
        if command == .select || applied.returning == .headersOnly { applied.returning = nil }
        if command != .select { applied.count = nil }
        if command != .update && command != .delete { applied.maxAffected = nil }
        return applied
    }

    private mutating func planInsert(body: [UInt8]) throws {
        let objects = try objects(body, allowArray: true)
        let columns = try writtenColumns(objects)
        var conflict: Conflict?
        if !columns.isEmpty, let resolution = query.preferences.resolution {
            var target = query.onConflict
            if target.isEmpty, table.column(named: "id") != nil { target = ["id"] }
            guard !target.isEmpty else {
                throw GatewayError(.badRequest, code: "PGRST100", "resolution needs on_conflict=<columns>")
            }
            for column in target where table.restColumn(named: column) == nil {
                throw GatewayError(
                    .badRequest, code: "42703", "column \(table.name).\(column) does not exist",
                    hint: "columns of \(table.name): \(table.restColumns.map(\.name).joined(separator: ", "))")
            }
            // Keys unique per tenant (e.g. profiles' (tenant_id, id)): the row's tenant is the
            // caller's, so a target without the tenant column means the index with it.
            if !target.contains(table.tenantColumn), !table.indexes.contains(target),
                table.indexes.contains([table.tenantColumn] + target)
            {
                target = [table.tenantColumn] + target
            }
            conflict = Conflict(target: target, ignoreDuplicates: resolution == .ignoreDuplicates)
        }
        operation = .insert(objects: objects, columns: columns, conflict: conflict)
        written = objects.map { object in
            var row = object.mapValues(\.policyValue)
            row[table.tenantColumn] = .text(caller.tenantID.lowercasedString)
            return row
        }
    }

    private mutating func planUpdate(body: [UInt8]) throws {
        let object = try objects(body, allowArray: false)[0]
        let columns = try writtenColumns([object])
        guard !columns.isEmpty else {
            throw GatewayError(.badRequest, code: "PGRST102", "the PATCH body sets no column")
        }
        operation = .update(object: object, columns: columns)
        written = [object.mapValues(\.policyValue)]
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
            let existing = try? JSONDecoder().decode(PolicyRow.self, from: Data(sample.utf8))
        {
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
                if let explanation = try? policies.explain(
                    .insert, on: table.name, auth: caller.authContext, new: row, returning: wantsRepresentation),
                    explanation.decision != .allowed
                {
                    var error = GatewayError(
                        status, code: "42501",
                        "new row violates row-level security policy for table \"\(table.name)\": " + explanation.reason,
                        details: explanation.description)
                    error.policy = explanation.decidingPolicy
                    if explanation.checks.first(where: { !$0.passed })?.policies == .select {
                        // The insert policy admits the row; reading it back is what fails.
                        error.hint =
                            "the insert policy admits the row but no select policy lets role \(caller.role.rawValue) read it back; send Prefer: return=minimal"
                    }
                    return error
                }
            }
        case .update:
            let names = table.policies.filter { ($0.command == .update || $0.command == .all) && $0.applies(to: caller.role.rawValue) }.map(
                \.name)
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
