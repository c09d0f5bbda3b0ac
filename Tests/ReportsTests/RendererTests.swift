import Audit
import Foundation
import Testing

@testable import Reports

/// The builder and the renderers are pure: these tests need no database.
@Suite("Report builder and renderers, without a database")
struct RendererTests {
    static let tenant = UUID(uuidString: "0b8a4c57-55a3-4c1c-9a43-3b0e1e0b2f10")!
    static let now = ReportDate.parse("2026-05-10T12:00:00Z")!

    static func verification(valid: Bool = true) throws -> VerificationReport {
        let failures = valid ? "[]" : #"[{"kind": "hash_mismatch", "seq": 3, "detail": "stored hash differs"}]"#
        let json = """
            {"tenant_id": "\(tenant.uuidString.lowercased())", "entries_checked": 5, "checkpoints_checked": 0,
             "first_seq": 1, "last_seq": 5, "failures": \(failures)}
            """
        return try JSONDecoder().decode(VerificationReport.self, from: Data(json.utf8))
    }

    static func request(
        _ kind: RequestRecord.Kind, _ status: String, received: String, due: String, completed: String? = nil,
        certificate: String? = nil, reason: String? = nil, extended: String? = nil
    ) -> RequestRecord {
        RequestRecord(
            id: UUID(), kind: kind, status: status, requestedAt: ReportDate.parse(received)!, dueAt: ReportDate.parse(due)!,
            extendedDueAt: extended.flatMap { ReportDate.parse($0) }, extensionReason: reason,
            completedAt: completed.flatMap { ReportDate.parse($0) }, certificate: certificate,
            certificateSignature: certificate == nil ? nil : [UInt8](repeating: 7, count: 64))
    }

    static func inputs(valid: Bool = true, requests: [RequestRecord] = []) throws -> ReportInputs {
        ReportInputs(
            tenant: tenant, generatedAt: now, since: ReportDate.parse("2026-01-01"), until: now, requests: requests,
            verification: try verification(valid: valid))
    }

    @Test("the HTML is one self-contained file: no scripts, no external fonts, stylesheets or images")
    func htmlSelfContained() throws {
        let report = ReportBuilder.build(
            try Self.inputs(requests: [
                Self.request(.export, "processing", received: "2026-03-01T00:00:00Z", due: "2026-04-01T00:00:00Z")
            ]))
        let html = ReportRenderer.html(report)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(!html.contains("<script"))
        #expect(!html.contains("<link"))
        #expect(!html.contains("@import"))
        #expect(!html.contains("url("))
        #expect(!html.contains("<img"))
        let external = html.components(separatedBy: "http").count - 1
        let svgNamespaces = html.components(separatedBy: "xmlns=\"http://www.w3.org/2000/svg\"").count - 1
        #expect(external == svgNamespaces, "the only URLs are SVG namespaces")
        #expect(svgNamespaces >= 2, "a requests chart and an accesses chart")
        #expect(html.contains("@page"))
    }

    @Test("an overdue request is a critical alert in red above the first section, in HTML and Markdown")
    func overdueStandsOut() throws {
        let report = ReportBuilder.build(
            try Self.inputs(requests: [
                Self.request(.export, "processing", received: "2026-03-01T00:00:00Z", due: "2026-04-01T00:00:00Z"),
                Self.request(
                    .export, "completed", received: "2026-03-02T00:00:00Z", due: "2026-04-02T00:00:00Z", completed: "2026-03-05T00:00:00Z"),
            ]))
        #expect(report.requests.totals.overdue == 1)
        #expect(report.requests.overdue.first?.daysLate == 39.5)
        let html = ReportRenderer.html(report)
        let alert = try #require(html.range(of: "class=\"alert critical\""))
        #expect(alert.lowerBound < html.range(of: "<h2>1.")!.lowerBound)
        #expect(html.contains("#dc2626"))
        let markdown = ReportRenderer.markdown(report)
        #expect(markdown.components(separatedBy: "\n").prefix(6).contains { $0.contains("CRITICAL") && $0.contains("overdue") })
    }

    @Test("a clean report says so and has no critical alert")
    func cleanReport() throws {
        let report = ReportBuilder.build(try Self.inputs())
        #expect(report.alerts.allSatisfy { $0.severity != .critical })
        #expect(ReportRenderer.html(report).contains("Chain verified"))
        #expect(ReportRenderer.markdown(report).contains("Chain **verified**"))
        #expect(report.requests.months.map(\.month) == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"])
        #expect(report.secrets.timeline.bucket == "month")
    }

    @Test("text from the database is escaped in HTML and Markdown")
    func escaping() throws {
        let report = ReportBuilder.build(
            try Self.inputs(requests: [
                Self.request(
                    .deletion, "processing", received: "2026-04-20T00:00:00Z", due: "2026-05-20T00:00:00Z",
                    reason: "<script>alert(1)</script> | pipes", extended: "2026-06-20T00:00:00Z")
            ]))
        let html = ReportRenderer.html(report)
        #expect(!html.contains("<script>alert"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(ReportRenderer.markdown(report).contains("\\| pipes"))
    }

