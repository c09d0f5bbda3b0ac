import Foundation

/// One tenant's compliance report for a period (issue #8): a plain value, built by
/// ``ReportBuilder`` from what ``ReportCollector`` read, rendered by ``ReportRenderer``.
///
/// Its JSON form is documented in `Sources/Reports/SCHEMA.md`; keys are the property names in
/// snake_case (``ReportRenderer/json(_:)``). Times are RFC 3339 UTC strings with seconds,
/// durations are days with two decimals. ``version`` changes whenever a field changes meaning
/// or disappears; new fields may appear without a version change.
public struct ComplianceReport: Codable, Sendable, Hashable {
    /// The schema version this code writes.
    public static let currentVersion = 1

    public var version: Int
    /// The tenant id, lowercase.
    public var tenantId: String
    public var generatedAt: String
    public var period: ReportPeriod
    /// What needs attention, most severe first; the renderers put these at the top.
    public var alerts: [ReportAlert]
    public var requests: RequestsSection
    public var erasures: ErasuresSection
    public var secrets: SecretsSection
    public var policy: PolicySection
    public var integrity: IntegritySection
    public var consents: ConsentsSection
}

/// The period covered: `[since, until)`. `asOf` = the earlier of `until` and the time the report
/// was made; "open", "overdue" and "unused" are judged at `asOf`.
public struct ReportPeriod: Codable, Sendable, Hashable {
    /// Absent: from the tenant's first record.
    public var since: String?
    public var until: String
    public var asOf: String
}

public struct ReportAlert: Codable, Sendable, Hashable {
    public enum Severity: String, Codable, Sendable, Hashable {
        /// Integrity failed, a request is overdue, an erasure did not verify.
        case critical
        /// Late completions, drift, lint errors, no checkpoint yet.
        case warning
    }
    public var severity: Severity
    /// The section it is about: `requests`, `erasures`, `secrets`, `policy`, `integrity`, `consents`.
    public var section: String
    public var message: String
}

// MARK: - 1. Data-subject requests

public struct RequestsSection: Codable, Sendable, Hashable {
    /// The rule every figure here is judged against.
    public var deadlineRule: String
    public var totals: RequestTotals
    /// One entry per calendar month (UTC) of the period, oldest first.
    public var months: [RequestMonth]
    /// Days from receipt to completion, over the requests completed in the period.
    public var medianDaysToComplete: Double?
    public var maxDaysToComplete: Double?
    /// Every extended request in scope, with its reason.
    public var extensions: [RequestExtension]
    /// Requests completed in the period after their deadline (the extended one, if extended).
    public var late: [LateRequest]
    /// Requests still open at `as_of` whose deadline has passed.
    public var overdue: [LateRequest]
}

public struct RequestTotals: Codable, Sendable, Hashable {
    /// Received in the period.
    public var received: Int
    /// Completed (or partially completed) in the period.
    public var completed: Int
    public var completedOnTime: Int
    public var completedLate: Int
    /// Open at `as_of` (received before it, not completed, denied, canceled or failed).
    public var open: Int
    /// Open at `as_of` and past the deadline.
    public var overdue: Int
    /// Requests in scope that were extended.
    public var extended: Int
    /// Denied, canceled or failed among the requests in scope.
    public var closedWithoutCompletion: Int
}

public struct RequestMonth: Codable, Sendable, Hashable {
    /// `YYYY-MM` (UTC).
    public var month: String
    public var received: Int
    public var completed: Int
    public var completedLate: Int
    /// Open at `as_of`, past the deadline, with the deadline in this month.
    public var overdue: Int
}

public struct RequestExtension: Codable, Sendable, Hashable {
    public var requestId: String
    /// `export` or `deletion`.
    public var kind: String
    public var status: String
    public var receivedAt: String
    public var dueAt: String
    public var extendedDueAt: String
    public var extendedAt: String?
    public var reason: String
}

