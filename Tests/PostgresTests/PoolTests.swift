import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Connection pool")
struct PoolTests {
    @Test("the pool never opens more connections than its bound")
    func bounded() async throws {
        let name = "pool-bound-\(UUID().uuidString.prefix(8))"
        let pool = ConnectionPool(
            configuration: try TestDatabase.ownerConfiguration().with("application_name", name),
            options: .init(maxConnections: 2))
        defer { pool.close() }
        let observer = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { observer.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask { try await pool.query("SELECT pg_sleep(0.2)") }
            }
            try await Task.sleep(for: .milliseconds(100))
            let open = try await observer.query(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [name]
            ).first!.decode("n", as: Int.self)
            #expect(open <= 2)
            #expect(pool.statistics.open <= 2)
            try await group.waitForAll()
        }
        #expect(pool.statistics.idle <= 2)
    }

    @Test("checkout gives up with a pool timeout when every connection stays busy")
    func acquireTimeout() async throws {
        let pool = ConnectionPool(
            configuration: try TestDatabase.ownerConfiguration(),
            options: .init(maxConnections: 1, acquireTimeout: .milliseconds(200)))
        defer { pool.close() }
        async let holder: Void = pool.withConnection { connection in
            try await connection.query("SELECT pg_sleep(1)")
        }
        // Wait until the holder really has the only connection, however slow the machine.
        for _ in 0..<200 where pool.statistics.inUse < 1 { try await Task.sleep(for: .milliseconds(10)) }
        let error = await #expect(throws: PostgresError.self) { try await pool.ping() }
        #expect(error?.code == .poolTimeout)
        try await holder
        try await pool.ping()
    }

    @Test("a cancelled waiter leaves the queue at once, with a cancellation error")
    func cancelledWaiter() async throws {
        // The acquire timeout is far away: only cancellation can take the waiter out of the queue.
        let pool = ConnectionPool(
            configuration: try TestDatabase.ownerConfiguration(),
            options: .init(maxConnections: 1, acquireTimeout: .seconds(600)))
        defer { pool.close() }
        let release = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await pool.withConnection { connection in
                try await connection.query("SELECT 1")
                for await _ in release.stream { break }
            }
        }
        for _ in 0..<1000 where pool.statistics.inUse < 1 { try await Task.sleep(for: .milliseconds(10)) }
        let waiter = Task { try await pool.ping() }
        for _ in 0..<1000 where pool.statistics.waiting < 1 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(pool.statistics.waiting == 1)
        waiter.cancel()
        let outcome = await waiter.result
        #expect(throws: CancellationError.self) { try outcome.get() }
        #expect(pool.statistics.waiting == 0)
        release.continuation.yield()
        try await holder.value
        try await pool.ping()  // the connection went back to the pool, not to the cancelled waiter
        #expect(pool.statistics.open == 1)
    }

    @Test("a connection whose protocol state is in doubt is closed, not returned to the pool")
    func doubtfulConnectionClosed() async throws {
        let pool = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { pool.close() }
        let before: Int = try await pool.query("SELECT pg_backend_pid() AS pid").first!.decode("pid")
        // The backend dies in the middle of the caller's pipeline: an error, not a retry (the
        // work may have been done), and the connection is not kept.
        let error = await #expect(throws: PostgresError.self) {
            try await pool.withConnection { connection in
                try await connection.pipeline([
                    Statement("SELECT $1::int AS n", [1]), Statement("SELECT pg_terminate_backend(pg_backend_pid())"),
                    Statement("SELECT $1::int AS n", [2]),
                ])
            }
        }
        #expect(error?.code == .connectionLost || error?.sqlState == "57P01")
        let after: Int = try await pool.query("SELECT pg_backend_pid() AS pid").first!.decode("pid")
        #expect(after != before)
        #expect(pool.statistics.open == 1)
    }

    @Test("connections the server dropped are replaced without the caller noticing")
    func reconnectsAfterServerDropsConnections() async throws {
        let name = "pool-reconnect-\(UUID().uuidString.prefix(8))"
        let pool = ConnectionPool(
            configuration: try TestDatabase.ownerConfiguration().with("application_name", name),
            options: .init(maxConnections: 3))
        defer { pool.close() }
        // Warm the pool with three connections.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<3 { group.addTask { try await pool.query("SELECT pg_sleep(0.05)") } }
            try await group.waitForAll()
        }
        #expect(pool.statistics.open == 3)
        // What a server restart does to every backend: terminate it.
        let admin = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { admin.close() }
        let killed = try await admin.query(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = $1", [name]
        ).first!.decode("n", as: Int.self)
        #expect(killed == 3)
        try await Task.sleep(for: .milliseconds(100))
        for _ in 0..<5 {
            #expect(try await pool.query("SELECT 1 AS one").first?.decode("one", as: Int.self) == 1)
        }
    }

    @Test("many concurrent tasks share a small pool")
    func concurrency() async throws {
        // 200 tasks queue for 4 connections; the whole test suite runs at once on a 2-core CI
        // machine, so the checkout timeout is generous: this tests sharing, not speed.
        let pool = ConnectionPool(
            configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 4, acquireTimeout: .seconds(60)))
        defer { pool.close() }
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<200 {
                group.addTask { try await pool.query("SELECT $1::int AS v", [i]).first!.decode("v", as: Int.self) }
            }
            return try await group.reduce(0, +)
        }
        #expect(total == (0..<200).reduce(0, +))
        #expect(pool.statistics.open <= 4)
    }

    @Test(
        "a tenant at its cap in the pool is refused at once, nothing sent, while another tenant and untenanted work are served; its slot comes back after an error"
    )
    func tenantCap() async throws {
        let limiter = TenantLimiter(concurrency: 1, queueLength: 0)
        let pool = ConnectionPool(
            configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 3, tenantLimiter: limiter))
        defer { pool.close() }
        #expect(pool.tenantLimiter === limiter)
        let acme = UUID(), globex = UUID()
        try await pool.withConnection(tenant: acme) { held in
            #expect(limiter.inFlight(acme) == 1)
            // Every way into the pool for acme is refused while it holds its one slot.
            let viaPipeline = await #expect(throws: PostgresError.self) { try await pool.pipeline(tenant: acme, [Statement("SELECT 1")]) }
            #expect(viaPipeline?.code == .tenantBusy)
            #expect(viaPipeline?.detail == "1 in flight and 0 waiting")
            let viaCheckout = await #expect(throws: PostgresError.self) { try await pool.withConnection(tenant: acme) { _ in } }
            #expect(viaCheckout?.code == .tenantBusy)
            let viaTransaction = await #expect(throws: PostgresError.self) { try await pool.transaction(tenant: acme) { _ in } }
            #expect(viaTransaction?.code == .tenantBusy)
            // Others are not held up by acme's cap.
            let other: Int = try await pool.pipeline(tenant: globex, [Statement("SELECT 2 AS n")])[0].first!.decode("n")
            #expect(other == 2)
            let untenanted = try await pool.transaction(tenant: nil) { try $0.query("SELECT 3 AS n").first!.decode("n", as: Int.self) }
            #expect(untenanted == 3)
            let own: Int = try await held.query("SELECT 4 AS n").first!.decode("n")
            #expect(own == 4)
        }
        #expect(limiter.inFlight(acme) == 0)
        // A failing unit gives its slot back too.
        await #expect(throws: PostgresError.self) { try await pool.pipeline(tenant: acme, [Statement("SELECT 1/0")]) }
        #expect(limiter.inFlight(acme) == 0)
        #expect(try await pool.pipeline(tenant: acme, [Statement("SELECT 5 AS n")])[0].first!.decode("n", as: Int.self) == 5)
    }

    @Test("without a per-tenant limiter, tenant work is plain pool work")
    func noTenantCap() async throws {
        let pool = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 2))
        defer { pool.close() }
        #expect(pool.tenantLimiter == nil)
        let acme = UUID()
        try await pool.withConnection(tenant: acme) { _ in
            let nested: Int = try await pool.pipeline(tenant: acme, [Statement("SELECT 1 AS n")])[0].first!.decode("n")
            #expect(nested == 1)
        }
    }
}
