import Tenancy
import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import Secrets

/// `/v1/secrets` (DESIGN.md §5): a user's secrets, for service keys with `secrets:read` /
/// `secrets:write` and a user JWT. The user is the JWT's `sub`; a `service_role` caller names
/// the user with `?user_id=`. Denied attempts are audited like accesses.
///
/// - `GET /v1/secrets?limit=N&after=NAME&include_deleted=true` — names and metadata, paginated.
/// - `GET /v1/secrets/{service}[?version=N]` — the value (audited before it is returned).
/// - `PUT /v1/secrets/{service}` `{"value": "…"}`, optional `If-Match: N` — write (check-and-set).
/// - `GET /v1/secrets/{service}/versions` — versions, without values.
/// - `DELETE /v1/secrets/{service}` — soft delete; `?destroy=true[&version=N]` destroys.
/// - `POST /v1/secrets/{service}/undelete` — undo a soft delete.
struct SecretRoutes: Sendable {
    let store: SecretStore
    let authenticator: RequestAuthenticator
    /// Where operations are counted by action and outcome (`privacy_gateway_secrets_operations_total`).
    var metrics: GatewayMetrics? = nil
    /// The per-tenant cap on concurrent database work (503 `PGW503` with `Retry-After` past its queue).

    /// The largest request body accepted (a value is at most 64 KiB of UTF-8, JSON-escaped).
    static let maximumBody = 512 * 1024

    func add(to router: Router<GatewayRequestContext>) {
        // Each route counts its operation (outermost, so a refused key counts as a denied attempt), then
        // authenticates; the scope is checked per route (``caller(_:_:scope:action:service:)``): a
        // refusal is audited with the action refused.
        func route(_ action: String) -> RouterGroup<GatewayRequestContext> {
            let group = router.group()
            if let metrics { group.add(middleware: SecretOperationCounter(action: action, metrics: metrics)) }
            return group.add(middleware: AuthenticationMiddleware(authenticator: authenticator, scope: .checkedByRoutes))
        }
        route("list").get("/v1/secrets") { request, context in
            let caller = try await caller(request, context, scope: .secretsRead, action: "secret.list", service: nil)
            let query = request.uri.queryParameters
            let limit = try GatewayApplication.queryInteger(query["limit"].map(String.init), name: "limit", in: SecretStore.pageSizes) ?? 100
            let after = try GatewayApplication.queryText(
                query["after"].map(String.init), name: "after", maximumLength: SecretStore.maximumServiceLength)
            let includeDeleted = try GatewayApplication.queryBoolean(query["include_deleted"].map(String.init), name: "include_deleted") ?? false
            let page = try await store.list(caller, limit: limit, after: after, includeDeleted: includeDeleted)
            return try GatewayApplication.jsonResponse(.ok, page)
        }
        route("read").get("/v1/secrets/:service") { request, context in
            let service = try Self.service(context)
            let caller = try await caller(request, context, scope: .secretsRead, action: "secret.read", service: service)
            let version = try GatewayApplication.queryInteger(
                request.uri.queryParameters["version"].map(String.init), name: "version", in: SecretStore.versions)
            let secret = try await store.read(caller, service: service, version: version)
            struct Body: Encodable {
                let service_name: String, value: String, version: Int
                let created_at: Date, updated_at: Date, last_used_at: Date?
            }
            let metadata = secret.metadata
            var response = try GatewayApplication.jsonResponse(.ok, Body(
                service_name: metadata.serviceName, value: secret.value, version: metadata.version,
                created_at: metadata.createdAt, updated_at: metadata.updatedAt, last_used_at: metadata.lastUsedAt))
            response.headers[.eTag] = "\"\(metadata.version)\""
            response.headers[.cacheControl] = "no-store"
            return response
        }
        route("write").put("/v1/secrets/:service") { request, context in
            let service = try Self.service(context)
            let caller = try await caller(request, context, scope: .secretsWrite, action: "secret.write", service: service)
            let ifMatch = try Self.ifMatch(request.headers[.ifMatch])
            var request = request
            let body = try await request.collectBody(upTo: Self.maximumBody)
            struct Input: Decodable { let value: String }
            let input = try GatewayApplication.jsonBody(
                body.readableBytesView, as: Input.self, fields: ["value"], expected: "{\"value\": \"…\"} with a string value")
            let metadata = try await store.write(caller, service: service, value: input.value, ifMatch: ifMatch)
            var response = try GatewayApplication.jsonResponse(metadata.version == 1 ? .created : .ok, metadata)
            response.headers[.eTag] = "\"\(metadata.version)\""
            return response
        }
        route("versions").get("/v1/secrets/:service/versions") { request, context in
            let service = try Self.service(context)
            let caller = try await caller(request, context, scope: .secretsRead, action: "secret.versions", service: service)
            let versions = try await store.versions(caller, service: service)
            return try GatewayApplication.jsonResponse(.ok, ["versions": versions])
        }
        route("delete").delete("/v1/secrets/:service") { request, context in
            let service = try Self.service(context)
            let query = request.uri.queryParameters
            let destroy = try GatewayApplication.queryBoolean(query["destroy"].map(String.init), name: "destroy") ?? false
            let caller = try await caller(
                request, context, scope: .secretsWrite, action: destroy ? "secret.destroy" : "secret.delete", service: service)
            if destroy {
                let version = try GatewayApplication.queryInteger(query["version"].map(String.init), name: "version", in: SecretStore.versions)
                let destroyed = try await store.destroy(caller, service: service, version: version)
                return try GatewayApplication.jsonResponse(.ok, ["destroyed_versions": destroyed])
            }
            let metadata = try await store.delete(caller, service: service)
            return try GatewayApplication.jsonResponse(.ok, metadata)
        }
        route("undelete").post("/v1/secrets/:service/undelete") { request, context in
            let service = try Self.service(context)
            let caller = try await caller(request, context, scope: .secretsWrite, action: "secret.undelete", service: service)
            let metadata = try await store.undelete(caller, service: service)
            return try GatewayApplication.jsonResponse(.ok, metadata)
        }
    }

