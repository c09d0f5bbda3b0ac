/// One token of an expression. Offsets count Unicode scalars from the start of the expression text.
struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        /// Unquoted identifiers are folded to lower case, as Postgres does.
        case identifier(String, quoted: Bool)
        case string(String)
        case number(String)
        case symbol(String)
        case end
    }

    let kind: Kind
    let offset: Int

    /// The lower-cased word when this is an unquoted identifier (keywords are matched this way).
    var keyword: String? {
        if case .identifier(let name, quoted: false) = kind { return name }
        return nil
    }

    func isSymbol(_ symbol: String) -> Bool {
        if case .symbol(let value) = kind { return value == symbol }
        return false
    }

    /// How the token reads in an error message.
    var display: String {
        switch kind {
        case .identifier(let name, let quoted): return quoted ? "\"\(name)\"" : "'\(name)'"
        case .string(let text): return "string '\(text)'"
        case .number(let text): return "number \(text)"
        case .symbol(let symbol): return "'\(symbol)'"
        case .end: return "end of expression"
        }
    }
}

struct Lexer {
    private let scalars: [Unicode.Scalar]
    private var index = 0

    init(_ text: String) {
        scalars = Array(text.unicodeScalars)
    }

    static func tokenize(_ text: String) throws -> [Token] {
        var lexer = Lexer(text)
        var tokens: [Token] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        index + ahead < scalars.count ? scalars[index + ahead] : nil
    }

    private static func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic
    }

    private static func isIdentifierPart(_ c: Unicode.Scalar) -> Bool {
        isIdentifierStart(c) || ("0"..."9").contains(c) || c == "$"
    }

    private static func isDigit(_ c: Unicode.Scalar?) -> Bool {
        guard let c else { return false }
        return ("0"..."9").contains(c)
    }

    private mutating func next() throws -> Token {
        while let c = peek(), c.properties.isWhitespace { index += 1 }
        let start = index
        guard let c = peek() else { return Token(kind: .end, offset: start) }

        if (c == "E" || c == "e"), peek(1) == "'" {
            index += 1
            return Token(kind: .string(try quoted(escapes: true, from: start)), offset: start)
        }
        if c == "'" {
            return Token(kind: .string(try quoted(escapes: false, from: start)), offset: start)
        }
        if c == "\"" {
            index += 1
            var name = ""
            while true {
                guard let d = peek() else {
                    throw PolicyError(
                        .syntax, "unterminated quoted identifier", help: "expected a closing '\"'",
                        expressionOffset: start)
                }
                index += 1
                if d == "\"" {
                    if peek() == "\"" {
                        name.unicodeScalars.append("\"")
                        index += 1
                    } else {
                        break
                    }
                } else {
                    name.unicodeScalars.append(d)
                }
            }
            guard !name.isEmpty else {
                throw PolicyError(.syntax, "empty quoted identifier", help: "expected a name between the quotes", expressionOffset: start)
            }
            return Token(kind: .identifier(name, quoted: true), offset: start)
        }
        if Lexer.isIdentifierStart(c) {
            var name = ""
            while let d = peek(), Lexer.isIdentifierPart(d) {
                // Postgres folds unquoted identifiers to lower case (ASCII only).
                if ("A"..."Z").contains(d), let lower = Unicode.Scalar(d.value + 32) {
                    name.unicodeScalars.append(lower)
                } else {
                    name.unicodeScalars.append(d)
                }
                index += 1
            }
            return Token(kind: .identifier(name, quoted: false), offset: start)
        }
        if Lexer.isDigit(c) || (c == "." && Lexer.isDigit(peek(1))) {
            var text = ""
            while let d = peek(), Lexer.isDigit(d) || d == "." {
                text.unicodeScalars.append(d)
                index += 1
            }
            if let e = peek(), e == "e" || e == "E",
                Lexer.isDigit(peek(1)) || ((peek(1) == "+" || peek(1) == "-") && Lexer.isDigit(peek(2)))
            {
                text.unicodeScalars.append(e)
                index += 1
                if let sign = peek(), sign == "+" || sign == "-" {
                    text.unicodeScalars.append(sign)
                    index += 1
                }
                while let d = peek(), Lexer.isDigit(d) {
                    text.unicodeScalars.append(d)
                    index += 1
                }
            }
            if text.filter({ $0 == "." }).count > 1 {
                throw PolicyError(
                    .syntax, "malformed number '\(text)'", help: "expected digits with at most one '.'", expressionOffset: start)
            }
            return Token(kind: .number(text), offset: start)
        }
        for symbol in ["->>", "->", "::", "<>", "!=", "<=", ">=", "=", "<", ">", "(", ")", "[", "]", ",", ".", "-"] {
            let symbolScalars = Array(symbol.unicodeScalars)
            if index + symbolScalars.count <= scalars.count,
                Array(scalars[index..<(index + symbolScalars.count)]) == symbolScalars
            {
                index += symbolScalars.count
                return Token(kind: .symbol(symbol), offset: start)
            }
        }
        throw PolicyError(
            .syntax, "unexpected character '\(Character(c))'",
            help: "expected a column, literal, operator (= <> != < <= > >= ->>), '(' or ')'",
            expressionOffset: start)
    }

    private mutating func quoted(escapes: Bool, from start: Int) throws -> String {
        index += 1  // opening quote
        var text = ""
        while true {
            guard let c = peek() else {
                throw PolicyError(.syntax, "unterminated string literal", help: "expected a closing \"'\"", expressionOffset: start)
            }
            index += 1
            if c == "'" {
                if peek() == "'" {
                    text.unicodeScalars.append("'")
                    index += 1
                    continue
                }
                return text
            }
            if escapes, c == "\\", let escaped = peek() {
                index += 1
                switch escaped {
                case "n": text.unicodeScalars.append("\n")
                case "t": text.unicodeScalars.append("\t")
                case "r": text.unicodeScalars.append("\r")
                case "b": text.unicodeScalars.append("\u{8}")
                case "f": text.unicodeScalars.append("\u{c}")
                default: text.unicodeScalars.append(escaped)
                }
                continue
            }
            text.unicodeScalars.append(c)
        }
    }
}
