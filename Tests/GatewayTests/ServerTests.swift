import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import Policy
import Postgres
import Sodium
import TestSupport
import Testing

@testable import Gateway

@Suite("HTTP server: health, readiness, request ids")
struct ServerTests {
    private func withApplication(
        database: PostgresConfiguration, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let pool = ConnectionPool(configuration: database, options: .init(maxConnections: 2, acquireTimeout: .seconds(2)))
        defer { pool.close() }
        let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
        let services = GatewayServices(
            pool: pool, policies: policies,
            authenticator: try RequestAuthenticator(pool: pool, rootKey: try SecureBytes(count: 32)),
            readiness: try Readiness(pool: pool, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
            audit: AuditAppender(pool: pool))
        let app = Application(router: GatewayApplication.router(services: services))
        try await app.test(.router, body)
    }

    @Test("/health answers 200 and /ready 200 on a migrated database, as the gateway role")
    func readyWhenMigrated() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            try await withApplication(database: TestDatabase.gateway(owner)) { client in
                try await client.execute(uri: "/health", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body) == #"{"status":"ok"}"#)
                }
                try await client.execute(uri: "/ready", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(
                        String(buffer: response.body)
                            == #"{"checks":{"database":"ok","drift":"ok","migrations":"ok","policies":"ok"},"ready":true}"#)
                }
            }
        }
    }

    @Test("error bodies are written as PostgREST writes them: keys sorted, null for what is absent, compact")
    func errorBodyBytes() async throws {
        // The router with the secret routes (ObservabilityTests' fixture).
        try await ObservabilityTests.withGateway { _, _, client in
            do {
                for path in ["/v1/secrets", "/v1/secrets/openai"] {
                    try await client.execute(uri: path, method: .get) { response in
                        #expect(response.status == .unauthorized, "\(path)")
                        #expect(
                            String(buffer: response.body)
                                == #"{"code":"PGW401","details":null,"hint":"Send the service key in the apikey header.","message":"No API key found in request"}"#,
                            "\(path)")
                    }
                }
                try await client.execute(uri: "/v1/secrets", method: .get, headers: [.apikey: "pgw_forged/key"]) { response in
                    #expect(response.status == .unauthorized)
                    #expect(
                        String(buffer: response.body)
                            == #"{"code":"PGW401","details":null,"hint":"Check the apikey header; the key may be mistyped or revoked.","message":"Invalid API key"}"#
                    )
                }
            }
        }
    }

    @Test("every JSON body is the canonical text of its own value (one encoder: sorted keys, compact, slashes as they are)")
    func bodiesAreCanonical() async throws {
        try await ObservabilityTests.withGateway(metricsToken: "scrape-token") { f, _, client in
            do {
                for path in ["/health", "/ready", "/v1/secrets", "/v1/secrets/openai/versions", "/metrics"] {
                    try await client.execute(uri: path, method: .get) { response in
                        let text = String(buffer: response.body)
                        let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
                        #expect(value.jsonText == text, "\(path)")
                    }
                }
                // A secret whose value holds a slash and a control character: read back as the writer writes it.
                let tenant = try await f.tenant("canonical-bodies", scopes: [.secretsRead, .secretsWrite])
                let jwt = try await Tokens.hs256(claims: Tokens.user(UUID()), secret: tenant.secret!)
                let headers: HTTPFields = [.apikey: tenant.apikey, .authorization: "Bearer \(jwt)", .contentType: "application/json"]
                let put = try await client.execute(
                    uri: "/v1/secrets/openai", method: .put, headers: headers, body: ByteBuffer(string: #"{"value": "sk/live\u0001x"}"#)
                ) { ($0.status, String(buffer: $0.body)) }
                #expect(put.0 == .created)
                for (status, text) in [
                    put,
                    try await client.execute(uri: "/v1/secrets/openai", method: .get, headers: headers) {
                        ($0.status, String(buffer: $0.body))
                    },
                ] {
                    #expect(status == .ok || status == .created)
                    let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
                    #expect(value.jsonText == text, "\(text)")
                }
                let read = try await client.execute(uri: "/v1/secrets/openai", method: .get, headers: headers) { String(buffer: $0.body) }
                #expect(read.contains(#""sk/live\u0001x""#), "\(read)")
            }
        }
    }

    @Test("/ready answers 503 and says why when migrations are missing")
    func notReadyWhenNotMigrated() async throws {
        try await TestDatabase.withFreshDatabase { owner in
            try await withApplication(database: owner) { client in
                try await client.execute(uri: "/ready", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(String(buffer: response.body).contains("not migrated: run privacyctl migrate"))
                }
            }
        }
    }

    @Test("/ready answers 503 while the database is unreachable; /health stays 200")
    func notReadyWhenDatabaseDown() async throws {
        let unreachable = try PostgresConfiguration("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
        try await withApplication(database: unreachable) { client in
            try await client.execute(uri: "/ready", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains(#""database":"unreachable: connectionFailed""#))
            }
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test("new request ids are distinct version-4 UUIDs")
    func freshRequestIDs() {
        let ids = (0..<10_000).map { _ in RequestIDs.next() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) {
            let uuid = try? #require(UUID(uuidString: id))
            #expect(uuid?.lowercasedString == id)
            #expect(Array(id.utf8)[14] == UInt8(ascii: "4"))
            #expect("89ab".utf8.contains(Array(id.utf8)[19]))
        }
    }

    @Test("a database that cannot be reached during authentication is 503 PGRST001, never a 500")
    func unreachableDatabaseIsUnavailable() async throws {
        let unreachable = try PostgresConfiguration("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
        try await withApplication(database: unreachable) { client in
            let key = "pgw_" + String(repeating: "ab", count: 16) + "_" + String(repeating: "A", count: 43)
            for uri in ["/rest/v1/projects", "/v1/audit/events"] {
                try await client.execute(uri: uri, method: .get, headers: [.apikey: key]) { response in
                    #expect(response.status == .serviceUnavailable, "\(uri)")
                    #expect(String(buffer: response.body).contains("PGRST00"), "\(uri): \(String(buffer: response.body))")
                }
            }
        }
    }

    @Test("every response carries a request id: the caller's when sane, a new one otherwise")
    func requestIDs() async throws {
        let unreachable = try PostgresConfiguration("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
        try await withApplication(database: unreachable) { client in
            try await client.execute(uri: "/health", method: .get, headers: [.requestID: "abc-123"]) { response in
                #expect(response.headers[.requestID] == "abc-123")
            }
            try await client.execute(uri: "/health", method: .get, headers: [.requestID: "evil\nlog line"]) { response in
                let id = try #require(response.headers[.requestID])
                #expect(UUID(uuidString: id) != nil)
            }
            try await client.execute(uri: "/no/such/route", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.requestID] != nil)
            }
        }
    }
}

@Suite("Readiness and policy drift")
struct DriftReadinessTests {
    @Test("a live policy altered by hand makes /ready 503, naming the table")
    func driftMakesNotReady() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let admin = ConnectionPool(configuration: owner)
            defer { admin.close() }
            let gateway = ConnectionPool(configuration: TestDatabase.gateway(owner))
            defer { gateway.close() }
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let readiness = try Readiness(pool: gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies)
            #expect(await readiness.check().ready)

            try await admin.withConnection { connection in
                try await connection.run {
                    try $0.simple(
                        """
                        ALTER POLICY "Users can view their projects" ON public.projects USING (is_public = true)
                        """)
                }
            }
            let report = await readiness.check()
            #expect(report.ready == false)
            #expect(report.checks["drift"]?.contains("public.projects") == true)
        }
    }
}
