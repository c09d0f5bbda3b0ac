import Audit
import Foundation
import Postgres
import Sodium
import TestSupport
import Testing

/// Each kind of tampering is detected and named, both by `verify --live` (the database) and by
/// offline verification of a fresh export.
@Suite("Tampering is detected")
struct TamperTests {
    /// 20 entries, a checkpoint at 10, then the given tampering; returns (live, offline) reports.
    private func tampered(
        checkpointAt: Int = 10, total: Int = 20, _ tamper: (AuditFixture) async throws -> Void
    ) async throws -> (VerificationReport, VerificationReport) {
        var reports: (VerificationReport, VerificationReport)?
        try await AuditFixture.with { fixture in
            try await fixture.appendSequentially(checkpointAt)
            _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            try await fixture.appendSequentially(total - checkpointAt)
            #expect(try await fixture.verifyLive().isValid)
            try await tamper(fixture)
            reports = (try await fixture.verifyLive(), try await fixture.exportAndVerify())
        }
        return reports!
    }

    @Test("changing a row's details: hash mismatch at that seq")
    func changedDetails() async throws {
        let (live, offline) = try await tampered { fixture in
            try await fixture.tamper(
                "UPDATE public.audit_events SET details = '{\"n\": 999}' WHERE tenant_id = $1 AND seq = 5", [fixture.tenant])
        }
        for report in [live, offline] {
            #expect(!report.isValid)
            #expect(report.has(.hashMismatch, at: 5), "\(report.summary)")
            // A checkpoint later in the chain still verifies its own head.
            #expect(!report.has(.checkpointMismatch))
        }
    }

    @Test("changing a row and recomputing its hash: the next link breaks and the checkpoint no longer matches")
    func rehashedRow() async throws {
        let (live, _) = try await tampered { fixture in
            // A forger who knows the encoding can fix the row's own hash, but not the chain after it.
            try await fixture.tamper(
                "UPDATE public.audit_events SET hash = sha256(hash) WHERE tenant_id = $1 AND seq = 5", [fixture.tenant])
        }
        #expect(live.has(.hashMismatch, at: 5))
        #expect(live.has(.brokenLink, at: 6), "\(live.summary)")
    }

    @Test("deleting a row: gap and broken link after it")
    func deletedRow() async throws {
        let (live, offline) = try await tampered { fixture in
            try await fixture.tamper("DELETE FROM public.audit_events WHERE tenant_id = $1 AND seq = 7", [fixture.tenant])
        }
        for report in [live, offline] {
            #expect(report.has(.gap, at: 8), "\(report.summary)")
            #expect(report.has(.brokenLink, at: 8))
        }
    }

    @Test("swapping two rows: hash mismatches and broken links at both")
    func swappedRows() async throws {
        let (live, offline) = try await tampered { fixture in
            try await fixture.tamper(
                """
                UPDATE public.audit_events a
                SET at = b.at, actor = b.actor, action = b.action, target = b.target, outcome = b.outcome,
                    request_id = b.request_id, ip = b.ip, user_agent = b.user_agent, details = b.details,
                    prev_hash = b.prev_hash, hash = b.hash
                FROM public.audit_events b
                WHERE a.tenant_id = $1 AND b.tenant_id = $1
                  AND ((a.seq = 4 AND b.seq = 5) OR (a.seq = 5 AND b.seq = 4))
                """, [fixture.tenant])
        }
        for report in [live, offline] {
            #expect(report.has(.hashMismatch, at: 4), "\(report.summary)")
            #expect(report.has(.hashMismatch, at: 5))
            #expect(report.has(.brokenLink, at: 4))
        }
    }

    @Test("truncating the tail past a checkpoint (head moved back too): truncated at the checkpoint")
    func truncatedTail() async throws {
        let (live, offline) = try await tampered { fixture in
            try await fixture.tamper("DELETE FROM public.audit_events WHERE tenant_id = $1 AND seq >= 8", [fixture.tenant])
            try await fixture.tamper(
                """
                UPDATE public.audit_heads h SET seq = 7, hash = e.hash
                FROM public.audit_events e WHERE h.tenant_id = $1 AND e.tenant_id = $1 AND e.seq = 7
                """, [fixture.tenant])
        }
        for report in [live, offline] {
            #expect(report.has(.truncated, at: 10), "\(report.summary)")
        }
    }

    @Test("truncating entries after the last checkpoint: the head no longer matches")
    func truncatedAfterCheckpoint() async throws {
        let (live, offline) = try await tampered { fixture in
            try await fixture.tamper("DELETE FROM public.audit_events WHERE tenant_id = $1 AND seq > 15", [fixture.tenant])
        }
        for report in [live, offline] {
            #expect(report.has(.truncated, at: 20), "\(report.summary)")
        }
    }

    @Test("a forged checkpoint signature: bad signature at its seq")
    func forgedSignature() async throws {
        let (live, offline) = try await tampered { fixture in
            try await fixture.tamper(
                "UPDATE public.audit_checkpoints SET signature = $2 WHERE tenant_id = $1",
                [fixture.tenant, Random.bytes(64)])
        }
        for report in [live, offline] {
            #expect(report.has(.badSignature, at: 10), "\(report.summary)")
        }
    }