public struct LateRequest: Codable, Sendable, Hashable {
    public var requestId: String
    public var kind: String
    public var status: String
    public var receivedAt: String
    /// The deadline that applied: `extended_due_at` when extended, else `due_at`.
    public var deadline: String
    public var extended: Bool
    public var completedAt: String?
    /// Completion (or `as_of`, for overdue requests) minus deadline.
    public var daysLate: Double
}

// MARK: - 2. Erasures

public struct ErasuresSection: Codable, Sendable, Hashable {
    /// One per deletion request in scope that completed or carries a certificate.
    public var certificates: [ErasureSummary]
    /// Tables whose policy retains a subject's rows on erasure, with the ground.
    public var retentionGrounds: [RetentionGround]
}

public struct ErasureSummary: Codable, Sendable, Hashable {
    public var requestId: String
    public var status: String
    public var completedAt: String?
    /// A certificate is stored.
    public var hasCertificate: Bool
    /// The certificate's Ed25519 signature verifies with a configured public key (`signature == "valid"`).
    public var signed: Bool
    /// `valid` (verifies with a configured public key), `invalid` (forged, altered, signed by
    /// another key, or a certificate this gateway does not issue), `missing` (no signature) or
    /// `unchecked` (the report was made without a public key).
    public var signature: String
    /// The certificate had a shape this report understands; if not, `note` says what was found.
    public var recognized: Bool
    public var tables: [ErasedTable]
    public var totalRows: Int
    /// `passed`, `failed` or `unknown`.
    public var verification: String
    public var verificationDetail: String?
    public var auditHead: String?
    public var note: String?
}

public struct ErasedTable: Codable, Sendable, Hashable {
    public var table: String
    /// `delete`, `anonymize`, `retain` or whatever the certificate says.
    public var strategy: String
    public var rows: Int?
    /// For retained rows: the legal ground (from the certificate, else the policy file).
    public var ground: String?
}

public struct RetentionGround: Codable, Sendable, Hashable {
    public var table: String
    public var basis: String
    public var until: String
}

// MARK: - 3. Secrets

public struct SecretsSection: Codable, Sendable, Hashable {
    /// Service pseudonyms were resolved to names (the report was made with the root key).
    public var namesResolved: Bool
    public var totals: AccessCount
    public var byActor: [AccessCount]
    public var byService: [AccessCount]
    public var byAction: [AccessCount]
    /// Every denied attempt in the period.
    public var denied: [DeniedAccess]
    public var timeline: AccessTimeline
    public var unusedThresholdDays: Int
    /// Live secrets not used (nor updated) for `unused_threshold_days` or more at `as_of`.
    public var unused: [UnusedSecret]
    public var keys: KeyStatus
}

public struct AccessCount: Codable, Sendable, Hashable {
    /// Actor, service (name, or `hmac:…` pseudonym when unresolved) or action.
    public var name: String
    public var total: Int
    public var success: Int
    public var denied: Int
    public var failure: Int
}

public struct DeniedAccess: Codable, Sendable, Hashable {
    public var seq: Int64
    public var at: String
    public var actor: String?
    public var action: String
    public var service: String?
}

public struct AccessTimeline: Codable, Sendable, Hashable {
    /// `day` for periods up to 92 days, else `month`.
    public var bucket: String
    public var points: [AccessPoint]
}

public struct AccessPoint: Codable, Sendable, Hashable {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    public var period: String
    public var success: Int
    public var denied: Int
    public var failure: Int
}

public struct UnusedSecret: Codable, Sendable, Hashable {
    public var secretId: String
    public var service: String
    public var lastUsedAt: String?
    public var updatedAt: String
    public var daysUnused: Int
}

public struct KeyStatus: Codable, Sendable, Hashable {
    public var tenantKeys: [TenantKeyVersion]
    /// Live secrets per subject-key version.
    public var secretsByKeyVersion: [KeyVersionCount]
    public var lastRotation: KeyRotation?
}

public struct TenantKeyVersion: Codable, Sendable, Hashable {
    public var version: Int
    public var rootVersion: Int
    public var createdAt: String
    public var retiredAt: String?
    /// Subject keys wrapped under this version (not shredded).
    public var subjectKeys: Int
    /// Shredded subject keys that were wrapped under this version.
    public var shreddedSubjectKeys: Int
}

