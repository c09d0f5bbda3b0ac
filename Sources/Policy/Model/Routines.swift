/// Functions and views a policy file declares next to its table (`functions:`, `views:`): the
/// only ones `/rest/v1/rpc/{fn}` calls and `/rest/v1/{view}` serves. Nothing undeclared is
/// reachable, whatever the database's grants say.
///
/// ```yaml
/// functions:
///   - name: get_conversation_history
///     arguments: { p_session_id: uuid, p_limit: integer }   # in order, as migrated
///     optional: [p_limit]                                    # those with a DEFAULT
///     returns: setof conversation_messages                   # setof <governed table> | table | <type>
///     # columns: { role: text, … }                           # for returns: table
///     volatility: stable                                     # volatile | stable | immutable
///     security: invoker                                      # invoker (default) | definer
///     # justification: "…"                                  # required with security: definer
///     roles: [authenticated, service_role]                   # EXECUTE granted to these only
/// views:
///   - name: provider_usage_stats                             # must be WITH (security_invoker = true)
///     tenant_column: tenant_id                               # optional: also filtered by the request's tenant
///     columns: { tenant_id: uuid, provider: text, … }
///     roles: [authenticated, service_role]
/// ```
public struct FunctionDeclaration: Sendable {
    public enum Volatility: String, Sendable, CaseIterable {
        case volatile, stable, immutable
    }

    public enum Security: String, Sendable, CaseIterable {
        case invoker, definer
    }

    /// What the function returns, which decides the answer's shape.
    public enum Returns: Sendable {
        /// One value (`RETURNS integer`): answered as that JSON value.
        case scalar(SQLType)
        /// `RETURNS SETOF <governed table>`: rows of that table (its `rest_hidden` columns are
        /// never served), an array of objects that takes filters, order and limit.
        case setOf(table: String)
        /// `RETURNS TABLE (…)`: rows of the declared `columns:`.
        case table([TableColumn])
    }

    public let schema: String
    public let name: String
    /// Argument names and types in declaration order.
    public let arguments: [TableColumn]
    /// Arguments that have a DEFAULT and may be left out.
    public let optional: Set<String>
    public let returns: Returns
    public let volatility: Volatility
    public let security: Security
    /// Why the function must run as its owner (required for `security: definer`).
    public let justification: String?
    /// The request roles that may call it; EXECUTE is granted to these only.
    public let roles: [String]
    /// The governed table whose file declares it.
    public let declaredWith: String
    public let location: SourceLocation?

    /// `"schema"."name"`
    public var quotedName: String { SQLText.quoted(schema) + "." + SQLText.quoted(name) }
    public var qualifiedName: String { "\(schema).\(name)" }

    /// `name(type, …)` as in `GRANT EXECUTE ON FUNCTION`.
    public var signature: String {
        "\(qualifiedName)(" + arguments.map(\.type.canonical).joined(separator: ", ") + ")"
    }

    public func argument(named name: String) -> TableColumn? {
        arguments.first { $0.name == name }
    }

    /// Whether a request running as `role` may call it.
    public func allows(role: String) -> Bool { roles.contains(role) }
}

/// A view over governed tables, served read-only through `/rest/v1/{view}`.
public struct ViewDeclaration: Sendable {
    public let schema: String
    public let name: String
    /// When set, the gateway also keeps rows to the request's tenant (the base tables' RLS does
    /// already, the view being security_invoker).
    public let tenantColumn: String?
    public let columns: [TableColumn]
    public let roles: [String]
    /// The governed table whose file declares it.
    public let declaredWith: String
    public let location: SourceLocation?

    public var quotedName: String { SQLText.quoted(schema) + "." + SQLText.quoted(name) }
    public var qualifiedName: String { "\(schema).\(name)" }

    public func allows(role: String) -> Bool { roles.contains(role) }

    /// The view's columns as a read-only relation, for the REST grammar's column checks (select,
    /// filters, order). It has no policies of its own: the base tables' apply inside the view.
    public var shape: TablePolicy { TablePolicy.shape(schema: schema, name: name, columns: columns) }
}

