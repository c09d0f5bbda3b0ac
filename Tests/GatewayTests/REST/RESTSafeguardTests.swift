import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Tenancy
import Testing

@testable import Gateway

/// Write safeguards inside the request's transaction (issue 12, item 5), through the real router
/// on a migrated database: nothing a refused request did is committed.
@Suite("REST: write safeguards inside the transaction")
struct RESTSafeguardTests {
    static let prefer = HTTPField.Name("Prefer")!
    static let singular: HTTPFields = [.accept: "application/vnd.pgrst.object+json"]
    static let singularRepresentation: HTTPFields = [
        .accept: "application/vnd.pgrst.object+json", HTTPField.Name("Prefer")!: "return=representation",
    ]

    /// Three projects of alice's named a, b, c.
    static func threeProjects(_ f: RESTFixture) async throws {
        for name in ["a", "b", "c"] {
            let created = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body: #"{"name": "\#(name)", "type": "website", "user_id": "\#(f.alice.uuidString.lowercased())"}"#)
            #expect(created.status == .created, "\(created.body)")
        }
    }

    static func names(_ f: RESTFixture) async throws -> [String] {
        let listed = try await f.request(.get, "/rest/v1/projects?select=name&order=name", as: f.acme, f.alice)
        return try f.json(listed.body).compactMap { $0["name"] as? String }
    }

    static func error(_ body: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
    }

    @Test("a singular DELETE matching three rows is refused with 406 and deletes nothing")
    func singularDeleteOfMany() async throws {
        try await RESTFixture.run { f in
            try await Self.threeProjects(f)
            for headers in [Self.singular, Self.singularRepresentation] {
                let delete = try await f.request(.delete, "/rest/v1/projects?name=in.(a,b,c)", as: f.acme, f.alice, headers: headers)
                #expect(delete.status == .notAcceptable, "\(delete.body)")
                let body = try Self.error(delete.body)
                #expect(body["code"] as? String == "PGRST116")
                #expect(body["details"] as? String == "The result contains 3 rows")
                #expect(try await Self.names(f) == ["a", "b", "c"])
            }
            // One matching row: deleted.
            let one = try await f.request(.delete, "/rest/v1/projects?name=eq.a", as: f.acme, f.alice, headers: Self.singular)
            #expect(one.status == .noContent, "\(one.body)")
            #expect(try await Self.names(f) == ["b", "c"])
        }
    }

