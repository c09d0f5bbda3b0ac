import Foundation
import Postgres
import TestSupport
import Testing

/// `privacyctl certificate verify`, and a `delete` killed between the erasure's commit and the
/// attachment of its audit proof.
extension PrivacyCommandTests {
    @Test(
        "delete killed after the erasure committed but before its audit proof was attached: the rerun attaches it, and the certificate verifies offline"
    )
    func deleteKilledBeforeProof() async throws {
        try await Self.with(rows: 2) { setup in
            let ids = ["--tenant", setup.tenant.uuidString, "--user", setup.user.uuidString]
            let executable = Subprocess.product("privacyctl")
            // The attachment starts by reading the checkpoints; the erasure never touches them. Holding
            // the table exclusively stops the process exactly between the two, however slow the machine.
            let (stopped, running) = try await setup.pool.withConnection { holder in
                try await holder.query("BEGIN")
                try await holder.query("LOCK TABLE public.audit_checkpoints IN ACCESS EXCLUSIVE MODE")
                let running = try Subprocess.start(
                    executable, ["delete"] + ids + ["--yes", "--json"],
                    environment: setup.environment.merging(["PATH": "/usr/bin:/bin"]) { a, _ in a })
                var stopped = false
                let deadline = ContinuousClock.now + .seconds(300)
                while ContinuousClock.now < deadline {
                    let completed = try await Self.count(
                        setup.pool,
                        "SELECT count(*)::int AS n FROM public.data_deletion_requests WHERE tenant_id = $1 AND user_id = $2 AND status = 'completed' AND certificate IS NOT NULL",
                        [setup.tenant, setup.user])
                    let waiting = try await Self.count(
                        setup.pool,
                        // pg_locks is the cluster's, and every test database has the same table oids.
                        """
                        SELECT count(*)::int AS n FROM pg_locks
                        WHERE database = (SELECT oid FROM pg_database WHERE datname = current_database())
                          AND relation = 'public.audit_checkpoints'::regclass AND NOT granted
                        """, [])
                    if completed == 1 && waiting > 0 {
                        running.kill(SIGKILL)
                        stopped = true
                        break
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await holder.query("ROLLBACK")
                return (stopped, running)
            }
            let killed = running.wait()
            #expect(stopped, "the process did not stop between the erasure and the proof: \(killed.stderr)")
            #expect(killed.status == 128 + SIGKILL)
            let left = try await setup.pool.query(
                "SELECT certificate->'audit_proof' IS NULL AS missing FROM public.data_deletion_requests WHERE tenant_id = $1 AND user_id = $2 AND status = 'completed'",
                [setup.tenant, setup.user]
            ).first!.decode("missing", as: Bool.self)
            #expect(left)

            let resumed = try privacyctl(["delete"] + ids + ["--yes", "--json"], environment: setup.environment)
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let certificate = try json(resumed.stdout)
            #expect(certificate["audit_proof"] is [String: Any])
            let again = try privacyctl(["delete"] + ids + ["--yes", "--json"], environment: setup.environment)
            #expect(again.status == 0 && again.stdout == resumed.stdout)

            // Offline: the file and the public key, nothing else (no database in the environment).
            let file = setup.directory.appendingPathComponent("certificate.json")
            try resumed.stdout.write(to: file, atomically: true, encoding: .utf8)
            let key = try #require(certificate["public_key"] as? String)
            let verified = try privacyctl(["certificate", "verify", file.path, "--audit-public-key", key])
            #expect(verified.status == 0 && verified.stdout.hasPrefix("OK: deletion certificate"), "\(verified.stdout)\(verified.stderr)")
            let wrongKey = try privacyctl(["certificate", "verify", file.path, "--audit-public-key", String(repeating: "ab", count: 32)])
            #expect(wrongKey.status == 3 && wrongKey.stdout.contains("signature does not verify"))
            // One character of the proven entry's prev_hash changed in the file (it appears nowhere else).
            let previous = try #require(
                ((certificate["audit_proof"] as? [String: Any])?["entry"] as? [String: Any])?["prev_hash"] as? String)
            #expect(resumed.stdout.components(separatedBy: previous).count == 2)
            let changed = String(previous.dropLast()) + (previous.hasSuffix("0") ? "1" : "0")
            try resumed.stdout.replacingOccurrences(of: previous, with: changed).write(to: file, atomically: true, encoding: .utf8)
            let tampered = try privacyctl(["certificate", "verify", file.path, "--audit-public-key", key, "--json"])
            #expect(tampered.status == 3)
            #expect((try json(tampered.stdout)["message"] as? String)?.contains("does not match its hash") == true, "\(tampered.stdout)")
            let usage = try privacyctl(["certificate", "verify", file.path, "--audit-public-key", "nope"])
            #expect(usage.status == 2)
        }
    }
}

extension PrivacyCommandTests {
    @Test("an export's audit_trail.proofs.json verifies with audit verify-proof and the public key only; an edited entry exits 3")
    func exportProofsVerify() async throws {
        try await Self.with(rows: 2) { setup in
            let out = setup.directory.appendingPathComponent("subject.tar").path
            let exported = try privacyctl(
                ["export", "--tenant", setup.tenant.uuidString, "--user", setup.user.uuidString, "--out", out, "--json"],
                environment: setup.environment)
            #expect(exported.status == 0, "\(exported.stderr)")
            let extracted = setup.directory.appendingPathComponent("x")
            try FileManager.default.createDirectory(at: extracted, withIntermediateDirectories: true)
            let tar = try Subprocess.start(
                "/usr/bin/env", ["tar", "-xf", out, "-C", extracted.path, "audit_trail.proofs.json"],
                environment: ["PATH": "/usr/bin:/bin"]
            ).wait()
            #expect(tar.status == 0, "\(tar.stderr)")
            let file = extracted.appendingPathComponent("audit_trail.proofs.json")
            // The auditor's copy of the public key: what the checkpoint listing prints.
            let listed = try privacyctl(
                ["audit", "checkpoint", "--tenant", setup.tenant.uuidString, "--json"], environment: setup.environment)
            #expect(listed.status == 0, "\(listed.stderr)")
            let summaries = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
            let key = try #require(summaries.first?["public_key"] as? String)

            let verified = try privacyctl(["audit", "verify-proof", file.path, "--trusted-key", key])
            #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
            #expect(
                verified.stdout.hasPrefix("OK: all ")
                    && verified.stdout.contains("proven entries of tenant \(setup.tenant.uuidString.lowercased())"))
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(text.contains("privacy.export_requested"))
            try text.replacingOccurrences(of: "privacy.export_requested", with: "privacy.export_forgotten").write(
                to: file, atomically: true, encoding: .utf8)
            let tampered = try privacyctl(["audit", "verify-proof", file.path, "--trusted-key", key])
            #expect(tampered.status == 3 && tampered.stdout.contains("its content does not match its hash"), "\(tampered.stdout)")
        }
    }
}

