import Audit
import Foundation
import HTTPTypes
import Keyring
import Postgres
import Privacy
import Secrets
import Sodium
import TestSupport
import Testing

@testable import Gateway

/// The gateway prepares each statement once per connection and reuses it; after five executions
/// Postgres may keep a generic plan, made without the parameters' values (and, for what a plan
/// estimates from `auth.tenant_id()` and the other request settings, with the values of the
/// request that made it), until the next ANALYZE. Migration 0035 was such a plan: appends read a
/// tenant's whole audit chain. These tests run each hot-path statement through its real code path
/// on a gateway connection that plans generically from the first execution
/// (``AuthFixture/Pools/genericPlans``), beside a skew — one tenant with tens of thousands of
/// rows, a small one, thousands of other tenants, finished queue rows — and count the rows each
/// table had examined: they must be about as many as the answer, never the table or a big tenant.
@Suite("Generic plans")
struct GenericPlanTests {
    static let bigRows = 20_000

    /// The audit skew: the big tenant's chain of ``bigRows`` entries, the small tenant's 5, and the
    /// appender that wrote them (on the gateway's generic-plan connection).
    static func auditSkew(_ f: AuthFixture) async throws -> (big: TestTenant, small: TestTenant, appender: AuditAppender) {
        let (big, small) = try await f.skewedTenants()
        try await f.seedAuditChain(of: big.id, entries: bigRows)
        let appender = AuditAppender(pool: f.gateway)
        for index in 0..<5 {
            _ = try await appender.append(tenant: small.id, AuditEvent(action: "secret.read", details: ["n": .int(Int64(index))]))
        }
        return (big, small, appender)
    }

