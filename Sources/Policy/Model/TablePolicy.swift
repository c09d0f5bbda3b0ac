/// An SQL command a policy governs. `all` covers the other four.
public enum PolicyCommand: String, Sendable, Hashable, Codable, CaseIterable {
    case select, insert, update, delete, all

    /// The four commands a request runs (everything but `all`).
    public static let requestCommands: [PolicyCommand] = [.select, .insert, .update, .delete]

    /// Whether a policy for `self` governs `command`.
    func covers(_ command: PolicyCommand) -> Bool {
        self == command || self == .all
    }

    var sqlKeyword: String { rawValue.uppercased() }
}

/// Postgres' two kinds of policy: permissive ones are OR-ed, restrictive ones AND-ed.
public enum PolicyKind: String, Sendable, Hashable, Codable {
    case permissive, restrictive
}

/// The two clauses of a policy.
public enum PolicyClause: String, Sendable, Hashable, Codable {
    case using
    case withCheck = "with_check"

    var sqlKeyword: String { self == .using ? "USING" : "WITH CHECK" }
}

/// One `CREATE POLICY`: an entry of a file's `policies:` list, or the implied tenant policy.
public struct PolicyRule: Sendable, Hashable {
    public let name: String
    public let command: PolicyCommand
    /// Role names; `public` means every role.
    public let roles: [String]
    public let kind: PolicyKind
    public let using: PolicyExpression?
    public let withCheck: PolicyExpression?
    /// Where the entry starts in its file; nil for the implied tenant policy.
    public let location: SourceLocation?

    init(
        name: String, command: PolicyCommand, roles: [String], kind: PolicyKind = .permissive,
        using: PolicyExpression?, withCheck: PolicyExpression?, location: SourceLocation? = nil
    ) {
        self.name = name
        self.command = command
        self.roles = roles
        self.kind = kind
        self.using = using
        self.withCheck = withCheck
        self.location = location
    }

    /// Whether the policy applies to a request running as `role` (`TO public` applies to all).
    public func applies(to role: String) -> Bool {
        roles.contains(role) || roles.contains(PolicySet.publicRole)
    }

    /// The expression Postgres checks for `clause` of `command`: WITH CHECK falls back to USING
    /// for UPDATE and ALL policies, as Postgres does.
    func expression(for clause: PolicyClause) -> PolicyExpression? {
        switch clause {
        case .using: return using
        case .withCheck: return withCheck ?? using
        }
    }
}

/// A column of a governed table's catalogue.
public struct TableColumn: Sendable, Hashable {
    public let name: String
    public let type: SQLType
}

/// Whose personal data a row is (GDPR): a column holding the user id, or a parent row that has one.
public enum SubjectReference: Sendable, Hashable {
    /// `subject: { column: user_id }`
    case column(String)
    /// `subject: { via: project_id, references: projects.id }`
    case via(column: String, table: String, referencedColumn: String)
}

/// How a table's rows of a subject are erased.
public enum ErasureStrategy: Sendable, Hashable {
    case delete
    /// Overwrite the listed columns (in file order) and keep the row.
    case anonymize([(column: String, method: Anonymization)])
    /// Keep the rows on a legal ground until the period ends.
    case retain(basis: String, until: RetentionPeriod)

    public static func == (lhs: ErasureStrategy, rhs: ErasureStrategy) -> Bool {
        switch (lhs, rhs) {
        case (.delete, .delete): return true
        case (.anonymize(let a), .anonymize(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.column == $1.column && $0.method == $1.method }
        case (.retain(let a, let x), .retain(let b, let y)): return a == b && x == y
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .delete: hasher.combine(0)
        case .anonymize(let columns):
            hasher.combine(1)
            for entry in columns {
                hasher.combine(entry.column)
                hasher.combine(entry.method)
            }
        case .retain(let basis, let until):
            hasher.combine(2)
            hasher.combine(basis)
            hasher.combine(until)
        }
    }
}

/// What an anonymised column becomes (a policy file's `anonymize: { column: <method> }`). The
/// loader checks that each method fits its column's type, with the entry's file:line:column.
public enum Anonymization: Sendable, Hashable {
    /// SQL NULL (`null`).
    case null
    /// HMAC-SHA-256 of the value under a key derived from the subject's data key, as 64 hex
    /// characters (`hmac`; `hash`, the former unkeyed SHA-256, is now this). Equal values of one
    /// subject stay equal; once erasure shreds the subject key nobody can recompute it, so a
    /// guessed value cannot be tested against the row. Text columns of at least 64 characters.
    case hmac
    /// A fixed placeholder of the column's type (`''`, `'{}'`, `[redacted]`).
    case redact
    /// A fixed value, given as text and checked against the column's type (`{ replace: "…" }`).
    case replace(String)
    /// A date or timestamp cut to the start of its day, month or year, in UTC (`{ truncate: month }`).
    case truncateDate(RetentionPeriod.Unit)
    /// An `inet` cut to its network: the first `ipv4` bits of an IPv4 address, `ipv6` of an IPv6 one
    /// (`truncate_ip`: /24 and /48; or `{ truncate_ip: { ipv4: 16, ipv6: 32 } }`).
    case truncateIP(ipv4: Int, ipv6: Int)

