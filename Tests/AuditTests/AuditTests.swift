import Audit
import Foundation
import Postgres
import Sodium
import TestSupport
import Testing

@Suite("Audit chain in the database")
struct AuditChainTests {
    @Test("appended entries form a contiguous chain that verifies live and as an exported bundle")
    func appendAndVerify() async throws {
        try await AuditFixture.with { fixture in
            let receipts = try await fixture.appendSequentially(12)
            #expect(receipts.map(\.seq) == Array(1...12))
            _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            try await fixture.appendSequentially(3)

            let live = try await fixture.verifyLive()
            #expect(live.isValid, "\(live.summary)")
            #expect(live.entriesChecked == 15)
            #expect(live.lastVerifiedCheckpoint == 12)
            let offline = try await fixture.exportAndVerify()
            #expect(offline.isValid, "\(offline.summary)")
            #expect(offline.entriesChecked == 15)
        }
    }

    @Test("200 concurrent appends from 50 tasks give one contiguous chain, written in fewer transactions")
    func concurrentAppenders() async throws {
        try await AuditFixture.with { fixture in
            let receipts = try await withThrowingTaskGroup(of: [AuditReceipt].self) { group in
                for task in 0..<50 {
                    group.addTask {
                        var receipts: [AuditReceipt] = []
                        for index in 0..<4 {
                            receipts.append(
                                try await fixture.appender.append(
                                    tenant: fixture.tenant,
                                    AuditEvent(actor: "task-\(task)", action: "secret.read", details: ["i": .int(Int64(index))])))
                        }
                        return receipts
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(receipts.map(\.seq).sorted() == Array(1...200))
            let report = try await fixture.verifyLive()
            #expect(report.isValid, "\(report.summary)")
            #expect(report.entriesChecked == 200)
            // Every batch shares one `at` (read once per transaction): fewer distinct times than
            // entries means appends were grouped.
            let batches = try await fixture.owner.query(
                "SELECT count(DISTINCT at) AS n FROM public.audit_events WHERE tenant_id = $1", [fixture.tenant]
            ).first!.decode("n", as: Int.self)
            #expect(batches < 200)
        }
    }

    @Test("two appenders (two gateway processes) on one tenant keep the chain contiguous")
    func twoProcesses() async throws {
        try await AuditFixture.with { fixture in
            let otherPool = ConnectionPool(
                configuration: TestDatabase.gateway(fixture.ownerConfiguration), options: .init(maxConnections: 4))
            defer { otherPool.close() }
            let other = AuditAppender(pool: otherPool, keys: fixture.keys)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<20 {
                    let appender = task.isMultiple(of: 2) ? fixture.appender : other
                    group.addTask {
                        for _ in 0..<5 {
                            _ = try await appender.append(
                                tenant: fixture.tenant, AuditEvent(actor: "p\(task % 2)", action: "policy.denied", outcome: .denied))
                        }
                    }
                }
                try await group.waitForAll()
            }
            let report = try await fixture.verifyLive()
            #expect(report.isValid, "\(report.summary)")
            #expect(report.entriesChecked == 100)
        }
    }

    @Test("tenants have independent chains")
    func tenantsIndependent() async throws {
        try await AuditFixture.with { fixture in
            let second = try await AuditFixture.createTenant(fixture.owner)
            try await fixture.appendSequentially(3)
            let receipts = try await fixture.appendSequentially(2, tenant: second)
            #expect(receipts.map(\.seq) == [1, 2])
            let report = try await AuditBundle.verifyLive(pool: fixture.gateway, tenant: second, trustedKeys: fixture.trustedKeys)
            #expect(report.isValid && report.entriesChecked == 2)
        }
    }

    @Test("one bad entry in a batch fails alone; its batch-mates are recorded")
    func badEntryFailsAlone() async throws {
        try await AuditFixture.with { fixture in
            let results = await withTaskGroup(of: Bool.self) { group in
                for index in 0..<30 {
                    group.addTask {
                        // "Not A Valid Action" violates the action CHECK constraint.
                        let action = index == 7 ? "Not A Valid Action" : "secret.read"
                        return (try? await fixture.appender.append(tenant: fixture.tenant, AuditEvent(action: action))) != nil
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { !$0 }.count == 1)
            let report = try await fixture.verifyLive()
            #expect(report.isValid && report.entriesChecked == 29, "\(report.summary)")
        }
    }

    @Test("IP addresses are stored and hashed in the form the database prints")
    func ipNormalisation() async throws {
        try await AuditFixture.with { fixture in
            for ip in ["2001:DB8:0:0:1::1", "::ffff:1.2.3.4", "10.1.2.3", "2001:db8:0:1:0:0:0:1", "fe80::1", "::1"] {
                _ = try await fixture.appender.append(tenant: fixture.tenant, AuditEvent(action: "secret.read", ip: ip))
            }
            await #expect(throws: AuditError.self) {
                try await fixture.appender.append(tenant: fixture.tenant, AuditEvent(action: "secret.read", ip: "10.0.0.0/8"))
            }
            let report = try await fixture.verifyLive()
            #expect(report.isValid, "\(report.summary)")
        }
    }
}

@Suite("Fail closed: no audit, no action")
struct FailClosedTests {
    @Test("a failing audit write (CHECK violation) rolls back the action in the same transaction")
    func checkViolationRollsBack() async throws {
        try await AuditFixture.with { fixture in
            let user = UUID()
            let appender = fixture.appender
            let tenant = fixture.tenant
            await #expect(throws: AuditError.self) {
                try await fixture.gateway.transaction { connection in
                    _ = try connection.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant])
                    _ = try appender.append(in: connection, tenant: tenant, AuditEvent(action: "Bad Action!", target: user.uuidString))
                }
            }
            let users = try await fixture.owner.query("SELECT count(*) AS n FROM auth.users WHERE id = $1", [user])
            #expect(try users.first!.decode("n", as: Int.self) == 0)
        }
    }

