import Audit
import Foundation
@testable import Gateway
import Hummingbird
import Policy
import HummingbirdTesting
import Postgres
import Sodium
import Testing
import TestSupport

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
                    #expect(String(buffer: response.body) == #"{"checks":{"database":"ok","drift":"ok","migrations":"ok","policies":"ok"},"ready":true}"#)
                }
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
                try await connection.run { try $0.simple("""
                    ALTER POLICY "Users can view their projects" ON public.projects USING (is_public = true)
                    """) }
            }
            let report = await readiness.check()
            #expect(report.ready == false)
            #expect(report.checks["drift"]?.contains("public.projects") == true)
        }
    }
}
