import Foundation
import HTTPTypes
import Hummingbird
import JSON
import Policy
import Postgres
import Tenancy

/// A read of rows from something that is not a governed table (a function's result, a view),
/// with the REST grammar's select, filters, order, paging, count, singular answer and
/// representations (RESTRepresentation), rendered by ``RESTStatementBuilder`` against the
/// relation's declared columns.
struct RelationRead {
    let statements: [Statement]
    let query: RESTQuery
    let rows: Bool
    let stripNulls: Bool

    /// `source` names the FROM item (binding its own parameters) and an optional condition.
    init(
        shape: TablePolicy, query: RESTQuery, stripNulls: Bool,
        source: (inout RESTStatementBuilder) throws -> (from: String, condition: String?)
    ) throws {
        self.query = query
        self.rows = true
        self.stripNulls = stripNulls
        func conditions(_ builder: inout RESTStatementBuilder, _ own: String?) throws -> String {
            var terms = own.map { [$0] } ?? []
            if let filter = query.filter { terms.append(try builder.filter(filter)) }
            return terms.joined(separator: " AND ")
        }
        var builder = RESTStatementBuilder(table: shape)
        let (from, condition) = try source(&builder)
        let columns = try builder.selectList(query.select)
        let filtered = try conditions(&builder, condition)
        let order = try builder.orderBy(query.order)
        var paging = ""
        if let limit = query.limit { paging += " LIMIT " + builder.bind(.text(String(limit)), as: "bigint") }
        if query.offset > 0 { paging += " OFFSET " + builder.bind(.text(String(query.offset)), as: "bigint") }
        let inner = "SELECT \(columns) FROM \(from)\(filtered.isEmpty ? "" : " WHERE " + filtered)\(order)\(paging)"
        let body = RESTRepresentation.body(
            format: query.format, names: RESTRepresentation.outputNames(query.select, relation: shape), stripNulls: stripNulls)
        var statements = [Statement("SELECT (\(body))::text AS body, count(*) AS n FROM (\(inner)) _pgw_row", builder.binds)]
        if query.preferences.count != nil {
            var counter = RESTStatementBuilder(table: shape)
            let (from, condition) = try source(&counter)
            let filtered = try conditions(&counter, condition)
            statements += RESTRepresentation.countStatements(query.preferences.count, from: from, condition: filtered, binds: counter.binds)
        }
        self.statements = statements
    }

    /// A single value: the function call's result as `body` (JSON text), and `n`.
    init(scalarCall call: String, binds: [PostgresBind], query: RESTQuery) {
        self.statements = [Statement("SELECT to_json(\(call))::text AS body, 1::bigint AS n", binds)]
        self.query = query
        self.rows = false
        self.stripNulls = false
    }

    func response(_ results: [QueryResult], isHead: Bool) throws -> Response {
        guard let row = results.first?.first else {
            throw GatewayError(.internalServerError, code: "PGW500", "the database returned no result")
        }
        let count: Int = try row.decode("n")
        let body = try row.decodeIfPresent("body", as: String.self) ?? (query.singular || !rows ? "null" : "[]")
        var headers = HTTPFields()
        guard rows else {
            return RESTPlan.json(.ok, body: isHead ? nil : body, headers: headers, singular: false)
        }
        if query.singular, count != 1 {
            throw GatewayError(
                .notAcceptable, code: "PGRST116", "JSON object requested, multiple (or no) rows returned",
                details: "The result contains \(count) rows")
        }
        var status: HTTPResponse.Status = .ok
        var total = "*"
        if let counted = try RESTRepresentation.total(results.dropFirst(), count: query.preferences.count) {
            total = String(counted)
            if count < counted { status = .partialContent }
        }
        if let count = query.preferences.count { headers[.preferenceApplied] = count.rawValue }
        headers[.contentRange] = count == 0 ? "*/\(total)" : "\(query.offset)-\(query.offset + count - 1)/\(total)"
        var response = RESTPlan.json(status, body: isHead ? nil : body, headers: headers, singular: query.singular)
        response.headers[.contentType] = RESTRepresentation.contentType(query.format, stripNulls: stripNulls)
        return response
    }
}

extension RelationRead {
    /// A stable or immutable function runs in a read-only transaction, whatever it does.
    static let readOnly = Statement("SELECT set_config('transaction_read_only', 'on', true)")

    /// `"column" = $n::type`.
    static func equals(_ column: String, _ value: String, as type: String, builder: inout RESTStatementBuilder) -> String {
        "\(SQLText.quoted(column)) = \(builder.bind(.text(value), as: type))"
    }

    /// `public.fn(a => (SELECT a FROM json_to_record($1) …), …)`: every argument the caller gave,
    /// by name, typed by the declaration. One JSON bind carries them all; Postgres converts each
    /// value with its type's input function (a JSON array into an array, an object into jsonb).
    static func call(_ function: FunctionDeclaration, arguments: [String: JSONValue], builder: inout RESTStatementBuilder) -> String {
        let given = function.arguments.filter { arguments[$0.name] != nil }
        guard !given.isEmpty else { return "\(function.quotedName)()" }
        let input = builder.bind(.text(JSONValue.object(arguments).jsonText), as: "json")
        let named = given.map { argument in
            let column = SQLText.quoted(argument.name)
            return "\(column) => (SELECT \(column) FROM json_to_record(\(input)) AS _pgw_args(\(column) \(argument.type.canonical)))"
        }
        return "\(function.quotedName)(" + named.joined(separator: ", ") + ")"
    }

}
