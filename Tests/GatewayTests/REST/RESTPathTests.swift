import Foundation
@testable import Gateway
import HTTPTypes
import Testing

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
}
