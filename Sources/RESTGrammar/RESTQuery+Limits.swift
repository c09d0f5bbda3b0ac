/// The gateway's bounds on a parsed query's size (README, "Limits"): checked in one place, on the
/// parsed filters, by ``RESTQuery/parse(method:query:headers:limits:)``. The parser keeps its own
/// hard cap on nesting (``RESTQuery/maximumLogicDepth``, against stack exhaustion); these are the
/// operator's tighter, configurable ones.
extension RESTQuery {
    public struct Limits: Sendable, Hashable {
        /// Deepest `or=(…)`/`and=(…)` nesting, 1 … ``RESTQuery/maximumLogicDepth``.
        public var logicDepth: Int
        /// Most elements of one `in.(…)` list.
        public var inListLength: Int

        public init(logicDepth: Int = RESTQuery.maximumLogicDepth, inListLength: Int = 1_000) {
            self.logicDepth = logicDepth
            self.inListLength = inListLength
        }

        /// Throws `400 PGRST100` when one of `filters` (one per query parameter) nests deeper than
        /// ``logicDepth`` or holds an `in.(…)` list longer than ``inListLength``.
        func check(_ filters: [FilterTree]) throws(RESTGrammarError) {
            for filter in filters {
                let depth = try measure(filter)
                if depth > logicDepth {
                    throw RESTGrammarError(
                        .malformed, code: "PGRST100", "failed to parse logic tree",
                        details: "logic tree is nested \(depth) levels deep; at most \(logicDepth) are allowed")
                }
            }
        }

        /// The `or`/`and` nesting depth of `tree` (a plain condition is 0); throws on a long `in` list.
        private func measure(_ tree: FilterTree) throws(RESTGrammarError) -> Int {
            switch tree {
            case .condition(let condition):
                if case .in(let elements) = condition.operation, elements.count > inListLength {
                    throw RESTGrammarError(
                        .malformed, code: "PGRST100", "failed to parse filter",
                        details:
                            "in.() list of \(elements.count) elements on \"\(condition.field.column)\"; at most \(inListLength) are allowed",
                        hint: "split the request, or filter on a range instead")
                }
                return 0
            case .not(let inner):
                return try measure(inner)
            case .and(let children), .or(let children):
                var deepest = 0
                for child in children { deepest = max(deepest, try measure(child)) }
                return deepest + 1
            }
        }
    }
}