@Suite("privacyctl: offline verification's refusals")
struct OfflineVerificationTests {
    /// Both commands print their verdict through one `PinnedKeyFlags.verifyFile`; its unhappy
    /// paths, without a database.
    @Test(
        "certificate verify and audit verify-proof: without a pinned key exit 2 (nothing verified), an unreadable file exits 1, a file that is not one exits 3 with FAILED or {valid: false}"
    )
    func refusals() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let other = directory.appendingPathComponent("other.json")
        try #"{"hello": 1}"#.write(to: other, atomically: true, encoding: .utf8)
        let absent = directory.appendingPathComponent("absent.json").path
        let key = String(repeating: "ab", count: 32)
        for (command, flag) in [(["certificate", "verify"], "--audit-public-key"), (["audit", "verify-proof"], "--trusted-key")] {
            let unpinned = try privacyctl(command + [other.path])
            #expect(unpinned.status == 2 && unpinned.stderr.contains("pin the"), "\(command): \(unpinned.status) \(unpinned.stderr)")
            #expect(unpinned.stdout.isEmpty, "\(command): \(unpinned.stdout)")
            let unreadable = try privacyctl(command + [absent, flag, key])
            #expect(unreadable.status == 1, "\(command): \(unreadable.status) \(unreadable.stdout)\(unreadable.stderr)")
            #expect(!unreadable.stdout.contains("OK"), "\(command): \(unreadable.stdout)")
            let text = try privacyctl(command + [other.path, flag, key])
            #expect(text.status == 3 && text.stdout.hasPrefix("FAILED: "), "\(command): \(text.status) \(text.stdout)\(text.stderr)")
            let document = try privacyctl(command + [other.path, flag, key, "--json"])
            #expect(document.status == 3, "\(command): \(document.status) \(document.stderr)")
            let verdict = try json(document.stdout)
            #expect(
                verdict["valid"] as? Bool == false && !((verdict["message"] as? String) ?? "").isEmpty, "\(command): \(document.stdout)")
        }
    }
}