    @Test("an audit write for a tenant that does not exist fails, and the action with it")
    func unknownTenantRollsBack() async throws {
        try await AuditFixture.with { fixture in
            let user = UUID()
            let appender = fixture.appender
            let tenant = fixture.tenant
            await #expect(throws: AuditError.self) {
                try await fixture.gateway.transaction { connection in
                    _ = try connection.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant])
                    _ = try appender.append(in: connection, tenant: UUID(), AuditEvent(action: "admin.user.create"))
                }
            }
            let remaining = try await fixture.owner.query("SELECT 1 FROM auth.users WHERE id = $1", [user])
            #expect(remaining.rows.isEmpty)
        }
    }

    @Test("a lost connection during the audit write fails the action")
    func brokenConnection() async throws {
        try await AuditFixture.with { fixture in
            let user = UUID()
            let appender = fixture.appender
            let tenant = fixture.tenant
            await #expect(throws: (any Error).self) {
                try await fixture.gateway.withConnection { connection in
                    let pid = try await connection.run { connection -> Int in
                        try connection.simple("BEGIN")
                        _ = try connection.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant])
                        return try connection.query("SELECT pg_backend_pid() AS pid").first!.decode("pid")
                    }
                    // The database goes away between the action and its audit entry.
                    _ = try await fixture.owner.query("SELECT pg_terminate_backend($1, 5000)", [pid])
                    try await connection.run { connection in
                        _ = try appender.append(in: connection, tenant: tenant, AuditEvent(action: "admin.user.create"))
                        try connection.simple("COMMIT")
                    }
                }
            }
            let remaining = try await fixture.owner.query("SELECT 1 FROM auth.users WHERE id = $1", [user])
            #expect(remaining.rows.isEmpty)
        }
    }

    @Test("append(in:) outside a transaction is refused")
    func needsTransaction() async throws {
        try await AuditFixture.with { fixture in
            let appender = fixture.appender
            let tenant = fixture.tenant
            await #expect(throws: AuditError.self) {
                try await fixture.gateway.withConnection { connection in
                    try await connection.run { try appender.append(in: $0, tenant: tenant, AuditEvent(action: "secret.read")) }
                }
            }
        }
    }

    @Test("append(in:) works under SET LOCAL ROLE and restores the request role")
    func underRequestRole() async throws {
        try await AuditFixture.with { fixture in
            let appender = fixture.appender
            let tenant = fixture.tenant
            let (receipt, role) = try await fixture.gateway.transaction { connection in
                _ = try connection.query("SELECT set_config('role', 'authenticated', true)")
                let receipt = try appender.append(in: connection, tenant: tenant, AuditEvent(action: "secret.write"))
                let role: String = try connection.query("SELECT current_user AS role").first!.decode("role")
                return (receipt, role)
            }
            #expect(receipt.seq == 1)
            #expect(role == "authenticated")
            // Mixed with group-committed appends, the chain stays one chain.
            try await fixture.appendSequentially(3)
            #expect(try await fixture.verifyLive().isValid)
        }
    }
}

