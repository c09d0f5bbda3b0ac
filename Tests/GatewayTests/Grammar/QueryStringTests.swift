import Gateway
import Testing

@Suite("REST grammar: query strings and whole requests")
struct QueryStringTests {
    typealias F = GrammarFixture

    @Test("+ is a space, %XX is a byte, a stray % stays, ; and = inside values stay")
    func decoding() throws {
        #expect(try F.filter("name=eq.a+b") == F.eq("name", "a b"))
        #expect(try F.filter("name=eq.a%2Bb") == F.eq("name", "a+b"))
        #expect(try F.filter("name=eq.100%") == F.eq("name", "100%"))
        #expect(try F.filter("name=eq.100%zz%4") == F.eq("name", "100%zz%4"))
        #expect(try F.filter("name=eq.a;b") == F.eq("name", "a;b"))
        #expect(try F.filter("name=eq.a=b") == F.eq("name", "a=b"))
        #expect(try F.filter("%6E%61%6D%65=eq.caf%C3%A9") == F.eq("name", "café"))
        #expect(try F.filter("?name=eq.x&&") == F.eq("name", "x"))
    }

    @Test("bytes that are not UTF-8 after decoding are PGRST100")
    func invalidUTF8() {
        let error = F.rejection("select=id&name=eq.%FF%FE")
        #expect(error?.status.code == 400)
        #expect(error?.code == "PGRST100")
        #expect(error?.message == "failed to parse query string")
        #expect(error?.details == "query parameter 2 is not valid UTF-8 after percent-decoding")
    }

    @Test("select, order, limit, offset, on_conflict and columns may appear only once")
    func duplicates() {
        for key in [
            "select=id&select=name", "order=a&order=b", "limit=1&limit=2", "offset=1&offset=2", "on_conflict=a&on_conflict=b",
            "columns=a&columns=b",
        ] {
            let error = F.rejection(key, method: .post)
            #expect(error?.status.code == 400, "\(key)")
            #expect(error?.code == "PGRST100", "\(key)")
            #expect(error?.details?.hasSuffix("appears more than once") == true, "\(key)")
        }
    }

    @Test("a bare key is an empty value: a filter without operator fails instead of being dropped")
    func bareKeys() throws {
        let error = F.rejection("id")
        #expect(error?.message == F.message("filter", "", column: 1))
        #expect(error?.details?.hasPrefix("unexpected end of input expecting \"not\" or operator") == true)
        #expect(F.rejection("id=")?.message == F.message("filter", "", column: 1))
        #expect(F.rejection("=eq.1")?.message == F.message("tree path", "", column: 1))
        #expect(try F.parse("select").select == [])
    }

    @Test("a supabase-js select with filter, order and range parses whole")
    func supabaseSelect() throws {
        let query = try F.parse(
            "select=id%2Cname&user_id=eq.6f1f5c1e-8f59-4b7e-9d5c-2f1f0f3b8a11&order=created_at.desc&offset=0&limit=10",
            headers: RESTQuery.Headers(accept: "*/*"))
        #expect(
            query
                == RESTQuery(
                    select: [F.column("id"), F.column("name")],
                    filter: F.eq("user_id", "6f1f5c1e-8f59-4b7e-9d5c-2f1f0f3b8a11"),
                    order: [RESTQuery.OrderTerm(RESTQuery.Field("created_at"), direction: .desc)],
                    limit: 10, offset: 0))
    }

    @Test("a postgrest-py single() with quoted values, in_ and not_ parses whole")
    func postgrestPySingle() throws {
        let query = try F.parse(
            "select=%2A&name=eq.%22a%2Cb%22&status=in.%28draft%2C%22x%2Cy%22%29&deleted_at=not.is.null&tags=cs.%7Bred%2Cblue%7D",
            headers: RESTQuery.Headers(prefer: ["count=exact"], accept: "application/vnd.pgrst.object+json", range: "0-0"))
        #expect(query.select == [.all])
        #expect(
            query.filter
                == .and([
                    // Outside a logic tree PostgREST keeps the quotes of a value: it is the text as sent.
                    F.eq("name", "\"a,b\""),
                    F.condition("status", .in(["draft", "x,y"])),
                    .not(F.condition("deleted_at", .is(.null))),
                    F.condition("tags", .array(.cs, "{red,blue}")),
                ]))
        #expect(query.singular)
        #expect(query.limit == 1)
        #expect(query.preferences.count == .exact)
    }

    @Test("a supabase-js update with a filter and return=representation parses whole")
    func supabaseUpdate() throws {
        let query = try F.parse(
            "id=eq.42&select=%2A", method: .patch,
            headers: RESTQuery.Headers(prefer: ["return=representation"], accept: "application/vnd.pgrst.object+json"))
        #expect(query.filter == F.eq("id", "42"))
        #expect(query.preferences.returning == .representation)
        #expect(query.singular)
    }
}
