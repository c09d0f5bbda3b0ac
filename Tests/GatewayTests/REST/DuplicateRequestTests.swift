import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Postgres
import Privacy
import TestSupport
import Testing

@testable import Gateway

/// Issue 18, item 2: a request filed while an open one of the same kind for the same subject is
/// younger than `PRIVACY_DUPLICATE_WINDOW` is linked to it and never run twice.
@Suite("Duplicate requests: linked within the window, never across tenants, filed anew after it")
struct DuplicateRequestTests {
    static func requests(_ f: PrivacyRouteFixture, _ table: String, tenant: UUID, user: UUID) async throws -> [(
        id: String, status: String, duplicateOf: String?
    )] {
        try await f.auth.owner.query(
            "SELECT id::text AS id, status, duplicate_of::text AS d FROM public.\(table) WHERE tenant_id = $1 AND user_id = $2 ORDER BY requested_at, created_at",
            [tenant, user]
        ).rows.map { (try $0.decode("id"), try $0.decode("status"), try $0.decodeIfPresent("d")) }
    }

    @Test(
        "a second export or erasure within the window is recorded as a closed duplicate linked to the open one, the answer says so, and it runs once"
    )
    func linkedWithinWindow() async throws {
        try await PrivacyRouteFixture.run { f in
            try await f.seed(f.alice)
            let first = try f.object(try await f.request(.post, "/v1/privacy/exports", as: f.acme, f.alice).body)
            let original = try #require((first["request"] as? [String: Any])?["id"] as? String)
            #expect(first["duplicate"] == nil)
            let second = try await f.request(.post, "/v1/privacy/exports", as: f.acme, f.alice)
            #expect(second.status == .accepted)
            let body = try f.object(second.body)
            #expect((body["request"] as? [String: Any])?["id"] as? String == original)
            let duplicate = try #require(body["duplicate"] as? [String: Any])
            #expect(duplicate["duplicate_of"] as? String == original && duplicate["status"] as? String == "canceled")
            let rows = try await Self.requests(f, "data_export_requests", tenant: f.acme.id, user: f.alice)
            #expect(rows.count == 2 && rows[1].duplicateOf == original && rows[1].status == "canceled")
            // The duplicate is audited and never runs: the queue holds the original only.
            let linked = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.request_duplicate")
            #expect(linked.count == 1 && linked.first?.details["duplicate_of"] == .string(original))
            let claimed = try #require(try await f.service.claimNext(.export))
            #expect(claimed.id.uuidString.lowercased() == original)
            #expect(try await f.service.claimNext(.export) == nil)

            // Erasure alike: the second filing answers the open plan, linked.
            let plan = try f.object(try await f.request(.post, "/v1/privacy/deletions", as: f.acme, f.alice).body)
            let erasure = try #require((plan["request"] as? [String: Any])?["id"] as? String)
            let again = try f.object(try await f.request(.post, "/v1/privacy/deletions", as: f.acme, f.alice).body)
            #expect((again["request"] as? [String: Any])?["id"] as? String == erasure)
            #expect((again["duplicate"] as? [String: Any])?["duplicate_of"] as? String == erasure)
            // A linked duplicate cannot be confirmed or retried into running.
            let duplicateID = try #require((again["duplicate"] as? [String: Any])?["id"] as? String)
            #expect(try await f.request(.post, "/v1/privacy/deletions/\(duplicateID)/confirm", as: f.acme, f.alice).status == .conflict)
            #expect(try await f.request(.post, "/v1/privacy/deletions/\(duplicateID)/retry", as: f.acme, f.alice).status == .conflict)
        }
    }

    @Test("the same subject id in another tenant is never linked, and after the window a new request is filed")
    func acrossTenantsAndAfterWindow() async throws {
        try await PrivacyRouteFixture.run(configure: { $0.duplicateWindow = .seconds(3600) }) { f in
            let other = try await f.auth.tenant("initech", scopes: [.privacyExport])
            try await f.seed(f.alice)
            let first = try f.object(try await f.request(.post, "/v1/privacy/exports", as: f.acme, f.alice).body)
            let original = try #require((first["request"] as? [String: Any])?["id"] as? String)
            // The same uuid is another subject in another tenant: its own request, not a duplicate.
            let theirs = try f.object(try await f.request(.post, "/v1/privacy/exports", as: other, f.alice).body)
            #expect(theirs["duplicate"] == nil)
            #expect((theirs["request"] as? [String: Any])?["id"] as? String != original)
            #expect(try await Self.requests(f, "data_export_requests", tenant: other.id, user: f.alice).map(\.duplicateOf) == [nil])

            // After the window the open request is old: a new one is filed, not linked.
            try await f.auth.owner.query(
                "UPDATE public.data_export_requests SET requested_at = now() - interval '2 hours' WHERE id = $1::uuid", [original])
            let later = try f.object(try await f.request(.post, "/v1/privacy/exports", as: f.acme, f.alice).body)
            #expect(later["duplicate"] == nil)
            let fresh = try #require((later["request"] as? [String: Any])?["id"] as? String)
            #expect(fresh != original)
            let rows = try await Self.requests(f, "data_export_requests", tenant: f.acme.id, user: f.alice)
            #expect(rows.map(\.status) == ["pending", "pending"] && rows.allSatisfy { $0.duplicateOf == nil })
        }
    }
}
