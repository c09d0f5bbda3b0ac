import Audit
import Foundation
import Postgres
import Sodium

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The modes behind benchmarks/audit-verify, each run in its own process:
///
/// - `fill URL ENTRIES INTERVAL`: a new tenant with ENTRIES entries written through the
///   group-commit appender (large batches, many concurrent appends), a checkpoint signed every
///   INTERVAL entries with a fresh Ed25519 key. Prints `tenant`, `public_key`,
///   the fill rate, and `period_since`/`period_until`: the stamps bounding 1/12 of the entries
///   (the appender stamps the database clock, so the log spans the minutes it took to write; a
///   twelfth of it stands for a month of a year-long log).
/// - `verify URL TENANT PUBLIC_KEY`: the whole-chain verification (`AuditBundle.verifyLive`, what
///   `privacyctl audit verify --live` and `GET /v1/audit/verify` run) against a plain `COPY` of
///   the same columns in the same order with no verification, twice each (best of two), and the
///   process's peak resident memory.
/// - `proofs URL TENANT PUBLIC_KEY [COUNT]`: inclusion proofs of COUNT random entries against the
///   last checkpoint, built from the database and verified offline: medians and p95.
enum VerifyBenchmark {
    static func run(_ arguments: [String]) async throws {
        func argument(_ index: Int) -> String {
            guard index < arguments.count else { fail("missing argument \(index) for \(arguments[0])") }
            return arguments[index]
        }
        let pool = ConnectionPool(configuration: try PostgresConfiguration(argument(1)), options: .init(maxConnections: 4))
        defer { pool.close() }
        switch arguments[0] {
        case "fill":
            try await fill(pool, entries: Int(argument(2)) ?? 0, interval: Int(argument(3)) ?? 10_000)
        case "verify":
            try await verify(pool, tenant: uuid(argument(2)), publicKey: key(argument(3)))
        default:
            try await proofs(
                pool, tenant: uuid(argument(2)), publicKey: key(argument(3)), count: arguments.count > 4 ? Int(arguments[4]) ?? 200 : 200)
        }
    }

    static func fill(_ pool: ConnectionPool, entries: Int, interval: Int) async throws {
        guard entries > 0, interval > 0 else { fail("fill needs ENTRIES > 0 and INTERVAL > 0") }
        let tenant = UUID()
        try await pool.query(
            "INSERT INTO public.tenants (id, name) VALUES ($1, $2)", [tenant, "audit-verify-\(tenant.uuidString.prefix(8))"])
        let signingKey = try Ed25519.SigningKey.generate()
        // Batches far larger than a gateway's default (256): the fill is bulk work, not latency-bound.
        let appender = AuditAppender(pool: pool, options: .init(maxBatch: 2000))
        let checkpointer = AuditCheckpointer(pool: pool, signingKey: signingKey)
        let start = ContinuousClock.now
        var written = 0
        while written < entries {
            let round = min(interval, entries - written)
            let base = written
            try await withThrowingTaskGroup(of: Void.self) { group in
                for offset in 0..<round {
                    group.addTask {
                        _ = try await appender.append(tenant: tenant, event(base + offset))
                    }
                }
                try await group.waitForAll()
            }
            written += round
            if round == interval { _ = try await checkpointer.checkpoint(tenant: tenant) }
        }
        let elapsed = seconds(ContinuousClock.now - start)
        // A twelfth of the log, from 5/12 to 6/12 of it.
        let stamps = try await pool.query(
            """
            SELECT (SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') FROM public.audit_events WHERE tenant_id = $1 AND seq = $2) AS since,
                   (SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') FROM public.audit_events WHERE tenant_id = $1 AND seq = $3) AS until
            """,
            [tenant, Int64(entries * 5 / 12 + 1), Int64(entries * 6 / 12 + 1)]
        ).first!
        print("tenant \(tenant.uuidString.lowercased())")
        print("public_key \(Hex.encode(signingKey.publicKey))")
        print("period_since \(try stamps.decode("since", as: String.self))")
        print("period_until \(try stamps.decode("until", as: String.self))")
        print(
            String(
                format: "fill: %d entries in %.1f s (%.0f appends/s through the appender, a checkpoint every %d)",
                entries, elapsed, Double(entries) / elapsed, interval))
    }

    /// Mostly secret reads, some denials and consent changes: what a report sorts.
    static func event(_ n: Int) -> AuditEvent {
        switch n % 100 {
        case 0:
            return AuditEvent(
                actor: nil, action: "policy.denied", target: "public.projects", outcome: .denied,
                details: ["command": "select", "role": "anon", "reason": "no policy allows select for anon"])
        case 1:
            return AuditEvent(
                actor: "user:\(n % 1000)", action: "privacy.settings_updated",
                details: [
                    "changed": .object(["marketing_consent": .object(["from": .bool(n % 2 == 0), "to": .bool(n % 2 == 1)])])
                ])
        default:
            return AuditEvent(
                actor: "service_key:\(n % 7)", action: "secret.read", target: "hmac:\(String(repeating: "ab", count: 32))",
                requestID: "req-\(n)", ip: "10.0.\(n % 250).\(n % 200 + 1)", userAgent: "bench/1.0", details: ["n": .int(Int64(n))])
        }
    }

