import Foundation
import Postgres
import Sodium
import TestSupport
import Testing

@testable import Audit

/// Issue 16: the per-tenant RFC 9162 tree, C2SP signed checkpoints and proofs, against a real database.
@Suite("Transparency log: Merkle tree, signed notes, inclusion and consistency proofs")
struct TransparencyTests {
    // MARK: - Unhappy paths first

    @Test("a proof for an entry after the checkpoint, of another tenant, or against a missing checkpoint is refused")
    func proofRequestsOutsideTheLog() async throws {
        try await AuditFixture.with { f in
            try await f.appendSequentially(5)
            _ = try await f.checkpointer.checkpoint(tenant: f.tenant)
            try await f.appendSequentially(2)
            let other = try await AuditFixture.createTenant(f.owner)
            try await f.appendSequentially(3, tenant: other)
            _ = try await f.checkpointer.checkpoint(tenant: other)

            func code(_ body: () async throws -> Void) async -> AuditError.Code? {
                do { try await body(); return nil } catch let error as AuditError { return error.code } catch { return nil }
            }
            #expect(
                await code { _ = try await AuditProofs.inclusion(pool: f.gateway, tenant: f.tenant, seq: 6, checkpointSeq: 5) }
                    == .invalidRequest)
            #expect(
                await code { _ = try await AuditProofs.inclusion(pool: f.gateway, tenant: f.tenant, seq: 3, checkpointSeq: 4) } == .notFound
            )
            // The other tenant's checkpoint (seq 3) is not in this tenant's log, nor this one's (seq 5) in the other's.
            #expect(
                await code { _ = try await AuditProofs.inclusion(pool: f.gateway, tenant: f.tenant, seq: 1, checkpointSeq: 3) } == .notFound
            )
            #expect(
                await code { _ = try await AuditProofs.inclusion(pool: f.gateway, tenant: other, seq: 1, checkpointSeq: 5) } == .notFound)
            #expect(
                await code { _ = try await AuditProofs.consistency(pool: f.gateway, tenant: f.tenant, from: 5, to: 3) } == .invalidRequest)
            #expect(await code { _ = try await AuditProofs.consistency(pool: f.gateway, tenant: f.tenant, from: 3, to: 5) } == .notFound)
        }
    }

    @Test("a tampered proof file is refused naming the check that failed")
    func tamperedProofs() async throws {
        try await AuditFixture.with { f in
            try await f.appendSequentially(9)
            let first = try await f.checkpointer.checkpoint(tenant: f.tenant)
            try await f.appendSequentially(4)
            let second = try await f.checkpointer.checkpoint(tenant: f.tenant)
            let key = f.signingKey.publicKey
            let proof = try await AuditProofs.inclusion(pool: f.gateway, tenant: f.tenant, seq: 4, checkpointSeq: second.seq)
            try AuditProofs.verify(proof, publicKey: key)

            func message(_ body: () throws -> Void) -> String {
                do { try body(); return "verified" } catch let error as AuditError { return error.message } catch { return "\(error)" }
            }
            // A changed entry: its content no longer hashes to its hash.
            var edited = proof
            edited.entry.entry.action = "secret.write"
            #expect(message { try AuditProofs.verify(edited, publicKey: key) }.contains("its content does not match its hash"))
            // A changed entry with its hash recomputed: the path no longer leads to the signed root.
            edited.entry.entry.hash = edited.entry.entry.computedHash()
            #expect(message { try AuditProofs.verify(edited, publicKey: key) }.contains("is not in the checkpoint of size 13"))
            // Another position (a reordered entry).
            var moved = proof
            moved.leafIndex = 4
            #expect(message { try AuditProofs.verify(moved, publicKey: key) }.contains("is not entry 4's position"))
            // A dropped proof hash.
            var short = proof
            short.hashes.removeLast()
            #expect(message { try AuditProofs.verify(short, publicKey: key) }.contains("hashes where"))
            // The wrong (foreign) key, and a checkpoint forged with a foreign key under the log's name.
            let foreign = try Ed25519.SigningKey.generate()
            #expect(message { try AuditProofs.verify(proof, publicKey: foreign.publicKey) }.contains("no signature by the trusted key"))
            var forged = proof
            let origin = TreeCheckpoint.origin(tenant: f.tenant)
            forged.checkpoint = SignedNote.sign(
                text: TreeCheckpoint(origin: origin, size: 13, rootHash: SHA256.hash([1])).text, name: origin, key: foreign)
            #expect(message { try AuditProofs.verify(forged, publicKey: key) }.contains("no signature by the trusted key"))
            // An altered note (the root re-written without re-signing).
            var altered = proof
            let body = try TreeCheckpoint(text: SignedNote.open(proof.checkpoint).text)
            altered.checkpoint = proof.checkpoint.replacingOccurrences(
                of: Data(body.rootHash).base64EncodedString(), with: Data(SHA256.hash([2])).base64EncodedString())
            #expect(message { try AuditProofs.verify(altered, publicKey: key) }.contains("does not verify"))
            // Another tenant's log: the note is not signed under that tenant's origin.
            var foreignTenant = proof
            foreignTenant.tenantID = UUID()
            #expect(message { try AuditProofs.verify(foreignTenant, publicKey: key) }.contains("no signature by the trusted key"))

            // Forked history: the log's own key signs a second, different tree of size 13.
            let consistency = try await AuditProofs.consistency(pool: f.gateway, tenant: f.tenant, from: first.seq, to: second.seq)
            try AuditProofs.verify(consistency, publicKey: key)
            var fork = consistency
            fork.toCheckpoint = SignedNote.sign(
                text: TreeCheckpoint(origin: origin, size: 13, rootHash: SHA256.hash([3])).text, name: origin, key: f.signingKey)
            #expect(message { try AuditProofs.verify(fork, publicKey: key) }.contains("does not extend the one of size 9"))
            // Rolled back: a "later" checkpoint smaller than the earlier one.
            var rollback = consistency
            (rollback.fromCheckpoint, rollback.toCheckpoint) = (consistency.toCheckpoint, consistency.fromCheckpoint)
            (rollback.fromSize, rollback.toSize) = (13, 9)
            #expect(message { try AuditProofs.verify(rollback, publicKey: key) }.contains("cannot extend"))
        }
    }

    @Test("a changed, dropped or reordered entry fails the signed Merkle root (root_mismatch); a stripped note is refused")
    func tamperingFailsTheSignedRoot() async throws {
        try await AuditFixture.with { f in
            var tenants: [UUID] = []
            for _ in 0..<4 {
                let tenant = try await AuditFixture.createTenant(f.owner)
                try await f.appendSequentially(6, tenant: tenant)
                _ = try await f.checkpointer.checkpoint(tenant: tenant)
                try await f.appendSequentially(4, tenant: tenant)
                _ = try await f.checkpointer.checkpoint(tenant: tenant)
                tenants.append(tenant)
            }
            func report(_ tenant: UUID) async throws -> VerificationReport {
                try await AuditBundle.verifyLive(pool: f.gateway, tenant: tenant, trustedKeys: f.trustedKeys)
            }
            #expect(try await report(tenants[0]).isValid)

            try await f.tamper("UPDATE audit_events SET target = 'elsewhere' WHERE tenant_id = $1 AND seq = 3", [tenants[0]])
            #expect(try await report(tenants[0]).has(.rootMismatch, at: 6))

            try await f.tamper("DELETE FROM audit_events WHERE tenant_id = $1 AND seq = 8", [tenants[1]])
            #expect(try await report(tenants[1]).has(.rootMismatch, at: 10))

            // Reordered: entries 2 and 3 swap places (content and hashes move, seqs stay).
            try await f.tamper(
                """
                UPDATE public.audit_events a
                SET at = b.at, actor = b.actor, action = b.action, target = b.target, outcome = b.outcome,
                    request_id = b.request_id, ip = b.ip, user_agent = b.user_agent, details = b.details,
                    prev_hash = b.prev_hash, hash = b.hash
                FROM public.audit_events b
                WHERE a.tenant_id = $1 AND b.tenant_id = $1 AND a.seq IN (2, 3) AND b.seq = 5 - a.seq
                """, [tenants[2]])
            #expect(try await report(tenants[2]).has(.rootMismatch, at: 6))

            try await f.tamper("UPDATE audit_checkpoints SET root_hash = NULL, note = NULL WHERE tenant_id = $1 AND seq = 10", [tenants[3]])
            let stripped = try await report(tenants[3])
            #expect(stripped.failures.contains { $0.kind == .badSignature && $0.seq == 10 && $0.detail.contains("stripped") })
        }
    }

    @Test("the checkpointer refuses to sign over stored tree nodes that disagree with the entries")
    func corruptNodesAreNotSigned() async throws {
        try await AuditFixture.with { f in
            try await f.appendSequentially(5)
            try await appendConcurrently(f, 300)
            try await f.tamper("UPDATE audit_tree_nodes SET hash = sha256('x'::bytea) WHERE tenant_id = $1", [f.tenant])
            do {
                _ = try await f.checkpointer.checkpoint(tenant: f.tenant)
                Issue.record("signed over corrupt nodes")
            } catch let error as AuditError {
                #expect(error.code == .chainCorrupt)
                #expect(error.message.contains("Merkle tree nodes disagree"))
            }
        }
    }

    // MARK: - Happy paths

    @Test("every entry of a small log is in every checkpoint covering it; every pair of checkpoints is consistent")
    func smallLogAllProofs() async throws {
        try await AuditFixture.with { f in
            var checkpoints: [AuditCheckpoint] = []
            for count in [1, 5, 7, 8, 1] {
                try await f.appendSequentially(count)
                checkpoints.append(try await f.checkpointer.checkpoint(tenant: f.tenant))
            }
            #expect(checkpoints.map(\.seq) == [1, 6, 13, 21, 22])
            let key = f.signingKey.publicKey
            for checkpoint in checkpoints {
                // The stored note is a C2SP checkpoint signed under the tenant's origin.
                let note = try #require(checkpoint.note)
                let origin = TreeCheckpoint.origin(tenant: f.tenant)
                let body = try TreeCheckpoint(text: SignedNote.verify(note, name: origin, publicKey: key))
                #expect(body == TreeCheckpoint(origin: origin, size: checkpoint.seq, rootHash: checkpoint.rootHash!))
                #expect(note.hasPrefix("\(origin)\n\(checkpoint.seq)\n"))
                for seq in 1...checkpoint.seq {
                    let proof = try await AuditProofs.inclusion(pool: f.gateway, tenant: f.tenant, seq: seq, checkpointSeq: checkpoint.seq)
                    try AuditProofs.verify(proof, publicKey: key)
                    // Through JSON, as the file privacyctl writes.
                    let decoded = try JSONDecoder().decode(InclusionProof.self, from: JSONEncoder().encode(proof))
                    try AuditProofs.verify(decoded, publicKey: key)
                }
            }
            for (i, old) in checkpoints.enumerated() {
                for new in checkpoints[i...] {
                    let proof = try await AuditProofs.consistency(pool: f.gateway, tenant: f.tenant, from: old.seq, to: new.seq)
                    try AuditProofs.verify(proof, publicKey: key)
                }
            }
            #expect(try await f.verifyLive().isValid)
            #expect(try await f.exportAndVerify().isValid)
        }
    }

    @Test("random entries of a log past 256 entries prove against the stored level-4 and level-8 nodes")
    func largerLogRandomProofs() async throws {
        try await AuditFixture.with { f in
            try await appendConcurrently(f, 700)
            let first = try await f.checkpointer.checkpoint(tenant: f.tenant)
            try await appendConcurrently(f, 900)
            let second = try await f.checkpointer.checkpoint(tenant: f.tenant)
            #expect(first.seq == 700 && second.seq == 1600)
            let nodes: Int = try await f.owner.query(
                "SELECT count(*)::int AS n FROM audit_tree_nodes WHERE tenant_id = $1 AND level = 8", [f.tenant]
            ).first!.decode("n")
            #expect(nodes == 6)  // ⌊1600 / 256⌋ complete 256-leaf subtrees
            let quarter: Int = try await f.owner.query(
                "SELECT count(*)::int AS n FROM audit_tree_nodes WHERE tenant_id = $1 AND level = 4", [f.tenant]
            ).first!.decode("n")
            #expect(quarter == 100)  // ⌊1600 / 16⌋ (every 4th level is stored, migration 0028)
            var generator = SystemRandomNumberGenerator()
            let seqs: [Int64] = [1, 256, 257, 700, 1599, 1600] + (0..<25).map { _ in Int64.random(in: 1...1600, using: &generator) }
            for seq in seqs {
                let proof = try await AuditProofs.inclusion(pool: f.gateway, tenant: f.tenant, seq: seq, checkpointSeq: second.seq)
                try AuditProofs.verify(proof, publicKey: f.signingKey.publicKey)
                if seq <= first.seq {
                    try AuditProofs.verify(
                        try await AuditProofs.inclusion(pool: f.gateway, tenant: f.tenant, seq: seq, checkpointSeq: first.seq),
                        publicKey: f.signingKey.publicKey)
                }
            }
            try AuditProofs.verify(
                try await AuditProofs.consistency(pool: f.gateway, tenant: f.tenant, from: first.seq, to: second.seq),
                publicKey: f.signingKey.publicKey)
            #expect(try await f.verifyLive().isValid)
        }
    }

    @Test("a chain written before the tree gets its tree on the next checkpoint or append; old checkpoints stay verifiable")
    func legacyChainsMigrate() async throws {
        try await AuditFixture.with { f in
            try await appendConcurrently(f, 300)
            _ = try await f.checkpointer.checkpoint(tenant: f.tenant)
            // As if written before migration 0019: no tree, an old-style checkpoint.
            try await f.tamper("UPDATE audit_heads SET tree_size = 0, frontier = ''::bytea WHERE tenant_id = $1", [f.tenant])
            try await f.tamper("DELETE FROM audit_tree_nodes WHERE tenant_id = $1", [f.tenant])
            try await f.tamper("UPDATE audit_checkpoints SET root_hash = NULL, note = NULL WHERE tenant_id = $1", [f.tenant])
            #expect(try await f.verifyLive().isValid)
            do {
                _ = try await AuditProofs.inclusion(pool: f.gateway, tenant: f.tenant, seq: 3, checkpointSeq: 300)
                Issue.record("a proof against an old-style checkpoint")
            } catch let error as AuditError {
                #expect(error.code == .invalidRequest && error.message.contains("before the Merkle tree"))
            }
            // A checkpoint round with nothing new builds the tree (and signs nothing new).
            #expect(try await f.checkpointer.checkpoint(tenant: f.tenant).seq == 300)
            let size: Int64 = try await f.owner.query("SELECT tree_size FROM audit_heads WHERE tenant_id = $1", [f.tenant]).first!.decode(
                "tree_size")
            #expect(size == 300)
            // The same from the appender: reset again, append, checkpoint, prove.
            try await f.tamper("UPDATE audit_heads SET tree_size = 0, frontier = ''::bytea WHERE tenant_id = $1", [f.tenant])
            try await f.tamper("DELETE FROM audit_tree_nodes WHERE tenant_id = $1", [f.tenant])
            try await f.appendSequentially(10)
            let checkpoint = try await f.checkpointer.checkpoint(tenant: f.tenant)
            #expect(checkpoint.seq == 310 && checkpoint.note != nil)
            for seq: Int64 in [1, 150, 256, 300, 310] {
                try AuditProofs.verify(
                    try await AuditProofs.inclusion(pool: f.gateway, tenant: f.tenant, seq: seq, checkpointSeq: 310),
                    publicKey: f.signingKey.publicKey)
            }
            #expect(try await f.verifyLive().isValid)
        }
    }
}

