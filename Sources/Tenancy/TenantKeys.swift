import Foundation
import JSON
import JWTKit
import Logging
import Outbound

/// The parsed key material one tenant's JWTs are verified with: its HS256 secret and its RS256 /
/// ES256 public keys (`tenants.jwt_secret_sealed`, `tenants.jwt_public_keys`), and the audience and
/// issuer the tenant pins (`tenants.jwt_audience`, `tenants.jwt_issuer`).
///
/// Parsing builds jwt-kit verifiers once; ``RequestAuthenticator`` caches the result per tenant,
/// so a request neither reads the tenants table nor parses a key.
package struct TenantKeys: Sendable {
    /// The algorithms the gateway accepts. Everything else — `none`, HS384, PS256, … — is refused
    /// before any key is looked at.
    package enum Algorithm: String, Sendable, CaseIterable {
        case hs256 = "HS256"
        case rs256 = "RS256"
        case es256 = "ES256"
    }

    package struct VerificationKey: Sendable {
        package let algorithm: Algorithm
        /// The JWK's `kid`; nil for the HS256 secret and for JWKs without one.
        package let kid: String?
        package let verifier: any JWTAlgorithm
    }

    package var keys: [VerificationKey]
    /// Why configured keys were left out (no key material in these texts).
    package var problems: [String]
    /// The `aud` the tenant's tokens must carry (`tenants.jwt_audience`); nil: not checked.
    package var audience: String? = nil
    /// The `iss` the tenant's tokens must carry (`tenants.jwt_issuer`); nil: not checked.
    package var issuer: String? = nil
    /// Where the tenant's identity provider publishes its RS256/ES256 keys (`tenants.jwt_jwks_url`);
    /// ``JWKSCache`` fetches them, ``adding(_:)`` joins them to these.
    package var jwksURL: String? = nil
    /// When the previous HS256 secret (in ``keys`` during a rotation's overlap) stops verifying.
    package var previousSecretExpires: Date? = nil

    /// These keys plus `remote` (a JWKS's), with the same pins.
    package func adding(_ remote: [VerificationKey]) -> TenantKeys {
        var joined = self
        joined.keys += remote
        return joined
    }

    /// HS256 secrets shorter than this are never handed to jwt-kit: it asserts (a crash in debug
    /// builds) on HMAC keys shorter than the hash, and RFC 7518 §3.2 forbids them anyway.
    package static let minimumSecretLength = TenantRegistry.minimumJWTSecretLength

    /// The keys matching a token's header: same algorithm, and the same `kid` when both sides name one.
    package func candidates(for algorithm: Algorithm, kid: String?) -> [VerificationKey] {
        keys.filter { $0.algorithm == algorithm && (kid == nil || $0.kid == nil || $0.kid == kid) }
    }

    /// Builds the verifiers. Unusable keys are skipped and described in ``problems``; a tenant
    /// whose keys are all unusable simply cannot verify tokens (every JWT gets 401).
    ///
    /// `previousSecret`: the secret a rotation replaced, verifying too until its overlap window
    /// ends (the caller passes it only while the window is open).
    package static func parse(jwtSecret: String?, previousSecret: String? = nil, publicKeys: String) async -> TenantKeys {
        var keys: [VerificationKey] = []
        var problems: [String] = []

        for (label, text) in [("HS256 secret", jwtSecret), ("previous HS256 secret", previousSecret)] {
            guard let text else { continue }
            let secret = Array(text.utf8)
            // Checked before jwt-kit sees it: jwt-kit traps on HMAC keys shorter than the hash.
            if secret.count >= minimumSecretLength {
                let collection = JWTKeyCollection()
                await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
                if let verifier = try? await collection.getKey() {
                    keys.append(VerificationKey(algorithm: .hs256, kid: nil, verifier: verifier))
                }
            } else {
                problems.append("the \(label) is \(secret.count) bytes, fewer than \(minimumSecretLength); HS256 tokens are refused")
            }
        }

        let entries: [JSONValue]
        do {
            entries = try JSONDecoder().decode([JSONValue].self, from: Data(publicKeys.utf8))
        } catch {
            problems.append("jwt_public_keys is not a JSON array")
            entries = []
        }
        for (index, entry) in entries.enumerated() {
            do {
                keys.append(try await publicKey(entry))
            } catch let problem as KeyProblem {
                problems.append("public key #\(index): \(problem.reason)")
            } catch {
                // jwt-kit's errors describe the key, not its bytes; keep only the kind.
                problems.append("public key #\(index): not a valid key (\(type(of: error)))")
            }
        }
        return TenantKeys(keys: keys, problems: problems)
    }

    private struct KeyProblem: Error {
        let reason: String
    }

    /// One JWK: `{"kty":"RSA","n":…,"e":…}` (RS256) or `{"kty":"EC","crv":"P-256","x":…,"y":…}`
    /// (ES256), each with optional `kid`, `alg` and `use`.
    private static func publicKey(_ entry: JSONValue) async throws -> VerificationKey {
        guard case .object(let jwk) = entry else { throw KeyProblem(reason: "not a JSON object (JWK)") }
        func string(_ name: String) throws -> String? {
            switch jwk[name] {
            case nil, .null?: return nil
            case .string(let value)?: return value
            default: throw KeyProblem(reason: "\"\(name)\" is not a string")
            }
        }
        if let use = try string("use"), use != "sig" {
            throw KeyProblem(reason: "\"use\" is \"\(use)\", not \"sig\"")
        }
        let kid = try string("kid")
        let declared = try string("alg")
        let collection = JWTKeyCollection()
        let algorithm: Algorithm
        switch try string("kty") {
        case "RSA":
            algorithm = .rs256
            guard let n = try string("n"), let e = try string("e") else {
                throw KeyProblem(reason: "an RSA key needs \"n\" and \"e\"")
            }
            // Throws for keys under 2048 bits (jwt-kit refuses them).
            let key = try Insecure.RSA.PublicKey(modulus: n, exponent: e)
            await collection.add(rsa: key, digestAlgorithm: .sha256)
        case "EC":
            algorithm = .es256
            guard try string("crv") == "P-256" else {
                throw KeyProblem(reason: "only the P-256 curve (ES256) is supported")
            }
            guard let x = try string("x"), let y = try string("y") else {
                throw KeyProblem(reason: "an EC key needs \"x\" and \"y\"")
            }
            let key = try ES256PublicKey(parameters: (x: x, y: y))
            await collection.add(ecdsa: key)
        case let other?:
            throw KeyProblem(reason: "key type \"\(other)\" is not supported (RSA or EC)")
        case nil:
            throw KeyProblem(reason: "\"kty\" is missing")
        }
        if let declared, declared != algorithm.rawValue {
            throw KeyProblem(reason: "\"alg\" is \"\(declared)\"; this key type is accepted only as \(algorithm.rawValue)")
        }
        return VerificationKey(algorithm: algorithm, kid: kid, verifier: try await collection.getKey())
    }

    /// Why `url` may not be fetched, or nil: https with a host and no credentials, naming no
    /// internal address (``OutboundHost``: a tenant's admin must not make the gateway fetch from
    /// the metadata service or the deployment's own network); a loopback host (plain http too)
    /// only when `allowsInsecureLoopback`, for a development identity provider on this machine.
    package static func jwksURLProblem(_ url: String, allowsInsecureLoopback: Bool) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty
        else { return "not an absolute URL" }
        guard components.user == nil, components.password == nil else { return "credentials in the URL are refused" }
        switch (scheme, OutboundHost.classify(host)) {
        case (_, .invalid): return "its host is not a valid name or address"
        case (_, .private): return "it names a private, link-local or otherwise internal address"
        case ("https", .public): return nil
        case ("https", .loopback), ("http", .loopback):
            return allowsInsecureLoopback
                ? nil : "a loopback host is refused; set GATEWAY_JWKS_ALLOW_INSECURE_LOOPBACK=true for a development JWKS on this machine"
        default: return "only https:// URLs are fetched"
        }
    }
}
