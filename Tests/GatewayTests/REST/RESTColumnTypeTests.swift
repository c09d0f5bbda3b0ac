import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Policy
import Postgres
import TestSupport
import Testing

@testable import Gateway

/// Filters on every column type the apps declare (the seeds' and migrations' types, plus
/// `character(n)` from PostgREST's own fixtures), through the real router against a real table:
/// a value is compared with the column as Postgres compares it — never truncated to a length,
/// rounded to a scale or cut to one character.
@Suite("REST: filters keep every column's type")
struct RESTColumnTypeTests {
    /// A governed table holding one column of each declared type.
    static let probeTable = """
        CREATE TYPE public.probe_mood AS ENUM ('happy', 'sad', 'meh');
        CREATE TABLE public.type_probe (
            id          uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id   uuid          NOT NULL DEFAULT auth.tenant_id() REFERENCES public.tenants (id),
            label       text          NOT NULL,
            iso         character(2),
            isos        character(2)[],
            code        varchar(5),
            amount      numeric(5,2),
            ratio       numeric(12,6),
            count32     integer,
            count64     bigint,
            flag        boolean,
            born        date,
            seen_at     timestamptz,
            doc         jsonb,
            tags        text[],
            members     uuid[],
            blob        bytea,
            address     inet,
            owner       uuid,
            span        int4range,
            during      tstzrange,
            body        text,
            words       tsvector,
            mood        public.probe_mood,
            moods       public.probe_mood[]
        );
        ALTER TABLE public.type_probe ENABLE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON public.type_probe AS RESTRICTIVE FOR ALL TO public
            USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
        CREATE POLICY "Anyone reads probes" ON public.type_probe FOR SELECT TO anon, authenticated, service_role USING (true);
        CREATE POLICY "Anyone updates probes" ON public.type_probe FOR UPDATE TO anon, authenticated, service_role
            USING (true) WITH CHECK (true);
        GRANT SELECT, UPDATE ON public.type_probe TO anon, authenticated, service_role;
        """

    static let probePolicy = """
        table: public.type_probe
        tenant_column: tenant_id
        rest: read_write
        columns:
          id:        uuid
          tenant_id: uuid
          label:     text
          iso:       character(2)
          isos:      character(2)[]
          code:      varchar(5)
          amount:    numeric(5,2)
          ratio:     numeric(12,6)
          count32:   integer
          count64:   bigint
          flag:      boolean
          born:      date
          seen_at:   timestamptz
          doc:       jsonb
          tags:      text[]
          members:   uuid[]
          blob:      bytea
          address:   inet
          owner:     uuid
          span:      int4range
          during:    tstzrange
          body:      text
          words:     tsvector
          mood:      public.probe_mood
          moods:     public.probe_mood[]
        indexes:
          - [id]
        policies:
          - name: Anyone reads probes
            command: select
            roles: [anon, authenticated, service_role]
            using: "true"
          - name: Anyone updates probes
            command: update
            roles: [anon, authenticated, service_role]
            using: "true"
            with_check: "true"
        """

    static let member = UUID()

    /// The repository's policies plus the probe's, a router over them, and three rows: `dz` and
    /// `fr` in acme, `other` (the same values as `dz`) in globex.
    static func run(_ body: @escaping @Sendable (RESTFixture) async throws -> Void) async throws {
        try await RESTFixture.run(extraSQL: probeTable, extraPolicies: ["type_probe.yaml": probePolicy]) { f in
            let insert = """
                INSERT INTO public.type_probe (tenant_id, label, iso, isos, code, amount, ratio, count32, count64, flag, born,
                                               seen_at, doc, tags, members, blob, address, owner, span, during, body, words)
                VALUES ($1, $2, $3, $4::character(2)[], $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::text[], $15::uuid[],
                        $16::bytea, $17::inet, $18, $19::int4range, $20::tstzrange, $21, to_tsvector('english', $21))
                """
            func row(
                _ tenant: UUID, _ label: String, iso: String, code: String, amount: String, flag: Bool, span: String, body: String
            ) async throws {
                try await f.auth.owner.query(
                    insert,
                    [
                        tenant, label, iso, "{\(iso),ZZ}", code, amount, "0.123456", "7", "9000000000", flag ? "true" : "false",
                        "2024-02-29", "2024-02-29T12:00:00Z", #"{"kind": "\#(label)", "n": 1}"#, "{web,\(label)}",
                        "{\(member.uuidString.lowercased())}", "\\x0102", "10.0.0.1", member, span,
                        "[2024-01-01T00:00:00Z,2024-02-01T00:00:00Z)", body,
                    ])
            }
            try await row(
                f.acme.id, "dz", iso: "DZ", code: "abcde", amount: "1.01", flag: true, span: "[1,5)", body: "The fat cats sat on the mat")
            try await row(f.acme.id, "fr", iso: "FR", code: "xy", amount: "999.99", flag: false, span: "[10,20)", body: "A quick brown fox")
            try await row(
                f.globex.id, "other", iso: "DZ", code: "abcde", amount: "1.01", flag: true, span: "[1,5)",
                body: "The fat cats sat on the mat")
            try await body(f)
        }
    }

