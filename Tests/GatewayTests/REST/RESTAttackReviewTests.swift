import Foundation
import HTTPTypes
import Hummingbird
import Policy
import RESTGrammar
import TestSupport
import Testing

@testable import Gateway

/// Issue 14's attacking review of the extended `/rest/v1` surface (embedding, spread, `or=`
/// across embeds, counts, CSV, time zones, RPC, views): each attack through the real router
/// against the real database, over ``RESTEmbeddingTests``' seeded tables.
@Suite("REST: attack review (issue 14)")
struct RESTAttackReviewTests {
    static let prefer = HTTPField.Name("Prefer")!

    /// Neither the vault's secret, the brief's hidden note, nor SQL text is in `body`.
    static func expectNoLeak(_ body: String, _ context: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        for marker in ["vault-secret", "do not show", "SELECT ", "_pgw_", "LATERAL"] {
            #expect(!body.contains(marker), "\(context) leaked \(marker): \(body)", sourceLocation: sourceLocation)
        }
    }

    /// The projects table still holds exactly the seeded rows (no statement ran besides the read).
    static func expectProjectsIntact(_ f: RESTFixture, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
        let count = try await f.auth.owner.query("SELECT count(*) AS n FROM public.projects")
        #expect(try count.rows[0].decode("n", as: Int.self) == 3, sourceLocation: sourceLocation)
    }

    // MARK: - Counts never count what the caller cannot see

    @Test("count=exact and count=estimated count only the rows the caller may read, through embeds, !inner, spread and or= across embeds")
    func countsCountOnlyVisibleRows() async throws {
        try await RESTEmbeddingTests.run { (f: RESTFixture, _: RESTEmbeddingTests.Seeded) async throws in
            for count in ["exact", "estimated"] {
                let cases: [(String, TestTenant, UUID?, String)] = [
                    // bob: only beta (public) is visible; alpha's two sitemaps are not.
                    ("/rest/v1/projects?select=name,sitemaps!inner(title)", f.acme, f.bob, "0-0/1"),
                    ("/rest/v1/sitemaps?select=title,projects!inner(name)", f.acme, f.bob, "0-0/1"),
                    ("/rest/v1/projects?select=name,sitemaps(title)&or=(name.eq.alpha,sitemaps.title.eq.home)", f.acme, f.bob, "*/0"),
                    ("/rest/v1/project_briefs?select=summary,projects(name)&or=(projects.name.eq.alpha)", f.acme, f.bob, "*/0"),
                    ("/rest/v1/project_briefs?select=summary,...projects(name)&or=(projects.name.eq.alpha)", f.acme, f.bob, "*/0"),
                    ("/rest/v1/sitemaps?select=title,...projects!inner(name)&projects.name=eq.alpha", f.acme, f.bob, "*/0"),
                    // carol: acme's rows do not exist for her.
                    ("/rest/v1/sitemaps?select=title,projects(name)", f.globex, f.carol, "0-0/1"),
                    ("/rest/v1/project_tags?select=label,projects!inner(name)", f.globex, f.carol, "0-0/1"),
                    ("/rest/v1/project_briefs?select=summary", f.globex, f.carol, "*/0"),
                    // anon of acme: only beta.
                    ("/rest/v1/projects?select=name,sitemaps!inner(title)", f.acme, nil, "0-0/1"),
                ]
                for (uri, tenant, user, range) in cases {
                    let answer = try await f.request(.get, uri, as: tenant, user, headers: [Self.prefer: "count=\(count)"])
                    #expect(answer.status == .ok || answer.status == .partialContent, "\(uri): \(answer.status) \(answer.body)")
                    #expect(answer.headers[.contentRange] == range, "count=\(count) \(uri): \(answer.headers[.contentRange] ?? "none")")
                    Self.expectNoLeak(answer.body, uri)
                }
            }
        }
    }

