import Foundation
import HTTPTypes
import Policy
import TestSupport
import Testing

@testable import Gateway

@Suite("REST: paths under /rest/v1")
struct RESTPathTests {
    @Test("paths deeper than a table under /rest/v1 answer PostgREST's PGRST125 body, for every method, never an empty 404")
    func unknownPaths() async throws {
        try await RESTFixture.run { f in
            for (method, path) in [
                (HTTPRequest.Method.get, "/rest/v1/projects/extra"), (.post, "/rest/v1/a/b/c"), (.patch, "/rest/v1/projects/1"),
                (.delete, "/rest/v1/x/y"), (.put, "/rest/v1/projects/a"),
            ] {
                let answer = try await f.request(method, path, as: f.acme, f.alice)
                #expect(answer.status == .notFound || answer.status == .methodNotAllowed, "\(method) \(path): \(answer.status)")
                #expect(answer.body.contains("\"code\":\"PGRST"), "\(method) \(path): \(answer.body)")
            }
            let unknown = try await f.request(.get, "/rest/v1/projects/extra", as: f.acme, nil)
            #expect(unknown.body.contains("PGRST125"))
            // An unknown table stays PGRST205, as before.
            #expect(try await f.request(.get, "/rest/v1/nowhere", as: f.acme, nil).body.contains("PGRST205"))
        }
    }

    @Test("GET /rest/v1/ serves the OpenAPI document listing only the served tables and columns")
    func openAPIAtRoot() async throws {
        try await RESTFixture.run { f in
            for path in ["/rest/v1", "/rest/v1/"] {
                let answer = try await f.request(.get, path, as: f.acme, nil)
                #expect(answer.status == .ok, "\(path): \(answer.status)")
                #expect(answer.headers[.contentType]?.hasPrefix("application/openapi+json") == true)
                let document = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
                let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
                #expect(schemas["projects"] != nil)
                #expect(schemas["user_secrets"] == nil)
                let exports = try #require(schemas["data_export_requests"] as? [String: Any])
                #expect((exports["properties"] as? [String: Any])?["download_token_hash"] == nil)
            }
        }
    }

    /// The document lists per path exactly the methods the router lets some caller use: a
    /// `rest: read` table (or a view) lists GET and HEAD, and its writes are 403 for every key and
    /// role; a volatile function has no GET (405); an undeclared or `rest: none` relation is absent.
    @Test(
        "the OpenAPI document lists only the methods a caller can use: read-only tables and views have no writes, volatile functions no GET"
    )
    func openAPIListsUsableMethodsOnly() async throws {
        try await RESTFixture.run { f in
            let answer = try await f.request(.get, "/rest/v1/", as: f.acme, nil)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            func methods(_ path: String) -> Set<String> {
                Set((paths[path] ?? [:]).keys.filter { $0 != "parameters" })
            }
            #expect(paths["/rest/v1/{table}"] == nil)
            #expect(paths["/rest/v1/user_secrets"] == nil)
            #expect(paths["/rest/v1/user_secret_versions"] == nil)
            #expect(methods("/rest/v1/projects") == ["get", "head", "post", "patch", "delete"])
            #expect(methods("/rest/v1/version_history") == ["get", "head", "post", "delete"])
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let readOnly = policies.tables.filter { $0.rest == .read }.map(\.name)
            #expect(!readOnly.isEmpty)
            for table in readOnly {
                #expect(methods("/rest/v1/\(table)") == ["get", "head"], "\(table): \(methods("/rest/v1/\(table)"))")
                // What the document leaves out is refused to every caller: anon, a user, another tenant's user.
                let attempts: [(HTTPRequest.Method, UUID?)] = [(.post, f.alice), (.patch, f.alice), (.delete, nil), (.patch, f.carol)]
                for (method, caller) in attempts {
                    let tenant = caller == f.carol ? f.globex : f.acme
                    let refused = try await f.request(
                        method, "/rest/v1/\(table)\(method == .post ? "" : "?id=eq.\(UUID().uuidString.lowercased())")", as: tenant, caller,
                        body: method == .delete ? nil : "{}")
                    #expect(
                        refused.status == .forbidden || refused.status == .unauthorized,
                        "\(method) \(table): \(refused.status) \(refused.body)")
                    #expect(refused.body.contains("\"code\":\"42501\""), "\(method) \(table): \(refused.body)")
                }
            }
            // Every served table has a path, and a write is listed only when its exposure and some
            // policy for a request role allow it.
            for table in policies.tables where table.rest != .none {
                let listed = methods("/rest/v1/\(table.name)")
                #expect(listed.contains("get"), "\(table.name)")
                if table.rest == .read { #expect(listed.isDisjoint(with: ["post", "patch", "delete"]), "\(table.name)") }
                // A command the file denies on purpose (version_history: "immutable") is not offered.
                let verbs: [PolicyCommand: String] = [.insert: "post", .update: "patch", .delete: "delete"]
                for command in table.deniedCommands.keys {
                    if let verb = verbs[command] { #expect(!listed.contains(verb), "\(table.name) \(verb)") }
                }
            }
            for view in policies.views where !view.roles.isEmpty {
                #expect(methods("/rest/v1/\(view.name)") == ["get", "head"], "\(view.name)")
                let write = try await f.request(.post, "/rest/v1/\(view.name)", as: f.acme, f.alice, body: "{}")
                #expect(write.status.code >= 400 && write.status.code < 500, "\(view.name): \(write.status)")
            }
            for function in policies.functions where !function.roles.isEmpty {
                let listed = methods("/rest/v1/rpc/\(function.name)")
                #expect(listed.contains("post"), "\(function.name)")
                #expect(listed.contains("get") == (function.volatility != .volatile), "\(function.name): \(listed)")
            }
            let volatile = try #require(policies.functions.first { $0.volatility == .volatile })
            let get = try await f.request(.get, "/rest/v1/rpc/\(volatile.name)", as: f.acme, f.alice)
            #expect(get.status == .methodNotAllowed && get.body.contains("PGRST101"), "\(get.status) \(get.body)")
        }
    }
}
