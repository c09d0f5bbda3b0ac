import Config
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Postgres
import TestSupport
import Testing

@testable import Gateway

/// `Accept: application/vnd.pgrst.plan+json` (PostgREST's EXPLAIN output, `db-plan-enabled`):
/// off unless configured, never for anon unless configured so, never ANALYZE, and a plan reads
/// no row, so it cannot show another tenant's data.
@Suite("REST: execution plans")
struct RESTPlanOutputTests {
    static let planJSON = "application/vnd.pgrst.plan+json"

    static func limits(_ access: GatewayLimits.PlanAccess) -> GatewayLimits {
        var limits = GatewayLimits()
        limits.planAccess = access
        return limits
    }

    static func request(
        _ f: LimitsFixture, _ method: HTTPRequest.Method, _ uri: String, as tenant: TestTenant, _ user: UUID?,
        accept: String, body: String? = nil
    ) async throws -> (status: HTTPResponse.Status, body: String, headers: HTTPFields) {
        var headers = try await f.headers(tenant, user)
        headers[.accept] = accept
        if body != nil { headers[.contentType] = "application/json" }
        return try await f.client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
            ($0.status, String(buffer: $0.body), $0.headers)
        }
    }

    static func seed(_ f: LimitsFixture, owner alice: UUID) async throws {
        let created = try await f.request(
            .post, "/rest/v1/projects", as: f.acme, alice,
            body: #"{"name": "acme-secret-name", "type": "website", "user_id": "\#(alice.lowercasedString)"}"#)
        #expect(created.status == .created, "\(created.body)")
    }

    @Test("off by default: a plan Accept is 406 PGRST107, as PostgREST answers with db-plan-enabled off, for tables, functions and views")
    func offByDefault() async throws {
        try await LimitsFixture.run(limits: GatewayLimits()) { f in
            let alice = UUID()
            for user in [alice, nil] as [UUID?] {
                let answer = try await Self.request(f, .get, "/rest/v1/projects?select=id", as: f.acme, user, accept: Self.planJSON)
                #expect(answer.status == .notAcceptable, "\(answer.body)")
                #expect(try LimitsFixture.error(answer.body)["code"] as? String == "PGRST107")
            }
            let rpc = try await Self.request(
                f, .post, "/rest/v1/rpc/get_session_cost", as: f.acme, alice, accept: Self.planJSON,
                body: #"{"p_session_id": "\#(UUID())"}"#)
            #expect(rpc.status == .notAcceptable, "\(rpc.body)")
        }
    }

    @Test("signed_in: anon is refused as if plans were off; functions and views never answer rows to a plan Accept")
    func anonRefused() async throws {
        try await LimitsFixture.run(limits: Self.limits(.signedIn)) { f in
            let anon = try await Self.request(f, .get, "/rest/v1/projects?select=id", as: f.acme, nil, accept: Self.planJSON)
            #expect(anon.status == .notAcceptable, "\(anon.body)")
            let view = try await Self.request(f, .get, "/rest/v1/provider_usage_stats", as: f.acme, UUID(), accept: Self.planJSON)
            #expect(view.status == .notAcceptable, "\(view.body)")
        }
    }

    @Test("analyze, buffers and wal are refused with 403 before anything runs: a DELETE explained with analyze deletes nothing")
    func analyzeRefused() async throws {
        try await LimitsFixture.run(limits: Self.limits(.all)) { f in
            let alice = UUID()
            try await Self.seed(f, owner: alice)
            for options in ["analyze", "verbose|buffers", "wal", "analyze|nope"] {
                let answer = try await Self.request(
                    f, .delete, "/rest/v1/projects?name=eq.acme-secret-name", as: f.acme, alice,
                    accept: "\(Self.planJSON); options=\(options)")
                #expect(answer.status == (options.contains("nope") ? .notAcceptable : .forbidden), "\(options): \(answer.body)")
            }
            let still = try await f.request(.get, "/rest/v1/projects?select=name", as: f.acme, alice)
            #expect(still.body.contains("acme-secret-name"))
        }
    }

    @Test("a plan reads no row: another tenant's caller, or another user, sees a plan and none of the data")
    func noData() async throws {
        try await LimitsFixture.run(limits: Self.limits(.signedIn)) { f in
            let alice = UUID()
            try await Self.seed(f, owner: alice)
            for (tenant, user) in [(f.globex, UUID()), (f.acme, UUID())] {
                let answer = try await Self.request(
                    f, .get, "/rest/v1/projects?select=name,sitemaps(title)&or=(name.like.acme*,sitemaps.title.eq.x)", as: tenant, user,
                    accept: "\(Self.planJSON); for=\"application/json\"; options=verbose|settings")
                #expect(answer.status == .ok, "\(answer.body)")
                #expect(answer.headers[.contentType] == #"application/vnd.pgrst.plan+json; for="application/json"; charset=utf-8"#)
                let plans = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [[String: Any]])
                #expect(plans.first?["Plan"] != nil)
                #expect(!answer.body.contains("acme-secret-name"))
                #expect(!answer.body.contains(alice.lowercasedString))
                if tenant.id != f.acme.id { #expect(!answer.body.contains(f.acme.id.lowercasedString)) }
            }
        }
    }

    @Test("writes are explained without running: a PATCH's plan changes nothing; plan+text answers EXPLAIN's text")
    func writesAndText() async throws {
        try await LimitsFixture.run(limits: Self.limits(.signedIn)) { f in
            let alice = UUID()
            try await Self.seed(f, owner: alice)
            let patch = try await Self.request(
                f, .patch, "/rest/v1/projects?name=eq.acme-secret-name", as: f.acme, alice, accept: Self.planJSON,
                body: #"{"name": "renamed"}"#)
            #expect(patch.status == .ok, "\(patch.body)")
            #expect(patch.body.contains("\"Plan\""))
            let still = try await f.request(.get, "/rest/v1/projects?select=name", as: f.acme, alice)
            #expect(still.body.contains("acme-secret-name") && !still.body.contains("renamed"))
            let text = try await Self.request(
                f, .get, "/rest/v1/projects?select=name", as: f.acme, alice, accept: "application/vnd.pgrst.plan+text; for=\"text/csv\"")
            #expect(text.status == .ok, "\(text.body)")
            #expect(text.headers[.contentType] == #"application/vnd.pgrst.plan+text; for="text/csv"; charset=utf-8"#)
            #expect(text.body.contains("cost="))
        }
    }
}
