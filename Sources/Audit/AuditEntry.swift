import Foundation
import Sodium

/// How the recorded action ended.
public enum AuditOutcome: String, Sendable, Codable, CaseIterable {
    /// The action was carried out.
    case success
    /// A policy, scope or check refused it.
    case denied
    /// It was attempted and failed.
    case failure
}

/// What a caller records: one action, before it has a place in the chain.
///
/// `details` are stored as given (readable by auditors); `sensitive` values are replaced by
/// `hmac:<hex>` under the tenant's audit key (see ``AuditKeys``) and merged into `details`,
/// so anyone holding a value and the tenant key can check it, and nobody can read it back.
public struct AuditEvent: Sendable, Hashable {
    /// Who acted: a user id, `service_key:<id>`, `operator`, … (never a secret).
    public var actor: String?
    /// Dotted lowercase name, e.g. `secret.read`, `privacy.export_requested`, `policy.denied`.
    /// The prefixes `secret.` and `privacy.` feed the seed views `secret_audit_logs` and
    /// `privacy_audit_log`.
    public var action: String
    /// What was acted on, e.g. a table, a service name, a request id.
    public var target: String?
    /// How the action ended.
    public var outcome: AuditOutcome
    /// The HTTP request id, to correlate with logs.
    public var requestID: String?
    /// The client's IP address (IPv4 or IPv6, no prefix length).
    public var ip: String?
    /// The client's `User-Agent`.
    public var userAgent: String?
    /// Free-form, readable context. Keys must not collide with `sensitive`'s.
    public var details: [String: AuditValue]
    /// Values to pseudonymise before storing, keyed like `details`.
    public var sensitive: [String: String]

    public init(
        actor: String? = nil, action: String, target: String? = nil, outcome: AuditOutcome = .success,
        requestID: String? = nil, ip: String? = nil, userAgent: String? = nil,
        details: [String: AuditValue] = [:], sensitive: [String: String] = [:]
    ) {
        self.actor = actor
        self.action = action
        self.target = target
        self.outcome = outcome
        self.requestID = requestID
        self.ip = ip
        self.userAgent = userAgent
        self.details = details
        self.sensitive = sensitive
    }
}

/// One link of a tenant's chain, exactly as stored and as exported.
///
/// ``hash`` = SHA-256 of ``canonicalEncoding()``, which covers every other field including
/// ``prevHash`` (ENCODING.md). `at` is kept as the canonical text (RFC 3339, UTC,
/// microseconds) rather than a `Date`, so that what is hashed is exactly what is stored.
public struct AuditEntry: Sendable, Hashable {
    /// The tenant whose chain this is.
    public var tenantID: UUID
    /// Position in the chain: 1, 2, 3, … without gaps.
    public var seq: Int64
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    public var at: String
    /// See ``AuditEvent``; `details` hold sensitive values already as `hmac:<hex>`.
    public var actor: String?
    public var action: String
    public var target: String?
    /// The outcome's raw text (``AuditOutcome``); a string so a tampered value still verifies as a mismatch rather than failing to load.
    public var outcome: String
    public var requestID: String?
    public var ip: String?
    public var userAgent: String?
    public var details: [String: AuditValue]
    /// The previous entry's ``hash`` (``genesisHash`` at seq 1).
    public var prevHash: [UInt8]
    /// SHA-256 of ``canonicalEncoding()`` as stored; verification recomputes it.
    public var hash: [UInt8]

    /// An entry as read from storage or a bundle (the appender builds new ones itself).
    public init(
        tenantID: UUID, seq: Int64, at: String, actor: String?, action: String, target: String?,
        outcome: String, requestID: String?, ip: String?, userAgent: String?,
        details: [String: AuditValue], prevHash: [UInt8], hash: [UInt8]
    ) {
        self.tenantID = tenantID
        self.seq = seq
        self.at = at
        self.actor = actor
        self.action = action
        self.target = target
        self.outcome = outcome
        self.requestID = requestID
        self.ip = ip
        self.userAgent = userAgent
        self.details = details
        self.prevHash = prevHash
        self.hash = hash
    }

    /// The bytes whose SHA-256 is ``hash`` (ENCODING.md §2).
    public func canonicalEncoding() -> [UInt8] {
        var out = CanonicalEncoding.entryDomain
        out.reserveCapacity(256)
        CanonicalEncoding.appendField("v1", to: &out)
        CanonicalEncoding.appendField(tenantID.lowercasedString, to: &out)
        CanonicalEncoding.appendField(String(seq), to: &out)
        CanonicalEncoding.appendField(at, to: &out)
        CanonicalEncoding.appendField(actor, to: &out)
        CanonicalEncoding.appendField(action, to: &out)
        CanonicalEncoding.appendField(target, to: &out)
        CanonicalEncoding.appendField(outcome, to: &out)
        CanonicalEncoding.appendField(requestID, to: &out)
        CanonicalEncoding.appendField(ip, to: &out)
        CanonicalEncoding.appendField(userAgent, to: &out)
        CanonicalEncoding.appendField(CanonicalJSON.encode(details), to: &out)
        CanonicalEncoding.appendField(prevHash, to: &out)
        return out
    }

    /// SHA-256 of the canonical encoding: what ``hash`` must be.
    public func computedHash() -> [UInt8] {
        FastDigest.sha256(canonicalEncoding())
    }

    /// The hash before the first entry of every chain: 32 zero bytes.
    public static let genesisHash = [UInt8](repeating: 0, count: 32)
}

/// The length-prefixed framing shared by entries and checkpoints (ENCODING.md §1).
enum CanonicalEncoding {
    /// Domain-separation prefixes: an entry's bytes can never be mistaken for a checkpoint's.
    static let entryDomain = Array("privacy-gateway/audit-entry\n".utf8)
    static let checkpointDomain = Array("privacy-gateway/audit-checkpoint\n".utf8)

    /// Marks an absent (SQL NULL) field, distinct from the empty string.
    static let nullLength: UInt32 = 0xFFFF_FFFF

    static func appendField(_ bytes: [UInt8], to out: inout [UInt8]) {
        appendLength(UInt32(bytes.count), to: &out)
        out.append(contentsOf: bytes)
    }

    static func appendField(_ text: String?, to out: inout [UInt8]) {
        guard let text else {
            appendLength(nullLength, to: &out)
            return
        }
        // No intermediate array: verification encodes every entry of a chain (~13 fields each).
        appendLength(UInt32(text.utf8.count), to: &out)
        out.append(contentsOf: text.utf8)
    }

    private static func appendLength(_ length: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(length >> 24))
        out.append(UInt8(length >> 16 & 0xFF))
        out.append(UInt8(length >> 8 & 0xFF))
        out.append(UInt8(length & 0xFF))
    }
}
