import Dispatch
import Foundation
import TestSupport
import Testing

@testable import Postgres

/// One owner per connection (THREADING.md). Outside this module the compiler enforces it: a
/// `PooledConnection` and a `Connection` are `~Copyable` and only ever borrowed, so they cannot
/// outlive the closure they were lent to (that cannot be a test: it does not compile). These tests
/// forge, with `@testable` access, what only code inside the module could: a lease kept past its
/// checkout, and two units at once on one lease. Both are refused before libpq is touched.
@Suite("Connection ownership")
struct OwnershipTests {
    @Test("a lease kept past its checkout is refused, also while the connection serves its next holder, and nothing runs")
    func leaseAfterHandOverRefused() async throws {
        let pool = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { pool.close() }
        let (entry, lease, pid) = try await pool.withConnection { connection in
            let pid: Int = try await connection.query("SELECT pg_backend_pid() AS pid").first!.decode("pid")
            return (connection.entry, connection.lease, pid)
        }
        let stale = { PooledConnection(entry: entry, lease: lease) }

        let refused = await #expect(throws: PostgresError.self) { try await stale().query("SELECT 1") }
        #expect(refused?.code == .notOwner)
        let ran = Flag()
        let refusedRun = await #expect(throws: PostgresError.self) { try await stale().run { _ in ran.set() } }
        #expect(refusedRun?.code == .notOwner)
        #expect(!ran.isSet)

        // The pool's only connection, now someone else's: the stale lease still cannot reach it,
        // and the holder's own units are undisturbed.
        try await pool.withConnection { connection in
            #expect(connection.entry === entry)
            let error = await #expect(throws: PostgresError.self) { try await stale().query("SELECT 1") }
            #expect(error?.code == .notOwner)
            let same: Int = try await connection.query("SELECT pg_backend_pid() AS pid").first!.decode("pid")
            #expect(same == pid)
        }
        #expect(pool.statistics.open == 1)
    }

    @Test("a second unit on one lease while the first is in flight is refused; the first completes and the lease stays usable")
    func overlappingUnitsRefused() async throws {
        let pool = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { pool.close() }
        try await pool.withConnection { connection in
            let (entry, lease) = (connection.entry, connection.lease)
            let started = AsyncStream<Void>.makeStream()
            let proceed = DispatchSemaphore(value: 0)
            // Only code inside the module can do this (the compiler refuses an escaping capture of
            // the borrowed lease): a unit that holds the connection's thread until told to finish.
            let first = Task {
                try await PooledConnection(entry: entry, lease: lease).run { connection -> Int in
                    started.continuation.yield()
                    proceed.wait()
                    return try connection.query("SELECT 7 AS n").first!.decode("n")
                }
            }
            for await _ in started.stream { break }
            let overlapping = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
            #expect(overlapping?.code == .notOwner)
            proceed.signal()
            let firstResult = try await first.value
            #expect(firstResult == 7)
            let after: Int = try await connection.query("SELECT 8 AS n").first!.decode("n")
            #expect(after == 8)
        }
        try await pool.ping()
    }

    @Test("a connection given back while a unit still runs on it is closed, not handed to the next holder")
    func handedBackWhileBusyClosed() async throws {
        let pool = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { pool.close() }
        let proceed = DispatchSemaphore(value: 0)
        let (straggler, pid) = try await pool.withConnection { connection in
            let pid: Int = try await connection.query("SELECT pg_backend_pid() AS pid").first!.decode("pid")
            let (entry, lease) = (connection.entry, connection.lease)
            let started = AsyncStream<Void>.makeStream()
            let straggler = Task {
                try await PooledConnection(entry: entry, lease: lease).run { connection in
                    started.continuation.yield()
                    proceed.wait()
                    try connection.query("SELECT 1")
                }
            }
            for await _ in started.stream { break }
            return (straggler, pid)
        }
        // Checked out again at once: a fresh connection, never the one the straggler still uses.
        let next: Int = try await pool.query("SELECT pg_backend_pid() AS pid").first!.decode("pid")
        #expect(next != pid)
        proceed.signal()
        _ = try? await straggler.value
        #expect(pool.statistics.open == 1)
    }
}
