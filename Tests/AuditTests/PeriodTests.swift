import Audit
import Foundation
import Postgres
import Sodium
import TestSupport
import Testing

/// `AuditBundle.verifyPeriod` (the auditor report's reader): only the part of the chain between
/// the trusted checkpoints around a period is read, and everything read is checked as strictly
/// as a whole-chain verification checks it.
@Suite("Period verification")
struct PeriodTests {
    /// 30 entries stamped in January (seq 1…10), February (11…20) and March (21…30) 2026, a
    /// checkpoint every 5 entries.
    private func withMonths(_ body: (AuditFixture) async throws -> Void) async throws {
        try await AuditFixture.with { fixture in
            for month in 1...3 {
                for half in 0..<2 {
                    try await fixture.seed((0..<5).map { String(format: "2026-%02d-%02dT10:00:00.000000Z", month, 1 + half * 10 + $0) })
                    _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
                }
            }
            #expect(try await fixture.verifyLive().isValid)
            try await body(fixture)
        }
    }

    private func february(_ fixture: AuditFixture, trusted: [String: [UInt8]]? = nil) async throws -> AuditBundle.PeriodVerification {
        try await AuditBundle.verifyPeriod(
            pool: fixture.gateway, tenant: fixture.tenant, since: date("2026-02-01T00:00:00Z"), until: date("2026-03-01T00:00:00Z"),
            trustedKeys: trusted ?? fixture.trustedKeys, keep: { _ in true })
    }

    @Test("an entry edited inside the period fails its verification at that seq")
    func tamperedInside() async throws {
        try await withMonths { fixture in
            try await fixture.tamper(
                "UPDATE public.audit_events SET details = '{\"n\": 999}' WHERE tenant_id = $1 AND seq = 15", [fixture.tenant])
            let period = try await february(fixture)
            #expect(!period.report.isValid)
            #expect(period.report.has(.hashMismatch, at: 15))
        }
    }

    @Test("an entry of the period re-stamped out of it is still read, and fails its hash")
    func restampedOut() async throws {
        try await withMonths { fixture in
            try await fixture.tamper(
                "UPDATE public.audit_events SET at = '2030-01-01T00:00:00Z' WHERE tenant_id = $1 AND seq = 20", [fixture.tenant])
            let period = try await february(fixture)
            #expect(period.report.has(.hashMismatch, at: 20))
            #expect(!period.entries.contains { $0.seq == 20 })
        }
    }

    @Test("a stored hash replaced inside the period: hash mismatch there and a broken link after it")
    func rehashedInside() async throws {
        try await withMonths { fixture in
            try await fixture.tamper(
                """
                UPDATE public.audit_events SET outcome = 'denied',
                    hash = sha256(hash) WHERE tenant_id = $1 AND seq = 12
                """, [fixture.tenant])
            let period = try await february(fixture)
            #expect(period.report.has(.brokenLink, at: 13))
            #expect(period.report.has(.hashMismatch, at: 12))
        }
    }

    @Test("a forged signature on the checkpoint before the period: reported, and the verification starts at an earlier trusted one")
    func forgedAnchor() async throws {
        try await withMonths { fixture in
            try await fixture.tamper(
                "UPDATE public.audit_checkpoints SET signature = set_byte(signature, 0, (get_byte(signature, 0) + 1) % 256) WHERE tenant_id = $1 AND seq = 10",
                [fixture.tenant])
            let period = try await february(fixture)
            #expect(period.report.has(.badSignature, at: 10))
            #expect(period.anchor == 5)
        }
    }

    @Test("checkpoints signed by a key the verifier does not trust anchor nothing: the period is verified from seq 1")
    func untrustedKeys() async throws {
        try await withMonths { fixture in
            let other = try Ed25519.SigningKey.generate()
            let period = try await february(fixture, trusted: AuditCheckpoint.trustedKeys([other.publicKey]))
            #expect(period.report.has(.unknownKey))
            #expect(period.anchor == nil && period.end == nil)
            #expect(period.report.firstSeq == 1 && period.report.lastSeq == 30)
        }
    }

    @Test("stored tree nodes that do not reproduce the anchor's signed root: the verification starts at seq 1 instead")
    func unanchoredTree() async throws {
        try await withMonths { fixture in
            // Entry hashes feed the tree's edge below level 8; an edited stored hash below the anchor breaks it.
            try await fixture.tamper(
                "UPDATE public.audit_events SET hash = sha256(hash) WHERE tenant_id = $1 AND seq = 3", [fixture.tenant])
            let period = try await february(fixture)
            #expect(period.anchor == nil)
            #expect(period.report.has(.hashMismatch, at: 3))
        }
    }

    @Test("a report over February reads February and the margins to the checkpoints around it, never the rest")
    func readsOnlyThePeriod() async throws {
        try await withMonths { fixture in
            let period = try await february(fixture)
            #expect(period.report.isValid)
            #expect(period.anchor == 10 && period.end == 25)
            // Entries 10 (the anchor's, against its signed head) through 25 (the first checkpoint
            // at or after the first March entry, 21): 16 rows of 30.
            #expect(period.rowsRead == 16)
            #expect(period.report.entriesChecked == 16 && period.report.firstSeq == 10 && period.report.lastSeq == 25)
            #expect(period.entries.map(\.seq) == Array(11...20))
            #expect(period.headSeq == 30)

            // An edit outside the period is not read by this report (the whole-chain verification finds it).
            try await fixture.tamper(
                "UPDATE public.audit_events SET details = '{\"n\": 999}' WHERE tenant_id = $1 AND seq IN (4, 28)", [fixture.tenant])
            let again = try await february(fixture)
            #expect(again.report.isValid && again.rowsRead == 16)
            let whole = try await fixture.verifyLive()
            #expect(whole.has(.hashMismatch, at: 4) && whole.has(.hashMismatch, at: 28))
        }
    }

    @Test("a period after the last entry reads from the last checkpoint to the head; one from the start reads from seq 1")
    func edges() async throws {
        try await withMonths { fixture in
            try await fixture.seed(["2026-04-02T10:00:00.000000Z", "2026-04-03T10:00:00.000000Z"])
            let later = try await AuditBundle.verifyPeriod(
                pool: fixture.gateway, tenant: fixture.tenant, since: date("2026-05-01T00:00:00Z"), until: date("2026-06-01T00:00:00Z"),
                trustedKeys: fixture.trustedKeys, keep: { _ in true })
            #expect(later.report.isValid && later.entries.isEmpty)
            #expect(later.anchor == 30 && later.end == nil && later.rowsRead == 3)

            let first = try await AuditBundle.verifyPeriod(
                pool: fixture.gateway, tenant: fixture.tenant, since: nil, until: date("2026-01-05T00:00:00Z"),
                trustedKeys: fixture.trustedKeys, keep: { _ in true })
            #expect(first.report.isValid && first.anchor == nil && first.end == 5)
            #expect(first.entries.map(\.seq) == [1, 2, 3, 4] && first.rowsRead == 5)

            // The last entry deleted (the head row still names it): the run to the head says so.
            try await fixture.tamper("DELETE FROM public.audit_events WHERE tenant_id = $1 AND seq = 32", [fixture.tenant])
            let cut = try await AuditBundle.verifyPeriod(
                pool: fixture.gateway, tenant: fixture.tenant, since: date("2026-04-01T00:00:00Z"), until: date("2026-06-01T00:00:00Z"),
                trustedKeys: fixture.trustedKeys, keep: { _ in true })
            #expect(cut.report.has(.truncated, at: 32))
        }
    }

    private func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
}