extension TransparencyTests {
    @Test(
        "a tree stored at every 8th level (before migration 0028) gets its 4th levels from the migration; proofs stay the same before, without and after them"
    )
    func strideFourMigration() async throws {
        try await AuditFixture.with { f in
            try await appendConcurrently(f, 1000)
            let early = try await f.checkpointer.checkpoint(tenant: f.tenant)
            try await appendConcurrently(f, 3300)  // past 4096: a level-12 node
            let checkpoint = try await f.checkpointer.checkpoint(tenant: f.tenant)
            #expect(early.seq == 1000 && checkpoint.seq == 4300)
            let seqs: [Int64] = [1, 2, 16, 17, 256, 1000, 4095, 4096, 4097, 4300]
            func proofs() async throws -> [InclusionProof] {
                var proofs: [InclusionProof] = []
                for seq in seqs {
                    let proof = try await AuditProofs.inclusion(pool: f.gateway, tenant: f.tenant, seq: seq, checkpointSeq: checkpoint.seq)
                    try AuditProofs.verify(proof, publicKey: f.signingKey.publicKey)
                    proofs.append(proof)
                }
                return proofs
            }
            func consistency() async throws -> [String] {
                let proof = try await AuditProofs.consistency(pool: f.gateway, tenant: f.tenant, from: early.seq, to: checkpoint.seq)
                try AuditProofs.verify(proof, publicKey: f.signingKey.publicKey)
                return proof.hashes
            }
            func nodes() async throws -> [String] {
                try await f.owner.query(
                    "SELECT level || ':' || idx || ':' || encode(hash, 'hex') AS n FROM audit_tree_nodes WHERE tenant_id = $1 ORDER BY level, idx",
                    [f.tenant]
                ).rows.map { try $0.decode("n") }
            }
            let written = try await nodes()
            #expect(written.filter { $0.hasPrefix("4:") }.count == 268 && written.filter { $0.hasPrefix("12:") }.count == 1)
            let before = try await proofs()
            let consistent = try await consistency()

            // As stored before 0028: every 8th level only, and the old constraint.
            try await f.tamper("DELETE FROM audit_tree_nodes WHERE level % 8 = 4")
            try await f.tamper("ALTER TABLE audit_tree_nodes DROP CONSTRAINT audit_tree_nodes_level_stride")
            try await f.tamper(
                "ALTER TABLE audit_tree_nodes ADD CONSTRAINT audit_tree_nodes_level_check CHECK (level > 0 AND level % 8 = 0)")
            #expect(try await nodes().count == written.count - 269)
            // Without the 4th levels (entries appended by an older gateway), proofs fold from the level below.
            #expect(try await proofs() == before)
            #expect(try await consistency() == consistent)

            let migration = try String(
                contentsOf: TestDatabase.repositoryMigrations.appendingPathComponent("0028_audit_tree_stride_four.sql"), encoding: .utf8)
            try await f.owner.withConnection { connection in
                try await connection.run { try $0.simple(migration) }
            }
            #expect(try await nodes() == written)
            #expect(try await proofs() == before)
            #expect(try await consistency() == consistent)
            // Idempotent: a second run adds nothing.
            try await f.owner.withConnection { connection in
                try await connection.run { try $0.simple(migration) }
            }
            #expect(try await nodes() == written)
            try await appendConcurrently(f, 20)
            #expect(try await f.checkpointer.checkpoint(tenant: f.tenant).seq == 4320)
            #expect(try await f.verifyLive().isValid)
        }
    }
}

