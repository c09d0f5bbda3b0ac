import Gateway
import Testing

@Suite("REST grammar: select=")
struct SelectGrammarTests {
    typealias F = GrammarFixture

    @Test("select= parses columns, *, aliases, casts and JSON paths as supabase-js sends them")
    func columns() throws {
        let query = try F.parse("select=id%2Cname%2Cdisplay:full_name%2Cprice::text%2C*%2Cdata->>city")
        #expect(query.select == [
            F.column("id"),
            F.column("name"),
            F.column("full_name", alias: "display"),
            F.column("price", cast: "text"),
            .all,
            F.column("data", path: [.init(.text, .key("city"))]),
        ])
    }

    @Test("no select= means all columns; an empty select= selects none, as in PostgREST 12")
    func defaults() throws {
        #expect(try F.parse("").select == [.all])
        #expect(try F.parse("select=").select == [])
        #expect(try F.parse("select=%20").select == [])
    }

    @Test("spaces and tabs around items are ignored, + decodes to a space")
    func whitespace() throws {
        #expect(try F.parse("select=id,+name+,%09email").select == [F.column("id"), F.column("name"), F.column("email")])
    }

    @Test("JSON paths take keys, indexes, negative indexes, quoted keys and both arrows")
    func jsonPaths() throws {
        let query = try F.parse("select=data->items->0->>name,data->-1,data->\"odd key.x\",a:data->k->>k2::int")
        #expect(query.select == [
            F.column("data", path: [.init(.json, .key("items")), .init(.json, .index(0)), .init(.text, .key("name"))]),
            F.column("data", path: [.init(.json, .index(-1))]),
            F.column("data", path: [.init(.json, .key("odd key.x"))]),
            F.column("data", alias: "a", cast: "int", path: [.init(.json, .key("k")), .init(.text, .key("k2"))]),
        ])
        #expect(try F.parse("select=data->my-key").select == [F.column("data", path: [.init(.json, .key("my-key"))])])
    }

    @Test("output names follow PostgREST: alias, else the last JSON key, else the column")
    func outputNames() throws {
        let query = try F.parse("select=a:b,data->x->>y,data->1->mycol->>2,data->3,plain")
        let names = query.select.compactMap { item -> String? in
            if case .column(let column) = item { return column.outputName }
            return nil
        }
        #expect(names == ["a", "y", "mycol", "data", "plain"])
    }

    @Test("quoted names are accepted when their content is a plain name, as supabase-js quotes columns=")
    func quotedNames() throws {
        #expect(try F.parse("select=\"id\",\"Name\"").select == [F.column("id"), F.column("Name")])
        let error = F.rejection("select=\"my col\"")
        #expect(error?.status.code == 400)
        #expect(error?.code == "PGRST100")
        #expect(error?.message == F.message("select parameter", "\"my col\"", column: 1))
        #expect(error?.details == "unexpected name \"my col\" expecting field name matching [A-Za-z_][A-Za-z0-9_]*")
    }

    @Test("embedded resources, spreads, hints and aggregates are refused with PGRST100")
    func embeddingRefused() {
        for query in ["select=id,clients(*)", "select=*,...clients(name)", "select=c:clients!inner(id)", "select=clients!fk(id)"] {
            let error = F.rejection(query)
            #expect(error?.status.code == 400, "\(query)")
            #expect(error?.code == "PGRST100", "\(query)")
            #expect(error?.details == "embedding is not supported (resource \"clients\")", "\(query)")
            #expect(error?.hint != nil, "\(query)")
        }
        #expect(F.rejection("select=id,clients(*)")?.message == F.message("select parameter", "id,clients(*)", column: 4))
        #expect(F.rejection("select=count()")?.details == "aggregate functions are not supported (count())")
        #expect(F.rejection("select=amount.sum()")?.details == "aggregate functions are not supported (sum())")
    }

    @Test("select errors name the unexpected character and its column")
    func errors() {
        let semicolon = F.rejection("select=id;drop%20table%20x")
        #expect(semicolon?.message == F.message("select parameter", "id;drop table x", column: 3))
        #expect(semicolon?.details == "unexpected \";\" expecting \"->\", \"->>\", \"::\", \",\" or end of input")

        let trailingComma = F.rejection("select=id,")
        #expect(trailingComma?.message == F.message("select parameter", "id,", column: 4))
        #expect(trailingComma?.details == "unexpected end of input expecting field name")

        let emptyCast = F.rejection("select=id::")
        #expect(emptyCast?.details == "unexpected end of input expecting type name")

        let starAlias = F.rejection("select=all:*")
        #expect(starAlias?.details == "unexpected \"*\" expecting field name")

        let starCast = F.rejection("select=*::text")
        #expect(starCast?.details == "unexpected \":\" expecting \",\" or end of input")

        let digitFirst = F.rejection("select=1abc")
        #expect(digitFirst?.details == "unexpected \"1\" expecting field name")
    }
}
