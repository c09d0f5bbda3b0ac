/// One row of `pg_policies`.
public struct LivePolicy: Sendable, Hashable, Codable {
    public var schemaname: String
    public var tablename: String
    public var policyname: String
    /// `PERMISSIVE` or `RESTRICTIVE`.
    public var permissive: String
    public var roles: [String]
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    public var cmd: String
    /// The USING expression as `pg_get_expr` prints it.
    public var qual: String?
    /// The WITH CHECK expression as `pg_get_expr` prints it.
    public var withCheck: String?

    enum CodingKeys: String, CodingKey {
        case schemaname, tablename, policyname, permissive, roles, cmd, qual
        case withCheck = "with_check"
    }

    public init(
        schemaname: String = "public", tablename: String, policyname: String, permissive: String, roles: [String],
        cmd: String, qual: String?, withCheck: String?
    ) {
        self.schemaname = schemaname
        self.tablename = tablename
        self.policyname = policyname
        self.permissive = permissive
        self.roles = roles
        self.cmd = cmd
        self.qual = qual
        self.withCheck = withCheck
    }
}

/// Whether row-level security is on for a live table (`pg_class.relrowsecurity`).
public struct LiveTable: Sendable, Hashable, Codable {
    public var schemaname: String
    public var tablename: String
    public var rlsEnabled: Bool

    enum CodingKeys: String, CodingKey {
        case schemaname, tablename
        case rlsEnabled = "rls_enabled"
    }

    public init(schemaname: String = "public", tablename: String, rlsEnabled: Bool) {
        self.schemaname = schemaname
        self.tablename = tablename
        self.rlsEnabled = rlsEnabled
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        schemaname = try container.decodeIfPresent(String.self, forKey: .schemaname) ?? "public"
        tablename = try container.decode(String.self, forKey: .tablename)
        rlsEnabled = try container.decode(Bool.self, forKey: .rlsEnabled)
    }
}

/// A policy as the drift report shows it: declared or live, with its expressions as text.
public struct PolicySummary: Sendable, Hashable, Codable {
    public var name: String
    public var command: PolicyCommand
    public var kind: PolicyKind
    public var roles: [String]
    public var using: String?
    public var withCheck: String?
    /// Why a live policy could not be compared (e.g. its expression does not parse).
    public var problem: String?

    enum CodingKeys: String, CodingKey {
        case name, command, kind, roles, using, problem
        case withCheck = "with_check"
    }
}

/// A declared and a live policy of the same name whose meaning differs.
public struct PolicyDifference: Sendable, Hashable, Codable {
    public var declared: PolicySummary
    public var live: PolicySummary
    /// What differs: `command`, `kind`, `roles`, `using`, `with_check`.
    public var fields: [String]
}

/// Drift of one table.
public struct TableDrift: Sendable, Hashable, Codable {
    public var table: String
    /// RLS is off (or the table is absent) in the database.
    public var rlsDisabled: Bool
    /// In the files, not in the database.
    public var missing: [PolicySummary]
    /// In the database, not in the files.
    public var extra: [PolicySummary]
    public var differing: [PolicyDifference]
    /// Roles whose grants differ from the file's `rest:` / `managed_by:` (or, for a relation
    /// without a policy file, roles that can reach it at all).
    public var rights: [RightsDifference] = []

    enum CodingKeys: String, CodingKey {
        case table, missing, extra, differing, rights
        case rlsDisabled = "rls_disabled"
    }

    public var isClean: Bool { !rlsDisabled && missing.isEmpty && extra.isEmpty && differing.isEmpty && rights.isEmpty }
}

