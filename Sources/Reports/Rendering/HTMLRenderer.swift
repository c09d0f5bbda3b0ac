import Foundation
import Privacy

extension ReportRenderer {
    /// One self-contained HTML file: inline CSS, inline SVG charts, no scripts, no fonts to fetch.
    /// Sized for A4 and kept from splitting tables and charts across printed pages.
    public static func html(_ report: ComplianceReport) -> String {
        var body = ""
        func add(_ html: String) { body += html + "\n" }
        func table(_ header: [String], _ rows: [[String]], numeric: Set<Int> = []) -> String {
            var html = "<table><thead><tr>"
            for (index, title) in header.enumerated() {
                html += "<th\(numeric.contains(index) ? " class=\"num\"" : "")>\(HTMLText.escape(title))</th>"
            }
            html += "</tr></thead><tbody>"
            for row in rows {
                html += "<tr>"
                for (index, value) in row.enumerated() { html += "<td\(numeric.contains(index) ? " class=\"num\"" : "")>\(value)</td>" }
                html += "</tr>"
            }
            return html + "</tbody></table>"
        }
        func code(_ text: String) -> String { "<code>\(HTMLText.escape(text))</code>" }
        func e(_ text: String?) -> String { HTMLText.escape(text ?? "–") }

        let requests = report.requests, totals = requests.totals
        let secrets = report.secrets, policy = report.policy, integrity = report.integrity, consents = report.consents

        // Header and alerts
        add(
            "<header><h1>Compliance report</h1><p class=\"meta\">Tenant \(code(report.tenantId)) · period "
                + "\(e(report.period.since.map(shortTime) ?? "from the beginning")) → \(e(shortTime(report.period.until))) · as of \(e(shortTime(report.period.asOf)))"
                + " · generated \(e(shortTime(report.generatedAt))) · times in UTC · schema v\(report.version)</p></header>")
        if report.alerts.isEmpty {
            add("<div class=\"alert ok\"><strong>No alerts.</strong> Audit chain verified; no request overdue.</div>")
        } else {
            for alert in report.alerts {
                add(
                    "<div class=\"alert \(alert.severity.rawValue)\"><strong>\(alert.severity == .critical ? "CRITICAL" : "Warning")</strong> · "
                        + "\(HTMLText.escape(alert.section)) — \(HTMLText.escape(alert.message))</div>")
            }
        }

        // Summary tiles
        func tile(_ label: String, _ value: String, _ state: String = "") -> String {
            "<div class=\"tile \(state)\"><div class=\"value\">\(value)</div><div class=\"label\">\(HTMLText.escape(label))</div></div>"
        }
        add(
            "<section class=\"tiles\">"
                + tile("audit chain", integrity.valid ? "verified" : "FAILED", integrity.valid ? "good" : "bad")
                + tile("requests overdue", "\(totals.overdue)", totals.overdue > 0 ? "bad" : "good")
                + tile("completed late", "\(totals.completedLate)", totals.completedLate > 0 ? "warn" : "good")
                + tile("median time to complete", days(requests.medianDaysToComplete))
                + tile("secret accesses denied", "\(secrets.totals.denied)", secrets.totals.denied > 0 ? "warn" : "")
                + tile(
                    "policy drift",
                    policy.drift.checked ? (policy.drift.clean ? "none" : "\(policy.drift.tables.count) tables") : "not checked",
                    policy.drift.checked ? (policy.drift.clean ? "good" : "warn") : "")
                + "</section>")

