import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import Secrets
import Tenancy

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
        // Each route counts its operation (outermost, so a refused key counts as a denied attempt),
        // then authenticates and checks its scope; a missing scope is recorded in the subject's
        // trail with the action refused before it is answered.
        let store = self.store
        func route(_ action: String, _ scope: Scope) -> RouterGroup<GatewayRequestContext> {
            let group = router.group()
            if let metrics { group.add(middleware: SecretOperationCounter(action: action, metrics: metrics)) }
            return group.add(
                middleware: AuthenticationMiddleware(
                    authenticator: authenticator, scope: .always(scope),
                    recordRefusal: { auth, scope, request, context in
                        let caller = try Self.secretCaller(auth, request, context)
                        try await store.recordDenied(
                            caller, action: Self.auditAction(action, request), service: try? Self.service(context),
                            reason: GatewayError.missingScope(scope).message)
                    }))
        }
        route("list", .secretsRead).get("/v1/secrets") { request, context in
            let caller = try await caller(request, context, action: "secret.list", service: nil)
            let query = request.uri.queryParameters
            let limit =
                try GatewayApplication.queryInteger(query["limit"].map(String.init), name: "limit", in: SecretStore.pageSizes) ?? 100
            let after = try GatewayApplication.queryText(
                query["after"].map(String.init), name: "after", maximumLength: SecretStore.maximumServiceLength)
            let includeDeleted =
                try GatewayApplication.queryBoolean(query["include_deleted"].map(String.init), name: "include_deleted") ?? false
            let page = try await store.list(caller, limit: limit, after: after, includeDeleted: includeDeleted)
            return try GatewayApplication.jsonResponse(.ok, page)
        }
        route("read", .secretsRead).get("/v1/secrets/:service") { request, context in
            let service = try Self.service(context)
            let caller = try await caller(request, context, action: "secret.read", service: service)
            let version = try GatewayApplication.queryInteger(
                request.uri.queryParameters["version"].map(String.init), name: "version", in: SecretStore.versions)
            let secret = try await store.read(caller, service: service, version: version)
            struct Body: Encodable {
                let service_name: String, value: String, version: Int
                let created_at: Date, updated_at: Date, last_used_at: Date?
            }
            let metadata = secret.metadata
            var response = try GatewayApplication.jsonResponse(
                .ok,
                Body(
                    service_name: metadata.serviceName, value: secret.value, version: metadata.version,
                    created_at: metadata.createdAt, updated_at: metadata.updatedAt, last_used_at: metadata.lastUsedAt))
            response.headers[.eTag] = "\"\(metadata.version)\""
            response.headers[.cacheControl] = "no-store"
            return response
        }
        route("write", .secretsWrite).put("/v1/secrets/:service") { request, context in
            let service = try Self.service(context)
            let caller = try await caller(request, context, action: "secret.write", service: service)
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
        route("versions", .secretsRead).get("/v1/secrets/:service/versions") { request, context in
            let service = try Self.service(context)
            let caller = try await caller(request, context, action: "secret.versions", service: service)
            let versions = try await store.versions(caller, service: service)
            return try GatewayApplication.jsonResponse(.ok, ["versions": versions])
        }
        route("delete", .secretsWrite).delete("/v1/secrets/:service") { request, context in
            let service = try Self.service(context)
            let query = request.uri.queryParameters
            let destroy = try GatewayApplication.queryBoolean(query["destroy"].map(String.init), name: "destroy") ?? false
            let caller = try await caller(request, context, action: Self.auditAction("delete", request), service: service)
            if destroy {
                let version = try GatewayApplication.queryInteger(
                    query["version"].map(String.init), name: "version", in: SecretStore.versions)
                let destroyed = try await store.destroy(caller, service: service, version: version)
                return try GatewayApplication.jsonResponse(.ok, ["destroyed_versions": destroyed])
            }
            let metadata = try await store.delete(caller, service: service)
            return try GatewayApplication.jsonResponse(.ok, metadata)
        }
        route("undelete", .secretsWrite).post("/v1/secrets/:service/undelete") { request, context in
            let service = try Self.service(context)
            let caller = try await caller(request, context, action: "secret.undelete", service: service)
            let metadata = try await store.undelete(caller, service: service)
            return try GatewayApplication.jsonResponse(.ok, metadata)
        }
    }

    /// Whose secrets the authenticated caller reaches; an authenticated user naming another user
    /// is refused, audited before it is answered. (The scope was checked by the route's middleware.)
    private func caller(_ request: Request, _ context: GatewayRequestContext, action: String, service: String?) async throws -> SecretCaller
    {
        let auth = try context.authenticated()
        let caller = try Self.secretCaller(auth, request, context)
        if caller.role == .authenticated, caller.subject != auth.userID {
            let refusal = GatewayError(.forbidden, code: "PGW403", "only a service_role caller may reach another user's secrets")
            try await store.recordDenied(caller, action: action, service: service, reason: refusal.message)
            throw refusal
        }
        return caller
    }

    /// The caller as the secret store knows it: a user's JWT reaches its `sub` (or the `?user_id=` it
    /// names, refused above unless it is its own); `service_role` names the user with `?user_id=`.
    static func secretCaller(_ auth: AuthenticatedRequest, _ request: Request, _ context: GatewayRequestContext) throws -> SecretCaller {
        var requested: UUID?
        if let text = request.uri.queryParameters["user_id"] {
            guard let id = UUID(canonical: String(text)) else {
                throw GatewayError.invalidInput("user_id must be a UUID, got \"\(GatewayApplication.quoted(String(text)))\"")
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
        return SecretCaller(
            tenant: auth.tenantID, role: role, subject: subject, actor: auth.auditActor,
            requestID: context.facts.requestID, ip: context.facts.clientAddress,
            userAgent: request.headers[.userAgent].map { String($0.prefix(512)) })
    }

    /// The audit action of a route's operation: `secret.<action>`, `secret.destroy` for a destroying delete.
    static func auditAction(_ action: String, _ request: Request) -> String {
        action == "delete" && request.uri.queryParameters["destroy"] == "true" ? "secret.destroy" : "secret.\(action)"
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
            metrics.secretOperation(
                action: name, status: ((error as? any HTTPResponseError)?.status ?? GatewayError(mapping: error).status).code)
            throw error
        }
    }
}
