import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Keyring
import Policy
import Postgres
import Privacy
import Secrets
import Sodium
import TestSupport
import Testing

@testable import Gateway

/// Every `/v1` route through the real router, with the secret store, the privacy service and the
/// audit reader the gateway runs, for input validation: bad input is a 400 naming what was expected,
/// never a 5xx (issue 12, item 11).
struct V1Fixture {
    let auth: AuthFixture
    let client: any TestClientProtocol
    let acme: TestTenant
    let alice = UUID()

    static func run(_ body: @escaping @Sendable (V1Fixture) async throws -> Void) async throws {
        try await AuthFixture.run { auth in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("v1-input-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            var configuration = PrivacyConfiguration(
                policyVersion: try PrivacyConfiguration.policyVersion(directory: TestDatabase.repositoryPolicies.path),
                exportDirectory: directory.path)
            configuration.encryptionLimits = .testing
            let privacy = PrivacyService(
                pool: auth.owner, graph: try await SubjectGraph.load(policies: policies, pool: auth.owner),
                audit: AuditAppender(pool: auth.owner), signingKey: try Ed25519.SigningKey.generate(), tokenKey: try SecureBytes(count: 32),
                configuration: configuration)
            let keyring = auth.keyring  // the fixture's: one root key per database
            let auditKeys = try AuditKeys(rootKey: keyring.serviceMaster)
            let audit = AuditAppender(pool: auth.gateway, keys: auditKeys)
            let services = GatewayServices(
                pool: auth.gateway, policies: policies, authenticator: auth.authenticator,
                readiness: try Readiness(pool: auth.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: audit, secrets: SecretStore(pool: auth.gateway, keyring: keyring, audit: audit, auditKeys: auditKeys),
                auditKeys: auditKeys, privacy: privacy)
            let acme = try await auth.tenant(
                "acme", scopes: [.secretsRead, .secretsWrite, .privacyExport, .privacyErase, .auditRead])
            let app = Application(router: GatewayApplication.router(services: services))
            try await app.test(.router) { client in
                try await body(V1Fixture(auth: auth, client: client, acme: acme))
            }
        }
    }

    /// A request as alice (nil user: the service key alone), answered as status and error body.
    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ uri: String, user: UUID? = nil, body: String? = nil, headers extra: HTTPFields = [:]
    ) async throws -> (status: HTTPResponse.Status, body: String, error: [String: Any]) {
        var headers = extra
        headers[.apikey] = acme.apikey
        if let user {
            headers[.authorization] = "Bearer " + (try await Tokens.hs256(claims: Tokens.user(user), secret: acme.secret!))
        }
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            let text = String(buffer: response.body)
            let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
            return (response.status, text, object)
        }
    }

    /// Expects a PostgREST-shaped 400 whose message contains every one of `fragments`.
    func expectBadRequest(
        _ method: HTTPRequest.Method, _ uri: String, user: UUID? = nil, body: String? = nil, headers: HTTPFields = [:],
        naming fragments: [String], sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) async throws {
        let answer = try await call(method, uri, user: user, body: body, headers: headers)
        #expect(answer.status == .badRequest, "\(method) \(uri): \(answer.body)", sourceLocation: sourceLocation)
        #expect(answer.error["code"] as? String == "PGW400", "\(method) \(uri): \(answer.body)", sourceLocation: sourceLocation)
        let message = answer.error["message"] as? String ?? ""
        for fragment in fragments {
            #expect(
                message.contains(fragment), "\(method) \(uri): \"\(message)\" does not name \(fragment)", sourceLocation: sourceLocation)
        }
    }
}

@Suite("/v1 input: the caller's error is a 400, never an outage")
struct V1InputTests {
    /// Every UTF-8 byte percent-encoded, for a path segment.
    static func percentEncoded(_ text: String) -> String {
        text.utf8.map { String(format: "%%%02X", $0) }.joined()
    }