    @Test("a singular PATCH matching three rows is refused with 406 and changes nothing")
    func singularPatchOfMany() async throws {
        try await RESTFixture.run { f in
            try await Self.threeProjects(f)
            let patch = try await f.request(
                .patch, "/rest/v1/projects?name=in.(a,b,c)", as: f.acme, f.alice,
                body: #"{"name": "z"}"#, headers: Self.singularRepresentation)
            #expect(patch.status == .notAcceptable, "\(patch.body)")
            #expect(try Self.error(patch.body)["code"] as? String == "PGRST116")
            #expect(try await Self.names(f) == ["a", "b", "c"])

            let one = try await f.request(
                .patch, "/rest/v1/projects?name=eq.b", as: f.acme, f.alice,
                body: #"{"name": "bee"}"#, headers: Self.singularRepresentation)
            #expect(one.status == .ok)
            #expect(one.body.hasPrefix("{"))
            #expect(try await Self.names(f) == ["a", "bee", "c"])
        }
    }

    @Test("a singular POST of two rows is refused with 406 and inserts nothing")
    func singularInsertOfMany() async throws {
        try await RESTFixture.run { f in
            let user = f.alice.uuidString.lowercased()
            let post = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body:
                    #"[{"name": "a", "type": "website", "user_id": "\#(user)"}, {"name": "b", "type": "website", "user_id": "\#(user)"}]"#,
                headers: Self.singular)
            #expect(post.status == .notAcceptable, "\(post.body)")
            #expect(try await Self.names(f).isEmpty)
        }
    }

    @Test("max-affected with handling=strict rolls back and answers PGRST124; without strict it is ignored and not listed")
    func maxAffected() async throws {
        try await RESTFixture.run { f in
            try await Self.threeProjects(f)
            let strict: HTTPFields = [Self.prefer: "handling=strict, max-affected=2"]
            let delete = try await f.request(.delete, "/rest/v1/projects?name=in.(a,b,c)", as: f.acme, f.alice, headers: strict)
            #expect(delete.status == .badRequest, "\(delete.body)")
            let body = try Self.error(delete.body)
            #expect(body["code"] as? String == "PGRST124")
            #expect(body["message"] as? String == "Query result exceeds max-affected preference constraint")
            #expect(body["details"] as? String == "The query affects 3 rows")
            #expect(try await Self.names(f) == ["a", "b", "c"])

            let patch = try await f.request(
                .patch, "/rest/v1/projects?name=in.(a,b)", as: f.acme, f.alice,
                body: #"{"is_public": true}"#, headers: [Self.prefer: "handling=strict, max-affected=1"])
            #expect(patch.status == .badRequest)
            #expect(try Self.error(patch.body)["details"] as? String == "The query affects 2 rows")
            let visibleToBob = try await f.request(.get, "/rest/v1/projects", as: f.acme, f.bob)
            #expect(try f.json(visibleToBob.body).isEmpty)

            let within = try await f.request(.delete, "/rest/v1/projects?name=in.(a,b)", as: f.acme, f.alice, headers: strict)
            #expect(within.status == .noContent)
            #expect(within.headers[.preferenceApplied] == "handling=strict, max-affected=2")
            #expect(try await Self.names(f) == ["c"])

            let lenient = try await f.request(
                .delete, "/rest/v1/projects?name=eq.c", as: f.acme, f.alice,
                headers: [Self.prefer: "max-affected=0"])
            #expect(lenient.status == .noContent)
            #expect(lenient.headers[.preferenceApplied] == nil)
            #expect(try await Self.names(f).isEmpty)
        }
    }

    @Test("tx=rollback answers with the statement's result and leaves nothing behind (POST, PATCH, DELETE)")
    func transactionRollback() async throws {
        try await RESTFixture.run { f in
            let rollback: HTTPFields = [Self.prefer: "return=representation, tx=rollback"]
            let post = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body: #"{"name": "ghost", "type": "website", "user_id": "\#(f.alice.uuidString.lowercased())"}"#, headers: rollback)
            #expect(post.status == .created, "\(post.body)")
            #expect(try f.json(post.body).first?["name"] as? String == "ghost")
            #expect(post.headers[.preferenceApplied] == "return=representation, tx=rollback")
            #expect(try await Self.names(f).isEmpty)

            try await Self.threeProjects(f)
            let patch = try await f.request(
                .patch, "/rest/v1/projects?name=eq.a", as: f.acme, f.alice,
                body: #"{"name": "renamed"}"#, headers: rollback)
            #expect(patch.status == .ok, "\(patch.body)")
            #expect(try f.json(patch.body).first?["name"] as? String == "renamed")
            #expect(try await Self.names(f) == ["a", "b", "c"])

            let delete = try await f.request(.delete, "/rest/v1/projects?name=in.(a,b,c)", as: f.acme, f.alice, headers: rollback)
            #expect(delete.status == .ok)
            #expect(try f.json(delete.body).count == 3)
            #expect(delete.headers[.preferenceApplied] == "return=representation, tx=rollback")
            #expect(try await Self.names(f) == ["a", "b", "c"])

            // tx=commit is the default, and listed when asked for.
            let commit = try await f.request(
                .delete, "/rest/v1/projects?name=eq.a", as: f.acme, f.alice,
                headers: [Self.prefer: "tx=commit"])
            #expect(commit.status == .noContent)
            #expect(commit.headers[.preferenceApplied] == "tx=commit")
            #expect(try await Self.names(f) == ["b", "c"])
        }
    }

    @Test("limit on PATCH and DELETE without order is refused (PGRST109); with order it changes exactly those rows")
    func limitedWrites() async throws {
        try await RESTFixture.run { f in
            try await Self.threeProjects(f)
            let unordered = try await f.request(.delete, "/rest/v1/projects?limit=1", as: f.acme, f.alice)
            #expect(unordered.status == .badRequest, "\(unordered.body)")
            #expect(try Self.error(unordered.body)["code"] as? String == "PGRST109")
            let unorderedPatch = try await f.request(
                .patch, "/rest/v1/projects?name=neq.x&limit=2", as: f.acme, f.alice, body: #"{"name": "z"}"#)
            #expect(unorderedPatch.status == .badRequest)
            #expect(try await Self.names(f) == ["a", "b", "c"])

            let patch = try await f.request(
                .patch, "/rest/v1/projects?order=name.desc&limit=2", as: f.acme, f.alice,
                body: #"{"is_public": true}"#, headers: [Self.prefer: "return=representation"])
            #expect(patch.status == .ok, "\(patch.body)")
            #expect(Set(try f.json(patch.body).compactMap { $0["name"] as? String }) == ["b", "c"])

            let delete = try await f.request(.delete, "/rest/v1/projects?order=name&limit=1&offset=1", as: f.acme, f.alice)
            #expect(delete.status == .noContent, "\(delete.body)")
            #expect(try await Self.names(f) == ["a", "c"])
        }
    }

    @Test("Preference-Applied lists only what the request honoured")
    func preferenceAppliedTellsTheTruth() async throws {
        try await RESTFixture.run { f in
            let read = try await f.request(
                .get, "/rest/v1/projects", as: f.acme, f.alice,
                headers: [Self.prefer: "resolution=merge-duplicates, return=representation, count=planned, max-affected=1, handling=strict"]
            )
            // count=planned is honoured on reads (an exact count below the threshold: never the planner's estimate).
            #expect(read.status == .ok || read.status == .partialContent)
            #expect(read.headers[.preferenceApplied] == "count=planned, handling=strict")
            let counted = try await f.request(.get, "/rest/v1/projects", as: f.acme, f.alice, headers: [Self.prefer: "count=exact"])
            #expect(counted.headers[.preferenceApplied] == "count=exact")

            let insert = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body: #"{"name": "a", "type": "website", "user_id": "\#(f.alice.uuidString.lowercased())"}"#,
                headers: [Self.prefer: "missing=default, return=headers-only, count=exact, max-affected=0, handling=strict"])
            #expect(insert.status == .created, "\(insert.body)")
            #expect(insert.headers[.preferenceApplied] == "handling=strict")
        }
    }
}

/// Tenant-scoped identities and ids (issue 12, item 6).
@Suite("REST: identities and ids are per tenant")
struct RESTTenantIdentityTests {
    static func draft(_ f: RESTFixture, _ tenant: TestTenant, _ user: UUID, id: Int? = nil) async throws
        -> (status: HTTPResponse.Status, body: String, headers: HTTPFields)
    {
        let explicit = id.map { #""id": \#($0), "# } ?? ""
        return try await f.request(
            .post, "/rest/v1/job_drafts", as: tenant, user,
            body: #"{\#(explicit)"title": "draft", "user_id": "\#(user.uuidString.lowercased())"}"#,
            headers: [HTTPField.Name("Prefer")!: "return=representation"])
    }

    @Test("a tenant cannot squat ids ahead of the shared sequence: explicit ids are refused and the other tenant's inserts succeed")
    func noIdSquatting() async throws {
        try await RESTFixture.run { f in
            let first = try await Self.draft(f, f.acme, f.alice)
            #expect(first.status == .created, "\(first.body)")
            let next = try #require(try f.json(first.body).first?["id"] as? Int)
            for id in next + 1...next + 3 {
                let squat = try await Self.draft(f, f.acme, f.alice, id: id)
                #expect(squat.status == .badRequest, "\(squat.body)")
                let body = try RESTSafeguardTests.error(squat.body)
                #expect(body["code"] as? String == "428C9")
                #expect((body["message"] as? String)?.contains("\"id\"") == true)
                #expect(!(body["hint"] as? String ?? "").contains("OVERRIDING"))
            }
            let upsert = try await f.request(
                .patch, "/rest/v1/job_drafts?id=eq.\(next)", as: f.acme, f.alice, body: #"{"id": \#(next + 10)}"#)
            #expect(upsert.status == .badRequest, "\(upsert.body)")
            for _ in 0..<5 {
                let other = try await Self.draft(f, f.globex, f.carol)
                #expect(other.status == .created, "\(other.body)")
            }
        }
    }

    @Test("a unique violation never carries the conflicting key values")
    func uniqueViolationHidesKeys() async throws {
        try await RESTFixture.run { f in
            let created = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body: #"{"name": "a", "type": "website", "user_id": "\#(f.alice.uuidString.lowercased())"}"#,
                headers: RESTTests.representation)
            let id = try #require(try f.json(created.body).first?["id"] as? String)
            let clash = try await f.request(
                .post, "/rest/v1/projects", as: f.globex, f.carol,
                body: #"{"id": "\#(id)", "name": "b", "type": "website", "user_id": "\#(f.carol.uuidString.lowercased())"}"#)
            #expect(clash.status == .conflict, "\(clash.body)")
            #expect(!clash.body.contains(id))
            #expect(!clash.body.contains("Key ("))
            #expect(try RESTSafeguardTests.error(clash.body)["details"] is NSNull)
        }
    }

    @Test("a uuid registered in one tenant is a separate subject in another, and no answer depends on whether it exists elsewhere")
    func subjectsPerTenant() async throws {
        try await RESTFixture.run { f in
            let alice = f.alice.uuidString.lowercased()
            let acmeProject = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body: #"{"name": "acme plan", "type": "website", "user_id": "\#(alice)"}"#)
            #expect(acmeProject.status == .created)
            let acmeProfile = try await f.request(
                .post, "/rest/v1/profiles", as: f.acme, f.alice, body: #"{"id": "\#(alice)", "full_name": "Alice A"}"#)
            #expect(acmeProfile.status == .created, "\(acmeProfile.body)")

            // The same uuid in globex: its own subject, its own rows (and its own profile row,
            // keyed by tenant and id).
            #expect(try f.json(try await f.request(.get, "/rest/v1/projects", as: f.globex, f.alice).body).isEmpty)
            let globexProject = try await f.request(
                .post, "/rest/v1/projects", as: f.globex, f.alice,
                body: #"{"name": "globex plan", "type": "website", "user_id": "\#(alice)"}"#)
            #expect(globexProject.status == .created, "\(globexProject.body)")
            let globexProfile = try await f.request(
                .post, "/rest/v1/profiles", as: f.globex, f.alice, body: #"{"id": "\#(alice)", "full_name": "Alice G"}"#)
            #expect(globexProfile.status == .created, "\(globexProfile.body)")
            let upsert = try await f.request(
                .post, "/rest/v1/profiles", as: f.globex, f.alice, body: #"{"id": "\#(alice)", "full_name": "Alice G2"}"#,
                headers: [HTTPField.Name("Prefer")!: "resolution=merge-duplicates"])
            #expect(upsert.status == .created, "\(upsert.body)")
            #expect(upsert.headers[.preferenceApplied] == "resolution=merge-duplicates")

            func names(_ tenant: TestTenant, _ table: String, _ column: String) async throws -> [String] {
                try f.json(try await f.request(.get, "/rest/v1/\(table)?select=\(column)", as: tenant, f.alice).body).compactMap {
                    $0[column] as? String
                }
            }
            #expect(try await names(f.acme, "projects", "name") == ["acme plan"])
            #expect(try await names(f.globex, "projects", "name") == ["globex plan"])
            #expect(try await names(f.acme, "profiles", "full_name") == ["Alice A"])
            #expect(try await names(f.globex, "profiles", "full_name") == ["Alice G2"])

            // Erasing acme's alice (the database cascade) leaves globex's alice whole.
            try await f.auth.owner.query("DELETE FROM auth.users WHERE tenant_id = $1 AND id = $2", [f.acme.id, f.alice])
            #expect(try await names(f.globex, "projects", "name") == ["globex plan"])

            // Bob exists in acme, a stranger nowhere: globex's answers about them are the same.
            _ = try await f.request(.get, "/rest/v1/projects", as: f.acme, f.bob)
            let stranger = UUID()
            // Status and body (keys sorted: JSON object order is not part of the answer).
            func answers(_ user: UUID) async throws -> [String] {
                let id = user.uuidString.lowercased()
                func normalised(_ response: (status: HTTPResponse.Status, body: String, headers: HTTPFields)) throws -> String {
                    let value = try JSONSerialization.jsonObject(with: Data(response.body.replacingOccurrences(of: id, with: "<id>").utf8))
                    let sorted = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])
                    return "\(response.status.code) " + String(decoding: sorted, as: UTF8.self)
                }
                let read = try await f.request(.get, "/rest/v1/projects", as: f.globex, user)
                let forOther = try await f.request(
                    .post, "/rest/v1/projects", as: f.globex, f.carol,
                    body: #"{"name": "x", "type": "website", "user_id": "\#(id)"}"#)
                return [try normalised(read), try normalised(forOther)]
            }
            let known = try await answers(f.bob)
            let unknown = try await answers(stranger)
            #expect(known == unknown)
        }
    }
}
