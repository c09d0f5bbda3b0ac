import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Postgres
import Testing
import TestSupport

/// Differential isolation: for random users, tenants and filters, the gateway's answer equals the
/// same query run directly under the database's RLS as that user, and equals an in-test oracle.
@Suite("REST isolation, differential")
struct RESTIsolationTests {
    struct Project {
        let id: UUID, tenant: UUID, user: UUID, name: String, isPublic: Bool
    }

    /// One random filter, in three spellings: PostgREST's, SQL's and the oracle's.
    struct Filter: CustomStringConvertible {
        let query: String
        let sql: String
        let binds: [any PostgresEncodable]
        let matches: @Sendable (Project) -> Bool
        var description: String { query }
    }

    static func randomFilter(_ random: inout PolicyDifferentialTests.Generator, users: [UUID]) -> Filter {
        let name = "p\(random.next(4))"
        let other = "p\(random.next(4))"
        let user = random.pick(users)
        switch random.next(6) {
        case 0:
            return Filter(query: "name=eq.\(name)", sql: "name = $1", binds: [name]) { $0.name == name }
        case 1:
            return Filter(query: "is_public=is.true", sql: "is_public IS TRUE", binds: []) { $0.isPublic }
        case 2:
            return Filter(query: "or=(is_public.is.false,name.eq.\(name))", sql: "(is_public IS FALSE OR name = $1)", binds: [name]) {
                !$0.isPublic || $0.name == name
            }
        case 3:
            return Filter(query: "user_id=eq.\(user.uuidString.lowercased())", sql: "user_id = $1", binds: [user]) { $0.user == user }
        case 4:
            return Filter(query: "name=in.(\(name),\(other))&is_public=not.is.true", sql: "name = ANY($1::text[]) AND is_public IS NOT TRUE",
                          binds: [PostgresTextArray([name, other])]) { ($0.name == name || $0.name == other) && !$0.isPublic }
        default:
            return Filter(query: "name=neq.\(name)", sql: "name <> $1", binds: [name]) { $0.name != name }
        }
    }

    @Test("gateway = database RLS = oracle for random users, tenants and filters; nothing leaks", arguments: [UInt64(11), 12])
    func isolation(seed: UInt64) async throws {
        try await RESTFixture.run { f in
            var random = PolicyDifferentialTests.Generator(state: seed)
            let tenants = [f.acme, f.globex]
            var usersByTenant: [UUID: [UUID]] = [:]
            var projects: [Project] = []
            for tenant in tenants {
                let users = (0..<3).map { _ in UUID() }
                usersByTenant[tenant.id] = users
                for user in users {
                    try await f.auth.owner.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant.id])
                }
                for _ in 0..<12 {
                    let project = Project(id: UUID(), tenant: tenant.id, user: random.pick(users), name: "p\(random.next(4))", isPublic: random.chance(30))
                    projects.append(project)
                    try await f.auth.owner.query(
                        "INSERT INTO projects (id, tenant_id, user_id, name, type, is_public) VALUES ($1, $2, $3, $4, 'website', $5)",
                        [project.id, project.tenant, project.user, project.name, project.isPublic])
                }
            }
            let allUsers = usersByTenant.values.flatMap { $0 }
            var checked = 0
            for _ in 0..<40 {
                let tenant = random.pick(tenants)
                let user: UUID? = random.chance(15) ? nil : random.pick(usersByTenant[tenant.id]!)
                let filter = Self.randomFilter(&random, users: allUsers)

                // 1. The gateway.
                let response = try await f.request(.get, "/rest/v1/projects?select=id&\(filter.query)", as: tenant, user)
                #expect(response.status == .ok, "\(filter): \(response.body)")
                let viaGateway = Set(try f.json(response.body).compactMap { ($0["id"] as? String).flatMap(UUID.init(uuidString:)) })

                // 2. The same query directly under the database's RLS, as that caller.
                let role = user == nil ? "anon" : "authenticated"
                let claims = user.map { #"{"sub":"\#($0.uuidString.lowercased())","role":"authenticated"}"# } ?? #"{"role":"anon"}"#
                let settings = [
                    Statement("SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), set_config('request.tenant_id', $3, true)",
                              [role, claims, tenant.id.uuidString.lowercased()]),
                    Statement("SELECT id FROM public.projects WHERE \(filter.sql)", filter.binds),
                ]
                let direct = Set(try await f.auth.gateway.withConnection { try await $0.pipeline(settings) }[1].rows.map { try $0.decode("id", as: UUID.self) })

                // 3. The oracle: same tenant, and the caller's own or public.
                let oracle = Set(projects.filter { $0.tenant == tenant.id && ($0.isPublic || $0.user == user) && filter.matches($0) }.map(\.id))

                #expect(viaGateway == direct, "seed \(seed), \(filter), tenant \(tenant.id), user \(String(describing: user))")
                #expect(viaGateway == oracle, "seed \(seed), \(filter), tenant \(tenant.id), user \(String(describing: user))")
                let leaked = projects.filter { viaGateway.contains($0.id) && ($0.tenant != tenant.id || (!$0.isPublic && $0.user != user)) }
                #expect(leaked.isEmpty)
                checked += 1
            }
            #expect(checked == 40)
        }
    }
}
