import Tenancy

/// The authentication errors, worded as PostgREST words them where PostgREST has the case.
///
/// PostgREST's JWT codes (src/PostgREST/Error.hs): `PGRST301` — the token cannot be decoded or
/// verified (401); `PGRST303` — a verified token's claims are unacceptable (401). The API key is a
/// gateway concept (Supabase puts it in front of PostgREST, in its API gateway), so it gets a
/// gateway code, `PGW401`: clients commonly treat `PGRST301`/`PGRST303` as "refresh the JWT and
/// retry", which would loop forever on a bad key. A missing scope is `PGW403`.
///
/// No message ever contains the token, the API key or a tenant's secret.
extension GatewayError {
    // MARK: API key

    static let missingAPIKey = GatewayError(
        .unauthorized, code: "PGW401", "No API key found in request",
        hint: "Send the service key in the apikey header.")

    /// Unknown, malformed and revoked keys get the same answer, so the response tells nothing about
    /// which keys exist.
    static let invalidAPIKey = GatewayError(
        .unauthorized, code: "PGW401", "Invalid API key",
        hint: "Check the apikey header; the key may be mistyped or revoked.")

    /// The service key is valid but was not granted `scope`.
    static func missingScope(_ scope: Scope) -> GatewayError {
        GatewayError(
            .forbidden, code: "PGW403", "the service key lacks the scope \"\(scope.rawValue)\"",
            hint: "use a service key created with --scope \(scope.rawValue)")
    }

    // MARK: JWT (PGRST301: cannot be decoded or verified)

    static let emptyJWT = GatewayError(.unauthorized, code: "PGRST301", "Empty JWT is sent in Authorization header")

    static let notBearer = GatewayError(
        .unauthorized, code: "PGRST301", "Authorization header must use the Bearer scheme",
        hint: "send Authorization: Bearer <JWT>, or no Authorization header for the anon role")

    static func jwtParts(_ count: Int) -> GatewayError {
        GatewayError(.unauthorized, code: "PGRST301", "Expected 3 parts in JWT; got \(count)")
    }

    static func jwtUndecodable(_ details: String) -> GatewayError {
        GatewayError(.unauthorized, code: "PGRST301", "JWT couldn't be decoded", details: details)
    }

    static func jwtAlgorithm(_ details: String) -> GatewayError {
        GatewayError(.unauthorized, code: "PGRST301", "Wrong or unsupported encoding algorithm", details: details)
    }

    /// No key of the token's algorithm, or none of them verifies the signature. PostgREST gives
    /// both the same message; so does the gateway, so a caller cannot probe which keys exist.
    static let jwtNoKey = GatewayError(
        .unauthorized, code: "PGRST301", "No suitable key or wrong key type",
        details: "None of the keys was able to decode the JWT")

    /// `Authorization: Bearer pgw_…` naming a key other than the request's `apikey`.
    static let bearerIsOtherKey = GatewayError(
        .unauthorized, code: "PGRST301", "The bearer token is an API key, not this request's apikey nor a JWT",
        hint: "send the same key as apikey and Bearer (no user), or a user's JWT as Bearer")

    /// The tenant verifies with a JWKS URL that has not answered with usable keys (never, or not
    /// within their expiry): fail closed, 401 — the caller may retry; never a 5xx.
    static let jwksUnavailable = GatewayError(
        .unauthorized, code: "PGRST301", "No suitable key or wrong key type",
        details: "the tenant's JWKS could not be fetched", hint: "retry later; the identity provider's key set is unreachable")

    static let jwtUnsupportedType = GatewayError(.unauthorized, code: "PGRST301", "Unsupported token type")

    // MARK: JWT claims (PGRST303: verified, but the claims are unacceptable)

    static func jwtClaims(_ message: String, details: String? = nil, hint: String? = nil) -> GatewayError {
        GatewayError(.unauthorized, code: "PGRST303", message, details: details, hint: hint)
    }
}
