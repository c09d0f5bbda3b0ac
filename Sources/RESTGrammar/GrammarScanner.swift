/// A cursor over the Unicode scalars of one parameter, shared by the select, filter, order
/// and logic-tree parsers. It also builds their errors in PostgREST's shape:
///
///     message: "failed to parse order (id desc--)" (line 1, column 4)
///     details: unexpected "d" expecting ".", "," or end of input
///
/// Columns count Unicode scalars from 1, as Parsec counts characters.
struct GrammarScanner {
    let scalars: [Unicode.Scalar]
    var index = 0
    /// What is being parsed, as in PostgREST's messages: "select parameter", "filter", ….
    let subject: String
    /// The text echoed in the message. Logic trees parse `or` + value but echo only the value.
    let echo: String

    init(_ text: String, subject: String, echo: String? = nil) {
        scalars = Array(text.unicodeScalars)
        self.subject = subject
        self.echo = echo ?? text
    }

    var atEnd: Bool { index >= scalars.count }

    func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        index + ahead < scalars.count ? scalars[index + ahead] : nil
    }

    func peekIs(_ text: String) -> Bool {
        var offset = 0
        for scalar in text.unicodeScalars {
            guard peek(offset) == scalar else { return false }
            offset += 1
        }
        return true
    }

    mutating func advance(_ count: Int = 1) {
        index = min(index + count, scalars.count)
    }

    /// Consumes `text` when it comes next.
    mutating func consume(_ text: String) -> Bool {
        guard peekIs(text) else { return false }
        advance(text.unicodeScalars.count)
        return true
    }

    /// PostgREST's `lexeme`: spaces and tabs around separators are insignificant.
    mutating func skipWhitespace() {
        while let scalar = peek(), scalar == " " || scalar == "\t" { advance() }
    }

    func text(_ range: Range<Int>) -> String {
        var result = ""
        result.unicodeScalars.append(contentsOf: scalars[range])
        return result
    }

    /// The scalars from the cursor up to (not including) the first one in `stops`, consumed.
    mutating func take(until stops: Set<Unicode.Scalar>) -> String {
        let start = index
        while let scalar = peek(), !stops.contains(scalar) { advance() }
        return text(start..<index)
    }

    /// The rest of the text, consumed.
    mutating func takeRest() -> String {
        let start = index
        index = scalars.count
        return text(start..<index)
    }

    /// A run of ASCII letters, digits and `_`, consumed: operator names and order keywords.
    mutating func word() -> String {
        let start = index
        while let scalar = peek(), Self.isIdentifierContinue(scalar) { advance() }
        return text(start..<index)
    }

    // MARK: - Names

    static func isIdentifierStart(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_"
    }

    static func isIdentifierContinue(_ scalar: Unicode.Scalar) -> Bool {
        isIdentifierStart(scalar) || ("0"..."9").contains(scalar)
    }

    /// Whether `text` is a name this gateway accepts: `[A-Za-z_][A-Za-z0-9_]*`.
    static func isPlainIdentifier(_ text: String) -> Bool {
        var scalars = text.unicodeScalars.makeIterator()
        guard let first = scalars.next(), isIdentifierStart(first) else { return false }
        while let scalar = scalars.next() {
            guard isIdentifierContinue(scalar) else { return false }
        }
        return true
    }

    /// A column, alias or relation name: `[A-Za-z_][A-Za-z0-9_]*`, or the same in double
    /// quotes. PostgREST accepts far more (spaces, dashes, `$`, anything quoted); this gateway
    /// refuses it so that no name it passes on can carry SQL.
    mutating func identifier(expecting: String = "field name") throws(RESTGrammarError) -> String {
        let start = index
        if peek() == "\"" {
            guard let content = quoted() else {
                index = scalars.count
                throw unexpected(expecting: "closing quote (\")")
            }
            guard Self.isPlainIdentifier(content) else {
                throw failure(
                    at: start,
                    details: "unexpected name \"\(Self.shortened(content))\" expecting \(expecting) matching [A-Za-z_][A-Za-z0-9_]*")
            }
            return content
        }
        guard let first = peek(), Self.isIdentifierStart(first) else {
            throw unexpected(expecting: expecting)
        }
        while let scalar = peek(), Self.isIdentifierContinue(scalar) { advance() }
        return text(start..<index)
    }

    /// PostgREST's `pQuotedValue`: `"…"` where a backslash takes the next character literally.
    /// Returns `nil`, with the cursor unmoved, when the quote is never closed.
    mutating func quoted() -> String? {
        let start = index
        guard peek() == "\"" else { return nil }
        advance()
        var content = String.UnicodeScalarView()
        while let scalar = peek() {
            advance()
            switch scalar {
            case "\"":
                return String(content)
            case "\\":
                guard let escaped = peek() else { index = start; return nil }
                content.append(escaped)
                advance()
            default:
                content.append(scalar)
            }
        }
        index = start
        return nil
    }

    // MARK: - Fields and JSON paths

    /// `column` followed by any number of `->` / `->>` steps.
    mutating func field() throws(RESTGrammarError) -> RESTQuery.Field {
        let column = try identifier()
        return RESTQuery.Field(column, jsonPath: try jsonPath())
    }

    mutating func jsonPath() throws(RESTGrammarError) -> [RESTQuery.JSONStep] {
        var steps: [RESTQuery.JSONStep] = []
        while peekIs("->") {
            let arrow: RESTQuery.JSONStep.Arrow
            if consume("->>") { arrow = .text } else { advance(2); arrow = .json }
            steps.append(RESTQuery.JSONStep(arrow, try jsonOperand()))
        }
        return steps
    }

    /// An array index (`-?[0-9]+` ending where the path or item ends) or an object key: a
    /// quoted string, or letters, digits, `_` and `$` joined by single dashes. Keys are
    /// values to bind, so their content is not restricted further.
    private mutating func jsonOperand() throws(RESTGrammarError) -> RESTQuery.JSONOperand {
        let start = index
        if peek() == "\"" {
            guard let key = quoted() else {
                index = scalars.count
                throw unexpected(expecting: "closing quote (\")")
            }
            return .key(key)
        }
        _ = consume("-")
        while let scalar = peek(), ("0"..."9").contains(scalar) { advance() }
        let digits = text(start..<index)
        if !digits.isEmpty, digits != "-", endsJSONOperand {
            guard let value = Int(digits) else {
                throw failure(at: start, details: "JSON array index \(digits) is out of range")
            }
            return .index(value)
        }
        index = start
        while true {
            guard let scalar = peek(), Self.isJSONKeyScalar(scalar) else { break }
            while let scalar = peek(), Self.isJSONKeyScalar(scalar) { advance() }
            // A dash joins two parts of a key unless it starts the next arrow.
            guard peek() == "-", let next = peek(1), Self.isJSONKeyScalar(next) else { break }
            advance()
        }
        guard index > start else { throw unexpected(expecting: "JSON key or array index") }
        return .key(text(start..<index))
    }

    private var endsJSONOperand: Bool {
        guard let scalar = peek() else { return true }
        return peekIs("->") || peekIs("::") || [".", ",", ")", " ", "\t"].contains(scalar)
    }

    private static func isJSONKeyScalar(_ scalar: Unicode.Scalar) -> Bool {
        isIdentifierContinue(scalar) || scalar == "$" || (scalar.value > 0x7F && scalar.properties.isAlphabetic)
    }

    // MARK: - Errors

    /// A `PGRST100` error pointing at `position` (default: the cursor).
    func failure(at position: Int? = nil, details: String, hint: String? = nil) -> RESTGrammarError {
        let column = min(position ?? index, scalars.count) + 1
        return RESTGrammarError(
            .malformed, code: "PGRST100",
            "\"failed to parse \(subject) (\(Self.shortened(echo)))\" (line 1, column \(column))",
            details: details, hint: hint)
    }

    /// `unexpected "x" expecting …`, Parsec's wording.
    func unexpected(at position: Int? = nil, expecting: String) -> RESTGrammarError {
        failure(at: position, details: "\(unexpectedDescription(at: position ?? index)) expecting \(expecting)")
    }

    /// `unexpected "word"` for a word the grammar does not know, at its start.
    func unexpectedWord(_ word: String, at position: Int, expecting: String) -> RESTGrammarError {
        if word.isEmpty { return unexpected(at: position, expecting: expecting) }
        return failure(at: position, details: "unexpected \"\(Self.shortened(word))\" expecting \(expecting)")
    }

    func unexpectedDescription(at position: Int) -> String {
        guard position < scalars.count else { return "unexpected end of input" }
        let scalar = scalars[position]
        let shown: String =
            switch scalar {
            case "\"": "\\\""
            case "\\": "\\\\"
            // Control characters are shown as escapes so the message stays one readable line.
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: "\\u{\(String(scalar.value, radix: 16))}"
            default: String(Character(scalar))
            }
        return "unexpected \"\(shown)\""
    }

    /// The text without leading and trailing spaces and tabs (HTTP's optional whitespace).
    static func trimmed(_ text: some StringProtocol) -> String {
        let scalars = Array(text.unicodeScalars)
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
            let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" })
        else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }

    /// Input echoed in an error is cut short so that a huge parameter cannot make a huge answer.
    static func shortened(_ text: String, limit: Int = 100) -> String {
        let scalars = text.unicodeScalars
        guard scalars.count > limit else { return text }
        var result = String.UnicodeScalarView(scalars.prefix(limit))
        result.append("…")
        return String(result)
    }
}