@Suite("Append cost")
struct AppendCostTests {
    /// The head row's trigger checks that the head points at an existing entry. PL/pgSQL keeps
    /// that query's plan for the session; made generic while the chain was short, the plan used
    /// `(tenant_id, at)` with only `tenant_id` and filtered seq and hash, and it stayed as the
    /// chain grew: every batch read the whole chain (appends fell from 24k/s to 7k/s within
    /// seconds in benchmarks/audit-vs-pgbench). Here one session plans generically on a short
    /// chain and appends again once the chain is long: it must read one entry.
    @Test("advancing the head reads one entry, not the chain, even with a plan made when the chain was short")
    func headCheckReadsOneEntry() async throws {
        try await AuditFixture.with { fixture in
            let appender = fixture.appender
            let tenant = fixture.tenant
            let fetched = try await fixture.gateway.withConnection { session in
                try await session.run { connection in
                    try connection.transaction { connection in
                        _ = try connection.query("SET LOCAL plan_cache_mode = force_generic_plan")
                        for index in 0..<6 {
                            _ = try appender.append(
                                in: connection, tenant: tenant, AuditEvent(action: "secret.read", details: ["n": .int(Int64(index))]))
                        }
                    }
                }
                // The chain grows through the group-commit appender (the pool's other connections).
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<4000 {
                        group.addTask {
                            _ = try await appender.append(
                                tenant: tenant, AuditEvent(action: "secret.read", details: ["n": .int(Int64(index))]))
                        }
                    }
                    try await group.waitForAll()
                }
                return try await session.run { connection in
                    try connection.transaction { connection -> Int64 in
                        _ = try connection.query("SET LOCAL plan_cache_mode = force_generic_plan")
                        let before = try Self.entriesRead(on: connection)
                        _ = try appender.append(in: connection, tenant: tenant, AuditEvent(action: "secret.read"))
                        return try Self.entriesRead(on: connection) - before
                    }
                }
            }
            #expect(fetched <= 2, "one append read \(fetched) entries of a 4,007-entry chain")
        }
    }

    /// plan_cache_mode is a setting any role may change for its session; the trigger pins its own
    /// (0035), so a session forcing generic plans, appending through `append(in:)` under a request
    /// role, neither slows the check down nor weakens it: the head still only moves forward, to
    /// an existing entry with that hash, and request roles cannot move it at all.
    @Test(
        "under a session that forces generic plans and a request role, the head trigger reads one entry and still refuses a head moved back, ahead or to a wrong hash"
    )
    func headCheckHoldsUnderSessionGenericPlans() async throws {
        try await AuditFixture.with { fixture in
            let appender = fixture.appender
            let tenant = fixture.tenant
            // A chain long enough that reading it shows (on a page or two a scan is the right plan).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<3000 {
                    group.addTask {
                        _ = try await appender.append(tenant: tenant, AuditEvent(action: "secret.read", details: ["n": .int(Int64(index))]))
                    }
                }
                try await group.waitForAll()
            }
            let (read, refused, roleStates) = try await fixture.gateway.withConnection { session in
                try await session.run { connection -> (String, [String], [String]) in
                    try connection.simple("SET plan_cache_mode = force_generic_plan")
                    defer { try? connection.simple("RESET plan_cache_mode") }
                    var read = ""
                    for index in 0..<7 {
                        read = try connection.transaction { connection -> String in
                            _ = try connection.query("SELECT set_config('role', 'authenticated', true)")
                            let before = try Self.entriesRead(on: connection)
                            _ = try appender.append(
                                in: connection, tenant: tenant, AuditEvent(action: "secret.read", details: ["n": .int(Int64(index))]))
                            let role: String = try connection.query("SELECT current_user AS u").first!.decode("u")
                            return "\(try Self.entriesRead(on: connection) - before) entries read, then as \(role)"
                        }
                    }
                    let third: [UInt8] = try connection.query(
                        "SELECT hash FROM public.audit_events WHERE tenant_id = $1 AND seq = 3", [tenant]
                    ).first!.decode("hash")
                    var refused: [String] = []
                    for (sql, parameters) in [
                        (
                            "UPDATE public.audit_heads SET seq = 3, hash = $2 WHERE tenant_id = $1",
                            [tenant, third] as [any PostgresEncodable]
                        ),
                        ("UPDATE public.audit_heads SET seq = seq + 1 WHERE tenant_id = $1", [tenant]),
                        ("UPDATE public.audit_heads SET seq = seq + 1, hash = $2 WHERE tenant_id = $1", [tenant, third]),
                        ("UPDATE public.audit_heads SET hash = $2 WHERE tenant_id = $1", [tenant, third]),
                    ] {
                        do {
                            try connection.transaction { connection in _ = try connection.query(sql, parameters) }
                            refused.append("allowed: \(sql)")
                        } catch let error as PostgresError {
                            refused.append(error.sqlState ?? "?")
                        }
                    }
                    var roleStates: [String] = []
                    for role in ["anon", "authenticated", "service_role"] {
                        do {
                            try connection.transaction { connection in
                                _ = try connection.query("SELECT set_config('role', $1, true)", [role])
                                _ = try connection.query("UPDATE public.audit_heads SET seq = seq + 1 WHERE tenant_id = $1", [tenant])
                            }
                            roleStates.append("\(role) allowed")
                        } catch let error as PostgresError {
                            roleStates.append(error.sqlState ?? "?")
                        }
                    }
                    return (read, refused, roleStates)
                }
            }
            #expect(
                ["0 entries read, then as authenticated", "1 entries read, then as authenticated", "2 entries read, then as authenticated"]
                    .contains(read), "\(read)")
            #expect(refused == ["23000", "23000", "23000", "23000"], "\(refused)")
            #expect(roleStates == ["42501", "42501", "42501"], "\(roleStates)")
            let live = try await fixture.verifyLive()
            #expect(live.isValid && live.entriesChecked == 3007, "\(live.summary)")
        }
    }

    /// The REST pipeline's revocation check (`assert_service_key_active`, every /rest/v1 request)
    /// is the other PL/pgSQL function on a hot path that reads a growing table; it finds the key
    /// by its primary key, which a generic plan uses too: planned generically while the tenant
    /// had two keys, it still reads one key (and one tenant) among thousands.
    @Test("the REST revocation check reads one key, not the tenant's keys, under a generic plan made while there were two")
    func revocationCheckReadsOneKey() async throws {
        try await AuditFixture.with { fixture in
            let insertKeys = """
                INSERT INTO public.service_keys (tenant_id, key_hash, scopes)
                SELECT $1, sha256(convert_to(gen_random_uuid()::text, 'UTF8')), ARRAY['data:read'] FROM generate_series(1, $2) RETURNING id
                """
            let first: [UUID] = try await fixture.owner.query(insertKeys, [fixture.tenant, 2]).rows.map { try $0.decode("id") }
            let owner = fixture.owner
            let tenant = fixture.tenant
            let fetched = try await fixture.gateway.withConnection { session in
                // One session: PL/pgSQL keeps the function's plan per session.
                try await session.run { connection in
                    try connection.simple("SET plan_cache_mode = force_generic_plan")
                    for _ in 0..<6 {
                        for key in first { _ = try connection.query("SELECT public.assert_service_key_active($1)", [key]) }
                    }
                }
                let more: [UUID] = try await owner.query(insertKeys, [tenant, 3000]).rows.map { try $0.decode("id") }
                return try await session.run { connection -> Int64 in
                    defer { try? connection.simple("RESET plan_cache_mode") }
                    return try connection.transaction { connection -> Int64 in
                        let before = try Self.tuplesRead(of: "public.service_keys", on: connection)
                        _ = try connection.query("SELECT public.assert_service_key_active($1)", [more[1500]])
                        return try Self.tuplesRead(of: "public.service_keys", on: connection) - before
                    }
                }
            }
            #expect(fetched <= 1, "one revocation check read \(fetched) of 3,002 keys")
        }
    }

    private static func tuplesRead(of table: String, on connection: borrowing Connection) throws -> Int64 {
        try connection.query(
            """
            SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) AS n
            FROM pg_stat_xact_user_tables WHERE relid = $1::regclass
            """, [table]
        ).first?.decode("n") ?? 0
    }

    /// Entries of `audit_events` this transaction has read so far, by index or by scan.
    private static func entriesRead(on connection: borrowing Connection) throws -> Int64 {
        try connection.query(
            """
            SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) AS n
            FROM pg_stat_xact_user_tables WHERE relid = 'public.audit_events'::regclass
            """
        ).first?.decode("n") ?? 0
    }
}

