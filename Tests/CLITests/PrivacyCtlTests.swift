import Foundation
import Postgres
import TestSupport
import Testing

/// Runs `privacyctl` (built next to the test bundle) with exactly the given environment.
func privacyctl(_ arguments: [String], environment: [String: String] = [:]) throws -> Subprocess.Result {
    try Subprocess.runProduct("privacyctl", arguments, environment: environment)
}

func json(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

func temporaryDirectory() throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

@Suite("privacyctl")
struct PrivacyCtlTests {
    @Test("--help teaches the commands and exits 0")
    func help() throws {
        let run = try privacyctl(["--help"])
        #expect(run.status == 0)
        for word in ["migrate", "tenant", "servicekey", "keys", "Exit codes"] { #expect(run.stdout.contains(word)) }
    }

    @Test("privacyctl links no HTTP server: no Hummingbird in its binary (tenancy and configuration live outside Gateway)")
    func noHTTPServerLinked() throws {
        let path = Subprocess.product("privacyctl")
        let binary = try #require(FileManager.default.contents(atPath: path))
        // A Swift symbol of a module's own declarations is mangled as $s<length><module name>….
        #expect(binary.range(of: Data("$s11Hummingbird".utf8)) == nil)
        #expect(binary.range(of: Data("$s7Gateway".utf8)) == nil)
        // …while the gateway's executable does, so the check can fail.
        let gateway = try #require(
            FileManager.default.contents(
                atPath: URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("privacy-gateway").path))
        #expect(gateway.range(of: Data("$s11Hummingbird".utf8)) != nil)
        #expect(gateway.range(of: Data("$s7Gateway".utf8)) != nil)
    }

    @Test("a usage error exits 2 with a message")
    func usageError() throws {
        let unknown = try privacyctl(["frobnicate"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("frobnicate"))
        let badScope = try privacyctl(["servicekey", "create", "--tenant", UUID().uuidString, "--scope", "root"])
        #expect(badScope.status == 2)
        // --scope is an enumerated value: the error lists the valid scopes.
        #expect(badScope.stderr.contains("'root'") && badScope.stderr.contains("data:read"), "\(badScope.stderr)")
    }

    @Test("a missing, malformed or unreachable database is one clear line and exit 1")
    func badDatabase() throws {
        let missing = try privacyctl(["migrate"])
        #expect(missing.status == 1)
        #expect(missing.stderrLines.count == 1)
        #expect(missing.stderr.hasPrefix("error: DATABASE_URL is not set"))

        let malformed = try privacyctl(["migrate"], environment: ["DATABASE_URL": "postgresql://u@h:5432/db?bogus=1"])
        #expect(malformed.status == 1)
        #expect(malformed.stderrLines.count == 1)
        #expect(malformed.stderr.contains("DATABASE_URL: invalid database connection string"))
        // A password libpq cannot decode is not echoed (libpq quotes the token it refuses).
        let password = try privacyctl(["migrate"], environment: ["DATABASE_URL": "postgresql://u:s3cr%zzet@h:5432/db"])
        #expect(password.status == 1)
        #expect(password.stderr.contains("invalid database connection string") && !password.stderr.contains("s3cr"), "\(password.stderr)")

        let down = try privacyctl(["migrate"], environment: ["DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"])
        #expect(down.status == 1)
        #expect(down.stderrLines.count == 1)
        #expect(down.stderr.contains("cannot connect to nobody@127.0.0.1:1/none"))
    }

    @Test("migrate applies everything once; a second run is a no-op; status agrees")
    func migrateTwice() async throws {
        try await TestDatabase.withFreshDatabase { owner in
            let environment = ["DATABASE_URL": TestDatabase.url(owner), "PRIVACY_MIGRATIONS_DIR": TestDatabase.repositoryMigrations.path]
            let first = try privacyctl(["migrate", "--json"], environment: environment)
            #expect(first.status == 0, "\(first.stderr)")
            let applied = try #require(try json(first.stdout)["applied"] as? [String])
            #expect(applied.first == "0001_roles_and_auth.sql")
            #expect(
                applied.count
                    == (try FileManager.default.contentsOfDirectory(atPath: TestDatabase.repositoryMigrations.path).filter {
                        $0.hasSuffix(".sql")
                    }.count))
            let second = try privacyctl(["migrate", "--json"], environment: environment)
            #expect(second.status == 0)
            #expect((try json(second.stdout)["applied"] as? [String]) == [])
            let status = try privacyctl(["migrate", "status"], environment: environment)
            #expect(status.status == 0)
            #expect(status.stdout.split(separator: "\n").allSatisfy { $0.hasPrefix("applied") })
        }
    }

    @Test("a broken migration names its file and line; a changed one makes status exit 3")
    func migrationProblems() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try "CREATE TABLE a (id int);\n".write(to: directory.appendingPathComponent("0001_a.sql"), atomically: true, encoding: .utf8)
        try "CREATE TABLE b (id int);\nINSERT INTO nope VALUES (1);\n".write(
            to: directory.appendingPathComponent("0002_b.sql"), atomically: true, encoding: .utf8)
        try await TestDatabase.withFreshDatabase { owner in
            let environment = ["DATABASE_URL": TestDatabase.url(owner), "PRIVACY_MIGRATIONS_DIR": directory.path]
            let broken = try privacyctl(["migrate"], environment: environment)
            #expect(broken.status == 1)
            #expect(broken.stderrLines.count == 1)
            #expect(broken.stderr.contains("migration 0002_b.sql (line 2): relation \"nope\" does not exist [SQLSTATE 42P01]"))

            try "CREATE TABLE b (id int);\n".write(to: directory.appendingPathComponent("0002_b.sql"), atomically: true, encoding: .utf8)
            #expect(try privacyctl(["migrate"], environment: environment).status == 0)
            try "CREATE TABLE a (id bigint);\n".write(to: directory.appendingPathComponent("0001_a.sql"), atomically: true, encoding: .utf8)
            let changed = try privacyctl(["migrate"], environment: environment)
            #expect(changed.status == 1)
            #expect(changed.stderr.contains("0001_a.sql was changed after it was applied"))
            let status = try privacyctl(["migrate", "status", "--json"], environment: environment)
            #expect(status.status == 3)
            #expect(status.stdout.contains("\"changed\""))
        }
    }

    @Test("tenant and service key creation print one JSON document with the id and the key")
    func tenantAndServiceKey() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appendingPathComponent("root.key").path
        #expect(try privacyctl(["keys", "generate", "--out", keyFile]).status == 0)
        let again = try privacyctl(["keys", "generate", "--out", keyFile])
        #expect(again.status == 1)
        #expect(again.stderr.contains("already exists"))

        try await TestDatabase.withMigratedDatabase { owner in
            var environment = ["DATABASE_URL": TestDatabase.url(owner)]
            let created = try privacyctl(["tenant", "create", "--name", "acme", "--json"], environment: environment)
            #expect(created.status == 0, "\(created.stderr)")
            let tenant = try json(created.stdout)
            let tenantID = try #require(tenant["id"] as? String)
            #expect(tenant["name"] as? String == "acme")
            #expect(tenantID == tenantID.lowercased())

            let noKey = try privacyctl(["servicekey", "create", "--tenant", tenantID, "--scope", "data:read"], environment: environment)
            #expect(noKey.status == 1)
            #expect(noKey.stderr.contains("no root key"))

            environment["PRIVACY_ROOT_KEY_FILE"] = keyFile
            let key = try privacyctl(
                ["servicekey", "create", "--tenant", tenantID, "--scope", "data:read", "--scope", "secrets:read", "--json"],
                environment: environment)
            #expect(key.status == 0, "\(key.stderr)")
            let document = try json(key.stdout)
            #expect((document["key"] as? String)?.hasPrefix("pgw_") == true)
            let keyID = try #require(document["id"] as? String)
            #expect(try privacyctl(["servicekey", "revoke", keyID], environment: environment).status == 0)

            let list = try privacyctl(["tenant", "list", "--json"], environment: environment)
            #expect(list.stdout.contains("acme"))
            #expect(!list.stdout.contains("jwt_secret\":"))

            // Listing needs no root key and never shows a key or its hash.
            let second = try json(
                try privacyctl(
                    ["servicekey", "create", "--tenant", tenantID, "--scope", "audit:read", "--name", "auditor", "--json"],
                    environment: environment
                ).stdout)
            let listed = try privacyctl(
                ["servicekey", "list", "--tenant", tenantID, "--json"], environment: ["DATABASE_URL": TestDatabase.url(owner)])
            #expect(listed.status == 0, "\(listed.stderr)")
            let keys = try #require(try json(listed.stdout)["service_keys"] as? [[String: Any]])
            #expect(keys.map { $0["id"] as? String } == [second["id"] as? String, keyID])
            #expect(keys[0]["name"] as? String == "auditor" && keys[0]["scopes"] as? [String] == ["audit:read"])
            #expect(keys[0]["revoked_at"] is NSNull && !(keys[1]["revoked_at"] is NSNull))
            #expect(!listed.stdout.contains("pgw_") && !listed.stdout.contains("key_hash"))
            #expect(try privacyctl(["servicekey", "list", "--tenant", "acme"], environment: environment).status == 2)
            let human = try privacyctl(["servicekey", "list"], environment: ["DATABASE_URL": TestDatabase.url(owner)])
            #expect(human.stdout.contains("auditor") && human.stdout.contains("revoked"))
        }
    }
}