public struct KeyVersionCount: Codable, Sendable, Hashable {
    public var keyVersion: Int
    public var secrets: Int
}

public struct KeyRotation: Codable, Sendable, Hashable {
    public var at: String
    public var fromVersion: Int?
    public var toVersion: Int?
    /// `audit` (a `keys.rotated` entry) or `tenant_keys` (the newest key's creation).
    public var source: String
}

// MARK: - 4. Policy

public struct PolicySection: Codable, Sendable, Hashable {
    public var deniedTotal: Int
    /// `policy.denied` entries in the period by table, command and reason.
    public var denials: [PolicyDenialCount]
    public var drift: DriftStatus
    public var lint: LintStatus
}

public struct PolicyDenialCount: Codable, Sendable, Hashable {
    public var table: String
    public var command: String
    /// The policy or reason recorded with the denial.
    public var policy: String
    public var count: Int
}

public struct DriftStatus: Codable, Sendable, Hashable {
    /// False when the report was made without the policy files or the live catalogue.
    public var checked: Bool
    public var clean: Bool
    public var tables: [DriftedTable]
}

public struct DriftedTable: Codable, Sendable, Hashable {
    public var table: String
    public var rlsDisabled: Bool
    public var missing: [String]
    public var extra: [String]
    public var differing: [String]
}

public struct LintStatus: Codable, Sendable, Hashable {
    public var checked: Bool
    public var errors: Int
    public var warnings: Int
    public var findings: [LintItem]
}

public struct LintItem: Codable, Sendable, Hashable {
    public var severity: String
    public var code: String
    public var table: String
    public var policy: String?
    public var message: String
}

// MARK: - 5. Audit integrity

public struct IntegritySection: Codable, Sendable, Hashable {
    /// The part of the chain holding the period verified (from the last trusted checkpoint before
    /// it to the first after it, or the head): hashes, links, contiguity, checkpoint signatures
    /// and roots, head when reached.
    public var valid: Bool
    public var entriesChecked: Int
    public var firstSeq: Int64?
    public var lastSeq: Int64?
    public var failures: [IntegrityFailure]
    public var checkpoints: Int
    public var lastCheckpointSeq: Int64?
    public var lastCheckpointAt: String?
    public var lastVerifiedCheckpoint: Int64?
    /// The trusted checkpoint the verification started from (nil: from seq 1).
    public var verifiedFromCheckpoint: Int64?
    /// Entries after the last signed checkpoint (not yet covered by a signature).
    public var entriesNotCheckpointed: Int64
    public var signingKeys: [SigningKeyUse]
    /// Checkpoint keys were pinned (configuration or `--trusted-key`), not read from the database
    /// they verify. Always true for reports made by ``ReportCollector``.
    public var trustedKeysPinned: Bool
}

public struct IntegrityFailure: Codable, Sendable, Hashable {
    public var kind: String
    public var seq: Int64?
    public var detail: String
}

public struct SigningKeyUse: Codable, Sendable, Hashable {
    public var keyId: String
    public var checkpoints: Int
    public var firstSignedAt: String
    public var lastSignedAt: String
}

// MARK: - 6. Consents

public struct ConsentsSection: Codable, Sendable, Hashable {
    /// Subjects with privacy settings.
    public var subjects: Int
    public var rates: [ConsentRate]
    /// Consent changes recorded by `privacy.settings_updated` in the period.
    public var changes: [ConsentChange]
    public var settingsUpdates: Int
}

public struct ConsentRate: Codable, Sendable, Hashable {
    /// Column name, e.g. `marketing_consent`.
    public var consent: String
    public var granted: Int
    public var total: Int
    /// granted / total, two decimals (0 when there are no subjects).
    public var rate: Double
}

public struct ConsentChange: Codable, Sendable, Hashable {
    public var consent: String
    /// false → true.
    public var granted: Int
    /// true → false.
    public var withdrawn: Int
}
