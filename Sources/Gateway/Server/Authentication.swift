import Hummingbird
import Tenancy

/// Authentication as middleware on a route group: every route of the group gets its caller —
/// tenant, subject, role, scopes, audit actor, computed once by ``RequestAuthenticator`` — in
/// ``GatewayRequestContext/caller``, and the request's log line gets its tenant.
///
/// The scope a route needs is checked here too (``RequiredScope``: one for the group, one per
/// method, or one decided by what is called — an RPC function's volatility), so no route handler
/// checks one itself. A group whose refusals are audited (secrets, admin) gives ``recordRefusal``,
/// which records the refused attempt, with the route's action, before the 403 is answered (fail
/// closed: no entry, no answer but the error). The 401s of authentication itself are never
/// audited (no tenant is known before the key is).
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// What every route of a group needs besides a valid key.
    enum RequiredScope: Sendable {
        case always(Scope)
        /// `read` for GET and HEAD, `write` for every other method (as `/rest/v1` and PostgREST).
        case byMethod(read: Scope, write: Scope)
        /// Decided by what the request calls (the route's parameters are known here).
        case decided(@Sendable (Request, GatewayRequestContext) -> Scope)
    }

    /// Records a refused scope before the refusal is answered; nil: refusals are not audited.
    typealias RefusalRecorder =
        @Sendable (_ caller: AuthenticatedRequest, _ missing: Scope, Request, GatewayRequestContext) async throws -> Void

    let authenticator: RequestAuthenticator
    let scope: RequiredScope
    /// False where the key's revocation check rides in the request's own statement pipeline
    /// (`/rest/v1`: `public.assert_service_key_active`, saving a round trip).
    var checksRevocation = true
    var recordRefusal: RefusalRecorder? = nil

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let caller = try await authenticator.authenticate(
            apikey: request.headers[.apikey], authorization: request.headers[.authorization], checksRevocation: checksRevocation)
        context.facts.tenantID = caller.tenantID
        let needed: Scope =
            switch scope {
            case .always(let scope): scope
            case .byMethod(let read, let write): request.method == .get || request.method == .head ? read : write
            case .decided(let decide): decide(request, context)
            }
        if !caller.has(needed) {
            try await recordRefusal?(caller, needed, request, context)
            throw GatewayError.missingScope(needed)
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
