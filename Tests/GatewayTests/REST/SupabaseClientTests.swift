import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// What supabase-js / supabase-py send and expect, through the real router: the key as Bearer,
/// PostgREST's answers to writes that match nothing, and the gateway's explanations where
/// PostgREST stays silent.
@Suite("REST: Supabase clients unchanged")
struct SupabaseClientTests {
    static let prefer = HTTPField.Name("Prefer")!

    /// A request with exactly these auth headers (the fixture's `request` builds its own).
    static func raw(
        _ f: RESTFixture, _ method: HTTPRequest.Method, _ uri: String, apikey: String?, bearer: String?, body: String? = nil,
        extra: HTTPFields = [:]
    ) async throws -> (status: HTTPResponse.Status, body: String, headers: HTTPFields) {
        var headers = extra
        if let apikey { headers[.apikey] = apikey }
        if let bearer { headers[.authorization] = "Bearer " + bearer }
        if body != nil { headers[.contentType] = "application/json" }
        return try await f.client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
            ($0.status, String(buffer: $0.body), $0.headers)
        }
    }

    static func code(_ body: String) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["code"] as? String
    }

    /// Alice's public and private projects; returns (public id, private id).
    static func aliceProjects(_ f: RESTFixture) async throws -> (String, String) {
        let user = f.alice.uuidString.lowercased()
        let created = try await f.request(
            .post, "/rest/v1/projects?select=id,is_public", as: f.acme, f.alice,
            body:
                #"[{"name": "open", "type": "website", "is_public": true, "user_id": "\#(user)"}, {"name": "closed", "type": "website", "is_public": false, "user_id": "\#(user)"}]"#,
            headers: RESTTests.representation)
        #expect(created.status == .created, "\(created.body)")
        let rows = try f.json(created.body)
        let open = try #require(rows.first { $0["is_public"] as? Bool == true }?["id"] as? String)
        let closed = try #require(rows.first { $0["is_public"] as? Bool == false }?["id"] as? String)
        return (open, closed)
    }

    // MARK: Item 1: the key as Bearer

    @Test("a bearer that is another tenant's key, a second key of the tenant, or a near copy is never taken as anon: 401 with a challenge")
    func bearerOfAnotherKeyIsRefused() async throws {
        try await RESTFixture.run { f in
            _ = try await Self.aliceProjects(f)
            let (_, second) = try await ServiceKeyRegistry(pool: f.auth.owner, rootKey: f.auth.rootKey)
                .create(tenant: f.acme.id, scopes: [.dataRead, .dataWrite], name: "second")
            var nearCopy = Array(f.acme.apikey)
            nearCopy[nearCopy.count - 1] = nearCopy[nearCopy.count - 1] == "A" ? "B" : "A"
            for bearer in [f.globex.apikey, second, String(nearCopy)] {
                let response = try await Self.raw(f, .get, "/rest/v1/projects", apikey: f.acme.apikey, bearer: bearer)
                #expect(response.status == .unauthorized, "\(response.body)")
                #expect(Self.code(response.body) == "PGRST301")
                #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer error=\"invalid_token\"") == true)
                for key in [f.acme.apikey, f.globex.apikey, second] { #expect(!response.body.contains(key)) }
            }
            // The second key works as its own apikey and bearer.
            let own = try await Self.raw(f, .get, "/rest/v1/projects?select=name", apikey: second, bearer: second)
            #expect(own.status == .ok, "\(own.body)")
            #expect(try f.json(own.body).map { $0["name"] as? String } == ["open"])
        }
    }

    @Test("a revoked key sent as apikey and Bearer is 401 PGW401 with a bare Bearer challenge")
    func revokedKeyAsBearer() async throws {
        try await RESTFixture.run { f in
            let ok = try await Self.raw(f, .get, "/rest/v1/projects", apikey: f.acme.apikey, bearer: f.acme.apikey)
            #expect(ok.status == .ok)
            try await ServiceKeyRegistry(pool: f.auth.owner, rootKey: f.auth.rootKey).revoke(id: f.acme.keyID)
            let revoked = try await Self.raw(f, .get, "/rest/v1/projects", apikey: f.acme.apikey, bearer: f.acme.apikey)
            #expect(revoked.status == .unauthorized, "\(revoked.body)")
            #expect(Self.code(revoked.body) == "PGW401")
            #expect(revoked.headers[.wwwAuthenticate] == "Bearer")
        }
    }

    @Test("the request's own key as Bearer is the anon role: it sees what anon sees and writes only what anon may")
    func ownKeyAsBearerIsAnon() async throws {
        try await RESTFixture.run { f in
            _ = try await Self.aliceProjects(f)
            for scheme in ["Bearer ", "bearer "] {
                let read = try await f.client.execute(
                    uri: "/rest/v1/projects?select=name", method: .get,
                    headers: [.apikey: f.acme.apikey, .authorization: scheme + f.acme.apikey]
                ) { ($0.status, String(buffer: $0.body)) }
                #expect(read.0 == .ok, "\(read.1)")
                #expect(try f.json(read.1).map { $0["name"] as? String } == ["open"])
            }
            // Anon may not insert projects: refused as anon is (401, PostgREST's status for an
            // anonymous 42501), with a challenge, and nothing is written.
            let insert = try await Self.raw(
                f, .post, "/rest/v1/projects", apikey: f.acme.apikey, bearer: f.acme.apikey,
                body: #"{"name": "anon's", "type": "website"}"#)
            #expect(insert.status == .unauthorized, "\(insert.body)")
            #expect(Self.code(insert.body) == "42501")
            #expect(insert.headers[.wwwAuthenticate] == "Bearer")
            // Another tenant's key as its own apikey and bearer: globex's anon, none of acme's rows.
            let other = try await Self.raw(f, .get, "/rest/v1/projects", apikey: f.globex.apikey, bearer: f.globex.apikey)
            #expect(other.status == .ok)
            #expect(other.body == "[]")
            // A user's JWT in the same header still works.
            let user = try await f.request(.get, "/rest/v1/projects?select=name&order=name", as: f.acme, f.alice)
            #expect(try f.json(user.body).map { $0["name"] as? String } == ["closed", "open"])
        }
    }

    @Test("the key comparison is over all bytes: prefixes, extensions and an absent apikey never match")
    func keyComparison() {
        let key = "pgw_" + String(repeating: "a", count: 32) + "_" + String(repeating: "B", count: 43)
        #expect(RequestAuthenticator.isRequestKey(Substring(key), apikey: key))
        #expect(!RequestAuthenticator.isRequestKey(Substring(key.dropLast()), apikey: key))
        #expect(!RequestAuthenticator.isRequestKey(Substring(key + "B"), apikey: key))
        #expect(!RequestAuthenticator.isRequestKey(Substring(key), apikey: nil))
    }

    @Test("an expired JWT is 401 PGRST303 with an invalid_token challenge naming the problem")
    func expiredTokenChallenge() async throws {
        try await RESTFixture.run { f in
            var claims = Tokens.user(f.alice)
            claims["exp"] = .int(Int64(Date().timeIntervalSince1970) - 3600)
            let token = try await Tokens.hs256(claims: claims, secret: f.acme.secret!)
            let response = try await Self.raw(f, .get, "/rest/v1/projects", apikey: f.acme.apikey, bearer: token)
            #expect(response.status == .unauthorized)
            let challenge = try #require(response.headers[.wwwAuthenticate])
            #expect(challenge.hasPrefix("Bearer error=\"invalid_token\", error_description=\""), "\(challenge)")
            #expect(!challenge.contains(token))
        }
    }

    // MARK: Item 6: writes matching nothing, and explained denials

    @Test(
        "PATCH and DELETE matching no row the caller can see answer as PostgREST: 204, [] with representation, 406 when singular; nothing changes"
    )
    func writesMatchingNothing() async throws {
        try await RESTFixture.run { f in
            let (open, closed) = try await Self.aliceProjects(f)
            let representation: HTTPFields = [Self.prefer: "return=representation"]
            // Bob cannot see alice's private project; carol (globex) sees none of acme's rows;
            // an unknown id matches nothing for anyone.
            let cases: [(TestTenant, UUID?, String)] = [
                (f.acme, f.bob, closed), (f.globex, f.carol, closed), (f.globex, f.carol, open), (f.acme, f.alice, UUID().uuidString),
                (f.acme, nil, closed),
            ]
            for (tenant, user, id) in cases {
                let patch = try await f.request(.patch, "/rest/v1/projects?id=eq.\(id)", as: tenant, user, body: #"{"name": "x"}"#)
                #expect(patch.status == .noContent, "\(patch.body)")
                #expect(patch.headers[.contentRange] == "*/*")
                let patchRows = try await f.request(
                    .patch, "/rest/v1/projects?id=eq.\(id)", as: tenant, user, body: #"{"name": "x"}"#, headers: representation)
                #expect(patchRows.status == .ok)
                #expect(patchRows.body == "[]")
                let delete = try await f.request(.delete, "/rest/v1/projects?id=eq.\(id)", as: tenant, user)
                #expect(delete.status == .noContent, "\(delete.body)")
                let deleteRows = try await f.request(.delete, "/rest/v1/projects?id=eq.\(id)", as: tenant, user, headers: representation)
                #expect(deleteRows.status == .ok)
                #expect(deleteRows.body == "[]")
                let singular = try await f.request(
                    .patch, "/rest/v1/projects?id=eq.\(id)", as: tenant, user, body: #"{"name": "x"}"#,
                    headers: [.accept: "application/vnd.pgrst.object+json", Self.prefer: "return=representation"])
                #expect(singular.status == .notAcceptable)
                #expect(Self.code(singular.body) == "PGRST116")
            }
            let names = try await f.request(.get, "/rest/v1/projects?select=name&order=name", as: f.acme, f.alice)
            #expect(try f.json(names.body).map { $0["name"] as? String } == ["closed", "open"])
        }
    }

    @Test("PATCH and DELETE of rows the caller sees but may not change: 403 naming the policy, audited, nothing changed")
    func visibleButProtected() async throws {
        try await RESTFixture.run { f in
            let (open, _) = try await Self.aliceProjects(f)
            let patch = try await f.request(
                .patch, "/rest/v1/projects?id=eq.\(open)", as: f.acme, f.bob, body: #"{"name": "bob's"}"#,
                headers: [Self.prefer: "return=representation"])
            #expect(patch.status == .forbidden, "\(patch.body)")
            #expect(Self.code(patch.body) == "42501")
            #expect(patch.body.contains("Users can update their projects"))
            let delete = try await f.request(.delete, "/rest/v1/projects?id=eq.\(open)", as: f.acme, f.bob)
            #expect(delete.status == .forbidden)
            #expect(delete.body.contains("Users can delete their projects"))
            // Anonymous callers see the public project too: refused as anon is (401), explained.
            let anon = try await f.request(.delete, "/rest/v1/projects?id=eq.\(open)", as: f.acme, nil)
            #expect(anon.status == .unauthorized, "\(anon.body)")
            #expect(anon.headers[.wwwAuthenticate] == "Bearer")
            #expect(Self.code(anon.body) == "42501")
            let names = try await f.request(.get, "/rest/v1/projects?select=name&order=name", as: f.acme, f.alice)
            #expect(try f.json(names.body).map { $0["name"] as? String } == ["closed", "open"])
        }
    }

    @Test(
        "an insert the SELECT policy would hide: return=representation is refused as PostgREST (42501) with the policy named and a hint; return=minimal succeeds"
    )
    func insertHiddenFromRepresentation() async throws {
        try await RESTFixture.run { f in
            let now = Int64(Date().timeIntervalSince1970)
            // An anonymous visitor's session token, as the seeds' apps mint one.
            let visitor = try await Tokens.hs256(
                claims: ["role": "anon", "session_id": "visit-1", "iat": .int(now), "exp": .int(now + 600)], secret: f.acme.secret!)
            let event = #"{"session_id": "visit-1", "event_type": "page_view"}"#
            let shown = try await Self.raw(
                f, .post, "/rest/v1/analytics", apikey: f.acme.apikey, bearer: visitor, body: event,
                extra: [Self.prefer: "return=representation"])
            #expect(shown.status == .unauthorized, "\(shown.body)")
            let body = try #require(try JSONSerialization.jsonObject(with: Data(shown.body.utf8)) as? [String: Any])
            #expect(body["code"] as? String == "42501")
            #expect((body["message"] as? String)?.hasPrefix("new row violates row-level security policy for table \"analytics\"") == true)
            let details = try #require(body["details"] as? String)
            #expect(
                details.contains("Users can view own events") || details.contains("no permissive policy applies to role anon"), "\(details)"
            )
            #expect((body["hint"] as? String)?.contains("return=minimal") == true, "\(shown.body)")

            let minimal = try await Self.raw(f, .post, "/rest/v1/analytics", apikey: f.acme.apikey, bearer: visitor, body: event)
            #expect(minimal.status == .created, "\(minimal.body)")
            #expect(minimal.body.isEmpty)

            // Exactly one event was written (the refused one was rolled back).
            let count = try await f.auth.owner.withConnection { pooled in
                try await pooled.run {
                    try $0.query("SELECT count(*)::int AS n FROM public.analytics WHERE session_id = 'visit-1'").first!.decode(
                        "n", as: Int.self)
                }
            }
            #expect(count == 1)
        }
    }

    // MARK: Item 5: representations and counts

    @Test("Accept: text/csv answers a header and one line per row, quoted where needed, built in SQL; an empty result is the header alone")
    func csv() async throws {
        try await RESTFixture.run { f in
            let user = f.alice.uuidString.lowercased()
            let created = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body:
                    #"[{"name": "plain", "type": "website", "user_id": "\#(user)"}, {"name": "a, \"quoted\"\nname", "type": "website", "user_id": "\#(user)", "description": ""}]"#
            )
            #expect(created.status == .created, "\(created.body)")
            let csv = try await f.request(
                .get, "/rest/v1/projects?select=name,description,is_public&order=name.desc", as: f.acme, f.alice,
                headers: [.accept: "text/csv"])
            #expect(csv.status == .ok, "\(csv.body)")
            #expect(csv.headers[.contentType] == "text/csv; charset=utf-8")
            #expect(csv.body == "name,description,is_public\nplain,,false\n\"a, \"\"quoted\"\"\nname\",\"\",false")
            let empty = try await f.request(
                .get, "/rest/v1/projects?select=id,name&name=eq.none", as: f.acme, f.alice, headers: [.accept: "text/csv"])
            #expect(empty.body == "id,name")
            // Bob's CSV holds only what his policies show him: nothing of alice's private projects.
            let bob = try await f.request(.get, "/rest/v1/projects?select=name", as: f.acme, f.bob, headers: [.accept: "text/csv"])
            #expect(bob.body == "name")
            let aliased = try await f.request(
                .get, "/rest/v1/projects?select=title:name&name=eq.plain", as: f.acme, f.alice, headers: [.accept: "text/csv"])
            #expect(aliased.body == "title\nplain")
        }
    }

    @Test("count=exact|planned|estimated as PostgREST defines them, each listed in Preference-Applied only when honoured")
    func counts() async throws {
        try await RESTFixture.run { f in
            let user = f.alice.uuidString.lowercased()
            let rows = (0..<5).map { #"{"name": "p\#($0)", "type": "website", "user_id": "\#(user)"}"# }.joined(separator: ",")
            #expect(try await f.request(.post, "/rest/v1/projects", as: f.acme, f.alice, body: "[\(rows)]").status == .created)
            for count in ["exact", "estimated"] {
                let page = try await f.request(
                    .get, "/rest/v1/projects?select=name&limit=2", as: f.acme, f.alice,
                    headers: [Self.prefer: "count=\(count)"])
                #expect(page.status == .partialContent, "\(count)")
                #expect(page.headers[.contentRange] == "0-1/5", "\(count)")
                #expect(page.headers[.preferenceApplied] == "count=\(count)")
                // Bob sees none of them, exactly (below the estimate's threshold counts are exact).
                let bob = try await f.request(
                    .get, "/rest/v1/projects?select=name", as: f.acme, f.bob, headers: [Self.prefer: "count=\(count)"])
                #expect(bob.headers[.contentRange] == "*/0")
            }
            let planned = try await f.request(
                .get, "/rest/v1/projects?select=name&limit=2", as: f.acme, f.alice, headers: [Self.prefer: "count=planned"])
            #expect(planned.status == .ok || planned.status == .partialContent)
            #expect(planned.headers[.preferenceApplied] == "count=planned")
            let range = try #require(planned.headers[.contentRange])
            #expect(range.hasPrefix("0-1/") && Int(range.dropFirst(4)) != nil, "\(range)")
            // A write does not count: not listed.
            let write = try await f.request(
                .patch, "/rest/v1/projects?name=eq.p0", as: f.acme, f.alice, body: #"{"status": "draft"}"#,
                headers: [Self.prefer: "count=planned"])
            #expect(write.headers[.preferenceApplied] == nil)
        }
    }

    @Test("nulls=stripped drops null members; Prefer: timezone= renders timestamps in that zone and is listed; an unknown zone is ignored")
    func strippedNullsAndTimeZone() async throws {
        try await RESTFixture.run { f in
            let user = f.alice.uuidString.lowercased()
            #expect(
                try await f.request(
                    .post, "/rest/v1/projects", as: f.acme, f.alice,
                    body: #"{"name": "n", "type": "website", "user_id": "\#(user)"}"#
                ).status == .created)
            let stripped = try await f.request(
                .get, "/rest/v1/projects?select=name,description", as: f.acme, f.alice,
                headers: [.accept: "application/vnd.pgrst.array+json;nulls=stripped"])
            #expect(stripped.status == .ok, "\(stripped.body)")
            #expect(try f.json(stripped.body).first?.keys.sorted() == ["name"])
            let kept = try await f.request(.get, "/rest/v1/projects?select=name,description", as: f.acme, f.alice)
            #expect(try f.json(kept.body).first?.keys.sorted() == ["description", "name"])

            let zoned = try await f.request(
                .get, "/rest/v1/projects?select=created_at", as: f.acme, f.alice,
                headers: [Self.prefer: "timezone=Asia/Kolkata"])
            #expect(zoned.headers[.preferenceApplied] == "timezone=Asia/Kolkata")
            #expect((try f.json(zoned.body).first?["created_at"] as? String)?.hasSuffix("+05:30") == true, "\(zoned.body)")
            for zone in ["Mars/Olympus", "UTC';drop", ""] {
                let ignored = try await f.request(
                    .get, "/rest/v1/projects?select=created_at", as: f.acme, f.alice,
                    headers: [Self.prefer: "timezone=\(zone)"])
                #expect(ignored.status == .ok, "\(zone)")
                #expect(ignored.headers[.preferenceApplied] == nil)
                // Under handling=strict a zone that cannot be honoured is refused, as PostgREST does.
                let strict = try await f.request(
                    .get, "/rest/v1/projects?select=created_at", as: f.acme, f.alice,
                    headers: [Self.prefer: "handling=strict, timezone=\(zone)"])
                #expect(strict.status == .badRequest, "\(zone): \(strict.body)")
                #expect(strict.body.contains("PGRST122"))
            }
            // A known zone with handling=strict is honoured and listed beside it.
            let strictZoned = try await f.request(
                .get, "/rest/v1/projects?select=created_at", as: f.acme, f.alice,
                headers: [Self.prefer: "handling=strict, timezone=Asia/Kolkata"])
            #expect(strictZoned.status == .ok, "\(strictZoned.body)")
            #expect(strictZoned.headers[.preferenceApplied] == "handling=strict, timezone=Asia/Kolkata")
            let rpcStrict = try await f.request(
                .post, "/rest/v1/rpc/get_session_cost", as: f.acme, f.alice,
                body: #"{"p_session_id": "\#(UUID().uuidString)"}"#, headers: [Self.prefer: "handling=strict, timezone=Mars/Olympus"])
            #expect(rpcStrict.status == .badRequest, "\(rpcStrict.body)")
            #expect(rpcStrict.body.contains("PGRST122"))
        }
    }
}
