/// Filters: `column=op.value` parameters and the `or=(…)` / `and=(…)` logic trees.
enum FilterGrammar {
    /// Deeper `or`/`and` nesting is refused; it bounds the parser's recursion.
    static let maximumLogicDepth = 32

    static let supportedOperators =
        "eq, neq, gt, gte, lt, lte, like, ilike, match, imatch, is, isdistinct, in, cs, cd, ov, sl, sr, nxr, nxl, adj, fts, plfts, phfts, wfts"

    // MARK: - column=op.value

    /// `[not.]op.value` for `field`.
    static func parseFilter(field: RESTQuery.Field, value: String) throws(RESTGrammarError) -> RESTQuery.FilterTree {
        var scanner = GrammarScanner(value, subject: "filter")
        let (negated, operation) = try self.operation(&scanner, inLogicTree: false)
        if !scanner.atEnd {
            throw scanner.unexpected(expecting: "end of input")
        }
        let condition = RESTQuery.FilterTree.condition(RESTQuery.Condition(field, operation))
        return negated ? .not(condition) : condition
    }

    /// PostgREST's "tree path": `column`, or `rel.column`, `rel.sub.column` for embedded
    /// resources; the last name may carry a JSON path. Returns the names before the last, and
    /// the last as a field (a column, or `order`, `limit`, `offset`, `or`, `and`, `not`… for
    /// the caller to read).
    static func parseTreePath(_ key: String) throws(RESTGrammarError) -> (path: [String], field: RESTQuery.Field) {
        var scanner = GrammarScanner(key, subject: "tree path")
        scanner.skipWhitespace()
        var names = [try scanner.identifier()]
        while scanner.peek() == ".", let next = scanner.peek(1), GrammarScanner.isIdentifierStart(next) || next == "\"" {
            scanner.advance()
            names.append(try scanner.identifier())
        }
        let field = RESTQuery.Field(names.removeLast(), jsonPath: try scanner.jsonPath())
        scanner.skipWhitespace()
        guard scanner.atEnd else {
            throw scanner.unexpected(expecting: "\"->\", \"->>\" or end of input")
        }
        return (names, field)
    }

    /// `[not.]op.value` up to where the value ends: the end of the text for a query-string
    /// filter, the next `,` or `)` inside a logic tree.
    private static func operation(
        _ scanner: inout GrammarScanner, inLogicTree: Bool
    ) throws(RESTGrammarError) -> (negated: Bool, RESTQuery.FilterOperation) {
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
            throw scanner.unexpectedWord(name, at: start, expecting: negated ? "operator (\(supportedOperators))" : expected)
        }
        // `fts(english)`: a text search configuration; `eq(any)`: a quantifier.
        var language: String?
        var quantifier: RESTQuery.Quantifier?
        if scanner.peek() == "(" {
            let open = scanner.index
            scanner.advance()
            if RESTQuery.TextSearchOperator(rawValue: name) != nil {
                language = try scanner.identifier(expecting: "text search configuration")
            } else if RESTQuery.QuantifiedOperator(rawValue: name) != nil {
                let wordStart = scanner.index
                let word = scanner.word()
                guard let parsed = RESTQuery.Quantifier(rawValue: word) else {
                    throw scanner.unexpectedWord(word, at: wordStart, expecting: "any or all")
                }
                quantifier = parsed
            } else {
                throw scanner.failure(
                    at: open, details: "operator \"\(name)\" takes no modifier",
                    hint:
                        "(any)/(all) apply to \(RESTQuery.QuantifiedOperator.allCases.map(\.rawValue).joined(separator: ", ")); a language to fts, plfts, phfts, wfts"
                )
            }
            guard scanner.consume(")") else { throw scanner.unexpected(expecting: "\")\"") }
        }
        guard scanner.consume(".") else { throw scanner.unexpected(expecting: "delimiter (.)") }

