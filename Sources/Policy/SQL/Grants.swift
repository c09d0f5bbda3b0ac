/// What one role may do to one table, as the database decides it: the columns it may select,
/// insert and update, and whether it may delete. TRUNCATE, REFERENCES and TRIGGER are `other`:
/// no request role ever needs them.
public struct TableRights: Sendable, Hashable, Codable {
    public var select: Set<String>
    public var insert: Set<String>
    public var update: Set<String>
    public var delete: Bool
    public var other: Bool

    public init(select: Set<String> = [], insert: Set<String> = [], update: Set<String> = [], delete: Bool = false, other: Bool = false) {
        self.select = select
        self.insert = insert
        self.update = update
        self.delete = delete
        self.other = other
    }

    public static let nothing = TableRights()

    public var isNothing: Bool { self == .nothing }

    /// `SELECT (a, b), DELETE` — for reports and test failures.
    public var summary: String {
        var parts: [String] = []
        func columns(_ name: String, _ set: Set<String>) {
            if !set.isEmpty { parts.append("\(name) (\(set.sorted().joined(separator: ", ")))") }
        }
        columns("SELECT", select)
        columns("INSERT", insert)
        columns("UPDATE", update)
        if delete { parts.append("DELETE") }
        if other { parts.append("TRUNCATE/REFERENCES/TRIGGER") }
        return parts.isEmpty ? "nothing" : parts.joined(separator: ", ")
    }
}

/// One row of the live rights: `role` on `schemaname.tablename` (any relation: tables and views).
public struct LiveRights: Sendable, Hashable, Codable {
    public var schemaname: String
    public var tablename: String
    public var role: String
    public var rights: TableRights

    public init(schemaname: String = "public", tablename: String, role: String, rights: TableRights) {
        self.schemaname = schemaname
        self.tablename = tablename
        self.role = role
        self.rights = rights
    }
}

/// A role whose live rights on a table differ from what the policy files declare.
public struct RightsDifference: Sendable, Hashable, Codable {
    public var role: String
    public var declared: String
    public var live: String
}

extension TablePolicy {
    /// What `role` may do to the table, as the file declares it: the request roles get what
    /// `rest:` says (never `rest_hidden` columns); the secrets role gets everything on the tables
    /// `managed_by: secrets`, the privacy worker everything on the tables with a `subject:`, and
    /// nothing elsewhere.
    public func declaredRights(for role: String) -> TableRights {
        let all = Set(columns.map(\.name))
        if role == PolicySet.secretsRole {
            return managedBy == .secrets ? TableRights(select: all, insert: all, update: all, delete: true) : .nothing
        }
        if role == PolicySet.privacyRole {
            return subject != nil ? TableRights(select: all, insert: all, update: all, delete: true) : .nothing
        }
        guard PolicySet.requestRoles.contains(role) else { return .nothing }
        let visible = Set(restColumns.map(\.name))
        switch rest {
        case .none: return .nothing
        case .read: return TableRights(select: visible)
        case .readWrite: return TableRights(select: visible, insert: visible, update: visible, delete: true)
        }
    }
}

extension PolicySet {
    /// The roles whose rights the files declare and ``rightsDrift(live:)`` checks.
    public static let checkedRoles = requestRoles + [secretsRole, privacyRole]

