import Foundation
import Audit
import Hummingbird
import HTTPTypes
import Policy
import Postgres

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

    /// Request bodies above this are refused (413) before they are read in full.
    static let maximumBodySize = 8 * 1024 * 1024

    func handle(_ request: Request, table name: String, facts: RequestFacts) async throws -> Response {
        // The key's revocation check rides in the request's own pipeline (settings(caller)).
        let caller = try await authenticator.authenticate(
            apikey: request.headers[.apikey], authorization: request.headers[.authorization], checksRevocation: false)
        facts.tenantID = caller.tenantID
        let command: PolicyCommand
        switch request.method {
        case .get, .head: command = .select
        case .post: command = .insert
        case .patch: command = .update
        case .delete: command = .delete
        default:
            throw GatewayError(.methodNotAllowed, code: "PGRST117", "Unsupported HTTP method: \(request.method.rawValue)")
        }
        try caller.require(command == .select ? .dataRead : .dataWrite)
        guard let table = policies.table(named: name) else {
            if let view = policies.view(named: name) {
                return try await RPCHandler(pool: pool, policies: policies, authenticator: authenticator, audit: audit, metrics: metrics)
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
        let query = try RESTQuery.parse(
            method: request.method, query: request.uri.query ?? "", headers: RESTQuery.Headers(request.headers))
        let body = command == .insert || command == .update ? try await Self.readBody(request) : nil
        let plan = try RESTPlan(
            command: command, table: table, query: query, body: body, caller: caller, policies: policies,
            stripNulls: RESTRepresentation.stripsNulls(request.headers[.accept]))
        let timeZone = RESTRepresentation.timeZone(query.preferences)
        let settings = [caller.requestSettings] + (timeZone.map { [RESTRepresentation.timeZoneStatement($0)] } ?? [])

        let results: [QueryResult]
        do {
            results = try await pool.pipeline(settings + plan.statements + plan.transactionEnd)
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
            actor: caller.userID.map { "user:" + $0.lowercasedString } ?? caller.role.rawValue,
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

    static func readBody(_ request: Request) async throws -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maximumBodySize {
            throw GatewayError(.contentTooLarge, code: "PGRST413", "request body is larger than \(maximumBodySize) bytes")
        }
        do {
            let buffer = try await request.body.collect(upTo: maximumBodySize)
            return Array(buffer.readableBytesView)
        } catch {
            throw GatewayError(.contentTooLarge, code: "PGRST413", "request body is larger than \(maximumBodySize) bytes")
        }
    }
}

extension HTTPField.Name {
    /// The service key header, as Supabase and PostgREST clients send it.
    static let apikey = HTTPField.Name("apikey")!
    static let preferenceApplied = HTTPField.Name("Preference-Applied")!
}
