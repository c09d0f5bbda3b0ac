import Audit
import Config
import Foundation
import HTTPTypes
import Hummingbird
import Policy
import Postgres
import Tracing

/// `/rest/v1/{table}`: PostgREST's grammar over the governed tables, scoped by the policy files.
///
/// Each request is one pipeline — the request's settings (`role`, `request.jwt.claims`,
/// `request.tenant_id`, as PostgREST sets them) and its statement, in one implicit transaction
/// and one round trip; write safeguards (singular, `max-affected`) fail that transaction from
/// inside the statement, and `tx=rollback` ends it with a ROLLBACK instead of the commit. The
/// statement carries the policy engine's predicate, and the database's own RLS, generated from
/// the same files, checks it again.
struct RESTHandler: Sendable {
    let pool: ConnectionPool
    let policies: PolicySet
    let authenticator: RequestAuthenticator
    let audit: AuditAppender
    let metrics: GatewayMetrics
    let limits: GatewayLimits
    /// The foreign keys embedding follows, read on the first request that embeds.
    let relationships = RelationshipCache()

    /// `caller` comes from the route group's ``AuthenticationMiddleware``, which checked the
    /// method's scope (data:read for GET/HEAD, data:write otherwise) and left the key's revocation
    /// check to the request's own pipeline (settings(caller)).
    func handle(_ request: Request, table name: String, caller: AuthenticatedRequest, facts: RequestFacts) async throws -> Response {
        let command: PolicyCommand
        switch request.method {
        case .get, .head: command = .select
        case .post: command = .insert
        case .patch: command = .update
        case .delete: command = .delete
        default:
            throw GatewayError(.methodNotAllowed, code: "PGRST117", "Unsupported HTTP method: \(request.method.rawValue)")
        }
        guard let table = policies.table(named: name) else {
            if let view = policies.view(named: name) {
                return try await RPCHandler(
                    pool: pool, policies: policies, authenticator: authenticator, audit: audit, metrics: metrics,
                    limits: limits
                )
                .view(request, view, caller: caller, facts: facts)
            }
            throw GatewayError(
                .notFound, code: "PGRST205", "Could not find the table 'public.\(name)' in the schema cache",
                hint: "tables served: \(policies.tables.filter { $0.rest != .none }.map(\.name).joined(separator: ", "))")
        }
        do {
            try Self.requireExposure(table, command)
        } catch let refusal as GatewayError {
            // Refused like a policy denial, and recorded like one: an attempt on the sealed or
            // workflow tables through /rest/v1 is in the tenant's audit trail.
            try await recordDenial(refusal, caller: caller, table: table, command: command, facts: facts)
            throw refusal
        }
        var query = try RESTQuery.parse(
            method: request.method, query: request.uri.query ?? "", headers: RESTQuery.Headers(request.headers), limits: limits.query)
        if let requested = query.plan,
            let refusal = RESTRepresentation.planRefusal(
                requested, access: limits.planAccess, role: caller.role, accept: request.headers[.accept])
        {
            throw refusal
        }
        if command == .select, let maximumRows = limits.maximumRows {
            // PostgREST's db-max-rows: a read returns at most this many rows, whatever it asks.
            query.limit = min(query.limit ?? maximumRows, maximumRows)
        }
        let body = command == .insert || command == .update ? try await Self.readBody(request, limit: limits.maximumBodyBytes) : nil
        let embeds = query.select.contains { if case .embed = $0 { true } else { false } }
        let stripNulls = RESTRepresentation.stripsNulls(request.headers[.accept])
        let catalog = embeds ? try await relationships.catalog(pool: pool, policies: policies) : .empty
        let plan: RESTPlan
        do {
            plan = try withSpan("policy") { _ in
                try RESTPlan(
                    command: command, table: table, query: query, body: body, caller: caller, policies: policies,
                    relationships: catalog, stripNulls: stripNulls)
            }
        } catch let missing as GatewayError where embeds && missing.code == "PGRST200" {
            // A foreign key the catalogue does not know yet (a migration ran): read it again, once.
            // A name that is no governed table can never embed (the policy files are fixed while the
            // gateway runs), so it re-reads nothing; misses naming governed tables (random `!hint`s)
            // read within a budget (RelationshipCache.missBurst), one read at a time in the process
            // (later misses join it): a caller cannot make every request a catalogue read, nor hold
            // more than one connection with them, so the read is nobody's tenant slot.
            guard Self.missMayBeNew(query, policies: policies) else { throw missing }
            let fresh = try await relationships.refreshAfterMiss(pool: pool, policies: policies)
            guard fresh != catalog else { throw missing }
            plan = try RESTPlan(
                command: command, table: table, query: query, body: body, caller: caller, policies: policies,
                relationships: fresh, stripNulls: stripNulls)
        }
        let timeZone = try RESTRepresentation.timeZone(query.preferences)
        let settings =
            [caller.requestSettings(statementTimeoutMilliseconds: limits.statementTimeoutMilliseconds)]
            + (timeZone.map { [RESTRepresentation.timeZoneStatement($0)] } ?? [])

        if let requested = query.plan {
            return try await explain(plan, requested, settings: settings, caller: caller, isHead: request.method == .head)
        }

        let results: [QueryResult]
        do {
            results = try await pool.pipeline(tenant: caller.tenantID, settings + plan.statements + plan.transactionEnd)
        } catch let error as PostgresError {
            if error.sqlState == RequestAuthenticator.revokedKeySQLState { throw authenticator.revoked(caller.serviceKey) }
            if let refused = plan.safeguardError(error) { throw refused }
            if error.sqlState == "42501", let explained = plan.explainRejection(policies: policies) {
                try await recordDenial(explained, caller: caller, table: table, command: command, facts: facts)
                throw explained
            }
            throw GatewayError.database(error, anonymous: caller.role == .anon)
        }
        do {
            let own = Array(results.dropFirst(settings.count).prefix(plan.statements.count))
            var response = try plan.response(results: own, policies: policies, isHead: request.method == .head)
            RESTRepresentation.addTimeZone(timeZone, to: &response.headers)
            return response
        } catch let error as GatewayError where error.code == "42501" {
            try await recordDenial(error, caller: caller, table: table, command: command, facts: facts)
            throw error
        }
    }

