extension PolicyExpression {
    /// Parses an expression of the policy language (DESIGN.md §4): the text of a `using` /
    /// `with_check` entry, or what `pg_get_expr` prints for a live policy.
    ///
    /// Only syntax is checked here; whether columns and tables exist is checked when a policy set
    /// is loaded. Errors carry ``PolicyError/expressionOffset``.
    public static func parse(_ text: String) throws -> PolicyExpression {
        var parser = ExpressionParser(tokens: try Lexer.tokenize(text))
        return try parser.parseComplete()
    }
}

/// Recursive descent over Postgres' precedence levels (loosest first):
/// OR, AND, NOT, IS, comparison, IN, `->>`, unary minus, `::`, primary.
struct ExpressionParser {
    private let tokens: [Token]
    private var position = 0
    private var depth = 0

    /// Deep enough for any real policy, shallow enough that hostile input cannot exhaust the stack.
    private static let maximumDepth = 200

    /// The functions an expression may call, for error messages.
    static let allowedFunctions = ["auth.uid()", "auth.role()", "auth.tenant_id()", "auth.jwt() ->> 'claim'"]

    init(tokens: [Token]) {
        self.tokens = tokens
    }

    mutating func parseComplete() throws -> PolicyExpression {
        let expression = try parseOr()
        let token = current
        switch token.kind {
        case .end:
            return expression
        case .symbol(")"):
            throw PolicyError(
                .syntax, "unbalanced parenthesis: ')' has no matching '('",
                help: "remove the ')' or add a '(' before it", expressionOffset: token.offset)
        default:
            throw PolicyError(
                .syntax, "unexpected \(token.display)",
                help: "expected AND, OR or the end of the expression", expressionOffset: token.offset)
        }
    }

    // MARK: - Token helpers

    private var current: Token { tokens[position] }

    private func peek(_ ahead: Int) -> Token {
        tokens[min(position + ahead, tokens.count - 1)]
    }

