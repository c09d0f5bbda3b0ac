import Audit
import Foundation
import JSON
import Policy

/// Computes a ``ComplianceReport`` from ``ReportInputs``: pure, no I/O, so every figure can be
/// checked against a hand count.
public enum ReportBuilder {
    /// Secrets not used for this many days are listed as unused.
    public static let unusedThresholdDays = 90
    static let day: TimeInterval = 86_400

    public static func build(_ inputs: ReportInputs) -> ComplianceReport {
        let asOf = min(inputs.until, inputs.generatedAt)
        let requests = requestsSection(inputs, asOf: asOf)
        let erasures = erasuresSection(inputs, asOf: asOf)
        let secrets = secretsSection(inputs, asOf: asOf)
        let policy = policySection(inputs)
        let integrity = integritySection(inputs)
        let consents = consentsSection(inputs)
        return ComplianceReport(
            version: ComplianceReport.currentVersion,
            tenantId: inputs.tenant.lowercasedString,
            generatedAt: ReportTime.string(inputs.generatedAt),
            period: ReportPeriod(
                since: inputs.since.map(ReportTime.string), until: ReportTime.string(inputs.until),
                asOf: ReportTime.string(asOf)),
            alerts: alerts(requests: requests, erasures: erasures, policy: policy, integrity: integrity),
            requests: requests, erasures: erasures, secrets: secrets, policy: policy, integrity: integrity,
            consents: consents)
    }

    // MARK: - Alerts

    static func alerts(
        requests: RequestsSection, erasures: ErasuresSection, policy: PolicySection, integrity: IntegritySection
    ) -> [ReportAlert] {
        var alerts: [ReportAlert] = []
        if !integrity.valid {
            let kinds = Set(integrity.failures.map(\.kind)).sorted().joined(separator: ", ")
            alerts.append(
                ReportAlert(
                    severity: .critical, section: "integrity",
                    message:
                        "Audit chain verification FAILED: \(integrity.failures.count) failure\(plural(integrity.failures.count)) (\(kinds))"
                ))
        }
        if requests.totals.overdue > 0 {
            alerts.append(
                ReportAlert(
                    severity: .critical, section: "requests",
                    message: "\(requests.totals.overdue) data-subject request\(plural(requests.totals.overdue)) overdue"))
        }
        let failedErasures = erasures.certificates.filter { $0.verification == "failed" }.count
        if failedErasures > 0 {
            alerts.append(
                ReportAlert(
                    severity: .critical, section: "erasures",
                    message: "\(failedErasures) erasure\(plural(failedErasures)) failed verification"))
        }
        let forged = erasures.certificates.filter { $0.signature == "invalid" }.count
        if forged > 0 {
            alerts.append(
                ReportAlert(
                    severity: .critical, section: "erasures",
                    message: "\(forged) deletion certificate\(plural(forged)) with an invalid signature"))
        }
        if requests.totals.completedLate > 0 {
            alerts.append(
                ReportAlert(
                    severity: .warning, section: "requests",
                    message: "\(requests.totals.completedLate) request\(plural(requests.totals.completedLate)) completed after the deadline"
                ))
        }
        if policy.drift.checked, !policy.drift.clean {
            alerts.append(
                ReportAlert(
                    severity: .warning, section: "policy",
                    message:
                        "Row level security differs from the policy files on \(policy.drift.tables.count) table\(plural(policy.drift.tables.count))"
                ))
        }
        if policy.lint.errors > 0 {
            alerts.append(
                ReportAlert(
                    severity: .warning, section: "policy", message: "\(policy.lint.errors) policy lint error\(plural(policy.lint.errors))"))
        }
        if integrity.checkpoints == 0, integrity.entriesChecked > 0 {
            alerts.append(
                ReportAlert(
                    severity: .warning, section: "integrity", message: "No signed checkpoint covers the audit chain yet"))
        }
        return alerts
    }