        if let quantifier, let quantified = RESTQuery.QuantifiedOperator(rawValue: name) {
            var literal = value(&scanner, inLogicTree)
            if [.like, .ilike].contains(quantified) { literal = starsToPercent(literal) }
            return (negated, .quantified(quantified, quantifier, literal))
        }
        let operation: RESTQuery.FilterOperation
        switch op {
        case .in:
            operation = .in(try list(&scanner))
        case .is:
            operation = .is(try isValue(&scanner))
        case .isdistinct:
            operation = .distinct(value(&scanner, inLogicTree))
        case .eq, .neq, .gt, .gte, .lt, .lte:
            operation = .compare(RESTQuery.ComparisonOperator(rawValue: op.rawValue)!, value(&scanner, inLogicTree))
        case .like, .ilike:
            operation = .pattern(RESTQuery.PatternOperator(rawValue: op.rawValue)!, starsToPercent(value(&scanner, inLogicTree)))
        case .match, .imatch:
            // A regular expression: `*` keeps its meaning.
            operation = .pattern(RESTQuery.PatternOperator(rawValue: op.rawValue)!, value(&scanner, inLogicTree))
        case .cs, .cd, .ov:
            operation = .array(RESTQuery.ArrayOperator(rawValue: op.rawValue)!, value(&scanner, inLogicTree))
        case .sl, .sr, .nxr, .nxl, .adj:
            operation = .range(RESTQuery.RangeOperator(rawValue: op.rawValue)!, value(&scanner, inLogicTree))
        case .fts, .plfts, .phfts, .wfts:
            operation = .textSearch(RESTQuery.TextSearchOperator(rawValue: op.rawValue)!, language: language, value(&scanner, inLogicTree))
        }
        return (negated, operation)
    }

    private enum KnownOperator: String {
        case eq, neq, gt, gte, lt, lte, like, ilike, match, imatch, `is`, isdistinct, `in`, cs, cd, ov, sl, sr, nxr, nxl, adj
        case fts, plfts, phfts, wfts
    }

    /// PostgREST lets clients write `*` for SQL's `%` in like/ilike patterns (`%` is awkward in a URL).
    private static func starsToPercent(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "*" ? "%" : $0 }))
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
    private static func list(_ scanner: inout GrammarScanner) throws(RESTGrammarError) -> [String] {
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

    private static func isValue(_ scanner: inout GrammarScanner) throws(RESTGrammarError) -> RESTQuery.IsValue {
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
    static func parseLogic(key: String, value: String) throws(RESTGrammarError) -> RESTQuery.FilterTree {
        var scanner = GrammarScanner(key + value, subject: "logic tree", echo: value)
        let tree = try group(&scanner, depth: 1)
        scanner.skipWhitespace()
        guard scanner.atEnd else { throw scanner.unexpected(expecting: "end of input") }
        return tree
    }

    /// `[not.](and|or)(item,item,…)`
    private static func group(_ scanner: inout GrammarScanner, depth: Int) throws(RESTGrammarError) -> RESTQuery.FilterTree {
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
    private static func item(_ scanner: inout GrammarScanner, depth: Int) throws(RESTGrammarError) -> RESTQuery.FilterTree {
        if startsGroup(scanner) {
            return try group(&scanner, depth: depth + 1)
        }
        var field = try scanner.field(expecting: "field name, negation operator (not) or logic operator (and, or)")
        scanner.skipWhitespace()
        guard scanner.consume(".") else {
            throw scanner.unexpected(expecting: "\"->\", \"->>\" or delimiter (.)")
        }
        // `rel.col.op.value`, `rel.sub.col.op.value`: a name that is neither `not` nor an
        // operator, followed by more, is a column of an embedded resource (PostgREST's `or`
        // across embedded resources). A column named like an operator is read as the operator.
        var path: [String] = []
        while field.jsonPath.isEmpty, Self.startsEmbeddedField(scanner) {
            path.append(field.column)
            field = try scanner.field(expecting: "field name")
            scanner.skipWhitespace()
            guard scanner.consume(".") else {
                throw scanner.unexpected(expecting: "\"->\", \"->>\" or delimiter (.)")
            }
        }
        let (negated, operation) = try self.operation(&scanner, inLogicTree: true)
        let condition = RESTQuery.FilterTree.condition(RESTQuery.Condition(field, operation, path: path))
        return negated ? .not(condition) : condition
    }

    /// Whether what follows `name.` is another name (then `name` was an embedded resource)
    /// rather than `not` or an operator.
    private static func startsEmbeddedField(_ scanner: GrammarScanner) -> Bool {
        var probe = scanner
        if probe.peek() == "\"" { return true }
        guard let first = probe.peek(), GrammarScanner.isIdentifierStart(first) else { return false }
        let word = probe.word()
        guard word != "not", KnownOperator(rawValue: word) == nil else { return false }
        return probe.peek() == "." || probe.peekIs("->")
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
    mutating func field(expecting: String) throws(RESTGrammarError) -> RESTQuery.Field {
        let column = try identifier(expecting: expecting)
        return RESTQuery.Field(column, jsonPath: try jsonPath())
    }
}
