import Foundation

/// A problem the linter found in the policy files (or, for RLS, in the live database).
public struct LintFinding: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Codable {
        case error, warning
    }

    /// A stable identifier of the rule, e.g. `rls-disabled`; safe to match on in scripts.
    public struct Code: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// Row-level security is off for a governed table in the database.
        public static let rlsDisabled = Code(rawValue: "rls-disabled")
        /// No permissive policy for a command (and the file does not list it in `denied_commands`).
        public static let commandWithoutPolicy = Code(rawValue: "command-without-policy")
        /// `denied_commands` lists a command that does have a permissive policy.
        public static let deniedCommandHasPolicy = Code(rawValue: "denied-command-has-policy")
        /// An UPDATE (or ALL) policy without WITH CHECK: the new row is checked with USING.
        public static let updateWithoutWithCheck = Code(rawValue: "update-without-with-check")
        /// `USING (true)` / `WITH CHECK (true)` on a write: anyone the policy applies to may write any row.
        public static let alwaysTrueOnWrite = Code(rawValue: "always-true-on-write")
        /// `auth.uid() IS NULL OR …`: anonymous callers pass.
        public static let uidIsNullOr = Code(rawValue: "uid-is-null-or")
        /// A column a policy filters on has no index leading with it (after the tenant column).
        public static let unindexedPolicyColumn = Code(rawValue: "unindexed-policy-column")
        /// A table with a subject has no `privacy` section: exports and erasure would not know it.
        public static let subjectWithoutPrivacy = Code(rawValue: "subject-without-privacy")
        /// `privacy` without a `subject`: nothing says whose rows to export or erase.
        public static let privacyWithoutSubject = Code(rawValue: "privacy-without-subject")
        /// `subject.via` references a table or column that is not governed / does not exist.
        public static let subjectViaUnknown = Code(rawValue: "subject-via-unknown")
        /// A sealed column (bytea: ciphertext, nonces, signatures, hashes) or one named like a
        /// secret, token, signature or certificate, served through `/rest/v1` (`rest:` read or
        /// read_write and not in `rest_hidden`).
        public static let sealedColumnExposed = Code(rawValue: "sealed-column-exposed")
        /// A declared function runs SECURITY DEFINER: as its owner, outside the caller's RLS
        /// (its justification is in the message; the loader refuses one without).
        public static let securityDefinerFunction = Code(rawValue: "security-definer-function")
        /// A declared function anon may call, or a volatile one callable by anon: check it is meant.
        public static let anonCallsFunction = Code(rawValue: "anon-calls-function")

        public var description: String { rawValue }
    }

    public let severity: Severity
    public let code: Code
    /// `schema.table`
    public let table: String
    public let policy: String?
    public let message: String
    public let location: SourceLocation?

    public var description: String {
        let place = location.map { "\($0): " } ?? "\(table): "
        return "\(place)\(severity.rawValue)[\(code.rawValue)]: \(message)"
    }
}

