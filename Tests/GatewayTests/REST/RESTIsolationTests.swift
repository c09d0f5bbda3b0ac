import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Postgres
import TestSupport
import Testing

@testable import Gateway

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
            return Filter(
                query: "name=in.(\(name),\(other))&is_public=not.is.true", sql: "name = ANY($1::text[]) AND is_public IS NOT TRUE",
                binds: [PostgresTextArray([name, other])]
            ) { ($0.name == name || $0.name == other) && !$0.isPublic }
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
                    let project = Project(
                        id: UUID(), tenant: tenant.id, user: random.pick(users), name: "p\(random.next(4))", isPublic: random.chance(30))
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
                    Statement(
                        "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), set_config('request.tenant_id', $3, true)",
                        [role, claims, tenant.id.uuidString.lowercased()]),
                    Statement("SELECT id FROM public.projects WHERE \(filter.sql)", filter.binds),
                ]
                let direct = Set(
                    try await f.auth.gateway.withConnection { try await $0.pipeline(settings) }[1].rows.map {
                        try $0.decode("id", as: UUID.self)
                    })

                // 3. The oracle: same tenant, and the caller's own or public.
                let oracle = Set(
                    projects.filter { $0.tenant == tenant.id && ($0.isPublic || $0.user == user) && filter.matches($0) }.map(\.id))

                #expect(viaGateway == direct, "seed \(seed), \(filter), tenant \(tenant.id), user \(String(describing: user))")
                #expect(viaGateway == oracle, "seed \(seed), \(filter), tenant \(tenant.id), user \(String(describing: user))")
                let leaked = projects.filter { viaGateway.contains($0.id) && ($0.tenant != tenant.id || (!$0.isPublic && $0.user != user)) }
                #expect(leaked.isEmpty)
                checked += 1
            }
            #expect(checked == 40)
        }
    }
    struct Sitemap {
        let id: UUID, tenant: UUID, project: UUID, title: String
    }

    /// One random embedded read in three spellings: PostgREST's, SQL's (run under the database's
    /// RLS) and the oracle's. Each answers parent id → the ids of its embedded rows.
    struct EmbeddedRead: CustomStringConvertible {
        let query: String
        let sql: String
        let binds: [any PostgresEncodable]
        /// The oracle, given what the caller may see.
        let oracle: (_ projects: [Project], _ sitemaps: [Sitemap]) -> [UUID: Set<UUID>]
        let embedKey: String
        var description: String { query }
    }

    /// Projects with their sitemaps, or sitemaps with their project: `!inner` or not, an
    /// embedded filter or not, an `or=` across the embed or not, and a random top-level filter.
    static func randomEmbeddedRead(_ random: inout PolicyDifferentialTests.Generator, users: [UUID]) -> EmbeddedRead {
        let inner = random.chance(40)
        let embedFilter: String? = random.chance(50) ? "t\(random.next(3))" : nil
        let across: (own: String, related: String)? = random.chance(50) ? ("p\(random.next(4))", "t\(random.next(3))") : nil
        var binds: [any PostgresEncodable] = []
        func bind(_ value: any PostgresEncodable) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        if random.chance(50) {
            // Down: projects?select=id,sitemaps(id).
            let top = randomFilter(&random, users: users)
            let matches = top.matches
            binds = top.binds
            var query = "/rest/v1/projects?select=id,sitemaps\(inner ? "!inner" : "")(id)&\(top.query)"
            var related = "s.project_id = projects.id"
            if let embedFilter {
                query += "&sitemaps.title=eq.\(embedFilter)"
                related += " AND s.title = \(bind(embedFilter))"
            }
            var condition = top.sql
            if inner { condition += " AND EXISTS (SELECT 1 FROM public.sitemaps s WHERE \(related))" }
            if let across {
                query += "&or=(name.eq.\(across.own),sitemaps.title.eq.\(across.related))"
                condition +=
                    " AND (name = \(bind(across.own)) OR EXISTS (SELECT 1 FROM public.sitemaps s WHERE \(related) AND s.title = \(bind(across.related))))"
            }
            let sql =
                "SELECT id, array(SELECT s.id::text FROM public.sitemaps s WHERE \(related)) AS kids FROM public.projects WHERE \(condition)"
            return EmbeddedRead(
                query: query, sql: sql, binds: binds,
                oracle: { projects, sitemaps in
                    var answer: [UUID: Set<UUID>] = [:]
                    for project in projects where matches(project) {
                        let kids = sitemaps.filter { $0.project == project.id && (embedFilter == nil || $0.title == embedFilter) }
                        if inner && kids.isEmpty { continue }
                        if let across, project.name != across.own, !kids.contains(where: { $0.title == across.related }) { continue }
                        answer[project.id] = Set(kids.map(\.id))
                    }
                    return answer
                }, embedKey: "sitemaps")
        }
        // Up: sitemaps?select=id,projects(id).
        let nameFilter: String? = random.chance(50) ? "p\(random.next(4))" : nil
        var query = "/rest/v1/sitemaps?select=id,projects\(inner ? "!inner" : "")(id)"
        var related = "p.id = sitemaps.project_id"
        if let nameFilter {
            query += "&projects.name=eq.\(nameFilter)"
            related += " AND p.name = \(bind(nameFilter))"
        }
        var condition = "true"
        if let embedFilter {
            query += "&title=eq.\(embedFilter)"
            condition += " AND title = \(bind(embedFilter))"
        }
        if inner { condition += " AND EXISTS (SELECT 1 FROM public.projects p WHERE \(related))" }
        if let across {
            query += "&or=(title.eq.\(across.related),projects.name.eq.\(across.own))"
            condition +=
                " AND (title = \(bind(across.related)) OR EXISTS (SELECT 1 FROM public.projects p WHERE \(related) AND p.name = \(bind(across.own))))"
        }
        let sql =
            "SELECT id, array(SELECT p.id::text FROM public.projects p WHERE \(related)) AS kids FROM public.sitemaps WHERE \(condition)"
        return EmbeddedRead(
            query: query, sql: sql, binds: binds,
            oracle: { projects, sitemaps in
                var answer: [UUID: Set<UUID>] = [:]
                for sitemap in sitemaps where embedFilter == nil || sitemap.title == embedFilter {
                    let parent = projects.filter { $0.id == sitemap.project && (nameFilter == nil || $0.name == nameFilter) }
                    if inner && parent.isEmpty { continue }
                    if let across, sitemap.title != across.related, !parent.contains(where: { $0.name == across.own }) { continue }
                    answer[sitemap.id] = Set(parent.map(\.id))
                }
                return answer
            }, embedKey: "projects")
    }

    @Test(
        "embedded reads: gateway = database RLS = oracle for random users × embeds × filters; no row of another tenant or a private parent",
        arguments: [UInt64(21), 22])
    func embeddedIsolation(seed: UInt64) async throws {
        try await RESTFixture.run { f in
            var random = PolicyDifferentialTests.Generator(state: seed)
            let tenants = [f.acme, f.globex]
            var usersByTenant: [UUID: [UUID]] = [:]
            var projects: [Project] = []
            var sitemaps: [Sitemap] = []
            for tenant in tenants {
                let users = (0..<3).map { _ in UUID() }
                usersByTenant[tenant.id] = users
                for user in users {
                    try await f.auth.owner.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant.id])
                }
                for _ in 0..<10 {
                    let project = Project(
                        id: UUID(), tenant: tenant.id, user: random.pick(users), name: "p\(random.next(4))", isPublic: random.chance(30))
                    projects.append(project)
                    try await f.auth.owner.query(
                        "INSERT INTO projects (id, tenant_id, user_id, name, type, is_public) VALUES ($1, $2, $3, $4, 'website', $5)",
                        [project.id, project.tenant, project.user, project.name, project.isPublic])
                    for _ in 0..<random.next(3) {
                        let sitemap = Sitemap(id: UUID(), tenant: tenant.id, project: project.id, title: "t\(random.next(3))")
                        sitemaps.append(sitemap)
                        try await f.auth.owner.query(
                            "INSERT INTO sitemaps (id, tenant_id, project_id, title) VALUES ($1, $2, $3, $4)",
                            [sitemap.id, sitemap.tenant, sitemap.project, sitemap.title])
                    }
                }
            }
            let allUsers = usersByTenant.values.flatMap { $0 }
            var checked = 0
            for _ in 0..<40 {
                let tenant = random.pick(tenants)
                let user: UUID? = random.chance(15) ? nil : random.pick(usersByTenant[tenant.id]!)
                let read = Self.randomEmbeddedRead(&random, users: allUsers)
                let context = "seed \(seed), \(read), tenant \(tenant.id), user \(String(describing: user))"

                // 1. The gateway.
                let response = try await f.request(.get, read.query, as: tenant, user)
                #expect(response.status == .ok, "\(context): \(response.body)")
                var viaGateway: [UUID: Set<UUID>] = [:]
                for row in try f.json(response.body) {
                    let id = try #require((row["id"] as? String).flatMap(UUID.init(uuidString:)))
                    let embedded: [[String: Any]] =
                        switch row[read.embedKey] {
                        case let many as [[String: Any]]: many
                        case let one as [String: Any]: [one]
                        default: []
                        }
                    viaGateway[id] = Set(embedded.compactMap { ($0["id"] as? String).flatMap(UUID.init(uuidString:)) })
                }

                // 2. The same query directly under the database's RLS, as that caller.
                let role = user == nil ? "anon" : "authenticated"
                let claims = user.map { #"{"sub":"\#($0.uuidString.lowercased())","role":"authenticated"}"# } ?? #"{"role":"anon"}"#
                let settings = [
                    Statement(
                        "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), set_config('request.tenant_id', $3, true)",
                        [role, claims, tenant.id.uuidString.lowercased()]),
                    Statement(read.sql, read.binds),
                ]
                var direct: [UUID: Set<UUID>] = [:]
                for row in try await f.auth.gateway.withConnection({ try await $0.pipeline(settings) })[1].rows {
                    direct[try row.decode("id", as: UUID.self)] = Set(
                        try row.decode("kids", as: PostgresTextArray.self).elements.compactMap { $0.flatMap(UUID.init(uuidString:)) })
                }

                // 3. The oracle, over what the caller may see: its tenant's public projects and its own, and their sitemaps.
                let visible = projects.filter { $0.tenant == tenant.id && ($0.isPublic || $0.user == user) }
                let visibleIDs = Set(visible.map(\.id))
                let oracle = read.oracle(visible, sitemaps.filter { $0.tenant == tenant.id && visibleIDs.contains($0.project) })

                #expect(viaGateway == direct, "\(context)")
                #expect(viaGateway == oracle, "\(context)")
                let seen = viaGateway.keys.reduce(into: Set<UUID>()) { $0.insert($1) }.union(viaGateway.values.flatMap { $0 })
                let foreign =
                    projects.filter { seen.contains($0.id) && ($0.tenant != tenant.id || (!$0.isPublic && $0.user != user)) }
                    .map(\.id) + sitemaps.filter { seen.contains($0.id) && !visibleIDs.contains($0.project) }.map(\.id)
                #expect(foreign.isEmpty, "\(context)")
                checked += 1
            }
            #expect(checked == 40)
        }
    }
}
