/// The outcome of a decision.
public enum PolicyDecision: String, Sendable, Hashable, Codable {
    case allowed
    /// A USING clause filtered the existing row out: a SELECT does not return it, an UPDATE or
    /// DELETE does not touch it (Postgres reports zero rows, not an error).
    case rowHidden = "row_hidden"
    /// A WITH CHECK clause refused the new row: Postgres fails the statement with
    /// `new row violates row-level security policy` (SQLSTATE 42501).
    case rowRejected = "row_rejected"

    public var isAllowed: Bool { self == .allowed }
}

/// Which row a clause is checked against.
public enum RowSide: String, Sendable, Hashable, Codable {
    /// The row as stored (SELECT, and UPDATE/DELETE before the change).
    case existing
    /// The row as written (INSERT, and UPDATE after the change).
    case new
}

/// One check Postgres makes for a command, in order.
struct DecisionStep: Sendable {
    let slot: ClauseSlot
    let side: RowSide
    let failure: PolicyDecision

    /// Postgres' table "Policies Applied by Command Type" (CREATE POLICY docs). `returning` stands
    /// for any statement that reads the table's columns (RETURNING, or a WHERE over its columns):
    /// then SELECT policies apply too — filtering existing rows, and checking new ones.
    static func steps(for command: PolicyCommand, returning: Bool) -> [DecisionStep] {
        switch (command, returning) {
        case (.select, _): return selectSteps
        case (.insert, false): return insertSteps
        case (.insert, true): return insertReturningSteps
        case (.update, false): return updateSteps
        case (.update, true): return updateReturningSteps
        case (.delete, false): return deleteSteps
        case (.delete, true): return deleteReturningSteps
        case (.all, _): return []
        }
    }

    private static let selectSteps = [DecisionStep(slot: .selectUsing, side: .existing, failure: .rowHidden)]
    private static let insertSteps = [DecisionStep(slot: .insertCheck, side: .new, failure: .rowRejected)]
    private static let insertReturningSteps = insertSteps + [DecisionStep(slot: .selectUsing, side: .new, failure: .rowRejected)]
    private static let updateSteps = [
        DecisionStep(slot: .updateUsing, side: .existing, failure: .rowHidden),
        DecisionStep(slot: .updateCheck, side: .new, failure: .rowRejected),
    ]
    private static let updateReturningSteps = [
        DecisionStep(slot: .updateUsing, side: .existing, failure: .rowHidden),
        DecisionStep(slot: .selectUsing, side: .existing, failure: .rowHidden),
        DecisionStep(slot: .updateCheck, side: .new, failure: .rowRejected),
        DecisionStep(slot: .selectUsing, side: .new, failure: .rowRejected),
    ]
    private static let deleteSteps = [DecisionStep(slot: .deleteUsing, side: .existing, failure: .rowHidden)]
    private static let deleteReturningSteps = deleteSteps + [DecisionStep(slot: .selectUsing, side: .existing, failure: .rowHidden)]
}

extension PolicySet {
    /// Decides whether `command` on one row of `table` is allowed for `auth`, as Postgres RLS would.
    ///
    /// - Parameters:
    ///   - existing: the stored row, for select, update and delete.
    ///   - new: the row as written, for insert and update (with defaults applied; absent columns read as NULL).
    ///   - returning: the statement reads the table's columns (RETURNING, or a WHERE over them), so
    ///     SELECT policies apply too.
    ///   - lookup: rows of other tables for EXISTS subqueries.
    public func decide(
        _ command: PolicyCommand, on table: String, auth: AuthContext, existing: PolicyRow? = nil,
        new: PolicyRow? = nil, returning: Bool = false, lookup: any RowLookup = NoRows()
    ) throws -> PolicyDecision {
        let compiled = try compiledTable(table)
        let steps = try DecisionStep.steps(checking: command, existing: existing, new: new, returning: returning)
        let plans = compiled.plans(for: auth.role)
        let evaluator = Evaluator(all: self.compiled, auth: auth, lookup: lookup)
        for step in steps {
            let row = (step.side == .existing ? existing : new) ?? [:]
            if !evaluator.passes(plans[step.slot], row: row) { return step.failure }
        }
        return .allowed
    }
}

