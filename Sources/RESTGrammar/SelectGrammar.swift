/// `select=`, `order=`, `on_conflict=` and `columns=`: the parameters made of names.
enum SelectGrammar {
    /// `select=*,id,alias:column,data->key,price::text,rel(*),alias:rel!fk!inner(id),...rel(name)`.
    /// Aggregates (`count()`, `col.sum()`) are refused.
    static func parseSelect(_ text: String) throws(RESTGrammarError) -> [RESTQuery.SelectItem] {
        var scanner = GrammarScanner(text, subject: "select parameter")
        scanner.skipWhitespace()
        // PostgREST 12: an empty select= selects no columns.
        if scanner.atEnd { return [] }
        let items = try selectList(&scanner, depth: 0)
        guard scanner.atEnd else { throw scanner.unexpected(expecting: "\"->\", \"->>\", \"::\", \",\" or end of input") }
        return items
    }

    /// Embeds nested deeper than this are refused; it bounds the parser's recursion.
    static let maximumEmbedDepth = 8

    /// Items up to the end of the text (depth 0) or the `)` closing an embed (not consumed).
    private static func selectList(_ scanner: inout GrammarScanner, depth: Int) throws(RESTGrammarError) -> [RESTQuery.SelectItem] {
        var items: [RESTQuery.SelectItem] = []
        scanner.skipWhitespace()
        if depth > 0, scanner.peek() == ")" { return items }
        while true {
            scanner.skipWhitespace()
            items.append(try selectItem(&scanner, depth: depth))
            scanner.skipWhitespace()
            if scanner.atEnd || (depth > 0 && scanner.peek() == ")") { return items }
            guard scanner.consume(",") else {
                throw scanner.unexpected(
                    expecting: depth > 0
                        ? "\"->\", \"->>\", \"::\", \",\" or \")\""
                        : "\"->\", \"->>\", \"::\", \",\" or end of input")
            }
        }
    }

    private static func selectItem(_ scanner: inout GrammarScanner, depth: Int) throws(RESTGrammarError) -> RESTQuery.SelectItem {
        let start = scanner.index
        if scanner.consume("*") {
            scanner.skipWhitespace()
            guard scanner.atEnd || scanner.peek() == "," || (depth > 0 && scanner.peek() == ")") else {
                throw scanner.unexpected(expecting: depth > 0 ? "\",\" or \")\"" : "\",\" or end of input")
            }
            return .all
        }
        if scanner.consume("...") {
            let name = try scanner.identifier(expecting: "relation name")
            guard scanner.peek() == "(" || scanner.peek() == "!" else {
                throw scanner.unexpected(expecting: "\"!\" or \"(\" after a spread relation")
            }
            return .embed(try embed(&scanner, relation: name, alias: nil, spread: true, depth: depth))
        }
        let first = try scanner.identifier()
        var alias: String?
        var column = first
        var columnStart = start
        // `alias:column`; a single colon, since `::` starts a cast.
        if scanner.peek() == ":" && scanner.peek(1) != ":" {
            scanner.advance()
            alias = first
            columnStart = scanner.index
            column = try scanner.identifier()
        }
        if scanner.peek() == "(" || scanner.peek() == "!" {
            if column == "count" && scanner.peekIs("()") {
                throw scanner.failure(at: columnStart, details: "aggregate functions are not supported (count())")
            }
            return .embed(try embed(&scanner, relation: column, alias: alias, spread: false, depth: depth))
        }
        let path = try scanner.jsonPath()
        var cast: String?
        if scanner.consume("::") {
            cast = try scanner.identifier(expecting: "type name")
        }
        if scanner.peek() == ".", let aggregate = aggregateName(after: scanner) {
            throw scanner.failure(details: "aggregate functions are not supported (\(aggregate)())")
        }
        return .column(RESTQuery.SelectColumn(RESTQuery.Field(column, jsonPath: path), alias: alias, cast: cast))
    }

