import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Pipelines read by the reactor")
struct ReactorTests {
    // Many tasks queue for few connections while the whole suite runs on two cores: the checkout
    // timeout is generous, since these tests are about results, not speed.
    private func pool(_ size: Int = 4) throws -> ConnectionPool {
        ConnectionPool(
            configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: size, acquireTimeout: .seconds(60)))
    }

    private func cells(_ results: [QueryResult]) -> [[String?]] {
        var cells: [[String?]] = []
        for result in results {
            for row in result.rows {
                cells.append((0..<result.columns.count).map { row.text(at: $0) })
            }
        }
        return cells
    }

    @Test("a pipeline gives the same results on the caller's thread as on the connection's own")
    func sameResults() async throws {
        let pool = try pool()
        defer { pool.close() }
        let statements = [
            Statement("SELECT $1::int + 1 AS n, NULL::text AS nothing", [41]),
            Statement("SELECT g AS n, repeat('x', g) AS text FROM generate_series(1, $1::int) g", [50]),
            Statement("SELECT $1::uuid AS id", [UUID()]),
        ]
        let viaReactor = try await pool.withConnection { try await $0.pipeline(statements) }
        let viaThread = try await pool.withConnection { connection in try await connection.run { try $0.pipeline(statements) } }
        #expect(cells(viaReactor) == cells(viaThread))
        #expect(cells(viaReactor).count == 52)
        #expect(viaReactor.map(\.commandTag) == ["SELECT 1", "SELECT 50", "SELECT 1"])
    }

    @Test("an error in the middle of a pipeline undoes it, is thrown, and leaves the connection usable")
    func errorMidPipeline() async throws {
        let pool = try pool(1)
        defer { pool.close() }
        try await pool.query("CREATE TEMP TABLE IF NOT EXISTS reactor_t (n int PRIMARY KEY)")
        await #expect(throws: PostgresError.self) {
            try await pool.withConnection { connection in
                try await connection.pipeline([
                    Statement("INSERT INTO reactor_t VALUES ($1)", [1]),
                    Statement("SELECT 1 / $1::int", [0]),
                    Statement("INSERT INTO reactor_t VALUES ($1)", [2]),
                ])
            }
        }
        let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT nonsense FROM reactor_t") }
        #expect(error?.sqlState == "42703")
        let count = try await pool.query("SELECT count(*) AS n FROM reactor_t").first!.decode("n", as: Int.self)
        #expect(count == 0)
    }

    @Test("large parameters and many concurrent pipelines all come back whole and in order")
    func concurrentAndLarge() async throws {
        let pool = try pool(4)
        defer { pool.close() }
        let large = String(repeating: "ab", count: 40_000)  // above the size sent from the caller's thread
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let text = index % 10 == 0 ? large : "v\(index)"
                    let results = try await pool.withConnection { connection in
                        try await connection.pipeline(
                            [
                                Statement("SELECT $1::int AS n", [index]),
                                Statement("SELECT length($1::text) AS length", [text]),
                            ], timeout: .seconds(5))
                    }
                    #expect(try results[0].first!.decode("n", as: Int.self) == index)
                    #expect(try results[1].first!.decode("length", as: Int.self) == text.count)
                }
            }
            try await group.waitForAll()
        }
    }

    @Test("a statement timeout applies to the pipeline's statements only")
    func timeout() async throws {
        let pool = try pool(1)
        defer { pool.close() }
        let error = await #expect(throws: PostgresError.self) {
            try await pool.withConnection { try await $0.pipeline([Statement("SELECT pg_sleep(2)")], timeout: .milliseconds(50)) }
        }
        #expect(error?.sqlState == "57014")
        let slept = try await pool.withConnection { try await $0.pipeline([Statement("SELECT true AS done FROM pg_sleep(0.1)")]) }
        #expect(try slept[0].first!.decode("done", as: Bool.self))
    }
}

@Suite("UUID text")
struct UUIDTextTests {
    @Test("formats and parses exactly as Foundation does, without its sprintf and sscanf")
    func roundTrip() {
        for _ in 0..<1000 {
            let id = UUID()
            #expect(id.lowercasedString == id.uuidString.lowercased())
            #expect(UUID(canonical: id.uuidString) == id)
            #expect(UUID(canonical: id.lowercasedString) == id)
        }
        for bad in [
            "", "not-a-uuid", "0123456789abcdef0123456789abcdef", "01234567-89ab-cdef-0123-456789abcdeg",
            "01234567-89ab-cdef-0123-456789abcdef0", "01234567-89ab-cdef-0123-456789abcde", "{01234567-89ab-cdef-0123-456789abcdef}",
            "01234567_89ab-cdef-0123-456789abcdef", "01234567-89ab-cdef-0123-456789abcdé",
        ] {
            #expect(UUID(canonical: bad) == nil, "\(bad)")
            #expect(UUID(uuidString: bad) == nil, "\(bad)")
        }
    }
}