    /// The labels acme's anonymous caller gets for `query`, after checking the answer is a 200.
    static func labels(_ f: RESTFixture, _ query: String) async throws -> [String] {
        let answer = try await f.request(.get, "/rest/v1/type_probe?select=label&order=label&" + query, as: f.acme, nil)
        #expect(answer.status == .ok, "\(query): \(answer.body)")
        guard answer.status == .ok else { return [] }
        return try f.json(answer.body).compactMap { $0["label"] as? String }
    }

    @Test("a value longer than a char(n) or varchar(n) column, or finer than its numeric scale, matches nothing")
    func noTruncationOrRounding() async throws {
        try await Self.run { (f: RESTFixture) async throws in
            // Cast to the column's declared type, each of these would have matched `dz`.
            for query in [
                "iso=eq.DZX", "code=eq.abcdefg", "amount=eq.1.005", "iso=in.(DZX,QQ)", "code=in.(abcdef)",
                "amount=in.(1.009)", "isos=cs.{DZX}", "or=(iso.eq.DZX,code.eq.abcdefg)",
            ] {
                #expect(try await Self.labels(f, query) == [], "\(query)")
            }
        }
    }

    @Test("an enum declared in a policy file (schema-qualified) filters with its own type; a value outside it is 22P02")
    func enums() async throws {
        try await Self.run { (f: RESTFixture) async throws in
            try await f.auth.owner.query(
                """
                UPDATE public.type_probe SET mood = (CASE label WHEN 'fr' THEN 'sad' ELSE 'happy' END)::public.probe_mood,
                                             moods = (CASE label WHEN 'fr' THEN '{sad,meh}' ELSE '{happy}' END)::public.probe_mood[]
                """)
            #expect(try await Self.labels(f, "mood=eq.happy") == ["dz"])
            #expect(try await Self.labels(f, "mood=gt.happy") == ["fr"])  // enum order, not text order
            #expect(try await Self.labels(f, "mood=in.(sad,meh)") == ["fr"])
            #expect(try await Self.labels(f, "or=(mood.eq.sad,label.eq.dz)") == ["dz", "fr"])
            #expect(try await Self.labels(f, "moods=cs.{meh}") == ["fr"])
            #expect(try await Self.labels(f, "mood=like.ha*") == ["dz"])
            #expect(try await Self.labels(f, "mood=isdistinct.happy") == ["fr"])
            let outside = try await f.request(.get, "/rest/v1/type_probe?select=label&mood=eq.angry", as: f.acme, nil)
            #expect(outside.status == .badRequest, "\(outside.body)")
            #expect(outside.body.contains("22P02"))
            let updated = try await f.request(.patch, "/rest/v1/type_probe?label=eq.dz", as: f.acme, nil, body: #"{"mood": "meh"}"#)
            #expect(updated.status == .noContent, "\(updated.body)")
            #expect(try await Self.labels(f, "mood=eq.meh") == ["dz"])
            #expect(try await Self.labels(f, "mood=eq.happy") == [])
        }
    }

    @Test("a malformed value for a typed column is PostgREST's 22P02, not a 5xx")
    func malformedValues() async throws {
        try await Self.run { (f: RESTFixture) async throws in
            for query in [
                "amount=eq.lots", "count32=eq.1.5", "born=eq.notadate", "members=cs.{nope}", "address=eq.999.1",
                "flag=eq.perhaps", "doc=cs.{notjson",
            ] {
                let answer = try await f.request(.get, "/rest/v1/type_probe?" + query, as: f.acme, nil)
                #expect(answer.status == .badRequest, "\(query): \(answer.status) \(answer.body)")
                #expect(
                    answer.body.contains("22P02") || answer.body.contains("22007") || answer.body.contains("22008"),
                    "\(query): \(answer.body)")
            }
        }
    }

