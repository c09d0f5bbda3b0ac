import Audit
import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Policy
import Postgres
import Sodium
import Tenancy
import TestSupport
import Testing

@testable import Gateway
@testable import Privacy
@testable import Reports

@Suite("Compliance report over a seeded tenant")
struct ReportScenarioTests {
    private func policyStatus(_ pool: ConnectionPool) async throws -> PolicyStatus {
        let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
        let live = try await LiveSchema.read(from: pool)
        return PolicyStatus(policies: policies, livePolicies: live.policies, liveTables: live.tables)
    }

    /// The report as JSON text, read back: what a machine consumer sees.
    private func jsonReport(_ s: Scenario, keys: AuditKeys?, certificateKeys: [[UInt8]]? = nil) async throws -> (
        ComplianceReport, [String: Any]
    ) {
        let report = try await ReportCollector(
            pool: s.gateway, keys: keys, trustedKeys: s.trustedKeys, certificateKeys: certificateKeys ?? [s.signingKey.publicKey]
        ).report(
            tenant: s.tenant, since: Scenario.since, policy: try await policyStatus(s.gateway))
        let text = ReportRenderer.json(report)
        let decoded = try ReportRenderer.decode(json: Data(text.utf8))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        return (decoded, object)
    }

    @Test("the JSON figures match the hand count of the seeded scenario")
    func figuresMatchScenario() async throws {
        try await Scenario.with { s in
            let (report, object) = try await jsonReport(s, keys: s.keys)
            #expect(object["version"] as? Int == 1)
            #expect((object["requests"] as? [String: Any])?["totals"] != nil)

            // 1. Requests
            let totals = report.requests.totals
            #expect(
                totals
                    == RequestTotals(
                        received: 6, completed: 4, completedOnTime: 2, completedLate: 2, open: 1, overdue: 1, extended: 2,
                        closedWithoutCompletion: 1))
            #expect(report.requests.medianDaysToComplete == 41.5)
            #expect(report.requests.maxDaysToComplete == 64)
            let months = Dictionary(uniqueKeysWithValues: report.requests.months.map { ($0.month, $0) })
            #expect(report.requests.months.first?.month == "2026-01")
            #expect(months["2026-01"] == RequestMonth(month: "2026-01", received: 3, completed: 1, completedLate: 0, overdue: 0))
            #expect(months["2026-02"] == RequestMonth(month: "2026-02", received: 1, completed: 1, completedLate: 1, overdue: 0))
            #expect(months["2026-03"] == RequestMonth(month: "2026-03", received: 2, completed: 2, completedLate: 1, overdue: 0))
            #expect(months["2026-04"] == RequestMonth(month: "2026-04", received: 0, completed: 0, completedLate: 0, overdue: 1))
            let id = { (name: String) in s.requests[name]!.uuidString.lowercased() }
            #expect(report.requests.late.map(\.requestId) == [id("E2"), id("D3")])
            #expect(report.requests.late.map(\.daysLate) == [10, 5])
            #expect(report.requests.late.map(\.extended) == [false, true])
            #expect(report.requests.overdue.map(\.requestId) == [id("E3")])
            #expect(report.requests.extensions.map(\.requestId) == [id("D3"), id("D1")])
            #expect(report.requests.extensions.map(\.reason) == ["awaiting identity documents", "14 linked accounts to trace"])
            #expect(report.requests.extensions.first?.extendedDueAt == "2026-03-20T00:00:00Z")

            // 2. Erasures: D3 (unknown certificate shape) then D1, by completion.
            #expect(report.erasures.certificates.map(\.requestId) == [id("D1"), id("D3")])
            let d1 = try #require(report.erasures.certificates.first)
            #expect(d1.recognized && d1.signed && d1.hasCertificate && d1.signature == "valid")
            #expect(d1.verification == "passed")
            #expect(d1.totalRows == 5)
            #expect(d1.auditHead == "seq 12 · ab12")
            #expect(
                d1.tables == [
                    ErasedTable(
                        table: "public.data_deletion_requests", strategy: "retain", rows: 1, ground: "Art. 17(3)(e) proof of erasure"),
                    ErasedTable(table: "public.user_privacy_settings", strategy: "delete", rows: 1, ground: nil),
                    ErasedTable(table: "public.user_secrets", strategy: "delete", rows: 3, ground: nil),
                ])
            let d3 = try #require(report.erasures.certificates.last)
            #expect(!d3.recognized && d3.verification == "unknown" && !d3.signed && d3.signature == "missing")
            #expect(d3.note?.contains("format") == true)
            #expect(
                report.erasures.retentionGrounds.contains {
                    $0.table == "public.data_deletion_requests" && $0.basis == "Art. 17(3)(e) proof of erasure" && $0.until == "3 years"
                })

            // 3. Secrets
            let secrets = report.secrets
            #expect(secrets.namesResolved)
            #expect(secrets.totals == AccessCount(name: "all", total: 9, success: 6, denied: 2, failure: 1))
            let unknown = try s.keys.pseudonym("no-such-service", tenant: s.tenant)
            #expect(
                secrets.byService
                    == [
                        AccessCount(name: "openai", total: 5, success: 3, denied: 2, failure: 0),
                        AccessCount(name: "github", total: 1, success: 1, denied: 0, failure: 0),
                        AccessCount(name: unknown, total: 1, success: 0, denied: 0, failure: 1),
                        AccessCount(name: "stripe", total: 1, success: 1, denied: 0, failure: 0),
                    ].sorted { ($1.total, $0.name) < ($0.total, $1.name) })
            let alice = "user:" + s.alice.uuidString.lowercased(), bob = "user:" + s.bob.uuidString.lowercased()
            let serviceKey = "service_key:" + s.serviceKey.uuidString.lowercased()
            #expect(
                Set(secrets.byActor) == [
                    AccessCount(name: alice, total: 5, success: 5, denied: 0, failure: 0),
                    AccessCount(name: bob, total: 2, success: 0, denied: 2, failure: 0),
                    AccessCount(name: serviceKey, total: 2, success: 1, denied: 0, failure: 1),
                ])
            #expect(secrets.denied.map(\.seq) == [5, 6])
            #expect(secrets.denied.allSatisfy { $0.actor == bob && $0.service == "openai" && $0.action == "secret.read" })
            #expect(secrets.timeline.bucket == "month")
            #expect(secrets.timeline.points.map { $0.success + $0.denied + $0.failure }.reduce(0, +) == 9)
            #expect(secrets.unused.map(\.service) == ["stripe", "github"])
            #expect(secrets.unused.map(\.daysUnused) == [200, 120])
            #expect(secrets.keys.tenantKeys.map(\.version) == [1, 2])
            #expect(secrets.keys.tenantKeys.map(\.subjectKeys) == [0, 1])
            #expect(secrets.keys.tenantKeys.map(\.shreddedSubjectKeys) == [1, 0])
            #expect(secrets.keys.tenantKeys.first?.retiredAt == "2026-06-01T00:00:00Z")
            #expect(
                secrets.keys.secretsByKeyVersion == [
                    KeyVersionCount(keyVersion: 1, secrets: 2), KeyVersionCount(keyVersion: 2, secrets: 1),
                ])
            #expect(secrets.keys.lastRotation?.source == "audit")
            #expect(secrets.keys.lastRotation?.fromVersion == 1)
            #expect(secrets.keys.lastRotation?.toVersion == 2)

            // 4. Policy
            #expect(report.policy.deniedTotal == 4)
            #expect(
                report.policy.denials == [
                    PolicyDenialCount(table: "public.projects", command: "select", policy: "no policy allows select for anon", count: 3),
                    PolicyDenialCount(table: "public.user_secrets", command: "update", policy: "Users can update own secrets", count: 1),
                ])
            #expect(report.policy.drift.checked && report.policy.drift.clean)
            #expect(report.policy.lint.checked && report.policy.lint.errors == 0)

            // 5. Integrity: 16 entries, a checkpoint at 9, 7 after it.
            let integrity = report.integrity
            #expect(integrity.valid)
            #expect(integrity.entriesChecked == 16)
            #expect(integrity.checkpoints == 1 && integrity.lastCheckpointSeq == 9)
            #expect(integrity.entriesNotCheckpointed == 7)
            #expect(integrity.signingKeys.map(\.keyId) == [AuditCheckpoint.keyID(of: s.signingKey.publicKey)])

            // 6. Consents
            #expect(report.consents.subjects == 3)
            #expect(report.consents.rates.map(\.granted) == [2, 2, 0, 0])
            #expect(report.consents.rates.first?.rate == 0.67)
            #expect(report.consents.settingsUpdates == 2)
            #expect(
                report.consents.changes.first { $0.consent == "marketing_consent" }
                    == ConsentChange(consent: "marketing_consent", granted: 2, withdrawn: 0))
            #expect(
                report.consents.changes.first { $0.consent == "analytics_consent" }
                    == ConsentChange(consent: "analytics_consent", granted: 0, withdrawn: 1))

            // scripts/render-report-png --scenario looks at this report.
            if let directory = ProcessInfo.processInfo.environment["REPORT_SAMPLE_DIR"] {
                for format in ReportFormat.allCases {
                    try Data(ReportRenderer.render(report, as: format).utf8)
                        .write(to: URL(fileURLWithPath: directory).appendingPathComponent("scenario.\(format.rawValue)"))
                }
            }

            // Alerts: the overdue request is critical; the late ones a warning; integrity is fine.
            #expect(report.alerts.first == ReportAlert(severity: .critical, section: "requests", message: "1 data-subject request overdue"))
            #expect(!report.alerts.contains { $0.section == "integrity" })
        }
    }

    @Test("without the root key, services show as their audit pseudonyms")
    func pseudonymsWithoutKey() async throws {
        try await Scenario.with { s in
            let (report, _) = try await jsonReport(s, keys: nil)
            #expect(!report.secrets.namesResolved)
            let openai = try s.keys.pseudonym("openai", tenant: s.tenant)
            #expect(report.secrets.byService.first == AccessCount(name: openai, total: 5, success: 3, denied: 2, failure: 0))
            #expect(report.secrets.byService.allSatisfy { $0.name.hasPrefix("hmac:") })
        }
    }

    @Test("a hand-edited audit row shows as failed integrity, in red at the top of every form")
    func tamperedChainFails() async throws {
        try await Scenario.with { s in
            try await s.tamper(seq: 5)
            let (report, object) = try await jsonReport(s, keys: s.keys)
            #expect(!report.integrity.valid)
            #expect(report.integrity.failures.contains { $0.kind == "hash_mismatch" && $0.seq == 5 })
            #expect((object["integrity"] as? [String: Any])?["valid"] as? Bool == false)
            let first = try #require(report.alerts.first)
            #expect(first.severity == .critical && first.section == "integrity")
            let html = ReportRenderer.html(report)
            let alertAt = try #require(html.range(of: "<div class=\"alert critical\"><strong>CRITICAL</strong> · integrity"))
            let requestsAt = try #require(html.range(of: "<h2>1. Data-subject requests"))
            #expect(alertAt.lowerBound < requestsAt.lowerBound)
            #expect(ReportRenderer.markdown(report).contains("🔴 **CRITICAL** (integrity): Audit chain verification FAILED"))
            if let directory = ProcessInfo.processInfo.environment["REPORT_SAMPLE_DIR"] {
                try Data(html.utf8).write(to: URL(fileURLWithPath: directory).appendingPathComponent("tampered.html"))
            }
        }
    }

    @Test("a certificate with a forged signature, or signed with another key, shows as unsigned and invalid in the JSON report")
    func forgedCertificateSignature() async throws {
        try await Scenario.with { s in
            let d1 = s.requests["D1"]!
            func summary(_ certificateKeys: [[UInt8]]? = nil) async throws -> ([String: Any], ComplianceReport) {
                let (report, object) = try await jsonReport(s, keys: s.keys, certificateKeys: certificateKeys)
                let erasures = try #require((object["erasures"] as? [String: Any])?["certificates"] as? [[String: Any]])
                return (try #require(erasures.first { $0["request_id"] as? String == d1.uuidString.lowercased() }), report)
            }
            #expect(try await summary().0["signed"] as? Bool == true)
            // Without a public key nothing counts as signed.
            let unchecked = try await summary([]).0
            #expect(unchecked["signed"] as? Bool == false && unchecked["signature"] as? String == "unchecked")

            // One byte of the stored signature flipped.
            try await s.owner.query(
                "UPDATE public.data_deletion_requests SET certificate_signature = set_byte(certificate_signature, 0, (get_byte(certificate_signature, 0) + 1) % 256) WHERE id = $1",
                [d1])
            let (flipped, report) = try await summary()
            #expect(flipped["signed"] as? Bool == false)
            #expect(flipped["signature"] as? String == "invalid")
            #expect(
                report.alerts.contains { $0.severity == .critical && $0.section == "erasures" && $0.message.contains("invalid signature") })
            #expect(ReportRenderer.markdown(report).contains("INVALID"))

            // The same certificate signed with another key (certificate and column agree, the key is not the one configured).
            let other = try Ed25519.SigningKey.generate()
            var forged = try s.certificate()
            forged = try DeletionCertificate(
                requestID: forged.requestID, tenant: forged.tenant, subject: forged.subject, policyVersion: forged.policyVersion,
                requestedAt: forged.requestedAt, completedAt: forged.completedAt,
                tables: [.init(table: "public.user_secrets", strategy: "delete", rows: 999_999, ground: nil)],
                verification: forged.verification, auditHead: forged.auditHead, keyID: Hex.encode(SHA256.hash(other.publicKey)),
                publicKey: Hex.encode(other.publicKey), archivesRemoved: [], signature: nil
            ).signed(with: other)
            try await s.owner.query(
                "UPDATE public.data_deletion_requests SET certificate = $2::jsonb, certificate_signature = $3 WHERE id = $1",
                [d1, String(decoding: try Scenario.canonical(forged), as: UTF8.self), Hex.decode(forged.signature!)!])
            let otherKey = try await summary().0
            #expect(otherKey["signed"] as? Bool == false && otherKey["signature"] as? String == "invalid")

            // The configured key's signature over different content (a forged count) does not verify either.
            var altered = try s.certificate()
            let signature = altered.signature!
            altered = try DeletionCertificate(
                requestID: altered.requestID, tenant: altered.tenant, subject: altered.subject, policyVersion: altered.policyVersion,
                requestedAt: altered.requestedAt, completedAt: altered.completedAt,
                tables: [.init(table: "public.user_secrets", strategy: "delete", rows: 999_999, ground: nil)],
                verification: altered.verification, auditHead: altered.auditHead, keyID: altered.keyID, publicKey: altered.publicKey,
                archivesRemoved: [], signature: signature)
            try await s.owner.query(
                "UPDATE public.data_deletion_requests SET certificate = $2::jsonb, certificate_signature = $3 WHERE id = $1",
                [d1, String(decoding: try Scenario.canonical(altered), as: UTF8.self), Hex.decode(signature)!])
            let alteredSummary = try await summary().0
            #expect(alteredSummary["signed"] as? Bool == false && alteredSummary["signature"] as? String == "invalid")
        }
    }

    @Test("a report over part of the trail reads from the last trusted checkpoint before it, and fails on an entry edited inside it")
    func periodReadsFromCheckpoint() async throws {
        try await Scenario.with { s in
            // The scenario's trail: 16 entries, a checkpoint at 9; the period starts at entry 12.
            let since: Date = try await s.owner.query(
                "SELECT at FROM public.audit_events WHERE tenant_id = $1 AND seq = 12", [s.tenant]
            ).first!.decode("at")
            let collector = ReportCollector(pool: s.gateway, keys: s.keys, trustedKeys: s.trustedKeys)
            let inputs = try await collector.inputs(tenant: s.tenant, since: since, until: nil, policy: nil)
            #expect(inputs.verification.isValid)
            #expect(inputs.verifiedFromCheckpoint == 9 && inputs.headSeq == 16)
            // Entries 9 (held to the checkpoint's signed head) … 16: 8 rows of 16.
            #expect(inputs.auditRowsRead == 8)
            #expect(inputs.verification.firstSeq == 9 && inputs.verification.lastSeq == 16)
            #expect(inputs.secretEvents.isEmpty && inputs.policyDenials.map(\.seq) == [12, 13] && inputs.settingsUpdates.count == 2)
            #expect(inputs.lastRotation?.seq == 16)

            // An edit before the checkpoint is not read by this report; one inside the period fails it.
            try await s.tamper(seq: 5)
            #expect(try await collector.inputs(tenant: s.tenant, since: since, until: nil, policy: nil).verification.isValid)
            try await s.tamper(seq: 13)
            let report = try await collector.report(tenant: s.tenant, since: since)
            #expect(!report.integrity.valid)
            #expect(report.integrity.failures.contains { $0.kind == "hash_mismatch" && $0.seq == 13 })
            #expect(report.integrity.verifiedFromCheckpoint == 9 && report.integrity.entriesNotCheckpointed == 7)
            #expect(report.alerts.first?.section == "integrity")
        }
    }

    @Test("canonical audit times are read by hand exactly as the ISO 8601 formatter reads them; other shapes fall back to it")
    func canonicalTimes() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for text in [
            "2026-01-05T10:00:00.000000Z", "2024-02-29T23:59:59.999000Z", "1970-01-01T00:00:00.000000Z", "2099-12-31T12:34:56.500000Z",
        ] {
            let fast = ReportTime.parseCanonical(text)
            #expect(fast != nil && abs(fast!.timeIntervalSince(formatter.date(from: text)!)) < 0.001, "\(text)")
        }
        #expect(abs(ReportTime.parseCanonical("2026-03-01T08:15:30.123456Z")!.timeIntervalSince1970 - 1_772_352_930.123456) < 0.000_01)
        for text in [
            "2025-02-29T00:00:00.000000Z", "2026-13-01T00:00:00.000000Z", "2026-01-01T24:00:00.000000Z", "2026-01-01T00:00:00Z",
            "2026-01-01 00:00:00.000000Z", "2026-01-01T00:00:00.00000aZ",
        ] {
            #expect(ReportTime.parseCanonical(text) == nil, "\(text)")
        }
        #expect(ReportTime.parse("2026-01-01T00:00:00Z") == formatter.date(from: "2026-01-01T00:00:00.000Z"))
    }

    @Test("a period that ends before it starts is refused")
    func invalidPeriod() async throws {
        try await Scenario.with { s in
            await #expect(throws: ReportError.self) {
                _ = try await ReportCollector(pool: s.gateway, trustedKeys: s.trustedKeys).report(
                    tenant: s.tenant, since: Scenario.since, until: Scenario.since)
            }
        }
    }

    @Test("GET /v1/audit/report answers the audit:read key with the tenant's report, as the gateway's login; others get 403")
    func httpRoute() async throws {
        try await Scenario.with { s in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let rootKey = try SecureBytes(count: 32)
            let services = GatewayServices(
                pool: s.gateway, policies: policies, authenticator: try RequestAuthenticator(pool: s.gateway, rootKey: rootKey),
                readiness: try Readiness(pool: s.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: AuditAppender(pool: s.gateway), auditKeys: s.keys, auditTrustedKeys: s.trustedKeys,
                certificatePublicKey: s.signingKey.publicKey)
            let registry = try ServiceKeyRegistry(pool: s.owner, rootKey: rootKey)
            let (_, auditor) = try await registry.create(tenant: s.tenant, scopes: [.auditRead], name: "auditor")
            let (_, dataKey) = try await registry.create(tenant: s.tenant, scopes: [.dataRead], name: "data")
            let app = Application(router: GatewayApplication.router(services: services))
            try await app.test(.router) { client in
                let json = try await client.execute(uri: "/v1/audit/report?since=2026-01-01", method: .get, headers: [.apikey: auditor]) {
                    ($0.status, $0.headers[.contentType], String(buffer: $0.body))
                }
                #expect(json.0 == .ok)
                #expect(json.1 == "application/json; charset=utf-8")
                let report = try ReportRenderer.decode(json: Data(json.2.utf8))
                #expect(report.requests.totals.received == 6)
                #expect(report.secrets.namesResolved && report.secrets.byService.first?.name == "openai")
                #expect(report.integrity.valid && report.integrity.entriesChecked == 16)
                #expect(report.erasures.certificates.first { $0.requestId == s.requests["D1"]!.uuidString.lowercased() }?.signed == true)

                let html = try await client.execute(uri: "/v1/audit/report?format=html", method: .get, headers: [.apikey: auditor]) {
                    ($0.status, $0.headers[.contentType], String(buffer: $0.body))
                }
                #expect(html.0 == .ok && html.1 == "text/html; charset=utf-8")
                #expect(html.2.hasPrefix("<!DOCTYPE html>"))

                // A forged signature (one byte flipped in the column) reads as unsigned through the route too.
                try await s.owner.query(
                    "UPDATE public.data_deletion_requests SET certificate_signature = set_byte(certificate_signature, 5, (get_byte(certificate_signature, 5) + 1) % 256) WHERE id = $1",
                    [s.requests["D1"]!])
                let forged = try await client.execute(uri: "/v1/audit/report?since=2026-01-01", method: .get, headers: [.apikey: auditor]) {
                    try ReportRenderer.decode(json: Data(String(buffer: $0.body).utf8))
                }
                let d1 = forged.erasures.certificates.first { $0.requestId == s.requests["D1"]!.uuidString.lowercased() }
                #expect(d1?.signed == false && d1?.signature == "invalid")

                let forbidden = try await client.execute(uri: "/v1/audit/report", method: .get, headers: [.apikey: dataKey]) { $0.status }
                #expect(forbidden == .forbidden)
                let badFormat = try await client.execute(uri: "/v1/audit/report?format=pdf", method: .get, headers: [.apikey: auditor]) {
                    $0.status
                }
                #expect(badFormat == .badRequest)
                let badDate = try await client.execute(uri: "/v1/audit/report?since=yesterday", method: .get, headers: [.apikey: auditor]) {
                    $0.status
                }
                #expect(badDate == .badRequest)
                let backwards = try await client.execute(
                    uri: "/v1/audit/report?since=2026-03-01&until=2026-02-01", method: .get, headers: [.apikey: auditor]
                ) { $0.status }
                #expect(backwards == .badRequest)
            }
        }
    }
}
