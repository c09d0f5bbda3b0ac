/// `select=`, `order=`, `on_conflict=` and `columns=`: the parameters made of names.
enum SelectGrammar {
    /// `select=*,id,alias:column,data->key,price::text`. Relations (`rel(*)`, `...rel(*)`,
    /// `rel!inner(*)`) and aggregates (`count()`, `col.sum()`) are refused.
    static func parseSelect(_ text: String) throws(GatewayError) -> [RESTQuery.SelectItem] {
        var scanner = GrammarScanner(text, subject: "select parameter")
        scanner.skipWhitespace()
        // PostgREST 12: an empty select= selects no columns.
        if scanner.atEnd { return [] }
        var items: [RESTQuery.SelectItem] = []
        while true {
            scanner.skipWhitespace()
            items.append(try selectItem(&scanner))
            scanner.skipWhitespace()
            if scanner.atEnd { return items }
            guard scanner.consume(",") else {
                throw scanner.unexpected(expecting: "\"->\", \"->>\", \"::\", \",\" or end of input")
            }
        }
    }

    private static func selectItem(_ scanner: inout GrammarScanner) throws(GatewayError) -> RESTQuery.SelectItem {
        let start = scanner.index
        if scanner.consume("*") {
            scanner.skipWhitespace()
            if scanner.peek() == "(" || scanner.peek() == "!" {
                throw scanner.embeddingRefused(at: start, resource: "*")
            }
            guard scanner.atEnd || scanner.peek() == "," else {
                throw scanner.unexpected(expecting: "\",\" or end of input")
            }
            return .all
        }
        if scanner.peekIs("..") {
            // A spread relation: name the relation in the error when there is one.
            let dots = scanner.index
            while scanner.peek() == "." { scanner.advance() }
            let name = scanner.word()
            throw scanner.embeddingRefused(at: dots, resource: name.isEmpty ? "..." : name)
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
            throw scanner.embeddingRefused(at: columnStart, resource: column)
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
    static func parseOrder(_ text: String) throws(GatewayError) -> [RESTQuery.OrderTerm] {
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

    private static func orderTerm(_ scanner: inout GrammarScanner) throws(GatewayError) -> RESTQuery.OrderTerm {
        let start = scanner.index
        let column = try scanner.identifier()
        if scanner.peek() == "(" {
            // PostgREST's `order=relation(column)` orders by an embedded resource.
            throw scanner.embeddingRefused(at: start, resource: column)
        }
        var term = RESTQuery.OrderTerm(RESTQuery.Field(column, jsonPath: try scanner.jsonPath()))
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
                let expected = term.direction == nil
                    ? "\"asc\", \"desc\", \"nullsfirst\" or \"nullslast\""
                    : "\"nullsfirst\" or \"nullslast\""
                throw scanner.unexpectedWord(word, at: wordStart, expecting: expected)
            }
        }
        return term
    }

    // MARK: - on_conflict= and columns=

    /// A comma-separated list of column names.
    static func parseColumns(_ text: String, subject: String) throws(GatewayError) -> [String] {
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
