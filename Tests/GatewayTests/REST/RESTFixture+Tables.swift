import Audit
import Foundation
import Hummingbird
import HummingbirdTesting
import Policy
import Postgres
import TestSupport

@testable import Gateway

extension RESTFixture {
    /// As ``run(_:)``, with test-only governed tables: `sql` creates them (as the owner, after
    /// the migrations) and `policies` are their policy files, served beside the repository's.
    static func run(
        extraSQL sql: String, extraPolicies policies: [String: String], _ body: @escaping @Sendable (RESTFixture) async throws -> Void
    ) async throws {
        try await AuthFixture.run { auth in
            try await auth.owner.withConnection { connection in try await connection.run { try $0.simple(sql) } }
            let directory = TestDatabase.repositoryPolicies
            var sources = try FileManager.default.contentsOfDirectory(atPath: directory.path)
                .filter { $0.hasSuffix(".yaml") }.sorted()
                .map { PolicySource(file: $0, text: try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8)) }
            sources += policies.sorted { $0.key < $1.key }.map { PolicySource(file: $0.key, text: $0.value) }
            let policySet = try PolicySet.load(sources: sources)
            let services = GatewayServices(
                pool: auth.gateway, policies: policySet, authenticator: auth.authenticator,
                readiness: try Readiness(pool: auth.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policySet),
                audit: AuditAppender(pool: auth.gateway))
            let acme = try await auth.tenant("acme")
            let globex = try await auth.tenant("globex")
            let app = Application(router: GatewayApplication.router(services: services))
            try await app.test(.router) { client in
                try await body(RESTFixture(auth: auth, client: client, acme: acme, globex: globex))
            }
        }
    }
}
