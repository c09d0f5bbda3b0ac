import Audit
import Foundation
import Policy

/// Everything a report is computed from, as read from the database (by ``ReportCollector``) or
/// made by hand in a test. ``ReportBuilder`` turns it into a ``ComplianceReport`` with no I/O.
public struct ReportInputs: Sendable {
    public var tenant: UUID
    /// The database clock when the records were read.
    public var generatedAt: Date
    public var since: Date?
    /// Exclusive end of the period.
    public var until: Date
    /// Every data-subject request of the tenant received before `until`.
    public var requests: [RequestRecord]
    /// `secret.*` entries in the period.
    public var secretEvents: [AuditEntry]
    /// `policy.denied` entries in the period.
    public var policyDenials: [AuditEntry]
    /// `privacy.settings_updated` entries in the period.
    public var settingsUpdates: [AuditEntry]
    /// The newest `keys.rotated` entry before `until`, if any.
    public var lastRotation: AuditEntry?
    /// Service pseudonym (`hmac:…`) → service name; nil when the report has no audit key.
    public var serviceNames: [String: String]?
    /// The tenant's secrets (metadata only), deleted ones included.
    public var secrets: [SecretRecord]
    public var tenantKeys: [TenantKeyRecord]
    public var subjectKeys: [SubjectKeyCount]
    public var consents: ConsentCounts
    /// The verification of the part of the chain that holds the period (``AuditBundle/verifyPeriod``).
    public var verification: VerificationReport
    /// Rows of `audit_events` the verification read (the period and the margins to its checkpoints).
    public var auditRowsRead: Int
    /// The trusted checkpoint the verification started from; nil when it started at seq 1.
    public var verifiedFromCheckpoint: Int64?
    /// The tenant's head seq when read; nil falls back to the last entry verified.
    public var headSeq: Int64?
    public var checkpoints: [CheckpointRecord]
    public var trustedKeysPinned: Bool
    /// Policy files with the live catalogue's drift and lint findings; nil when not checked.
    public var policy: PolicyStatus?
    /// Ed25519 public keys a deletion certificate's signature must verify with to count as signed
    /// (the signing key's public half, or the key the auditor holds); empty checks nothing.
    public var certificateKeys: [[UInt8]]

    public init(
        tenant: UUID, generatedAt: Date, since: Date?, until: Date, requests: [RequestRecord] = [],
        secretEvents: [AuditEntry] = [], policyDenials: [AuditEntry] = [], settingsUpdates: [AuditEntry] = [],
        lastRotation: AuditEntry? = nil, serviceNames: [String: String]? = nil, secrets: [SecretRecord] = [],
        tenantKeys: [TenantKeyRecord] = [], subjectKeys: [SubjectKeyCount] = [], consents: ConsentCounts = ConsentCounts(),
        verification: VerificationReport, checkpoints: [CheckpointRecord] = [], trustedKeysPinned: Bool = false,
        policy: PolicyStatus? = nil, certificateKeys: [[UInt8]] = [], auditRowsRead: Int = 0,
        verifiedFromCheckpoint: Int64? = nil, headSeq: Int64? = nil
    ) {
        self.certificateKeys = certificateKeys
        self.auditRowsRead = auditRowsRead
        self.verifiedFromCheckpoint = verifiedFromCheckpoint
        self.headSeq = headSeq
        self.tenant = tenant
        self.generatedAt = generatedAt
        self.since = since
        self.until = until
        self.requests = requests
        self.secretEvents = secretEvents
        self.policyDenials = policyDenials
        self.settingsUpdates = settingsUpdates
        self.lastRotation = lastRotation
        self.serviceNames = serviceNames
        self.secrets = secrets
        self.tenantKeys = tenantKeys
        self.subjectKeys = subjectKeys
        self.consents = consents
        self.verification = verification
        self.checkpoints = checkpoints
        self.trustedKeysPinned = trustedKeysPinned
        self.policy = policy
    }
}

/// One row of `public.data_export_requests` or `public.data_deletion_requests`.
public struct RequestRecord: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case export, deletion }
    public var id: UUID
    public var kind: Kind
    public var status: String
    public var requestedAt: Date
    public var dueAt: Date
    public var extendedDueAt: Date?
    public var extensionReason: String?
    public var extendedAt: Date?
    public var completedAt: Date?
    /// The deletion certificate's JSON text, as stored.
    public var certificate: String?
    /// The stored signature (`certificate_signature`), checked against the certificate, never trusted.
    public var certificateSignature: [UInt8]?

    public init(
        id: UUID, kind: Kind, status: String, requestedAt: Date, dueAt: Date, extendedDueAt: Date? = nil,
        extensionReason: String? = nil, extendedAt: Date? = nil, completedAt: Date? = nil, certificate: String? = nil,
        certificateSignature: [UInt8]? = nil
    ) {
        self.id = id
        self.kind = kind
        self.status = status
        self.requestedAt = requestedAt
        self.dueAt = dueAt
        self.extendedDueAt = extendedDueAt
        self.extensionReason = extensionReason
        self.extendedAt = extendedAt
        self.completedAt = completedAt
        self.certificate = certificate
        self.certificateSignature = certificateSignature
    }

    /// The deadline that applies: the extended one when extended.
    public var deadline: Date { extendedDueAt ?? dueAt }
    public var isCompleted: Bool { status == "completed" || status == "partially_completed" }
    /// Denied, canceled or failed.
    public var isClosedWithoutCompletion: Bool { ["denied", "canceled", "failed"].contains(status) }
}

