import Audit
import Foundation
import Policy
import Postgres
import Sodium

/// Reads everything a tenant's report needs from the database, and builds the report.
///
/// Reads go through the `reports.*` views (migrations 0010, 0013), `keyring.*` and the audit tables, so
/// the same code works as the owner (`privacyctl report`) and as the gateway's login
/// (`GET /v1/audit/report`). The period's part of the chain is verified with
/// ``AuditBundle/verifyPeriod(pool:tenant:since:until:trustedKeys:keep:)``.
public struct ReportCollector: Sendable {
    public let pool: ConnectionPool
    /// With audit keys, service pseudonyms in `secret.*` entries are resolved to names.
    public let keys: AuditKeys?
    /// Checkpoint keys the auditor trusts, pinned from configuration or `--trusted-key`; never
    /// the keys stored with the checkpoints.
    public let trustedKeys: [String: [UInt8]]
    /// Public keys deletion certificates are verified with; a certificate counts as signed only
    /// when its signature verifies with one of them (never because a signature is stored).
    public let certificateKeys: [[UInt8]]

    public init(pool: ConnectionPool, keys: AuditKeys? = nil, trustedKeys: [String: [UInt8]], certificateKeys: [[UInt8]] = []) {
        self.pool = pool
        self.keys = keys
        self.trustedKeys = trustedKeys
        self.certificateKeys = certificateKeys
    }

    /// The report for `tenant` over `[since, until)` (`until` defaults to now).
    public func report(tenant: UUID, since: Date? = nil, until: Date? = nil, policy: PolicyStatus? = nil) async throws -> ComplianceReport {
        ReportBuilder.build(try await inputs(tenant: tenant, since: since, until: until, policy: policy))
    }