    // MARK: - 1. Requests

    static func requestsSection(_ inputs: ReportInputs, asOf: Date) -> RequestsSection {
        func inPeriod(_ date: Date?) -> Bool {
            guard let date else { return false }
            return date < inputs.until && inputs.since.map { date >= $0 } ?? true
        }
        func isOpen(_ request: RequestRecord) -> Bool {
            guard request.requestedAt < asOf, !request.isClosedWithoutCompletion else { return false }
            if request.isCompleted { return (request.completedAt ?? .distantPast) >= asOf }
            return true
        }
        let received = inputs.requests.filter { inPeriod($0.requestedAt) }
        let completed = inputs.requests.filter { $0.isCompleted && inPeriod($0.completedAt) }
        let late = completed.filter { $0.completedAt! > $0.deadline }
        let open = inputs.requests.filter(isOpen)
        let overdue = open.filter { $0.deadline < asOf }
        let inScope = inputs.requests.filter { inPeriod($0.requestedAt) || inPeriod($0.completedAt) || isOpen($0) }
        let extended = inScope.filter { $0.extendedDueAt != nil }

        let durations = completed.map { $0.completedAt!.timeIntervalSince($0.requestedAt) / day }.sorted()
        var median: Double?
        if !durations.isEmpty {
            let middle = durations.count / 2
            median = durations.count % 2 == 1 ? durations[middle] : (durations[middle - 1] + durations[middle]) / 2
        }

        // Months from the period's start (or the first request) to as_of.
        let firstDate = inputs.since ?? inScope.map(\.requestedAt).min() ?? asOf
        var months: [RequestMonth] = ReportTime.months(from: firstDate, to: asOf).map {
            RequestMonth(month: $0, received: 0, completed: 0, completedLate: 0, overdue: 0)
        }
        func bump(_ date: Date, _ update: (inout RequestMonth) -> Void) {
            let key = ReportTime.month(date)
            if let index = months.firstIndex(where: { $0.month == key }) { update(&months[index]) }
        }
        for request in received { bump(request.requestedAt) { $0.received += 1 } }
        for request in completed { bump(request.completedAt!) { $0.completed += 1 } }
        for request in late { bump(request.completedAt!) { $0.completedLate += 1 } }
        for request in overdue { bump(request.deadline) { $0.overdue += 1 } }

        func lateRow(_ request: RequestRecord, at end: Date) -> LateRequest {
            LateRequest(
                requestId: request.id.lowercasedString, kind: request.kind.rawValue, status: request.status,
                receivedAt: ReportTime.string(request.requestedAt), deadline: ReportTime.string(request.deadline),
                extended: request.extendedDueAt != nil, completedAt: request.completedAt.map(ReportTime.string),
                daysLate: ReportTime.days(end.timeIntervalSince(request.deadline)))
        }
        let byReceipt: (RequestRecord, RequestRecord) -> Bool = { ($0.requestedAt, $0.id.uuidString) < ($1.requestedAt, $1.id.uuidString) }

        return RequestsSection(
            deadlineRule: "One calendar month from receipt; one extension of up to two further months, with a reason (GDPR Art. 12(3)).",
            totals: RequestTotals(
                received: received.count, completed: completed.count, completedOnTime: completed.count - late.count,
                completedLate: late.count, open: open.count, overdue: overdue.count, extended: extended.count,
                closedWithoutCompletion: inScope.filter(\.isClosedWithoutCompletion).count),
            months: months,
            medianDaysToComplete: median.map(ReportTime.days(fromDays:)),
            maxDaysToComplete: durations.last.map(ReportTime.days(fromDays:)),
            extensions: extended.sorted(by: byReceipt).map {
                RequestExtension(
                    requestId: $0.id.lowercasedString, kind: $0.kind.rawValue, status: $0.status,
                    receivedAt: ReportTime.string($0.requestedAt), dueAt: ReportTime.string($0.dueAt),
                    extendedDueAt: ReportTime.string($0.extendedDueAt!), extendedAt: $0.extendedAt.map(ReportTime.string),
                    reason: $0.extensionReason ?? "")
            },
            late: late.sorted(by: byReceipt).map { lateRow($0, at: $0.completedAt!) },
            overdue: overdue.sorted(by: byReceipt).map { lateRow($0, at: asOf) })
    }