    /// `Accept: application/vnd.pgrst.plan…`: the main statement under EXPLAIN (no ANALYZE: nothing
    /// runs, nothing is written), as the caller's role with its settings, so the plan is the one
    /// the request would get — policy predicate and RLS included.
    private func explain(
        _ plan: RESTPlan, _ requested: RESTQuery.PlanRequest, settings: [Statement], caller: AuthenticatedRequest, isHead: Bool
    ) async throws -> Response {
        let results: [QueryResult]
        do {
            results = try await pool.pipeline(
                tenant: caller.tenantID, settings + [RESTRepresentation.planStatement(plan.statements[0], requested)])
        } catch let error as PostgresError {
            if error.sqlState == RequestAuthenticator.revokedKeySQLState { throw authenticator.revoked(caller.serviceKey) }
            throw GatewayError.database(error, anonymous: caller.role == .anon)
        }
        let (body, contentType) = try RESTRepresentation.planBody(results[settings.count], requested, format: plan.query.format)
        var headers = HTTPFields()
        headers[.contentType] = contentType
        guard !isHead else { return Response(status: .ok, headers: headers) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// Whether re-reading the relationship catalogue could resolve a PGRST200 for `query`: only
    /// when every embedded relation (at any depth) names a governed table. A hint may name a
    /// foreign key a migration just added; a relation that is no table never will.
    static func missMayBeNew(_ query: RESTQuery, policies: PolicySet) -> Bool {
        func governed(_ items: [RESTQuery.SelectItem]) -> Bool {
            items.allSatisfy { item in
                guard case .embed(let embed) = item else { return true }
                return policies.table(named: embed.relation) != nil && governed(embed.select)
            }
        }
        return governed(query.select)
    }

    /// The policy file's `rest:` decides whether `/rest/v1` reaches the table at all, before any
    /// SQL (the database's grants refuse the same; see 0011_exposure.sql). Sealed secrets and the
    /// privacy workflow are reached only through their own audited `/v1` APIs.
    static func requireExposure(_ table: TablePolicy, _ command: PolicyCommand) throws {
        guard !table.rest.allows(command) else { return }
        let route = table.managedBy.map { "use /v1/\($0.rawValue)" }
        switch table.rest {
        case .none:
            throw GatewayError(
                .forbidden, code: "42501", "permission denied for table \(table.name)",
                details: "\(table.qualifiedName) is not served through /rest/v1 (rest: none)", hint: route)
        case .read, .readWrite:
            throw GatewayError(
                .forbidden, code: "42501", "permission denied for table \(table.name)",
                details: "\(table.qualifiedName) is read-only through /rest/v1 (rest: \(table.rest.rawValue))",
                hint: route.map { $0 + " to change it" })
        }
    }

    /// A policy denial is counted and audited before it is answered. If the audit trail cannot
    /// take the entry, the caller gets 503 instead: nothing was changed either way, and no denial
    /// goes unrecorded.
    private func recordDenial(
        _ denial: GatewayError, caller: AuthenticatedRequest, table: TablePolicy, command: PolicyCommand, facts: RequestFacts
    ) async throws {
        metrics.policyDenied(table: table.name, command: command)
        var event = AuditEvent(
            actor: caller.auditActor,
            action: "policy.denied", target: table.qualifiedName, outcome: .denied, requestID: facts.requestID,
            details: [
                "command": .string(command.rawValue), "role": .string(caller.role.rawValue),
                "service_key": .string(caller.serviceKey.id.lowercasedString), "reason": .string(denial.message),
            ])
        if let policy = denial.policy { event.details["policy"] = .string(policy) }
        do {
            _ = try await audit.append(tenant: caller.tenantID, event)
        } catch {
            throw GatewayError(.serviceUnavailable, code: "PGW503", "the audit trail is unavailable; nothing was changed")
        }
    }

    /// The body, at most `limit` bytes (413 past it; ``RequestLimitsMiddleware`` refuses a larger
    /// `Content-Length` before the route and cuts a longer stream with the same error).
    static func readBody(_ request: Request, limit: Int, rest: Bool = true) async throws -> [UInt8] {
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch let error as GatewayError {
            throw error
        } catch {
            throw GatewayError.bodyTooLarge(limit, rest: rest)
        }
    }
}

extension HTTPField.Name {
    /// The service key header, as Supabase and PostgREST clients send it.
    static let apikey = HTTPField.Name("apikey")!
    static let preferenceApplied = HTTPField.Name("Preference-Applied")!
}