    /// The raw records (for tests and tools that build their own report).
    public func inputs(tenant: UUID, since: Date?, until: Date?, policy: PolicyStatus?) async throws -> ReportInputs {
        if let since, let until, since >= until {
            throw ReportError(.invalidPeriod, "the period's start must be before its end")
        }
        do {
            let now: Date = try await pool.pipeline(tenant: tenant, [Statement("SELECT now() AS now")])[0].first!.decode("now")
            let end = until ?? now
            let statements = [
                Statement(
                    """
                    SELECT kind, id, status, requested_at, due_at, extended_due_at, extension_reason, extended_at,
                           completed_at, certificate::text AS certificate, certificate_signature
                    FROM reports.data_subject_requests WHERE tenant_id = $1 AND requested_at < $2
                    ORDER BY requested_at, id
                    """, [tenant, end]),
                Statement(
                    """
                    SELECT id, service_name, key_version, updated_at, last_used_at, deleted_at
                    FROM reports.secret_inventory WHERE tenant_id = $1 ORDER BY service_name, id
                    """, [tenant]),
                Statement(
                    """
                    SELECT count(*) AS subjects,
                           count(*) FILTER (WHERE data_processing_consent) AS data_processing_consent,
                           count(*) FILTER (WHERE marketing_consent) AS marketing_consent,
                           count(*) FILTER (WHERE analytics_consent) AS analytics_consent,
                           count(*) FILTER (WHERE third_party_consent) AS third_party_consent
                    FROM reports.consent_settings WHERE tenant_id = $1
                    """, [tenant]),
                Statement(
                    "SELECT version, root_version, created_at, retired_at FROM keyring.tenant_keys WHERE tenant_id = $1 ORDER BY version",
                    [tenant]),
                Statement(
                    """
                    SELECT kek_version, count(*) FILTER (WHERE destroyed_at IS NULL) AS live,
                           count(*) FILTER (WHERE destroyed_at IS NOT NULL) AS shredded
                    FROM keyring.subject_keys WHERE tenant_id = $1 GROUP BY kek_version ORDER BY kek_version
                    """, [tenant]),
            ]
            let results = try await pool.withConnection(tenant: tenant) { try await $0.pipeline(statements) }
            let requests = try results[0].rows.map { row in
                RequestRecord(
                    id: try row.decode("id"), kind: RequestRecord.Kind(rawValue: try row.decode("kind")) ?? .export,
                    status: try row.decode("status"), requestedAt: try row.decode("requested_at"), dueAt: try row.decode("due_at"),
                    extendedDueAt: try row.decodeIfPresent("extended_due_at"), extensionReason: try row.decodeIfPresent("extension_reason"),
                    extendedAt: try row.decodeIfPresent("extended_at"), completedAt: try row.decodeIfPresent("completed_at"),
                    certificate: try row.decodeIfPresent("certificate"),
                    certificateSignature: try row.decodeIfPresent("certificate_signature"))
            }
            let secrets = try results[1].rows.map { row in
                SecretRecord(
                    id: try row.decode("id"), serviceName: try row.decode("service_name"), keyVersion: try row.decode("key_version"),
                    updatedAt: try row.decode("updated_at"), lastUsedAt: try row.decodeIfPresent("last_used_at"),
                    deletedAt: try row.decodeIfPresent("deleted_at"))
            }
            var consents = ConsentCounts()
            if let row = results[2].first {
                consents.subjects = try row.decode("subjects")
                for column in ConsentCounts.columns { consents.granted[column] = try row.decode(column) }
            }
            let tenantKeys = try results[3].rows.map { row in
                TenantKeyRecord(
                    version: try row.decode("version"), rootVersion: try row.decode("root_version"),
                    createdAt: try row.decode("created_at"), retiredAt: try row.decodeIfPresent("retired_at"))
            }
            let subjectKeys = try results[4].rows.map { row in
                SubjectKeyCount(
                    kekVersion: try row.decode("kek_version"), live: try row.decode("live"), shredded: try row.decode("shredded"))
            }

            // The period's entries come from one verified pass over the part of the chain that holds
            // them (AuditBundle.verifyPeriod): from the last trusted checkpoint before the period to
            // the first one after it, never the whole chain.
            let reported: Set<String> = ["policy.denied", "privacy.settings_updated"]
            let period = try await AuditBundle.verifyPeriod(
                pool: pool, tenant: tenant, since: since, until: end, trustedKeys: trustedKeys,
                keep: { $0.action.hasPrefix("secret.") || reported.contains($0.action) })
            let secretEvents = period.entries.filter { $0.action.hasPrefix("secret.") }
            let denials = period.entries.filter { $0.action == "policy.denied" }
            let settings = period.entries.filter { $0.action == "privacy.settings_updated" }
            var verification = period.report
            // The newest rotation before the period's end may lie before it: one indexed read, its
            // hash checked here (its place in the chain is vouched for by the checkpoints after it).
            let rotation = try await AuditReader.latest(pool: pool, tenant: tenant, action: "keys.rotated", before: end)
            if let rotation, rotation.computedHash() != rotation.hash {
                verification.failures.append(
                    VerificationFailure(
                        .hashMismatch, seq: rotation.seq,
                        "stored hash \(Hex.encode(rotation.hash)) ≠ recomputed \(Hex.encode(rotation.computedHash())) (the entry was edited)"
                    ))
            }

            var names: [String: String]?
            if let keys {
                let tenantKey = try keys.tenantKey(tenant)
                var resolved: [String: String] = [:]
                for name in Set(secrets.map { $0.serviceName }) {
                    resolved[AuditKeys.pseudonym(name, tenantKey: tenantKey)] = name
                }
                names = resolved
            }

            let checkpoints = try await AuditReader.checkpoints(pool: pool, tenant: tenant).map {
                CheckpointRecord(seq: $0.seq, signedAt: $0.signedAt, keyID: $0.keyID)
            }
            return ReportInputs(
                tenant: tenant, generatedAt: now, since: since, until: end, requests: requests, secretEvents: secretEvents,
                policyDenials: denials, settingsUpdates: settings, lastRotation: rotation, serviceNames: names, secrets: secrets,
                tenantKeys: tenantKeys, subjectKeys: subjectKeys, consents: consents, verification: verification,
                checkpoints: checkpoints, trustedKeysPinned: true, policy: policy, certificateKeys: certificateKeys,
                auditRowsRead: period.rowsRead, verifiedFromCheckpoint: period.anchor, headSeq: period.headSeq)
        } catch let error as ReportError {
            throw error
        } catch {
            throw ReportError(.database, "reading the tenant's records failed", underlying: error)
        }
    }
}
