/// Filters: `column=op.value` parameters and the `or=(…)` / `and=(…)` logic trees.
enum FilterGrammar {
    /// Deeper `or`/`and` nesting is refused; it bounds the parser's recursion.
    static let maximumLogicDepth = 32

    static let supportedOperators = "eq, neq, gt, gte, lt, lte, like, ilike, is, in, cs, cd, ov"

    /// Operators PostgREST has and this gateway does not: named so the error can say so.
    private static let unsupportedOperators: Set<String> = [
        "match", "imatch", "fts", "plfts", "phfts", "wfts", "sl", "sr", "nxr", "nxl", "adj", "isdistinct",
    ]

    // MARK: - column=op.value

    /// One query-string filter. The key is a column with an optional JSON path; the value is
    /// `[not.]op.value`, where everything after the operator is the value, verbatim.
    static func parseFilter(key: String, value: String) throws(GatewayError) -> RESTQuery.FilterTree {
        let field = try parseFilterKey(key)
        var scanner = GrammarScanner(value, subject: "filter")
        let (negated, operation) = try self.operation(&scanner, inLogicTree: false)
        if !scanner.atEnd {
            throw scanner.unexpected(expecting: "end of input")
        }
        let condition = RESTQuery.FilterTree.condition(RESTQuery.Condition(field, operation))
        return negated ? .not(condition) : condition
    }

    /// PostgREST's "tree path": a column, or `relation.column` for an embedded resource (refused).
    static func parseFilterKey(_ key: String) throws(GatewayError) -> RESTQuery.Field {
        var scanner = GrammarScanner(key, subject: "tree path")
        scanner.skipWhitespace()
        let start = scanner.index
        let column = try scanner.identifier()
        if scanner.peek() == ".", let next = scanner.peek(1),
           GrammarScanner.isIdentifierStart(next) || next == "\"" {
            throw scanner.embeddingRefused(at: start, resource: column)
        }
        let field = RESTQuery.Field(column, jsonPath: try scanner.jsonPath())
        scanner.skipWhitespace()
        guard scanner.atEnd else {
            throw scanner.unexpected(expecting: "\"->\", \"->>\" or end of input")
        }
        return field
    }

    /// `[not.]op.value` up to where the value ends: the end of the text for a query-string
    /// filter, the next `,` or `)` inside a logic tree.
    private static func operation(
        _ scanner: inout GrammarScanner, inLogicTree: Bool
    ) throws(GatewayError) -> (negated: Bool, RESTQuery.FilterOperation) {
        let expected = "\"not\" or operator (\(supportedOperators))"
        var negated = false
        var start = scanner.index
        var name = scanner.word()
        if name == "not" && scanner.peek() == "." {
            negated = true
            scanner.advance()
            start = scanner.index
            name = scanner.word()
        }
        guard let op = KnownOperator(rawValue: name) else {
            if unsupportedOperators.contains(name) {
                throw scanner.failure(
                    at: start, details: "operator \"\(name)\" is not supported; supported: \(supportedOperators)")
            }
            throw scanner.unexpectedWord(name, at: start, expecting: negated ? "operator (\(supportedOperators))" : expected)
        }
        if scanner.peek() == "(" {
            // eq(any), like(all): PostgREST 12's quantified operators.
            throw scanner.failure(details: "quantified operators such as \(name)(any) are not supported")
        }
        guard scanner.consume(".") else { throw scanner.unexpected(expecting: "delimiter (.)") }

        let operation: RESTQuery.FilterOperation
        switch op {
        case .in:
            operation = .in(try list(&scanner))
        case .is:
            operation = .is(try isValue(&scanner))
        case .eq, .neq, .gt, .gte, .lt, .lte:
            operation = .compare(RESTQuery.ComparisonOperator(rawValue: op.rawValue)!, value(&scanner, inLogicTree))
        case .like, .ilike:
            // PostgREST lets clients write `*` for SQL's `%` (`%` is awkward in a URL).
            let pattern = String(String.UnicodeScalarView(value(&scanner, inLogicTree).unicodeScalars.map { $0 == "*" ? "%" : $0 }))
            operation = .pattern(RESTQuery.PatternOperator(rawValue: op.rawValue)!, pattern)
        case .cs, .cd, .ov:
            operation = .array(RESTQuery.ArrayOperator(rawValue: op.rawValue)!, value(&scanner, inLogicTree))
        }
        return (negated, operation)
    }

    private enum KnownOperator: String {
        case eq, neq, gt, gte, lt, lte, like, ilike, `is`, `in`, cs, cd, ov
    }

    private static func value(_ scanner: inout GrammarScanner, _ inLogicTree: Bool) -> String {
        inLogicTree ? logicValue(&scanner) : scanner.takeRest()
    }

    /// PostgREST's `pLogicSingleVal`: a quoted string directly followed by `,` or `)`, a
    /// `{…}` array literal (commas inside), or everything up to the next `,` or `)`.
    private static func logicValue(_ scanner: inout GrammarScanner) -> String {
        let start = scanner.index
        if let quoted = scanner.quoted() {
            if scanner.atEnd || scanner.peek() == "," || scanner.peek() == ")" { return quoted }
            scanner.index = start
        }
        if scanner.peek() == "{" {
            var probe = scanner
            probe.advance()
            _ = probe.take(until: ["{", "}"])
            if probe.consume("}") {
                scanner = probe
                return scanner.text(start..<scanner.index)
            }
        }
        return scanner.take(until: [",", ")"])
    }

