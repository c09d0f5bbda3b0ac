import Foundation
import Sodium
import TestSupport
import Testing

@testable import Audit

/// Issue 16, item 4: the witness's decision (C2SP tlog-cosignature), on checkpoints a real log signed.
@Suite("Witness: cosigns only a checkpoint that extends the last one it cosigned")
struct WitnessTests {
    @Test("a rolled-back, forked or foreign-signed log is refused; a tampered or foreign cosignature does not verify")
    func refusals() async throws {
        try await AuditFixture.with { f in
            try await f.appendSequentially(5)
            let first = try await f.checkpointer.checkpoint(tenant: f.tenant)
            try await f.appendSequentially(4)
            let second = try await f.checkpointer.checkpoint(tenant: f.tenant)
            let witnessKey = try Ed25519.SigningKey.generate()
            let name = "auditor.example/w1"
            let origin = TreeCheckpoint.origin(tenant: f.tenant)
            func witness(_ note: String, _ previous: AuditWitness.State?, _ proof: [[UInt8]] = []) throws -> AuditWitness.State {
                try AuditWitness.witness(
                    note: note, tenant: f.tenant, logPublicKey: f.signingKey.publicKey, previous: previous, proof: proof,
                    name: name, key: witnessKey)
            }
            func refusal(_ body: () throws -> Void) -> String {
                do { try body(); return "accepted" } catch let error as AuditError { return error.message } catch { return "\(error)" }
            }

            let seen = try witness(try #require(first.note), nil)
            #expect(seen.size == 5)
            #expect(try AuditWitness.verifyCosignature(seen.note, name: name, publicKey: witnessKey.publicKey) > 0)
            // The cosigned note still carries the log's own valid signature.
            _ = try AuditProofs.verifiedCheckpoint(seen.note, tenant: f.tenant, publicKey: f.signingKey.publicKey)

            let consistency = try await AuditProofs.consistency(pool: f.gateway, tenant: f.tenant, from: 5, to: 9)
            let proof = try AuditProofs.hashes(consistency.hashes)
            let next = try witness(try #require(second.note), seen, proof)
            #expect(next.size == 9)

            // Rolled back: the log shows the older, smaller checkpoint again.
            #expect(refusal { _ = try witness(first.note!, next) }.contains("rollback refused"))
            // Forked at the same size: the log's key signed another root for 9 entries.
            let sameSize = SignedNote.sign(
                text: TreeCheckpoint(origin: origin, size: 9, rootHash: SHA256.hash([7])).text, name: origin, key: f.signingKey)
            #expect(refusal { _ = try witness(sameSize, next) }.contains("fork refused"))
            // Forked and grown: a tree of 12 whose proof does not lead back to the cosigned 9.
            let grown = SignedNote.sign(
                text: TreeCheckpoint(origin: origin, size: 12, rootHash: SHA256.hash([8])).text, name: origin, key: f.signingKey)
            #expect(refusal { _ = try witness(grown, next, proof) }.contains("does not extend the tree of 9"))
            // The right proof for a different old tree does not help either.
            #expect(
                refusal {
                    _ = try witness(
                        second.note!, AuditWitness.State(origin: origin, size: 5, rootHash: Hex.encode(SHA256.hash([9])), note: ""), proof)
                }
                .contains("fork refused"))
            // Not signed by the pinned log key.
            let foreign = try Ed25519.SigningKey.generate()
            let forged = SignedNote.sign(
                text: TreeCheckpoint(origin: origin, size: 10, rootHash: SHA256.hash([1])).text, name: origin, key: foreign)
            #expect(refusal { _ = try witness(forged, next) }.contains("no signature by the trusted key"))
            // Cosignatures: another witness's key, a tampered cosigned note.
            #expect(
                refusal { _ = try AuditWitness.verifyCosignature(next.note, name: name, publicKey: foreign.publicKey) }
                    .contains("no cosignature by witness"))
            let tampered = next.note.replacingOccurrences(of: "\n9\n", with: "\n8\n")
            #expect(
                refusal { _ = try AuditWitness.verifyCosignature(tampered, name: name, publicKey: witnessKey.publicKey) }
                    .contains("does not verify"))
        }
    }
}