        // 1. Requests
        add("<section><h2>1. Data-subject requests</h2><p class=\"note\">\(HTMLText.escape(requests.deadlineRule))</p>")
        add(
            table(
                ["Received", "Completed", "On time", "Late", "Open", "Overdue", "Extended", "Denied / canceled / failed", "Median", "Max"],
                [
                    [
                        "\(totals.received)", "\(totals.completed)", "\(totals.completedOnTime)", "\(totals.completedLate)",
                        "\(totals.open)",
                        totals.overdue > 0 ? "<span class=\"bad\">\(totals.overdue)</span>" : "0", "\(totals.extended)",
                        "\(totals.closedWithoutCompletion)",
                        days(requests.medianDaysToComplete), days(requests.maxDaysToComplete),
                    ]
                ],
                numeric: Set(0..<10)))
        add(
            "<figure>" + requestsChart(requests.months)
                + "<figcaption>Requests per month against the deadline: received, completed on time, "
                + "completed late, and open past the deadline (by deadline month).</figcaption></figure>")
        if !requests.overdue.isEmpty {
            add(
                "<h3 class=\"bad\">Overdue</h3>"
                    + table(
                        ["Request", "Kind", "Status", "Received", "Deadline", "Days late"],
                        requests.overdue.map {
                            [
                                code(shortID($0.requestId)), e($0.kind), e($0.status), e(shortTime($0.receivedAt)),
                                e(shortTime($0.deadline)) + ($0.extended ? " <span class=\"tag\">extended</span>" : ""),
                                "<span class=\"bad\">\(String(format: "%.2f", $0.daysLate))</span>",
                            ]
                        }, numeric: [5]))
        }
        if !requests.late.isEmpty {
            add(
                "<h3>Completed late</h3>"
                    + table(
                        ["Request", "Kind", "Received", "Deadline", "Completed", "Days late"],
                        requests.late.map {
                            [
                                code(shortID($0.requestId)), e($0.kind), e(shortTime($0.receivedAt)),
                                e(shortTime($0.deadline)) + ($0.extended ? " <span class=\"tag\">extended</span>" : ""),
                                e(shortTime($0.completedAt)),
                                String(format: "%.2f", $0.daysLate),
                            ]
                        }, numeric: [5]))
        }
        if !requests.extensions.isEmpty {
            add(
                "<h3>Extensions</h3>"
                    + table(
                        ["Request", "Kind", "Status", "Due", "Extended to", "Reason"],
                        requests.extensions.map {
                            [
                                code(shortID($0.requestId)), e($0.kind), e($0.status), e(shortTime($0.dueAt)),
                                e(shortTime($0.extendedDueAt)), e($0.reason),
                            ]
                        }))
        }
        add("</section>")

        // 2. Erasures
        add("<section><h2>2. Erasures</h2>")
        if report.erasures.certificates.isEmpty { add("<p>No erasures in the period.</p>") }
        for erasure in report.erasures.certificates {
            let verdict = erasure.verification == "passed" ? "good" : erasure.verification == "failed" ? "bad" : "warn"
            add(
                "<div class=\"card\"><p><strong>Request \(code(shortID(erasure.requestId)))</strong> · \(e(erasure.status)) · completed \(e(shortTime(erasure.completedAt)))"
                    + " · verification <span class=\"\(verdict)\">\(e(erasure.verification))</span>"
                    + (erasure.verificationDetail.map { " (\(HTMLText.escape($0)))" } ?? "")
                    + " · "
                    + (erasure.hasCertificate
                        ? ReportRenderer.signatureText(erasure, html: true) : "<span class=\"warn\">no certificate</span>")
                    + (erasure.auditHead.map { " · audit head \(code($0))" } ?? "") + "</p>")
            if let note = erasure.note { add("<p class=\"note\">\(HTMLText.escape(note))</p>") }
            if !erasure.tables.isEmpty {
                add(
                    table(
                        ["Table", "Strategy", "Rows", "Ground"],
                        erasure.tables.map {
                            [code($0.table), e($0.strategy), $0.rows.map(String.init) ?? "–", HTMLText.escape($0.ground ?? "")]
                        } + [["<strong>Total</strong>", "", "<strong>\(erasure.totalRows)</strong>", ""]], numeric: [2]))
            }
            add("</div>")
        }
        if !report.erasures.retentionGrounds.isEmpty {
            add(
                "<h3>Retained on erasure</h3>"
                    + table(
                        ["Table", "Ground", "Kept for"],
                        report.erasures.retentionGrounds.map {
                            [code($0.table), e($0.basis), e($0.until)]
                        }))
        }
        add("</section>")

