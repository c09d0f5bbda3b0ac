import Audit
import Foundation
import Postgres

// Appends per second for one tenant at N concurrent writers, through the group-commit appender.
// Usage: AuditBenchmark DATABASE_URL [seconds=15] [writers=64] [tenant id]
// With a tenant id, appends to that existing tenant (tests run two processes on one chain).
// Prints one line a script can read: "audit appends/s: <rate> (<writers> writers, <seconds> s)".
//
// Verification benchmark (benchmarks/audit-verify), one mode per process so that each one's
// peak memory is its own: AuditBenchmark fill|verify|proofs … (see VerifyBenchmark.swift).

@main
struct AuditBenchmark {
    static func main() async throws {
        let arguments = CommandLine.arguments
        if arguments.count >= 2, ["fill", "verify", "proofs"].contains(arguments[1]) {
            try await VerifyBenchmark.run(Array(arguments.dropFirst()))
            return
        }
        guard arguments.count >= 2 else {
            FileHandle.standardError.write(Data("usage: AuditBenchmark DATABASE_URL [seconds] [writers] [tenant id]\n".utf8))
            exit(2)
        }
        let seconds = arguments.count > 2 ? Int(arguments[2]) ?? 15 : 15
        let writers = arguments.count > 3 ? Int(arguments[3]) ?? 64 : 64

        let pool = ConnectionPool(configuration: try PostgresConfiguration(arguments[1]), options: .init(maxConnections: 8))
        let given = arguments.count > 4 ? UUID(uuidString: arguments[4]) : nil
        let tenant = given ?? UUID()
        if given == nil {
            try await pool.query(
                "INSERT INTO public.tenants (id, name) VALUES ($1, $2)", [tenant, "audit-bench-\(tenant.uuidString.prefix(8))"])
        }
        let appender = AuditAppender(pool: pool)

        let deadline = ContinuousClock.now + .seconds(seconds)
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var count = 0
                    while ContinuousClock.now < deadline {
                        _ = try await appender.append(
                            tenant: tenant,
                            AuditEvent(
                                actor: "writer-\(writer)", action: "secret.read", target: "secret:bench", details: ["n": .int(Int64(count))]
                            ))
                        count += 1
                    }
                    return count
                }
            }
            var sum = 0
            for try await count in group { sum += count }
            return sum
        }
        // No checkpoints are signed here, so no key needs pinning.
        let verified = try await AuditBundle.verifyLive(pool: pool, tenant: tenant, trustedKeys: [:])
        pool.close()
        guard verified.isValid else {
            FileHandle.standardError.write(
                Data("the chain written by the benchmark does not verify: \(verified.failures.count) failures\n".utf8))
            exit(1)
        }
        print(
            "audit appends/s: \(String(format: "%.0f", Double(total) / Double(seconds))) (\(writers) writers, \(seconds) s, \(total) entries, chain verified)"
        )
    }
}