/// A secret's metadata (never its value).
public struct SecretRecord: Sendable, Hashable {
    public var id: UUID
    public var serviceName: String
    public var keyVersion: Int
    public var updatedAt: Date
    public var lastUsedAt: Date?
    public var deletedAt: Date?

    public init(id: UUID, serviceName: String, keyVersion: Int, updatedAt: Date, lastUsedAt: Date? = nil, deletedAt: Date? = nil) {
        self.id = id
        self.serviceName = serviceName
        self.keyVersion = keyVersion
        self.updatedAt = updatedAt
        self.lastUsedAt = lastUsedAt
        self.deletedAt = deletedAt
    }
}

/// One row of `keyring.tenant_keys` (without key material).
public struct TenantKeyRecord: Sendable, Hashable {
    public var version: Int
    public var rootVersion: Int
    public var createdAt: Date
    public var retiredAt: Date?

    public init(version: Int, rootVersion: Int, createdAt: Date, retiredAt: Date? = nil) {
        self.version = version
        self.rootVersion = rootVersion
        self.createdAt = createdAt
        self.retiredAt = retiredAt
    }
}

/// Subject keys per tenant-key version.
public struct SubjectKeyCount: Sendable, Hashable {
    public var kekVersion: Int
    public var live: Int
    public var shredded: Int

    public init(kekVersion: Int, live: Int, shredded: Int) {
        self.kekVersion = kekVersion
        self.live = live
        self.shredded = shredded
    }
}

/// Current consent flags over `public.user_privacy_settings`.
public struct ConsentCounts: Sendable, Hashable {
    public var subjects: Int
    /// Column name → subjects with it true.
    public var granted: [String: Int]

    public init(subjects: Int = 0, granted: [String: Int] = [:]) {
        self.subjects = subjects
        self.granted = granted
    }

    /// The consent columns of `user_privacy_settings`, in report order.
    public static let columns = ["data_processing_consent", "marketing_consent", "analytics_consent", "third_party_consent"]
}

/// A checkpoint's metadata.
public struct CheckpointRecord: Sendable, Hashable {
    public var seq: Int64
    /// Canonical `signed_at` text.
    public var signedAt: String
    public var keyID: String

    public init(seq: Int64, signedAt: String, keyID: String) {
        self.seq = seq
        self.signedAt = signedAt
        self.keyID = keyID
    }
}

/// The policy files and what they say about the live database.
public struct PolicyStatus: Sendable {
    public var policies: PolicySet
    /// Nil when the live catalogue was not read.
    public var drift: DriftReport?
    public var lint: [LintFinding]

    public init(policies: PolicySet, drift: DriftReport?, lint: [LintFinding]) {
        self.policies = policies
        self.drift = drift
        self.lint = lint
    }

    /// Compares `policies` with a live catalogue (`pg_policies`, `relrowsecurity`) as
    /// `privacyctl policy check` and `policy lint --live` do.
    public init(policies: PolicySet, livePolicies: [LivePolicy], liveTables: [LiveTable]) {
        self.init(
            policies: policies, drift: policies.drift(live: livePolicies, tables: liveTables),
            lint: policies.lint(liveTables: liveTables))
    }
}

/// The period bounds `privacyctl report` and `GET /v1/audit/report` accept.
public enum ReportDate {
    /// The times a period bound may name: 1970-01-01 to the end of 9999-12-31 (UTC). Outside it a
    /// date would be refused by Postgres (year 0) or mean nothing for an audit trail.
    public static let range = Date(timeIntervalSince1970: 0)...Date(timeIntervalSince1970: 253_402_300_800)

    /// `YYYY-MM-DD` (a whole UTC day) or an RFC 3339 time with or without fraction, within
    /// ``range``; nil otherwise. A bare date as the end of a period includes that day (its end is
    /// the next midnight).
    public static func parse(_ text: String, asEnd: Bool = false) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        let date: Date?
        if text.count == 10, let day = formatter.date(from: text) {
            date = asEnd ? day.addingTimeInterval(86_400) : day
        } else {
            date = ReportTime.parse(text)
        }
        return date.flatMap { range.contains($0) ? $0 : nil }
    }
}
