/// The loaded policy files: every governed table with its catalogue, policies and privacy rules,
/// compiled once for evaluation and SQL generation.
///
/// Immutable and `Sendable`; load it at start-up (``load(directory:)``) and share it.
public struct PolicySet: Sendable {
    /// The pseudo-role `TO public`: every role.
    public static let publicRole = "public"
    /// Name of the RESTRICTIVE policy implied by `tenant_column`, as the migrations create it.
    public static let tenantPolicyName = "tenant_isolation"
    /// The database roles a request can run as (DESIGN.md §3).
    public static let requestRoles = ["anon", "authenticated", "service_role"]
    /// The role `/v1/secrets` runs as (NOLOGIN; the gateway's login reaches it only through
    /// `SET LOCAL ROLE`): the only role with rights on the tables `managed_by: secrets`.
    public static let secretsRole = "gateway_secrets"
    /// The role data-subject requests and the retention sweep run as (NOLOGIN, reached through
    /// `SET LOCAL ROLE` with `request.tenant_id` set): on every table with a `subject:` it may do
    /// anything within the request's tenant (the implied ``privacyWorkerPolicyName`` policy), and
    /// nothing elsewhere. Erasure anonymises rows out of every subject's reach, which no
    /// subject-scoped policy could allow.
    public static let privacyRole = "privacy_worker"
    /// Name of the permissive policy implied by `subject:` for ``privacyRole``.
    public static let privacyWorkerPolicyName = "privacy_worker"
    /// What a policy's `roles` may name.
    static let knownRoles = requestRoles + [secretsRole, privacyRole, publicRole]

    /// The governed tables, sorted by name.
    public var tables: [TablePolicy] { catalogue.tables }

    let catalogue: Catalogue
    let compiled: [CompiledTable]

    /// Builds the catalogue only; callers check expressions against it before ``init(checked:)``.
    init(tables: [TablePolicy]) {
        catalogue = Catalogue(tables: tables)
        compiled = []
    }

    /// Compiles evaluation plans and SQL templates for tables whose expressions passed ``Binder/check``.
    init(checked tables: [TablePolicy]) {
        let catalogue = Catalogue(tables: tables)
        self.catalogue = catalogue
        let builder = PlanBuilder(catalogue: catalogue)
        compiled = catalogue.tables.map { CompiledTable(table: $0, builder: builder) }
    }

    /// The governed table called `name` (without schema), if any.
    public func table(named name: String) -> TablePolicy? {
        catalogue.governedTable(named: name)
    }

    func compiledTable(_ name: String) throws -> CompiledTable {
        guard let index = catalogue.names.index(of: name) else {
            throw PolicyError(
                .unknownTable, "table '\(name)' is not governed by a policy file",
                help: PolicyError.expectedOneOf(catalogue.governedTableNames))
        }
        return compiled[index]
    }
}

/// Governed tables by name.
struct Catalogue: TableCatalogue, Sendable {
    let tables: [TablePolicy]
    let index: [String: Int]
    /// The same map for the decision path, without SipHash.
    let names: NameIndex

    init(tables: [TablePolicy]) {
        self.tables = tables.sorted { $0.name < $1.name }
        var index: [String: Int] = [:]
        for (position, table) in self.tables.enumerated() { index[table.name] = position }
        self.index = index
        names = NameIndex(self.tables.map(\.name))
    }

    func governedTable(named name: String) -> TablePolicy? {
        index[name].map { tables[$0] }
    }

    var governedTableNames: [String] { tables.map(\.name) }
}

extension PolicySet: TableCatalogue {
    func governedTable(named name: String) -> TablePolicy? { catalogue.governedTable(named: name) }
    var governedTableNames: [String] { catalogue.governedTableNames }
}

/// A clause Postgres checks for a command: the policies that take part and which expression of each.
enum ClauseSlot: Int, CaseIterable, Sendable {
    case selectUsing, insertCheck, updateUsing, updateCheck, deleteUsing

    var command: PolicyCommand {
        switch self {
        case .selectUsing: return .select
        case .insertCheck: return .insert
        case .updateUsing, .updateCheck: return .update
        case .deleteUsing: return .delete
        }
    }

    var clause: PolicyClause {
        switch self {
        case .insertCheck, .updateCheck: return .withCheck
        case .selectUsing, .updateUsing, .deleteUsing: return .using
        }
    }

    init?(command: PolicyCommand, clause: PolicyClause) {
        switch (command, clause) {
        case (.select, .using): self = .selectUsing
        case (.insert, .withCheck): self = .insertCheck
        case (.update, .using): self = .updateUsing
        case (.update, .withCheck): self = .updateCheck
        case (.delete, .using): self = .deleteUsing
        default: return nil
        }
    }
}