extension PolicySet {
    /// Checks the policy files for the mistakes RLS users make most (Supabase's splinter lints and
    /// more). `liveTables` (`relrowsecurity`), when given, adds RLS-off findings.
    public func lint(liveTables: [LiveTable]? = nil) -> [LintFinding] {
        var findings: [LintFinding] = []
        let rls = liveTables.map { list in
            Dictionary(list.map { ("\($0.schemaname).\($0.tablename)", $0.rlsEnabled) }, uniquingKeysWith: { $0 && $1 })
        }
        for table in tables {
            func add(
                _ severity: LintFinding.Severity, _ code: LintFinding.Code, _ message: String, policy: PolicyRule? = nil,
                at location: SourceLocation? = nil
            ) {
                findings.append(
                    LintFinding(
                        severity: severity, code: code, table: table.qualifiedName, policy: policy?.name, message: message,
                        location: location ?? policy?.location ?? table.file.map { SourceLocation(file: $0, line: 1, column: 1) }))
            }

            if table.rest != .none {
                for column in table.restColumns where PolicySet.looksSealed(column) {
                    add(
                        .error, .sealedColumnExposed,
                        "column '\(column.name)' (\(column.type.spelling)) looks sealed but /rest/v1 serves it (rest: \(table.rest.rawValue)); list it under rest_hidden or set rest: none"
                    )
                }
            }

            if let rls, rls[table.qualifiedName] != true {
                add(
                    .error, .rlsDisabled,
                    "row-level security is off for \(table.qualifiedName) in the database: every row is visible to every role")
            }

            for command in PolicyCommand.requestCommands {
                let hasPolicy = table.policies.contains { $0.kind == .permissive && $0.command.covers(command) }
                if let reason = table.deniedCommands[command] {
                    if hasPolicy {
                        add(
                            .error, .deniedCommandHasPolicy,
                            "\(command.rawValue) is listed in denied_commands (\(reason)) but has a permissive policy")
                    }
                } else if !hasPolicy {
                    add(
                        .warning, .commandWithoutPolicy,
                        "no policy allows \(command.rawValue) on \(table.qualifiedName), so every \(command.rawValue) is denied; add a policy or list it under denied_commands with the reason"
                    )
                }
            }

            for rule in table.policies {
                if rule.command == .update || rule.command == .all, rule.withCheck == nil {
                    add(
                        .warning, .updateWithoutWithCheck,
                        "\(rule.command.rawValue) policy '\(rule.name)' has no with_check: new rows are checked with its using; state the check explicitly",
                        policy: rule)
                }
                if rule.command != .select {
                    for (clause, expression) in [("using", rule.using), ("with_check", rule.withCheck)] {
                        if case .literal(.bool(true))? = expression {
                            add(
                                .error, .alwaysTrueOnWrite,
                                "\(clause) (true) on \(rule.command.rawValue) policy '\(rule.name)' lets every caller it applies to write any row",
                                policy: rule)
                        }
                    }
                }
                for expression in [rule.using, rule.withCheck].compactMap({ $0 }) where PolicySet.hasUIDIsNullOr(expression) {
                    add(
                        .error, .uidIsNullOr, "policy '\(rule.name)' has auth.uid() IS NULL OR …: anonymous callers pass that branch",
                        policy: rule)
                    break
                }
            }

            // Columns the policies filter on, per table they belong to (EXISTS reaches other tables).
            var filtered: [(table: TablePolicy, column: String, rule: PolicyRule?)] = [(table, table.tenantColumn, nil)]
            for rule in table.policies {
                for expression in [rule.using, rule.withCheck].compactMap({ $0 }) {
                    filtered += filterColumns(expression, table: table).map { ($0.table, $0.column, rule) }
                }
            }
            var reported: Set<String> = []
            for entry in filtered where !PolicySet.isIndexed(entry.column, in: entry.table) {
                let key = "\(entry.table.name).\(entry.column)"
                guard reported.insert(key).inserted else { continue }
                let suggestion = entry.column == entry.table.tenantColumn ? entry.column : "\(entry.table.tenantColumn), \(entry.column)"
                add(
                    .warning, .unindexedPolicyColumn,
                    "\(key) is filtered on by \(entry.rule.map { "policy '\($0.name)'" } ?? "the tenant policy") but no index leads with it; add one on (\(suggestion)) to \(entry.table.name)'s indexes and migrations",
                    policy: entry.rule)
            }

            switch (table.subject, table.privacy) {
            case (.some, nil):
                add(
                    .error, .subjectWithoutPrivacy,
                    "\(table.qualifiedName) holds personal data (subject) but has no privacy section: say how it is exported and erased")
            case (nil, .some):
                add(
                    .warning, .privacyWithoutSubject,
                    "\(table.qualifiedName) has a privacy section but no subject: exports and erasure cannot find a person's rows")
            default:
                break
            }
            if case .via(let column, let parent, let parentColumn)? = table.subject {
                if let target = self.table(named: parent) {
                    if target.column(named: parentColumn) == nil {
                        add(
                            .error, .subjectViaUnknown,
                            "subject.via \(column) references \(parent).\(parentColumn), which is not a column of \(target.qualifiedName)")
                    } else if target.subject == nil {
                        add(.error, .subjectViaUnknown, "subject.via \(column) references \(parent), which has no subject of its own")
                    }
                } else {
                    add(.error, .subjectViaUnknown, "subject.via \(column) references \(parent), which is not a governed table")
                }
            }
            for function in table.functions {
                if function.security == .definer {
                    add(
                        .warning, .securityDefinerFunction,
                        "function \(function.name) is security definer: it runs as its owner, outside the caller's RLS (justification: \(function.justification ?? "none"))",
                        at: function.location)
                }
                if function.allows(role: "anon"), function.volatility == .volatile {
                    add(
                        .warning, .anonCallsFunction,
                        "function \(function.name) is volatile and anon may call it: anyone holding the service key can run it",
                        at: function.location)
                }
            }
        }
        return findings
    }