    @Test("char(n) compares with its full length: iso=eq.DZ finds the row, alone and inside or=")
    func characterColumns() async throws {
        try await Self.run { (f: RESTFixture) async throws in
            #expect(try await Self.labels(f, "iso=eq.DZ") == ["dz"])
            #expect(try await Self.labels(f, "iso=neq.DZ") == ["fr"])
            #expect(try await Self.labels(f, "iso=in.(DZ,FR)") == ["dz", "fr"])
            #expect(try await Self.labels(f, "or=(iso.eq.DZ,code.eq.none)") == ["dz"])
            #expect(try await Self.labels(f, "iso=not.eq.FR") == ["dz"])
            #expect(try await Self.labels(f, "iso=gt.E") == ["fr"])
            #expect(try await Self.labels(f, "iso=like.D*") == ["dz"])
            // Blank-padded, as the column compares: a trailing space is the same value.
            #expect(try await Self.labels(f, "iso=eq.DZ%20") == ["dz"])
            #expect(try await Self.labels(f, "isos=cs.{DZ}") == ["dz"])
            #expect(try await Self.labels(f, "isos=cs.{ZZ}") == ["dz", "fr"])
            #expect(try await Self.labels(f, "isos=ov.{FR,QQ}") == ["fr"])
            #expect(try await Self.labels(f, "isos=eq.{FR,ZZ}") == ["fr"])
        }
    }