    private mutating func advance() -> Token {
        let token = tokens[position]
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    private mutating func accept(keyword: String) -> Bool {
        if current.keyword == keyword {
            position += 1
            return true
        }
        return false
    }

    private mutating func accept(symbol: String) -> Bool {
        if current.isSymbol(symbol) {
            position += 1
            return true
        }
        return false
    }

    private mutating func expect(keyword: String, help: String? = nil) throws {
        guard accept(keyword: keyword) else {
            throw PolicyError(
                .syntax, "unexpected \(current.display)", help: help ?? "expected \(keyword.uppercased())",
                expressionOffset: current.offset)
        }
    }

    private mutating func expectClosing(_ close: String, openedAt open: Int) throws {
        if accept(symbol: close) { return }
        let opener = close == ")" ? "(" : "["
        if current.kind == .end {
            throw PolicyError(
                .syntax, "unbalanced parenthesis: '\(opener)' is never closed",
                help: "expected '\(close)'", expressionOffset: open)
        }
        throw PolicyError(
            .syntax, "unexpected \(current.display)", help: "expected '\(close)' to close the '\(opener)' at offset \(open)",
            expressionOffset: current.offset)
    }

    private mutating func nested<T>(_ body: (inout ExpressionParser) throws -> T) throws -> T {
        depth += 1
        defer { depth -= 1 }
        guard depth <= ExpressionParser.maximumDepth else {
            throw PolicyError(
                .syntax, "expression nests too deeply",
                help: "at most \(ExpressionParser.maximumDepth) levels", expressionOffset: current.offset)
        }
        return try body(&self)
    }

    // MARK: - Grammar

    private mutating func parseOr() throws -> PolicyExpression {
        try nested { parser in
            var terms = [try parser.parseAnd()]
            while parser.accept(keyword: "or") {
                terms.append(try parser.parseAnd())
            }
            return ExpressionParser.flatten(terms, or: true)
        }
    }

    private mutating func parseAnd() throws -> PolicyExpression {
        var terms = [try parseNot()]
        while accept(keyword: "and") {
            terms.append(try parseNot())
        }
        return ExpressionParser.flatten(terms, or: false)
    }

    /// `a AND (b AND c)` and `(a AND b) AND c` mean the same; one shape keeps round trips exact.
    static func flatten(_ terms: [PolicyExpression], or: Bool) -> PolicyExpression {
        if terms.count == 1 { return terms[0] }
        var flat: [PolicyExpression] = []
        for term in terms {
            switch (term, or) {
            case (.or(let inner), true), (.and(let inner), false): flat.append(contentsOf: inner)
            default: flat.append(term)
            }
        }
        return or ? .or(flat) : .and(flat)
    }

    private mutating func parseNot() throws -> PolicyExpression {
        if accept(keyword: "not") {
            return .not(try nested { try $0.parseNot() })
        }
        return try parseIs()
    }

    private mutating func parseIs() throws -> PolicyExpression {
        var expression = try parseComparison()
        while current.keyword == "is" {
            position += 1
            let negated = accept(keyword: "not")
            let token = advance()
            switch token.keyword {
            case "null": expression = .isNull(expression, negated: negated)
            case "true": expression = .isBoolean(expression, true, negated: negated)
            case "false": expression = .isBoolean(expression, false, negated: negated)
            default:
                throw PolicyError(
                    .syntax, "unexpected \(token.display) after IS\(negated ? " NOT" : "")",
                    help: "expected NULL, TRUE or FALSE", expressionOffset: token.offset)
            }
        }
        return expression
    }

    private static let comparisonSymbols: [String: PolicyExpression.ComparisonOperator] = [
        "=": .equal, "<>": .notEqual, "!=": .notEqual, "<": .less, "<=": .lessOrEqual, ">": .greater,
        ">=": .greaterOrEqual,
    ]

    private mutating func parseComparison() throws -> PolicyExpression {
        let lhs = try parseIn()
        guard case .symbol(let symbol) = current.kind, let op = ExpressionParser.comparisonSymbols[symbol] else {
            return lhs
        }
        position += 1
        if let word = current.keyword, word == "any" || word == "some" || word == "all", peek(1).isSymbol("(") {
            position += 1
            let open = advance().offset
            let array = try parseOr()
            try expectClosing(")", openedAt: open)
            return .quantified(lhs, op, word == "all" ? .all : .any, array)
        }
        let rhs = try parseIn()
        if case .symbol(let next) = current.kind, ExpressionParser.comparisonSymbols[next] != nil {
            throw PolicyError(
                .syntax, "comparison operators do not chain",
                help: "expected AND/OR between comparisons, or parentheses", expressionOffset: current.offset)
        }
        return .comparison(lhs, op, rhs)
    }

    private mutating func parseIn() throws -> PolicyExpression {
        let lhs = try parseJSONOperator()
        var negated = false
        if current.keyword == "not", peek(1).keyword == "in" {
            position += 1
            negated = true
        }
        guard accept(keyword: "in") else { return lhs }
        guard current.isSymbol("(") else {
            throw PolicyError(
                .syntax, "unexpected \(current.display) after IN", help: "expected '(' and a list of values",
                expressionOffset: current.offset)
        }
        let open = advance().offset
        if current.isSymbol(")") {
            throw PolicyError(.syntax, "empty IN list", help: "expected at least one value", expressionOffset: current.offset)
        }
        var items = [try parseOr()]
        while accept(symbol: ",") {
            items.append(try parseOr())
        }
        try expectClosing(")", openedAt: open)
        return .inList(lhs, items, negated: negated)
    }

    private mutating func parseJSONOperator() throws -> PolicyExpression {
        let operand = try parseUnary()
        if current.isSymbol("->>") || current.isSymbol("->") {
            throw PolicyError(
                .syntax, "operator \(current.display) is only allowed on auth.jwt()",
                help: "expected auth.jwt() ->> 'claim'", expressionOffset: current.offset)
        }
        return operand
    }

    private mutating func parseUnary() throws -> PolicyExpression {
        guard current.isSymbol("-") else { return try parsePostfix() }
        let minus = advance()
        guard case .number(let text) = current.kind else {
            throw PolicyError(
                .syntax, "unary minus applies only to numbers", help: "expected a number after '-'", expressionOffset: minus.offset)
        }
        position += 1
        return try parseCasts(on: .literal(ExpressionParser.number("-" + text)))
    }

    private mutating func parsePostfix() throws -> PolicyExpression {
        try parseCasts(on: try parsePrimary())
    }

    private mutating func parseCasts(on operand: PolicyExpression) throws -> PolicyExpression {
        var expression = operand
        while accept(symbol: "::") {
            expression = .cast(expression, try parseType())
        }
        return expression
    }

    /// Type names as casts spell them: `text`, `uuid[]`, `character varying(255)`, `timestamp with time zone`.
    private mutating func parseType() throws -> SQLType {
        let start = current
        guard case .identifier(let first, _) = start.kind else {
            throw PolicyError(
                .syntax, "unexpected \(start.display) after '::'", help: "expected a type name such as text or uuid",
                expressionOffset: start.offset)
        }
        position += 1
        var text = first
        let continuation: Set<String> = ["varying", "with", "without", "time", "zone", "precision"]
        while let word = current.keyword, continuation.contains(word) {
            text += " " + word
            position += 1
        }
        if current.isSymbol("(") {
            let open = advance().offset
            text += "("
            while true {
                let token = advance()
                if case .number(let digits) = token.kind {
                    text += digits
                } else {
                    throw PolicyError(
                        .syntax, "unexpected \(token.display) in type modifier", help: "expected a number", expressionOffset: token.offset)
                }
                if accept(symbol: ",") {
                    text += ","
                    continue
                }
                try expectClosing(")", openedAt: open)
                break
            }
            text += ")"
            // `timestamp(3) with time zone`
            while let word = current.keyword, continuation.contains(word) {
                text += " " + word
                position += 1
            }
        }
        while current.isSymbol("["), peek(1).isSymbol("]") {
            position += 2
            text += "[]"
        }
        guard let type = SQLType(text) else {
            throw PolicyError(
                .syntax, "unknown type '\(text)'",
                help:
                    "expected a Postgres type such as text, uuid, integer, bigint, boolean, numeric, jsonb, timestamptz, varchar(n), or one of these with []",
                expressionOffset: start.offset)
        }
        return type
    }

    static func number(_ text: String) -> PolicyExpression.Literal {
        if !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let value = Int64(text) {
            return .integer(value)
        }
        return .decimal(text)
    }

    private mutating func parsePrimary() throws -> PolicyExpression {
        let token = advance()
        switch token.kind {
        case .symbol("("):
            let inner = try parseOr()
            try expectClosing(")", openedAt: token.offset)
            return inner
        case .string(let text):
            return .literal(.string(text))
        case .number(let text):
            return .literal(ExpressionParser.number(text))
        case .identifier(let name, let quoted):
            if !quoted {
                switch name {
                case "null": return .literal(.null)
                case "true": return .literal(.bool(true))
                case "false": return .literal(.bool(false))
                case "exists": return try parseExists(at: token)
                case "array" where current.isSymbol("["): return try parseArray()
                default:
                    if SQLText.reservedWords.contains(name) {
                        throw PolicyError(
                            .syntax, "unexpected keyword \(name.uppercased())",
                            help: "expected a column, a literal, a function call or '('", expressionOffset: token.offset)
                    }
                }
            }
            return try parseName(name, at: token.offset)
        case .symbol(")"):
            throw PolicyError(.syntax, "unexpected ')'", help: "expected an expression", expressionOffset: token.offset)
        case .end:
            throw PolicyError(
                .syntax, "unexpected end of expression", help: "expected a column, a literal, a function call or '('",
                expressionOffset: token.offset)
        default:
            throw PolicyError(
                .syntax, "unexpected \(token.display)", help: "expected a column, a literal, a function call or '('",
                expressionOffset: token.offset)
        }
    }

    /// `name`, `qualifier.name`, or a function call `schema.function()`.
    private mutating func parseName(_ first: String, at offset: Int) throws -> PolicyExpression {
        if current.isSymbol("(") {
            throw ExpressionParser.functionNotAllowed(first, at: offset)
        }
        guard accept(symbol: ".") else {
            return .column(.init(name: first, position: offset))
        }
        let second = advance()
        guard case .identifier(let name, _) = second.kind else {
            throw PolicyError(
                .syntax, "unexpected \(second.display) after '\(first).'", help: "expected a column name", expressionOffset: second.offset)
        }
        if current.isSymbol("(") {
            return try parseCall(schema: first, function: name, at: offset)
        }
        if current.isSymbol(".") {
            throw PolicyError(
                .syntax, "column references have at most two parts",
                help: "expected column or table.column", expressionOffset: current.offset)
        }
        return .column(.init(qualifier: first, name: name, position: offset))
    }

    static func functionNotAllowed(_ name: String, at offset: Int) -> PolicyError {
        PolicyError(
            .functionNotAllowed, "function \(name)() is not allowed in a policy",
            help: PolicyError.expectedOneOf(allowedFunctions), expressionOffset: offset)
    }

    private mutating func parseCall(schema: String, function: String, at offset: Int) throws -> PolicyExpression {
        let open = advance().offset
        guard schema == "auth" else {
            throw ExpressionParser.functionNotAllowed("\(schema).\(function)", at: offset)
        }
        let call: PolicyExpression?
        switch function {
        case "uid": call = .auth(.uid)
        case "role": call = .auth(.role)
        case "tenant_id": call = .auth(.tenantID)
        case "jwt": call = nil
        default: throw ExpressionParser.functionNotAllowed("\(schema).\(function)", at: offset)
        }
        if !current.isSymbol(")") {
            if current.kind == .end {
                try expectClosing(")", openedAt: open)
            }
            throw PolicyError(.syntax, "auth.\(function)() takes no arguments", help: "expected ')'", expressionOffset: current.offset)
        }
        position += 1
        if let call { return call }
        // auth.jwt() is only useful through ->> 'claim'; anything else would need jsonb semantics.
        guard accept(symbol: "->>") else {
            throw PolicyError(
                .syntax, "auth.jwt() must be followed by ->> 'claim'",
                help: "expected auth.jwt() ->> 'claim'", expressionOffset: current.offset)
        }
        let key = advance()
        guard case .string(let claim) = key.kind else {
            throw PolicyError(
                .syntax, "unexpected \(key.display) after ->>", help: "expected the claim name as a string, e.g. 'session_id'",
                expressionOffset: key.offset)
        }
        // pg_get_expr prints the key as 'session_id'::text.
        while current.isSymbol("::") {
            let castAt = advance().offset
            let type = try parseType()
            guard type.kind == .text else {
                throw PolicyError(
                    .typeMismatch, "the claim name must be text, not \(type.spelling)", help: "expected 'claim' or 'claim'::text",
                    expressionOffset: castAt)
            }
        }
        return .jwtClaim(claim)
    }

    private mutating func parseArray() throws -> PolicyExpression {
        let open = advance().offset
        var items: [PolicyExpression] = []
        if !current.isSymbol("]") {
            items.append(try parseOr())
            while accept(symbol: ",") {
                items.append(try parseOr())
            }
        }
        try expectClosing("]", openedAt: open)
        return .array(items)
    }

    /// `EXISTS (SELECT 1 FROM [schema.]table [[AS] alias] [WHERE condition])`
    private mutating func parseExists(at token: Token) throws -> PolicyExpression {
        guard current.isSymbol("(") else {
            throw PolicyError(
                .syntax, "unexpected \(current.display) after EXISTS", help: "expected '(SELECT 1 FROM …)'",
                expressionOffset: current.offset)
        }
        let open = advance().offset
        try expect(keyword: "select", help: "expected SELECT 1 FROM table alias WHERE …")
        let one = advance()
        guard case .number("1") = one.kind else {
            throw PolicyError(.syntax, "unexpected \(one.display) after SELECT", help: "expected SELECT 1", expressionOffset: one.offset)
        }
        try expect(keyword: "from", help: "expected FROM table")
        let first = advance()
        guard case .identifier(var table, _) = first.kind else {
            throw PolicyError(
                .syntax, "unexpected \(first.display) after FROM", help: "expected a table name", expressionOffset: first.offset)
        }
        var schema: String?
        var tableOffset = first.offset
        if accept(symbol: ".") {
            let second = advance()
            guard case .identifier(let name, _) = second.kind else {
                throw PolicyError(
                    .syntax, "unexpected \(second.display) after '\(table).'", help: "expected a table name",
                    expressionOffset: second.offset)
            }
            schema = table
            table = name
            tableOffset = second.offset
        }
        var alias: String?
        let explicitAs = accept(keyword: "as")
        if case .identifier(let name, let quoted) = current.kind, quoted || (name != "where" && !SQLText.reservedWords.contains(name)) {
            alias = name
            position += 1
        } else if explicitAs {
            throw PolicyError(
                .syntax, "unexpected \(current.display) after AS", help: "expected an alias", expressionOffset: current.offset)
        }
        var condition: PolicyExpression?
        if accept(keyword: "where") {
            condition = try parseOr()
        } else if !current.isSymbol(")") {
            throw PolicyError(
                .syntax, "unexpected \(current.display) in EXISTS", help: "expected WHERE or ')'", expressionOffset: current.offset)
        }
        try expectClosing(")", openedAt: open)
        return .exists(.init(schema: schema, table: table, alias: alias, condition: condition, position: tableOffset))
    }
}
