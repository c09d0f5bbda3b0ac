import Audit
import Foundation
import Postgres
import Sodium
import TestSupport
import Testing

@testable import Privacy

/// Issue 16: a deletion certificate embeds the inclusion proof of its erasure entry in a signed
/// checkpoint, so the certificate alone proves that the erasure was recorded.
@Suite("Deletion certificates prove their erasure is in the signed audit log")
struct ErasureProofTests {
    /// Files, confirms and runs an erasure of a fresh subject; returns the request id and the run's certificate.
    private func erase(_ fixture: PrivacyFixture, tenant: UUID) async throws -> (UUID, DeletionCertificate) {
        let subject = try await fixture.subject(in: tenant)
        let requested = try await fixture.service.requestDeletion(tenant: tenant, subject: subject, actor: operatorActor)
        let id = try #require(UUID(uuidString: requested.request.id))
        _ = try await fixture.service.confirmDeletion(tenant: tenant, id: id, actor: operatorActor)
        return (id, try await fixture.service.processDeletion(tenant: tenant, id: id).certificate)
    }

    private func failure(_ certificate: DeletionCertificate, _ keys: [[UInt8]]) -> String? {
        do {
            try certificate.verifyOffline(publicKeys: keys)
            return nil
        } catch let error as PrivacyError {
            #expect(error.code == .verificationFailed)
            return error.message
        } catch {
            return "\(error)"
        }
    }

    /// `text` with the character at `offset` from the start of `marker`'s first occurrence changed.
    private func flip(_ text: String, after marker: String, offset: Int = 0) throws -> String {
        let range = try #require(text.range(of: marker))
        var characters = Array(text)
        let index = text.distance(from: text.startIndex, to: range.lowerBound) + offset
        characters[index] = characters[index] == "A" ? "B" : "A"
        return String(characters)
    }

    @Test("a flipped byte in the proof, the entry or the note, a wrong key, and a missing proof each fail with a precise message")
    func tampering() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let (_, certificate) = try await erase(fixture, tenant: tenant)
            let key = fixture.signingKey.publicKey
            let proof = try #require(certificate.auditProof)
            #expect(!proof.hashes.isEmpty)