@Suite("Privileges and append-only")
struct PrivilegeTests {
    @Test("nobody may UPDATE, DELETE or TRUNCATE entries; request roles cannot even read them")
    func appendOnly() async throws {
        try await AuditFixture.with { fixture in
            try await fixture.appendSequentially(2)
            _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            for pool in [fixture.gateway, fixture.owner] {
                for sql in [
                    "UPDATE public.audit_events SET actor = 'x' WHERE tenant_id = $1",
                    "DELETE FROM public.audit_events WHERE tenant_id = $1",
                    "DELETE FROM public.audit_checkpoints WHERE tenant_id = $1",
                ] {
                    do {
                        _ = try await pool.query(sql, [fixture.tenant])
                        Issue.record("\(sql) was allowed")
                    } catch let error as PostgresError {
                        #expect(error.sqlState == "42501")
                    }
                }
            }
            do {
                try await fixture.owner.withConnection { try await $0.run { try $0.simple("TRUNCATE public.audit_events") } }
                Issue.record("TRUNCATE was allowed")
            } catch let error as PostgresError {
                #expect(error.sqlState == "42501")
            }
            for role in ["anon", "authenticated", "service_role"] {
                do {
                    _ = try await fixture.gateway.transaction { connection in
                        _ = try connection.query("SELECT set_config('role', $1, true)", [role])
                        return try connection.query("SELECT count(*) FROM public.audit_events").rows.count
                    }
                    Issue.record("\(role) could read audit_events")
                } catch let error as PostgresError {
                    #expect(error.sqlState == "42501")
                }
            }
            // The head may not be moved back or elsewhere, even by the gateway that advances it.
            await #expect(throws: PostgresError.self) {
                try await fixture.gateway.query("UPDATE public.audit_heads SET seq = 1 WHERE tenant_id = $1", [fixture.tenant])
            }
        }
    }

    @Test("the seed views show secret and privacy entries")
    func seedViews() async throws {
        try await AuditFixture.with { fixture in
            _ = try await fixture.appender.append(tenant: fixture.tenant, AuditEvent(actor: "u1", action: "secret.read", target: "openai"))
            _ = try await fixture.appender.append(tenant: fixture.tenant, AuditEvent(actor: "u1", action: "privacy.export_requested"))
            _ = try await fixture.appender.append(tenant: fixture.tenant, AuditEvent(action: "policy.denied", outcome: .denied))
            let secret = try await fixture.gateway.query(
                "SELECT service_name, action FROM public.secret_audit_logs WHERE tenant_id = $1", [fixture.tenant])
            #expect(secret.rows.count == 1)
            #expect(try secret.first!.decode("action", as: String.self) == "read")
            let privacy = try await fixture.gateway.query(
                "SELECT event_type FROM public.privacy_audit_log WHERE tenant_id = $1", [fixture.tenant])
            #expect(try privacy.rows.map { try $0.decode("event_type", as: String.self) } == ["export_requested"])
        }
    }
}

