import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Policy
import Postgres
import TestSupport
import Testing

@testable import Gateway

/// `/rest/v1/{table}` through the real router, on a migrated database, as the gateway role.
struct RESTFixture {
    let auth: AuthFixture
    let client: any TestClientProtocol
    let acme: TestTenant
    let globex: TestTenant
    let alice = UUID(), bob = UUID(), carol = UUID()

    static func run(pools: AuthFixture.Pools = .init(), _ body: @escaping @Sendable (RESTFixture) async throws -> Void) async throws {
        try await AuthFixture.run(pools: pools) { auth in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let services = GatewayServices(
                pool: auth.gateway, policies: policies, authenticator: auth.authenticator,
                readiness: try Readiness(pool: auth.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: AuditAppender(pool: auth.gateway))
            let acme = try await auth.tenant("acme")
            let globex = try await auth.tenant("globex")
            let app = Application(router: GatewayApplication.router(services: services))
            try await app.test(.router) { client in
                try await body(RESTFixture(auth: auth, client: client, acme: acme, globex: globex))
            }
        }
    }

    /// Headers for a user of `tenant` (nil user: anonymous).
    func headers(_ tenant: TestTenant, _ user: UUID?, extra: HTTPFields = [:]) async throws -> HTTPFields {
        var headers = extra
        headers[.apikey] = tenant.apikey
        if let user {
            headers[.authorization] = "Bearer " + (try await Tokens.hs256(claims: Tokens.user(user), secret: tenant.secret!))
        }
        return headers
    }

    @discardableResult
    func request(
        _ method: HTTPRequest.Method, _ uri: String, as tenant: TestTenant, _ user: UUID?, body: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> (status: HTTPResponse.Status, body: String, headers: HTTPFields) {
        var headers = try await self.headers(tenant, user, extra: extra)
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(
            uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }
        ) { response in
            (response.status, String(buffer: response.body), response.headers)
        }
    }

    func json(_ text: String) throws -> [[String: Any]] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
    }
}

@Suite("REST: reads and writes scoped by policy")
struct RESTTests {
    static let representation: HTTPFields = [HTTPField.Name("Prefer")!: "return=representation"]

