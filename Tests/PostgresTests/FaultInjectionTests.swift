import Foundation
import Postgres
import TestSupport
import Testing

/// Many concurrent pipelines from two tenants while the server fails them in every way it can:
/// every caller gets exactly its own results, or a clean error of a kind its pipeline allows.
@Suite("Faults under concurrent pipelines")
struct FaultInjectionTests {
    @Test(
        "200 concurrent pipelines of two tenants, with errors, timeouts and killed backends: each caller gets its own results or a clean error"
    )
    func concurrentFaults() async throws {
        let mix = try Mix()
        defer { mix.close() }
        let tally = try await mix.round(count: 200, kills: 12)
        // Every kind of outcome happened (the faults are injected by construction, not by chance).
        #expect(tally.successes > 0)
        #expect(tally.serverErrors > 0)
        #expect(tally.connectionErrors > 0)
        // The pool recovers: nothing it keeps is broken.
        for index in 0..<10 {
            let results = try await mix.pool.pipeline([Statement("SELECT $1::int AS n", [index])])
            #expect(try results[0].first!.decode("n", as: Int.self) == index)
        }
        #expect(mix.pool.statistics.open <= Mix.maxConnections)
    }
}

/// The soak (`scripts/soak SECONDS`): the same mix, round after round, for `PG_SOAK_SECONDS`.
@Suite("Soak", .enabled(if: ProcessInfo.processInfo.environment["PG_SOAK_SECONDS"] != nil))
struct SoakTests {
    @Test("concurrent pipelines with faults mixed in, for PG_SOAK_SECONDS seconds: never a wrong result")
    func soak() async throws {
        let seconds = Int(ProcessInfo.processInfo.environment["PG_SOAK_SECONDS"] ?? "") ?? 60
        let mix = try Mix()
        defer { mix.close() }
        let end = ContinuousClock.now + .seconds(seconds)
        var total = Mix.Tally()
        var rounds = 0
        while ContinuousClock.now < end {
            let tally = try await mix.round(count: 200, kills: 4)
            total.successes += tally.successes
            total.serverErrors += tally.serverErrors
            total.connectionErrors += tally.connectionErrors
            rounds += 1
        }
        print(
            "soak: \(rounds) rounds in \(seconds) s: \(total.successes) pipelines answered, \(total.serverErrors) server errors, \(total.connectionErrors) connection errors"
        )
        #expect(total.successes > 0)
    }
}

/// A pool with shared connections and a mix of pipelines, some failing on purpose.
private final class Mix: Sendable {
    static let maxConnections = 6
    let pool: ConnectionPool
    let admin: ConnectionPool
    let name = "faults-\(UUID().uuidString.prefix(8).lowercased())"
    let tenants = [UUID(), UUID()]

    struct Tally {
        var successes = 0
        var serverErrors = 0
        var connectionErrors = 0
    }

    enum Fault: CaseIterable {
        case none, divisionByZero, statementTimeout, killOwnBackend
    }

    init() throws {
        pool = ConnectionPool(
            configuration: try TestDatabase.ownerConfiguration().with("application_name", name),
            options: .init(maxConnections: Self.maxConnections, acquireTimeout: .seconds(120), sharedConnections: 2))
        admin = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
    }

    func close() {
        pool.close()
        admin.close()
    }

    /// Every 10th pipeline divides by zero, every 10th (another) times out, every 20th kills its
    /// own backend mid-pipeline; meanwhile `kills` backends of the pool are terminated from outside.
    /// Half the pipelines go through shared connections, half through checkouts.
    func round(count: Int, kills: Int) async throws -> Tally {
        let killer = Task {
            for _ in 0..<kills {
                try await Task.sleep(for: .milliseconds(15))
                _ = try? await admin.query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 ORDER BY random() LIMIT 1", [name])
            }
        }
        let tally = try await withThrowingTaskGroup(of: Tally.self) { group in
            for index in 0..<count {
                group.addTask { await self.one(index) }
            }
            var tally = Tally()
            for try await one in group {
                tally.successes += one.successes
                tally.serverErrors += one.serverErrors
                tally.connectionErrors += one.connectionErrors
            }
            return tally
        }
        try await killer.value
        return tally
    }

    private func fault(_ index: Int) -> Fault {
        switch index % 20 {
        case 3, 13: .divisionByZero
        case 7, 17: .statementTimeout
        case 11: .killOwnBackend
        default: .none
        }
    }

    private func one(_ index: Int) async -> Tally {
        let tenant = tenants[index % 2]
        let fault = fault(index)
        var statements = [Statement("SELECT set_config('request.tenant_id', $1, true)", [tenant.lowercasedString])]
        var timeout: Duration?
        switch fault {
        case .none: break
        case .divisionByZero: statements.append(Statement("SELECT 1 / $1::int", [0]))
        case .statementTimeout:
            statements.append(Statement("SELECT pg_sleep($1::float8)", [5.0]))
            timeout = .milliseconds(50)
        case .killOwnBackend: statements.append(Statement("SELECT pg_terminate_backend(pg_backend_pid())"))
        }
        statements.append(Statement("SELECT $1::int AS n, current_setting('request.tenant_id') AS tenant", [index]))
        do {
            let results: [QueryResult]
            if index % 4 < 2 {
                results = try await pool.pipeline(statements, timeout: timeout)
            } else {
                results = try await pool.withConnection { [statements] in try await $0.pipeline(statements, timeout: timeout) }
            }
            // Its own results, all of them, and only if nothing in it could fail.
            #expect(fault == .none, "pipeline \(index) (\(fault)) succeeded")
            #expect(results.count == statements.count, "pipeline \(index): \(results.count) results for \(statements.count) statements")
            let row = try #require(results.last?.first)
            #expect(try row.decode("n", as: Int.self) == index)
            #expect(try row.decode("tenant", as: String.self) == tenant.lowercasedString)
            return Tally(successes: 1)
        } catch let error as PostgresError {
            if error.code == .connectionLost || error.code == .connectionFailed
                || error.sqlState.map({ $0.hasPrefix("08") || $0.hasPrefix("57P") }) == true
            {
                return Tally(connectionErrors: 1)
            }
            switch error.sqlState {
            case "22012": #expect(fault == .divisionByZero, "pipeline \(index) (\(fault)): \(error.summary)")
            case "57014": #expect(fault == .statementTimeout, "pipeline \(index) (\(fault)): \(error.summary)")
            default: Issue.record("pipeline \(index) (\(fault)): unexpected \(error)")
            }
            return Tally(serverErrors: 1)
        } catch {
            Issue.record("pipeline \(index) (\(fault)): not a PostgresError: \(error)")
            return Tally()
        }
    }
}