    // MARK: - 2. Erasures

    static func erasuresSection(_ inputs: ReportInputs, asOf: Date) -> ErasuresSection {
        func inPeriod(_ date: Date?) -> Bool {
            guard let date else { return false }
            return date < inputs.until && inputs.since.map { date >= $0 } ?? true
        }
        var grounds: [String: String] = [:]
        var retention: [RetentionGround] = []
        for table in inputs.policy?.policies.tables ?? [] {
            if case .retain(let basis, let until)? = table.privacy?.erasure {
                grounds[table.qualifiedName] = basis
                retention.append(RetentionGround(table: table.qualifiedName, basis: basis, until: until.description))
            }
        }
        let deletions = inputs.requests.filter {
            $0.kind == .deletion && ($0.certificate != nil || $0.isCompleted)
                && (inPeriod($0.completedAt) || inPeriod($0.requestedAt))
        }.sorted { ($0.completedAt ?? $0.requestedAt, $0.id.uuidString) < ($1.completedAt ?? $1.requestedAt, $1.id.uuidString) }
        let certificates = deletions.map { request in
            var summary = DeletionCertificateReader.summarize(
                request.certificate, signature: request.certificateSignature, keys: inputs.certificateKeys, grounds: grounds)
            summary.requestId = request.id.lowercasedString
            summary.status = request.status
            summary.completedAt = request.completedAt.map(ReportTime.string)
            return summary
        }
        return ErasuresSection(certificates: certificates, retentionGrounds: retention.sorted { $0.table < $1.table })
    }

    // MARK: - 3. Secrets

