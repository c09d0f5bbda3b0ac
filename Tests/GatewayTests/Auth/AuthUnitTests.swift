import CryptoExtras
import Foundation
import JSON
import JWTKit
import Sodium
import Tenancy
import Testing

@testable import Gateway

@Suite("Auth: key parsing, encodings and claim rules (no database)")
struct AuthUnitTests {
    @Test("JWKs: RSA and P-256 keys are used; unusable ones are skipped with a reason and no key material")
    func jwkParsing() async throws {
        let rsa = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
        let ec = ES256PrivateKey()
        let small = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        let smallPrimitives = try small.publicKey.getKeyPrimitives()
        let entries: [JSONValue] = [
            try rsaJWK(rsa, kid: "a"),
            ecJWK(ec, kid: "b"),
            [
                "kty": "RSA", "n": .string(Base64URL.encode(smallPrimitives.modulus)),
                "e": .string(Base64URL.encode(smallPrimitives.publicExponent)),
            ],
            ["kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"],
            ["kty": "oct", "k": "c2VjcmV0"],
            ["kty": "RSA", "n": "AQAB"],
            "not an object",
            setting(try rsaJWK(rsa, kid: "c"), "alg", "RS512"),
            setting(ecJWK(ec), "use", "enc"),
            ["kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"],
        ]
        let keys = await TenantKeys.parse(jwtSecret: "short", publicKeys: JSONValue.array(entries).jsonText)
        #expect(keys.keys.map(\.algorithm) == [.rs256, .es256])
        #expect(keys.keys.map(\.kid) == ["a", "b"])
        #expect(keys.problems.count == 9)
        #expect(keys.problems[0].contains("HS256 secret is 5 bytes"))
        let text = keys.problems.joined(separator: "\n")
        #expect(!text.contains("short"))
        #expect(!text.contains(ec.publicKey.parameters!.x))

        let broken = await TenantKeys.parse(jwtSecret: nil, publicKeys: "{}")
        #expect(broken.keys.isEmpty)
        #expect(broken.problems == ["jwt_public_keys is not a JSON array"])

        let good = await TenantKeys.parse(jwtSecret: String(repeating: "k", count: 32), publicKeys: "[]")
        #expect(good.keys.map(\.algorithm) == [.hs256])
        #expect(good.problems.isEmpty)
    }

    private func setting(_ jwk: JSONValue, _ name: String, _ value: JSONValue) -> JSONValue {
        guard case .object(var members) = jwk else { return jwk }
        members[name] = value
        return .object(members)
    }

    @Test("base64url decoding is strict: URL alphabet, no padding, canonical trailing bits")
    func base64URL() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(Array(text.utf8)) == bytes)
        }
        #expect(Base64URL.decode(Array("aGk=".utf8)) == nil)  // padding
        #expect(Base64URL.decode(Array("a+/b".utf8)) == nil)  // standard alphabet
        #expect(Base64URL.decode(Array("aGk".utf8)) == Array("hi".utf8))
        #expect(Base64URL.decode(Array("aGl".utf8)) == nil)  // same bytes, non-zero unused bits
        #expect(Base64URL.decode(Array("a".utf8)) == nil)  // impossible length
        #expect(Base64URL.decode(Array("".utf8)) == [])
    }

    @Test("claims JSON keeps integers, sorts keys and escapes strings")
    func claimsJSON() throws {
        let claims: JSONValue = [
            "exp": 1_700_000_000, "role": "authenticated", "ratio": 0.5, "ok": true, "none": nil,
            "name": "quote \" backslash \\ newline \n bell \u{07}", "list": [1, "two"], "meta": ["b": 1, "a": 2],
        ]
        #expect(
            claims.jsonText
                == #"{"exp":1700000000,"list":[1,"two"],"meta":{"a":2,"b":1},"name":"quote \" backslash \\ newline \n bell \u0007","none":null,"ok":true,"ratio":0.5,"role":"authenticated"}"#
        )
        let decoded = try JSONDecoder().decode(JSONValue.self, from: Data(claims.jsonText.utf8))
        #expect(decoded == claims)
        #expect(
            try JSONDecoder().decode(JSONValue.self, from: Data("[2.5, -3, 9223372036854775808]".utf8)) == [
                2.5, -3, .double(9_223_372_036_854_775_808),
            ])
    }

    @Test("role and sub rules")
    func identity() throws {
        let user = UUID()
        let authenticated = try RequestAuthenticator.identity(["role": "authenticated", "sub": .string(user.uuidString)])
        #expect(authenticated.0 == .authenticated && authenticated.1 == user)
        let roleless = try RequestAuthenticator.identity([:])
        #expect(roleless.0 == .anon && roleless.1 == nil)
        let service = try RequestAuthenticator.identity(["role": "service_role"])
        #expect(service.0 == .serviceRole && service.1 == nil)
        #expect(throws: GatewayError.self) { try RequestAuthenticator.identity(["role": "authenticated"]) }
        #expect(throws: GatewayError.self) {
            try RequestAuthenticator.identity(["role": "Authenticated", "sub": .string(user.uuidString)])
        }
        #expect(throws: GatewayError.self) { try RequestAuthenticator.identity(["role": "anon", "sub": "x"]) }
    }

    @Test("the Authorization header: Bearer, any case, extra spaces")
    func bearer() throws {
        #expect(try RequestAuthenticator.bearerToken("Bearer abc") == "abc")
        #expect(try RequestAuthenticator.bearerToken("  BEARER    abc ") == "abc")
        #expect(throws: GatewayError.self) { try RequestAuthenticator.bearerToken("Token abc") }
        #expect(throws: GatewayError.self) { try RequestAuthenticator.bearerToken("Bearerabc") }
    }
}