/// One policy's expression for one clause, compiled.
struct PolicyPlan: Sendable {
    let rule: PolicyRule
    let expression: PolicyExpression
    let plan: Plan
    let sql: SQLTemplate
}

/// Classes rather than structs: a decision reaches them through one reference each instead of
/// copying (and retaining) every array they hold.
final class ClausePlans: Sendable {
    let restrictive: [PolicyPlan]
    let permissive: [PolicyPlan]
    /// Just the evaluation plans, for the hot path.
    let restrictivePlans: [Plan]
    let permissivePlans: [Plan]
    /// The combined predicate: restrictive ones AND-ed with the OR of the permissive ones.
    let sql: SQLTemplate

    init(restrictive: [PolicyPlan], permissive: [PolicyPlan]) {
        self.restrictive = restrictive
        self.permissive = permissive
        restrictivePlans = restrictive.map(\.plan)
        permissivePlans = permissive.map(\.plan)
        sql = SQLTemplate.combine(restrictive: restrictive.map(\.sql), permissive: permissive.map(\.sql))
    }
}

/// Everything one role needs for one table, per clause.
final class RolePlans: Sendable {
    let role: String
    let slots: [ClausePlans]

    init(role: String, slots: [ClausePlans]) {
        self.role = role
        self.slots = slots
    }

    subscript(slot: ClauseSlot) -> ClausePlans { slots[slot.rawValue] }
}

final class CompiledTable: Sendable {
    let table: TablePolicy
    let roles: [RolePlans]
    /// For a role no policy names: only `TO public` policies apply.
    let otherRoles: RolePlans

    init(table: TablePolicy, builder: PlanBuilder) {
        self.table = table
        let rules = table.effectivePolicies
        // Each (policy, clause) is compiled once and shared by every role it applies to.
        var compiledRules: [[ClauseSlot: PolicyPlan]] = []
        for rule in rules {
            var bySlot: [ClauseSlot: PolicyPlan] = [:]
            for slot in ClauseSlot.allCases where rule.command.covers(slot.command) {
                guard let expression = rule.expression(for: slot.clause) else { continue }
                bySlot[slot] = PolicyPlan(
                    rule: rule, expression: expression, plan: builder.plan(expression, table: table),
                    sql: SQLTemplate.build(expression, table: table, catalogue: builder.catalogue))
            }
            compiledRules.append(bySlot)
        }
        func plans(for role: String) -> RolePlans {
            let slots = ClauseSlot.allCases.map { slot in
                var restrictive: [PolicyPlan] = []
                var permissive: [PolicyPlan] = []
                for (index, rule) in rules.enumerated() where rule.applies(to: role) {
                    guard let plan = compiledRules[index][slot] else { continue }
                    if rule.kind == .restrictive {
                        restrictive.append(plan)
                    } else {
                        permissive.append(plan)
                    }
                }
                return ClausePlans(restrictive: restrictive, permissive: permissive)
            }
            return RolePlans(role: role, slots: slots)
        }
        roles = (PolicySet.requestRoles + [PolicySet.secretsRole, PolicySet.privacyRole]).map(plans(for:))
        otherRoles = plans(for: "")
    }

    func plans(for role: String) -> RolePlans {
        for plans in roles where plans.role == role { return plans }
        return otherRoles
    }
}

/// Name → position with FNV-1a and linear probing. Table names are few, short and not chosen by
/// an attacker (an unknown name just misses), so the keyed SipHash of `Dictionary` buys nothing on
/// a path that runs for every decision.
struct NameIndex: Sendable {
    private let slots: [Int]  // position + 1, 0 = empty
    private let names: [String]
    private let mask: Int

    init(_ names: [String]) {
        self.names = names
        var size = 8
        while size < names.count * 4 { size *= 2 }
        mask = size - 1
        var slots = [Int](repeating: 0, count: size)
        for (position, name) in names.enumerated() {
            var slot = NameIndex.hash(name) & (size - 1)
            while slots[slot] != 0 { slot = (slot + 1) & (size - 1) }
            slots[slot] = position + 1
        }
        self.slots = slots
    }

    func index(of name: String) -> Int? {
        var slot = NameIndex.hash(name) & mask
        while true {
            let entry = slots[slot]
            if entry == 0 { return nil }
            if names[entry - 1] == name { return entry - 1 }
            slot = (slot + 1) & mask
        }
    }

    private static func hash(_ name: String) -> Int {
        func fnv<S: Sequence<UInt8>>(_ bytes: S) -> Int {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in bytes {
                hash ^= UInt64(byte)
                hash &*= 0x0000_0100_0000_01b3
            }
            return Int(truncatingIfNeeded: hash ^ (hash >> 32))
        }
        return name.utf8.withContiguousStorageIfAvailable { fnv($0) } ?? fnv(name.utf8)
    }
}
