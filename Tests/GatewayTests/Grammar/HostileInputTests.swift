import Gateway
import HTTPTypes
import Testing

@Suite("REST grammar: hostile input")
struct HostileInputTests {
    typealias F = GrammarFixture

    @Test(
        "SQL fragments in select, order, column names and name lists are PGRST100 at the offending character",
        arguments: [
            ("select=id;drop%20table%20x", "select parameter", "id;drop table x", 3, "\";\""),
            ("select=id,name%20from%20users--", "select parameter", "id,name from users--", 9, "\"f\""),
            ("select=id::text;select%201", "select parameter", "id::text;select 1", 9, "\";\""),
            ("select=id)", "select parameter", "id)", 3, "\")\""),
            ("select=%22id%22%22", "select parameter", "\"id\"\"", 5, "\"\\\"\""),
            ("select=id--", "select parameter", "id--", 3, "\"-\""),
            ("select=id/**/", "select parameter", "id/**/", 3, "\"/\""),
            ("select=%27id%27", "select parameter", "'id'", 1, "\"'\""),
            ("order=id%20desc--", "order", "id desc--", 4, "\"d\""),
            ("order=id.desc;drop%20table%20x", "order", "id.desc;drop table x", 8, "\";\""),
            ("order=(select%201)", "order", "(select 1)", 1, "\"(\""),
            ("order=random()", "order", "random()", 8, "\")\""),  // read as order=relation(column): no column
            ("name)=eq.1", "tree path", "name)", 5, "\")\""),
            ("id%3Bdrop=eq.1", "tree path", "id;drop", 3, "\";\""),
            ("%22id%22%20or%201=eq.1", "tree path", "\"id\" or 1", 6, "\"o\""),
            ("id%20--=eq.1", "tree path", "id --", 4, "\"-\""),
            ("1=eq.1", "tree path", "1", 1, "\"1\""),
            ("or=(id.eq.1)%3Bdrop", "logic tree", "(id.eq.1);drop", 12, "\";\""),
            ("or=(id;drop.eq.1)", "logic tree", "(id;drop.eq.1)", 6, "\";\""),
        ] as [(String, String, String, Int, String?)])
    func sqlInNames(query: String, subject: String, text: String, column: Int, unexpected: String?) {
        let error = F.rejection(query)
        #expect(error?.status.code == 400)
        #expect(error?.code == "PGRST100")
        #expect(error?.message == F.message(subject, text, column: column))
        if let unexpected {
            #expect(error?.details?.hasPrefix("unexpected \(unexpected)") == true, "\(error?.details ?? "")")
        }
    }

    @Test("a quoted name cannot smuggle SQL either")
    func quotedSmuggling() {
        for query in [
            "select=%22id;drop%22", "select=%22a%22%22b%22", "order=%22id%20desc%22", "%22na%5C%22me%22=eq.1", "columns=%22a,b%22",
        ] {
            let error = F.rejection(query, method: .post)
            #expect(error?.status.code == 400, "\(query)")
            #expect(error?.code == "PGRST100", "\(query)")
        }
    }

    @Test("SQL in filter values is only a value")
    func sqlInValues() throws {
        #expect(try F.filter("id=eq.1%20OR%201=1") == F.eq("id", "1 OR 1=1"))
        #expect(F.rejection("id=in.(1)%20OR%20(1=1)")?.details == "unexpected \"O\" expecting end of input")
    }

    @Test("unbalanced parentheses anywhere are PGRST100")
    func unbalanced() throws {
        for query in [
            "or=((a.eq.1)", "or=(a.eq.1))", "or=(((((", "or=)))", "and=(a.eq.1,or(b.eq.2)", "id=in.(1,2))", "select=a(", "order=a)",
        ] {
            let error = F.rejection(query)
            #expect(error?.status.code == 400, "\(query)")
            #expect(error?.code == "PGRST100", "\(query)")
        }
        // An opening parenthesis inside an in-list element is text, as in PostgREST.
        #expect(try F.filter("id=in.((1,2)") == F.condition("id", .in(["(1", "2"])))
    }

    @Test("very deep nesting is refused at the depth limit, without exhausting the stack")
    func deepNesting() {
        let depth = 100_000
        let groups = F.rejection(
            "or=(" + String(repeating: "or(", count: depth) + "a.eq.1" + String(repeating: ")", count: depth + 1) + ")")
        #expect(groups?.details == "logic tree is nested deeper than 32 levels")
        let parentheses = F.rejection("or=" + String(repeating: "(", count: depth))
        #expect(parentheses?.code == "PGRST100")
        let lists = F.rejection("id=in." + String(repeating: "(", count: depth))
        #expect(lists?.code == "PGRST100")
    }