        // 3. Secrets
        add(
            "<section><h2>3. Secrets</h2><p>\(secrets.totals.total) accesses: \(secrets.totals.success) succeeded, "
                + "<span class=\"\(secrets.totals.denied > 0 ? "warn" : "")\">\(secrets.totals.denied) denied</span>, \(secrets.totals.failure) failed."
                + (secrets.namesResolved
                    ? "" : " <span class=\"note\">Services are shown as audit pseudonyms: the report was made without the root key.</span>")
                + "</p>")
        add(
            "<figure>" + accessChart(secrets.timeline)
                + "<figcaption>Secret accesses per \(HTMLText.escape(secrets.timeline.bucket)): succeeded, denied, failed.</figcaption></figure>"
        )
        let counts: ([AccessCount], String) -> String = { rows, title in
            table(
                [title, "Total", "Success", "Denied", "Failed"],
                rows.map {
                    [
                        code(shortPseudonym($0.name)), "\($0.total)", "\($0.success)",
                        $0.denied > 0 ? "<span class=\"warn\">\($0.denied)</span>" : "0", "\($0.failure)",
                    ]
                }, numeric: [1, 2, 3, 4])
        }
        if !secrets.byService.isEmpty || !secrets.byActor.isEmpty {
            add(
                "<div class=\"columns\"><div>\(counts(secrets.byService, "Service"))</div><div>\(counts(secrets.byActor, "Actor"))</div></div>"
            )
        }
        if !secrets.denied.isEmpty {
            add(
                "<h3>Denied attempts</h3>"
                    + table(
                        ["Seq", "At", "Actor", "Action", "Service"],
                        secrets.denied.map {
                            [
                                "\($0.seq)", e(shortTime($0.at)), code($0.actor ?? "–"), e($0.action),
                                code(shortPseudonym($0.service ?? "–")),
                            ]
                        }, numeric: [0]))
        }
        add("<h3>Unused for \(secrets.unusedThresholdDays)+ days</h3>")
        add(
            secrets.unused.isEmpty
                ? "<p>None.</p>"
                : table(
                    ["Secret", "Service", "Last used", "Updated", "Days unused"],
                    secrets.unused.map {
                        [
                            code(shortID($0.secretId)), e($0.service), e($0.lastUsedAt.map(shortTime) ?? "never"),
                            e(shortTime($0.updatedAt)), "\($0.daysUnused)",
                        ]
                    }, numeric: [4]))
        add("<h3>Keys</h3>")
        add(
            secrets.keys.tenantKeys.isEmpty
                ? "<p>No tenant key in the keyring yet.</p>"
                : table(
                    ["Tenant key", "Root key", "Created", "Retired", "Subject keys", "Shredded"],
                    secrets.keys.tenantKeys.map {
                        [
                            "v\($0.version)", "v\($0.rootVersion)", e(shortTime($0.createdAt)), e($0.retiredAt.map(shortTime)),
                            "\($0.subjectKeys)", "\($0.shreddedSubjectKeys)",
                        ]
                    }, numeric: [4, 5]))
        var keyLine = "Last rotation: "
        if let rotation = secrets.keys.lastRotation {
            keyLine +=
                HTMLText.escape(shortTime(rotation.at)) + (rotation.fromVersion.map { " v\($0)" } ?? "")
                + (rotation.toVersion.map { " → v\($0)" } ?? "")
                + " <span class=\"note\">(\(HTMLText.escape(rotation.source)))</span>"
        } else {
            keyLine += "never"
        }
        if !secrets.keys.secretsByKeyVersion.isEmpty {
            keyLine +=
                " · secrets by subject-key version: "
                + secrets.keys.secretsByKeyVersion.map { "v\($0.keyVersion): \($0.secrets)" }.joined(separator: ", ")
        }
        add("<p>\(keyLine)</p></section>")

