import Hummingbird
import Tenancy

/// Authentication as middleware on a route group: every route of the group gets its caller —
/// tenant, subject, role, scopes, audit actor, computed once by ``RequestAuthenticator`` — in
/// ``GatewayRequestContext/caller``, and the request's log line gets its tenant.
///
/// The scope a group needs is checked here when it is the same for every route of the group
/// (``RequiredScope``). Groups whose refusals are audited with the action refused (secrets,
/// admin) or whose scope depends on what is called (RPC: a function's volatility) check it in
/// the route with the caller from the context; the 401s of authentication itself are never
/// audited (no tenant is known before the key is).
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// What every route of a group needs besides a valid key.
    enum RequiredScope: Sendable {
        /// Checked by the routes themselves.
        case checkedByRoutes
        case always(Scope)
        /// `read` for GET and HEAD, `write` for every other method (as `/rest/v1` and PostgREST).
        case byMethod(read: Scope, write: Scope)
    }

    let authenticator: RequestAuthenticator
    let scope: RequiredScope
    /// False where the key's revocation check rides in the request's own statement pipeline
    /// (`/rest/v1`: `public.assert_service_key_active`, saving a round trip).
    var checksRevocation = true

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let caller = try await authenticator.authenticate(
            apikey: request.headers[.apikey], authorization: request.headers[.authorization], checksRevocation: checksRevocation)
        context.facts.tenantID = caller.tenantID
        switch scope {
        case .checkedByRoutes: break
        case .always(let scope): try caller.require(scope)
        case .byMethod(let read, let write): try caller.require(request.method == .get || request.method == .head ? read : write)
        }
        var context = context
        context.caller = caller
        return try await next(request, context)
    }
}

extension GatewayRequestContext {
    /// The caller ``AuthenticationMiddleware`` put here. A route outside an authenticated group
    /// that asks for one is a wiring mistake: answered 500, never served as someone.
    func authenticated() throws -> AuthenticatedRequest {
        guard let caller else {
            throw GatewayError(.internalServerError, code: "PGW500", "internal error: this route is not behind authentication")
        }
        return caller
    }
}