    @Test(
        "count=planned and count=estimated never disclose another tenant's values through the planner's statistics: exact up to the threshold, unknown beyond"
    )
    func plannedCountsDiscloseNothing() async throws {
        try await RESTEmbeddingTests.run { (f: RESTFixture, _: RESTEmbeddingTests.Seeded) async throws in
            // Globex holds 400 tags of a confidential label; the statistics know it.
            try await f.auth.owner.query(
                "INSERT INTO project_tags (tenant_id, label) SELECT $1, 'globex-confidential-' || (g % 2) FROM generate_series(1, 400) g",
                [f.globex.id])
            try await f.auth.owner.query("ANALYZE project_tags")
            for count in ["planned", "estimated"] {
                for label in ["globex-confidential-0", "globex-confidential-1", "nobody-uses-this", "globex-conf*"] {
                    let filter = label.hasSuffix("*") ? "like.\(label)" : "eq.\(label)"
                    let answer = try await f.request(
                        .get, "/rest/v1/project_tags?select=label&label=\(filter)", as: f.acme, f.alice,
                        headers: [Self.prefer: "count=\(count)"])
                    #expect(answer.status == .ok, "\(answer.body)")
                    #expect(
                        answer.headers[.contentRange] == "*/0", "count=\(count) label=\(filter): \(answer.headers[.contentRange] ?? "none")"
                    )
                }
                // Globex's own user counts its own rows exactly.
                let own = try await f.request(
                    .get, "/rest/v1/project_tags?select=label&label=eq.globex-confidential-0&limit=1", as: f.globex, f.carol,
                    headers: [Self.prefer: "count=\(count)"])
                #expect(own.headers[.contentRange] == "0-0/200", "\(own.headers[.contentRange] ?? "none")")
            }
            // Past the threshold the total is unknown, never an estimate.
            try await f.auth.owner.query(
                "INSERT INTO project_tags (tenant_id, label) SELECT $1, 'many-' || g FROM generate_series(1, $2::int) g",
                [f.globex.id, RESTRepresentation.estimatedCountThreshold + 5])
            let many = try await f.request(
                .get, "/rest/v1/project_tags?select=label&label=like.many-*&limit=1", as: f.globex, f.carol,
                headers: [Self.prefer: "count=planned"])
            #expect(many.headers[.contentRange] == "0-0/*", "\(many.headers[.contentRange] ?? "none")")
        }
    }

    // MARK: - Rows and columns through embeds, CSV, order and limit

    @Test("CSV with embeds, spread and embedded order/limit shows no private parent, hidden column or other tenant's row")
    func csvAndEmbeddedPagingShowOnlyVisibleRows() async throws {
        try await RESTEmbeddingTests.run { (f: RESTFixture, _: RESTEmbeddingTests.Seeded) async throws in
            let csv: HTTPFields = [.accept: "text/csv"]
            let spread = try await f.request(
                .get, "/rest/v1/project_briefs?select=summary,...projects(name,is_public)", as: f.acme, f.bob, headers: csv)
            #expect(spread.status == .ok, "\(spread.body)")
            #expect(!spread.body.contains("alpha"), "\(spread.body)")
            let carol = try await f.request(
                .get, "/rest/v1/sitemaps?select=title,...projects(name)&order=title", as: f.globex, f.carol, headers: csv)
            #expect(carol.status == .ok, "\(carol.body)")
            #expect(
                carol.body.hasPrefix("title,name\nhome,") && !carol.body.contains("alpha") && !carol.body.contains("pricing"),
                "\(carol.body)")
            // A spread key is a plain CSV field, not a JSON string in quotes.
            #expect(!carol.body.contains("\"\"\""), "\(carol.body)")
            // Embedded order and limit over rows of a hidden parent: nothing of alpha.
            for query in [
                "select=name,sitemaps(title)&sitemaps.order=title.desc.nullsfirst&sitemaps.limit=5",
                "select=name,sitemaps(title)&sitemaps.offset=0&sitemaps.limit=1&order=name.asc.nullslast",
                "select=name,sitemaps!inner(title,wireframes!inner(title))&sitemaps.wireframes.order=title",
            ] {
                let answer = try await f.request(.get, "/rest/v1/projects?\(query)", as: f.acme, f.bob)
                #expect(answer.status == .ok, "\(query): \(answer.body)")
                #expect(
                    !answer.body.contains("alpha") && !answer.body.contains("about") && !answer.body.contains("home"),
                    "\(query): \(answer.body)")
            }
            // A hidden column by CSV, alias, spread alias or json path inside an embed: 42703, never the value.
            for query in [
                "select=name,project_briefs(note:internal_note)", "select=name,...project_briefs(n:internal_note)",
                "select=name,project_briefs(internal_note::text)", "select=name,project_briefs(internal_note->>x)",
                "select=name,project_briefs!inner(summary)&project_briefs.internal_note=like.*",
                "select=name,project_briefs(summary)&project_briefs.or=(internal_note.eq.x,summary.eq.y)",
            ] {
                let answer = try await f.request(.get, "/rest/v1/projects?\(query)", as: f.acme, f.alice, headers: csv)
                #expect(answer.status == .badRequest, "\(query): \(answer.status) \(answer.body)")
                Self.expectNoLeak(answer.body, query)
            }
        }
    }

    // MARK: - Managed and ungoverned tables are unreachable

    @Test(
        "secrets, privacy workflow, audit, tenants and auth.users are unreachable by embed, hint, spread or or=, for anon, users and service_role"
    )
    func managedTablesUnreachableThroughEmbeds() async throws {
        try await RESTEmbeddingTests.run { (f: RESTFixture, _: RESTEmbeddingTests.Seeded) async throws in
            let serviceRole = try await Tokens.hs256(claims: Tokens.user(f.alice, role: "service_role"), secret: f.acme.secret!)
            let callers: [(String, HTTPFields, UUID?)] = [
                ("anon", [:], nil), ("alice", [:], f.alice), ("service_role", [.authorization: "Bearer \(serviceRole)"], nil),
            ]
            for (name, extra, user) in callers {
                for query in [
                    "projects?select=name,user_secrets(*)", "projects?select=name,user_secret_versions(*)",
                    "projects?select=name,users(*)", "projects?select=name,auth.users(*)", "projects?select=name,tenants(*)",
                    "projects?select=name,t:tenants!tenant_id(name)", "projects?select=name,...tenants(name)",
                    "projects?select=name,audit_events(*)", "projects?select=name,service_keys(*)", "projects?select=name,root_keys(*)",
                    "user_privacy_settings?select=*,users!user_privacy_settings_user_fk(*)",
                    "user_privacy_settings?select=*,user_secrets!user_secrets_user_fk(*)",
                    "data_deletion_requests?select=*,user_secrets(*)", "data_deletion_requests?select=*,...users(*)",
                    "projects?select=name,sitemaps(title,user_secrets(*))", "projects?select=name,sitemaps!user_secrets_user_fk(title)",
                    "projects?select=name,users!inner(id)&users.id=not.is.null", "projects?select=name&or=(users.email.eq.x)",
                    "projects?select=name,user_secrets(service_name)&order=user_secrets(service_name)",
                ] {
                    let answer = try await f.request(.get, "/rest/v1/\(query)", as: f.acme, user, headers: extra)
                    #expect(answer.status.code >= 400 && answer.status.code < 500, "\(name) \(query): \(answer.status) \(answer.body)")
                    #expect(
                        !answer.body.contains("service_name\":") && !answer.body.contains("key_hash"), "\(name) \(query): \(answer.body)")
                    Self.expectNoLeak(answer.body, "\(name) \(query)")
                }
            }
        }
    }

    @Test("RPC reaches declared functions only: built-ins, schema-qualified names and managed tables' functions are 404 before any SQL")
    func rpcReachesDeclaredFunctionsOnly() async throws {
        try await RESTEmbeddingTests.run { (f: RESTFixture, _: RESTEmbeddingTests.Seeded) async throws in
            for name in [
                "pg_read_file", "set_config", "current_setting", "pg_sleep", "auth.uid", "public.get_session_cost", "GET_SESSION_COST",
                "get_session_cost%00", "get_session_cost;drop", "user_secrets", "privacy.process_deletion", "dblink", "lo_import",
            ] {
                for method in [HTTPRequest.Method.get, .post] {
                    let answer = try await f.request(
                        method, "/rest/v1/rpc/\(name)", as: f.acme, f.alice, body: method == .post ? "{}" : nil)
                    #expect(answer.status.code >= 400 && answer.status.code < 500, "\(method) rpc/\(name): \(answer.status) \(answer.body)")
                }
            }
            // Argument names and values are data, never SQL.
            for body in [
                #"{"p_session_id); DROP TABLE public.projects; --": "x"}"#,
                #"{"p_session_id": "00000000-0000-0000-0000-000000000000'); DROP TABLE public.projects; --"}"#,
                #"{"p_session_id": "\#(UUID())", "p_session_id\"": 1}"#,
                #"{"p_session_id": {"a": "b"}}"#, #"[{"p_session_id": 1}]"#, #""x""#,
            ] {
                let answer = try await f.request(.post, "/rest/v1/rpc/get_session_cost", as: f.acme, f.alice, body: body)
                #expect(answer.status.code >= 400 && answer.status.code < 500, "\(body): \(answer.status) \(answer.body)")
                Self.expectNoLeak(answer.body, body)
            }
            let query = try await f.request(
                .get, "/rest/v1/rpc/get_session_cost?p_session_id=x'%3BDROP%20TABLE%20projects--", as: f.acme, f.alice)
            #expect(query.status == .badRequest, "\(query.status) \(query.body)")
            try await Self.expectProjectsIntact(f)
        }
    }

    // MARK: - Injection through every identifier and value position

    @Test(
        "quotes, semicolons and comments in aliases, embed names, hints, json paths, order, on_conflict, columns and Prefer are data or 400, never SQL"
    )
    func injectionEverywhereIsRefusedOrQuoted() async throws {
        try await RESTEmbeddingTests.run { (f: RESTFixture, _: RESTEmbeddingTests.Seeded) async throws in
            let payload = "x%22%3B%20DROP%20TABLE%20public.projects%3B%20--"
            let reads = [
                "projects?select=\(payload):name", "projects?select=name,\(payload):sitemaps(title)",
                "projects?select=name,sitemaps!\(payload)(title)", "projects?select=name,\(payload)(title)",
                "projects?select=name,...sitemaps!\(payload)(title)", "projects?select=name->>\(payload)",
                "projects?select=name,sitemaps(t:title->\(payload))", "projects?select=name&order=name.desc.nullsfirst%3Bdrop",
                "projects?select=name&order=\(payload).desc", "projects?select=name,sitemaps(title)&sitemaps.order=\(payload)",
                "projects?select=name,sitemaps(title)&\(payload).title=eq.x", "projects?select=name&name=eq.\(payload)",
                "projects?select=name,sitemaps(title)&or=(sitemaps.title.eq.\(payload),name.eq.')",
                "projects?select=name,sitemaps(title)&sitemaps.limit=1%3Bdrop", "projects?select=name::\(payload)",
                "projects?select=name&limit=1%20OR%201=1", "projects?select=name&name=in.(a,\(payload))",
                "projects?select=name,sitemaps(title)&order=sitemaps(\(payload))",
                // NUL bytes end a C string: in an alias, an embed alias, a hint, a value or a JSON key.
                "projects?select=a%00b:name", "projects?select=name,s%00:sitemaps(title)", "projects?select=name,sitemaps!a%00(title)",
                "projects?select=name&name=eq.a%00b", "projects?select=name->>a%00b",
                "projects?select=name,sitemaps(title)&or=(sitemaps.title.eq.%00)",
                // Identifiers past Postgres' 63 bytes (truncated by the server) in aliases.
                "projects?select=\(String(repeating: "a", count: 70))1:name,\(String(repeating: "a", count: 70))2:name",
            ]
            for query in reads {
                let answer = try await f.request(.get, "/rest/v1/\(query)", as: f.acme, f.alice)
                #expect(answer.status.code < 500, "\(query): \(answer.status) \(answer.body)")
                Self.expectNoLeak(answer.body, query)
            }
            // CSV's header is built from the aliases: a quote or backslash in one stays data.
            for alias in ["x'y", "x''%3B%20DROP%20TABLE%20projects%3B--", "x%5C'y", "x%5C"] {
                let answer = try await f.request(
                    .get, "/rest/v1/projects?select=\(alias):name&order=name", as: f.acme, f.alice, headers: [.accept: "text/csv"])
                #expect(answer.status == .ok || answer.status == .badRequest, "\(alias): \(answer.status) \(answer.body)")
                if answer.status == .ok { #expect(answer.body.hasSuffix("\nalpha\nbeta"), "\(alias): \(answer.body)") }
            }
            for prefer in [
                "timezone=UTC'; DROP TABLE public.projects; --", "timezone=UTC\"; SET role postgres", "timezone=../../etc/passwd",
                "count=exact'; DROP TABLE public.projects; --", "return=representation; DROP", "missing=default,'x'",
                "timezone=\(String(repeating: "A", count: 5000))",
            ] {
                let answer = try await f.request(.get, "/rest/v1/projects?select=name", as: f.acme, f.alice, headers: [Self.prefer: prefer])
                #expect(answer.status.code < 500, "\(prefer): \(answer.status) \(answer.body)")
                #expect(
                    !(answer.headers[.preferenceApplied] ?? "").contains("DROP"), "\(prefer): \(answer.headers[.preferenceApplied] ?? "")")
                let strict = try await f.request(
                    .get, "/rest/v1/projects?select=name", as: f.acme, f.alice, headers: [Self.prefer: "handling=strict, " + prefer])
                #expect(strict.status.code < 500, "strict \(prefer): \(strict.status) \(strict.body)")
            }
            // Writes: on_conflict and columns name columns, never SQL; a CSV body's quotes are data.
            let alice = f.alice.uuidString.lowercased()
            for query in [
                "on_conflict=id)%3B%20DROP%20TABLE%20projects%3B--", "columns=name%22)%3B%20DROP%20TABLE%20projects%3B--",
                "columns=name,\(payload)", "on_conflict=\(payload)",
            ] {
                let answer = try await f.request(
                    .post, "/rest/v1/projects?\(query)", as: f.acme, f.alice,
                    body: #"{"name": "never", "type": "website", "user_id": "\#(alice)"}"#,
                    headers: [Self.prefer: "resolution=merge-duplicates"])
                #expect(answer.status == .badRequest || answer.status == .forbidden, "\(query): \(answer.status) \(answer.body)")
            }
            try await Self.expectProjectsIntact(f)
            let quoted = "name,type,user_id\n\"it's \"\"x\"\"; DROP TABLE projects; --\",website,\(alice)\n"
            let csv = try await f.client.execute(
                uri: "/rest/v1/projects", method: .post,
                headers: try await f.headers(f.acme, f.alice, extra: [.contentType: "text/csv", Self.prefer: "return=representation"]),
                body: ByteBuffer(string: quoted)
            ) { ($0.status, String(buffer: $0.body)) }
            #expect(csv.0.code < 500, "\(csv.0) \(csv.1)")
            let names = try await f.auth.owner.query("SELECT name FROM public.projects WHERE name LIKE 'it''s%'")
            let stored = try names.rows.map { try $0.decode("name", as: String.self) }
            #expect(stored.isEmpty || stored == [#"it's "x"; DROP TABLE projects; --"#], "\(stored)")
            // A stored value with quotes, commas and a line break is one quoted CSV field, not extra rows or columns.
            try await f.auth.owner.query(
                "INSERT INTO public.projects (tenant_id, user_id, name, type) VALUES ($1, $2, $3, 'website')",
                [f.acme.id, f.alice, "a\",b\nforged,row"])
            let rendered = try await f.request(
                .get, "/rest/v1/projects?select=name&name=like.a%22*", as: f.acme, f.alice, headers: [.accept: "text/csv"])
            #expect(rendered.body == "name\n\"a\"\",b\nforged,row\"", "\(rendered.body)")
        }
    }

    @Test("Bearer <apikey> is anon of the key's own tenant; another tenant's key or a key-shaped forgery as Bearer is 401")
    func keyAsBearerIsAnonOfItsOwnTenant() async throws {
        try await RESTEmbeddingTests.run { (f: RESTFixture, _: RESTEmbeddingTests.Seeded) async throws in
            let own = try await f.client.execute(
                uri: "/rest/v1/projects?select=name,sitemaps(title)", method: .get,
                headers: [.apikey: f.acme.apikey, .authorization: "Bearer \(f.acme.apikey)"]
            ) { ($0.status, String(buffer: $0.body)) }
            #expect(own.0 == .ok, "\(own.1)")
            #expect(own.1 == #"[{"name":"beta","sitemaps":[{"title":"pricing"}]}]"#, "\(own.1)")
            var forged = f.acme.apikey
            forged.removeLast()
            forged.append(f.acme.apikey.last == "A" ? "B" : "A")
            for token in [f.globex.apikey, forged, f.acme.apikey + "x"] {
                let answer = try await f.client.execute(
                    uri: "/rest/v1/projects?select=name,sitemaps(title)", method: .get,
                    headers: [.apikey: f.acme.apikey, .authorization: "Bearer \(token)"]
                ) { ($0.status, String(buffer: $0.body)) }
                #expect(answer.0 == .unauthorized, "\(answer.0) \(answer.1)")
                #expect(!answer.1.contains("gamma") && !answer.1.contains("beta"), "\(answer.1)")
            }
        }
    }

    @Test(
        "with plans served to everyone, a plan of an embed of a sealed table, auth.users or tenants is refused before EXPLAIN, and ANALYZE never runs"
    )
    func plansOfSealedEmbedsRefused() async throws {
        try await LimitsFixture.run(limits: RESTPlanOutputTests.limits(.all)) { f in
            let alice = UUID()
            for query in [
                "projects?select=name,user_secrets(*)", "projects?select=name,users(*)", "projects?select=name,tenants(name)",
                "projects?select=name,...user_secret_versions(*)", "user_secrets?select=*",
                "projects?select=name,sitemaps(title,user_secrets(*))",
            ] {
                for user in [alice, nil] as [UUID?] {
                    let answer = try await RESTPlanOutputTests.request(
                        f, .get, "/rest/v1/\(query)", as: f.acme, user, accept: RESTPlanOutputTests.planJSON)
                    #expect(answer.status.code >= 400 && answer.status.code < 500, "\(query): \(answer.status) \(answer.body)")
                    #expect(!answer.body.contains("Plan Rows") && !answer.body.contains("Seq Scan"), "\(query): \(answer.body)")
                }
            }
            for accept in [
                RESTPlanOutputTests.planJSON + "; options=analyze", RESTPlanOutputTests.planJSON + "; options=verbose|analyze",
                RESTPlanOutputTests.planJSON + "; options=buffers", "application/vnd.pgrst.plan+text; options=wal",
            ] {
                let answer = try await RESTPlanOutputTests.request(
                    f, .post, "/rest/v1/projects", as: f.acme, alice, accept: accept,
                    body: #"{"name": "never", "type": "website", "user_id": "\#(alice.lowercasedString)"}"#)
                #expect(answer.status == .forbidden || answer.status == .notAcceptable, "\(accept): \(answer.status) \(answer.body)")
            }
            let written = try await f.auth.owner.query("SELECT count(*) AS n FROM public.projects WHERE name = 'never'")
            #expect(try written.rows[0].decode("n", as: Int.self) == 0)
        }
    }

    // MARK: - Resource exhaustion

    @Test("deep nesting, hundreds of embeds and a huge or= across embeds are 400 or answered, never 5xx")
    func exhaustionIsBoundedOrRefused() async throws {
        try await RESTEmbeddingTests.run { (f: RESTFixture, _: RESTEmbeddingTests.Seeded) async throws in
            // Nine levels: past the grammar's cap of eight.
            var nested = "title"
            for _ in 0..<9 { nested = "wireframes(\(nested))" }
            let deep = try await f.request(.get, "/rest/v1/sitemaps?select=\(nested)", as: f.acme, f.alice)
            #expect(deep.status == .badRequest, "\(deep.status) \(deep.body)")
            // Many sibling embeds: each is a lateral subquery; refused or answered, never 5xx.
            let many = (0..<200).map { "s\($0):sitemaps(title)" }.joined(separator: ",")
            let wide = try await f.request(.get, "/rest/v1/projects?select=name,\(many)", as: f.acme, f.alice)
            #expect(wide.status.code < 500, "\(wide.status) \(String(wide.body.prefix(300)))")
            // Many output columns (json rows past 100 function arguments).
            let columns = (0..<120).map { "c\($0):name" }.joined(separator: ",")
            let manyColumns = try await f.request(
                .get, "/rest/v1/projects?select=\(columns),sitemaps(\(columns.replacingOccurrences(of: "name", with: "title")))",
                as: f.acme, f.alice)
            #expect(manyColumns.status.code < 500, "\(manyColumns.status) \(String(manyColumns.body.prefix(300)))")
            // A thousand conditions across an embed in one or=.
            let conditions = (0..<1000).map { "sitemaps.title.eq.t\($0)" }.joined(separator: ",")
            let huge = try await f.request(.get, "/rest/v1/projects?select=name,sitemaps(title)&or=(\(conditions))", as: f.acme, f.alice)
            #expect(huge.status.code < 500, "\(huge.status) \(String(huge.body.prefix(300)))")
            // Relationship-cache misses: names that are no governed table never re-read the catalogue.
            for index in 0..<20 {
                let answer = try await f.request(.get, "/rest/v1/projects?select=name,nowhere_\(index)(id)", as: f.acme, f.alice)
                #expect(answer.status == .badRequest, "\(answer.status) \(answer.body)")
                #expect(answer.body.contains("PGRST200"))
            }
        }
    }

    @Test("a relationship miss re-reads the catalogue only when every embedded name is a governed table")
    func missRefreshOnlyForGovernedNames() throws {
        let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
        func query(_ select: String) throws -> RESTQuery {
            try RESTQuery.parse(method: .get, query: "select=\(select)", headers: RESTQuery.Headers(HTTPFields()), limits: .init())
        }
        #expect(RESTHandler.missMayBeNew(try query("name,sitemaps(title)"), policies: policies))
        #expect(RESTHandler.missMayBeNew(try query("name,sitemaps!some_new_fk(title,wireframes(title))"), policies: policies))
        #expect(!RESTHandler.missMayBeNew(try query("name,nowhere(title)"), policies: policies))
        #expect(!RESTHandler.missMayBeNew(try query("name,sitemaps(title,nowhere(id))"), policies: policies))
        #expect(!RESTHandler.missMayBeNew(try query("name,...random_\(UInt32.random(in: 0...UInt32.max))(id)"), policies: policies))
    }

    @Test("a flood of misses naming governed tables (random !hints) reads the catalogue within its budget, not once per request")
    func missFloodIsBudgeted() async throws {
        try await RESTFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let cache = RelationshipCache()
            _ = try await cache.catalog(pool: f.auth.gateway, policies: policies)
            let started = ContinuousClock.now
            for _ in 0..<40 { _ = try await cache.refreshAfterMiss(pool: f.auth.gateway, policies: policies) }
            let elapsed = ContinuousClock.now - started
            // The first read, the burst, and one per interval that passed during the flood.
            let allowed = 1 + Int(RelationshipCache.missBurst) + Int(elapsed / RelationshipCache.missInterval) + 1
            #expect(cache.reads <= allowed, "\(cache.reads) catalogue reads for 40 misses in \(elapsed)")
            #expect(cache.reads < 41)
        }
    }
}
