import Gateway
import HTTPTypes
import Testing

@Suite("REST grammar: order, limit, offset, Range, on_conflict, columns")
struct OrderAndRangeTests {
    typealias F = GrammarFixture

    @Test("order terms take asc/desc and nullsfirst/nullslast, each optional")
    func orderTerms() throws {
        let query = try F.parse("order=created_at.desc.nullslast,name.asc,third,score.nullsfirst,data->>k.desc")
        #expect(
            query.order == [
                RESTQuery.OrderTerm(RESTQuery.Field("created_at"), direction: .desc, nulls: .last),
                RESTQuery.OrderTerm(RESTQuery.Field("name"), direction: .asc),
                RESTQuery.OrderTerm(RESTQuery.Field("third")),
                RESTQuery.OrderTerm(RESTQuery.Field("score"), nulls: .first),
                RESTQuery.OrderTerm(RESTQuery.Field("data", jsonPath: [.init(.text, .key("k"))]), direction: .desc),
            ])
        #expect(try F.parse("order=a.asc,+b.desc").order.count == 2)
    }

    @Test(
        "bad order modifiers are PGRST100 naming the word and its column",
        arguments: [
            ("id.ac", 4, "unexpected \"ac\" expecting \"asc\", \"desc\", \"nullsfirst\" or \"nullslast\""),
            ("id.descc", 4, "unexpected \"descc\" expecting \"asc\", \"desc\", \"nullsfirst\" or \"nullslast\""),
            ("id.asc.nlsfst", 8, "unexpected \"nlsfst\" expecting \"nullsfirst\" or \"nullslast\""),
            ("id.asc.desc", 8, "unexpected \"desc\" expecting \"nullsfirst\" or \"nullslast\""),
            ("id.nullslast.asc", 13, "unexpected \".\" expecting \",\" or end of input"),
            ("id.", 4, "unexpected end of input expecting \"asc\", \"desc\", \"nullsfirst\" or \"nullslast\""),
            ("id,", 4, "unexpected end of input expecting field name"),
            ("", 1, "unexpected end of input expecting field name"),
        ])
    func orderErrors(order: String, column: Int, details: String) {
        let error = F.rejection("order=\(order)")
        #expect(error?.status.code == 400)
        #expect(error?.code == "PGRST100")
        #expect(error?.message == F.message("order", order, column: column))
        #expect(error?.details == details)
    }

    @Test("order=relation(column) names an embedded resource's column; malformed ones are PGRST100")
    func orderEmbedding() throws {
        #expect(
            try F.parse("order=clients(name).desc,id").order == [
                RESTQuery.OrderTerm(RESTQuery.Field("name"), direction: .desc, relation: "clients"),
                RESTQuery.OrderTerm(RESTQuery.Field("id")),
            ])
        #expect(
            try F.parse("order=c(data->>k).asc.nullslast").order == [
                RESTQuery.OrderTerm(
                    RESTQuery.Field("data", jsonPath: [.init(.text, .key("k"))]), direction: .asc, nulls: .last, relation: "c")
            ])
        for query in [
            "order=clients(", "order=clients()", "order=clients(name", "order=clients(name)x", "order=clients(a,b)",
            "order=clients(name)(x)",
        ] {
            #expect(F.rejection(query)?.code == "PGRST100", "\(query)")
        }
    }

    @Test("limit and offset as supabase-js .range(20, 29) sends them")
    func limitOffset() throws {
        let query = try F.parse("offset=20&limit=10")
        #expect(query.limit == 10)
        #expect(query.offset == 20)
        let none = try F.parse("")
        #expect(none.limit == nil)
        #expect(none.offset == 0)
        let zero = try F.parse("limit=0&offset=5")
        #expect(zero.limit == 0)
        #expect(zero.offset == 5)
    }

    @Test("a Range header gives offset and limit, intersected with limit/offset as PostgREST does")
    func rangeHeader() throws {
        func window(_ query: String, range: String?, method: HTTPRequest.Method = .get) throws -> [Int?] {
            let parsed = try F.parse(query, method: method, headers: RESTQuery.Headers(range: range))
            return [parsed.limit, parsed.offset]
        }
        #expect(try window("", range: "0-9") == [10, 0])
        #expect(try window("", range: "5-") == [nil, 5])
        #expect(try window("", range: "3-3") == [1, 3])
        #expect(try window("offset=5", range: "0-9") == [5, 5])
        #expect(try window("limit=10&offset=20", range: "0-99") == [10, 20])
        #expect(try window("limit=100", range: "10-19") == [10, 10])
        #expect(try window("limit=0", range: "10-19") == [0, 0])
        // HEAD answers like GET; writes and unreadable headers ignore Range, as PostgREST does.
        #expect(try window("", range: "0-9", method: .head) == [10, 0])
        #expect(try window("", range: "0-9", method: .patch) == [nil, 0])
        #expect(try window("", range: "items=0-9") == [nil, 0])
        #expect(try window("", range: "bytes=0-9") == [nil, 0])
        #expect(try window("", range: "-5") == [nil, 0])
        #expect(try window("", range: "0-99999999999999999999999") == [Int.max, 0])
    }

    @Test("unsatisfiable ranges are 416 PGRST103 with PostgREST's details")
    func unsatisfiable() {
        let reversed = F.rejection("", headers: RESTQuery.Headers(range: "9-0"))
        #expect(reversed?.status.code == 416)
        #expect(reversed?.code == "PGRST103")
        #expect(reversed?.message == "Requested range not satisfiable")
        #expect(reversed?.details == "The lower boundary must be lower than or equal to the upper boundary in the Range header.")

        let negative = F.rejection("limit=-1")
        #expect(negative?.status.code == 416)
        #expect(negative?.code == "PGRST103")
        #expect(negative?.details == "Limit should be greater than or equal to zero.")

        // An empty intersection of header and limit gets PostgREST's negative-limit text.
        let disjoint = F.rejection("limit=5", headers: RESTQuery.Headers(range: "10-19"))
        #expect(disjoint?.status.code == 416)
        #expect(disjoint?.details == "Limit should be greater than or equal to zero.")
    }

    @Test(
        "limit and offset that are not non-negative integers are PGRST100",
        arguments: [
            ("limit=abc", "limit parameter", "abc", 1, "unexpected \"a\" expecting a non-negative integer"),
            ("limit=10abc", "limit parameter", "10abc", 3, "unexpected \"a\" expecting a non-negative integer"),
            ("limit=", "limit parameter", "", 1, "unexpected end of input expecting a non-negative integer"),
            ("limit=+5", "limit parameter", " 5", 1, "unexpected \" \" expecting a non-negative integer"),
            ("offset=-1", "offset parameter", "-1", 1, "unexpected \"-\" expecting a non-negative integer"),
            ("offset=1.5", "offset parameter", "1.5", 2, "unexpected \".\" expecting a non-negative integer"),
            ("limit=99999999999999999999", "limit parameter", "99999999999999999999", 1, "limit is too large"),
        ])
    func badCounts(query: String, subject: String, text: String, column: Int, details: String) {
        let error = F.rejection(query)
        #expect(error?.status.code == 400)
        #expect(error?.code == "PGRST100")
        #expect(error?.message == F.message(subject, text, column: column))
        #expect(error?.details == details)
    }

    @Test("on_conflict= and columns= are lists of plain or quoted names")
    func conflictAndColumns() throws {
        let query = try F.parse("on_conflict=tenant_id,+email&columns=%22id%22,%22name%22", method: .post)
        #expect(query.onConflict == ["tenant_id", "email"])
        #expect(query.columns == ["id", "name"])
        let absent = try F.parse("", method: .post)
        #expect(absent.onConflict == [])
        #expect(absent.columns == nil)

        let bad = F.rejection("on_conflict=id;drop", method: .post)
        #expect(bad?.message == F.message("on_conflict parameter", "id;drop", column: 3))
        #expect(F.rejection("columns=a,b)", method: .post)?.message == F.message("columns parameter", "a,b)", column: 4))
        #expect(F.rejection("columns=", method: .post)?.details == "unexpected end of input expecting field name")
    }
}
