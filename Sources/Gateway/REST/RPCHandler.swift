import Foundation
import Audit
import Hummingbird
import HTTPTypes
import Policy
import Postgres

/// `/rest/v1/rpc/{fn}` and `/rest/v1/{view}`: the functions and views the policy files declare
/// (`functions:`, `views:`), and nothing else.
///
/// Like a table request, each call is one pipeline: the request's settings (role, claims, tenant,
/// the key's revocation check) and one statement, so the function runs under the caller's role
/// with RLS, in the caller's tenant. A function declared stable or immutable runs in a read-only
/// transaction whatever it does, so a declaration that lies about volatility cannot write. A
/// function returning rows, and a view, take `select`, filters, `order`, `limit`/`offset`,
/// `count=exact` and a singular `Accept` like a table.
struct RPCHandler: Sendable {
    let pool: ConnectionPool
    let policies: PolicySet
    let authenticator: RequestAuthenticator
    let audit: AuditAppender
    let metrics: GatewayMetrics
    let limits: GatewayLimits
    let limiter: TenantLimiter

    // MARK: - Functions

    func handle(_ request: Request, function name: String, facts: RequestFacts) async throws -> Response {
        let caller = try await authenticator.authenticate(
            apikey: request.headers[.apikey], authorization: request.headers[.authorization], checksRevocation: false)
        facts.tenantID = caller.tenantID
        let readOnlyMethod = request.method == .get || request.method == .head
        guard readOnlyMethod || request.method == .post else {
            throw GatewayError(.methodNotAllowed, code: "PGRST117", "Unsupported HTTP method: \(request.method.rawValue)")
        }
        guard let function = policies.function(named: name) else {
            throw Self.functionNotFound("public.\(name)", hint: "functions served: " + policies.functions.map(\.name).joined(separator: ", "))
        }
        try caller.require(function.volatility == .volatile ? .dataWrite : .dataRead)
        if readOnlyMethod, function.volatility == .volatile {
            throw GatewayError(
                .methodNotAllowed, code: "PGRST101", "Cannot use the \(request.method.rawValue) method on RPC for a volatile function",
                details: "\(function.qualifiedName) is declared volatile", hint: "call it with POST")
        }
        guard function.allows(role: caller.role.rawValue) else {
            let denial = Self.permissionDenied(
                "function \(function.name)", role: caller.role,
                details: "\(function.qualifiedName) is declared for roles: \(function.roles.joined(separator: ", "))")
            try await recordDenial(denial, caller: caller, target: function.qualifiedName, facts: facts)
            throw denial
        }

        // Arguments: a GET's query parameters named like arguments, or a POST's JSON object.
        var arguments: [String: JSONValue] = [:]
        var rest = request.uri.query ?? ""
        if readOnlyMethod {
            (arguments, rest) = try Self.splitArguments(rest, of: function)
        } else {
            let body = try await RESTHandler.readBody(request, limit: limits.maximumBodyBytes)
            if !body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                guard case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: Data(body)) else {
                    throw GatewayError(.badRequest, code: "PGRST102", "Empty or invalid json", details: "expected a JSON object of named arguments")
                }
                arguments = object
            }
        }
        let unknown = arguments.keys.filter { function.argument(named: $0) == nil }.sorted()
        let missing = function.arguments.filter { arguments[$0.name] == nil && !function.optional.contains($0.name) }.map(\.name)
        guard unknown.isEmpty, missing.isEmpty else {
            throw Self.functionNotFound(
                "\(function.qualifiedName)(\(arguments.keys.sorted().joined(separator: ", ")))",
                details: unknown.isEmpty ? "missing arguments: \(missing.joined(separator: ", "))" : "unknown arguments: \(unknown.joined(separator: ", "))",
                hint: "\(function.qualifiedName) takes (" + function.arguments.map {
                    "\($0.name) \($0.type.canonical)" + (function.optional.contains($0.name) ? " default" : "")
                }.joined(separator: ", ") + ")")
        }
        for (key, value) in arguments where value.containsNUL {
            throw GatewayError(.badRequest, code: "22021", "invalid byte sequence: a NUL in argument \(key)")
        }

        let query = try RESTQuery.parse(method: .get, query: rest, headers: RESTQuery.Headers(request.headers), limits: limits.query)
        var statements: [Statement] = []
        if function.volatility != .volatile {
            statements.append(Statement("SELECT set_config('transaction_read_only', 'on', true)"))
        }
        let read: RelationRead
        if let shape = function.resultShape(in: policies) {
            read = try RelationRead(shape: shape, query: query, stripNulls: RESTRepresentation.stripsNulls(request.headers[.accept])) { builder in
                let call = Self.call(function, arguments: arguments, builder: &builder)
                return (from: "\(call) AS _pgw_fn", condition: nil)
            }
        } else {
            guard query.filter == nil, query.order.isEmpty, query.limit == nil, query.offset == 0, query.select == [.all] else {
                throw GatewayError(
                    .badRequest, code: "PGRST100", "\(function.qualifiedName) returns a single value",
                    hint: "select, filters, order and limit apply to functions returning rows")
            }
            var builder = RESTStatementBuilder(table: TablePolicy.shape(name: function.name, columns: []))
            let call = Self.call(function, arguments: arguments, builder: &builder)
            read = RelationRead(scalar: "SELECT to_json(\(call))::text AS body, 1::bigint AS n", binds: builder.binds, query: query)
        }
        statements += read.statements
        let timeZone = RESTRepresentation.timeZone(query.preferences)
        let results = try await run(statements, caller: caller, timeZone: timeZone, target: function.qualifiedName, facts: facts)
        var response = try read.response(Array(results.suffix(read.statements.count)), isHead: request.method == .head)
        RESTRepresentation.addTimeZone(timeZone, to: &response.headers)
        return response
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

    /// A GET's query string split into the function's arguments and the rest (select, filters, …).
    static func splitArguments(_ raw: String, of function: FunctionDeclaration) throws -> ([String: JSONValue], String) {
        var arguments: [String: JSONValue] = [:]
        var rest: [Substring] = []
        for piece in raw.drop(while: { $0 == "?" }).split(separator: "&", omittingEmptySubsequences: true) {
            let rawKey: Substring, rawValue: Substring
            if let equals = piece.firstIndex(of: "=") {
                rawKey = piece[..<equals]
                rawValue = piece[piece.index(after: equals)...]
            } else {
                rawKey = piece
                rawValue = ""
            }
            guard let key = Self.decode(rawKey), function.argument(named: key) != nil else {
                rest.append(piece)
                continue
            }
            guard arguments[key] == nil else {
                throw GatewayError(.badRequest, code: "PGRST100", "argument \(key) is given twice")
            }
            guard let value = Self.decode(rawValue) else {
                throw GatewayError(.badRequest, code: "PGRST100", "argument \(key) is not valid percent-encoded UTF-8")
            }
            arguments[key] = .string(value)
        }
        return (arguments, rest.joined(separator: "&"))
    }

    /// Percent-decoding with `+` as a space, as the REST grammar reads query strings.
    private static func decode(_ text: Substring) -> String? {
        String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    static func functionNotFound(_ signature: String, details: String? = nil, hint: String) -> GatewayError {
        GatewayError(
            .notFound, code: "PGRST202", "Could not find the function \(signature) in the schema cache",
            details: details ?? "only functions declared in a policy file (functions:) are served", hint: hint)
    }

    static func permissionDenied(_ what: String, role: RequestRole, details: String) -> GatewayError {
        var error = GatewayError(role == .anon ? .unauthorized : .forbidden, code: "42501", "permission denied for \(what)", details: details)
        error.policy = nil
        return error
    }

    // MARK: - Views

    /// A declared view, read-only: its base tables' policies apply inside it (security_invoker),
    /// and with `tenant_column:` the gateway also keeps the rows to the request's tenant.
    func view(_ request: Request, _ view: ViewDeclaration, caller: AuthenticatedRequest, facts: RequestFacts) async throws -> Response {
        guard request.method == .get || request.method == .head else {
            let refusal = GatewayError(
                .forbidden, code: "42501", "permission denied for view \(view.name)",
                details: "\(view.qualifiedName) is read-only through /rest/v1")
            try await recordDenial(refusal, caller: caller, target: view.qualifiedName, facts: facts)
            throw refusal
        }
        guard view.allows(role: caller.role.rawValue) else {
            let denial = Self.permissionDenied(
                "view \(view.name)", role: caller.role, details: "\(view.qualifiedName) is declared for roles: \(view.roles.joined(separator: ", "))")
            try await recordDenial(denial, caller: caller, target: view.qualifiedName, facts: facts)
            throw denial
        }
        let query = try RESTQuery.parse(
            method: request.method, query: request.uri.query ?? "", headers: RESTQuery.Headers(request.headers), limits: limits.query)
        let tenant = caller.tenantID.lowercasedString
        let read = try RelationRead(shape: view.shape, query: query, stripNulls: RESTRepresentation.stripsNulls(request.headers[.accept])) { builder in
            let condition = view.tenantColumn.map { "\(SQLText.quoted($0)) = \(builder.bind(.text(tenant), as: "uuid"))" }
            return (from: view.quotedName, condition: condition)
        }
        let timeZone = RESTRepresentation.timeZone(query.preferences)
        let results = try await run(read.statements, caller: caller, timeZone: timeZone, target: view.qualifiedName, facts: facts)
        var response = try read.response(Array(results.suffix(read.statements.count)), isHead: request.method == .head)
        RESTRepresentation.addTimeZone(timeZone, to: &response.headers)
        return response
    }

    // MARK: - Running

    /// The request's settings (and `Prefer: timezone=`), then `statements`: one round trip.
    private func run(
        _ statements: [Statement], caller: AuthenticatedRequest, timeZone: String?, target: String, facts: RequestFacts
    ) async throws -> [QueryResult] {
        let settings = [caller.requestSettings(statementTimeoutMilliseconds: limits.statementTimeoutMilliseconds)]
            + (timeZone.map { [RESTRepresentation.timeZoneStatement($0)] } ?? [])
        do {
            return try await limiter.run(caller.tenantID) { try await pool.pipeline(settings + statements) }
        } catch let saturated as TenantLimiter.Saturated {
            throw GatewayError.tenantSaturated(saturated, rest: true)
        } catch let error as PostgresError {
            if error.sqlState == RequestAuthenticator.revokedKeySQLState { throw authenticator.revoked(caller.serviceKey) }
            let answer = GatewayError.database(error, anonymous: caller.role == .anon)
            if error.sqlState == "42501" { try await recordDenial(answer, caller: caller, target: target, facts: facts) }
            throw answer
        }
    }

    /// Counted and audited like a table's policy denial; 503 if the audit trail cannot take it.
    private func recordDenial(_ denial: GatewayError, caller: AuthenticatedRequest, target: String, facts: RequestFacts) async throws {
        metrics.policyDenied(table: target, command: .select)
        let event = AuditEvent(
            actor: caller.userID.map { "user:" + $0.lowercasedString } ?? caller.role.rawValue,
            action: "policy.denied", target: target, outcome: .denied, requestID: facts.requestID,
            details: [
                "role": .string(caller.role.rawValue), "service_key": .string(caller.serviceKey.id.lowercasedString),
                "reason": .string(denial.message),
            ])
        do {
            _ = try await audit.append(tenant: caller.tenantID, event)
        } catch {
            throw GatewayError(.serviceUnavailable, code: "PGW503", "the audit trail is unavailable; nothing was changed")
        }
    }
}

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

    /// A single value: `sql` yields `body` (JSON text) and `n`.
    init(scalar sql: String, binds: [PostgresBind], query: RESTQuery) {
        self.statements = [Statement(sql, binds)]
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

extension JSONValue {
    /// Whether a NUL appears in any string (libpq would cut the text short there).
    var containsNUL: Bool {
        switch self {
        case .string(let text): return text.utf8.contains(0)
        case .array(let items): return items.contains { $0.containsNUL }
        case .object(let object): return object.contains { $0.key.utf8.contains(0) || $0.value.containsNUL }
        default: return false
        }
    }
}