    static func hasUIDIsNullOr(_ expression: PolicyExpression) -> Bool {
        var found = false
        Binder.visit(expression) { node in
            if case .or(let terms) = node,
                terms.contains(where: {
                    if case .isNull(.auth(.uid), negated: false) = $0 { return true }
                    return false
                })
            {
                found = true
            }
        }
        return found
    }

    /// Covered when an index leads with the column, or with the tenant column and then it
    /// (every query carries `tenant_id = …`).
    static func isIndexed(_ column: String, in table: TablePolicy) -> Bool {
        table.indexes.contains { index in
            index.first == column || (index.count > 1 && index[0] == table.tenantColumn && index[1] == column)
        }
    }

    /// Level-0 columns compared with something other than the row itself, and every column a
    /// subquery compares (its lookups run once per outer row).
    func filterColumns(_ expression: PolicyExpression, table: TablePolicy) -> [(table: TablePolicy, column: String)] {
        var found: [(TablePolicy, String)] = []
        var scopes = [Scope(table: table, name: table.name)]
        func columns(in operand: PolicyExpression) -> [ResolvedColumn] {
            switch operand {
            case .column(let reference): return (try? Binder.resolve(reference, in: scopes)).map { [$0] } ?? []
            case .cast(let inner, _): return columns(in: inner)
            default: return []
            }
        }
        func note(_ lhs: PolicyExpression, _ rhs: PolicyExpression) {
            let left = columns(in: lhs)
            let right = columns(in: rhs)
            let innermost = scopes.count - 1
            for column in left + right {
                // At level 0 a column compared with another level-0 column filters nothing by itself.
                if innermost == 0, !left.isEmpty, !right.isEmpty { continue }
                if column.level == innermost { found.append((column.table, column.column.name)) }
            }
        }
        func walk(_ node: PolicyExpression) {
            switch node {
            case .comparison(let lhs, _, let rhs), .quantified(let lhs, _, _, let rhs):
                note(lhs, rhs)
            case .inList(let lhs, _, _):
                note(lhs, .literal(.null))
            case .and(let terms), .or(let terms):
                terms.forEach(walk)
            case .not(let inner), .isBoolean(let inner, _, _):
                walk(inner)
            case .exists(let subquery):
                guard let inner = try? Binder.subqueryTable(subquery, of: table, catalogue: catalogue) else { return }
                scopes.append(Scope(table: inner, name: subquery.scopeName))
                if let condition = subquery.condition { walk(condition) }
                scopes.removeLast()
            default:
                break
            }
        }
        walk(expression)
        return found
    }
}

extension PolicySet {
    private static let sealedNameParts = [
        "encrypted", "secret", "token_hash", "signature", "certificate", "nonce", "initialization_vector", "password",
    ]

    /// A bytea column, or one whose name says it holds a secret, token, signature or certificate.
    static func looksSealed(_ column: TableColumn) -> Bool {
        if column.type.spelling == "bytea" { return true }
        let name = column.name.lowercased()
        return sealedNameParts.contains { name.contains($0) }
    }
}