extension TablePolicy {
    /// A relation that is not a governed table — a view, a function's result — with only a
    /// catalogue of columns, for checking REST column names against it. Never used for policies.
    public static func shape(schema: String = "public", name: String, columns: [TableColumn]) -> TablePolicy {
        TablePolicy(
            schema: schema, name: name, tenantColumn: "", subject: nil, columns: columns, indexes: [], policies: [],
            deniedCommands: [:], privacy: nil, rest: .read, file: nil)
    }
}

extension FunctionDeclaration {
    /// The result's columns as a relation (nil for a scalar), from the governed table for `setof`.
    public func resultShape(in policies: PolicySet) -> TablePolicy? {
        switch returns {
        case .scalar: return nil
        case .setOf(let table):
            guard let governed = policies.table(named: table) else { return nil }
            return TablePolicy.shape(name: name, columns: governed.restColumns)
        case .table(let columns): return TablePolicy.shape(name: name, columns: columns)
        }
    }
}

extension PolicySet {
    /// Every declared function, sorted by name.
    public var functions: [FunctionDeclaration] { tables.flatMap(\.functions).sorted { $0.name < $1.name } }
    /// Every declared view, sorted by name.
    public var views: [ViewDeclaration] { tables.flatMap(\.views).sorted { $0.name < $1.name } }

    public func function(named name: String) -> FunctionDeclaration? {
        for table in tables { if let found = table.functions.first(where: { $0.name == name }) { return found } }
        return nil
    }

    public func view(named name: String) -> ViewDeclaration? {
        for table in tables { if let found = table.views.first(where: { $0.name == name }) { return found } }
        return nil
    }

    /// `GRANT SELECT` on every declared view to the roles its file names, as migration 0018 applies
    /// them (the rights drift check expects exactly these).
    public var viewGrantStatements: [String] {
        views.filter { !$0.roles.isEmpty }.map { "GRANT SELECT ON \($0.qualifiedName) TO " + $0.roles.joined(separator: ", ") }
    }

    /// `REVOKE … FROM PUBLIC` and `GRANT EXECUTE … TO <roles>` for every declared function, as
    /// migration 0018 applies them: EXECUTE for the declared roles only.
    public var functionGrantStatements: [String] {
        functions.flatMap { function in
            ["REVOKE ALL ON FUNCTION \(function.signature) FROM PUBLIC"]
                + (function.roles.isEmpty
                    ? [] : ["GRANT EXECUTE ON FUNCTION \(function.signature) TO " + function.roles.joined(separator: ", ")])
        }
    }
}

/// Whether one role may execute one function of the live database (`has_function_privilege`,
/// grants to PUBLIC included). `signature` is `schema.name(type, …)` as ``FunctionDeclaration/signature``.
public struct LiveFunctionRights: Sendable, Hashable, Codable {
    public var signature: String
    public var role: String
    public var canExecute: Bool

    public init(signature: String, role: String, canExecute: Bool) {
        self.signature = signature
        self.role = role
        self.canExecute = canExecute
    }
}

extension PolicySet {
    /// Where EXECUTE on a declared function differs from its `roles:` (every checked role), or the
    /// function is missing, per signature. Undeclared functions are not listed: the gateway never
    /// calls them whatever their grants.
    public func functionRightsDrift(live: [LiveFunctionRights]) -> [String: [RightsDifference]] {
        var byFunction: [String: [String: Bool]] = [:]
        for row in live { byFunction[row.signature, default: [:]][row.role] = row.canExecute }
        var drift: [String: [RightsDifference]] = [:]
        for function in functions {
            guard let roles = byFunction[function.signature] else {
                drift[function.signature] = [
                    RightsDifference(role: "-", declared: "declared in \(function.declaredWith).yaml", live: "no such function")
                ]
                continue
            }
            for role in PolicySet.checkedRoles {
                let declared = function.allows(role: role)
                let actual = roles[role] ?? false
                if declared != actual {
                    drift[function.signature, default: []].append(
                        RightsDifference(role: role, declared: declared ? "EXECUTE" : "nothing", live: actual ? "EXECUTE" : "nothing"))
                }
            }
        }
        return drift
    }
}