extension DecisionStep {
    static func steps(checking command: PolicyCommand, existing: PolicyRow?, new: PolicyRow?, returning: Bool) throws -> [DecisionStep] {
        guard command != .all else {
            throw PolicyError(
                .invalidRequest, "a request runs one command, not 'all'",
                help: PolicyError.expectedOneOf(PolicyCommand.requestCommands.map(\.rawValue)))
        }
        let steps = DecisionStep.steps(for: command, returning: returning)
        if existing == nil, steps.contains(where: { $0.side == .existing }) {
            throw PolicyError(.invalidRequest, "\(command.rawValue) needs the existing row", help: "pass existing:")
        }
        if new == nil, steps.contains(where: { $0.side == .new }) {
            throw PolicyError(.invalidRequest, "\(command.rawValue) needs the new row", help: "pass new:")
        }
        return steps
    }
}

/// Rows in scope while evaluating: the current level's row and, inside EXISTS, the enclosing ones.
struct Rows {
    let row: PolicyRow
    let level: Int
    let outer: OuterRows?

    func value(level wanted: Int, name: String) -> PolicyValue {
        if wanted == level { return row[name] ?? .null }
        var cursor = outer
        while let frame = cursor {
            if frame.rows.level == wanted { return frame.rows.row[name] ?? .null }
            cursor = frame.rows.outer
        }
        return .null
    }
}

final class OuterRows: Sendable {
    let rows: Rows
    init(_ rows: Rows) { self.rows = rows }
}

extension Rows: Sendable {}

/// Evaluates compiled plans with SQL's three-valued logic.
struct Evaluator {
    let all: [CompiledTable]
    let auth: AuthContext
    let lookup: any RowLookup

    /// Restrictive policies AND-ed, permissive ones OR-ed, and no permissive policy means deny.
    func passes(_ clause: ClausePlans, row: PolicyRow) -> Bool {
        let rows = Rows(row: row, level: 0, outer: nil)
        for plan in clause.restrictivePlans where truth(plan, rows) != .yes {
            return false
        }
        for plan in clause.permissivePlans where truth(plan, rows) == .yes {
            return true
        }
        return false
    }

    func truth(_ plan: Plan, _ rows: Rows) -> Truth {
        switch plan {
        case .compareColumn(let level, let name, let op, let operand):
            guard let order = PolicyValue.compare(rows.value(level: level, name: name), value(of: operand)) else {
                return .unknown
            }
            return op.holds(order) ? .yes : .no
        case .compare(let lhs, let op, let rhs):
            guard let order = PolicyValue.compare(value(lhs, rows), value(rhs, rows)) else { return .unknown }
            return op.holds(order) ? .yes : .no
        case .and(let terms):
            var result = Truth.yes
            for term in terms {
                switch truth(term, rows) {
                case .no: return .no
                case .unknown: result = .unknown
                case .yes: continue
                }
            }
            return result
        case .or(let terms):
            var result = Truth.no
            for term in terms {
                switch truth(term, rows) {
                case .yes: return .yes
                case .unknown: result = .unknown
                case .no: continue
                }
            }
            return result
        case .not(let inner):
            return truth(inner, rows).negated
        case .isNull(let inner, let negated):
            return value(inner, rows).isNull != negated ? .yes : .no
        case .isBoolean(let inner, let expected, let negated):
            let matches = truth(inner, rows) == (expected ? .yes : .no)
            return matches != negated ? .yes : .no
        case .inList(let lhs, let items, let negated):
            let left = value(lhs, rows)
            var sawUnknown = false
            for item in items {
                guard let order = PolicyValue.compare(left, value(item, rows)) else {
                    sawUnknown = true
                    continue
                }
                if order == 0 { return negated ? .no : .yes }
            }
            return sawUnknown ? .unknown : (negated ? .yes : .no)
        case .quantified(let lhs, let op, let all, let arrayPlan):
            guard case .array(let elements) = value(arrayPlan, rows) else { return .unknown }
            let left = value(lhs, rows)
            var sawUnknown = false
            for element in elements {
                guard let order = PolicyValue.compare(left, element) else {
                    sawUnknown = true
                    continue
                }
                let holds = op.holds(order)
                if all && !holds { return .no }
                if !all && holds { return .yes }
            }
            if sawUnknown { return .unknown }
            return all ? .yes : .no
        case .exists(let subquery):
            return exists(subquery, rows) ? .yes : .no
        default:
            switch value(plan, rows) {
            case .bool(let flag): return flag ? .yes : .no
            case .text(let text): return PolicyValue.parseBool(text).map { $0 ? .yes : .no } ?? .unknown
            default: return .unknown
            }
        }
    }