    static func secretsSection(_ inputs: ReportInputs, asOf: Date) -> SecretsSection {
        func service(_ target: String?) -> String? {
            guard let target else { return nil }
            return inputs.serviceNames?[target] ?? target
        }
        let events = inputs.secretEvents
        func counts(_ key: (AuditEntry) -> String?) -> [AccessCount] {
            var table: [String: AccessCount] = [:]
            for event in events {
                guard let name = key(event) else { continue }
                var count = table[name] ?? AccessCount(name: name, total: 0, success: 0, denied: 0, failure: 0)
                count.add(event.outcome)
                table[name] = count
            }
            return table.values.sorted { ($1.total, $0.name) < ($0.total, $1.name) }
        }
        var totals = AccessCount(name: "all", total: 0, success: 0, denied: 0, failure: 0)
        for event in events { totals.add(event.outcome) }

        // Timeline: days for short periods, months for long ones.
        let start = inputs.since ?? events.compactMap { ReportTime.parse($0.at) }.min() ?? asOf
        let byDay = asOf.timeIntervalSince(start) <= 92 * day
        var points: [String: AccessPoint] = [:]
        let keys = byDay ? ReportTime.days(from: start, to: asOf) : ReportTime.months(from: start, to: asOf)
        for key in keys { points[key] = AccessPoint(period: key, success: 0, denied: 0, failure: 0) }
        for event in events {
            guard let date = ReportTime.parse(event.at) else { continue }
            let key = byDay ? ReportTime.dayString(date) : ReportTime.month(date)
            var point = points[key] ?? AccessPoint(period: key, success: 0, denied: 0, failure: 0)
            switch event.outcome {
            case "success": point.success += 1
            case "denied": point.denied += 1
            default: point.failure += 1
            }
            points[key] = point
        }

        let live = inputs.secrets.filter { $0.deletedAt == nil }
        let unused = live.compactMap { secret -> UnusedSecret? in
            let lastTouch = max(secret.lastUsedAt ?? .distantPast, secret.updatedAt)
            let days = Int(asOf.timeIntervalSince(lastTouch) / day)
            guard days >= unusedThresholdDays else { return nil }
            return UnusedSecret(
                secretId: secret.id.lowercasedString, service: secret.serviceName,
                lastUsedAt: secret.lastUsedAt.map(ReportTime.string), updatedAt: ReportTime.string(secret.updatedAt),
                daysUnused: days)
        }.sorted { ($1.daysUnused, $0.service) < ($0.daysUnused, $1.service) }

        var byKeyVersion: [Int: Int] = [:]
        for secret in live { byKeyVersion[secret.keyVersion, default: 0] += 1 }
        let subjectKeys = Dictionary(inputs.subjectKeys.map { ($0.kekVersion, $0) }, uniquingKeysWith: { $1 })
        var rotation: KeyRotation?
        if let event = inputs.lastRotation {
            rotation = KeyRotation(
                at: ReportTime.string(ReportTime.parse(event.at) ?? inputs.generatedAt),
                fromVersion: event.details["from_version"]?.intValue, toVersion: event.details["to_version"]?.intValue,
                source: "audit")
        } else if let newest = inputs.tenantKeys.max(by: { $0.version < $1.version }), newest.version > 1 {
            rotation = KeyRotation(
                at: ReportTime.string(newest.createdAt), fromVersion: newest.version - 1, toVersion: newest.version,
                source: "tenant_keys")
        }

        return SecretsSection(
            namesResolved: inputs.serviceNames != nil,
            totals: totals,
            byActor: counts { $0.actor ?? "(none)" },
            byService: counts { service($0.target) },
            byAction: counts { $0.action },
            denied: events.filter { $0.outcome == "denied" }.map {
                DeniedAccess(
                    seq: $0.seq, at: ReportTime.string(ReportTime.parse($0.at) ?? inputs.generatedAt), actor: $0.actor,
                    action: $0.action, service: service($0.target))
            },
            timeline: AccessTimeline(bucket: byDay ? "day" : "month", points: points.values.sorted { $0.period < $1.period }),
            unusedThresholdDays: unusedThresholdDays,
            unused: unused,
            keys: KeyStatus(
                tenantKeys: inputs.tenantKeys.sorted { $0.version < $1.version }.map {
                    TenantKeyVersion(
                        version: $0.version, rootVersion: $0.rootVersion, createdAt: ReportTime.string($0.createdAt),
                        retiredAt: $0.retiredAt.map(ReportTime.string), subjectKeys: subjectKeys[$0.version]?.live ?? 0,
                        shreddedSubjectKeys: subjectKeys[$0.version]?.shredded ?? 0)
                },
                secretsByKeyVersion: byKeyVersion.keys.sorted().map { KeyVersionCount(keyVersion: $0, secrets: byKeyVersion[$0]!) },
                lastRotation: rotation))
    }

    // MARK: - 4. Policy

    static func policySection(_ inputs: ReportInputs) -> PolicySection {
        struct Key: Hashable { let table, command, policy: String }
        var denials: [Key: Int] = [:]
        for event in inputs.policyDenials {
            let details = event.details
            let policy = details["policy"]?.stringValue ?? details["reason"]?.stringValue ?? "(no reason recorded)"
            denials[Key(table: event.target ?? "(unknown)", command: details["command"]?.stringValue ?? "?", policy: policy), default: 0] +=
                1
        }
        let drift = inputs.policy?.drift
        let lint = inputs.policy?.lint ?? []
        return PolicySection(
            deniedTotal: inputs.policyDenials.count,
            denials: denials.map { PolicyDenialCount(table: $0.key.table, command: $0.key.command, policy: $0.key.policy, count: $0.value) }
                .sorted { ($1.count, $0.table, $0.command, $0.policy) < ($0.count, $1.table, $1.command, $1.policy) },
            drift: DriftStatus(
                checked: drift != nil, clean: drift?.isClean ?? false,
                tables: (drift?.tables ?? []).map {
                    DriftedTable(
                        table: $0.table, rlsDisabled: $0.rlsDisabled, missing: $0.missing.map(\.name), extra: $0.extra.map(\.name),
                        differing: $0.differing.map(\.declared.name))
                }),
            lint: LintStatus(
                checked: inputs.policy != nil,
                errors: lint.filter { $0.severity == .error }.count, warnings: lint.filter { $0.severity == .warning }.count,
                findings: lint.map {
                    LintItem(
                        severity: $0.severity.rawValue, code: $0.code.rawValue, table: $0.table, policy: $0.policy, message: $0.message)
                }))
    }

