import Audit
import Foundation
import Postgres
import Sodium
import TestSupport
import Testing

/// Issue 12, item 8: checkpoints are verified against pinned keys only, and the checkpointer never
/// signs a chain that fails verification.
@Suite("Audit keys are pinned; the checkpointer re-verifies")
struct PinningTests {
    /// A checkpoint over the tenant's current head, chained to its last checkpoint, signed by `key`
    /// and written straight into the table, as someone with write access to the database would.
    static func forgeCheckpoint(_ fixture: AuditFixture, signedBy key: Ed25519.SigningKey) async throws -> AuditCheckpoint {
        let head = try await fixture.owner.query("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1", [fixture.tenant]).first!
        let previous = try await AuditReader.checkpoints(pool: fixture.owner, tenant: fixture.tenant).last
        var forged = AuditCheckpoint(
            tenantID: fixture.tenant, seq: try head.decode("seq"), headHash: try head.decode("hash"),
            previousCheckpointHash: previous?.hash() ?? AuditEntry.genesisHash, signedAt: "2026-01-01T00:00:00.000000Z",
            keyID: AuditCheckpoint.keyID(of: key.publicKey), publicKey: key.publicKey, signature: [])
        forged.signature = key.sign(forged.signingMessage())
        try await fixture.owner.query(
            """
            INSERT INTO audit_checkpoints (tenant_id, seq, head_hash, previous_checkpoint_hash, signed_at, key_id, public_key, signature)
            VALUES ($1, $2, $3, $4, $5::timestamptz, $6, $7, $8)
            """,
            [
                forged.tenantID, forged.seq, forged.headHash, forged.previousCheckpointHash, forged.signedAt, forged.keyID,
                forged.publicKey, forged.signature,
            ])
        return forged
    }

    @Test("a checkpoint signed by an attacker's key, stored with that key, fails live verification as unknown_key")
    func attackerCheckpoint() async throws {
        try await AuditFixture.with { fixture in
            try await fixture.appendSequentially(5)
            _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            try await fixture.appendSequentially(3)
            let attacker = try Ed25519.SigningKey.generate()
            let forged = try await Self.forgeCheckpoint(fixture, signedBy: attacker)
            // Self-consistent: its signature verifies under the key stored beside it.
            #expect(forged.hasValidSignature())

            let report = try await fixture.verifyLive()
            #expect(!report.isValid)
            #expect(report.has(.unknownKey, at: 8), "\(report.summary)")
            #expect(!report.has(.unknownKey, at: 5) && !report.has(.badSignature))
            // With nothing pinned, nothing stored in the database is trusted either.
            let unpinned = try await AuditBundle.verifyLive(pool: fixture.gateway, tenant: fixture.tenant, trustedKeys: [:])
            #expect(unpinned.has(.unknownKey, at: 5) && unpinned.has(.unknownKey, at: 8))
        }
    }

    @Test("the checkpointer never extends a last checkpoint signed by an untrusted key: a new signature would vouch for it")
    func refusesToExtendForgedCheckpoint() async throws {
        try await AuditFixture.with { fixture in
            try await fixture.appendSequentially(5)
            _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            try await fixture.appendSequentially(3)
            _ = try await Self.forgeCheckpoint(fixture, signedBy: try Ed25519.SigningKey.generate())
            try await fixture.appendSequentially(2)
            let error = await #expect(throws: AuditError.self) { try await fixture.checkpointer.checkpoint(tenant: fixture.tenant) }
            #expect(error?.code == .chainCorrupt)
            #expect(error?.message.contains("not signed by a trusted key") == true, "\(String(describing: error))")
            let checkpoints = try await AuditReader.checkpoints(pool: fixture.owner, tenant: fixture.tenant)
            #expect(checkpoints.map(\.seq) == [5, 8])  // nothing signed over the forgery
        }
    }

    @Test("the checkpointer refuses to sign when an entry after the last checkpoint was tampered with")
    func refusesTamperedTail() async throws {
        try await AuditFixture.with { fixture in
            try await fixture.appendSequentially(5)
            let first = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            try await fixture.appendSequentially(5)
            try await fixture.tamper(
                "UPDATE public.audit_events SET details = '{\"n\": 999}' WHERE tenant_id = $1 AND seq = 7", [fixture.tenant])

            let error = await #expect(throws: AuditError.self) { _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant) }
            #expect(error?.code == .chainCorrupt)
            #expect(error?.message.contains("hash_mismatch at seq 7") == true, "\(String(describing: error))")
            let (signed, failures) = try await fixture.checkpointer.checkpointAll()
            #expect(signed.isEmpty)
            #expect(failures[fixture.tenant]?.code == .chainCorrupt)
            #expect(try await AuditReader.checkpoints(pool: fixture.owner, tenant: fixture.tenant) == [first])
        }
    }

    @Test("the checkpointer refuses a tail that does not link to the last checkpoint's head")
    func refusesRelinkedTail() async throws {
        try await AuditFixture.with { fixture in
            try await fixture.appendSequentially(4)
            _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            try await fixture.appendSequentially(2)
            // Entry 5 is rewritten to hang off another chain; its own hash is recomputed to match,
            // and so is entry 6's link, so only the link to the checkpointed head is wrong.
            let entries = try await AuditReader.entries(pool: fixture.owner, tenant: fixture.tenant, afterSeq: 4, limit: 10)
            var fifth = entries[0]
            fifth.prevHash = [UInt8](repeating: 7, count: 32)
            fifth.hash = fifth.computedHash()
            var sixth = entries[1]
            sixth.prevHash = fifth.hash
            sixth.hash = sixth.computedHash()
            try await fixture.tamper(
                """
                UPDATE public.audit_events
                SET prev_hash = CASE seq WHEN 5 THEN $2::bytea ELSE $4::bytea END, hash = CASE seq WHEN 5 THEN $3::bytea ELSE $5::bytea END
                WHERE tenant_id = $1 AND seq IN (5, 6)
                """, [fixture.tenant, fifth.prevHash, fifth.hash, sixth.prevHash, sixth.hash])
            try await fixture.tamper("UPDATE public.audit_heads SET hash = $2 WHERE tenant_id = $1", [fixture.tenant, sixth.hash])

            let error = await #expect(throws: AuditError.self) { _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant) }
            #expect(error?.code == .chainCorrupt)
            #expect(error?.message.contains("broken_link at seq 5") == true, "\(String(describing: error))")
            #expect(try await AuditReader.checkpoints(pool: fixture.owner, tenant: fixture.tenant).count == 1)
        }
    }

    @Test("an intact chain is checkpointed from where the last checkpoint left off")
    func intactChain() async throws {
        try await AuditFixture.with { fixture in
            try await fixture.appendSequentially(3)
            let first = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            try await fixture.appendSequentially(4)
            let second = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            #expect(first.seq == 3 && second.seq == 7 && second.previousCheckpointHash == first.hash())
            #expect(try await fixture.checkpointer.checkpoint(tenant: fixture.tenant) == second)
            #expect(try await fixture.verifyLive().isValid)
        }
    }
}
