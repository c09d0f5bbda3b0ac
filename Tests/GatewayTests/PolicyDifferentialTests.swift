import Foundation
import Policy
import Postgres
import TestSupport
import Testing

@testable import Gateway

/// The policy engine against the database's own RLS: for random rows and random callers, the
/// evaluator's decision must equal what Postgres does for the same row and caller — every case.
@Suite("Policy engine versus Postgres RLS")
struct PolicyDifferentialTests {
    /// A deterministic generator, so a failure can be reproduced from its seed.
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        mutating func pick<T>(_ items: [T]) -> T { items[next(items.count)] }
        mutating func chance(_ percent: Int) -> Bool { next(100) < percent }
    }

    struct Caller: CustomStringConvertible {
        let role: String
        let user: UUID?
        let tenant: UUID
        let sessionID: String?
        var auth: AuthContext {
            AuthContext(role: role, userID: user, tenantID: tenant, claims: sessionID.map { ["session_id": .text($0)] } ?? [:])
        }
        var claimsJSON: String {
            var claims: [String: String] = ["role": role]
            if let user { claims["sub"] = user.uuidString.lowercased() }
            if let sessionID { claims["session_id"] = sessionID }
            return String(decoding: try! JSONEncoder().encode(claims), as: UTF8.self)
        }
        var description: String {
            "\(role) \(user?.uuidString.prefix(8) ?? "-") tenant \(tenant.uuidString.prefix(8)) session \(sessionID ?? "-")"
        }
        var requestSettings: [Statement] {
            [
                Statement("SELECT set_config('role', $1, true)", [role]),
                Statement("SELECT set_config('request.jwt.claims', $1, true)", [claimsJSON]),
                Statement("SELECT set_config('request.tenant_id', $1, true)", [tenant.uuidString.lowercased()]),
            ]
        }
    }

    static let tables = [
        "projects", "sitemaps", "user_secrets", "ai_assistant_sessions", "brands", "conversation_sessions", "ai_model_configs",
    ]
    static let sessions = ["s-alpha", "s-beta", "s-'quoted'"]

    /// Random rows in two tenants, inserted as the owner (RLS does not apply to it).
    private func seed(_ admin: ConnectionPool, seed: UInt64) async throws -> (tenants: [UUID], users: [UUID: [UUID]]) {
        var random = Generator(state: seed)
        let tenants = [UUID(), UUID()]
        var users: [UUID: [UUID]] = [:]
        for tenant in tenants {
            try await admin.query("INSERT INTO tenants (id, name) VALUES ($1, $2)", [tenant, "t-\(tenant.uuidString.prefix(8))"])
            users[tenant] = (0..<3).map { _ in UUID() }
            for user in users[tenant]! {
                try await admin.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant])
            }
        }
        for tenant in tenants {
            let members = users[tenant]!
            var projects: [UUID] = []
            for _ in 0..<8 {
                let id = UUID()
                projects.append(id)
                try await admin.query(
                    "INSERT INTO projects (id, tenant_id, user_id, name, type, is_public) VALUES ($1, $2, $3, 'p', 'website', $4)",
                    [id, tenant, random.pick(members), random.chance(30)])
            }
            for _ in 0..<10 {
                try await admin.query(
                    "INSERT INTO sitemaps (tenant_id, project_id, title) VALUES ($1, $2, 'map')", [tenant, random.pick(projects)])
            }
            for (index, user) in members.enumerated() where random.chance(70) {
                try await admin.query(
                    "INSERT INTO user_secrets (tenant_id, user_id, service_name, encrypted_value, initialization_vector) VALUES ($1, $2, $3, $4, $5)",
                    [tenant, user, "svc\(index)", [UInt8](repeating: 1, count: 32), [UInt8](repeating: 2, count: 24)])
            }
            for (index, session) in Self.sessions.enumerated() {
                let owner: UUID? = random.chance(50) ? random.pick(members) : nil
                try await admin.query(
                    "INSERT INTO ai_assistant_sessions (tenant_id, user_id, session_id) VALUES ($1, $2, $3)",
                    [tenant, owner, session + "-\(index)" + (random.chance(50) ? "" : "x")])
                if index == 0 {
                    // Also a session whose id is exactly a claim value.
                    try await admin.query(
                        "INSERT INTO ai_assistant_sessions (tenant_id, user_id, session_id) VALUES ($1, NULL, $2)", [tenant, session])
                }
            }
            for _ in 0..<4 {
                let brand = UUID()
                let user = random.pick(members)
                try await admin.query("INSERT INTO brands (id, tenant_id, user_id, name) VALUES ($1, $2, $3, 'b')", [brand, tenant, user])
                try await admin.query(
                    "INSERT INTO conversation_sessions (tenant_id, brand_id, user_id) VALUES ($1, $2, $3)", [tenant, brand, user])
            }
            try await admin.query(
                "INSERT INTO ai_model_configs (tenant_id, provider, model_name, model_type) VALUES ($1, 'openai', $2, 'fast')",
                [tenant, "m-\(tenant.uuidString.prefix(4))"])
        }
        return (tenants, users)
    }

    /// Every row of `table` in every tenant, as the evaluator sees rows.
    private func allRows(_ admin: ConnectionPool, _ table: String) async throws -> [PolicyRow] {
        // Identifiers come from the fixed list above, never from input. JSON-object columns are
        // left out: no policy reads them, and a row value is a scalar or an array.
        try await admin.query(
            """
            SELECT (SELECT jsonb_object_agg(key, value) FROM jsonb_each(to_jsonb(t)) WHERE jsonb_typeof(value) <> 'object')::text AS j
            FROM public.\(table) t
            """
        ).rows.map { row in
            try JSONDecoder().decode(PolicyRow.self, from: Data(try row.decode("j", as: String.self).utf8))
        }
    }

    private func callers(tenants: [UUID], users: [UUID: [UUID]], random: inout Generator) -> [Caller] {
        var callers: [Caller] = []
        for tenant in tenants {
            for user in users[tenant]! {
                callers.append(
                    Caller(
                        role: "authenticated", user: user, tenant: tenant, sessionID: random.chance(30) ? random.pick(Self.sessions) : nil))
            }
            // A subject of the other tenant presenting itself here.
            let stranger = users[tenants.first { $0 != tenant }!]!.first!
            callers.append(Caller(role: "authenticated", user: stranger, tenant: tenant, sessionID: nil))
            for session in Self.sessions {
                callers.append(Caller(role: "anon", user: nil, tenant: tenant, sessionID: session))
            }
            callers.append(Caller(role: "anon", user: nil, tenant: tenant, sessionID: nil))
            callers.append(Caller(role: "service_role", user: users[tenant]!.first!, tenant: tenant, sessionID: nil))
        }
        return callers
    }

    @Test("reads: the evaluator shows exactly the rows RLS shows, for every caller and table", arguments: [UInt64(1), 2, 3])
    func reads(seed: UInt64) async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let admin = ConnectionPool(configuration: owner)
            let gateway = ConnectionPool(configuration: TestDatabase.gateway(owner))
            defer { admin.close(); gateway.close() }
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let (tenants, users) = try await self.seed(admin, seed: seed)
            var rows: [String: [PolicyRow]] = [:]
            for table in Self.tables { rows[table] = try await allRows(admin, table) }
            let lookup = InMemoryRows(rows)
            var random = Generator(state: seed &+ 99)
            var compared = 0
            for requestCaller in callers(tenants: tenants, users: users, random: &random) {
                for table in Self.tables {
                    // No request role may read the sealed secrets at all (the exposure tests check
                    // that); the store's own role carries the owner-only policies, with the caller's claims.
                    let caller =
                        table == "user_secrets"
                        ? Caller(
                            role: PolicySet.secretsRole, user: requestCaller.user, tenant: requestCaller.tenant,
                            sessionID: requestCaller.sessionID)
                        : requestCaller
                    let settings = caller.requestSettings
                    let visible: Set<String> = try await gateway.withConnection { connection in
                        try await connection.run { connection in
                            try connection.transaction { connection in
                                _ = try connection.pipeline(settings)
                                return Set(
                                    try connection.query("SELECT id::text AS id FROM public.\(table)").rows.map {
                                        try $0.decode("id", as: String.self)
                                    })
                            }
                        }
                    }
                    var decided: Set<String> = []
                    for row in rows[table]! {
                        if try policies.decide(.select, on: table, auth: caller.auth, existing: row, lookup: lookup) == .allowed,
                            case .text(let id)? = row["id"]
                        {
                            decided.insert(id)
                        }
                    }
                    #expect(decided == visible, "seed \(seed), \(table), \(caller)")
                    compared += rows[table]!.count
                }
            }
            #expect(compared > 1000)
        }
    }

    @Test("writes: updates that change the owner are allowed, hidden or rejected exactly as RLS decides", arguments: [UInt64(7), 8])
    func updates(seed: UInt64) async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let admin = ConnectionPool(configuration: owner)
            let gateway = ConnectionPool(configuration: TestDatabase.gateway(owner))
            defer { admin.close(); gateway.close() }
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let (tenants, users) = try await self.seed(admin, seed: seed)
            let projects = try await allRows(admin, "projects")
            var random = Generator(state: seed)
            var outcomes: [PolicyDecision: Int] = [:]
            for caller in callers(tenants: tenants, users: users, random: &random) {
                for _ in 0..<4 {
                    let row = random.pick(projects)
                    guard case .text(let id)? = row["id"], case .text(let rowTenant)? = row["tenant_id"] else { continue }
                    let newOwner = random.pick(users[UUID(uuidString: rowTenant)!]!)
                    var newRow = row
                    newRow["user_id"] = .text(newOwner.uuidString.lowercased())
                    let expected = try policies.decide(.update, on: "projects", auth: caller.auth, existing: row, new: newRow)
                    let settings = caller.requestSettings
                    let actual: PolicyDecision = try await gateway.withConnection { connection in
                        try await connection.run { connection in
                            try connection.simple("BEGIN")
                            defer { _ = try? connection.simple("ROLLBACK") }
                            _ = try connection.pipeline(settings)
                            do {
                                let result = try connection.query("UPDATE public.projects SET user_id = $1 WHERE id = $2", [newOwner, id])
                                return result.affectedRows == 1 ? .allowed : .rowHidden
                            } catch let error as PostgresError where error.sqlState == "42501" {
                                return .rowRejected
                            }
                        }
                    }
                    #expect(expected == actual, "seed \(seed), \(caller), project \(id)")
                    outcomes[actual, default: 0] += 1
                }
            }
            // The random cases must exercise every outcome, or the comparison proves little.
            #expect(outcomes.count == 3, "outcomes: \(outcomes)")
        }
    }

    /// An embedded read in PostgREST's grammar and the same read written by hand.
    struct EmbeddedRead: CustomStringConvertible {
        let table: String
        let query: String
        let reference: String
        var description: String { "\(table)?\(query)" }
    }

    /// Random embeds over projects ← sitemaps and brands ← conversation_sessions, with random
    /// filters on both levels. The reference spells each as plain SQL with no predicate of its
    /// own: under the caller's RLS it is what the database itself would answer.
    private func randomRead(_ random: inout Generator, users: [UUID], projects: [String]) -> EmbeddedRead {
        let user = random.pick(users).uuidString.lowercased()
        let project = random.pick(projects)
        let parentFilters: [(String, String)] = [
            ("", "true"), ("&is_public=is.true", "p.is_public IS TRUE"), ("&user_id=eq.\(user)", "p.user_id = '\(user)'"),
            ("&or=(is_public.is.false,user_id.neq.\(user))", "(p.is_public IS FALSE OR p.user_id <> '\(user)')"),
        ]
        let childFilters: [(String, String)] = [
            ("", "true"), ("&sitemaps.project_id=eq.\(project)", "s.project_id = '\(project)'"),
            ("&sitemaps.version=gte.1", "s.version >= 1"), ("&sitemaps.title=neq.map", "s.title <> 'map'"),
        ]
        switch random.next(4) {
        case 0, 1:
            let (parentQuery, parentSQL) = random.pick(parentFilters)
            let (childQuery, childSQL) = random.pick(childFilters)
            let inner = random.chance(40)
            let children = """
                (SELECT coalesce(json_agg(json_build_object('id', s.id) ORDER BY s.id), '[]'::json) FROM public.sitemaps s
                 WHERE s.tenant_id = p.tenant_id AND s.project_id = p.id AND \(childSQL))
                """
            return EmbeddedRead(
                table: "projects",
                query: "select=id,sitemaps\(inner ? "!inner" : "")(id)&order=id&sitemaps.order=id" + parentQuery + childQuery,
                reference: """
                    SELECT p.id, \(children) AS sitemaps FROM public.projects p
                    WHERE \(parentSQL)\(inner ? " AND json_array_length(\(children)) > 0" : "") ORDER BY p.id
                    """)
        case 2:
            let (parentQuery, parentSQL) = random.pick(parentFilters)
            let childQuery = parentQuery.replacingOccurrences(of: "&", with: "&projects.")
            let spread = random.chance(50)
            let parent =
                "(SELECT json_build_object('id', p.id, 'user_id', p.user_id) FROM public.projects p WHERE p.tenant_id = s.tenant_id AND p.id = s.project_id AND \(parentSQL))"
            return EmbeddedRead(
                table: "sitemaps",
                query: (spread ? "select=id,...projects(pid:id)" : "select=id,projects(id,user_id)") + "&order=id" + childQuery,
                reference: spread
                    ? "SELECT s.id, \(parent) ->> 'id' AS pid FROM public.sitemaps s ORDER BY s.id"
                    : "SELECT s.id, \(parent) AS projects FROM public.sitemaps s ORDER BY s.id")
        default:
            return EmbeddedRead(
                table: "brands",
                query: "select=id,conversation_sessions(id,user_id)&order=id&conversation_sessions.order=id",
                reference: """
                    SELECT b.id, (SELECT coalesce(json_agg(json_build_object('id', c.id, 'user_id', c.user_id) ORDER BY c.id), '[]'::json)
                                  FROM public.conversation_sessions c WHERE c.tenant_id = b.tenant_id AND c.brand_id = b.id) AS conversation_sessions
                    FROM public.brands b ORDER BY b.id
                    """)
        }
    }

    /// JSON text parsed and printed with sorted keys, so two spellings of one answer compare equal.
    private func canonicalJSON(_ text: String) throws -> String {
        let value = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        return String(
            decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    @Test("embedded reads: the gateway's statement, with only its own predicates, answers what RLS answers", arguments: [UInt64(11), 12])
    func embeddedReads(seed: UInt64) async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let admin = ConnectionPool(configuration: owner)
            let gateway = ConnectionPool(configuration: TestDatabase.gateway(owner))
            defer { admin.close(); gateway.close() }
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let catalog = try await RelationshipCatalog.read(from: gateway, policies: policies)
            let (tenants, users) = try await self.seed(admin, seed: seed)
            let projects = try await admin.query("SELECT id::text AS id FROM public.projects").rows.map {
                try $0.decode("id", as: String.self)
            }
            let everyone = users.values.flatMap { $0 }
            var random = Generator(state: seed)
            var compared = 0, nonEmpty = 0
            for caller in callers(tenants: tenants, users: users, random: &random) where caller.role != "service_role" || random.chance(50)
            {
                for _ in 0..<8 {
                    let read = randomRead(&random, users: everyone, projects: projects)
                    // The gateway's statement, run by the owner: RLS does not apply, only the
                    // predicates the gateway compiled from the policy files for every level.
                    let query = try RESTQuery.parse(method: .get, query: read.query)
                    var builder = RESTStatementBuilder(table: try #require(policies.table(named: read.table)))
                    builder.embedding = .init(policies: policies, auth: caller.auth, catalog: catalog, options: query.embedded)
                    let columns = try builder.selectList(query.select)
                    try builder.requireEmbeddedOptionsUsed(query.embedded)
                    var condition = try builder.policy(policies, .select, .using, auth: caller.auth)
                    if let filter = query.filter { condition += " AND " + (try builder.filter(filter)) }
                    condition += builder.innerConditions.map { " AND " + $0 }.joined()
                    let order = try builder.orderBy(query.order)
                    let statement =
                        "SELECT coalesce(json_agg(r), '[]'::json)::text AS body FROM (SELECT \(columns) FROM public.\(read.table)\(builder.joins) WHERE \(condition)\(order)) r"
                    let gatewayAnswer: String = try await admin.query(statement, builder.binds).rows[0].decode("body")
                    // The hand-written read under the caller's RLS.
                    let settings = caller.requestSettings
                    let rlsAnswer: String = try await gateway.withConnection { connection in
                        try await connection.run { connection in
                            try connection.transaction { connection in
                                _ = try connection.pipeline(settings)
                                return try connection.query(
                                    "SELECT coalesce(json_agg(r), '[]'::json)::text AS body FROM (\(read.reference)) r"
                                ).rows[0].decode("body")
                            }
                        }
                    }
                    #expect(try canonicalJSON(gatewayAnswer) == canonicalJSON(rlsAnswer), "seed \(seed), \(caller), \(read)")
                    compared += 1
                    if rlsAnswer != "[]" { nonEmpty += 1 }
                }
            }
            #expect(compared > 100)
            // Enough answers must hold rows, or the comparison proves little.
            #expect(nonEmpty * 3 > compared, "\(nonEmpty) of \(compared) non-empty")
        }
    }
}