@Suite("Pipelines sharing a connection")
struct SharedPipelineTests {
    private func pool(max: Int = 1, shared: Int = 1) throws -> ConnectionPool {
        ConnectionPool(
            configuration: try TestDatabase.ownerConfiguration(),
            options: .init(maxConnections: max, acquireTimeout: .seconds(60), sharedConnections: shared))
    }

    @Test("each pipeline on a shared connection is its own transaction: settings do not leak, an error stays in its pipeline")
    func isolation() async throws {
        let pool = try pool()
        defer { pool.close() }
        let outcomes = try await withThrowingTaskGroup(of: (Int, Result<(tag: String, pid: Int), PostgresError>).self) { group in
            for index in 0..<120 {
                group.addTask {
                    var statements = [Statement("SELECT set_config('request.tag', $1, true)", ["t\(index)"])]
                    if index % 7 == 0 { statements.append(Statement("SELECT 1 / $1::int", [0])) }
                    statements.append(Statement("SELECT current_setting('request.tag') AS tag, pg_backend_pid() AS pid"))
                    do {
                        let results = try await pool.pipeline(statements)
                        let row = results.last!.first!
                        return (index, .success((try row.decode("tag"), try row.decode("pid"))))
                    } catch let error as PostgresError {
                        return (index, .failure(error))
                    }
                }
            }
            var outcomes: [Int: Result<(tag: String, pid: Int), PostgresError>] = [:]
            for try await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes
        }
        var pids: Set<Int> = []
        for (index, outcome) in outcomes {
            switch outcome {
            case .success(let answer):
                #expect(index % 7 != 0)
                #expect(answer.tag == "t\(index)")
                pids.insert(answer.pid)
            case .failure(let error):
                #expect(index % 7 == 0, "\(error)")
                #expect(error.sqlState == "22012", "\(error)")
            }
        }
        #expect(pids.count == 1)  // one connection carried them all
        let after = try await pool.pipeline([Statement("SELECT coalesce(current_setting('request.tag', true), '') AS tag")])
        #expect(try after[0].first!.decode("tag", as: String.self) == "")
    }