@Suite("Sensitive values")
struct SensitiveValueTests {
    @Test("a sensitive value is stored as an HMAC that the holder of the value and tenant key can check")
    func hmacCheckable() async throws {
        try await AuditFixture.with { fixture in
            _ = try await fixture.appender.append(
                tenant: fixture.tenant,
                AuditEvent(action: "privacy.export_requested", details: ["format": "json"], sensitive: ["email": "alice@example.com"]))
            let stored = try await fixture.owner.query(
                "SELECT details->>'email' AS email, details::text AS raw FROM public.audit_events WHERE tenant_id = $1", [fixture.tenant]
            ).first!
            let email: String = try stored.decode("email")
            #expect(email.hasPrefix("hmac:"))
            #expect(!(try stored.decode("raw", as: String.self)).contains("alice"))

            // What an auditor does with the tenant key they were given (no root key needed).
            let tenantKey = try fixture.keys.tenantKey(fixture.tenant)
            #expect(AuditKeys.matches("alice@example.com", stored: email, tenantKey: tenantKey))
            #expect(!AuditKeys.matches("bob@example.com", stored: email, tenantKey: tenantKey))
            #expect(email == "hmac:" + Hex.encode(HMACSHA256.authenticate(Array("alice@example.com".utf8), key: tenantKey)))
            // Another tenant's key does not match: pseudonyms do not link users across tenants.
            #expect(!AuditKeys.matches("alice@example.com", stored: email, tenantKey: try fixture.keys.tenantKey(UUID())))
            #expect(try await fixture.verifyLive().isValid)
        }
    }

