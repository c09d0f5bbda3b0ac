import Foundation
import JSON
import JWTKit
import Sodium
import Tenancy

/// Verifies a compact JWS with one tenant's keys and returns its claims.
///
/// The header is parsed here rather than by jwt-kit because jwt-kit picks a key by `kid` and
/// otherwise falls back to a default key whatever the header's `alg` says. Here the algorithm is
/// decided first — only HS256, RS256 and ES256 — and only keys of that algorithm are tried, so a
/// token can never be checked with a key of another type (`alg` confusion) and `alg: none` never
/// reaches a key at all. jwt-kit does the cryptography.
///
/// The time checks follow PostgREST (src/PostgREST/Auth/Jwt.hs) — `exp`, `nbf` and `iat` must be
/// numbers when present, with a clock-skew leeway (PostgREST's 30 seconds by default) — except that
/// `exp` is required unless ``Rules/requiresExpiry`` is off: a token that never expires cannot be
/// taken back. A tenant may also pin its tokens' audience (`aud`) and issuer (`iss`).
enum JWTVerifier {
    /// Longer tokens are refused before any decoding: no legitimate JWT comes near this.
    static let maximumLength = 16 * 1024
    /// PostgREST's `allowedSkewSeconds`, and the most the gateway allows.
    static let maximumClockSkew: Double = 30

    /// What a verified token's claims must satisfy besides its signature.
    struct Rules: Sendable {
        /// Seconds of clock skew allowed on `exp`, `nbf` and `iat` (0 to 30).
        var leeway: Double = JWTVerifier.maximumClockSkew
        /// Refuse tokens without `exp` (the default).
        var requiresExpiry = true
    }

    static func verify(
        _ token: Substring, with keys: TenantKeys, now: Date, rules: Rules = Rules()
    ) throws(GatewayError) -> [String: JSONValue] {
        guard !token.isEmpty else { throw .emptyJWT }
        let bytes = Array(token.utf8)
        guard bytes.count <= maximumLength else {
            throw .jwtUndecodable("the JWT is longer than \(maximumLength) bytes")
        }
        let dots = bytes.indices.filter { bytes[$0] == UInt8(ascii: ".") }
        guard dots.count == 2 else { throw .jwtParts(dots.count + 1) }
        let headerPart = bytes[..<dots[0]]
        let payloadPart = bytes[(dots[0] + 1)..<dots[1]]
        let signaturePart = bytes[(dots[1] + 1)...]

        // Header: which algorithm, which key.
        guard let headerBytes = Base64URL.decode(headerPart) else {
            throw .jwtUndecodable("the header is not base64url")
        }
        guard case .object(let header)? = try? JSONDecoder().decode(JSONValue.self, from: Data(headerBytes)) else {
            throw .jwtUndecodable("the header is not a JSON object")
        }
        if header["enc"] != nil { throw .jwtUnsupportedType }  // a JWE: encrypted, not signed
        if header["crit"] != nil {
            throw .jwtUndecodable("critical header parameters (crit) are not supported")
        }
        guard case .string(let alg)? = header["alg"] else {
            throw .jwtAlgorithm("the header has no \"alg\"")
        }
        guard let algorithm = TenantKeys.Algorithm(rawValue: alg) else {
            // The header's own text is not echoed: it is attacker-chosen.
            throw .jwtAlgorithm(
                alg.lowercased() == "none"
                    ? "unsigned tokens (alg none) are refused; accepted algorithms: HS256, RS256, ES256"
                    : "accepted algorithms: HS256, RS256, ES256")
        }
        let kid: String?
        switch header["kid"] {
        case nil, .null?: kid = nil
        case .string(let value)?: kid = value
        default: throw .jwtUndecodable("the header's \"kid\" is not a string")
        }

        // Signature, over the first two parts exactly as sent.
        guard let signature = Base64URL.decode(signaturePart) else {
            throw .jwtUndecodable("the signature is not base64url")
        }
        let signingInput = bytes[..<dots[1]]
        let verified = keys.candidates(for: algorithm, kid: kid).contains { key in
            // A malformed signature (wrong length, not a point) throws in jwt-kit: not verified.
            (try? key.verifier.verify(signature, signs: signingInput)) == true
        }
        guard verified else { throw .jwtNoKey }

        // Claims: only now is the payload trusted enough to read.
        guard let payloadBytes = Base64URL.decode(payloadPart),
            case .object(let claims)? = try? JSONDecoder().decode(JSONValue.self, from: Data(payloadBytes))
        else {
            throw .jwtClaims("Parsing claims failed", details: "the payload is not a base64url JSON object")
        }
        try checkTimes(claims, now: now.timeIntervalSince1970.rounded(.down), rules: rules)
        try checkAudienceAndIssuer(claims, keys: keys)
        return claims
    }

    /// The header's `kid`, when the token's header decodes and names one (for a JWKS refetch
    /// decision only: nothing is trusted from it).
    static func keyID(_ token: Substring) -> String? {
        guard let dot = token.firstIndex(of: "."), token.distance(from: token.startIndex, to: dot) <= maximumLength,
            let bytes = Base64URL.decode(token[..<dot].utf8),
            case .object(let header)? = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)),
            case .string(let kid)? = header["kid"]
        else { return nil }
        return kid
    }

    private static func checkTimes(_ claims: [String: JSONValue], now: Double, rules: Rules) throws(GatewayError) {
        let allowedClockSkew = min(max(rules.leeway, 0), maximumClockSkew)
        func seconds(_ name: String) throws(GatewayError) -> Double? {
            switch claims[name] {
            case nil, .null?: return nil
            case let value?:
                guard let number = value.numberValue else {
                    throw .jwtClaims("The JWT '\(name)' claim must be a number")
                }
                return number.rounded(.down)
            }
        }
        if let exp = try seconds("exp") {
            if now - allowedClockSkew > exp { throw .jwtClaims("JWT expired") }
        } else if rules.requiresExpiry {
            throw .jwtClaims("The JWT has no 'exp' claim", hint: "tokens must expire: sign them with an exp claim")
        }
        if let nbf = try seconds("nbf"), now + allowedClockSkew < nbf {
            throw .jwtClaims("JWT not yet valid")
        }
        if let iat = try seconds("iat"), now + allowedClockSkew < iat {
            throw .jwtClaims("JWT issued at future")
        }
        switch claims["aud"] {
        case nil, .null?, .string?: break
        case .array(let values)? where values.allSatisfy({ $0.stringValue != nil }): break
        default: throw .jwtClaims("The JWT 'aud' claim must be a string or an array of strings")
        }
    }

    /// The tenant's pinned audience must be the token's `aud` (or one of them), and its pinned
    /// issuer the token's `iss`, compared exactly. Unpinned: not checked (as PostgREST without
    /// `jwt-aud`).
    private static func checkAudienceAndIssuer(_ claims: [String: JSONValue], keys: TenantKeys) throws(GatewayError) {
        if let audience = keys.audience {
            let audiences: [String]
            switch claims["aud"] {
            case .string(let value)?: audiences = [value]
            case .array(let values)?: audiences = values.compactMap(\.stringValue)
            default: audiences = []
            }
            guard audiences.contains(audience) else { throw .jwtClaims("JWT not in audience") }
        }
        if let issuer = keys.issuer {
            guard case .string(let value)? = claims["iss"], value == issuer else {
                throw .jwtClaims("JWT issuer not accepted", details: "the tenant accepts tokens of one issuer only")
            }
        }
    }
}