    /// The keywords a policy file may write for a column.
    public static let keywords = [
        "null", "hmac", "hash", "redact", "{ replace: <value> }", "{ truncate: day|month|year }",
        "truncate_ip", "{ truncate_ip: { ipv4: <0-32>, ipv6: <0-128> } }",
    ]

    /// The method's name in plans and messages.
    public var name: String {
        switch self {
        case .null: return "null"
        case .hmac: return "hmac"
        case .redact: return "redact"
        case .replace: return "replace"
        case .truncateDate(let unit): return "truncate_\(unit.rawValue)"
        case .truncateIP(let v4, let v6): return "truncate_ip/\(v4)/\(v6)"
        }
    }
}

/// A period such as `3 years`, `6 months`, `30 days`.
public struct RetentionPeriod: Sendable, Hashable, CustomStringConvertible {
    public enum Unit: String, Sendable, Hashable {
        case day, month, year
    }
    public let count: Int
    public let unit: Unit

    public var description: String { "\(count) \(unit.rawValue)\(count == 1 ? "" : "s")" }

    init?(_ text: String) {
        let parts = text.split(separator: " ")
        guard parts.count == 2, let count = Int(parts[0]), count > 0 else { return nil }
        var word = parts[1].lowercased()
        if word.hasSuffix("s") { word.removeLast() }
        guard let unit = Unit(rawValue: word) else { return nil }
        self.count = count
        self.unit = unit
    }
}

/// A table's `privacy:` section.
public struct PrivacyRules: Sendable, Hashable {
    /// Include the table in data exports (Art. 15/20).
    public let export: Bool
    public let erasure: ErasureStrategy
    /// Rows older than this many days are swept, when set.
    public let retentionDays: Int?
}

/// How `/rest/v1` may reach a table: the policy file's `rest:` (absent means `none`, default-deny).
/// The database grants the request roles exactly this (``PolicySet/grantStatements(for:)``).
public enum RESTExposure: String, Sendable, Hashable, CaseIterable {
    /// Not served: the table is reached only through its `/v1` API (or not at all).
    case none
    /// GET and HEAD of the columns not in `rest_hidden`; no writes.
    case read
    /// The four commands, as the policies allow.
    case readWrite = "read_write"

    /// Whether a request running `command` may reach the table at all (policies decide the rows).
    public func allows(_ command: PolicyCommand) -> Bool {
        switch self {
        case .none: return false
        case .read: return command == .select
        case .readWrite: return true
        }
    }
}

/// The `/v1` API that owns a table's writes (`managed_by:`). Such a table is never REST-writable:
/// its rows are sealed or are workflow state whose every change must be audited.
public enum ManagedBy: String, Sendable, Hashable, CaseIterable {
    /// `/v1/secrets`: runs as the ``PolicySet/secretsRole``, audited.
    case secrets
    /// `/v1/privacy`, `privacyctl` and the privacy worker.
    case privacy
}

/// One governed table: its file, catalogue, policies and privacy rules.
public struct TablePolicy: Sendable {
    public let schema: String
    public let name: String
    /// The column every row's tenant is in; the implied RESTRICTIVE policy compares it with `auth.tenant_id()`.
    public let tenantColumn: String
    public let subject: SubjectReference?
    /// The table's columns in table order, mirroring the migrations.
    public let columns: [TableColumn]
    /// Column lists of the table's indexes (primary key and unique constraints included).
    public let indexes: [[String]]
    /// The file's `policies:` entries, in file order (without the implied tenant policy).
    public let policies: [PolicyRule]
    /// Commands deliberately left without a policy, with the reason.
    public let deniedCommands: [PolicyCommand: String]
    public let privacy: PrivacyRules?
    /// How `/rest/v1` may reach the table.
    public let rest: RESTExposure
    /// Columns `/rest/v1` never serves (and the request roles may not select): sealed values,
    /// tokens, workflow internals.
    public let restHidden: Set<String>
    /// The `/v1` API that owns the table's writes, if any.
    public let managedBy: ManagedBy?
    /// The file the table was loaded from.
    public let file: String?
    /// Functions the file declares (`functions:`), callable through `/rest/v1/rpc`.
    public let functions: [FunctionDeclaration]
    /// Views the file declares (`views:`), served read-only through `/rest/v1`.
    public let views: [ViewDeclaration]

