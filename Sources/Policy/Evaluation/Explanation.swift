/// Why a decision came out as it did: every check Postgres makes for the command, the policies
/// that took part in each with their results, and the policy, clause and sub-expression that
/// decided. Renders as text (``description``) and encodes as JSON.
public struct Explanation: Sendable, Hashable, Codable, CustomStringConvertible {
    /// One policy's part in a check.
    public struct PolicyOutcome: Sendable, Hashable, Codable {
        public let name: String
        public let kind: PolicyKind
        /// The clause whose expression was evaluated (WITH CHECK may fall back to USING).
        public let clause: PolicyClause
        public let expression: String
        /// `true`, `false` or `null` (SQL's unknown, which does not pass).
        public let result: String
        /// The sub-expression that made the result, e.g. `auth.uid() = user_id is null (auth.uid() is NULL)`.
        public let deciding: String
    }

    /// One check: a clause of one command's policies against one row.
    public struct Check: Sendable, Hashable, Codable {
        /// Whose policies: `update` for UPDATE's own checks, `select` when SELECT policies also apply.
        public let policies: PolicyCommand
        public let clause: PolicyClause
        public let row: RowSide
        public let passed: Bool
        public let restrictive: [PolicyOutcome]
        public let permissive: [PolicyOutcome]
        /// Policies of this command that do not apply to the request's role.
        public let notApplicable: [String]

        enum CodingKeys: String, CodingKey {
            case policies, clause, row, passed, restrictive, permissive
            case notApplicable = "not_applicable"
        }
    }

    public let table: String
    public let command: PolicyCommand
    public let role: String
    public let decision: PolicyDecision
    public let checks: [Check]
    /// The policy that decided, when one did (nil when no permissive policy applied at all).
    public let decidingPolicy: String?
    public let decidingClause: PolicyClause?
    /// One sentence: what decided and why.
    public let reason: String

    enum CodingKeys: String, CodingKey {
        case table, command, role, decision, checks, reason
        case decidingPolicy = "deciding_policy"
        case decidingClause = "deciding_clause"
    }

    public var description: String {
        var lines = [
            "\(command.rawValue.uppercased()) on \(table) as \(role): \(decision.rawValue.uppercased().replacingOccurrences(of: "_", with: " "))"
        ]
        for (number, check) in checks.enumerated() {
            let verdict = check.passed ? "passed" : "failed"
            lines.append(
                "  \(number + 1). \(check.clause.sqlKeyword) of \(check.policies.rawValue.uppercased()) policies on the \(check.row.rawValue) row: \(verdict)"
            )
            for outcome in check.restrictive + check.permissive {
                let mark = outcome.result == "true" ? "✓" : "✗"
                lines.append(
                    "     \(mark) \(outcome.kind.rawValue) \"\(outcome.name)\" \(outcome.clause.sqlKeyword): \(outcome.result) — \(outcome.deciding)"
                )
            }
            if check.permissive.isEmpty {
                lines.append("     ✗ no permissive policy applies to role \(role)")
            }
            if !check.notApplicable.isEmpty {
                lines.append("     (not for role \(role): " + check.notApplicable.map { "\"\($0)\"" }.joined(separator: ", ") + ")")
            }
        }
        lines.append("  decided by: \(reason)")
        return lines.joined(separator: "\n")
    }
}