    @Test("a checkpoint re-signed with an attacker's key: unknown key")
    func attackerKey() async throws {
        let attacker = try Ed25519.SigningKey.generate()
        let (live, offline) = try await tampered { fixture in
            let stored = try await fixture.gateway.query(
                "SELECT to_char(signed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS signed_at, head_hash, previous_checkpoint_hash FROM public.audit_checkpoints WHERE tenant_id = $1",
                [fixture.tenant]
            ).first!
            var forged = AuditCheckpoint(
                tenantID: fixture.tenant, seq: 10, headHash: try stored.decode("head_hash"),
                previousCheckpointHash: try stored.decode("previous_checkpoint_hash"), signedAt: try stored.decode("signed_at"),
                keyID: AuditCheckpoint.keyID(of: attacker.publicKey), publicKey: attacker.publicKey, signature: [])
            forged.signature = attacker.sign(forged.signingMessage())
            #expect(forged.hasValidSignature())
            try await fixture.tamper(
                "UPDATE public.audit_checkpoints SET key_id = $2, public_key = $3, signature = $4 WHERE tenant_id = $1",
                [fixture.tenant, forged.keyID, forged.publicKey, forged.signature])
        }
        for report in [live, offline] {
            #expect(report.has(.unknownKey, at: 10), "\(report.summary)")
        }
    }
}

@Suite("Checkpoints")
struct CheckpointTests {
    @Test("checkpoints chain, survive key rotation, and need every key that signed them")
    func rotation() async throws {
        try await AuditFixture.with { fixture in
            try await fixture.appendSequentially(3)
            let first = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            #expect(first.seq == 3 && first.hasValidSignature())
            #expect(first.previousCheckpointHash == [UInt8](repeating: 0, count: 32))
            // Nothing new: the same checkpoint comes back.
            #expect(try await fixture.checkpointer.checkpoint(tenant: fixture.tenant) == first)

            let newKey = try Ed25519.SigningKey.generate()
            // The new key extends the old one's checkpoints because configuration still trusts it.
            let rotated = AuditCheckpointer(pool: fixture.gateway, signingKey: newKey, trustedKeys: fixture.trustedKeys)
            try await fixture.appendSequentially(2)
            let second = try await rotated.checkpoint(tenant: fixture.tenant)
            #expect(second.seq == 5 && second.previousCheckpointHash == first.hash())

            var both = fixture.trustedKeys
            both[rotated.keyID] = newKey.publicKey
            #expect(try await fixture.verifyLive(trusted: both).isValid)
            #expect(try await fixture.exportAndVerify(trusted: both).isValid)
            let onlyNew = try await fixture.verifyLive(trusted: [rotated.keyID: newKey.publicKey])
            #expect(onlyNew.has(.unknownKey, at: 3))
            #expect(!onlyNew.has(.unknownKey, at: 5))
        }
    }

    @Test("checkpointAll signs every tenant that moved; an empty chain cannot be checkpointed")
    func checkpointAll() async throws {
        try await AuditFixture.with { fixture in
            let empty = try await AuditFixture.createTenant(fixture.owner)
            await #expect(throws: AuditError.self) { try await fixture.checkpointer.checkpoint(tenant: empty) }
            let second = try await AuditFixture.createTenant(fixture.owner)
            try await fixture.appendSequentially(2)
            try await fixture.appendSequentially(1, tenant: second)
            let result = try await fixture.checkpointer.checkpointAll()
            #expect(Set(result.checkpoints.map(\.tenantID)) == [fixture.tenant, second])
            #expect(result.failures.isEmpty)
            let again = try await fixture.checkpointer.checkpointAll()
            #expect(again.checkpoints.isEmpty)
        }
    }
}

@Suite("Export bundles")
struct BundleTests {
    @Test("an exported bundle verifies offline and fails after a hand edit")
    func handEdit() async throws {
        try await AuditFixture.with { fixture in
            try await fixture.appendSequentially(5)
            _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let manifest = try await AuditBundle.export(pool: fixture.gateway, tenant: fixture.tenant, to: directory)
            #expect(manifest.entries == 5 && manifest.head.seq == 5)
            #expect(try AuditBundle.verify(directory: directory).isValid)

            // Edit one line by hand.
            let entriesURL = directory.appendingPathComponent(AuditBundle.entriesFile)
            let text = try String(contentsOf: entriesURL, encoding: .utf8)
            try text.replacingOccurrences(of: "\"actor\":\"user-1\"", with: "\"actor\":\"mallory\"")
                .write(to: entriesURL, atomically: true, encoding: .utf8)
            let edited = try AuditBundle.verify(directory: directory)
            #expect(edited.has(.malformed), "\(edited.summary)")
            #expect(edited.has(.hashMismatch, at: 2))

            // Fixing up the manifest does not help: the chain itself fails.
            var fixed = manifest
            fixed.files[AuditBundle.entriesFile] = Hex.encode(SHA256.hash(Array(try Data(contentsOf: entriesURL))))
            try JSONEncoder().encode(fixed).write(to: directory.appendingPathComponent(AuditBundle.manifestFile))
            let refixed = try AuditBundle.verify(directory: directory)
            #expect(!refixed.has(.malformed))
            #expect(refixed.has(.hashMismatch, at: 2))
        }
    }

    @Test("export --since starts at the first entry at or after the date and still verifies")
    func since() async throws {
        try await AuditFixture.with { fixture in
            try await fixture.appendSequentially(3)
            let cut: Date = try await fixture.owner.query("SELECT clock_timestamp() AS now").first!.decode("now")
            try await fixture.appendSequentially(2)
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let manifest = try await AuditBundle.export(pool: fixture.gateway, tenant: fixture.tenant, since: cut, to: directory)
            #expect(manifest.fromSeq == 4 && manifest.entries == 2)
            #expect(try AuditBundle.verify(directory: directory).isValid)
        }
    }

    @Test("a bundle of an empty chain verifies")
    func emptyChain() async throws {
        try await AuditFixture.with { fixture in
            let offline = try await fixture.exportAndVerify()
            let live = try await fixture.verifyLive()
            #expect(offline.isValid && live.isValid)
        }
    }
}
