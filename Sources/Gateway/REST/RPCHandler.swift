import Audit
import Config
import Foundation
import HTTPTypes
import Hummingbird
import JSON
import Policy
import Postgres
import Tenancy

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

    // MARK: - Functions

    /// `caller` comes from the route group's ``AuthenticationMiddleware``, which checked the scope the
    /// function's volatility needs (revocation is checked in the call's own pipeline).
    func handle(_ request: Request, function name: String, caller: AuthenticatedRequest, facts: RequestFacts) async throws -> Response {
        let readOnlyMethod = request.method == .get || request.method == .head
        guard readOnlyMethod || request.method == .post else {
            throw GatewayError(.methodNotAllowed, code: "PGRST117", "Unsupported HTTP method: \(request.method.rawValue)")
        }
        guard let function = policies.function(named: name) else {
            throw Self.functionNotFound(
                "public.\(name)", hint: "functions served: " + policies.functions.map(\.name).joined(separator: ", "))
        }
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
                    throw GatewayError(
                        .badRequest, code: "PGRST102", "Empty or invalid json", details: "expected a JSON object of named arguments")
                }
                arguments = object
            }
        }
        let unknown = arguments.keys.filter { function.argument(named: $0) == nil }.sorted()
        let missing = function.arguments.filter { arguments[$0.name] == nil && !function.optional.contains($0.name) }.map(\.name)
        guard unknown.isEmpty, missing.isEmpty else {
            throw Self.functionNotFound(
                "\(function.qualifiedName)(\(arguments.keys.sorted().joined(separator: ", ")))",
                details: unknown.isEmpty
                    ? "missing arguments: \(missing.joined(separator: ", "))" : "unknown arguments: \(unknown.joined(separator: ", "))",
                hint: "\(function.qualifiedName) takes ("
                    + function.arguments.map {
                        "\($0.name) \($0.type.canonical)" + (function.optional.contains($0.name) ? " default" : "")
                    }.joined(separator: ", ") + ")")
        }
        for (key, value) in arguments where value.containsNUL {
            throw GatewayError(.badRequest, code: "22021", "invalid byte sequence: a NUL in argument \(key)")
        }

        let query = try RESTQuery.parse(method: .get, query: rest, headers: RESTQuery.Headers(request.headers), limits: limits.query)
        try Self.refusePlan(query, accept: request.headers[.accept])
        var statements: [Statement] = []
        if function.volatility != .volatile {
            statements.append(RelationRead.readOnly)
        }
        let read: RelationRead
        if let shape = function.resultShape(in: policies) {
            read = try RelationRead(shape: shape, query: query, stripNulls: RESTRepresentation.stripsNulls(request.headers[.accept])) {
                builder in
                let call = RelationRead.call(function, arguments: arguments, builder: &builder)
                return (from: "\(call) AS _pgw_fn", condition: nil)
            }
        } else {
            guard query.filter == nil, query.order.isEmpty, query.limit == nil, query.offset == 0, query.select == [.all] else {
                throw GatewayError(
                    .badRequest, code: "PGRST100", "\(function.qualifiedName) returns a single value",
                    hint: "select, filters, order and limit apply to functions returning rows")
            }
            var builder = RESTStatementBuilder(table: TablePolicy.shape(name: function.name, columns: []))
            let call = RelationRead.call(function, arguments: arguments, builder: &builder)
            read = RelationRead(scalarCall: call, binds: builder.binds, query: query)
        }
        statements += read.statements
        let timeZone = try RESTRepresentation.timeZone(query.preferences)
        let results = try await run(statements, caller: caller, timeZone: timeZone, target: function.qualifiedName, facts: facts)
        var response = try read.response(Array(results.suffix(read.statements.count)), isHead: request.method == .head)
        RESTRepresentation.addTimeZone(timeZone, to: &response.headers)
        return response
    }

    /// Plans are served for tables only (``RESTHandler``): a function's or a view's plan `Accept`
    /// is one the gateway cannot produce, never answered with rows instead.
    static func refusePlan(_ query: RESTQuery, accept: String?) throws {
        guard query.plan != nil else { return }
        throw GatewayError(
            .notAcceptable, code: "PGRST107", "None of these media types are available: " + String((accept ?? "").prefix(200)))
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
        var error = GatewayError(
            role == .anon ? .unauthorized : .forbidden, code: "42501", "permission denied for \(what)", details: details)
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
                "view \(view.name)", role: caller.role,
                details: "\(view.qualifiedName) is declared for roles: \(view.roles.joined(separator: ", "))")
            try await recordDenial(denial, caller: caller, target: view.qualifiedName, facts: facts)
            throw denial
        }
        let query = try RESTQuery.parse(
            method: request.method, query: request.uri.query ?? "", headers: RESTQuery.Headers(request.headers), limits: limits.query)
        try Self.refusePlan(query, accept: request.headers[.accept])
        let tenant = caller.tenantID.lowercasedString
        let read = try RelationRead(shape: view.shape, query: query, stripNulls: RESTRepresentation.stripsNulls(request.headers[.accept])) {
            builder in
            let condition = view.tenantColumn.map { RelationRead.equals($0, tenant, as: "uuid", builder: &builder) }
            return (from: view.quotedName, condition: condition)
        }
        let timeZone = try RESTRepresentation.timeZone(query.preferences)
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
        let settings =
            [caller.requestSettings(statementTimeoutMilliseconds: limits.statementTimeoutMilliseconds)]
            + (timeZone.map { [RESTRepresentation.timeZoneStatement($0)] } ?? [])
        do {
            return try await pool.pipeline(tenant: caller.tenantID, settings + statements)
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
            actor: caller.auditActor,
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
