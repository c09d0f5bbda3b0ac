import Gateway
import Testing

@Suite("REST grammar: or=/and= logic trees")
struct LogicTreeGrammarTests {
    typealias F = GrammarFixture

    /// A value nested `levels` groups deep in total, counting the parameter's own group.
    static func nested(levels: Int) -> String {
        var inner = "id.eq.1"
        for level in 0..<(levels - 1) { inner = (level.isMultiple(of: 2) ? "and(" : "or(") + inner + ")" }
        return "or=(" + inner + ")"
    }

    @Test("or=(…) as supabase-js encodes it")
    func supabaseOr() throws {
        #expect(try F.filter("or=%28status.eq.draft%2Cstatus.eq.active%29") == .or([F.eq("status", "draft"), F.eq("status", "active")]))
    }

    @Test("and/or nest arbitrarily, with not. on groups and on operators")
    func nesting() throws {
        let tree = try F.filter("or=(a.eq.1,and(b.gt.2,c.is.null),not.and(d.lt.0,e.not.in.(1,2)))")
        #expect(
            tree
                == .or([
                    F.eq("a", "1"),
                    .and([F.condition("b", .compare(.gt, "2")), F.condition("c", .is(.null))]),
                    .not(.and([F.condition("d", .compare(.lt, "0")), .not(F.condition("e", .in(["1", "2"])))])),
                ]))
    }

    @Test("and=, not.or= and not.and= parameters")
    func parameterForms() throws {
        #expect(try F.filter("and=(a.eq.1,b.eq.2)") == .and([F.eq("a", "1"), F.eq("b", "2")]))
        #expect(try F.filter("not.or=(a.eq.1,b.eq.2)") == .not(.or([F.eq("a", "1"), F.eq("b", "2")])))
        #expect(try F.filter("not.and=(a.eq.1)") == .not(.and([F.eq("a", "1")])))
    }

    @Test("values end at , or ) unless double-quoted or a {…} literal; like gets * → %")
    func values() throws {
        let tree = try F.filter("or=(name.eq.\"a,b)\",tags.cs.{x,y},name.ilike.*z*,note.eq.,data->>k.eq.v)")
        #expect(
            tree
                == .or([
                    F.eq("name", "a,b)"),
                    F.condition("tags", .array(.cs, "{x,y}")),
                    F.condition("name", .pattern(.ilike, "%z%")),
                    F.eq("note", ""),
                    F.condition("data", .compare(.eq, "v"), path: [.init(.text, .key("k"))]),
                ]))
        // A quote that is not the whole value is text, as in PostgREST.
        #expect(try F.filter("or=(name.eq.a\"b,id.eq.1)") == .or([F.eq("name", "a\"b"), F.eq("id", "1")]))
    }

    @Test("spaces around items and parentheses are layout")
    func spaces() throws {
        #expect(try F.filter("or=(+a.eq.1+,+and+(b.eq.2)+)") == .or([F.eq("a", "1 "), .and([F.eq("b", "2")])]))
    }

    @Test("in lists work inside logic trees")
    func inside() throws {
        #expect(
            try F.filter("or=(id.in.(1,\"2,3\"),id.is.null)")
                == .or([F.condition("id", .in(["1", "2,3"])), F.condition("id", .is(.null))]))
    }

    @Test("a column called and, or or not is still a condition")
    func keywordColumns() throws {
        #expect(try F.filter("or=(and.eq.1,or.eq.2,not.eq.3)") == .or([F.eq("and", "1"), F.eq("or", "2"), F.eq("not", "3")]))
    }

    @Test("a name before a column names embedded resources: or=(name.eq.x,sitemaps.title.eq.y), nested, negated, with JSON paths")
    func embeddedPaths() throws {
        func on(_ path: [String], _ column: String, _ operation: RESTQuery.FilterOperation, json: [RESTQuery.JSONStep] = [])
            -> RESTQuery.FilterTree
        {
            .condition(RESTQuery.Condition(RESTQuery.Field(column, jsonPath: json), operation, path: path))
        }
        #expect(
            try F.filter("or=(name.eq.x,sitemaps.title.eq.y)") == .or([F.eq("name", "x"), on(["sitemaps"], "title", .compare(.eq, "y"))]))
        #expect(
            try F.filter("and=(sitemaps.wireframes.title.not.like.a*,p.meta->>k.eq.v)")
                == .and([
                    .not(on(["sitemaps", "wireframes"], "title", .pattern(.like, "a%"))),
                    on(["p"], "meta", .compare(.eq, "v"), json: [.init(.text, .key("k"))]),
                ]))
        // `rel.not.is.null` is the embed's presence (a condition on the name itself).
        #expect(try F.filter("or=(sitemaps.not.is.null,name.eq.x)") == .or([.not(F.condition("sitemaps", .is(.null))), F.eq("name", "x")]))
        // Quoted names too; a name that is an operator ends the path.
        #expect(try F.filter("or=(\"maps\".title.eq.y)") == .or([on(["maps"], "title", .compare(.eq, "y"))]))
        #expect(try F.filter("or=(sitemaps.in.(1,2))") == .or([F.condition("sitemaps", .in(["1", "2"]))]))
        // Malformed: a path with no operator, or ending at a delimiter.
        #expect(F.rejection("or=(sitemaps.title)")?.code == "PGRST100")
        #expect(F.rejection("or=(sitemaps.title.)")?.code == "PGRST100")
        #expect(F.rejection("or=(sitemaps..title.eq.1)")?.code == "PGRST100")
        #expect(F.rejection("or=(a.b.c.d.e)")?.code == "PGRST100")
    }

    @Test("the size limits bound embedded resources' filters as the table's: rel.or=(…) depth and rel.col=in.(…) length")
    func embeddedLimits() throws {
        let limits = RESTQuery.Limits(logicDepth: 2, inListLength: 3)
        func refusal(_ query: String) -> GatewayError? {
            do {
                _ = try RESTQuery.parse(method: .get, query: query, limits: limits)
                Issue.record("\(query) parsed")
                return nil
            } catch {
                return GatewayError(error)
            }
        }
        #expect(
            try RESTQuery.parse(method: .get, query: "sitemaps.or=(a.eq.1,and(b.eq.2))&sitemaps.id=in.(1,2,3)", limits: limits).embedded
                .count == 1)
        #expect(refusal("sitemaps.or=(a.eq.1,and(b.eq.2,or(c.eq.3)))")?.code == "PGRST100")
        #expect(refusal("sitemaps.wireframes.id=in.(1,2,3,4)")?.code == "PGRST100")
        #expect(refusal("or=(sitemaps.id.in.(1,2,3,4))")?.code == "PGRST100")
    }

    @Test("logic parameters, repeated or=, and plain filters are all AND-ed in query order")
    func combined() throws {
        let tree = try F.filter("user_id=eq.u1&or=(a.eq.1,b.eq.2)&or=(c.eq.3,d.eq.4)")
        #expect(
            tree
                == .and([
                    F.eq("user_id", "u1"),
                    .or([F.eq("a", "1"), F.eq("b", "2")]),
                    .or([F.eq("c", "3"), F.eq("d", "4")]),
                ]))
    }

    @Test("32 levels of nesting parse; 33 are PGRST100")
    func depthLimit() throws {
        #expect(RESTQuery.maximumLogicDepth == 32)
        #expect(try F.parse(Self.nested(levels: 32)).filter != nil)
        let error = F.rejection(Self.nested(levels: 33))
        #expect(error?.status.code == 400)
        #expect(error?.code == "PGRST100")
        #expect(error?.details == "logic tree is nested deeper than 32 levels")
    }

    @Test("malformed trees give PostgREST's messages and columns")
    func errors() {
        let empty = F.rejection("or=()")
        #expect(empty?.message == F.message("logic tree", "()", column: 4))
        #expect(empty?.details == "unexpected \")\" expecting field name, negation operator (not) or logic operator (and, or)")

        let bareList = F.rejection("or=(id.in.1,2,id.eq.3)")
        #expect(bareList?.message == F.message("logic tree", "(id.in.1,2,id.eq.3)", column: 10))
        #expect(bareList?.details == "unexpected \"1\" expecting \"(\"")

        let reversed = F.rejection("or=)(")
        #expect(reversed?.message == F.message("logic tree", ")(", column: 3))
        #expect(reversed?.details == "unexpected \")\" expecting \"(\"")

        let noParens = F.rejection("or=a.eq.1")
        #expect(noParens?.details == "unexpected \"a\" expecting \"(\"")

        let unclosed = F.rejection("and=(a.eq.1,b.eq.2")
        #expect(unclosed?.details == "unexpected end of input expecting \",\" or \")\"")

        let extra = F.rejection("or=(a.eq.1))")
        #expect(extra?.details == "unexpected \")\" expecting end of input")

        let xor = F.rejection("or=(id.eq.1,not.xor(id.eq.2,id.eq.3))")
        #expect(xor?.message == F.message("logic tree", "(id.eq.1,not.xor(id.eq.2,id.eq.3))", column: 16))

        let missingOperator = F.rejection("or=(id,name.eq.1)")
        #expect(missingOperator?.details == "unexpected \",\" expecting \"->\", \"->>\" or delimiter (.)")

        let notValue = F.rejection("or=(a.is.maybe)")
        #expect(notValue?.details == "unexpected \"maybe\" expecting null, not_null, true, false or unknown")

        #expect(F.rejection("or=")?.details == "unexpected end of input expecting \"(\"")
    }
}
