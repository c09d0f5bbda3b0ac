import Audit
import Foundation
import Sodium

/// What a data subject gets back for every change of their consents: a receipt they can keep,
/// signed with the gateway's Ed25519 key (``SignedDocument``), that says what they consented to
/// (the full state after the change and what it was before), under which policy version, when, and
/// how it was collected — and which audit entry recorded it, so an auditor can find it in the chain.
/// It verifies offline with the public key alone; any edit breaks the signature.
public struct ConsentReceipt: SignedDocument, Sendable, Equatable {
    /// How the change reached the gateway.
    public struct Collection: Codable, Sendable, Equatable {
        /// Who made the change: `user:<id>` for the subject's own JWT, else the service key.
        public let actor: String
        public let ip: String?
        public let userAgent: String?
        public let requestID: String?

        enum CodingKeys: String, CodingKey {
            case actor, ip
            case userAgent = "user_agent"
            case requestID = "request_id"
        }
    }

    public struct AuditEntryReference: Codable, Sendable, Equatable {
        public let seq: Int64
        public let hash: String
    }

    public var format = "privacy-gateway-consent-receipt/1"
    public let tenant: String
    public let subject: String
    public let issuedAt: String
    public let policyVersion: String
    /// The consents and retention after the change.
    public let settings: PrivacySettings
    /// The same, before it.
    public let previous: PrivacySettings
    /// The fields that changed, sorted.
    public let changed: [String]
    public let collection: Collection
    public let auditEntry: AuditEntryReference
    /// Hex SHA-256 of the public key (as audit checkpoints and deletion certificates name keys).
    public let keyID: String
    public let publicKey: String
    public var signature: String?

    enum CodingKeys: String, CodingKey {
        case format, tenant, subject, settings, previous, changed, collection, signature
        case issuedAt = "issued_at"
        case policyVersion = "policy_version"
        case auditEntry = "audit_entry"
        case keyID = "key_id"
        case publicKey = "public_key"
    }
}

/// One consent change, as `GET /v1/privacy/settings/history` lists it (from the audit trail, which is
/// the settings' history).
public struct ConsentChange: Codable, Sendable, Equatable {
    public let seq: Int64
    public let at: String
    public let actor: String
    public let ip: String?
    public let userAgent: String?
    /// Field name → `{"from": …, "to": …}`.
    public let changed: [String: AuditValue]

    enum CodingKeys: String, CodingKey {
        case seq, at, actor, ip, changed
        case userAgent = "user_agent"
    }
}