    @Test("a user creates a project in their own tenant and only they see it")
    func ownRowsOnly() async throws {
        try await RESTFixture.run { f in
            let created = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body: #"{"name": "plan", "type": "website", "user_id": "\#(f.alice.uuidString.lowercased())"}"#,
                headers: RESTTests.representation)
            #expect(created.status == .created, "\(created.body)")
            let row = try #require(try f.json(created.body).first)
            #expect(row["tenant_id"] as? String == f.acme.id.uuidString.lowercased())

            #expect(try f.json(try await f.request(.get, "/rest/v1/projects", as: f.acme, f.alice).body).count == 1)
            #expect(try f.json(try await f.request(.get, "/rest/v1/projects", as: f.acme, f.bob).body).isEmpty)
            #expect(try f.json(try await f.request(.get, "/rest/v1/projects", as: f.acme, nil).body).isEmpty)
            // Subjects are per tenant: alice's uuid in a globex token is a globex subject of its
            // own, who sees none of acme-alice's rows.
            let crossTenant = try await f.request(.get, "/rest/v1/projects", as: f.globex, f.alice)
            #expect(crossTenant.status == .ok)
            #expect(try f.json(crossTenant.body).isEmpty)
            let carol = try await f.request(.get, "/rest/v1/projects", as: f.globex, f.carol)
            #expect(try f.json(carol.body).isEmpty)
        }
    }

    @Test("filters, order, limit and exact count follow PostgREST")
    func filtersOrderCount() async throws {
        try await RESTFixture.run { f in
            for name in ["a", "b", "c"] {
                let result = try await f.request(
                    .post, "/rest/v1/projects", as: f.acme, f.alice,
                    body:
                        #"{"name": "\#(name)", "type": "website", "user_id": "\#(f.alice.uuidString.lowercased())", "is_public": \#(name == "b")}"#
                )
                #expect(result.status == .created, "\(result.body)")
            }
            let page = try await f.request(
                .get, "/rest/v1/projects?select=name&order=name.desc&limit=2", as: f.acme, f.alice,
                headers: [HTTPField.Name("Prefer")!: "count=exact"])
            #expect(page.status == .partialContent)
            #expect(page.headers[.contentRange] == "0-1/3")
            #expect(try f.json(page.body).map { $0["name"] as? String } == ["c", "b"])

            let filtered = try await f.request(
                .get, "/rest/v1/projects?select=name&or=(name.eq.a,is_public.is.true)&order=name", as: f.acme, f.alice)
            #expect(try f.json(filtered.body).map { $0["name"] as? String } == ["a", "b"])
            let inList = try await f.request(.get, "/rest/v1/projects?select=name&name=in.(a,c)&order=name.asc", as: f.acme, f.alice)
            #expect(try f.json(inList.body).map { $0["name"] as? String } == ["a", "c"])
            // Bob sees only the public one.
            let bobs = try await f.request(.get, "/rest/v1/projects?select=name", as: f.acme, f.bob)
            #expect(try f.json(bobs.body).map { $0["name"] as? String } == ["b"])

            let single = try await f.request(
                .get, "/rest/v1/projects?name=eq.a", as: f.acme, f.alice,
                headers: [.accept: "application/vnd.pgrst.object+json"])
            #expect(single.status == .ok)
            #expect(single.body.hasPrefix("{"))
            let many = try await f.request(
                .get, "/rest/v1/projects", as: f.acme, f.alice, headers: [.accept: "application/vnd.pgrst.object+json"])
            #expect(many.status == .notAcceptable)
            #expect(many.body.contains("PGRST116"))
        }
    }

    @Test("a write that policy hides is explained, naming the policy, not answered with an empty success")
    func hiddenWritesExplained() async throws {
        try await RESTFixture.run { f in
            let created = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body: #"{"name": "shared", "type": "website", "is_public": true, "user_id": "\#(f.alice.uuidString.lowercased())"}"#,
                headers: RESTTests.representation)
            let id = try #require(try f.json(created.body).first?["id"] as? String)

            let patch = try await f.request(.patch, "/rest/v1/projects?id=eq.\(id)", as: f.acme, f.bob, body: #"{"name": "mine now"}"#)
            #expect(patch.status == .forbidden)
            #expect(patch.body.contains("Users can update their projects"))
            let delete = try await f.request(.delete, "/rest/v1/projects?id=eq.\(id)", as: f.acme, f.bob)
            #expect(delete.status == .forbidden)
            let missing = try await f.request(
                .patch, "/rest/v1/projects?id=eq.\(UUID().uuidString)", as: f.acme, f.alice, body: #"{"name": "x"}"#)
            #expect(missing.status == .noContent)  // PostgREST: matching nothing is no error

            // Nothing changed.
            let after = try await f.request(.get, "/rest/v1/projects?select=name&id=eq.\(id)", as: f.acme, f.alice)
            #expect(try f.json(after.body).map { $0["name"] as? String } == ["shared"])

            let own = try await f.request(.patch, "/rest/v1/projects?id=eq.\(id)", as: f.acme, f.alice, body: #"{"name": "renamed"}"#)
            #expect(own.status == .noContent)
            let gone = try await f.request(.delete, "/rest/v1/projects?id=eq.\(id)", as: f.acme, f.alice, headers: RESTTests.representation)
            #expect(gone.status == .ok)
            #expect(try f.json(gone.body).first?["name"] as? String == "renamed")
        }
    }

    @Test("inserting for another user or into another tenant is refused with the deciding policy")
    func refusedInserts() async throws {
        try await RESTFixture.run { f in
            _ = try await f.request(.get, "/rest/v1/projects", as: f.acme, f.bob)  // registers bob
            let forBob = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body: #"{"name": "x", "type": "website", "user_id": "\#(f.bob.uuidString.lowercased())"}"#)
            #expect(forBob.status == .forbidden)
            #expect(forBob.body.contains("Users can insert their projects"))
            let otherTenant = try await f.request(
                .post, "/rest/v1/projects", as: f.acme, f.alice,
                body:
                    #"{"name": "x", "type": "website", "user_id": "\#(f.alice.uuidString.lowercased())", "tenant_id": "\#(f.globex.id.uuidString.lowercased())"}"#
            )
            #expect(otherTenant.status == .forbidden)
            #expect(try f.json(try await f.request(.get, "/rest/v1/projects", as: f.acme, f.alice).body).isEmpty)
        }
    }

    @Test("unknown tables, columns, operators and SQL fragments get 4xx with a PostgREST body and change nothing")
    func badInput() async throws {
        try await RESTFixture.run { f in
            let unknownTable = try await f.request(.get, "/rest/v1/pg_authid", as: f.acme, f.alice)
            #expect(unknownTable.status == .notFound)
            #expect(unknownTable.body.contains("PGRST205"))
            let unknownColumn = try await f.request(.get, "/rest/v1/projects?select=password", as: f.acme, f.alice)
            #expect(unknownColumn.status == .badRequest)
            #expect(unknownColumn.body.contains("42703"))
            let unknownOperator = try await f.request(.get, "/rest/v1/projects?name=regex.x", as: f.acme, f.alice)
            #expect(unknownOperator.status == .badRequest)
            for hostile in ["select=id;drop%20table%20projects", "order=id%20desc--", "name)=eq.1", "select=id,(select%201)"] {
                let response = try await f.request(.get, "/rest/v1/projects?\(hostile)", as: f.acme, f.alice)
                #expect(response.status == .badRequest, "\(hostile): \(response.body)")
                let body = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
                #expect(Set(body.keys) == ["code", "message", "details", "hint"])
            }
            let valueInjection = try await f.request(.get, "/rest/v1/projects?name=eq.x'%20OR%20'1'='1", as: f.acme, f.alice)
            #expect(valueInjection.status == .ok)
            #expect(valueInjection.body == "[]")
            let badUUID = try await f.request(.get, "/rest/v1/projects?id=eq.not-a-uuid", as: f.acme, f.alice)
            #expect(badUUID.status == .badRequest)
            #expect(badUUID.body.contains("22P02"))
            let badJSON = try await f.request(.post, "/rest/v1/projects", as: f.acme, f.alice, body: "{not json")
            #expect(badJSON.status == .badRequest)
            let unknownKey = try await f.request(.post, "/rest/v1/projects", as: f.acme, f.alice, body: #"{"nope": 1}"#)
            #expect(unknownKey.status == .badRequest)
            #expect(unknownKey.body.contains("PGRST204"))
        }
    }

    @Test("no or forged credentials are refused before any query runs")
    func credentials() async throws {
        try await RESTFixture.run { f in
            let none = try await f.client.execute(uri: "/rest/v1/projects", method: .get) { $0.status }
            #expect(none == .unauthorized)
            var forged = try await f.headers(f.acme, nil)
            let token = try await Tokens.hs256(claims: Tokens.user(f.alice), secret: f.globex.secret!)
            forged[.authorization] = "Bearer \(token)"
            let status = try await f.client.execute(uri: "/rest/v1/projects", method: .get, headers: forged) { $0.status }
            #expect(status == .unauthorized)
        }
    }

    @Test("/metrics counts requests by route template and policy denials")
    func metrics() async throws {
        try await RESTFixture.run { f in
            _ = try await f.request(.get, "/rest/v1/projects", as: f.acme, f.alice)
            _ = try await f.request(.patch, "/rest/v1/projects?id=eq.\(UUID().uuidString)", as: f.acme, f.alice, body: #"{"name": "x"}"#)
            let text = try await f.client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(
                text.contains(
                    #"privacy_gateway_http_request_duration_seconds_count{route="/rest/v1/{table}",method="GET",status="2xx"} 1"#),
                "\(text)")
            #expect(text.contains("privacy_gateway_db_pool_connections"))
            // Shared connections are reported apart from checked-out ones (the fixture's pool of 6 shares 1,
            // which the REST read opened).
            #expect(text.contains(#"privacy_gateway_db_pool_connections{state="shared"} 1.0"#))
            #expect(!text.contains(f.acme.apikey))
        }
    }

    @Test("/openapi.json describes the gateway's routes and lists the governed tables")
    func openAPI() async throws {
        try await RESTFixture.run { f in
            let text = try await f.client.execute(uri: "/openapi.json", method: .get) { String(buffer: $0.body) }
            let document = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: Any])
            #expect(
                Set(paths.keys).isSuperset(of: [
                    "/health", "/ready", "/metrics", "/rest/v1/projects", "/v1/secrets", "/v1/secrets/{service}", "/v1/audit/events",
                    "/v1/audit/report", "/v1/privacy/settings", "/v1/privacy/deletions/{id}/confirm",
                ]))
            #expect(text.contains("\"projects\""))
        }
    }
}