    /// The root cause of the shared connections' rare failure, made deterministic: a commit that
    /// fails at the Sync (here a deferred unique constraint) gives libpq one more result after
    /// the last command's, then a NULL, then the Sync. Counting NULLs, the reader took that error
    /// for the end of the pipeline; the pipeline behind then read the NULL ("no result where one
    /// was due") or — appended while the pipeline was aborted, when libpq skips that NULL — the
    /// failed pipeline's Sync, and every pipeline after it the results of the one before.
    @Test("a commit that fails at its Sync stays in its pipeline: those behind it get their own results", arguments: [0, 1])
    func commitFailsAtSync(shared: Int) async throws {
        // A shared connection keeps its slot: the pool needs a second one for checkouts.
        let pool = try pool(max: 1 + shared, shared: shared)
        defer { pool.close() }
        let table = "deferred_\(UUID().uuidString.prefix(8).lowercased())"
        try await pool.query("CREATE TABLE \(table) (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)")
        let failing = [Statement("INSERT INTO \(table) VALUES ($1)", [1]), Statement("INSERT INTO \(table) VALUES ($1)", [1])]
        @Sendable func run(_ statements: [Statement]) async throws -> [QueryResult] {
            shared > 0 ? try await pool.pipeline(statements) : try await pool.withConnection { try await $0.pipeline(statements) }
        }

        // One after the other.
        let error = await #expect(throws: PostgresError.self) { try await run(failing) }
        #expect(error?.sqlState == "23505")
        let pid: Int = try await run([Statement("SELECT pg_backend_pid() AS pid")])[0].first!.decode("pid")
        let answer = try await run([Statement("SELECT $1::int AS n", [7])])
        #expect(answer.count == 1)
        #expect(try answer[0].first!.decode("n", as: Int.self) == 7)
        // The connection was clean after the failure, so it was kept.
        #expect(try await run([Statement("SELECT pg_backend_pid() AS pid")])[0].first!.decode("pid", as: Int.self) == pid)

        // Queued behind one another on one connection.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<60 {
                group.addTask {
                    if index % 3 == 0 {
                        let error = await #expect(throws: PostgresError.self) { try await run(failing) }
                        #expect(error?.sqlState == "23505")
                    } else {
                        let results = try await run([
                            Statement("SELECT $1::int AS n", [index]), Statement("SELECT $1::text AS t", ["t\(index)"]),
                        ])
                        #expect(results.count == 2)
                        #expect(try results[0].first!.decode("n", as: Int.self) == index)
                        #expect(try results[1].first!.decode("t", as: String.self) == "t\(index)")
                    }
                }
            }
            try await group.waitForAll()
        }
        let rows: Int = try await pool.query("SELECT count(*) AS n FROM \(table)").first!.decode("n")
        #expect(rows == 0)
        try await pool.query("DROP TABLE \(table)")
    }

    @Test("a statement whose preparation was skipped with another pipeline's error is prepared again, not failed")
    func preparedAgain() async throws {
        let pool = try pool()
        defer { pool.close() }
        for pair in 0..<40 {
            // A new statement text per pair: the failing pipeline prepares it and its error skips that.
            let fresh = "SELECT $1::int AS n /* pair \(pair) */"
            async let failing: PostgresError? = {
                do {
                    _ = try await pool.pipeline([Statement("SELECT 1 / $1::int", [0]), Statement(fresh, [1])])
                    return nil
                } catch {
                    return error as? PostgresError
                }
            }()
            async let fine: [QueryResult] = pool.pipeline([Statement(fresh, [pair])])
            let answer = try await fine
            #expect(try answer[0].first!.decode("n", as: Int.self) == pair)
            let error = await failing
            #expect(error?.sqlState == "22012")
        }
    }

    @Test(
        "with every slot a shared connection's, a pipeline sent while a slow statement holds it queues behind it: no checkout waits for a slot none gives back"
    )
    func allSlotsSharedQueuesBehindSlowStatement() async throws {
        // One slot, shared; a short acquire timeout, so a checkout that waits for the slot fails fast.
        let pool = ConnectionPool(
            configuration: try TestDatabase.ownerConfiguration(),
            options: .init(maxConnections: 1, acquireTimeout: .seconds(3), sharedConnections: 1))
        defer { pool.close() }
        let slow = Task { try await pool.pipeline([Statement("SELECT pg_sleep(5)")]) }
        // Wait until the shared connection is stalled behind the slow statement (bounded).
        let deadline = ContinuousClock.now + .seconds(60)
        while pool.statistics.stalled == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        try #require(pool.statistics.stalled == 1, "the slow statement never stalled the shared connection")
        // Before, this fell back to a checkout, which waited for the only slot until its timeout.
        let answer = try await pool.pipeline([Statement("SELECT 42 AS n")])
        #expect(try answer[0].first!.decode("n", as: Int.self) == 42)
        _ = try await slow.value
    }

    @Test("a shared connection the server closed is replaced before the next pipeline")
    func replaced() async throws {
        let pool = try pool()
        defer { pool.close() }
        let owner = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { owner.close() }
        let before: Int = try await pool.pipeline([Statement("SELECT pg_backend_pid() AS pid")])[0].first!.decode("pid")
        try await owner.query("SELECT pg_terminate_backend($1)", [before])
        try await Task.sleep(for: .milliseconds(200))
        let after: Int = try await pool.pipeline([Statement("SELECT pg_backend_pid() AS pid")])[0].first!.decode("pid")
        #expect(after != before)
        #expect(pool.statistics.open == 1)
    }

    @Test("pipelines do not queue behind a slow statement on a shared connection")
    func slowStatement() async throws {
        let pool = try pool(max: 3, shared: 1)
        defer { pool.close() }
        // The slow statement waits for an advisory lock this test holds, so it runs until the test
        // lets it go: with pg_sleep, a loaded machine could see it finish before it was observed,
        // and the wait for it never ended.
        let key = Int.random(in: 1...Int(Int32.max))
        let holder = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { holder.close() }
        let locked = AsyncStream<Void>.makeStream()
        let release = AsyncStream<Void>.makeStream()
        let holding = Task {
            try await holder.withConnection { connection in
                try await connection.query("SELECT pg_advisory_lock($1::bigint)", [key])
                locked.continuation.yield()
                for await _ in release.stream { break }
                try await connection.query("SELECT pg_advisory_unlock($1::bigint)", [key])
            }
        }
        for await _ in locked.stream { break }
        let slowDone = Flag()
        let marker = UUID().lowercasedString  // pg_stat_activity is per cluster
        let sql = "SELECT pg_advisory_xact_lock($1::bigint) /* \(marker) */"
        let slow = Task {
            _ = try await pool.pipeline([Statement(sql, [key])])
            slowDone.set()
        }
        let observer = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { observer.close() }
        while try await observer.query(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query = $1", [sql]
        ).first!.decode("n", as: Int.self) == 0 {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(50))  // past the point where others stop queueing behind it
        for index in 0..<5 {
            let n: Int = try await pool.pipeline([Statement("SELECT $1::int AS n", [index])])[0].first!.decode("n")
            #expect(n == index)
        }
        #expect(!slowDone.isSet)  // answered while the slow statement still waited
        release.continuation.yield()
        try await slow.value
        try await holding.value
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
