import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Tenancy
import TestSupport
import Testing

@testable import Gateway

@Suite("Audit of policy denials, and /v1/audit")
struct AuditRouteTests {
    @Test("a denied write is recorded in the tenant's chain and readable with the audit:read scope")
    func denialsAreAudited() async throws {
        try await RESTFixture.run { f in
            let created = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body: #"{"name": "shared", "type": "website", "is_public": true, "user_id": "\#(f.alice.uuidString.lowercased())"}"#,
                headers: RESTTests.representation)
            let id = try #require(try f.json(created.body).first?["id"] as? String)
            let denied = try await f.request(
                .patch, "/rest/v1/projects?id=eq.\(id)", as: f.acme, f.bob, body: #"{"name": "x"}"#,
                headers: [.requestID: "req-denied-1"])
            #expect(denied.status == .forbidden)

            let (_, auditKey) = try await ServiceKeyRegistry(pool: f.auth.owner, rootKey: f.auth.rootKey)
                .create(tenant: f.acme.id, scopes: [.auditRead], name: "auditor")
            let page = try await f.client.execute(uri: "/v1/audit/events?action=policy.", method: .get, headers: [.apikey: auditKey]) {
                response in
                (response.status, String(buffer: response.body))
            }
            #expect(page.0 == .ok)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(page.1.utf8)) as? [String: Any])
            let events = try #require(document["events"] as? [[String: Any]])
            #expect(events.count == 1)
            #expect(events.first?["action"] as? String == "policy.denied")
            #expect(events.first?["outcome"] as? String == "denied")
            #expect(events.first?["request_id"] as? String == "req-denied-1")
            #expect(events.first?["actor"] as? String == "user:" + f.bob.uuidString.lowercased())
            // The policies that refused the row are named, for "denials by policy" in reports.
            let details = events.first?["details"] as? [String: Any]
            #expect((details?["policy"] as? String)?.isEmpty == false)

            let verify = try await f.client.execute(uri: "/v1/audit/verify", method: .get, headers: [.apikey: auditKey]) {
                String(buffer: $0.body)
            }
            #expect(verify.contains(#""failures":[]"#))

            // The data key cannot read the trail; the other tenant's trail is empty.
            let forbidden = try await f.client.execute(uri: "/v1/audit/events", method: .get, headers: [.apikey: f.acme.apikey]) {
                $0.status
            }
            #expect(forbidden == .forbidden)
            let bad = try await f.client.execute(uri: "/v1/audit/events?limit=0", method: .get, headers: [.apikey: auditKey]) { $0.status }
            #expect(bad == .badRequest)
        }
    }
}