    /// The GRANT/REVOKE statements that give every checked role exactly ``TablePolicy/declaredRights(for:)``
    /// on `table`. Re-running them is safe.
    public func grantStatements(for table: String) throws -> [String] {
        let governed = try compiledTable(table).table
        let name = governed.quotedName
        let roles = PolicySet.checkedRoles.map(SQLText.quoted).joined(separator: ", ")
        var statements = ["REVOKE ALL ON \(name) FROM \(roles);"]
        let requestRoles = PolicySet.requestRoles.map(SQLText.quoted).joined(separator: ", ")
        let visible = governed.restColumns.map { SQLText.quoted($0.name) }.joined(separator: ", ")
        let hides = !governed.restHidden.isEmpty
        switch governed.rest {
        case .none:
            break
        case .read:
            statements.append(
                hides
                    ? "GRANT SELECT (\(visible)) ON \(name) TO \(requestRoles);"
                    : "GRANT SELECT ON \(name) TO \(requestRoles);")
        case .readWrite:
            statements.append(
                hides
                    ? "GRANT SELECT (\(visible)), INSERT (\(visible)), UPDATE (\(visible)) ON \(name) TO \(requestRoles);"
                    : "GRANT SELECT, INSERT, UPDATE ON \(name) TO \(requestRoles);")
            statements.append("GRANT DELETE ON \(name) TO \(requestRoles);")
        }
        if governed.managedBy == .secrets {
            statements.append("GRANT SELECT, INSERT, UPDATE, DELETE ON \(name) TO \(SQLText.quoted(PolicySet.secretsRole));")
        }
        if governed.subject != nil {
            statements.append("GRANT SELECT, INSERT, UPDATE, DELETE ON \(name) TO \(SQLText.quoted(PolicySet.privacyRole));")
        }
        return statements
    }

    /// What the privacy worker may do beyond the tables with personal data: lock and delete the
    /// subject's `auth.users` row, list tenants, read the audit trail (0015_privacy_worker.sql),
    /// keep the current tenant's one-time identity codes (0023_identity_challenges.sql), its
    /// processors and their calls (0026_processors.sql).
    /// Kinds of right only (select, insert, update, delete), whatever the columns.
    public static let privacyWorkerExtraRights: [String: (select: Bool, insert: Bool, update: Bool, delete: Bool)] = [
        "auth.users": (true, false, true, true),
        "public.tenants": (true, false, false, false),
        "public.audit_events": (true, false, false, false),
        "privacy.tenant_identity_challenges": (true, true, true, true),
        "privacy.tenant_processors": (true, true, true, true),
        "privacy.tenant_processor_calls": (true, true, true, true),
    ]

    /// Where the live rights of the checked roles differ from the files, per relation
    /// (`schema.table`): governed tables against their declaration, every other relation against
    /// nothing — a table or view without a policy file is reachable by no request role.
    public func rightsDrift(live: [LiveRights]) -> [String: [RightsDifference]] {
        var byRelation: [String: [String: TableRights]] = [:]
        for row in live where PolicySet.checkedRoles.contains(row.role) {
            byRelation["\(row.schemaname).\(row.tablename)", default: [:]][row.role] = row.rights
        }
        var drift: [String: [RightsDifference]] = [:]
        for table in tables {
            let liveRights = byRelation.removeValue(forKey: table.qualifiedName) ?? [:]
            for role in PolicySet.checkedRoles {
                let declared = table.declaredRights(for: role)
                let actual = liveRights[role] ?? .nothing
                if declared != actual {
                    drift[table.qualifiedName, default: []].append(
                        RightsDifference(role: role, declared: declared.summary, live: actual.summary))
                }
            }
        }
        // Declared views: SELECT of every column for the roles their file names (Routines.swift).
        for view in views {
            let liveRights = byRelation.removeValue(forKey: view.qualifiedName) ?? [:]
            for role in PolicySet.checkedRoles {
                let declared = view.allows(role: role) ? TableRights(select: Set(view.columns.map(\.name))) : .nothing
                let actual = liveRights[role] ?? .nothing
                if declared != actual {
                    drift[view.qualifiedName, default: []].append(
                        RightsDifference(role: role, declared: declared.summary, live: actual.summary))
                }
            }
        }
        for (relation, roles) in byRelation {
            for (role, rights) in roles.sorted(by: { $0.key < $1.key }) where !rights.isNothing {
                if role == PolicySet.privacyRole, let allowed = PolicySet.privacyWorkerExtraRights[relation],
                    !rights.select.isEmpty == allowed.select, !rights.update.isEmpty == allowed.update,
                    rights.delete == allowed.delete, !rights.insert.isEmpty == allowed.insert, !rights.other
                {
                    continue
                }
                drift[relation, default: []].append(
                    RightsDifference(role: role, declared: "nothing (no policy file)", live: rights.summary))
            }
        }
        return drift
    }
}
