import Foundation
import Postgres
import TestSupport
import Testing

/// `privacyctl export|delete|requests|retention`, including a process killed mid-run.
@Suite("privacyctl data-subject requests")
struct PrivacyCommandTests {
    struct Setup {
        let environment: [String: String]
        let pool: ConnectionPool
        let tenant: UUID
        let user: UUID
        let other: UUID
        let directory: URL
    }

    /// A tenant with a subject owning `rows` projects (each with a sitemap) and chat messages, and a neighbour.
    static func with(rows: Int, _ body: (Setup) async throws -> Void) async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let pool = ConnectionPool(configuration: owner, options: .init(maxConnections: 2))
            defer { pool.close() }
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let signing = directory.appendingPathComponent("signing.key").path
            #expect(try privacyctl(["keys", "generate", "--out", signing]).status == 0)
            let root = directory.appendingPathComponent("root.key").path
            #expect(try privacyctl(["keys", "generate", "--out", root]).status == 0)
            let environment = [
                "DATABASE_URL": TestDatabase.url(owner), "PRIVACY_SIGNING_KEY_FILE": signing, "PRIVACY_ROOT_KEY_FILE": root,
                "PRIVACY_POLICIES_DIR": TestDatabase.repositoryPolicies.path,
            ]
            // A real tenant (its key under the root key): the commands file requests with proofs keyed by it.
            let created = try privacyctl(["tenant", "create", "--name", "acme", "--json"], environment: environment)
            #expect(created.status == 0, "\(created.stderr)")
            let tenantText = try #require(try json(created.stdout)["id"] as? String)
            let tenant = try #require(UUID(uuidString: tenantText))
            let user = UUID(), other = UUID()
            for subject in [user, other] {
                try await pool.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [subject, tenant])
                try await pool.query(
                    "INSERT INTO public.projects (tenant_id, user_id, name, type) SELECT $1, $2, 'p' || g, 'website' FROM generate_series(1, $3::int) g",
                    [tenant, subject, rows])
                try await pool.query(
                    "INSERT INTO public.sitemaps (tenant_id, project_id, title) SELECT $1, id, 'm' FROM public.projects WHERE tenant_id = $1 AND user_id = $2",
                    [tenant, subject])
                try await pool.query("INSERT INTO public.chat_sessions (tenant_id, user_id) VALUES ($1, $2)", [tenant, subject])
                try await pool.query(
                    "INSERT INTO public.chat_messages (tenant_id, session_id, user_id, role, content) SELECT $1, s.id, $2, 'user', 'hello ' || g FROM public.chat_sessions s, generate_series(1, $3::int) g WHERE s.tenant_id = $1 AND s.user_id = $2",
                    [tenant, subject, rows])
            }
            try await body(Setup(environment: environment, pool: pool, tenant: tenant, user: user, other: other, directory: directory))
        }
    }

    static func count(_ pool: ConnectionPool, _ sql: String, _ binds: [any PostgresEncodable]) async throws -> Int {
        try await pool.query(sql, binds).first!.decode("n", as: Int.self)
    }

    @Test(
        "processor add|list and an erasure that waits for it: delete says requires_input, then prints the certificate listing it, which verifies offline and fails when its processors are edited"
    )
    func processors() async throws {
        try await Self.with(rows: 2) { setup in
            let tenant = setup.tenant.uuidString
            // Refused: http to another host, and a short secret.
            let secretFile = setup.directory.appendingPathComponent("short.secret")
            try "short".write(to: secretFile, atomically: true, encoding: .utf8)
            for extra in [
                ["--webhook-url", "http://crm.example/pgw"],
                ["--webhook-url", "https://crm.example/pgw", "--secret-file", secretFile.path],
            ] {
                let refused = try privacyctl(
                    ["processor", "add", "--tenant", tenant, "--name", "crm", "--data-kind", "crm contacts"] + extra,
                    environment: setup.environment)
                #expect(refused.status != 0, "\(refused.stdout)")
            }
            let added = try privacyctl(
                [
                    "processor", "add", "--tenant", tenant, "--name", "crm", "--data-kind", "crm contacts",
                    "--webhook-url", "https://crm.example/pgw", "--timeout-seconds", "3600", "--json",
                ], environment: setup.environment)
            #expect(added.status == 0, "\(added.stderr)")
            let secret = try #require(try json(added.stdout)["secret"] as? String)
            let listed = try privacyctl(["processor", "list", "--tenant", tenant, "--json"], environment: setup.environment)
            #expect(listed.status == 0 && listed.stdout.contains("crm contacts") && !listed.stdout.contains(secret))

            let arguments = ["delete", "--tenant", tenant, "--user", setup.user.uuidString, "--yes", "--json"]
            let waiting = try privacyctl(arguments, environment: setup.environment)
            #expect(waiting.status == 0, "\(waiting.stderr)")
            #expect(try json(waiting.stdout)["status"] as? String == "requires_input")
            #expect(
                try await Self.count(
                    setup.pool, "SELECT count(*) AS n FROM public.projects WHERE tenant_id = $1 AND user_id = $2",
                    [setup.tenant, setup.user]) == 0)
            #expect(try json(try privacyctl(arguments, environment: setup.environment).stdout)["status"] as? String == "requires_input")
            // Nobody answers (no gateway runs here): past the deadline the erasure is certified partially completed.
            try await setup.pool.query(
                "UPDATE privacy.processor_calls SET deadline_at = now() - interval '1 second' WHERE tenant_id = $1", [setup.tenant])
            let done = try privacyctl(arguments, environment: setup.environment)
            #expect(done.status == 0, "\(done.stderr)")
            let certificate = try json(done.stdout)
            #expect(certificate["outcome"] as? String == "partially_completed")
            let processors = try #require(certificate["processors"] as? [[String: Any]])
            #expect(
                processors.count == 1 && processors[0]["name"] as? String == "crm" && processors[0]["outcome"] as? String == "timed_out")
            let file = setup.directory.appendingPathComponent("certificate.json")
            try done.stdout.write(to: file, atomically: true, encoding: .utf8)
            let key = try #require(certificate["public_key"] as? String)
            let verified = try privacyctl(["certificate", "verify", file.path, "--audit-public-key", key])
            #expect(verified.status == 0 && verified.stdout.hasPrefix("OK: deletion certificate"), "\(verified.stdout)\(verified.stderr)")
            try done.stdout.replacingOccurrences(of: "\"timed_out\"", with: "\"confirmed\"").write(
                to: file, atomically: true, encoding: .utf8)
            let edited = try privacyctl(["certificate", "verify", file.path, "--audit-public-key", key])
            #expect(edited.status == 3 && edited.stdout.contains("signature does not verify"), "\(edited.stdout)")
        }
    }

    @Test("an export with an export-required processor says requires_input (exit 0), then writes the archive listing its answer")
    func exportWaitsForProcessors() async throws {
        try await Self.with(rows: 2) { setup in
            let tenant = setup.tenant.uuidString
            let added = try privacyctl(
                [
                    "processor", "add", "--tenant", tenant, "--name", "crm", "--data-kind", "crm contacts",
                    "--webhook-url", "https://crm.example/pgw", "--export-required", "--json",
                ], environment: setup.environment)
            #expect(added.status == 0, "\(added.stderr)")
            let out = setup.directory.appendingPathComponent("subject.tar").path
            let arguments = ["export", "--tenant", tenant, "--user", setup.user.uuidString, "--out", out, "--json"]
            for _ in 0..<2 {
                let waiting = try privacyctl(arguments, environment: setup.environment)
                #expect(waiting.status == 0, "\(waiting.stderr)")
                #expect(try json(waiting.stdout)["status"] as? String == "requires_input", "\(waiting.stdout)")
                #expect(!FileManager.default.fileExists(atPath: out))
            }
            // Nobody answers (no gateway runs here): past the deadline the export is written, listing the processor.
            try await setup.pool.query(
                "UPDATE privacy.processor_calls SET deadline_at = now() - interval '1 second' WHERE tenant_id = $1", [setup.tenant])
            let done = try privacyctl(arguments, environment: setup.environment)
            #expect(done.status == 0, "\(done.stderr)")
            let manifest = try #require(try json(done.stdout)["manifest"] as? [String: Any])
            let processors = try #require(manifest["processors"] as? [[String: Any]], "\(manifest.keys)")
            #expect(processors.count == 1 && processors[0]["outcome"] as? String == "timed_out", "\(processors)")
            #expect(FileManager.default.fileExists(atPath: out))
        }
    }

    @Test(
        "report counts a certificate as signed only when it verifies: the signing key's public half, --certificate-public-key, a flipped byte"
    )
    func reportVerifiesCertificateSignatures() async throws {
        try await Self.with(rows: 2) { setup in
            let deleted = try privacyctl(
                ["delete", "--tenant", setup.tenant.uuidString, "--user", setup.user.uuidString, "--yes", "--json"],
                environment: setup.environment)
            #expect(deleted.status == 0, "\(deleted.stderr)")
            let certificate = try json(deleted.stdout)
            let requestID = try #require(certificate["request_id"] as? String)
            func erasure(_ extra: [String]) throws -> [String: Any] {
                let report = try privacyctl(
                    ["report", "--tenant", setup.tenant.uuidString, "--format", "json"] + extra, environment: setup.environment)
                #expect(report.status == 0, "\(report.stderr)")
                let list = try #require((try json(report.stdout)["erasures"] as? [String: Any])?["certificates"] as? [[String: Any]])
                return try #require(list.first { $0["request_id"] as? String == requestID })
            }
            // Default: the public half of PRIVACY_SIGNING_KEY_FILE.
            let byDefault = try erasure([])
            #expect(byDefault["signed"] as? Bool == true && byDefault["signature"] as? String == "valid")
            // The auditor's own copy of the public key.
            let auditorKey = setup.directory.appendingPathComponent("signing.pub")
            try (try #require(certificate["public_key"] as? String) + "\n").write(to: auditorKey, atomically: true, encoding: .utf8)
            #expect(try erasure(["--certificate-public-key", auditorKey.path])["signature"] as? String == "valid")
            let otherKey = setup.directory.appendingPathComponent("other.pub")
            try String(repeating: "ab", count: 32).write(to: otherKey, atomically: true, encoding: .utf8)
            let other = try erasure(["--certificate-public-key", otherKey.path])
            #expect(other["signed"] as? Bool == false && other["signature"] as? String == "invalid")
            // One byte of the stored signature flipped.
            try await setup.pool.query(
                "UPDATE public.data_deletion_requests SET certificate_signature = set_byte(certificate_signature, 0, (get_byte(certificate_signature, 0) + 1) % 256) WHERE id = $1::uuid",
                [requestID])
            let flipped = try erasure([])
            #expect(flipped["signed"] as? Bool == false && flipped["signature"] as? String == "invalid")
            // A key file that holds no public key is a clear error.
            let badKey = setup.directory.appendingPathComponent("bad.pub")
            try "not a key".write(to: badKey, atomically: true, encoding: .utf8)
            let bad = try privacyctl(
                ["report", "--tenant", setup.tenant.uuidString, "--format", "json", "--certificate-public-key", badKey.path],
                environment: setup.environment)
            #expect(bad.status != 0 && bad.stderr.contains("64 characters"))
        }
    }

    @Test("delete killed with SIGKILL mid-run finishes on the next run with the same end state and counts as the plan")
    func deleteKilledMidRun() async throws {
        try await Self.with(rows: 400) { setup in
            let ids = ["--tenant", setup.tenant.uuidString, "--user", setup.user.uuidString]
            let plan = try privacyctl(["delete"] + ids + ["--dry-run", "--json"], environment: setup.environment)
            #expect(plan.status == 0, "\(plan.stderr)")
            let tables = try #require(try json(plan.stdout)["tables"] as? [[String: Any]])
            var planned: [String: Int] = [:]
            for table in tables { planned[table["table"] as! String] = table["rows"] as? Int }
            #expect(planned["public.projects"] == 400 && planned["public.sitemaps"] == 400 && planned["public.chat_messages"] == 400)
            let otherBefore = try await Self.count(
                setup.pool, "SELECT count(*) AS n FROM public.projects WHERE user_id = $1", [setup.other])

            // Without --yes a script is refused.
            let refused = try privacyctl(["delete"] + ids, environment: setup.environment)
            #expect(refused.status == 2)

            let executable = Subprocess.product("privacyctl")
            // One of the subject's rows in the last of the three tables the eraser visits stays locked
            // until the kill: the erasure cannot finish before it however slow the machine is, and
            // has committed the earlier tables' batches by the time it waits.
            let lockOrder = tables.map { $0["table"] as! String }
            let lockSQL = [
                "public.projects": "SELECT 1 FROM public.projects WHERE user_id = $1 LIMIT 1 FOR UPDATE",
                "public.sitemaps":
                    "SELECT 1 FROM public.sitemaps s JOIN public.projects p ON p.id = s.project_id WHERE p.user_id = $1 LIMIT 1 FOR UPDATE OF s",
                "public.chat_messages": "SELECT 1 FROM public.chat_messages WHERE user_id = $1 LIMIT 1 FOR UPDATE",
            ]
            let lockedTable = try #require(lockOrder.last { lockSQL[$0] != nil })
            let user = setup.user
            let (killedMidRun, running) = try await setup.pool.withConnection { holder in
                try await holder.query("BEGIN")
                #expect(try await holder.query(lockSQL[lockedTable]!, [user]).rows.count == 1)
                let running = try Subprocess.start(
                    executable, ["delete"] + ids + ["--yes", "--json", "--batch-size", "1"],
                    environment: setup.environment.merging(["PATH": "/usr/bin:/bin"]) { a, _ in a })
                // Kill it once some batches have committed (it cannot finish meanwhile: see above).
                var killedMidRun = false
                let deadline = ContinuousClock.now + .seconds(300)
                while ContinuousClock.now < deadline {
                    let done = try await Self.count(
                        setup.pool,
                        "SELECT coalesce((SELECT sum(value::bigint) FROM public.data_deletion_requests, jsonb_each_text(result -> 'tables') WHERE tenant_id = $1 AND user_id = $2 AND status = 'processing'), 0)::int AS n",
                        [setup.tenant, setup.user])
                    if done >= 50 {
                        running.kill(SIGKILL)
                        killedMidRun = true
                        break
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await holder.query("ROLLBACK")
                return (killedMidRun, running)
            }
            let killed = running.wait()
            #expect(killedMidRun, "the erasure ended before it could be killed: \(killed.stderr)")
            #expect(killed.status == 128 + SIGKILL)
            let status = try await setup.pool.query(
                "SELECT status FROM public.data_deletion_requests WHERE tenant_id = $1 AND user_id = $2 AND status <> 'canceled'",
                [setup.tenant, setup.user]
            )
            .first!.decode("status", as: String.self)
            #expect(status == "processing")
            let partly =
                try await Self.count(setup.pool, "SELECT count(*) AS n FROM public.chat_messages WHERE user_id = $1", [setup.user])
                + (try await Self.count(
                    setup.pool,
                    "SELECT count(*) AS n FROM public.sitemaps s JOIN public.projects p ON p.id = s.project_id WHERE p.user_id = $1",
                    [setup.user]))
            #expect(partly < 800)

            let resumed = try privacyctl(["delete"] + ids + ["--yes", "--json"], environment: setup.environment)
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let certificate = try json(resumed.stdout)
            let verification = try #require(certificate["verification"] as? [String: Any])
            #expect(verification["passed"] as? Bool == true)
            for entry in try #require(certificate["tables"] as? [[String: Any]]) where entry["strategy"] as? String != "retain" {
                let table = entry["table"] as! String
                #expect(entry["rows"] as? Int == planned[table], "\(table)")
            }
            #expect(try await Self.count(setup.pool, "SELECT count(*) AS n FROM public.projects WHERE user_id = $1", [setup.user]) == 0)
            #expect(
                try await Self.count(setup.pool, "SELECT count(*) AS n FROM public.projects WHERE user_id = $1", [setup.other])
                    == otherBefore)
            // One request, completed; running delete again prints the same certificate.
            #expect(
                try await Self.count(setup.pool, "SELECT count(*) AS n FROM public.data_deletion_requests WHERE user_id = $1", [setup.user])
                    == 1)
            let again = try privacyctl(["delete"] + ids + ["--yes", "--json"], environment: setup.environment)
            #expect(again.status == 0)
            #expect(try json(again.stdout)["signature"] as? String == certificate["signature"] as? String)
        }
    }

    @Test("export killed with SIGKILL mid-run finishes on the next run with every row; requests list and retention run answer in JSON")
    func exportKilledMidRun() async throws {
        try await Self.with(rows: 60_000) { setup in
            let out = setup.directory.appendingPathComponent("subject.tar").path
            let ids = ["--tenant", setup.tenant.uuidString, "--user", setup.user.uuidString]
            let executable = Subprocess.product("privacyctl")
            let running = try Subprocess.start(
                executable, ["export"] + ids + ["--out", out, "--json"],
                environment: setup.environment.merging(["PATH": "/usr/bin:/bin"]) { a, _ in a })
            // Polled until it exits, not for a fixed number of rounds: under load the start alone
            // can outlast one.
            var killedMidRun = false
            while !running.hasExited {
                if FileManager.default.fileExists(atPath: out + ".partial") {
                    running.kill(SIGKILL)
                    killedMidRun = true
                    break
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            let killed = running.wait()
            #expect(killedMidRun, "the export ended before it could be killed: \(killed.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
            let status = try await setup.pool.query(
                "SELECT status FROM public.data_export_requests WHERE tenant_id = $1 AND user_id = $2", [setup.tenant, setup.user]
            ).first!.decode("status", as: String.self)
            #expect(status == "processing")

            let resumed = try privacyctl(["export"] + ids + ["--out", out, "--json"], environment: setup.environment)
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let manifest = try #require(try json(resumed.stdout)["manifest"] as? [String: Any])
            let files = try #require(manifest["files"] as? [[String: Any]])
            let projects = try #require(files.first { $0["name"] as? String == "public.projects.csv" })
            #expect(projects["rows"] as? Int == 60_000)
            #expect(FileManager.default.fileExists(atPath: out))
            #expect(
                try await Self.count(setup.pool, "SELECT count(*) AS n FROM public.data_export_requests WHERE user_id = $1", [setup.user])
                    == 1)

            let list = try privacyctl(["requests", "list", "--json"], environment: setup.environment)
            #expect(list.status == 0)
            let requests = try #require(try json(list.stdout)["requests"] as? [[String: Any]])
            #expect(requests.count == 1)
            #expect(requests.first?["status"] as? String == "completed")
            let overdue = try privacyctl(["requests", "list", "--overdue", "--json"], environment: setup.environment)
            #expect((try json(overdue.stdout)["requests"] as? [[String: Any]])?.isEmpty == true)
            let sweep = try privacyctl(["retention", "run", "--json"], environment: setup.environment)
            #expect(sweep.status == 0, "\(sweep.stderr)")
            #expect((try json(sweep.stdout)["sweeps"] as? [[String: Any]])?.isEmpty == true)
        }
    }

    @Test("unknown subjects and bad ids are clear errors")
    func badInput() async throws {
        try await Self.with(rows: 1) { setup in
            let unknown = try privacyctl(
                ["export", "--tenant", setup.tenant.uuidString, "--user", UUID().uuidString, "--out", "/tmp/x.tar"],
                environment: setup.environment)
            #expect(unknown.status == 1)
            #expect(unknown.stderr.contains("no subject"))
            let bad = try privacyctl(
                ["delete", "--tenant", "nope", "--user", setup.user.uuidString, "--dry-run"], environment: setup.environment)
            #expect(bad.status == 2)
        }
    }

    @Test("an export with --passphrase-file is encrypted and export-decrypt opens it with the passphrase only")
    func encryptedExport() async throws {
        try await Self.with(rows: 3) { setup in
            let passphrase = setup.directory.appendingPathComponent("pass.txt")
            try "a long passphrase\n".write(to: passphrase, atomically: true, encoding: .utf8)
            let wrong = setup.directory.appendingPathComponent("wrong.txt")
            try "another\n".write(to: wrong, atomically: true, encoding: .utf8)
            let encrypted = setup.directory.appendingPathComponent("x.tar.enc").path
            let run = try privacyctl(
                [
                    "export", "--tenant", setup.tenant.uuidString, "--user", setup.user.uuidString, "--out", encrypted,
                    "--passphrase-file", passphrase.path, "--json",
                ], environment: setup.environment)
            #expect(run.status == 0, "\(run.stderr)")
            let plain = setup.directory.appendingPathComponent("x.tar").path
            let refused = try privacyctl(["export-decrypt", "--in", encrypted, "--out", plain, "--passphrase-file", wrong.path])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("wrong passphrase"))
            let opened = try privacyctl(["export-decrypt", "--in", encrypted, "--out", plain, "--passphrase-file", passphrase.path])
            #expect(opened.status == 0, "\(opened.stderr)")
            let tar = try String(decoding: Data(contentsOf: URL(fileURLWithPath: plain)), as: UTF8.self)
            #expect(tar.contains("manifest.json") && tar.contains("public.projects.csv"))
        }
    }
}