    /// The probe is the list of types the filters are tested on: a type a policy file starts to
    /// use (a table's column, a view's, a function's argument) must join it, or this fails.
    @Test("the probe declares every type family the repository's policy files use: tables, views and function arguments")
    func probeCoversDeclaredTypes() throws {
        let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
        /// `numeric(5,2)` and `numeric` are one family; `text[]` is its own.
        func family(_ type: SQLType) -> String { type.canonical.replacing(#/\(\s*\d+(\s*,\s*\d+)?\s*\)/#, with: "") }
        let columnsSection = Self.probePolicy.split(separator: "columns:")[1].split(separator: "indexes:")[0]
        let probe = Set(
            columnsSection.split(whereSeparator: \.isNewline).compactMap { line -> String? in
                let parts = line.split(separator: ":", maxSplits: 1)
                return parts.count == 2 ? SQLType(parts[1].trimmingCharacters(in: .whitespaces)).map(family) : nil
            })
        #expect(probe.count > 20)
        let declared =
            policies.tables.flatMap(\.columns).map(\.type) + policies.views.flatMap(\.columns).map(\.type)
            + policies.functions.flatMap(\.arguments).map(\.type)
        #expect(!declared.isEmpty)
        for type in Set(declared.map(family)).sorted() {
            #expect(probe.contains(type), "\(type) is declared in policies/ but not filtered by this suite")
        }
    }

    @Test("every other declared type filters as its column compares")
    func everyType() async throws {
        try await Self.run { (f: RESTFixture) async throws in
            let member = Self.member.uuidString.lowercased()
            let cases: [(String, [String])] = [
                ("code=eq.abcde", ["dz"]), ("code=in.(xy,abcde)", ["dz", "fr"]), ("code=ilike.ABC*", ["dz"]),
                ("amount=eq.1.01", ["dz"]), ("amount=eq.1.010", ["dz"]), ("amount=gt.500", ["fr"]), ("amount=in.(999.99)", ["fr"]),
                ("ratio=eq.0.123456", ["dz", "fr"]), ("ratio=eq.0.1234561", []),
                ("count32=eq.7", ["dz", "fr"]), ("count32=lt.7", []),
                ("count64=eq.9000000000", ["dz", "fr"]), ("count64=gte.9000000001", []),
                ("flag=is.true", ["dz"]), ("flag=eq.false", ["fr"]),
                ("born=eq.2024-02-29", ["dz", "fr"]), ("born=gt.2024-03-01", []),
                ("seen_at=eq.2024-02-29T13:00:00%2B01:00", ["dz", "fr"]), ("seen_at=lt.2024-02-29T12:00:00Z", []),
                ("doc=cs.%7B%22kind%22:%22fr%22%7D", ["fr"]), ("doc->>kind=eq.dz", ["dz"]), ("doc->n=eq.1", ["dz", "fr"]),
                ("tags=cs.{web}", ["dz", "fr"]), ("tags=cd.{web,dz,x}", ["dz"]), ("tags=ov.{fr}", ["fr"]),
                ("members=cs.{\(member)}", ["dz", "fr"]), ("owner=eq.\(member)", ["dz", "fr"]), ("owner=is.null", []),
                ("blob=eq.%5Cx0102", ["dz", "fr"]), ("blob=eq.%5Cx01", []),
                ("address=eq.10.0.0.1", ["dz", "fr"]), ("address=neq.10.0.0.1", []),
                ("label=eq.other", []),  // globex's row: never visible to acme
            ]
            for (query, expected) in cases {
                #expect(try await Self.labels(f, query) == expected, "\(query)")
            }
        }
    }

    @Test("an update filtered on a char(n) column reaches its row, and only in the caller's tenant")
    func characterFilterOnWrite() async throws {
        try await Self.run { (f: RESTFixture) async throws in
            let updated = try await f.request(
                .patch, "/rest/v1/type_probe?iso=eq.DZ", as: f.acme, nil, body: #"{"code": "new"}"#,
                headers: [HTTPField.Name("Prefer")!: "return=representation"])
            #expect(updated.status == .ok, "\(updated.body)")
            #expect(try f.json(updated.body).compactMap { $0["label"] as? String } == ["dz"])
            let globex = try await f.request(.get, "/rest/v1/type_probe?select=code&iso=eq.DZ", as: f.globex, nil)
            #expect(try f.json(globex.body).compactMap { $0["code"] as? String } == ["abcde"])
        }
    }

    @Test("range, text search, regex, isdistinct and (any)/(all) filters answer as Postgres does")
    func newOperators() async throws {
        try await Self.run { (f: RESTFixture) async throws in
            let cases: [(String, [String])] = [
                ("span=sl.[6,8)", ["dz"]), ("span=sr.[6,8)", ["fr"]), ("span=nxr.[1,6)", ["dz"]), ("span=nxl.[9,30)", ["fr"]),
                ("span=adj.[5,10)", ["dz", "fr"]), ("span=adj.[6,9)", []), ("span=cs.[2,3)", ["dz"]), ("span=cd.[0,100)", ["dz", "fr"]),
                ("span=ov.[4,11)", ["dz", "fr"]), ("span=not.adj.[20,30)", ["dz"]),
                ("during=cs.[2024-01-15T00:00:00Z,2024-01-16T00:00:00Z)", ["dz", "fr"]),
                ("during=sl.[2024-03-01T00:00:00Z,)", ["dz", "fr"]),
                ("or=(span.sl.\"[6,8)\",iso.eq.FR)", ["dz", "fr"]),
                ("words=fts.cat", ["dz"]), ("words=fts(english).cats%20%26%20fat", ["dz"]), ("words=plfts(english).fat%20cat", ["dz"]),
                ("words=phfts(english).fat%20cats", ["dz"]), ("words=phfts(english).cats%20fat", []),
                ("words=wfts(english).fox%20-cat", ["fr"]), ("body=fts(english).cat", ["dz"]), ("body=plfts.quick%20fox", ["fr"]),
                ("doc=fts(simple).dz", ["dz"]), ("words=not.fts.fox", ["dz"]),
                ("body=match.^The", ["dz"]), ("body=match.^the", []), ("body=imatch.^the", ["dz"]), ("body=imatch.FOX$", ["fr"]),
                ("iso=match.^D", ["dz"]),
                ("owner=isdistinct.\(Self.member.uuidString.lowercased())", []), ("code=isdistinct.xy", ["dz"]),
                ("code=not.isdistinct.xy", ["fr"]),
                ("iso=eq(any).{DZ,QQ}", ["dz"]), ("iso=eq(any).{DZX}", []), ("amount=gt(all).{1,500}", ["fr"]),
                ("amount=eq(any).{1.005}", []), ("code=like(any).{ab*,q*}", ["dz"]), ("code=like(all).{a*,*e}", ["dz"]),
                ("code=ilike(all).{A*,*Z}", []), ("body=imatch(any).{FOX,zebra}", ["fr"]), ("count32=neq(all).{1,2}", ["dz", "fr"]),
                ("or=(iso.eq(any).{FR},code.eq.abcde)", ["dz", "fr"]),
            ]
            for (query, expected) in cases {
                #expect(try await Self.labels(f, query) == expected, "\(query)")
            }
        }
    }

    @Test("an operator on a column of the wrong type, or an unknown configuration, is a 400 with PostgREST's code")
    func wrongTypes() async throws {
        try await Self.run { (f: RESTFixture) async throws in
            let cases: [(String, String)] = [
                ("count32=adj.[1,2)", "42883"), ("tags=sl.{a}", "42883"), ("amount=fts.cat", "42883"), ("span=fts.cat", "42883"),
                ("words=fts(klingon).cat", "42704"), ("span=adj.[5,1)", "22000"), ("span=sl.notarange", "22P02"),
                ("body=match.(", "2201B"), ("iso=eq(any).DZ", "22P02"), ("words=fts.%26%26", "42601"),
            ]
            for (query, code) in cases {
                let answer = try await f.request(.get, "/rest/v1/type_probe?" + query, as: f.acme, nil)
                #expect(answer.status == .badRequest, "\(query): \(answer.status) \(answer.body)")
                #expect(answer.body.contains("\"\(code)\""), "\(query): \(answer.body)")
            }
        }
    }
}
