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
    public var signature: String?

    enum CodingKeys: String, CodingKey {
        case version, tenant, subject, tables, verification, signature
        case requestID = "request_id"
        case policyVersion = "policy_version"
        case requestedAt = "requested_at"
        case completedAt = "completed_at"
        case auditHead = "audit_head"
        case keyID = "key_id"
        case publicKey = "public_key"
        case archivesRemoved = "archives_removed"
    }

    public static func decode(json: String) throws -> DeletionCertificate {
        try JSONDecoder().decode(DeletionCertificate.self, from: Data(json.utf8))
    }
}