    /// `!hint!inner(items)` after a relation name: at most one hint and one join type, in any order.
    private static func embed(
        _ scanner: inout GrammarScanner, relation: String, alias: String?, spread: Bool, depth: Int
    ) throws(RESTGrammarError) -> RESTQuery.Embed {
        guard depth < maximumEmbedDepth else {
            throw scanner.failure(details: "embedded resources are nested deeper than \(maximumEmbedDepth) levels")
        }
        var embed = RESTQuery.Embed(relation, alias: alias, spread: spread, select: [])
        while scanner.consume("!") {
            let wordStart = scanner.index
            let word = try scanner.identifier(expecting: "hint or join type (inner, left)")
            if let join = RESTQuery.JoinType(rawValue: word) {
                guard embed.join == nil else {
                    throw scanner.unexpectedWord(word, at: wordStart, expecting: "\"(\": one join type per relation")
                }
                embed.join = join
            } else {
                guard embed.hint == nil else {
                    throw scanner.unexpectedWord(word, at: wordStart, expecting: "join type (inner, left): one hint per relation")
                }
                embed.hint = word
            }
        }
        guard scanner.consume("(") else { throw scanner.unexpected(expecting: "\"!\" or \"(\"") }
        embed.select = try selectList(&scanner, depth: depth + 1)
        guard scanner.consume(")") else { throw scanner.unexpected(expecting: "\",\" or \")\"") }
        return embed
    }

    /// `.sum()` and friends, which PostgREST 12 accepts after a column when aggregates are enabled.
    private static func aggregateName(after scanner: GrammarScanner) -> String? {
        var probe = scanner
        probe.advance()
        let name = probe.word()
        guard ["sum", "avg", "count", "max", "min"].contains(name), probe.peekIs("()") else { return nil }
        return name
    }

    // MARK: - order=

    /// `order=col.desc.nullslast,other.asc,third,data->>key.desc`
    static func parseOrder(_ text: String) throws(RESTGrammarError) -> [RESTQuery.OrderTerm] {
        var scanner = GrammarScanner(text, subject: "order")
        var terms: [RESTQuery.OrderTerm] = []
        while true {
            scanner.skipWhitespace()
            terms.append(try orderTerm(&scanner))
            scanner.skipWhitespace()
            if scanner.atEnd { return terms }
            guard scanner.consume(",") else {
                throw scanner.unexpected(expecting: "\"->\", \"->>\", delimiter (.), \",\" or end of input")
            }
        }
    }

    private static func orderTerm(_ scanner: inout GrammarScanner) throws(RESTGrammarError) -> RESTQuery.OrderTerm {
        var column = try scanner.identifier()
        var relation: String?
        var path: [RESTQuery.JSONStep] = []
        if scanner.consume("(") {
            // `order=relation(column)`: a to-one embedded resource's column.
            relation = column
            scanner.skipWhitespace()
            column = try scanner.identifier()
            path = try scanner.jsonPath()
            scanner.skipWhitespace()
            guard scanner.consume(")") else { throw scanner.unexpected(expecting: "\"->\", \"->>\" or \")\"") }
        } else {
            path = try scanner.jsonPath()
        }
        var term = RESTQuery.OrderTerm(RESTQuery.Field(column, jsonPath: path), relation: relation)
        scanner.skipWhitespace()
        while scanner.peek() == "." {
            scanner.advance()
            let wordStart = scanner.index
            let word = scanner.word()
            if term.direction == nil, term.nulls == nil, let direction = RESTQuery.OrderDirection(rawValue: word) {
                term.direction = direction
            } else if term.nulls == nil, let nulls = RESTQuery.NullsOrder(rawValue: word) {
                term.nulls = nulls
            } else if term.nulls != nil {
                throw scanner.unexpected(at: wordStart - 1, expecting: "\",\" or end of input")
            } else {
                let expected =
                    term.direction == nil
                    ? "\"asc\", \"desc\", \"nullsfirst\" or \"nullslast\""
                    : "\"nullsfirst\" or \"nullslast\""
                throw scanner.unexpectedWord(word, at: wordStart, expecting: expected)
            }
        }
        return term
    }

    // MARK: - on_conflict= and columns=

    /// A comma-separated list of column names.
    static func parseColumns(_ text: String, subject: String) throws(RESTGrammarError) -> [String] {
        var scanner = GrammarScanner(text, subject: subject)
        var names: [String] = []
        while true {
            scanner.skipWhitespace()
            names.append(try scanner.identifier())
            scanner.skipWhitespace()
            if scanner.atEnd { return names }
            guard scanner.consume(",") else { throw scanner.unexpected(expecting: "\",\" or end of input") }
        }
    }
}