    // MARK: - 5. Integrity

    static func integritySection(_ inputs: ReportInputs) -> IntegritySection {
        let verification = inputs.verification
        let checkpoints = inputs.checkpoints.sorted { $0.seq < $1.seq }
        var keys: [String: SigningKeyUse] = [:]
        for checkpoint in checkpoints {
            let signedAt = ReportTime.parse(checkpoint.signedAt).map(ReportTime.string) ?? checkpoint.signedAt
            if var use = keys[checkpoint.keyID] {
                use.checkpoints += 1
                use.lastSignedAt = signedAt
                keys[checkpoint.keyID] = use
            } else {
                keys[checkpoint.keyID] = SigningKeyUse(
                    keyId: checkpoint.keyID, checkpoints: 1, firstSignedAt: signedAt, lastSignedAt: signedAt)
            }
        }
        let head = inputs.headSeq ?? verification.lastSeq ?? 0
        let lastCheckpoint = checkpoints.last
        return IntegritySection(
            valid: verification.isValid, entriesChecked: verification.entriesChecked, firstSeq: verification.firstSeq,
            lastSeq: verification.lastSeq,
            failures: verification.failures.map { IntegrityFailure(kind: $0.kind.rawValue, seq: $0.seq, detail: $0.detail) },
            checkpoints: checkpoints.count, lastCheckpointSeq: lastCheckpoint?.seq,
            lastCheckpointAt: lastCheckpoint.map { ReportTime.parse($0.signedAt).map(ReportTime.string) ?? $0.signedAt },
            lastVerifiedCheckpoint: verification.lastVerifiedCheckpoint,
            verifiedFromCheckpoint: inputs.verifiedFromCheckpoint,
            entriesNotCheckpointed: max(0, head - (lastCheckpoint?.seq ?? 0)),
            signingKeys: keys.values.sorted { ($0.firstSignedAt, $0.keyId) < ($1.firstSignedAt, $1.keyId) },
            trustedKeysPinned: inputs.trustedKeysPinned)
    }

    // MARK: - 6. Consents

    static func consentsSection(_ inputs: ReportInputs) -> ConsentsSection {
        let counts = inputs.consents
        var changes = Dictionary(
            uniqueKeysWithValues: ConsentCounts.columns.map { ($0, ConsentChange(consent: $0, granted: 0, withdrawn: 0)) })
        for event in inputs.settingsUpdates {
            guard let changed = event.details["changed"]?.json.objectValue else { continue }
            for (field, value) in changed {
                guard case .object(let change) = value,
                    var entry = changes[field]
                        ?? (field.hasSuffix("_consent") ? ConsentChange(consent: field, granted: 0, withdrawn: 0) : nil)
                else { continue }
                let from = change["from"]?.boolValue, to = change["to"]?.boolValue
                if from != true, to == true { entry.granted += 1 }
                if from == true, to == false { entry.withdrawn += 1 }
                changes[field] = entry
            }
        }
        let order = ConsentCounts.columns
        return ConsentsSection(
            subjects: counts.subjects,
            rates: order.map { column in
                let granted = counts.granted[column] ?? 0
                return ConsentRate(
                    consent: column, granted: granted, total: counts.subjects,
                    rate: counts.subjects == 0 ? 0 : (Double(granted) / Double(counts.subjects) * 100).rounded() / 100)
            },
            changes: changes.values.sorted {
                (order.firstIndex(of: $0.consent) ?? 99, $0.consent) < (order.firstIndex(of: $1.consent) ?? 99, $1.consent)
            },
            settingsUpdates: inputs.settingsUpdates.count)
    }