            var hashes = certificate
            hashes.auditProof!.hashes[0] = String(proof.hashes[0].map { $0 == "0" ? "1" : "0" })
            #expect(
                failure(hashes, [key])?.contains("is not in the checkpoint of size \(proof.treeSize)") == true,
                "\(failure(hashes, [key]) ?? "")")

            var entry = certificate
            entry.auditProof!.entry.entry.details["verified"] = .bool(false)
            #expect(failure(entry, [key])?.contains("its content does not match its hash (the entry was edited)") == true)
            var entryHash = certificate
            entryHash.auditProof!.entry.entry.hash[0] ^= 1
            #expect(failure(entryHash, [key])?.contains("does not match its hash") == true)

            var note = certificate
            let size = "\n\(proof.treeSize)\n"
            note.auditProof!.checkpoint = try flip(proof.checkpoint, after: size, offset: size.count)
            #expect(
                failure(note, [key])?.contains("the audit proof does not verify: checkpoint: the signature by") == true,
                "\(failure(note, [key]) ?? "")")

            let other = try Ed25519.SigningKey.generate().publicKey
            #expect(failure(certificate, [other])?.contains("signature does not verify with the given public key") == true)
            var altered = certificate
            altered.auditProof = nil
            #expect(failure(altered, [key])?.contains("carries no audit_proof") == true)
            // The proof is not the signed part, but the certificate is: changing what it certifies breaks its signature.
            let forged = try DeletionCertificate.decode(
                json: String(decoding: try JSONEncoder().encode(certificate), as: UTF8.self).replacingOccurrences(
                    of: certificate.subject, with: UUID().uuidString.lowercased()))
            #expect(failure(forged, [key])?.contains("signature does not verify") == true)
            #expect(failure(certificate, [key]) == nil)
        }
    }

    @Test("a certificate carrying the proof of another tenant's erasure, or of another entry, fails")
    func foreignProof() async throws {
        try await PrivacyFixture.with { fixture in
            let acme = try await fixture.tenant()
            let globex = try await fixture.tenant()
            let (_, mine) = try await erase(fixture, tenant: acme)
            let (_, theirs) = try await erase(fixture, tenant: globex)
            let key = fixture.signingKey.publicKey
            var swapped = mine
            swapped.auditProof = theirs.auditProof
            #expect(
                failure(swapped, [key])?.contains(
                    "from tenant \(globex.lowercasedString)'s log, not from the certificate's tenant \(acme.lowercasedString)") == true)
            // Relabelled as this tenant's: the checkpoint is signed for the other tenant's log.
            swapped.auditProof!.tenantID = acme
            #expect(failure(swapped, [key])?.contains("the audit proof does not verify") == true, "\(failure(swapped, [key]) ?? "")")
            // A second erasure in the same tenant: a genuine proof of this log, but of the other erasure's entry.
            let (_, second) = try await erase(fixture, tenant: acme)
            var other = mine
            other.auditProof = second.auditProof
            #expect(failure(other, [key])?.contains("is not the certificate's audit_head") == true)
            #expect(failure(second, [key]) == nil)
        }
    }

    @Test(
        "killed between the erasure's commit and the proof's attachment, a rerun attaches it; the certificate verifies offline and reruns return the same"
    )
    func resumesAfterKill() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let subject = try await fixture.subject(in: tenant)
            let requested = try await fixture.service.requestDeletion(tenant: tenant, subject: subject, actor: operatorActor)
            let id = try #require(UUID(uuidString: requested.request.id))
            _ = try await fixture.service.confirmDeletion(tenant: tenant, id: id, actor: operatorActor)
            // What a process killed right after the erasure's commit leaves: a signed certificate, no proof.
            let committed = try await fixture.service.erase(tenant: tenant, id: id, signingKey: fixture.signingKey).certificate
            #expect(committed.auditProof == nil)
            let stored = try #require(try await fixture.service.deletionStatus(tenant: tenant, id: id).certificate)
            #expect(stored.auditProof == nil && stored.verify(publicKey: fixture.signingKey.publicKey))
            #expect(failure(stored, [fixture.signingKey.publicKey])?.contains("carries no audit_proof") == true)
            // ... and one killed after checkpointing but before attaching; meanwhile the log grew and was checkpointed again.
            let checkpointer = AuditCheckpointer(pool: fixture.service.pool, signingKey: fixture.signingKey)
            let covering = try await checkpointer.checkpoint(tenant: tenant)
            #expect(covering.seq >= committed.auditHead.seq)
            _ = try await fixture.service.audit.append(tenant: tenant, AuditEvent(action: "test.later"))
            let later = try await checkpointer.checkpoint(tenant: tenant)
            #expect(later.seq > covering.seq)

            let resumed = try await fixture.service.processDeletion(tenant: tenant, id: id).certificate
            let proof = try #require(resumed.auditProof)
            #expect(proof.treeSize == covering.seq)  // the first covering checkpoint: the same proof whenever it is attached
            #expect(resumed.signature == committed.signature && resumed.withoutUnsignedAttachments() == committed)
            #expect(resumed.verify(publicKey: fixture.signingKey.publicKey))
            // Offline: the certificate as JSON, and the public key; nothing else.
            let file = try JSONEncoder().encode(resumed)
            let offline = try JSONDecoder().decode(DeletionCertificate.self, from: file)
            let verdict = try offline.verifyOffline(publicKeys: [fixture.signingKey.publicKey])
            #expect(verdict.hasPrefix("OK: deletion certificate \(id.lowercasedString) is signed"))
            // Reruns, and the status, return the same certificate; the sweep finds nothing to do.
            #expect(try await fixture.service.processDeletion(tenant: tenant, id: id).certificate == resumed)
            #expect(try await fixture.service.deletionStatus(tenant: tenant, id: id).certificate == resumed)
            let swept = try await fixture.service.attachMissingErasureProofs()
            #expect(swept.attached == 0 && swept.failed == 0)
        }
    }

    @Test("the worker's sweep attaches a proof a dead process left unattached")
    func sweepAttaches() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let subject = try await fixture.subject(in: tenant)
            let requested = try await fixture.service.requestDeletion(tenant: tenant, subject: subject, actor: operatorActor)
            let id = try #require(UUID(uuidString: requested.request.id))
            _ = try await fixture.service.confirmDeletion(tenant: tenant, id: id, actor: operatorActor)
            _ = try await fixture.service.erase(tenant: tenant, id: id, signingKey: fixture.signingKey)
            let swept = try await fixture.service.attachMissingErasureProofs()
            #expect(swept.attached == 1 && swept.failed == 0)
            let stored = try #require(try await fixture.service.deletionStatus(tenant: tenant, id: id).certificate)
            try stored.verifyOffline(publicKeys: [fixture.signingKey.publicKey])
        }
    }
}