    /// Decides whose secrets the authenticated caller reaches, and checks the scope. Refusals
    /// that concern an identified subject are audited before they are answered.
    private func caller(
        _ request: Request, _ context: GatewayRequestContext, scope: Scope, action: String, service: String?
    ) async throws -> SecretCaller {
        let auth = try context.authenticated()
        var requested: UUID?
        if let text = request.uri.queryParameters["user_id"] {
            guard let id = UUID(canonical: String(text)) else {
                throw GatewayError.invalidInput("user_id must be a UUID, got \"\(text)\"")
            }
            requested = id
        }
        let role: SecretCaller.Role
        let subject: UUID
        switch auth.role {
        case .anon:
            throw GatewayError(.unauthorized, code: "PGRST302", "secrets need a user JWT (Authorization: Bearer …)")
        case .authenticated:
            guard let user = auth.userID else {
                throw GatewayError(.unauthorized, code: "PGRST302", "the JWT names no user (sub)")
            }
            role = .authenticated
            subject = requested ?? user
        case .serviceRole:
            guard let user = requested ?? auth.userID else {
                throw GatewayError.invalidInput("a service_role caller names the user with ?user_id=")
            }
            role = .serviceRole
            subject = user
        }
        let caller = SecretCaller(
            tenant: auth.tenantID, role: role, subject: subject,
            actor: auth.auditActor,
            requestID: context.facts.requestID, ip: context.facts.clientAddress,
            userAgent: request.headers[.userAgent].map { String($0.prefix(512)) })
        var refusal: GatewayError?
        if role == .authenticated, subject != auth.userID {
            refusal = GatewayError(.forbidden, code: "PGW403", "only a service_role caller may reach another user's secrets")
        } else if !auth.has(scope) {
            refusal = GatewayError(.forbidden, code: "PGW403", "the service key lacks the \(scope.rawValue) scope")
        }
        if let refusal {
            try await store.recordDenied(caller, action: action, service: service, reason: refusal.message)
            throw refusal
        }
        return caller
    }

    private static func service(_ context: GatewayRequestContext) throws -> String {
        guard let raw = context.parameters.get("service") else {
            throw GatewayError.invalidInput("the service name is missing")
        }
        var service = raw
        if raw.utf8.contains(UInt8(ascii: "%")) {
            guard let decoded = raw.removingPercentEncoding else {
                throw GatewayError.invalidInput("the service name is not valid percent-encoded UTF-8")
            }
            service = decoded
        }
        do {
            try SecretStore.validate(service: service)
        } catch let error as SecretsError {
            throw GatewayError.invalidInput(error.message)
        }
        return service
    }

    /// `If-Match: 3` or `If-Match: "3"` (the ETag this API sends); 0 means "only if it does not exist".
    static func ifMatch(_ header: String?) throws -> Int? {
        guard var text = header?.trimmingCharacters(in: .whitespaces) else { return nil }
        if text.hasPrefix("W/") { text.removeFirst(2) }
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { text = String(text.dropFirst().dropLast()) }
        guard let version = Int(text), (0...SecretStore.versions.upperBound).contains(version) else {
            throw GatewayError.invalidInput(
                "If-Match must be a secret version from 0 (does not exist yet) to \(SecretStore.versions.upperBound), "
                    + "got \"\(GatewayApplication.quoted(header!))\"")
        }
        return version
    }
}

/// Counts a `/v1/secrets` operation by its answer's status (an error's as the one map answers it,
/// ``GatewayError/init(mapping:)``) in `privacy_gateway_secrets_operations_total`, outside
/// authentication so a refused key counts as a denied attempt; `delete` with `?destroy=true`
/// counts as `destroy`.
struct SecretOperationCounter: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let action: String
    let metrics: GatewayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let name = action == "delete" && request.uri.queryParameters["destroy"] == "true" ? "destroy" : action
        do {
            let response = try await next(request, context)
            metrics.secretOperation(action: name, status: response.status.code)
            return response
        } catch {
            metrics.secretOperation(action: name, status: ((error as? any HTTPResponseError)?.status ?? GatewayError(mapping: error).status).code)
            throw error
        }
    }
}