        // 4. Policy
        add(
            "<section><h2>4. Policy</h2><p>\(policy.deniedTotal) denials · drift: "
                + (policy.drift.checked
                    ? (policy.drift.clean
                        ? "<span class=\"good\">none</span>" : "<span class=\"warn\">\(policy.drift.tables.count) tables</span>")
                    : "not checked")
                + " · lint: " + (policy.lint.checked ? "\(policy.lint.errors) errors, \(policy.lint.warnings) warnings" : "not checked")
                + "</p>")
        if !policy.denials.isEmpty {
            add(
                table(
                    ["Table", "Command", "Policy / reason", "Denials"],
                    policy.denials.map {
                        [code($0.table), e($0.command), e($0.policy), "\($0.count)"]
                    }, numeric: [3]))
        }
        if !policy.drift.tables.isEmpty {
            add(
                "<h3>Drift</h3>"
                    + table(
                        ["Table", "RLS off", "Missing", "Extra", "Differing"],
                        policy.drift.tables.map {
                            [
                                code($0.table), $0.rlsDisabled ? "<span class=\"bad\">yes</span>" : "",
                                e($0.missing.joined(separator: ", ")),
                                e($0.extra.joined(separator: ", ")), e($0.differing.joined(separator: ", ")),
                            ]
                        }))
        }
        if !policy.lint.findings.isEmpty {
            add(
                "<h3>Lint findings</h3>"
                    + table(
                        ["Severity", "Code", "Table", "Message"],
                        policy.lint.findings.map {
                            [
                                $0.severity == "error" ? "<span class=\"bad\">error</span>" : e($0.severity), code($0.code), code($0.table),
                                e($0.message),
                            ]
                        }))
        }
        add("</section>")

        // 5. Integrity
        add("<section><h2>5. Audit integrity</h2>")
        add(
            integrity.valid
                ? "<p class=\"verdict good\">Chain verified: hashes, links, contiguity, checkpoint signatures and head.</p>"
                : "<p class=\"verdict bad\">Chain verification FAILED (\(integrity.failures.count) failure\(integrity.failures.count == 1 ? "" : "s")).</p>"
        )
        add(
            table(
                ["Entries", "Seq range", "Checkpoints", "Last checkpoint", "Not yet checkpointed", "Keys"],
                [
                    [
                        "\(integrity.entriesChecked)", integrity.firstSeq.map { "\($0)…\(integrity.lastSeq ?? $0)" } ?? "–",
                        "\(integrity.checkpoints)",
                        integrity.lastCheckpointSeq.map { "seq \($0), \(HTMLText.escape(shortTime(integrity.lastCheckpointAt)))" }
                            ?? "<span class=\"warn\">none</span>",
                        "\(integrity.entriesNotCheckpointed)", integrity.trustedKeysPinned ? "pinned" : "stored keys trusted",
                    ]
                ], numeric: [0, 2, 4]))
        if !integrity.failures.isEmpty {
            add(
                table(
                    ["Failure", "Seq", "Detail"],
                    integrity.failures.map {
                        ["<span class=\"bad\">\(HTMLText.escape($0.kind))</span>", $0.seq.map(String.init) ?? "–", e($0.detail)]
                    }))
        }
        if !integrity.signingKeys.isEmpty {
            add(
                table(
                    ["Signing key", "Checkpoints", "First", "Last"],
                    integrity.signingKeys.map {
                        [code($0.keyId), "\($0.checkpoints)", e(shortTime($0.firstSignedAt)), e(shortTime($0.lastSignedAt))]
                    }, numeric: [1]))
        }
        add("</section>")

        // 6. Consents
        add(
            "<section><h2>6. Consents</h2><p>\(consents.subjects) subjects with privacy settings · \(consents.settingsUpdates) settings updates in the period.</p>"
        )
        add(
            table(
                ["Consent", "Granted", "Rate", "", "Granted in period", "Withdrawn in period"],
                consents.rates.map { rate in
                    let change = consents.changes.first { $0.consent == rate.consent }
                    let width = Int((rate.rate * 100).rounded())
                    return [
                        e(consentLabel(rate.consent)), "\(rate.granted) / \(rate.total)", percent(rate.rate),
                        "<svg class=\"bar\" width=\"120\" height=\"10\" viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\"><rect width=\"100\" height=\"10\" fill=\"#e5e7eb\"/><rect width=\"\(width)\" height=\"10\" fill=\"#2563eb\"/></svg>",
                        "\(change?.granted ?? 0)", "\(change?.withdrawn ?? 0)",
                    ]
                }, numeric: [1, 2, 4, 5]))
        add("</section>")

        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Compliance report · \(HTMLText.escape(report.tenantId))</title>
            <style>\(css)</style>
            </head>
            <body>
            \(body)<footer>Privacy Gateway compliance report · schema v\(report.version) · JSON form documented in Sources/Reports/SCHEMA.md</footer>
            </body>
            </html>