    @Test("sensitive values without an audit key are refused")
    func needsKey() async throws {
        try await AuditFixture.with { fixture in
            let appender = AuditAppender(pool: fixture.gateway)
            await #expect(throws: AuditError.self) {
                try await appender.append(tenant: fixture.tenant, AuditEvent(action: "secret.read", sensitive: ["name": "x"]))
            }
        }
    }
}

@Suite("Reading the trail")
struct ReaderTests {
    @Test("entries page by seq and filter by action prefix and actor; checkpoints list")
    func pagesAndFilters() async throws {
        try await AuditFixture.with { fixture in
            try await fixture.appendSequentially(6)
            _ = try await fixture.appender.append(tenant: fixture.tenant, AuditEvent(actor: "user-0", action: "privacy.export_requested"))
            _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            let firstPage = try await AuditReader.entries(pool: fixture.gateway, tenant: fixture.tenant, limit: 4)
            #expect(firstPage.map(\.seq) == [1, 2, 3, 4])
            let rest = try await AuditReader.entries(pool: fixture.gateway, tenant: fixture.tenant, afterSeq: 4, limit: 10)
            #expect(rest.map(\.seq) == [5, 6, 7])
            let privacy = try await AuditReader.entries(pool: fixture.gateway, tenant: fixture.tenant, actionPrefix: "privacy.")
            #expect(privacy.map(\.seq) == [7])
            let byActor = try await AuditReader.entries(pool: fixture.gateway, tenant: fixture.tenant, actor: "user-0")
            #expect(byActor.map(\.seq) == [1, 4, 7])
            let checkpoints = try await AuditReader.checkpoints(pool: fixture.gateway, tenant: fixture.tenant)
            #expect(checkpoints.map(\.seq) == [7])
            // Entries read back verify (the read path keeps the exact hashed forms).
            #expect(
                AuditVerifier.verify(
                    tenant: fixture.tenant, entries: firstPage + rest, checkpoints: checkpoints,
                    trustedKeys: fixture.trustedKeys
                ).isValid)
        }
    }
}