    @Test("a secret version past 32 bits is a 400 naming version and its range, not 503 'the secret store is unavailable'")
    func versionPast32Bits() async throws {
        try await V1Fixture.run { f in
            #expect(try await f.call(.put, "/v1/secrets/openai", user: f.alice, body: #"{"value": "sk-1"}"#).status == .created)
            for bad in ["2147483648", "9223372036854775807", "99999999999999999999", "0", "-1", "1.5", "abc", ""] {
                try await f.expectBadRequest(
                    .get, "/v1/secrets/openai?version=\(bad)", user: f.alice, naming: ["version", "1 to 2147483647"])
                try await f.expectBadRequest(
                    .delete, "/v1/secrets/openai?destroy=true&version=\(bad)", user: f.alice, naming: ["version", "1 to 2147483647"])
            }
            // The largest valid version is a version that does not exist, not an error of the store.
            #expect(try await f.call(.get, "/v1/secrets/openai?version=2147483647", user: f.alice).status == .notFound)
            #expect(try await f.call(.get, "/v1/secrets/openai?version=1", user: f.alice).status == .ok)
            // Refused before the store: nothing was recorded as a store failure.
            let failures = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "secret.")
                .filter { $0.outcome == "failure" && $0.details["reason"] == .string("unavailable") }
            #expect(failures.isEmpty)
        }
    }

    @Test("secrets: If-Match, limit, after, include_deleted and destroy outside what they accept are 400s naming them")
    func secretParameters() async throws {
        try await V1Fixture.run { f in
            for bad in ["2147483648", "\"99999999999\"", "-1", "*", "1,2"] {
                try await f.expectBadRequest(
                    .put, "/v1/secrets/openai", user: f.alice, body: #"{"value": "x"}"#, headers: [.ifMatch: bad],
                    naming: ["If-Match", "2147483647"])
            }
            for bad in ["0", "1001", "-5", "ten", "2147483648"] {
                try await f.expectBadRequest(.get, "/v1/secrets?limit=\(bad)", user: f.alice, naming: ["limit", "1 to 1000"])
            }
            try await f.expectBadRequest(.get, "/v1/secrets?after=a%00b", user: f.alice, naming: ["after", "control characters"])
            try await f.expectBadRequest(
                .get, "/v1/secrets?after=\(String(repeating: "a", count: 256))", user: f.alice, naming: ["after", "255"])
            try await f.expectBadRequest(
                .get, "/v1/secrets?include_deleted=yes", user: f.alice, naming: ["include_deleted", "true or false"])
            try await f.expectBadRequest(.delete, "/v1/secrets/openai?destroy=1", user: f.alice, naming: ["destroy", "true or false"])
            #expect(try await f.call(.get, "/v1/secrets?limit=1000&include_deleted=false&after=a", user: f.alice).status == .ok)
        }
    }

    @Test("a service name of 255 characters but more code points than the column allows is a 400, not a 503 from its CHECK constraint")
    func serviceNameLength() async throws {
        try await V1Fixture.run { f in
            // 200 grapheme clusters (Swift's count), 400 code points (Postgres' char_length).
            let combining = Self.percentEncoded(String(repeating: "e\u{301}", count: 200))
            try await f.expectBadRequest(
                .put, "/v1/secrets/\(combining)", user: f.alice, body: #"{"value": "x"}"#, naming: ["service name", "255"])
            try await f.expectBadRequest(.get, "/v1/secrets/a%00b", user: f.alice, naming: ["service name", "control characters"])
            try await f.expectBadRequest(.get, "/v1/secrets/%FF%FE", user: f.alice, naming: ["service name", "UTF-8"])
            try await f.expectBadRequest(.get, "/v1/secrets/%20%20", user: f.alice, naming: ["service name", "not blank"])
            let longest = Self.percentEncoded(String(repeating: "\u{E9}", count: 255))
            #expect(try await f.call(.put, "/v1/secrets/\(longest)", user: f.alice, body: #"{"value": "x"}"#).status == .created)
        }
    }

    @Test("a secret body with an unknown field or a value that is not a string is a 400 naming what was expected")
    func secretBody() async throws {
        try await V1Fixture.run { f in
            try await f.expectBadRequest(
                .put, "/v1/secrets/openai", user: f.alice, body: #"{"value": "x", "valeu": "y"}"#, naming: ["\"valeu\""])
            try await f.expectBadRequest(.put, "/v1/secrets/openai", user: f.alice, body: #"{"value": 1}"#, naming: ["{\"value\": \"…\"}"])
            try await f.expectBadRequest(.put, "/v1/secrets/openai", user: f.alice, body: #"["x"]"#, naming: ["JSON object"])
            try await f.expectBadRequest(.put, "/v1/secrets/openai", user: f.alice, body: "", naming: ["JSON object"])
        }
    }

    @Test("an extension reason that starts with NUL is a 400, not a 500 from the table's CHECK constraint")
    func extensionReason() async throws {
        try await V1Fixture.run { f in
            let filed = try await f.call(.post, "/v1/privacy/exports", user: f.alice)
            #expect(filed.status == .accepted)
            let id = try #require((filed.error["request"] as? [String: Any])?["id"] as? String)
            let extend = "/v1/privacy/exports/\(id)/extend"
            try await f.expectBadRequest(
                .post, extend, body: #"{"months": 1, "reason": "\u0000many systems"}"#, naming: ["reason", "control characters"])
            try await f.expectBadRequest(.post, extend, body: #"{"months": 3, "reason": "many systems"}"#, naming: ["1 or 2 months"])
            try await f.expectBadRequest(.post, extend, body: #"{"months": 9223372036854775808, "reason": "x"}"#, naming: ["months"])
            try await f.expectBadRequest(.post, extend, body: #"{"months": "1", "reason": "x"}"#, naming: ["months"])
            try await f.expectBadRequest(.post, extend, body: #"{"months": 1, "reason": "x", "due": "never"}"#, naming: ["\"due\""])
            let extended = try await f.call(.post, extend, body: #"{"months": 1, "reason": "many systems\nacross teams"}"#)
            #expect(extended.status == .ok, "\(extended.body)")
        }
    }

    @Test("privacy settings: an unknown field or a retention past its range is a 400 naming it; nothing changes")
    func settingsBody() async throws {
        try await V1Fixture.run { f in
            try await f.expectBadRequest(
                .put, "/v1/privacy/settings", user: f.alice, body: #"{"analytics": true}"#, naming: ["\"analytics\""])
            try await f.expectBadRequest(
                .put, "/v1/privacy/settings", user: f.alice, body: #"{"data_retention_days": 2147483648}"#, naming: ["data_retention_days"])
            try await f.expectBadRequest(
                .put, "/v1/privacy/settings", user: f.alice, body: #"{"data_retention_days": 36501}"#,
                naming: ["data_retention_days", "36500"])
            let settings = try await f.call(.get, "/v1/privacy/settings", user: f.alice)
            #expect(settings.error["data_retention_days"] as? Int == 730 && settings.error["analytics_consent"] as? Bool == false)
        }
    }

    @Test("a download with a malformed token or passphrase is a 400 before the single-use token is looked at")
    func downloadInput() async throws {
        try await V1Fixture.run { f in
            let id = UUID().uuidString.lowercased()
            try await f.expectBadRequest(.get, "/v1/privacy/exports/\(id)/download?token=abc", naming: ["token", "64 hexadecimal"])
            let token = String(repeating: "ab", count: 32)
            try await f.expectBadRequest(
                .get, "/v1/privacy/exports/\(id)/download?token=\(token)", headers: [.exportPassphrase: "short"],
                naming: ["X-Export-Passphrase", "8 to 1024"])
            // Well formed but unknown: the token is refused as such.
            #expect(try await f.call(.get, "/v1/privacy/exports/\(id)/download?token=\(token)").status == .forbidden)
        }
    }

    @Test("audit events: after, limit, action and actor outside what they accept are 400s naming them")
    func auditParameters() async throws {
        try await V1Fixture.run { f in
            for bad in ["-1", "9223372036854775808", "x"] {
                try await f.expectBadRequest(.get, "/v1/audit/events?after=\(bad)", naming: ["after", "0 to 9223372036854775807"])
            }
            try await f.expectBadRequest(.get, "/v1/audit/events?limit=1001", naming: ["limit", "1 to 1000"])
            try await f.expectBadRequest(.get, "/v1/audit/events?action=secret.%00", naming: ["action", "control characters"])
            try await f.expectBadRequest(.get, "/v1/audit/events?actor=\(String(repeating: "u", count: 256))", naming: ["actor", "255"])
            #expect(try await f.call(.get, "/v1/audit/events?after=9223372036854775807&limit=1000&action=secret.&actor=x").status == .ok)
        }
    }

    @Test("a report period outside 1970–9999 is a 400 naming the bound; an until in year 0 or 1 was a 503 'the report could not be made'")
    func reportPeriod() async throws {
        try await V1Fixture.run { f in
            try await f.expectBadRequest(
                .get, "/v1/audit/report?until=0000-06-01T00:00:00Z", naming: ["until", "1970-01-01 to 9999-12-31"])
            try await f.expectBadRequest(.get, "/v1/audit/report?until=0001-01-01", naming: ["until"])
            try await f.expectBadRequest(.get, "/v1/audit/report?since=0000-01-01", naming: ["since", "1970-01-01 to 9999-12-31"])
            try await f.expectBadRequest(.get, "/v1/audit/report?since=1969-12-31", naming: ["since"])
            try await f.expectBadRequest(.get, "/v1/audit/report?format=pdf", naming: ["format", "json, md or html"])
            #expect(try await f.call(.get, "/v1/audit/report?since=1970-01-01&until=9999-12-31").status == .ok)
        }
    }

    @Test("/openapi.json states the ranges, enums and bodies the /v1 routes enforce")
    func documentedRanges() async throws {
        try await V1Fixture.run { f in
            let text = try await f.client.execute(uri: "/openapi.json", method: .get) { String(buffer: $0.body) }
            let document = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            let read = try #require(paths["/v1/secrets/{service}"]?["get"] as? [String: Any])
            let version = try #require((read["parameters"] as? [[String: Any]])?.first { $0["name"] as? String == "version" })
            #expect((version["schema"] as? [String: Any])?["maximum"] as? Int == Int(Int32.max))
            let settings = try #require(paths["/v1/privacy/settings"]?["put"] as? [String: Any])
            let body = try #require(
                ((settings["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"] as? [String: Any])
            #expect((body["schema"] as? [String: Any])?["additionalProperties"] as? Bool == false)
        }
    }
}