            """
    }

    static let css = """
        @page { size: A4; margin: 14mm; }
        * { box-sizing: border-box; }
        body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1f2937;
               max-width: 1000px; margin: 24px auto; padding: 0 20px; font-size: 13px; line-height: 1.45; }
        h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 17px; border-bottom: 2px solid #e5e7eb; padding-bottom: 4px; margin-top: 28px; }
        h3 { font-size: 14px; margin: 16px 0 6px; }
        .meta, .note, figcaption, footer { color: #6b7280; font-size: 12px; }
        code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 11.5px; background: #f3f4f6; padding: 1px 4px; border-radius: 3px; }
        .alert { padding: 10px 14px; border-radius: 6px; margin: 8px 0; border-left: 6px solid; }
        .alert.critical { background: #fef2f2; border-color: #dc2626; color: #991b1b; font-size: 15px; }
        .alert.warning { background: #fffbeb; border-color: #d97706; color: #92400e; }
        .alert.ok { background: #f0fdf4; border-color: #16a34a; color: #166534; }
        .tiles { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }
        .tile { flex: 1 1 140px; border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 12px; }
        .tile .value { font-size: 20px; font-weight: 700; } .tile .label { color: #6b7280; font-size: 11px; text-transform: uppercase; letter-spacing: .04em; }
        .tile.good .value { color: #15803d; } .tile.warn .value { color: #b45309; } .tile.bad { border-color: #dc2626; background: #fef2f2; } .tile.bad .value { color: #dc2626; }
        .good { color: #15803d; font-weight: 600; } .warn { color: #b45309; font-weight: 600; } .bad { color: #dc2626; font-weight: 700; }
        .verdict { font-size: 15px; }
        table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; page-break-inside: avoid; }
        th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
        th { background: #f9fafb; font-size: 11px; text-transform: uppercase; letter-spacing: .03em; color: #4b5563; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        .tag { font-size: 10px; background: #e0e7ff; color: #3730a3; padding: 1px 5px; border-radius: 8px; }
        .card { border: 1px solid #e5e7eb; border-radius: 8px; padding: 8px 12px; margin: 8px 0; page-break-inside: avoid; }
        .columns { display: flex; gap: 16px; } .columns > div { flex: 1; min-width: 0; }
        figure { margin: 8px 0 14px; page-break-inside: avoid; } svg.chart { width: 100%; height: auto; }
        svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
        section { page-break-inside: auto; }
        footer { margin-top: 32px; border-top: 1px solid #e5e7eb; padding-top: 8px; }
        @media print { body { margin: 0; max-width: none; } .alert, .tile, svg { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
        """

    // MARK: - Charts

    /// One group per month: received (grey), completed on time (green) + late (amber) stacked,
    /// overdue (red).
    static func requestsChart(_ months: [RequestMonth]) -> String {
        let series: [(String, String)] = [("Received", "#9ca3af"), ("On time", "#16a34a"), ("Late", "#d97706"), ("Overdue", "#dc2626")]
        let maximum = max(1, months.map { max($0.received, $0.completed, $0.overdue) }.max() ?? 1)
        return barChart(
            groups: months.map { month in
                (
                    month.month,
                    [
                        [(month.received, series[0].1)],
                        [(month.completed - month.completedLate, series[1].1), (month.completedLate, series[2].1)],
                        [(month.overdue, series[3].1)],
                    ]
                )
            },
            maximum: maximum, legend: series, title: "Requests per month against the deadline")
    }

    /// One stacked bar per bucket: succeeded, denied, failed.
    static func accessChart(_ timeline: AccessTimeline) -> String {
        let series: [(String, String)] = [("Succeeded", "#2563eb"), ("Denied", "#dc2626"), ("Failed", "#6b7280")]
        let maximum = max(1, timeline.points.map { $0.success + $0.denied + $0.failure }.max() ?? 1)
        return barChart(
            groups: timeline.points.map { point in
                (point.period, [[(point.success, series[0].1), (point.denied, series[1].1), (point.failure, series[2].1)]])
            },
            maximum: maximum, legend: series, title: "Secret accesses over time")
    }

    /// A grouped, stacked bar chart as inline SVG. `groups`: label → bars → stacked segments.
    static func barChart(groups: [(String, [[(Int, String)]])], maximum: Int, legend: [(String, String)], title: String) -> String {
        let width = 960.0, height = 240.0, left = 40.0, right = 10.0, top = 28.0, bottom = 36.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let scaleMax = Double(niceCeiling(maximum))
        var svg =
            "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(HTMLText.escape(title))\">"
        // Legend
        var x = left
        for (name, color) in legend {
            svg +=
                "<rect x=\"\(f(x))\" y=\"6\" width=\"10\" height=\"10\" fill=\"\(color)\"/><text x=\"\(f(x + 14))\" y=\"15\" font-size=\"11\" fill=\"#374151\">\(HTMLText.escape(name))</text>"
            x += 14 + Double(name.count) * 6.5 + 16
        }
        // Grid
        for step in 0...4 {
            let value = scaleMax * Double(step) / 4
            let y = top + plotHeight - plotHeight * Double(step) / 4
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(width - right))\" y2=\"\(f(y))\" stroke=\"#e5e7eb\"/>"
            svg +=
                "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" font-size=\"10\" fill=\"#6b7280\" text-anchor=\"end\">\(value.truncatingRemainder(dividingBy: 1) == 0 ? String(Int(value)) : String(format: "%.1f", value))</text>"
        }
        guard !groups.isEmpty else {
            return svg
                + "<text x=\"\(f(width / 2))\" y=\"\(f(top + plotHeight / 2))\" font-size=\"12\" fill=\"#6b7280\" text-anchor=\"middle\">no data</text></svg>"
        }
        let slot = plotWidth / Double(groups.count)
        let labelEvery = max(1, Int((Double(groups.count) * 70 / plotWidth).rounded(.up)))
        for (index, group) in groups.enumerated() {
            let bars = group.1
            let groupWidth = min(slot * 0.8, Double(bars.count) * 28)
            let barWidth = groupWidth / Double(max(1, bars.count))
            var barX = left + slot * Double(index) + (slot - groupWidth) / 2
            for bar in bars {
                var y = top + plotHeight
                var total = 0
                for (value, color) in bar where value > 0 {
                    let h = plotHeight * Double(value) / scaleMax
                    y -= h
                    total += value
                    svg +=
                        "<rect x=\"\(f(barX + 1))\" y=\"\(f(y))\" width=\"\(f(max(1, barWidth - 2)))\" height=\"\(f(h))\" fill=\"\(color)\"/>"
                }
                if total > 0, barWidth >= 12 {
                    svg +=
                        "<text x=\"\(f(barX + barWidth / 2))\" y=\"\(f(y - 3))\" font-size=\"9\" fill=\"#374151\" text-anchor=\"middle\">\(total)</text>"
                }
                barX += barWidth
            }
            if index % labelEvery == 0 {
                svg +=
                    "<text x=\"\(f(left + slot * (Double(index) + 0.5)))\" y=\"\(f(height - bottom + 16))\" font-size=\"10\" fill=\"#374151\" text-anchor=\"middle\">\(HTMLText.escape(group.0))</text>"
            }
        }
        svg +=
            "<line x1=\"\(f(left))\" y1=\"\(f(top + plotHeight))\" x2=\"\(f(width - right))\" y2=\"\(f(top + plotHeight))\" stroke=\"#9ca3af\"/>"
        return svg + "</svg>"
    }

    /// 4 × a round step ≥ value (steps 1…10, then 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120 …), so
    /// the four grid lines fall on whole numbers.
    static func niceCeiling(_ value: Int) -> Int {
        let step = max(1, (value + 3) / 4)
        if step <= 10 { return step * 4 }
        var magnitude = 10
        while true {
            for factor in [10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100] where factor * magnitude / 10 >= step {
                return factor * magnitude / 10 * 4
            }
            magnitude *= 10
        }
    }

    private static func f(_ value: Double) -> String { String(format: "%.1f", value) }
}