    @Test("certificates of other shapes are summarised; a failed verification is critical; garbage is not fatal")
    func certificateShapes() throws {
        let map = #"{"tables": {"public.projects": {"strategy": "delete", "count": 4}, "public.profiles": 2}, "verification": "failed"}"#
        let counts = #"{"counts": {"public.projects": 1}, "strategies": {"public.projects": "anonymize"}, "verified": true}"#
        let remaining =
            #"{"tables": [{"name": "public.x", "erasure": "delete", "deleted": 2}], "verification": {"remaining": {"public.x": 1}}}"#
        let requests = [map, counts, remaining, "[1, 2]", "not json"].enumerated().map { index, certificate in
            Self.request(
                .deletion, "completed", received: "2026-02-0\(index + 1)T00:00:00Z", due: "2026-03-01T00:00:00Z",
                completed: "2026-02-1\(index)T00:00:00Z", certificate: certificate)
        }
        let report = ReportBuilder.build(try Self.inputs(requests: requests))
        let summaries = report.erasures.certificates
        #expect(summaries.count == 5)
        #expect(summaries[0].verification == "failed")
        #expect(
            summaries[0].tables == [
                ErasedTable(table: "public.profiles", strategy: "unknown", rows: 2, ground: nil),
                ErasedTable(table: "public.projects", strategy: "delete", rows: 4, ground: nil),
            ])
        #expect(summaries[0].totalRows == 6)
        #expect(summaries[1].tables == [ErasedTable(table: "public.projects", strategy: "anonymize", rows: 1, ground: nil)])
        #expect(summaries[1].verification == "passed")
        #expect(summaries[2].verification == "failed" && summaries[2].verificationDetail == "1 subject rows remain")
        #expect(summaries[3].recognized == false && summaries[3].note == "the certificate is not a JSON object")
        #expect(summaries[4].recognized == false)
        #expect(
            report.alerts.contains {
                $0.severity == .critical && $0.section == "erasures" && $0.message == "2 erasures failed verification"
            })
        _ = ReportRenderer.html(report)
        _ = ReportRenderer.markdown(report)
    }

    @Test("a past period is judged at its end: a request completed later counts as open and overdue then")
    func pastPeriod() throws {
        var inputs = try Self.inputs(requests: [
            Self.request(
                .export, "completed", received: "2026-01-05T00:00:00Z", due: "2026-02-05T00:00:00Z", completed: "2026-02-20T00:00:00Z"),
            Self.request(
                .export, "completed", received: "2026-01-10T00:00:00Z", due: "2026-02-10T00:00:00Z", completed: "2026-01-12T00:00:00Z"),
            Self.request(.export, "received", received: "2026-02-20T00:00:00Z", due: "2026-03-20T00:00:00Z"),
        ])
        inputs.until = ReportDate.parse("2026-02-14", asEnd: true)!
        let report = ReportBuilder.build(inputs)
        #expect(report.period.until == "2026-02-15T00:00:00Z")
        #expect(report.period.asOf == "2026-02-15T00:00:00Z")
        #expect(
            report.requests.totals
                == RequestTotals(
                    received: 2, completed: 1, completedOnTime: 1, completedLate: 0, open: 1, overdue: 1, extended: 0,
                    closedWithoutCompletion: 0))
        #expect(report.requests.months.map(\.month) == ["2026-01", "2026-02"])
        #expect(report.requests.months.last?.overdue == 1)
        #expect(report.requests.overdue.first?.daysLate == 10)
        #expect(report.requests.medianDaysToComplete == 2)
    }

    @Test("the JSON form carries version 1 and snake_case keys, and reads back to the same report")
    func jsonRoundTrip() throws {
        let report = ReportBuilder.build(try Self.inputs(valid: false))
        let text = ReportRenderer.json(report)
        #expect(text.contains("\"version\" : 1"))
        #expect(text.contains("\"entries_not_checkpointed\""))
        #expect(text.contains("\"completed_on_time\""))
        #expect(!text.contains("\"median_days_to_complete\""), "absent values are left out, not null")
        #expect(try ReportRenderer.decode(json: Data(text.utf8)) == report)
        #expect(report.alerts.first?.section == "integrity")
    }
}

@Suite("Chart scale")
struct ChartScaleTests {
    @Test("the chart's scale puts its four grid lines on whole numbers")
    func wholeGridLines() {
        #expect(ReportRenderer.niceCeiling(1) == 4)
        #expect(ReportRenderer.niceCeiling(9) == 12)
        #expect(ReportRenderer.niceCeiling(41) == 48)
        #expect(ReportRenderer.niceCeiling(130) == 160)
        for value in 1...500 {
            let scale = ReportRenderer.niceCeiling(value)
            #expect(scale >= value && scale % 4 == 0)
        }
    }
}