/// The comparison of the policy files with a live database: per table, what is missing, extra
/// or different, and where RLS is off. Policies match by meaning (command, kind, roles and the
/// normalised USING / WITH CHECK), not by name or text.
public struct DriftReport: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Tables with drift only, by name.
    public var tables: [TableDrift]

    public var isClean: Bool { tables.isEmpty }

    public var description: String {
        guard !isClean else { return "no drift: the database's policies match the policy files" }
        var lines: [String] = ["drift in \(tables.count) table\(tables.count == 1 ? "" : "s"):"]
        func show(_ policy: PolicySummary) -> String {
            var text = "\"\(policy.name)\" \(policy.kind.rawValue) \(policy.command.rawValue) to \(policy.roles.joined(separator: ", "))"
            if let using = policy.using { text += " using (\(using))" }
            if let withCheck = policy.withCheck { text += " with check (\(withCheck))" }
            if let problem = policy.problem { text += " — \(problem)" }
            return text
        }
        for table in tables {
            lines.append("  \(table.table):")
            if table.rlsDisabled { lines.append("    row-level security is off") }
            for policy in table.missing { lines.append("    missing: " + show(policy)) }
            for policy in table.extra { lines.append("    extra:   " + show(policy)) }
            for difference in table.differing {
                lines.append("    differs: \"\(difference.declared.name)\" (\(difference.fields.joined(separator: ", ")))")
                lines.append("      declared: " + show(difference.declared))
                lines.append("      live:     " + show(difference.live))
            }
            for difference in table.rights {
                lines.append("    grants:  \(difference.role) may \(difference.live); declared: \(difference.declared)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension PolicySet {
    /// Compares the policy files with the live database.
    ///
    /// - Parameters:
    ///   - live: rows of `pg_policies` (any schema; only the governed tables' schema counts).
    ///   - tables: `relrowsecurity` of live tables; a governed table missing from the list counts as
    ///     RLS off. Pass nil to skip that check.
    ///   - rights: what the request roles and the secrets role may do to each live relation
    ///     (``rightsDrift(live:)``). Pass nil to skip that check.
    ///   - functions: who may execute each live function; declared functions are checked against
    ///     their `roles:` (``functionRightsDrift(live:)``). Pass nil to skip that check.
    public func drift(
        live: [LivePolicy], tables liveTables: [LiveTable]?, rights liveRights: [LiveRights]? = nil,
        functions liveFunctions: [LiveFunctionRights]? = nil
    ) -> DriftReport {
        var rightsDrift = liveRights.map(rightsDrift(live:)) ?? [:]
        rightsDrift.merge(liveFunctions.map(functionRightsDrift(live:)) ?? [:]) { $0 + $1 }
        let normaliser = Normaliser(catalogue: catalogue)
        var report: [TableDrift] = []
        var byTable: [String: [LivePolicy]] = [:]
        var ungoverned: [String: [LivePolicy]] = [:]
        for policy in live {
            if let table = table(named: policy.tablename), table.schema == policy.schemaname {
                byTable[policy.tablename, default: []].append(policy)
            } else {
                ungoverned["\(policy.schemaname).\(policy.tablename)", default: []].append(policy)
            }
        }
        let rls = liveTables.map { list in
            Dictionary(list.map { ("\($0.schemaname).\($0.tablename)", $0.rlsEnabled) }, uniquingKeysWith: { $0 && $1 })
        }

        for table in tables {
            let declared = table.effectivePolicies.map { ComparablePolicy(rule: $0, table: table, normaliser: normaliser) }
            var remaining = (byTable[table.name] ?? []).map { ComparablePolicy(live: $0, table: table, normaliser: normaliser) }
            var unmatched: [ComparablePolicy] = []
            for policy in declared {
                if let match = remaining.firstIndex(where: { $0.signature != nil && $0.signature == policy.signature }) {
                    remaining.remove(at: match)
                } else {
                    unmatched.append(policy)
                }
            }
            var drift = TableDrift(
                table: table.qualifiedName, rlsDisabled: rls.map { $0[table.qualifiedName] != true } ?? false,
                missing: [], extra: [], differing: [])
            for policy in unmatched {
                if let same = remaining.firstIndex(where: { $0.summary.name == policy.summary.name }) {
                    let livePolicy = remaining.remove(at: same)
                    drift.differing.append(
                        PolicyDifference(
                            declared: policy.summary, live: livePolicy.summary, fields: policy.differences(from: livePolicy)))
                } else {
                    drift.missing.append(policy.summary)
                }
            }
            drift.extra = remaining.map(\.summary)
            drift.rights = rightsDrift.removeValue(forKey: table.qualifiedName) ?? []
            if !drift.isClean { report.append(drift) }
        }
        for (name, policies) in ungoverned.sorted(by: { $0.key < $1.key }) {
            report.append(
                TableDrift(
                    table: name, rlsDisabled: false, missing: [],
                    extra: policies.map { policy in
                        var summary = ComparablePolicy.summary(of: policy)
                        summary.problem = "the table has no policy file"
                        return summary
                    },
                    differing: [], rights: rightsDrift.removeValue(forKey: name) ?? []))
        }
        for (name, rights) in rightsDrift {
            report.append(TableDrift(table: name, rlsDisabled: false, missing: [], extra: [], differing: [], rights: rights))
        }
        return DriftReport(tables: report.sorted { $0.table < $1.table })
    }
}

/// A policy reduced to what decides its meaning.
private struct ComparablePolicy {
    struct Signature: Hashable {
        let command: PolicyCommand
        let kind: PolicyKind
        let roles: Set<String>
        let using: PolicyExpression?
        let withCheck: PolicyExpression?
    }

    let summary: PolicySummary
    /// Nil when a live policy cannot be read (it then matches nothing).
    let signature: Signature?

    init(rule: PolicyRule, table: TablePolicy, normaliser: Normaliser<Catalogue>) {
        summary = PolicySummary(
            name: rule.name, command: rule.command, kind: rule.kind, roles: rule.roles,
            using: rule.using?.description, withCheck: rule.withCheck?.description)
        signature = ComparablePolicy.signature(
            command: rule.command, kind: rule.kind, roles: rule.roles, using: rule.using, withCheck: rule.withCheck,
            table: table, normaliser: normaliser)
    }

    init(live: LivePolicy, table: TablePolicy, normaliser: Normaliser<Catalogue>) {
        var summary = ComparablePolicy.summary(of: live)
        var signature: Signature?
        do {
            guard let command = PolicyCommand(rawValue: live.cmd.lowercased()) else {
                throw PolicyError(.unknownCommand, "unknown command '\(live.cmd)'")
            }
            guard let kind = PolicyKind(rawValue: live.permissive.lowercased()) else {
                throw PolicyError(.invalidValue, "unknown kind '\(live.permissive)'")
            }
            let using = try live.qual.map(PolicyExpression.parse)
            let withCheck = try live.withCheck.map(PolicyExpression.parse)
            signature = ComparablePolicy.signature(
                command: command, kind: kind, roles: live.roles, using: using, withCheck: withCheck, table: table,
                normaliser: normaliser)
        } catch {
            summary.problem = "cannot be read: \(error)"
        }
        self.summary = summary
        self.signature = signature
    }

    static func summary(of live: LivePolicy) -> PolicySummary {
        PolicySummary(
            name: live.policyname, command: PolicyCommand(rawValue: live.cmd.lowercased()) ?? .all,
            kind: PolicyKind(rawValue: live.permissive.lowercased()) ?? .permissive, roles: live.roles,
            using: live.qual, withCheck: live.withCheck)
    }

    /// What Postgres actually checks: WITH CHECK falls back to USING for UPDATE and ALL, USING
    /// plays no part in INSERT, WITH CHECK none in SELECT and DELETE.
    static func signature(
        command: PolicyCommand, kind: PolicyKind, roles: [String], using: PolicyExpression?,
        withCheck: PolicyExpression?, table: TablePolicy, normaliser: Normaliser<Catalogue>
    ) -> Signature {
        let effectiveUsing: PolicyExpression?
        let effectiveCheck: PolicyExpression?
        switch command {
        case .select, .delete:
            effectiveUsing = using
            effectiveCheck = nil
        case .insert:
            effectiveUsing = nil
            effectiveCheck = withCheck
        case .update, .all:
            effectiveUsing = using
            effectiveCheck = withCheck ?? using
        }
        return Signature(
            command: command, kind: kind, roles: Set(roles),
            using: effectiveUsing.map { normaliser.normalise($0, table: table) },
            withCheck: effectiveCheck.map { normaliser.normalise($0, table: table) })
    }

    func differences(from other: ComparablePolicy) -> [String] {
        guard let mine = signature, let theirs = other.signature else { return ["expression"] }
        var fields: [String] = []
        if mine.command != theirs.command { fields.append("command") }
        if mine.kind != theirs.kind { fields.append("kind") }
        if mine.roles != theirs.roles { fields.append("roles") }
        if mine.using != theirs.using { fields.append("using") }
        if mine.withCheck != theirs.withCheck { fields.append("with_check") }
        return fields
    }
}
