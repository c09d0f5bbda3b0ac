import Foundation

extension ReportRenderer {
    /// Markdown for a ticket: alerts first, then one section per area, tables for figures.
    public static func markdown(_ report: ComplianceReport) -> String {
        var out: [String] = []
        func line(_ text: String = "") { out.append(text) }
        func cell(_ text: String) -> String {
            text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
        }
        func table(_ header: [String], _ rows: [[String]]) {
            line("| " + header.joined(separator: " | ") + " |")
            line("|" + header.map { _ in " --- |" }.joined())
            for row in rows { line("| " + row.map(cell).joined(separator: " | ") + " |") }
            line()
        }

        line("# Compliance report — tenant `\(report.tenantId)`")
        line()
        line(
            "Period: \(report.period.since.map(shortTime) ?? "beginning") → \(shortTime(report.period.until)) "
                + "(as of \(shortTime(report.period.asOf))) · generated \(shortTime(report.generatedAt)) · times in UTC · schema v\(report.version)"
        )
        line()
        if report.alerts.isEmpty {
            line("✅ **No alerts.** Audit chain verified, no overdue requests.")
        } else {
            for alert in report.alerts {
                line((alert.severity == .critical ? "🔴 **CRITICAL**" : "🟠 **Warning**") + " (\(alert.section)): \(alert.message)")
                line()
            }
        }
        line()

        // 1
        let requests = report.requests
        let totals = requests.totals
        line("## 1. Data-subject requests")
        line()
        line("_\(requests.deadlineRule)_")
        line()
        table(
            [
                "Received", "Completed", "On time", "Late", "Open", "Overdue", "Extended", "Denied/canceled/failed", "Median time",
                "Max time",
            ],
            [
                [
                    "\(totals.received)", "\(totals.completed)", "\(totals.completedOnTime)", "\(totals.completedLate)", "\(totals.open)",
                    totals.overdue > 0 ? "**\(totals.overdue)**" : "0", "\(totals.extended)", "\(totals.closedWithoutCompletion)",
                    days(requests.medianDaysToComplete), days(requests.maxDaysToComplete),
                ]
            ])
        // Months with nothing in them are left out of the ticket (the JSON has every month).
        let active = requests.months.filter { $0.received + $0.completed + $0.overdue > 0 }
        if !active.isEmpty {
            table(
                ["Month", "Received", "Completed", "Completed late", "Overdue"],
                active.map {
                    [$0.month, "\($0.received)", "\($0.completed)", "\($0.completedLate)", "\($0.overdue)"]
                })
        }
        if !requests.overdue.isEmpty {
            line("**Overdue requests**")
            line()
            table(
                ["Request", "Kind", "Status", "Received", "Deadline", "Days late"],
                requests.overdue.map {
                    [
                        "`\(shortID($0.requestId))`", $0.kind, $0.status, shortTime($0.receivedAt),
                        shortTime($0.deadline) + ($0.extended ? " (extended)" : ""),
                        String(format: "%.2f", $0.daysLate),
                    ]
                })
        }
        if !requests.late.isEmpty {
            line("**Completed late**")
            line()
            table(
                ["Request", "Kind", "Received", "Deadline", "Completed", "Days late"],
                requests.late.map {
                    [
                        "`\(shortID($0.requestId))`", $0.kind, shortTime($0.receivedAt),
                        shortTime($0.deadline) + ($0.extended ? " (extended)" : ""),
                        shortTime($0.completedAt), String(format: "%.2f", $0.daysLate),
                    ]
                })
        }
        if !requests.extensions.isEmpty {
            line("**Extensions**")
            line()
            table(
                ["Request", "Kind", "Status", "Due", "Extended to", "Reason"],
                requests.extensions.map {
                    ["`\(shortID($0.requestId))`", $0.kind, $0.status, shortTime($0.dueAt), shortTime($0.extendedDueAt), $0.reason]
                })
        }

        // 2
        line("## 2. Erasures")
        line()
        if report.erasures.certificates.isEmpty {
            line("No erasures in the period.")
            line()
        }
        for erasure in report.erasures.certificates {
            line(
                "**Request `\(shortID(erasure.requestId))`** — \(erasure.status), completed \(shortTime(erasure.completedAt)); "
                    + "verification **\(erasure.verification)**\(erasure.verificationDetail.map { " (\($0))" } ?? ""); "
                    + (erasure.hasCertificate ? ReportRenderer.signatureText(erasure, html: false) : "no certificate")
                    + (erasure.auditHead.map { "; audit head \($0)" } ?? ""))
            line()
            if let note = erasure.note { line("> \(note)"); line() }
            if !erasure.tables.isEmpty {
                table(
                    ["Table", "Strategy", "Rows", "Ground"],
                    erasure.tables.map {
                        [$0.table, $0.strategy, $0.rows.map(String.init) ?? "–", $0.ground ?? ""]
                    })
            }
        }
        if !report.erasures.retentionGrounds.isEmpty {
            line("**Retained on erasure (policy files)**")
            line()
            table(["Table", "Ground", "Kept for"], report.erasures.retentionGrounds.map { [$0.table, $0.basis, $0.until] })
        }

        // 3
        let secrets = report.secrets
        line("## 3. Secrets")
        line()
        line(
            "\(secrets.totals.total) accesses: \(secrets.totals.success) succeeded, \(secrets.totals.denied) denied, \(secrets.totals.failure) failed."
                + (secrets.namesResolved ? "" : " Service names are shown as audit pseudonyms (report made without the root key)."))
        line()
        if !secrets.byService.isEmpty {
            table(
                ["Service", "Total", "Success", "Denied", "Failed"],
                secrets.byService.map {
                    [shortPseudonym($0.name), "\($0.total)", "\($0.success)", "\($0.denied)", "\($0.failure)"]
                })
        }
        if !secrets.byActor.isEmpty {
            table(
                ["Actor", "Total", "Success", "Denied", "Failed"],
                secrets.byActor.map {
                    ["`\($0.name)`", "\($0.total)", "\($0.success)", "\($0.denied)", "\($0.failure)"]
                })
        }
        if !secrets.denied.isEmpty {
            line("**Denied attempts**")
            line()
            table(
                ["Seq", "At", "Actor", "Action", "Service"],
                secrets.denied.map {
                    ["\($0.seq)", shortTime($0.at), "`\($0.actor ?? "–")`", $0.action, shortPseudonym($0.service ?? "–")]
                })
        }
        line("**Unused for \(secrets.unusedThresholdDays)+ days:** " + (secrets.unused.isEmpty ? "none." : ""))
        line()
        if !secrets.unused.isEmpty {
            table(
                ["Secret", "Service", "Last used", "Days unused"],
                secrets.unused.map {
                    ["`\(shortID($0.secretId))`", $0.service, shortTime($0.lastUsedAt ?? "never"), "\($0.daysUnused)"]
                })
        }
        line("**Keys**")
        line()
        if secrets.keys.tenantKeys.isEmpty {
            line("No tenant key in the keyring yet.")
            line()
        } else {
            table(
                ["Tenant key", "Root key", "Created", "Retired", "Subject keys", "Shredded"],
                secrets.keys.tenantKeys.map {
                    [
                        "v\($0.version)", "v\($0.rootVersion)", shortTime($0.createdAt), shortTime($0.retiredAt), "\($0.subjectKeys)",
                        "\($0.shreddedSubjectKeys)",
                    ]
                })
        }
        if !secrets.keys.secretsByKeyVersion.isEmpty {
            line(
                "Secrets by subject-key version: "
                    + secrets.keys.secretsByKeyVersion.map { "v\($0.keyVersion): \($0.secrets)" }.joined(separator: ", "))
            line()
        }
        if let rotation = secrets.keys.lastRotation {
            line(
                "Last rotation: \(shortTime(rotation.at))"
                    + (rotation.fromVersion.map { " v\($0)" } ?? "") + (rotation.toVersion.map { " → v\($0)" } ?? "")
                    + " (from \(rotation.source))")
        } else {
            line("Last rotation: never.")
        }
        line()

        // 4
        let policy = report.policy
        line("## 4. Policy")
        line()
        line(
            "\(policy.deniedTotal) denials. Drift: "
                + (policy.drift.checked ? (policy.drift.clean ? "none" : "**\(policy.drift.tables.count) tables drifted**") : "not checked")
                + ". Lint: " + (policy.lint.checked ? "\(policy.lint.errors) errors, \(policy.lint.warnings) warnings" : "not checked")
                + ".")
        line()
        if !policy.denials.isEmpty {
            table(
                ["Table", "Command", "Policy / reason", "Denials"], policy.denials.map { [$0.table, $0.command, $0.policy, "\($0.count)"] })
        }
        if !policy.drift.tables.isEmpty {
            table(
                ["Table", "RLS off", "Missing", "Extra", "Differing"],
                policy.drift.tables.map {
                    [
                        $0.table, $0.rlsDisabled ? "yes" : "", $0.missing.joined(separator: ", "), $0.extra.joined(separator: ", "),
                        $0.differing.joined(separator: ", "),
                    ]
                })
        }
        if !policy.lint.findings.isEmpty {
            table(["Severity", "Code", "Table", "Message"], policy.lint.findings.map { [$0.severity, $0.code, $0.table, $0.message] })
        }

        // 5
        let integrity = report.integrity
        line("## 5. Audit integrity")
        line()
        line(integrity.valid ? "✅ Chain **verified**" : "🔴 Chain verification **FAILED**")
        line()
        table(
            ["Entries", "Seq range", "Checkpoints", "Last checkpoint", "Not yet checkpointed", "Keys pinned"],
            [
                [
                    "\(integrity.entriesChecked)", integrity.firstSeq.map { "\($0)…\(integrity.lastSeq ?? $0)" } ?? "–",
                    "\(integrity.checkpoints)",
                    integrity.lastCheckpointSeq.map { "seq \($0) at \(shortTime(integrity.lastCheckpointAt))" } ?? "none",
                    "\(integrity.entriesNotCheckpointed)", integrity.trustedKeysPinned ? "yes" : "no (stored keys trusted)",
                ]
            ])
        if !integrity.failures.isEmpty {
            table(["Failure", "Seq", "Detail"], integrity.failures.map { [$0.kind, $0.seq.map(String.init) ?? "–", $0.detail] })
        }
        if !integrity.signingKeys.isEmpty {
            table(
                ["Signing key", "Checkpoints", "First", "Last"],
                integrity.signingKeys.map {
                    ["`\($0.keyId)`", "\($0.checkpoints)", shortTime($0.firstSignedAt), shortTime($0.lastSignedAt)]
                })
        }

        // 6
        let consents = report.consents
        line("## 6. Consents")
        line()
        line("\(consents.subjects) subjects with privacy settings; \(consents.settingsUpdates) settings updates in the period.")
        line()
        table(
            ["Consent", "Granted", "Rate", "Granted in period", "Withdrawn in period"],
            consents.rates.map { rate in
                let change = consents.changes.first { $0.consent == rate.consent }
                return [
                    consentLabel(rate.consent), "\(rate.granted)/\(rate.total)", percent(rate.rate), "\(change?.granted ?? 0)",
                    "\(change?.withdrawn ?? 0)",
                ]
            })
        return out.joined(separator: "\n")
    }
}