    @Test("a service key's first request reads its own key, tenant and subject, not the big tenant's keys or users, under generic plans")
    func firstRequestOfAKey() async throws {
        try await AuthFixture.run(pools: .genericPlans) { f in
            let (big, small) = try await f.skewedTenants()
            try await f.seed(
                """
                INSERT INTO public.service_keys (tenant_id, key_hash, scopes)
                SELECT $1, sha256(int8send(g)), ARRAY['data:read'] FROM generate_series(1, $2) g
                """, [big.id, Self.bigRows])
            try await f.seed(
                "INSERT INTO auth.users (tenant_id, id) SELECT $1, gen_random_uuid() FROM generate_series(1, $2)", [big.id, Self.bigRows])
            try await f.analyze()
            let token = try await Tokens.hs256(claims: Tokens.user(), secret: small.secret!)
            let read = try await f.rowsExamined(["public.service_keys", "public.tenants", "keyring.tenant_keys", "auth.users"]) {
                _ = try await f.authenticate(small, token)
            }
            // The key by id (and its last use), the tenant's keys and KEK, the subject's insert,
            // touch and check: each one row, read again by a statement or two.
            for (table, rows) in read { #expect(rows <= 6, "\(table): \(rows) rows examined for one key, tenant and subject") }
        }
    }

    @Test("the per-request revocation check of a cached key reads that key, not the tenant's keys, under generic plans")
    func revocationCheck() async throws {
        try await AuthFixture.run(pools: .genericPlans) { f in
            let (big, _) = try await f.skewedTenants()
            try await f.seed(
                """
                INSERT INTO public.service_keys (tenant_id, key_hash, scopes)
                SELECT $1, sha256(int8send(g)), ARRAY['data:read'] FROM generate_series(1, $2) g
                """, [big.id, Self.bigRows])
            try await f.analyze()
            let caller = try await f.authenticate(big, nil)
            let read = try await f.rowsExamined(["public.service_keys", "public.tenants"]) {
                // Both checks a request of a cached key makes: the authenticator's own (non-REST
                // routes) and the one at the head of a /rest/v1 pipeline.
                _ = try await f.authenticate(big, nil)
                _ = try await f.gateway.pipeline([caller.requestSettings])
            }
            for (table, rows) in read { #expect(rows <= 4, "\(table): \(rows) rows examined by two checks of one key") }
        }
    }

    @Test("secret writes, reads, past versions and lists read only the caller's rows, not the big tenant's, under generic plans")
    func secrets() async throws {
        try await AuthFixture.run(pools: .genericPlans) { f in
            let (big, small) = try await f.skewedTenants()
            // The big tenant: a user, a sealed secret, a past version and a subject key each, 20,000 times over.
            try await f.seed(
                """
                WITH users AS (
                    INSERT INTO auth.users (tenant_id, id) SELECT $1, gen_random_uuid() FROM generate_series(1, $2) RETURNING tenant_id, id),
                keys AS (
                    INSERT INTO keyring.subject_keys (tenant_id, user_id, kek_version, nonce, wrapped_key)
                    SELECT tenant_id, id, 1, decode(repeat('00', 24), 'hex'), decode(repeat('00', 48), 'hex') FROM users),
                secrets AS (
                    INSERT INTO public.user_secrets (tenant_id, user_id, service_name, encrypted_value, initialization_vector, version)
                    SELECT tenant_id, id, 'github', decode(repeat('00', 32), 'hex'), decode(repeat('00', 24), 'hex'), 2 FROM users
                    RETURNING tenant_id, id, user_id)
                INSERT INTO public.user_secret_versions (tenant_id, secret_id, user_id, version, encrypted_value, initialization_vector, key_version, created_at)
                SELECT tenant_id, id, user_id, 1, decode(repeat('00', 32), 'hex'), decode(repeat('00', 24), 'hex'), 1, now() FROM secrets
                """, [big.id, Self.bigRows])
            let alice = UUID()
            try await f.seed("INSERT INTO auth.users (tenant_id, id) VALUES ($1, $2)", [small.id, alice])
            try await f.analyze()
            let keys = try AuditKeys(rootKey: f.keyring.serviceMaster)
            let store = SecretStore(pool: f.gateway, keyring: f.keyring, audit: AuditAppender(pool: f.gateway, keys: keys), auditKeys: keys)
            let caller = SecretCaller(
                tenant: small.id, role: .authenticated, subject: alice, actor: "user:" + alice.lowercasedString, requestID: "req-plans")
            for service in ["github", "gitlab", "npm"] { _ = try await store.write(caller, service: service, value: "first") }
            let tables = ["public.user_secrets", "public.user_secret_versions", "keyring.subject_keys"]
            let operations: [(String, () async throws -> Void)] = [
                ("write", { _ = try await store.write(caller, service: "github", value: "second") }),
                ("read", { _ = try await store.read(caller, service: "github") }),
                ("read a past version", { _ = try await store.read(caller, service: "github", version: 1) }),
                ("versions", { _ = try await store.versions(caller, service: "github") }),
                ("list", { _ = try await store.list(caller) }),
            ]
            for (operation, body) in operations {
                let read = try await f.rowsExamined(tables, during: body)
                for (table, rows) in read {
                    #expect(rows <= 8, "\(operation): \(table): \(rows) rows examined for a user with 3 secrets")
                }
            }
        }
    }

    @Test("an audit append and the latest entry of an action read one entry, not a chain, under generic plans")
    func auditAppendAndLatest() async throws {
        try await AuthFixture.run(pools: .genericPlans) { f in
            let (big, small, appender) = try await Self.auditSkew(f)
            let gateway = f.gateway
            let operations: [(String, () async throws -> Void)] = [
                ("append", { _ = try await appender.append(tenant: small.id, AuditEvent(action: "secret.read")) }),
                (
                    "the latest of one action",
                    { _ = try await AuditReader.latest(pool: gateway, tenant: big.id, action: "privacy.export_requested", before: Date()) }
                ),
            ]
            for (operation, body) in operations {
                let read = try await f.rowsExamined(["public.audit_events", "public.audit_heads"], during: body)
                for (table, rows) in read { #expect(rows <= 6, "\(operation): \(table): \(rows) rows examined") }
            }
        }
    }

    /// `GET /v1/audit/events` pages with optional filters (`$4 IS NULL OR …`). Planned without
    /// their values, the filters look selective, so the generic plan fetched every entry after
    /// the cursor and sorted them for the page: the first page of a long chain read all of it.
    @Test("a page of audit entries reads about the page, not the rest of the chain, under generic plans")
    func auditPages() async throws {
        try await AuthFixture.run(pools: .genericPlans) { f in
            let (big, small, appender) = try await Self.auditSkew(f)
            let gateway = f.gateway
            let pages: [(String, Int64, () async throws -> Void)] = [
                ("the small tenant's entries", 10, { _ = try await AuditReader.entries(pool: gateway, tenant: small.id) }),
                ("the first page", 110, { _ = try await AuditReader.entries(pool: gateway, tenant: big.id, limit: 100) }),
                ("a later page", 110, { _ = try await AuditReader.entries(pool: gateway, tenant: big.id, afterSeq: 10_000, limit: 100) }),
                (
                    "a page of one action prefix (two entries in three)", 250,
                    { _ = try await AuditReader.entries(pool: gateway, tenant: big.id, limit: 100, actionPrefix: "secret.") }
                ),
            ]
            for (page, bound, body) in pages {
                let read = try await f.rowsExamined(["public.audit_events"], during: body)
                #expect(read["public.audit_events"]! <= bound, "\(page): \(read["public.audit_events"]!) entries examined")
            }
        }
    }

    @Test("claiming queued privacy requests and dispatching processor calls read the open ones, not the finished ones, under generic plans")
    func privacyQueue() async throws {
        try await PrivacyRouteFixture.run(pools: .genericPlans) { f in
            let auth = f.auth
            try await auth.emptyTenants()
            // 20,000 finished erasures and exports, one an erasure whose processor answered, and
            // one erasure still pending (filed without the privacy service: the worker refuses it).
            try await auth.seed(
                """
                WITH users AS (INSERT INTO auth.users (tenant_id, id) SELECT $1, gen_random_uuid() FROM generate_series(1, $2) RETURNING tenant_id, id),
                exports AS (
                    INSERT INTO public.data_export_requests (tenant_id, user_id, status, requested_at)
                    SELECT tenant_id, id, 'completed', now() - interval '1 day' FROM users),
                erasures AS (
                    INSERT INTO public.data_deletion_requests (tenant_id, user_id, status, requested_at)
                    SELECT tenant_id, id, 'completed', now() - interval '1 day' FROM users RETURNING tenant_id, id, user_id)
                INSERT INTO privacy.processor_calls
                    (tenant_id, request_kind, request_id, processor_id, processor_name, data_kind, required, user_id,
                     deadline_at, delivered_at, outcome, answered_at)
                SELECT tenant_id, 'deletion', id, gen_random_uuid(), 'crm', 'contacts', true, user_id,
                       now() - interval '1 hour', now() - interval '1 day', 'confirmed', now() - interval '1 hour'
                FROM erasures
                """, [f.acme.id, Self.bigRows])
            try await auth.seed(
                "INSERT INTO public.data_deletion_requests (tenant_id, user_id, status) VALUES ($1, $2, 'pending')", [f.acme.id, UUID()])
            try await auth.analyze()
            let service = f.service
            let tables = ["public.data_deletion_requests", "public.data_export_requests", "privacy.processor_calls"]
            let operations: [(String, () async throws -> Void)] = [
                ("claim an erasure", { _ = try await service.claimNext(.deletion) }),
                ("claim an export", { _ = try await service.claimNext(.export) }),
                ("dispatch processor calls", { _ = try await service.dispatchProcessorCalls() }),
            ]
            for (operation, body) in operations {
                let read = try await auth.rowsExamined(tables, during: body)
                for (table, rows) in read { #expect(rows <= 8, "\(operation): \(table): \(rows) rows examined") }
            }
            // The pending one was seen (and refused): the claim did reach the queue.
            let status: String = try await auth.owner.query(
                "SELECT status FROM public.data_deletion_requests WHERE tenant_id = $1 AND status <> 'completed'", [f.acme.id]
            ).first!.decode("status")
            #expect(status == "failed")
        }
    }

    /// A REST statement carries the tenant twice: bound by the gateway's policy predicate, and as
    /// `auth.tenant_id()` in the database's RLS, which Postgres evaluates when it estimates a plan
    /// (a statement without the bound tenant, planned for the big tenant — a sequential scan — and
    /// reused, would read the big tenant's rows for the small one). The plan is made for the big
    /// tenant's request first, then the small tenant's reuses it.
    @Test("a REST read of a small tenant reads its own rows, even on a connection whose plan was made for a big tenant")
    func restReadAfterABigTenant() async throws {
        try await RESTFixture.run(pools: .genericPlans) { f in
            let auth = f.auth
            try await auth.emptyTenants()
            // acme is the big tenant: 20,000 users with two projects each; globex has one user with three.
            try await auth.seed(
                """
                WITH users AS (INSERT INTO auth.users (tenant_id, id) SELECT $1, gen_random_uuid() FROM generate_series(1, $2) RETURNING tenant_id, id)
                INSERT INTO public.projects (tenant_id, user_id, name, type, status)
                SELECT tenant_id, id, 'p' || g, 'website', (ARRAY['draft', 'active', 'archived'])[1 + g % 3] FROM users, generate_series(1, 2) g
                """, [f.acme.id, Self.bigRows])
            try await auth.seed("INSERT INTO auth.users (tenant_id, id) VALUES ($1, $2)", [f.globex.id, f.carol])
            try await auth.seed(
                """
                INSERT INTO public.projects (tenant_id, user_id, name, type, status)
                SELECT $1, $2, 'mine' || g, 'website', 'active' FROM generate_series(1, 3) g
                """, [f.globex.id, f.carol])
            let acmeUser: UUID = try await auth.owner.query("SELECT id FROM auth.users WHERE tenant_id = $1 LIMIT 1", [f.acme.id])
                .first!.decode("id")
            try await auth.analyze()
            for uri in ["/rest/v1/projects?select=id,name&status=eq.active", "/rest/v1/projects?select=id,name"] {
                let first = try await f.request(.get, uri, as: f.acme, acmeUser)
                #expect(first.status == .ok, "\(first.body)")
                var answer = 0
                let read = try await auth.rowsExamined(["public.projects"]) {
                    let small = try await f.request(.get, uri, as: f.globex, f.carol)
                    answer = try f.json(small.body).count
                }
                #expect(answer == 3)
                #expect(read["public.projects"]! <= 8, "\(uri): \(read["public.projects"]!) rows examined for globex's \(answer)")
            }
        }
    }

    /// ``Statement/customPlans`` is transaction-local: a pooled connection's next user (another
    /// tenant's request) must plan as the session says, whatever became of the pipeline.
    @Test(
        "custom planning stays in its own pipeline: the connection's next user plans as its session says, after a failed pipeline or a transaction too"
    )
    func customPlansStayInThePipeline() async throws {
        try await AuthFixture.run(pools: .genericPlans) { f in
            let gateway = f.gateway  // one connection: every call below is on the same backend
            func mode() async throws -> String {
                try #require(try await gateway.query("SELECT current_setting('plan_cache_mode') AS m").first?.decode("m", as: String.self))
            }
            let show = Statement("SELECT current_setting('plan_cache_mode') AS m")
            // In effect for the statements after it, in its pipeline…
            let within = try await gateway.withConnection { try await $0.pipeline([.customPlans, show]) }
            #expect(try within[1].rows.first?.decode("m", as: String.self) == "force_custom_plan")
            // …and nowhere after it: an audit page, a pipeline that fails after the setting, a transaction.
            _ = try await AuditReader.entries(pool: gateway, tenant: UUID(), actionPrefix: "secret.")
            #expect(try await mode() == "force_generic_plan")
            await #expect(throws: PostgresError.self) {
                _ = try await gateway.withConnection { try await $0.pipeline([.customPlans, Statement("SELECT 1 / 0")]) }
            }
            #expect(try await mode() == "force_generic_plan")
            try await gateway.withConnection { connection in
                try await connection.run { try $0.simple("BEGIN") }
                _ = try await connection.pipeline([.customPlans])
                // Left open by its holder: the next checkout rolls it back.
            }
            #expect(try await mode() == "force_generic_plan")
        }
    }
}

extension AuthFixture {
    /// A big and a small tenant (each with a service key and an HS256 secret), and the
    /// ``emptyTenants()``.
    func skewedTenants() async throws -> (big: TestTenant, small: TestTenant) {
        let big = try await tenant("big")
        let small = try await tenant("small")
        try await emptyTenants()
        return (big, small)
    }

    /// 2,000 tenants with nothing: `public.tenants` is not one page long, as it is in production.
    func emptyTenants() async throws {
        try await seed("INSERT INTO public.tenants (name) SELECT 'empty-' || g FROM generate_series(1, 2000) g")
    }

    /// Runs `sql` as the owner (setup: RLS and the gateway's grants do not apply).
    func seed(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws {
        try await owner.query(sql, parameters)
    }

    /// A chain of `entries` rows for `tenant` (their hashes are not checked here), a third of each
    /// action, actors `user:0` to `user:99` in turn; then ANALYZE.
    func seedAuditChain(of tenant: UUID, entries: Int) async throws {
        try await seed(
            """
            INSERT INTO public.audit_events (tenant_id, seq, at, actor, action, outcome, prev_hash, hash)
            SELECT $1, g, now() - make_interval(secs => $2 - g), 'user:' || (g % 100),
                   (ARRAY['secret.read', 'secret.write', 'privacy.export_requested'])[1 + g % 3], 'success',
                   sha256(int8send(g - 1)), sha256(int8send(g))
            FROM generate_series(1, $2) g
            """, [tenant, entries])
        try await analyze()
    }

    /// Statistics as autovacuum would have them by now.
    func analyze() async throws {
        try await owner.withConnection { connection in try await connection.run { try $0.simple("ANALYZE") } }
    }

    /// The rows each of `tables` had examined while `body` ran: tuples read by sequential scans
    /// plus index entries returned by index scans (so index-only scans count too), from the
    /// database's cumulative statistics. Those are per database, and each backend adds its own on
    /// flushing: both pools have one connection (``Pools/genericPlans``), each flushed before
    /// the counts are read, and the gateway's must stay the same backend throughout.
    func rowsExamined(_ tables: [String], during body: () async throws -> Void) async throws -> [String: Int64] {
        let before = try await examined(tables)
        try await body()
        let after = try await examined(tables)
        #expect(after.backend == before.backend, "the gateway's connection was replaced: its counts were not all flushed")
        return after.rows.merging(before.rows) { $0 - $1 }
    }

    private func examined(_ tables: [String]) async throws -> (backend: Int32, rows: [String: Int64]) {
        // Each flush happens when its statement's transaction ends, before the next statement runs.
        let backend: Int32 = try await gateway.withConnection { pooled in
            try await pooled.run { connection in
                try connection.query("SELECT pg_stat_force_next_flush()")
                return try connection.query("SELECT pg_backend_pid() AS backend").first!.decode("backend")
            }
        }
        // Read as the owner: the gateway's login may not even look up some of these tables' names.
        return try await owner.withConnection { pooled in
            try await pooled.run { connection in
                try connection.query("SELECT pg_stat_force_next_flush()")
                let result = try connection.query(
                    """
                    SELECT n.name, (coalesce(t.seq_tup_read, 0)
                                    + coalesce((SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i WHERE i.relid = t.relid), 0))::bigint AS examined
                    FROM unnest($1::text[]) AS n(name) JOIN pg_stat_user_tables t ON t.relid = n.name::regclass
                    """, [PostgresTextArray(tables)])
                var rows: [String: Int64] = [:]
                for row in result.rows { rows[try row.decode("name")] = try row.decode("examined") }
                return (backend, rows)
            }
        }
    }
}