    /// `(a,b,"c,d")`. Elements are taken verbatim except a double-quoted element (directly
    /// followed by `,` or `)`), which is unquoted with backslash escapes. `()` is the empty list.
    private static func list(_ scanner: inout GrammarScanner) throws(GatewayError) -> [String] {
        scanner.skipWhitespace()
        guard scanner.consume("(") else { throw scanner.unexpected(expecting: "\"(\"") }
        scanner.skipWhitespace()
        var elements: [String] = []
        if scanner.consume(")") {
            scanner.skipWhitespace()
            return elements
        }
        while true {
            let start = scanner.index
            if let quoted = scanner.quoted(), scanner.peek() == "," || scanner.peek() == ")" {
                elements.append(quoted)
            } else {
                scanner.index = start
                elements.append(scanner.take(until: [",", ")"]))
            }
            if scanner.consume(",") { continue }
            guard scanner.consume(")") else { throw scanner.unexpected(expecting: "\",\" or \")\"") }
            scanner.skipWhitespace()
            return elements
        }
    }

    private static func isValue(_ scanner: inout GrammarScanner) throws(GatewayError) -> RESTQuery.IsValue {
        let start = scanner.index
        let word = scanner.word()
        guard let value = RESTQuery.IsValue(rawValue: word.lowercased()) else {
            throw scanner.unexpectedWord(word, at: start, expecting: "null, not_null, true, false or unknown")
        }
        return value
    }

    // MARK: - or=(…) and=(…)

    /// A logic parameter: `key` is `or`, `and`, `not.or` or `not.and`; `value` is `(…)`.
    /// As PostgREST does, the parser reads `key + value` as one tree, so columns in errors
    /// count from the start of the key.
    static func parseLogic(key: String, value: String) throws(GatewayError) -> RESTQuery.FilterTree {
        var scanner = GrammarScanner(key + value, subject: "logic tree", echo: value)
        let tree = try group(&scanner, depth: 1)
        scanner.skipWhitespace()
        guard scanner.atEnd else { throw scanner.unexpected(expecting: "end of input") }
        return tree
    }

    /// `[not.](and|or)(item,item,…)`
    private static func group(_ scanner: inout GrammarScanner, depth: Int) throws(GatewayError) -> RESTQuery.FilterTree {
        let start = scanner.index
        let negated = scanner.consume("not.")
        // Matched literally, as PostgREST's `string "or"`: for `or=a.eq.1` the parser reads
        // `ora.eq.1` and the error is the "a" where "(" should be.
        let isAnd: Bool
        if scanner.consume("and") {
            isAnd = true
        } else if scanner.consume("or") {
            isAnd = false
        } else {
            let operatorStart = scanner.index
            let word = scanner.word()
            throw scanner.unexpectedWord(word, at: operatorStart, expecting: "logic operator (and, or)")
        }
        guard depth <= maximumLogicDepth else {
            throw scanner.failure(at: start, details: "logic tree is nested deeper than \(maximumLogicDepth) levels")
        }
        scanner.skipWhitespace()
        guard scanner.consume("(") else { throw scanner.unexpected(expecting: "\"(\"") }
        var children: [RESTQuery.FilterTree] = []
        while true {
            scanner.skipWhitespace()
            children.append(try item(&scanner, depth: depth))
            scanner.skipWhitespace()
            if scanner.consume(",") { continue }
            guard scanner.consume(")") else { throw scanner.unexpected(expecting: "\",\" or \")\"") }
            break
        }
        let tree: RESTQuery.FilterTree = isAnd ? .and(children) : .or(children)
        return negated ? .not(tree) : tree
    }

    /// A nested group or a `column.op.value` condition.
    private static func item(_ scanner: inout GrammarScanner, depth: Int) throws(GatewayError) -> RESTQuery.FilterTree {
        if startsGroup(scanner) {
            return try group(&scanner, depth: depth + 1)
        }
        let field = try scanner.field(expecting: "field name, negation operator (not) or logic operator (and, or)")
        scanner.skipWhitespace()
        guard scanner.consume(".") else {
            throw scanner.unexpected(expecting: "\"->\", \"->>\" or delimiter (.)")
        }
        let (negated, operation) = try self.operation(&scanner, inLogicTree: true)
        let condition = RESTQuery.FilterTree.condition(RESTQuery.Condition(field, operation))
        return negated ? .not(condition) : condition
    }

    /// `and(`, `or(`, `not.and(`, `not.or(` (spaces allowed before the parenthesis). A column
    /// that happens to be called `and` is still a condition: `and.eq.1`.
    private static func startsGroup(_ scanner: GrammarScanner) -> Bool {
        var probe = scanner
        _ = probe.consume("not.")
        let name = probe.word()
        guard name == "and" || name == "or" else { return false }
        probe.skipWhitespace()
        return probe.peek() == "("
    }
}

extension GrammarScanner {
    /// A field whose name error says what else could have come there.
    mutating func field(expecting: String) throws(GatewayError) -> RESTQuery.Field {
        let column = try identifier(expecting: expecting)
        return RESTQuery.Field(column, jsonPath: try jsonPath())
    }
}