extension TransparencyTests {
    @Test(
        "a proof set is written 100 proofs at a time and reads back as one file that verifies; without a checkpoint every entry is listed unproven"
    )
    func streamedProofSet() async throws {
        try await AuditFixture.with { f in
            let tenant = f.tenant
            func write(_ seqs: [Int64]) async throws -> (chunks: [[UInt8]], counts: [Int]) {
                try await f.gateway.transaction(isolation: .repeatableRead) { connection in
                    var chunks: [[UInt8]] = []
                    let counts = try InclusionProofSet.write(connection: connection, tenant: tenant, seqs: seqs, unprovenReason: "later") {
                        chunks.append($0)
                    }
                    return (chunks, [counts.proven, counts.unproven])
                }
            }
            try await appendConcurrently(f, 20)
            let none = try await write([3, 5])
            let empty = try JSONDecoder().decode(InclusionProofSet.self, from: Data(none.chunks.joined()))
            #expect(none.counts == [0, 2] && empty.proofs.isEmpty && empty.treeSize == nil && empty.checkpoint == nil)
            #expect(empty.unproven.map(\.seq) == [3, 5] && empty.unproven[0].reason == "the log has no signed checkpoint yet: later")
            #expect(try empty.verify(publicKey: f.signingKey.publicKey).contains("2 not yet provable"))

            try await appendConcurrently(f, 230)
            let checkpoint = try await f.checkpointer.checkpoint(tenant: tenant)
            try await appendConcurrently(f, 10)
            let seqs = Array(Int64(1)...260).filter { $0 % 5 != 0 }  // 208 entries, 200 of them covered
            let written = try await write(seqs)
            #expect(written.counts == [200, 8])
            let marker = Array(#""type" : "privacy-gateway-audit-inclusion-proof""#.utf8)
            func occurrences(_ bytes: [UInt8]) -> Int {
                guard bytes.count >= marker.count else { return 0 }
                return (0...(bytes.count - marker.count)).filter { bytes[$0..<$0 + marker.count].elementsEqual(marker) }.count
            }
            #expect(written.chunks.map(occurrences) == [0, 100, 100, 0])  // head, two chunks, tail
            let set = try JSONDecoder().decode(InclusionProofSet.self, from: Data(written.chunks.joined()))
            #expect(set.treeSize == checkpoint.seq && set.checkpoint == checkpoint.note && set.tenantID == tenant)
            #expect(set.proofs.map(\.entry.entry.seq) == seqs.filter { $0 <= 250 })
            #expect(set.unproven.map(\.seq) == seqs.filter { $0 > 250 })
            #expect(try set.verify(publicKey: f.signingKey.publicKey).hasPrefix("OK: all 200 proven entries"))
            for proof in set.proofs.prefix(5) {
                #expect(
                    try await AuditProofs.inclusion(pool: f.gateway, tenant: tenant, seq: proof.entry.entry.seq, checkpointSeq: 250)
                        == proof)
            }
        }
    }
}

/// Appends `count` events at once (group commit batches them).
func appendConcurrently(_ f: AuditFixture, _ count: Int, tenant: UUID? = nil) async throws {
    let tenant = tenant ?? f.tenant
    try await withThrowingTaskGroup(of: Void.self) { group in
        for index in 0..<count {
            group.addTask {
                _ = try await f.appender.append(tenant: tenant, AuditEvent(action: "test.bulk", details: ["n": .int(Int64(index))]))
            }
        }
        try await group.waitForAll()
    }
}