    static func verify(_ pool: ConnectionPool, tenant: UUID, publicKey: [UInt8]) async throws {
        let trusted = AuditCheckpoint.trustedKeys([publicKey])
        var best = (verify: Double.infinity, scan: Double.infinity, cpu: Double.infinity)
        var entries = 0
        var rows = 0
        for _ in 0..<2 {
            let scanStart = ContinuousClock.now
            rows = try await scan(pool, tenant: tenant)
            best.scan = min(best.scan, seconds(ContinuousClock.now - scanStart))
            let start = ContinuousClock.now
            let cpuStart = cpuSeconds()
            let report = try await AuditBundle.verifyLive(pool: pool, tenant: tenant, trustedKeys: trusted)
            best.verify = min(best.verify, seconds(ContinuousClock.now - start))
            best.cpu = min(best.cpu, cpuSeconds() - cpuStart)
            guard report.isValid else { fail("the chain does not verify: \(report.summary)") }
            entries = report.entriesChecked
        }
        let usage = resourceUsage()
        print(
            String(
                format:
                    "full verification: %.0f entries/s (%d entries with every checkpoint's signature and root, best of 2: %.2f s; peak RSS of this process %.0f MB)",
                Double(entries) / best.verify, entries, best.verify, Double(usage.ru_maxrss) / 1024))
        // On a shared machine the wall clock mostly measures waiting for a core; the verifier's own
        // CPU time per entry does not depend on the load (the server's work is in the scan line).
        print(
            String(
                format: "verifier CPU (user+sys of this process): %.2f µs per entry = %.0f entries per CPU-second",
                best.cpu / Double(entries) * 1e6, Double(entries) / best.cpu))
        print(
            String(
                format: "plain scan (COPY of the same columns in seq order, nothing verified): %.0f rows/s (%d rows, best of 2: %.2f s)",
                Double(rows) / best.scan, rows, best.scan))
        print(String(format: "ratio verification/scan: %.2f", best.scan / best.verify))
    }

    /// The rows verification reads (same columns, same order), streamed and dropped.
    static func scan(_ pool: ConnectionPool, tenant: UUID) async throws -> Int {
        try await pool.transaction(isolation: .repeatableRead) { connection in
            _ = try connection.query("SELECT set_config('bench.tenant', $1, true)", [tenant.uuidString.lowercased()])
            var count = 0
            try connection.copyOut(
                """
                COPY (SELECT tenant_id, seq, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, actor, action, target,
                             outcome, request_id, host(ip) AS ip, user_agent, details::text AS details, prev_hash, hash
                      FROM public.audit_events WHERE tenant_id = current_setting('bench.tenant')::uuid ORDER BY seq) TO STDOUT
                """
            ) { _ in count += 1 }
            return count
        }
    }

    static func proofs(_ pool: ConnectionPool, tenant: UUID, publicKey: [UInt8], count: Int) async throws {
        guard let checkpoint = try await AuditReader.checkpoints(pool: pool, tenant: tenant).last(where: { $0.note != nil }) else {
            fail("the tenant has no signed checkpoint")
        }
        var generator = SystemRandomNumberGenerator()
        var build: [Double] = []
        var check: [Double] = []
        for _ in 0..<count {
            let seq = Int64.random(in: 1...checkpoint.seq, using: &generator)
            let start = ContinuousClock.now
            let proof = try await AuditProofs.inclusion(pool: pool, tenant: tenant, seq: seq, checkpointSeq: checkpoint.seq)
            build.append(seconds(ContinuousClock.now - start))
            for _ in 0..<5 {
                let verifyStart = ContinuousClock.now
                try AuditProofs.verify(proof, publicKey: publicKey)
                check.append(seconds(ContinuousClock.now - verifyStart))
            }
        }
        print(
            String(
                format:
                    "inclusion proof generation: median %.3f ms, p95 %.3f ms (%d random entries, tree size %lld, one pipelined round trip each)",
                percentile(build, 0.5) * 1000, percentile(build, 0.95) * 1000, count, checkpoint.seq))
        print(
            String(
                format: "inclusion proof verification (offline: signed note, entry hash, path): median %.3f ms, p95 %.3f ms (%d runs)",
                percentile(check, 0.5) * 1000, percentile(check, 0.95) * 1000, check.count))
    }

    static func resourceUsage() -> rusage {
        var usage = rusage()
        #if os(Linux)
            getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        #else
            getrusage(RUSAGE_SELF, &usage)
        #endif
        return usage
    }

    static func cpuSeconds() -> Double {
        let usage = resourceUsage()
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p + 0.5))]
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func uuid(_ text: String) -> UUID {
        guard let value = UUID(uuidString: text) else { fail("not a tenant id: \(text)") }
        return value
    }

    static func key(_ text: String) -> [UInt8] {
        guard let value = Hex.decode(text), value.count == Ed25519.publicKeyLength else { fail("not a public key: \(text)") }
        return value
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(1)
    }
}
