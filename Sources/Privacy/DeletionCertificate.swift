import Audit
import Foundation
import Sodium

/// Proof of an erasure (DESIGN.md §9), signed with the Ed25519 key of `PRIVACY_SIGNING_KEY_FILE`
/// (``SignedDocument``).
public struct DeletionCertificate: SignedDocument, Sendable, Equatable {
    public struct Table: Codable, Sendable, Equatable {
        public let table: String
        /// delete | anonymize | retain
        public let strategy: String
        /// Rows deleted or anonymised; for retain, rows kept.
        public let rows: Int64
        /// The legal ground of a retained table.
        public let ground: String?
    }

    public struct Verification: Codable, Sendable, Equatable {
        public let passed: Bool
        /// Subject rows still present per non-retained table (empty when passed).
        public let remaining: [String: Int64]
        /// destroyed | absent | present
        public let subjectKey: String
        public let subjectRegistered: Bool

        enum CodingKeys: String, CodingKey {
            case passed, remaining
            case subjectKey = "subject_key"
            case subjectRegistered = "subject_registered"
        }
    }

    public struct AuditHead: Codable, Sendable, Equatable {
        public let seq: Int64
        public let hash: String
    }

    public var version = 1
    public let requestID: String
    public let tenant: String
    public let subject: String
    public let policyVersion: String
    public let requestedAt: String
    public let completedAt: String
    public let tables: [Table]
    public let verification: Verification
    public let auditHead: AuditHead
    /// Hex SHA-256 of the public key (as audit checkpoints name keys).
    public let keyID: String
    public let publicKey: String
    /// Ids of the export requests whose archives the erasure removed (absent in certificates
    /// issued before archives were tracked; the signature covers it when present).
    public var archivesRemoved: [String]? = nil
    /// Every processor of the tenant (data held outside Postgres) with its answer and when it came:
    /// confirmed, refused, or timed_out at its deadline (absent when the tenant declared none, and in
    /// certificates issued before processors; the signature covers it when present).
    public var processors: [ProcessorOutcome]? = nil
    /// completed, or partially_completed when verification found rows left or a required processor
    /// did not confirm by its deadline (absent in certificates issued before processors).
    public var outcome: String? = nil
    public var signature: String?
    /// The RFC 9162 inclusion proof of the erasure's audit entry (``auditHead``) in the first
    /// signed checkpoint (C2SP note) covering it: with it the certificate alone proves the erasure
    /// was recorded in the tenant's log (``verifyOffline(publicKeys:)``). Attached after the erasure
    /// commits and a checkpoint covers its entry, so ``signature`` does not cover it: it
    /// authenticates itself (the note is signed by the log key, the entry hashes to its leaf) and
    /// is bound to the certificate by the entry's seq, hash, tenant, request and subject.
    /// Absent in certificates issued before proofs were attached, or while the attachment is pending.
    public var auditProof: InclusionProof? = nil

    enum CodingKeys: String, CodingKey {
        case version, tenant, subject, tables, verification, signature, processors, outcome
        case requestID = "request_id"
        case policyVersion = "policy_version"
        case requestedAt = "requested_at"
        case completedAt = "completed_at"
        case auditHead = "audit_head"
        case keyID = "key_id"
        case publicKey = "public_key"
        case archivesRemoved = "archives_removed"
        case auditProof = "audit_proof"
    }

    public func withoutUnsignedAttachments() -> DeletionCertificate {
        var copy = self
        copy.auditProof = nil
        return copy
    }

    /// Checks, with only the pinned public key(s) of the gateway (its `PRIVACY_SIGNING_KEY_FILE`
    /// half, and retired ones), that the certificate is signed and that its erasure was recorded
    /// in the tenant's audit log: the audit proof's signed checkpoint verifies, the erasure entry
    /// is in it, and that entry is this certificate's (tenant, seq and hash of ``auditHead``,
    /// action, request, subject). Returns a one-line verdict.
    ///
    /// - Throws: ``PrivacyError`` (`.verificationFailed`) naming the first failed check.
    @discardableResult
    public func verifyOffline(publicKeys: [[UInt8]]) throws -> String {
        func fail(_ message: String) -> PrivacyError { PrivacyError(.verificationFailed, message) }
        guard publicKeys.contains(where: { verify(publicKey: $0) }) else {
            throw fail("the certificate's signature does not verify with the given public key(s) (altered, or signed by another key)")
        }
        guard let proof = auditProof else {
            throw fail(
                "the certificate carries no audit_proof: it was issued before erasures were proven in the audit log, or its proof is not attached yet (run the deletion again to attach it)"
            )
        }
        guard proof.tenantID.lowercasedString == tenant else {
            throw fail(
                "the audit proof is from tenant \(proof.tenantID.lowercasedString)'s log, not from the certificate's tenant \(tenant)")
        }
        var errors: [String] = []
        var verdict: String?
        for key in publicKeys {
            do {
                verdict = try AuditProofs.verify(proof, publicKey: key)
                break
            } catch let error as AuditError {
                errors.append(error.message)
            }
        }
        guard verdict != nil else {
            // With several keys, the reason that names the problem unless it was merely "not signed by this key".
            let message = errors.first { !$0.contains("no signature by") } ?? errors.first ?? "no public key given"
            throw fail("the audit proof does not verify: \(message)")
        }
        let entry = proof.entry.entry
        guard entry.seq == auditHead.seq, Hex.encode(entry.hash) == auditHead.hash.lowercased() else {
            throw fail(
                "the proven entry (seq \(entry.seq)) is not the certificate's audit_head (seq \(auditHead.seq), hash \(auditHead.hash))")
        }
        guard entry.action == "privacy.deletion_completed", entry.target == requestID,
            entry.details["request_id"] == .string(requestID), entry.details["user_id"] == .string(subject)
        else {
            throw fail("the proven entry \(entry.seq) is not the completion of erasure request \(requestID) of subject \(subject)")
        }
        return
            "OK: deletion certificate \(requestID) is signed, and its erasure (entry \(entry.seq)) is in tenant \(tenant)'s signed checkpoint of size \(proof.treeSize)"
    }

    public static func decode(json: String) throws -> DeletionCertificate {
        try JSONDecoder().decode(DeletionCertificate.self, from: Data(json.utf8))
    }
}