    func value(of operand: Operand) -> PolicyValue {
        switch operand {
        case .constant(let value): return value
        case .authUID: return auth.uidValue
        case .authTenantID: return auth.tenantValue
        case .authRole: return auth.roleClaimValue
        case .claim(let name): return auth.claimText(name)
        }
    }

    func value(_ plan: Plan, _ rows: Rows) -> PolicyValue {
        switch plan {
        case .column(let level, let name):
            return rows.value(level: level, name: name)
        case .constant(let value):
            return value
        case .authUID:
            return auth.uidValue
        case .authTenantID:
            return auth.tenantValue
        case .authRole:
            return auth.roleClaimValue
        case .claim(let name):
            return auth.claimText(name)
        case .cast(let inner, let kind):
            return Evaluator.cast(value(inner, rows), to: kind)
        case .array(let items):
            return .array(items.map { value($0, rows) })
        default:
            return truth(plan, rows).value
        }
    }

    /// Postgres runs a subquery's table through that table's own policies (SELECT, for this
    /// request's role), so EXISTS sees only rows the caller may see.
    private func exists(_ subquery: ExistsPlan, _ rows: Rows) -> Bool {
        var key: (column: String, value: PolicyValue)?
        if let wanted = subquery.key {
            let keyValue = value(wanted.value, rows)
            // `inner.column = NULL` holds for no row.
            if keyValue.isNull { return false }
            key = (wanted.column, keyValue)
        }
        let outer = OuterRows(rows)
        let inner = all[subquery.tableIndex]
        let innerSelect = inner.plans(for: auth.role)[.selectUsing]
        return lookup.containsRow(in: subquery.tableName, key: key) { candidate in
            if let condition = subquery.condition,
                truth(condition, Rows(row: candidate, level: subquery.level, outer: outer)) != .yes
            {
                return false
            }
            return passes(innerSelect, row: candidate)
        }
    }

    /// A runtime cast; a value that does not convert counts as NULL (Postgres would fail the
    /// statement — either way nothing is allowed on its strength).
    static func cast(_ value: PolicyValue, to kind: PolicyValue.Kind?) -> PolicyValue {
        guard let kind else { return value }
        switch (value, kind) {
        case (.null, _): return .null
        case (_, .text): return value.textValue.map(PolicyValue.text) ?? .null
        case (.uuid, .uuid), (.int, .integer), (.double, .number), (.bool, .boolean): return value
        case (.text(let text), _): return PolicyValue.parse(text, as: kind) ?? .null
        case (.int(let number), .number): return .double(Double(number))
        case (.double(let number), .integer):
            let rounded = number.rounded(.toNearestOrAwayFromZero)
            return rounded.isFinite && abs(rounded) < 9.2e18 ? .int(Int64(rounded)) : .null
        case (.bool(let flag), .integer): return .int(flag ? 1 : 0)
        case (.int(let number), .boolean): return .bool(number != 0)
        default: return .null
        }
    }
}