extension PolicySet {
    /// Explains ``decide(_:on:auth:existing:new:returning:lookup:)`` for the same arguments: the
    /// same checks, in the same order, with each policy's result and the deciding clause.
    public func explain(
        _ command: PolicyCommand, on table: String, auth: AuthContext, existing: PolicyRow? = nil,
        new: PolicyRow? = nil, returning: Bool = false, lookup: any RowLookup = NoRows()
    ) throws -> Explanation {
        let compiled = try compiledTable(table)
        let steps = try DecisionStep.steps(checking: command, existing: existing, new: new, returning: returning)
        let plans = compiled.plans(for: auth.role)
        let evaluator = Evaluator(all: self.compiled, auth: auth, lookup: lookup)
        var checks: [Explanation.Check] = []
        var decision = PolicyDecision.allowed
        var decidingPolicy: String?
        var decidingClause: PolicyClause?
        var reason = ""

        for step in steps {
            let rows = Rows(row: ((step.side == .existing ? existing : new) ?? [:]), level: 0, outer: nil)
            let clause = plans[step.slot]
            func outcome(_ policy: PolicyPlan) -> (Explanation.PolicyOutcome, Truth) {
                let (truth, deciding) = evaluator.trace(policy.plan, policy.expression, rows)
                let usedClause: PolicyClause = step.slot.clause == .withCheck && policy.rule.withCheck == nil ? .using : step.slot.clause
                return (
                    Explanation.PolicyOutcome(
                        name: policy.rule.name, kind: policy.rule.kind, clause: usedClause,
                        expression: policy.expression.description, result: truth.text, deciding: deciding), truth
                )
            }
            let restrictive = clause.restrictive.map(outcome)
            let permissive = clause.permissive.map(outcome)
            let failedRestrictive = restrictive.first { $0.1 != .yes }
            let allowing = permissive.first { $0.1 == .yes }
            let passed = failedRestrictive == nil && allowing != nil
            let applicable = Set((clause.restrictive + clause.permissive).map(\.rule.name))
            let notApplicable = compiled.table.effectivePolicies.filter {
                $0.command.covers(step.slot.command) && !applicable.contains($0.name)
                    && $0.expression(for: step.slot.clause) != nil
            }.map(\.name)
            checks.append(
                Explanation.Check(
                    policies: step.slot.command, clause: step.slot.clause, row: step.side, passed: passed,
                    restrictive: restrictive.map(\.0), permissive: permissive.map(\.0), notApplicable: notApplicable))

            let place =
                "\(step.slot.clause.sqlKeyword) of \(step.slot.command.rawValue.uppercased()) policies on the \(step.side.rawValue) row"
            if let (failed, _) = failedRestrictive {
                decision = step.failure
                decidingPolicy = failed.name
                decidingClause = failed.clause
                reason =
                    "restrictive policy \"\(failed.name)\" (\(failed.clause.sqlKeyword)) is \(failed.result) in \(place): \(failed.deciding)"
                break
            }
            if permissive.isEmpty {
                decision = step.failure
                decidingPolicy = nil
                decidingClause = step.slot.clause
                reason =
                    "no permissive policy for \(step.slot.command.rawValue.uppercased()) applies to role \(auth.role) (\(place)); default deny"
                break
            }
            if let (allowed, _) = allowing {
                decidingPolicy = allowed.name
                decidingClause = allowed.clause
                reason = "permissive policy \"\(allowed.name)\" (\(allowed.clause.sqlKeyword)) is true in \(place): \(allowed.deciding)"
                continue
            }
            decision = step.failure
            if permissive.count == 1, let only = permissive.first?.0 {
                decidingPolicy = only.name
                decidingClause = only.clause
                reason =
                    "the only permissive policy \"\(only.name)\" (\(only.clause.sqlKeyword)) is \(only.result) in \(place): \(only.deciding)"
            } else {
                decidingPolicy = nil
                decidingClause = step.slot.clause
                reason =
                    "none of the \(permissive.count) permissive policies is true in \(place): "
                    + permissive.map { "\"\($0.0.name)\": \($0.0.deciding)" }.joined(separator: "; ")
            }
            break
        }
        return Explanation(
            table: compiled.table.qualifiedName, command: command, role: auth.role, decision: decision, checks: checks,
            decidingPolicy: decidingPolicy, decidingClause: decidingClause, reason: reason)
    }
}

extension Evaluator {
    /// The truth of `plan` and the sub-expression of `expression` that decided it: the first false
    /// conjunct of a false AND, the first true disjunct of a true OR, the comparison itself at a leaf.
    /// `plan` was built from `expression`, so AND/OR/NOT line up one to one.
    func trace(_ plan: Plan, _ expression: PolicyExpression, _ rows: Rows) -> (Truth, String) {
        switch (plan, expression) {
        case (.and(let plans), .and(let terms)) where plans.count == terms.count:
            var unknown: String?
            for (term, source) in zip(plans, terms) {
                let (truth, deciding) = trace(term, source, rows)
                if truth == .no { return (.no, deciding) }
                if truth == .unknown, unknown == nil { unknown = deciding }
            }
            if let unknown { return (.unknown, unknown) }
            return (.yes, "\(expression) is true")
        case (.or(let plans), .or(let terms)) where plans.count == terms.count:
            // Every branch of an OR that is not true had its say.
            var result = Truth.no
            var branches: [String] = []
            for (term, source) in zip(plans, terms) {
                let (truth, deciding) = trace(term, source, rows)
                if truth == .yes { return (.yes, deciding) }
                if truth == .unknown { result = .unknown }
                branches.append(deciding)
            }
            return (result, branches.joined(separator: "; "))
        case (.not(let inner), .not(let source)):
            let (truth, deciding) = trace(inner, source, rows)
            return (truth.negated, deciding)
        default:
            let truth = self.truth(plan, rows)
            var text = "\(expression) is \(truth.text)"
            let nulls = nullOperands(plan, expression, rows)
            if truth == .unknown, !nulls.isEmpty {
                text += " (" + nulls.map { "\($0) is NULL" }.joined(separator: ", ") + ")"
            }
            return (truth, text)
        }
    }

    /// Operands of a comparison that are NULL — the usual reason a policy is unknown.
    private func nullOperands(_ plan: Plan, _ expression: PolicyExpression, _ rows: Rows) -> [String] {
        switch (plan, expression) {
        case (.compare(let lhs, _, let rhs), .comparison(let left, _, let right)):
            return [(lhs, left), (rhs, right)].filter { value($0.0, rows).isNull }.map { "\($0.1)" }
        case (.compareColumn(let level, let name, _, let operand), .comparison(let left, _, let right)):
            // The builder put the column first; find which printed side was which.
            let columnIsNull = rows.value(level: level, name: name).isNull
            let operandIsNull = value(of: operand).isNull
            let leftIsColumn: Bool
            if case .column = left {
                leftIsColumn = true
            } else if case .cast(.column, _) = left {
                leftIsColumn = true
            } else {
                leftIsColumn = false
            }
            var nulls: [String] = []
            if leftIsColumn ? columnIsNull : operandIsNull { nulls.append("\(left)") }
            if leftIsColumn ? operandIsNull : columnIsNull { nulls.append("\(right)") }
            return nulls
        case (.inList(let lhs, _, _), .inList(let left, _, _)), (.quantified(let lhs, _, _, _), .quantified(let left, _, _, _)):
            return value(lhs, rows).isNull ? ["\(left)"] : []
        default:
            return []
        }
    }
}
