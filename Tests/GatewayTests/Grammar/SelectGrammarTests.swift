import Gateway
import Testing

@Suite("REST grammar: select=")
struct SelectGrammarTests {
    typealias F = GrammarFixture

    @Test("select= parses columns, *, aliases, casts and JSON paths as supabase-js sends them")
    func columns() throws {
        let query = try F.parse("select=id%2Cname%2Cdisplay:full_name%2Cprice::text%2C*%2Cdata->>city")
        #expect(
            query.select == [
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
        #expect(
            query.select == [
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

    @Test("malformed embeds and aggregates are refused with PGRST100")
    func embeddingErrors() {
        let cases: [(String, String)] = [
            ("select=clients(", "unexpected end of input expecting field name"),
            ("select=clients(id", "unexpected end of input expecting \",\" or \")\""),
            ("select=clients(id))", "unexpected \")\" expecting \"->\", \"->>\", \"::\", \",\" or end of input"),
            ("select=clients!(id)", "unexpected \"(\" expecting hint or join type (inner, left)"),
            ("select=clients!inner", "unexpected end of input expecting \"!\" or \"(\""),
            ("select=clients!inner!left(id)", "unexpected \"left\" expecting \"(\": one join type per relation"),
            ("select=clients!a!b(id)", "unexpected \"b\" expecting join type (inner, left): one hint per relation"),
            ("select=...clients", "unexpected end of input expecting \"!\" or \"(\" after a spread relation"),
            ("select=...(id)", "unexpected \"(\" expecting relation name"),
            ("select=..clients(id)", "unexpected \".\" expecting field name"),
            ("select=clients(*,)", "unexpected \")\" expecting field name"),
            ("select=clients(*)x", "unexpected \"x\" expecting \"->\", \"->>\", \"::\", \",\" or end of input"),
            ("select=a:b:clients(id)", "unexpected \":\" expecting \"->\", \"->>\", \"::\", \",\" or end of input"),
            ("select=count()", "aggregate functions are not supported (count())"),
            ("select=amount.sum()", "aggregate functions are not supported (sum())"),
        ]
        for (query, details) in cases {
            let error = F.rejection(query)
            #expect(error?.status.code == 400, "\(query)")
            #expect(error?.code == "PGRST100", "\(query)")
            #expect(error?.details == details, "\(query): \(String(describing: error?.details))")
        }
        let deep = "select=" + String(repeating: "a(", count: 9) + "id" + String(repeating: ")", count: 9)
        #expect(F.rejection(deep)?.details == "embedded resources are nested deeper than 8 levels")
        let hostile = "select=" + String(repeating: "a(", count: 100_000)
        #expect(F.rejection(hostile)?.code == "PGRST100")
    }

    @Test("embeds parse with aliases, hints, join types, spreads, nesting and empty lists")
    func embeds() throws {
        typealias Embed = RESTQuery.Embed
        #expect(try F.parse("select=id,clients(*)").select == [F.column("id"), .embed(Embed("clients"))])
        #expect(
            try F.parse("select=*,...clients(name)").select == [.all, .embed(Embed("clients", spread: true, select: [F.column("name")]))])
        #expect(
            try F.parse("select=c:clients!inner(id)").select == [
                .embed(Embed("clients", alias: "c", join: .inner, select: [F.column("id")]))
            ])
        #expect(
            try F.parse("select=clients!fk!left(id)").select == [
                .embed(Embed("clients", hint: "fk", join: .left, select: [F.column("id")]))
            ])
        #expect(
            try F.parse("select=clients!inner!fk(id)").select == [
                .embed(Embed("clients", hint: "fk", join: .inner, select: [F.column("id")]))
            ])
        #expect(try F.parse("select=clients()").select == [.embed(Embed("clients", select: []))])
        #expect(
            try F.parse("select=%20name%20,%20tasks(%20id%20,%20t:title%20)").select
                == [F.column("name"), .embed(Embed("tasks", select: [F.column("id"), F.column("title", alias: "t")]))])
        #expect(
            try F.parse("select=a(b(c(id,d:data->>x)),...e!f(*))").select == [
                .embed(
                    Embed(
                        "a",
                        select: [
                            .embed(
                                Embed(
                                    "b",
                                    select: [
                                        .embed(
                                            Embed(
                                                "c",
                                                select: [F.column("id"), F.column("data", alias: "d", path: [.init(.text, .key("x"))])]))
                                    ])),
                            .embed(Embed("e", hint: "f", spread: true)),
                        ]))
            ])
        #expect(RESTQuery.Embed("clients", alias: "c").name == "c")
    }

    @Test("rel.col=, rel.order=, rel.limit=, rel.offset= and rel.or= belong to the embed's path")
    func embeddedParameters() throws {
        let query = try F.parse(
            "select=id,c:clients(id,tasks(id))&c.name=eq.x&c.order=name.desc&c.limit=2&c.offset=1&c.tasks.done=is.true&c.or=(a.eq.1,b.eq.2)&c.not.and=(a.eq.1)&c.data->>k=eq.v"
        )
        #expect(query.filter == nil)
        let clients = try #require(query.embedded[["c"]])
        #expect(clients.order == [RESTQuery.OrderTerm(RESTQuery.Field("name"), direction: .desc)])
        #expect(clients.limit == 2)
        #expect(clients.offset == 1)
        #expect(
            clients.filter
                == .and([
                    F.eq("name", "x"), .or([F.eq("a", "1"), F.eq("b", "2")]), .not(.and([F.eq("a", "1")])),
                    F.condition("data", .compare(.eq, "v"), path: [.init(.text, .key("k"))]),
                ]))
        #expect(query.embedded[["c", "tasks"]]?.filter == F.condition("done", .is(.true)))
        #expect(F.rejection("c.limit=1&c.limit=2")?.details == "parameter \"c.limit\" appears more than once")
        #expect(F.rejection("c.limit=x")?.code == "PGRST100")
        #expect(F.rejection("c.order=")?.code == "PGRST100")
        #expect(F.rejection("c.name=eq")?.code == "PGRST100")
        #expect(F.rejection("c..name=eq.1")?.code == "PGRST100")
        #expect(F.rejection("c.or=(a.eq.1")?.code == "PGRST100")
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