@Suite("privacyctl policy")
struct PolicyCommandTests {
    private var policiesDir: String { TestDatabase.repositoryPolicies.path }

    @Test("lint and check are clean on the repository's policies against a freshly migrated database")
    func cleanOnRepository() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let environment = ["DATABASE_URL": TestDatabase.url(owner), "PRIVACY_POLICIES_DIR": policiesDir]
            let lint = try privacyctl(["policy", "lint", "--live"], environment: environment)
            #expect(lint.status == 0, "\(lint.stdout)\(lint.stderr)")
            let check = try privacyctl(["policy", "check", "--json"], environment: environment)
            #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
            #expect((try json(check.stdout)["tables"] as? [Any])?.isEmpty == true)
        }
    }

    @Test("lint --live refuses a fixed replacement on a column of a unique index, at the entry's file:line, exit 3")
    func lintRefusesMaskingOnUniqueColumn() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for name in try FileManager.default.contentsOfDirectory(atPath: policiesDir) where name.hasSuffix(".yaml") {
            var text = try String(contentsOfFile: (policiesDir as NSString).appendingPathComponent(name), encoding: .utf8)
            if name == "ghl_opportunities.yaml" {
                text = text.replacingOccurrences(
                    of: "  erasure: delete\n",
                    with: "  erasure: anonymize\n  anonymize:\n    user_id: null\n    ghl_opportunity_id: { replace: \"erased\" }\n")
            }
            try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let lines = try String(contentsOfFile: directory.appendingPathComponent("ghl_opportunities.yaml").path, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
        let line = try #require(lines.firstIndex { $0.contains("ghl_opportunity_id: { replace") }) + 1
        try await TestDatabase.withMigratedDatabase { owner in
            let lint = try privacyctl(
                ["policy", "lint", "--live", "--policies-dir", directory.path], environment: ["DATABASE_URL": TestDatabase.url(owner)])
            #expect(lint.status == 3, "\(lint.stdout)\(lint.stderr)")
            #expect(
                lint.stdout.contains("ghl_opportunities.yaml:\(line):") && lint.stdout.contains("masking-on-unique-column"),
                "\(lint.stdout)")
        }
    }

    @Test("a live policy altered by hand makes check exit 3 and name the table")
    func driftExitsThree() async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let admin = ConnectionPool(configuration: owner)
            defer { admin.close() }
            try await admin.withConnection { connection in
                try await connection.run {
                    try $0.simple(#"ALTER POLICY "Users can view own secrets" ON public.user_secrets USING (true)"#)
                }
            }
            let check = try privacyctl(
                ["policy", "check"], environment: ["DATABASE_URL": TestDatabase.url(owner), "PRIVACY_POLICIES_DIR": policiesDir])
            #expect(check.status == 3)
            #expect(check.stdout.contains("public.user_secrets"))
        }
    }

    @Test("a malformed policy file is one line naming file, line and column, and exit 1")
    func malformedPolicyFile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        table: public.things
        tenant_column: tenant_id
        columns:
          id: uuid
          tenant_id: uuid
        policies:
          - name: broken
            command: select
            roles: [authenticated]
            using: id = now()
        """.write(to: directory.appendingPathComponent("things.yaml"), atomically: true, encoding: .utf8)
        let lint = try privacyctl(["policy", "lint", "--policies-dir", directory.path])
        #expect(lint.status == 1)
        #expect(lint.stderrLines.count == 1)
        #expect(lint.stderr.contains("things.yaml:10:"))
    }

    @Test("sql prints the RLS the files define; explain names the deciding policy")
    func sqlAndExplain() throws {
        let sql = try privacyctl(["policy", "sql", "--table", "projects", "--policies-dir", policiesDir])
        #expect(sql.status == 0)
        #expect(sql.stdout.contains(#"CREATE POLICY "tenant_isolation" ON "public"."projects" AS RESTRICTIVE"#))
        let tenant = UUID().uuidString.lowercased(), owner = UUID().uuidString.lowercased(), other = UUID().uuidString.lowercased()
        let explain = try privacyctl([
            "policy", "explain", "--policies-dir", policiesDir, "--table", "projects", "--as", other, "--command", "select",
            "--row", #"{"tenant_id": "\#(tenant)", "user_id": "\#(owner)", "is_public": false}"#, "--json",
        ])
        #expect(explain.status == 0, "\(explain.stderr)")
        #expect(explain.stdout.contains("row_hidden"))
        #expect(explain.stdout.contains("Users can view their projects"))
        let bad = try privacyctl(["policy", "explain", "--table", "projects", "--command", "drop"])
        #expect(bad.status == 2)
    }
}

@Suite("privacyctl audit")
struct AuditCommandTests {
    @Test("a live chain and its export verify; a row edited by hand makes both verifications exit 3")
    func verifyDetectsHandEdits() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let signingKey = directory.appendingPathComponent("signing.key").path
        let rootKey = directory.appendingPathComponent("root.key").path
        #expect(try privacyctl(["keys", "generate", "--out", signingKey]).status == 0)
        #expect(try privacyctl(["keys", "generate", "--out", rootKey]).status == 0)
        try await TestDatabase.withMigratedDatabase { owner in
            let environment = [
                "DATABASE_URL": TestDatabase.url(owner), "PRIVACY_SIGNING_KEY_FILE": signingKey, "PRIVACY_ROOT_KEY_FILE": rootKey,
            ]
            // Creating the tenant is itself the chain's first entry (admin actions are audited).
            let created = try privacyctl(["tenant", "create", "--name", "audited", "--json"], environment: environment)
            let tenant = try #require(try json(created.stdout)["id"] as? String)
            #expect(try privacyctl(["audit", "checkpoint", "--tenant", tenant], environment: environment).status == 0)
            #expect(
                try privacyctl(
                    ["tenant", "set-jwt", "--tenant", tenant, "--secret", String(repeating: "s", count: 40)], environment: environment
                ).status == 0)

            let clean = directory.appendingPathComponent("clean").path
            #expect(try privacyctl(["audit", "export", "--tenant", tenant, "--out", clean], environment: environment).status == 0)
            let offline = try privacyctl(["audit", "verify", clean])
            #expect(offline.status == 0, "\(offline.stdout)\(offline.stderr)")
            #expect(try privacyctl(["audit", "verify", "--live", "--tenant", tenant], environment: environment).status == 0)

            let admin = ConnectionPool(configuration: owner, options: .init(maxConnections: 1))
            defer { admin.close() }
            try await admin.withConnection { connection in
                try await connection.run { connection in
                    try connection.simple("ALTER TABLE audit_events DISABLE TRIGGER USER")
                    try connection.query(
                        #"UPDATE audit_events SET details = '{"name": "forged"}' WHERE tenant_id = $1 AND seq = 1"#,
                        [UUID(uuidString: tenant)!])
                    try connection.simple("ALTER TABLE audit_events ENABLE TRIGGER USER")
                }
            }
            let live = try privacyctl(["audit", "verify", "--live", "--tenant", tenant], environment: environment)
            #expect(live.status == 3)
            #expect(live.stdout.contains("hash_mismatch"))
            let tampered = directory.appendingPathComponent("tampered").path
            #expect(try privacyctl(["audit", "export", "--tenant", tenant, "--out", tampered], environment: environment).status == 0)
            let again = try privacyctl(["audit", "verify", tampered])
            #expect(again.status == 3)
        }
    }
}

@Suite("Audit chain across processes")
struct AuditProcessesTests {
    @Test("two processes appending to one tenant at once produce one contiguous, verifying chain")
    func twoProcesses() async throws {
        let writer = Subprocess.product("AuditBenchmark")
        try await TestDatabase.withMigratedDatabase { owner in
            let admin = ConnectionPool(configuration: owner, options: .init(maxConnections: 1))
            defer { admin.close() }
            let tenant = UUID()
            try await admin.query("INSERT INTO tenants (id, name) VALUES ($1, 'two-processes')", [tenant])
            let arguments = [TestDatabase.url(owner), "2", "8", tenant.uuidString.lowercased()]
            async let first = Task.detached { try Subprocess.run(writer, arguments, environment: ["PATH": "/usr/bin:/bin"]) }.value
            async let second = Task.detached { try Subprocess.run(writer, arguments, environment: ["PATH": "/usr/bin:/bin"]) }.value
            let (a, b) = try await (first, second)
            #expect(a.status == 0, "\(a.stderr)")
            #expect(b.status == 0, "\(b.stderr)")
            let row = try await admin.query(
                "SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM audit_events WHERE tenant_id = $1", [tenant]
            ).first!
            let n: Int = try row.decode("n"), lo: Int = try row.decode("lo"), hi: Int = try row.decode("hi")
            #expect(n > 10)
            #expect(lo == 1 && hi == n, "seq must be contiguous")
            let verify = try privacyctl(
                ["audit", "verify", "--live", "--tenant", tenant.uuidString.lowercased()],
                environment: ["DATABASE_URL": TestDatabase.url(owner)])
            #expect(verify.status == 0, "\(verify.stdout)")
        }
    }
}

@Suite("privacyctl keys")
struct KeyCommandTests {
    @Test("keys rotate rewraps a tenant's keys and reports it; a wrong root key is refused by privacyctl and by the gateway at start")
    func rotateAndWrongRoot() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let rootKey = directory.appendingPathComponent("root.key").path
        let otherKey = directory.appendingPathComponent("other.key").path
        let newRoot = directory.appendingPathComponent("root-2.key").path
        for path in [rootKey, otherKey, newRoot] { #expect(try privacyctl(["keys", "generate", "--out", path]).status == 0) }
        try await TestDatabase.withMigratedDatabase { owner in
            let environment = ["DATABASE_URL": TestDatabase.url(owner), "PRIVACY_ROOT_KEY_FILE": rootKey]
            let created = try privacyctl(
                ["tenant", "create", "--name", "acme", "--jwt-secret", String(repeating: "j", count: 40), "--json"],
                environment: environment)
            #expect(created.status == 0, "\(created.stderr)")
            let tenant = try #require(try json(created.stdout)["id"] as? String)

            let rotated = try privacyctl(["keys", "rotate", "--tenant", tenant, "--json"], environment: environment)
            #expect(rotated.status == 0, "\(rotated.stderr)")
            let reports = try #require(try JSONSerialization.jsonObject(with: Data(rotated.stdout.utf8)) as? [[String: Any]])
            #expect(reports.first?["to_version"] as? Int == 2)
            #expect(reports.first?["retired_versions"] as? [Int] == [1])
            #expect(reports.first?["rewrapped_tenant_secrets"] as? Int == 1)

            var wrong = environment
            wrong["PRIVACY_ROOT_KEY_FILE"] = otherKey
            let refused = try privacyctl(["keys", "rotate", "--tenant", tenant], environment: wrong)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("does not match"))
            var serve = wrong
            serve["GATEWAY_DATABASE_URL"] = TestDatabase.url(TestDatabase.gateway(owner))
            serve["PORT"] = "1"
            let gateway = try Subprocess.runProduct("privacy-gateway", ["serve"], environment: serve)
            #expect(gateway.status != 0)
            #expect(gateway.stderr.contains("does not match"))

            let usage = try privacyctl(["keys", "rotate", "--root"], environment: environment)
            #expect(usage.status == 2)
            let root = try privacyctl(["keys", "rotate", "--root", "--new-root-key-file", newRoot, "--json"], environment: environment)
            #expect(root.status == 0, "\(root.stderr)")
            #expect(try json(root.stdout)["root_version"] as? Int == 2)
            let old = try privacyctl(["keys", "rotate", "--tenant", tenant], environment: environment)
            #expect(old.status == 1)
            #expect(old.stderr.contains("retired"))
            var current = environment
            current["PRIVACY_ROOT_KEY_FILE"] = newRoot
            #expect(try privacyctl(["keys", "rotate", "--tenant", tenant], environment: current).status == 0)
        }
    }

    @Test("the gateway refuses to start as a superuser, a BYPASSRLS role or a table owner, naming the fix")
    func refusesRolesThatEscapeRLS() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let rootKey = directory.appendingPathComponent("root.key").path
        #expect(try privacyctl(["keys", "generate", "--out", rootKey]).status == 0)
        try await TestDatabase.withMigratedDatabase { owner in
            let admin = ConnectionPool(configuration: owner, options: .init(maxConnections: 1))
            defer { admin.close() }
            // The test cluster's owner is a superuser (and owns every table).
            var serve = [
                "DATABASE_URL": TestDatabase.url(owner), "GATEWAY_DATABASE_URL": TestDatabase.url(owner), "PRIVACY_ROOT_KEY_FILE": rootKey,
                "PORT": "1",
            ]
            let asOwner = try Subprocess.runProduct("privacy-gateway", ["serve"], environment: serve)
            #expect(asOwner.status != 0)
            #expect(asOwner.stderr.contains("refusing to serve as"), "\(asOwner.stderr)")
            #expect(asOwner.stderr.contains("GATEWAY_DATABASE_URL"))

            let name = "escaper_\(UInt32.random(in: 0...UInt32.max))"
            try await admin.query("CREATE ROLE \(name) LOGIN BYPASSRLS")
            serve["GATEWAY_DATABASE_URL"] = TestDatabase.url(owner.with(user: name))
            let asBypass = try Subprocess.runProduct("privacy-gateway", ["serve"], environment: serve)
            try await admin.query("DROP ROLE \(name)")
            #expect(asBypass.status != 0)
            #expect(asBypass.stderr.contains("BYPASSRLS"), "\(asBypass.stderr)")
        }
    }
}