    let columnIndex: [String: Int]

    init(
        schema: String, name: String, tenantColumn: String, subject: SubjectReference?, columns: [TableColumn],
        indexes: [[String]], policies: [PolicyRule], deniedCommands: [PolicyCommand: String], privacy: PrivacyRules?,
        rest: RESTExposure = .none, restHidden: Set<String> = [], managedBy: ManagedBy? = nil, file: String?,
        functions: [FunctionDeclaration] = [], views: [ViewDeclaration] = []
    ) {
        self.functions = functions
        self.views = views
        self.schema = schema
        self.name = name
        self.tenantColumn = tenantColumn
        self.subject = subject
        self.columns = columns
        self.indexes = indexes
        self.policies = policies
        self.deniedCommands = deniedCommands
        self.privacy = privacy
        self.rest = rest
        self.restHidden = restHidden
        self.restColumns = columns.filter { !restHidden.contains($0.name) }
        self.managedBy = managedBy
        self.file = file
        var index: [String: Int] = [:]
        for (position, column) in columns.enumerated() { index[column.name] = position }
        self.columnIndex = index
        self.quotedName = SQLText.quoted(schema) + "." + SQLText.quoted(name)
    }

    /// `schema.table`
    public var qualifiedName: String { "\(schema).\(name)" }

    /// The RESTRICTIVE `tenant_isolation` policy every governed table has, exactly as the migrations create it.
    public var tenantIsolation: PolicyRule {
        let check = PolicyExpression.comparison(.column(.init(name: tenantColumn)), .equal, .auth(.tenantID))
        return PolicyRule(
            name: PolicySet.tenantPolicyName, command: .all, roles: [PolicySet.publicRole], kind: .restrictive,
            using: check, withCheck: check)
    }

    /// The permissive policy every table with a `subject:` has for the privacy worker: any row of
    /// the request's tenant (the tenant policy still applies), for export, erasure and retention.
    public var privacyWorkerPolicy: PolicyRule? {
        guard subject != nil else { return nil }
        let always = PolicyExpression.literal(.bool(true))
        return PolicyRule(
            name: PolicySet.privacyWorkerPolicyName, command: .all, roles: [PolicySet.privacyRole], using: always, withCheck: always)
    }

    /// The implied policies (tenant, privacy worker) followed by the file's policies: everything
    /// Postgres enforces on the table.
    public var effectivePolicies: [PolicyRule] { [tenantIsolation] + (privacyWorkerPolicy.map { [$0] } ?? []) + policies }

    /// The columns `/rest/v1` serves, in table order (`*` expands to these; built once).
    public let restColumns: [TableColumn]

    /// The column if `/rest/v1` serves it: nil for unknown and `rest_hidden` columns alike.
    public func restColumn(named name: String) -> TableColumn? {
        restHidden.contains(name) ? nil : column(named: name)
    }

    public func column(named name: String) -> TableColumn? {
        columnIndex[name].map { columns[$0] }
    }

    /// The column as a quoted SQL identifier, refused unless it is in the catalogue — the check
    /// every identifier passes before it reaches SQL text.
    public func quotedColumn(_ name: String) throws -> String {
        guard columnIndex[name] != nil else {
            throw PolicyError(
                .unknownColumn, "column '\(name)' does not exist in \(qualifiedName)",
                help: "available columns: " + columns.map(\.name).joined(separator: ", "))
        }
        return SQLText.quoted(name)
    }

    /// `"schema"."table"` (built once: every request's SQL names its table).
    public let quotedName: String
}
