import Gateway
import Testing

@Suite("REST grammar: column filters")
struct FilterGrammarTests {
    typealias F = GrammarFixture

    @Test("every comparison operator keeps its value verbatim", arguments: RESTQuery.ComparisonOperator.allCases)
    func comparisons(op: RESTQuery.ComparisonOperator) throws {
        #expect(try F.filter("age=\(op.rawValue).42") == F.condition("age", .compare(op, "42")))
        #expect(
            try F.filter("created_at=\(op.rawValue).2024-01-01T00:00:00%2B00:00")
                == F.condition("created_at", .compare(op, "2024-01-01T00:00:00+00:00")))
    }

    @Test("like and ilike turn PostgREST's * into %, and keep % as sent")
    func patterns() throws {
        #expect(try F.filter("name=like.*al*") == F.condition("name", .pattern(.like, "%al%")))
        #expect(try F.filter("name=ilike.%25al%25") == F.condition("name", .pattern(.ilike, "%al%")))
        #expect(try F.filter("name=ilike.a_b") == F.condition("name", .pattern(.ilike, "a_b")))
    }

    @Test("is takes null, not_null, true, false and unknown, case-insensitively")
    func isValues() throws {
        #expect(try F.filter("deleted_at=is.null") == F.condition("deleted_at", .is(.null)))
        #expect(try F.filter("deleted_at=is.NULL") == F.condition("deleted_at", .is(.null)))
        #expect(try F.filter("deleted_at=is.not_null") == F.condition("deleted_at", .is(.notNull)))
        #expect(try F.filter("active=is.true") == F.condition("active", .is(.true)))
        #expect(try F.filter("active=is.False") == F.condition("active", .is(.false)))
        #expect(try F.filter("active=is.unknown") == F.condition("active", .is(.unknown)))
        let error = F.rejection("active=is.foo")
        #expect(error?.message == F.message("filter", "is.foo", column: 4))
        #expect(error?.details == "unexpected \"foo\" expecting null, not_null, true, false or unknown")
        #expect(F.rejection("active=is.nullx")?.details == "unexpected \"nullx\" expecting null, not_null, true, false or unknown")
        #expect(F.rejection("active=is.null)")?.details == "unexpected \")\" expecting end of input")
    }

    @Test("in lists follow PostgREST's quoting: double quotes, backslash escapes, commas inside quotes")
    func inLists() throws {
        #expect(try F.filter("id=in.(1,2,3)") == F.condition("id", .in(["1", "2", "3"])))
        #expect(try F.filter("name=in.(\"a,b\",c)") == F.condition("name", .in(["a,b", "c"])))
        #expect(
            try F.filter("name=in.(\"say \\\"hi\\\"\",\"back\\\\slash\",\"(x)\")")
                == F.condition("name", .in(["say \"hi\"", "back\\slash", "(x)"])))
        #expect(try F.filter("name=in.()") == F.condition("name", .in([])))
        #expect(try F.filter("name=in.(\"\")") == F.condition("name", .in([""])))
        #expect(try F.filter("name=in.(1,,2)") == F.condition("name", .in(["1", "", "2"])))
        // A quote that does not close an element right before , or ) is plain text.
        #expect(try F.filter("name=in.(a\"b,c)") == F.condition("name", .in(["a\"b", "c"])))
        #expect(try F.filter("name=in.(\"a\"x,b)") == F.condition("name", .in(["\"a\"x", "b"])))
        #expect(try F.filter("name=in.(\"a,b)") == F.condition("name", .in(["\"a", "b"])))
        // Space after ( and before the end is layout; inside elements it is kept, as PostgREST does.
        #expect(try F.filter("name=in.(+a,+b+)+") == F.condition("name", .in(["a", " b "])))
        // supabase-js: .in('status', ['draft', 'a,b']) → in.(draft,"a,b") URL-encoded.
        #expect(try F.filter("status=in.%28draft%2C%22a%2Cb%22%29") == F.condition("status", .in(["draft", "a,b"])))
    }

    @Test("malformed in lists are PGRST100 with the position")
    func inListErrors() {
        let unclosed = F.rejection("id=in.(1,2")
        #expect(unclosed?.message == F.message("filter", "in.(1,2", column: 8))
        #expect(unclosed?.details == "unexpected end of input expecting \",\" or \")\"")
        #expect(F.rejection("id=in.1,2")?.details == "unexpected \"1\" expecting \"(\"")
        #expect(F.rejection("id=in.(1,2)x")?.details == "unexpected \"x\" expecting end of input")
    }

    @Test("cs, cd and ov keep array, JSON and range literals as sent")
    func arrayOperators() throws {
        #expect(try F.filter("tags=cs.%7Ba,b%7D") == F.condition("tags", .array(.cs, "{a,b}")))
        #expect(try F.filter("tags=cd.{a,\"b c\"}") == F.condition("tags", .array(.cd, "{a,\"b c\"}")))
        #expect(try F.filter("tags=ov.{x}") == F.condition("tags", .array(.ov, "{x}")))
        #expect(try F.filter("meta=cs.{\"a\":1}") == F.condition("meta", .array(.cs, "{\"a\":1}")))
        #expect(try F.filter("during=ov.[2024-01-01,2024-02-01)") == F.condition("during", .array(.ov, "[2024-01-01,2024-02-01)")))
    }

    @Test("not. negates any operator")
    func negation() throws {
        #expect(try F.filter("id=not.eq.5") == .not(F.eq("id", "5")))
        #expect(try F.filter("id=not.in.(1,2)") == .not(F.condition("id", .in(["1", "2"]))))
        #expect(try F.filter("name=not.is.null") == .not(F.condition("name", .is(.null))))
        #expect(try F.filter("name=not.ilike.*x*") == .not(F.condition("name", .pattern(.ilike, "%x%"))))
        #expect(try F.filter("tags=not.cs.{a}") == .not(F.condition("tags", .array(.cs, "{a}"))))
        #expect(F.rejection("id=not.not.eq.5")?.details?.hasPrefix("unexpected \"not\" expecting operator (eq") == true)
        #expect(F.rejection("id=not.")?.details?.hasPrefix("unexpected end of input expecting operator (eq") == true)
    }

    @Test("repeated filters on one column are AND-ed in query order")
    func repeatedFilters() throws {
        #expect(try F.filter("id=gt.1&id=lt.5") == .and([F.condition("id", .compare(.gt, "1")), F.condition("id", .compare(.lt, "5"))]))
    }

    @Test("values are arbitrary text: quotes, semicolons, SQL, operators, dots and unicode stay as sent")
    func arbitraryValues() throws {
        #expect(try F.filter("name=eq.%27;%20DROP%20TABLE%20users;%20--") == F.eq("name", "'; DROP TABLE users; --"))
        #expect(try F.filter("name=eq.a.b.c") == F.eq("name", "a.b.c"))
        #expect(try F.filter("name=eq.eq.1") == F.eq("name", "eq.1"))
        #expect(try F.filter("name=eq.(a,b)") == F.eq("name", "(a,b)"))
        #expect(try F.filter("name=eq.\"quoted\"") == F.eq("name", "\"quoted\""))
        #expect(try F.filter("name=eq.Zo%C3%AB%20%F0%9F%98%80") == F.eq("name", "Zoë 😀"))
        #expect(try F.filter("name=eq.a=b") == F.eq("name", "a=b"))
        #expect(try F.filter("name=eq.") == F.eq("name", ""))
    }

    @Test("filter keys may carry a JSON path, and a quoted plain name")
    func jsonKeys() throws {
        #expect(try F.filter("data->>city=eq.Paris") == F.condition("data", .compare(.eq, "Paris"), path: [.init(.text, .key("city"))]))
        #expect(
            try F.filter("data->tags->0=eq.%22x%22")
                == F.condition("data", .compare(.eq, "\"x\""), path: [.init(.json, .key("tags")), .init(.json, .index(0))]))
        #expect(try F.filter("%22id%22=eq.1") == F.eq("id", "1"))
    }

    @Test("unknown operators and malformed modifiers are PGRST100")
    func operatorErrors() {
        let unknown = F.rejection("id=noop.0")
        #expect(unknown?.status.code == 400)
        #expect(unknown?.code == "PGRST100")
        #expect(unknown?.message == F.message("filter", "noop.0", column: 1))
        #expect(
            unknown?.details
                == "unexpected \"noop\" expecting \"not\" or operator (eq, neq, gt, gte, lt, lte, like, ilike, match, imatch, is, isdistinct, in, cs, cd, ov, sl, sr, nxr, nxl, adj, fts, plfts, phfts, wfts)"
        )

        let bare = F.rejection("id=5")
        #expect(bare?.message == F.message("filter", "5", column: 1))

        // Modifiers only where PostgREST has them, spelled as it spells them.
        #expect(F.rejection("id=eq(some).{1,2}")?.details == "unexpected \"some\" expecting any or all")
        #expect(F.rejection("id=eq(ANY).{1,2}")?.details == "unexpected \"ANY\" expecting any or all")
        #expect(F.rejection("id=eq(any.{1,2}")?.details == "unexpected \".\" expecting \")\"")
        #expect(F.rejection("id=eq(any)1")?.details == "unexpected \"1\" expecting delimiter (.)")
        #expect(F.rejection("id=in(any).(1,2)")?.details == "operator \"in\" takes no modifier")
        #expect(F.rejection("range=adj(any).[1,2)")?.details == "operator \"adj\" takes no modifier")
        #expect(F.rejection("id=is(all).null")?.details == "operator \"is\" takes no modifier")
        #expect(F.rejection("body=fts().cat")?.details?.hasPrefix("unexpected \")\" expecting text search configuration") == true)
        #expect(F.rejection("body=fts(eng lish).cat")?.details == "unexpected \" \" expecting \")\"")
        #expect(F.rejection("body=fts(english;drop).cat")?.details == "unexpected \";\" expecting \")\"")
        #expect(F.rejection("body=wfts(english)")?.details == "unexpected end of input expecting delimiter (.)")
        for query in ["id=eq(", "id=eq()", "id=eq(any)", "body=fts(", "body=fts(x", "or=(id.eq(any).{1},id.eq(all)", "or=(body.fts(.x)"] {
            #expect(F.rejection(query)?.code == "PGRST100", "\(query)")
        }

        let missingDot = F.rejection("id=eq")
        #expect(missingDot?.message == F.message("filter", "eq", column: 3))
        #expect(missingDot?.details == "unexpected end of input expecting delimiter (.)")
        #expect(F.rejection("id=EQ.1")?.details?.hasPrefix("unexpected \"EQ\"") == true)
    }

    @Test("match and imatch keep the regular expression as sent; isdistinct takes any value")
    func matchAndDistinct() throws {
        #expect(try F.filter("name=match.^a.*z$") == F.condition("name", .pattern(.match, "^a.*z$")))
        #expect(try F.filter("name=not.imatch.A*") == .not(F.condition("name", .pattern(.imatch, "A*"))))
        #expect(try F.filter("status=isdistinct.draft") == F.condition("status", .distinct("draft")))
        #expect(try F.filter("status=not.isdistinct.") == .not(F.condition("status", .distinct(""))))
        #expect(
            try F.filter("or=(name.match.^a,status.isdistinct.x)")
                == .or([F.condition("name", .pattern(.match, "^a")), F.condition("status", .distinct("x"))]))
    }

    @Test("range operators take the literal as sent", arguments: RESTQuery.RangeOperator.allCases)
    func ranges(op: RESTQuery.RangeOperator) throws {
        #expect(
            try F.filter("during=\(op.rawValue).[2024-01-01,2024-02-01)") == F.condition("during", .range(op, "[2024-01-01,2024-02-01)")))
        #expect(try F.filter("or=(during.\(op.rawValue).\"[1,5)\")") == .or([F.condition("during", .range(op, "[1,5)"))]))
    }

    @Test("fts, plfts, phfts and wfts take an optional configuration", arguments: RESTQuery.TextSearchOperator.allCases)
    func textSearch(op: RESTQuery.TextSearchOperator) throws {
        #expect(try F.filter("body=\(op.rawValue).fat%20cat") == F.condition("body", .textSearch(op, language: nil, "fat cat")))
        #expect(
            try F.filter("body=\(op.rawValue)(english).fat%20%26%20cat")
                == F.condition("body", .textSearch(op, language: "english", "fat & cat")))
        #expect(try F.filter("body=not.\(op.rawValue)(simple).x") == .not(F.condition("body", .textSearch(op, language: "simple", "x"))))
        #expect(
            try F.filter("and=(body.\(op.rawValue)(french).chat,id.eq.1)")
                == .and([F.condition("body", .textSearch(op, language: "french", "chat")), F.eq("id", "1")]))
    }

    @Test("(any) and (all) quantify comparison and pattern operators over a {…} literal", arguments: RESTQuery.QuantifiedOperator.allCases)
    func quantified(op: RESTQuery.QuantifiedOperator) throws {
        let literal = op == .like || op == .ilike ? "{a%,%b}" : "{a*,*b}"
        #expect(try F.filter("name=\(op.rawValue)(any).{a*,*b}") == F.condition("name", .quantified(op, .any, literal)))
        #expect(try F.filter("name=not.\(op.rawValue)(all).{a*,*b}") == .not(F.condition("name", .quantified(op, .all, literal))))
        #expect(
            try F.filter("or=(name.\(op.rawValue)(any).{a*,*b},id.eq.1)")
                == .or([F.condition("name", .quantified(op, .any, literal)), F.eq("id", "1")]))
    }
}