extension LintFinding.Code {
    /// An `anonymize:` method that gives different rows equal values (`replace`, `redact`,
    /// `truncate`, `truncate_ip`; `null` under NULLS NOT DISTINCT) on a column of a unique index:
    /// the second row of an erasure would violate it, mid-erasure.
    public static let maskingOnUniqueColumn = LintFinding.Code(rawValue: "masking-on-unique-column")
}

extension Anonymization {
    /// Whether the method can give two different values the same result (a fixed value, a
    /// truncation), so that it breaks a unique index on its column. `hmac` maps distinct values of a
    /// subject to distinct hashes (and different subjects' values under different keys); `null`
    /// is distinct from every other NULL unless the index says NULLS NOT DISTINCT.
    public func collapses(nullsNotDistinct: Bool) -> Bool {
        switch self {
        case .hmac: return false
        case .null: return nullsNotDistinct
        case .redact, .replace, .truncateDate, .truncateIP: return true
        }
    }
}

/// A unique index of the live database (`pg_index.indisunique`): its table, key columns and
/// whether NULLs count as equal in it.
public struct LiveUniqueIndex: Sendable, Hashable, Codable {
    public var table: String
    public var name: String
    public var columns: [String]
    public var nullsNotDistinct: Bool

    public init(table: String, name: String, columns: [String], nullsNotDistinct: Bool) {
        self.table = table
        self.name = name
        self.columns = columns
        self.nullsNotDistinct = nullsNotDistinct
    }
}

extension PolicySet {
    /// `anonymize:` entries whose method would give rows equal values in a column of one of the
    /// table's unique indexes (``LiveUniqueIndex``, read from the database: the policy files do
    /// not say which indexes are unique): errors, each at the entry's line in its file, with the
    /// methods that fit. An erasure with such a plan would stop at the second row of the subject
    /// (or at the first of a second subject) with a unique violation.
    public func maskingFindings(uniqueIndexes: [LiveUniqueIndex]) -> [LintFinding] {
        var findings: [LintFinding] = []
        let byTable = Dictionary(grouping: uniqueIndexes, by: \.table)
        for table in tables {
            guard case .anonymize(let columns)? = table.privacy?.erasure, let indexes = byTable[table.qualifiedName] else { continue }
            for (column, method) in columns {
                for index in indexes where index.columns.contains(column) && method.collapses(nullsNotDistinct: index.nullsNotDistinct) {
                    let hint =
                        index.nullsNotDistinct
                        ? "use hmac (distinct values stay distinct)" : "use hmac (distinct values stay distinct) or null"
                    findings.append(
                        LintFinding(
                            severity: .error, code: .maskingOnUniqueColumn, table: table.qualifiedName, policy: nil,
                            message: "anonymize.\(column): \(method.name) gives rows the same value, but \(column) is in unique index "
                                + "\(index.name) (\(index.columns.joined(separator: ", "))): the erasure would fail at the second row; \(hint)",
                            location: Self.anonymizeLocation(table, column: column)))
                    break
                }
            }
        }
        return findings
    }

    /// The line of `column:` under `anonymize:` in the table's file (the model keeps no location
    /// for it); the file's first line when the file cannot be read.
    static func anonymizeLocation(_ table: TablePolicy, column: String) -> SourceLocation? {
        guard let file = table.file else { return nil }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return SourceLocation(file: file, line: 1, column: 1) }
        var inside = false
        var indent = 0
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop { $0 == " " }
            let depth = line.count - trimmed.count
            if trimmed.hasPrefix("anonymize:") { inside = true; indent = depth; continue }
            guard inside, !trimmed.isEmpty else { continue }
            if depth <= indent { inside = false; continue }
            if trimmed.hasPrefix(column + ":") || trimmed.hasPrefix("\"\(column)\":") {
                return SourceLocation(file: file, line: number + 1, column: depth + 1)
            }
        }
        return SourceLocation(file: file, line: 1, column: 1)
    }
}
