import Gateway
import HTTPTypes
import Testing

@Suite("REST grammar: Prefer, Accept and profile headers")
struct HeaderGrammarTests {
    typealias F = GrammarFixture
    typealias Preferences = RESTQuery.Preferences

    @Test("Prefer tokens are read across lines and commas, spaces ignored, the first of each kind winning")
    func preferTokens() throws {
        let preferences = try Preferences.parse(["return=representation,count=exact", " resolution=merge-duplicates ,  missing=default"])
        #expect(
            preferences
                == Preferences(
                    returning: .representation, count: .exact, resolution: .mergeDuplicates, missing: .default))
        #expect(try Preferences.parse(["return=minimal, return=representation"]).returning == .minimal)
        #expect(try Preferences.parse(["count=planned"]).count == .planned)
        #expect(try Preferences.parse(["count=estimated", "count=exact"]).count == .estimated)
        #expect(try Preferences.parse(["return=headers-only"]).returning == .headersOnly)
        #expect(try Preferences.parse(["resolution=ignore-duplicates"]).resolution == .ignoreDuplicates)
        #expect(try Preferences.parse(["missing=null"]).missing == Preferences.Missing.null)
        #expect(try Preferences.parse([]) == Preferences())
    }

    @Test("unknown preferences are ignored and recorded, PostgREST's lenient default")
    func unknownIgnored() throws {
        let preferences = try Preferences.parse([
            "tx=maybe, foo, count=none", "return=everything,,timezone=UTC, max-affected=-5, max-affected=x",
        ])
        #expect(preferences.ignored == ["tx=maybe", "foo", "count=none", "return=everything", "max-affected=-5", "max-affected=x"])
        // timezone= is read (the gateway decides whether the zone exists); an empty one is not a preference.
        #expect(preferences.timeZone == "UTC")
        #expect(try Preferences.parse(["timezone=, timezone=Europe/Paris, timezone=UTC"]).timeZone == "Europe/Paris")
        #expect(try Preferences.parse(["timezone="]).ignored == ["timezone="])
        #expect(preferences.transaction == nil)
        #expect(preferences.maxAffected == nil)
        #expect(preferences.returning == nil)
        #expect(preferences.count == nil)
        #expect(preferences.appliedHeaderValue == nil)
    }

    @Test("tx= and max-affected= are read, the first of each winning; max-affected is listed only with handling=strict")
    func transactionAndMaxAffected() throws {
        let lenient = try Preferences.parse(["tx=rollback, max-affected=10, tx=commit", "max-affected=3"])
        #expect(lenient.transaction == .rollback)
        #expect(lenient.maxAffected == 10)
        #expect(lenient.ignored.isEmpty)
        #expect(lenient.applied == ["tx=rollback"])
        let strict = try Preferences.parse(["handling=strict, max-affected=0, tx=commit, return=minimal"])
        #expect(strict.maxAffected == 0)
        #expect(strict.applied == ["return=minimal", "tx=commit", "handling=strict", "max-affected=0"])
        let error = #expect(throws: RESTGrammarError.self) { try Preferences.parse(["handling=strict, max-affected=many"]) }
        #expect(error?.code == "PGRST122")
    }

    @Test("Preference-Applied lists what was recognised in PostgREST's order")
    func applied() throws {
        let preferences = try Preferences.parse([
            "count=exact, return=representation, handling=lenient, missing=default, resolution=merge-duplicates, x"
        ])
        #expect(
            preferences.applied == [
                "resolution=merge-duplicates", "missing=default", "return=representation", "count=exact", "handling=lenient",
            ])
        #expect(
            preferences.appliedHeaderValue
                == "resolution=merge-duplicates, missing=default, return=representation, count=exact, handling=lenient")
    }

    @Test("handling=strict turns unknown preferences into 400 PGRST122")
    func strict() throws {
        let error = #expect(throws: RESTGrammarError.self) { try Preferences.parse(["handling=strict, foo, bar"]) }.map { GatewayError($0) }
        #expect(error?.status.code == 400)
        #expect(error?.code == "PGRST122")
        #expect(error?.message == "Invalid preferences given with handling=strict")
        #expect(error?.details == "Invalid preferences: foo, bar")
        #expect(try Preferences.parse(["handling=strict, count=exact"]).handling == .strict)
        #expect(try Preferences.parse(["handling=lenient, foo"]).ignored == ["foo"])
        let viaRequest = F.rejection("", headers: RESTQuery.Headers(prefer: ["handling=strict", "params=single-object"]))
        #expect(viaRequest?.code == "PGRST122")
        // timezone= is a preference the gateway honours: strict accepts it (the zone is checked later).
        #expect(try F.parse("", headers: RESTQuery.Headers(prefer: ["handling=strict", "timezone=UTC"])).preferences.timeZone == "UTC")
    }

    @Test("Prefer combinations that supabase-js and postgrest-py send reach the query")
    func clientCombinations() throws {
        let upsert = try F.parse(
            "on_conflict=id&columns=%22id%22%2C%22name%22", method: .post,
            headers: RESTQuery.Headers(prefer: ["resolution=merge-duplicates,missing=default,return=representation"]))
        #expect(upsert.preferences.resolution == .mergeDuplicates)
        #expect(upsert.preferences.missing == .default)
        #expect(upsert.preferences.returning == .representation)
        let count = try F.parse("select=*", method: .head, headers: RESTQuery.Headers(prefer: ["count=exact"]))
        #expect(count.preferences.count == .exact)
    }

    @Test(
        "Accept picks JSON, a single object or CSV; wildcards and no header mean JSON",
        arguments: [
            (nil, RESTQuery.ResponseFormat.json),
            ("", .json),
            ("application/json", .json),
            ("application/json; charset=utf-8", .json),
            ("*/*", .json),
            ("application/*", .json),
            ("application/vnd.pgrst.array+json", .json),
            ("application/vnd.pgrst.object+json", .singleObject),
            ("Application/Vnd.Pgrst.Object+JSON", .singleObject),
            ("application/vnd.pgrst.object", .singleObject),
            ("application/vnd.pgrst.object+json;charset=utf-8", .singleObject),
            ("text/csv", .csv),
            ("text/csv;q=0.5, application/json", .json),
            ("application/xml, application/json;q=0.1", .json),
            ("*/*, application/vnd.pgrst.object+json", .singleObject),
            ("application/vnd.pgrst.object+json;nulls=stripped, application/json", .singleObject),
            ("application/vnd.pgrst.array+json;nulls=stripped", .json),
            ("application/json;nulls=stripped, text/csv", .csv),
            ("text/html, */*;q=0.8", .json),
        ] as [(String?, RESTQuery.ResponseFormat)])
    func accept(header: String?, format: RESTQuery.ResponseFormat) throws {
        let query = try F.parse("", headers: RESTQuery.Headers(accept: header))
        #expect(query.format == format)
        #expect(query.singular == (format == .singleObject))
    }

    @Test("an Accept the gateway cannot produce is 406 PGRST107 listing what was asked for")
    func notAcceptable() {
        let error = F.rejection("", headers: RESTQuery.Headers(accept: "application/xml, text/html;q=0.9"))
        #expect(error?.status.code == 406)
        #expect(error?.code == "PGRST107")
        #expect(error?.message == "None of these media types are available: application/xml, text/html")
        #expect(F.rejection("", headers: RESTQuery.Headers(accept: "application/json;q=0"))?.code == "PGRST107")
        #expect(F.rejection("", headers: RESTQuery.Headers(accept: "application/vnd.pgrst.array+json;nulls=kept"))?.code == "PGRST107")
    }

    @Test("only the public schema: Accept-Profile for reads, Content-Profile for writes, else 406 PGRST106")
    func profiles() throws {
        _ = try F.parse("", headers: RESTQuery.Headers(acceptProfile: "public"))
        _ = try F.parse("", method: .post, headers: RESTQuery.Headers(contentProfile: "public"))
        for (method, headers) in [
            (HTTPRequest.Method.get, RESTQuery.Headers(acceptProfile: "private")),
            (.head, RESTQuery.Headers(acceptProfile: "Public")),
            (.post, RESTQuery.Headers(contentProfile: "auth")),
            (.patch, RESTQuery.Headers(contentProfile: "public, auth")),
            (.delete, RESTQuery.Headers(contentProfile: "")),
        ] {
            let error = F.rejection("", method: method, headers: headers)
            #expect(error?.status.code == 406)
            #expect(error?.code == "PGRST106")
            #expect(error?.message == "The schema must be one of the following: public")
            #expect(error?.details == nil)
        }
        // The other direction's header is not read, as in PostgREST.
        _ = try F.parse("", method: .get, headers: RESTQuery.Headers(contentProfile: "private"))
        _ = try F.parse("", method: .post, headers: RESTQuery.Headers(acceptProfile: "private"))
    }

    @Test("Headers read from HTTPFields keep Prefer lines apart and join the others")
    func fromHTTPFields() throws {
        var fields = HTTPFields()
        fields.append(HTTPField(name: HTTPField.Name("Prefer")!, value: "return=representation"))
        fields.append(HTTPField(name: HTTPField.Name("prefer")!, value: "count=exact"))
        fields[.accept] = "application/vnd.pgrst.object+json"
        fields[HTTPField.Name("Accept-Profile")!] = "public"
        fields[HTTPField.Name("Content-Profile")!] = "other"
        fields[.range] = "0-9"
        let headers = RESTQuery.Headers(fields)
        #expect(
            headers
                == RESTQuery.Headers(
                    prefer: ["return=representation", "count=exact"], accept: "application/vnd.pgrst.object+json",
                    acceptProfile: "public", contentProfile: "other", range: "0-9"))
        let query = try RESTQuery.parse(method: .get, query: "select=id", headers: headers)
        #expect(query.singular)
        #expect(query.limit == 10)
        #expect(query.preferences.returning == .representation)
    }
}