    @Test(
        "empty values of every parameter are refused or mean nothing, never crash",
        arguments: [
            ("select=", nil), ("order=", 400), ("limit=", 400), ("offset=", 400), ("on_conflict=", 400),
            ("columns=", 400), ("or=", 400), ("and=", 400), ("not.or=", 400), ("id=", 400), ("=", 400),
            ("&", nil), ("&&&", nil), ("=&=", 400), ("id=in.", 400), ("id=is.", 400), ("id=not.", 400), ("or=()", 400),
        ] as [(String, Int?)])
    func emptyValues(query: String, status: Int?) {
        do {
            _ = try RESTQuery.parse(method: .get, query: query)
            #expect(status == nil, "\(query) parsed")
        } catch {
            #expect(GatewayError(error).status.code == status, "\(query): \(error)")
            #expect(error.code == "PGRST100", "\(query)")
        }
    }

    @Test("huge inputs parse, and errors echo them cut short")
    func hugeInputs() throws {
        let columns = (0..<50_000).map { "c\($0)" }.joined(separator: ",")
        #expect(try F.parse("select=" + columns).select.count == 50_000)

        let megabyte = String(repeating: "x", count: 1 << 20)
        #expect(try F.filter("name=eq." + megabyte) == F.eq("name", megabyte))

        let filters = (0..<10_000).map { "c\($0)=eq.\($0)" }.joined(separator: "&")
        if case .and(let conditions) = try F.filter(filters) {
            #expect(conditions.count == 10_000)
        } else {
            Issue.record("expected an AND")
        }

        let orItems = (0..<10_000).map { "c.eq.\($0)" }.joined(separator: ",")
        if case .or(let items) = try F.filter("or=(" + orItems + ")") {
            #expect(items.count == 10_000)
        } else {
            Issue.record("expected an OR")
        }

        let junk = F.rejection("select=" + String(repeating: "a;", count: 500_000))
        #expect(junk?.code == "PGRST100")
        #expect((junk?.message.count ?? .max) < 200)

        let prefer = try RESTQuery.Preferences.parse([String(repeating: "x,", count: 100_000)])
        #expect(prefer.ignored.count == 100_000)
        let strict = #expect(throws: RESTGrammarError.self) {
            try RESTQuery.Preferences.parse(["handling=strict," + String(repeating: "x,", count: 100_000)])
        }
        #expect((strict?.details?.count ?? .max) < 400)
    }

    @Test("random query strings and headers never crash: they parse or fail with a 4xx PostgREST error")
    func fuzz() {
        var random = GrammarFuzzRandom(seed: 0x5eed_2024)
        let pieces = [
            "select=", "order=", "limit=", "offset=", "on_conflict=", "columns=", "or=", "and=", "not.or=", "id=", "data->>k=",
            "eq.", "neq.", "gt.", "in.", "is.", "like.", "cs.", "not.", "null", "true", "and(", "or(", "not.and(",
            ".", ",", "(", ")", "\"", "\\", "{", "}", "->", "->>", "::", ":", "*", "&", "=", "%", "%2", "%28", "%22", "%FF", "%C3%A9",
            "+", " ", "\t", "id", "name", "_x", "9", "-", "asc", "desc", "nullslast", "é", "😀", ";", "--", "'", "/*", "\0",
        ]
        let headerValues = [
            "0-9", "9-0", "5-", "x", "", "return=representation", "count=exact", "handling=strict", "foo",
            "application/json", "application/vnd.pgrst.object+json", "text/csv", "image/png", "public", "other",
        ]
        let methods: [HTTPRequest.Method] = [.get, .head, .post, .patch, .delete]
        var parsed = 0
        for _ in 0..<5_000 {
            var query = ""
            for _ in 0..<random.next(below: 30) { query += pieces[random.next(below: pieces.count)] }
            func header() -> String? {
                random.next(below: 3) == 0 ? headerValues[random.next(below: headerValues.count)] : nil
            }
            let headers = RESTQuery.Headers(
                prefer: [header()].compactMap { $0 }, accept: header(), acceptProfile: header(),
                contentProfile: header(), range: header())
            do {
                _ = try RESTQuery.parse(method: methods[random.next(below: methods.count)], query: query, headers: headers)
                parsed += 1
            } catch {
                #expect((400..<500).contains(GatewayError(error).status.code), "\(query): \(error)")
                #expect(error.code.hasPrefix("PGRST"), "\(query)")
                #expect(!error.message.isEmpty, "\(query)")
            }
        }
        // The generator must reach the parsers' success paths too, not only their error paths.
        #expect(parsed > 50)
    }
}

/// A small seeded generator, so a fuzz failure can be replayed.
struct GrammarFuzzRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func next(below bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }
}