    static func plural(_ count: Int) -> String { count == 1 ? "" : "s" }
}

extension AccessCount {
    mutating func add(_ outcome: String) {
        total += 1
        switch outcome {
        case "success": success += 1
        case "denied": denied += 1
        default: failure += 1
        }
    }
}

extension AuditValue {
    var intValue: Int? { json.integer }
}

extension JSONValue {
    /// An integer, or a string holding one: what a count means in details and certificates
    /// written by hand (a whole double counts too; an audit detail never holds one).
    var integer: Int? {
        switch self {
        case .int(let value): return Int(exactly: value)
        case .double(let value): return Int(exactly: value.rounded())
        case .string(let text): return Int(text)
        default: return nil
        }
    }

    var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }
}

/// Times as the report shows them: RFC 3339, UTC, whole seconds; months and days in UTC.
enum ReportTime {
    static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    static func string(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// Canonical audit `at` text (with microseconds) or RFC 3339 without fraction.
    static func parse(_ text: String) -> Date? {
        if let date = parseCanonical(text) { return date }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (the audit trail's `at`, one per entry a report sorts) read
    /// by hand: a new ISO8601DateFormatter per entry cost a 1/12 slice of a 1M-entry log 45 s.
    /// Nil for any other shape or an impossible date; ``parse(_:)`` then uses the formatter.
    static func parseCanonical(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 27, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
            b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"), b[19] == UInt8(ascii: "."), b[26] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ start: Int, _ count: Int) -> Int? {
            var value = 0
            for index in start..<start + count {
                guard b[index] >= UInt8(ascii: "0"), b[index] <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(b[index] - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
            let minute = number(14, 2), let second = number(17, 2), let micros = number(20, 6),
            (1...12).contains(month), hour < 24, minute < 60, second < 60
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard day >= 1, day <= monthDays[month - 1] else { return nil }
        // Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    static func month(_ date: Date) -> String {
        let parts = calendar.dateComponents([.year, .month], from: date)
        return String(format: "%04d-%02d", parts.year!, parts.month!)
    }

    static func dayString(_ date: Date) -> String {
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }

    /// `YYYY-MM` of every month from `start`'s to `end`'s, inclusive (at most 120).
    static func months(from start: Date, to end: Date) -> [String] {
        var result: [String] = []
        var cursor = calendar.date(from: calendar.dateComponents([.year, .month], from: min(start, end)))!
        let last = month(max(start, end))
        while result.count < 120 {
            let key = month(cursor)
            result.append(key)
            if key == last { break }
            cursor = calendar.date(byAdding: .month, value: 1, to: cursor)!
        }
        return result
    }

    /// `YYYY-MM-DD` of every day from `start`'s to `end`'s, inclusive (at most 120).
    static func days(from start: Date, to end: Date) -> [String] {
        var result: [String] = []
        var cursor = calendar.startOfDay(for: min(start, end))
        let last = dayString(max(start, end))
        while result.count < 120 {
            let key = dayString(cursor)
            result.append(key)
            if key == last { break }
            cursor = calendar.date(byAdding: .day, value: 1, to: cursor)!
        }
        return result
    }

    /// Seconds → days, two decimals.
    static func days(_ seconds: TimeInterval) -> Double { days(fromDays: seconds / 86_400) }
    static func days(fromDays value: Double) -> Double { (value * 100).rounded() / 100 }
}
