import Audit
import Foundation
import Postgres
import Privacy
import Sodium
import TestSupport
import Testing

/// Issue 16: a data subject's export proves each audit entry about them is in the signed log.
@Suite("Exports carry inclusion proofs of the audit entries about the subject")
struct ExportProofTests {
    @Test(
        "every proof in a real export verifies with only the public key; a tampered one fails naming the entry; the index says how to check"
    )
    func exportProofs() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant)
            _ = try await fixture.subject(in: tenant)
            // Some history about the subject and others before the export.
            for index in 0..<5 {
                _ = try await fixture.service.audit.append(
                    tenant: tenant,
                    AuditEvent(
                        action: "test.read", details: ["user_id": .string(user.uuidString.lowercased()), "n": .int(Int64(index))]))
                _ = try await fixture.service.audit.append(
                    tenant: tenant, AuditEvent(action: "test.other", details: ["n": .int(Int64(index))]))
            }
            let status = try await fixture.service.requestExport(tenant: tenant, subject: user, actor: operatorActor)
            let id = try #require(UUID(uuidString: status.request.id))
            let manifest = try await fixture.service.processExport(tenant: tenant, id: id)
            let files = try readArchive(try await fixture.decryptedArchive(id, tenant: tenant, subject: user))

            let trailBytes = try #require(files["audit_trail.json"])
            let trail = try #require(try JSONSerialization.jsonObject(with: Data(trailBytes)) as? [[String: Any]])
            let seqs = trail.compactMap { ($0["seq"] as? NSNumber)?.int64Value }
            #expect(seqs.count >= 6)
            let data = Data(try #require(files[PrivacyService.auditTrailProofsFile]))
            let set = try JSONDecoder().decode(InclusionProofSet.self, from: data)
            // Every entry of the trail is proven (the export checkpointed the log first), against one checkpoint.
            #expect(set.unproven.isEmpty)
            #expect(set.proofs.map(\.entry.entry.seq) == seqs)
            #expect(set.tenantID == tenant && set.proofs.allSatisfy { $0.checkpoint == set.checkpoint && $0.treeSize == set.treeSize })
            let verdict = try set.verify(publicKey: fixture.signingKey.publicKey)
            #expect(verdict.hasPrefix("OK: all \(seqs.count) proven entries of tenant \(tenant.lowercasedString)"))
            for proof in set.proofs { try AuditProofs.verify(proof, publicKey: fixture.signingKey.publicKey) }
            // Built in batches, each proof is the one the proof route builds alone.
            for proof in set.proofs {
                #expect(
                    try await AuditProofs.inclusion(
                        pool: fixture.service.pool, tenant: tenant, seq: proof.entry.entry.seq, checkpointSeq: set.treeSize!) == proof)
            }
            // Listed in the manifest (with its hash) and explained in index.html.
            let entry = try #require(manifest.files.first { $0.name == PrivacyService.auditTrailProofsFile })
            #expect(entry.rows == seqs.count && entry.sha256 == Hex.encode(SHA256.hash(Array(data))))
            let index = String(decoding: try #require(files["index.html"]), as: UTF8.self)
            #expect(index.contains("privacyctl audit verify-proof audit_trail.proofs.json --trusted-key"))

            func failure(_ set: InclusionProofSet, key: [UInt8] = fixture.signingKey.publicKey) -> String? {
                do {
                    try set.verify(publicKey: key)
                    return nil
                } catch let error as AuditError {
                    return error.message
                } catch {
                    return "\(error)"
                }
            }
            let victim = set.proofs[2].entry.entry.seq
            var path = set
            path.proofs[2].hashes[0] = String(path.proofs[2].hashes[0].reversed())
            #expect(
                failure(path)?.hasPrefix("entry \(victim) is not in the checkpoint of size \(set.treeSize!)") == true,
                "\(failure(path) ?? "")")
            var edited = set
            edited.proofs[2].entry.entry.action = "test.innocent"
            #expect(failure(edited) == "entry \(victim): its content does not match its hash (the entry was edited)")
            var dropped = set
            dropped.proofs[2].leafIndex += 1
            #expect(failure(dropped)?.contains("leaf index") == true)
            var note = set
            note.proofs[0].checkpoint = note.proofs[0].checkpoint.replacingOccurrences(
                of: "\n\(set.treeSize!)\n", with: "\n\(set.treeSize! + 1)\n")
            #expect(failure(note)?.contains("another checkpoint") == true)
            note.checkpoint = note.proofs[0].checkpoint
            for index in note.proofs.indices { note.proofs[index].checkpoint = note.checkpoint! }
            #expect(failure(note)?.contains("does not verify (the note was altered") == true, "\(failure(note) ?? "")")
            #expect(failure(set, key: try Ed25519.SigningKey.generate().publicKey)?.contains("no signature by the trusted key") == true)
        }
    }
}
