import Foundation
import HTTPTypes
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// Resource embedding through the real router against the migrated database: the shapes
/// PostgREST answers, and every embedded table read under its own policies and exposure.
@Suite("REST: resource embedding")
struct RESTEmbeddingTests {
    /// Test-only tables related to projects: a one-to-one brief (readable by the whole tenant,
    /// with a hidden column), links with two foreign keys to projects (ambiguous), and a vault
    /// that /rest/v1 does not serve.
    static let tables = """
        CREATE TABLE public.project_briefs (
            id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id     uuid NOT NULL DEFAULT auth.tenant_id() REFERENCES public.tenants (id),
            project_id    uuid NOT NULL,
            summary       text,
            internal_note text,
            CONSTRAINT project_briefs_project_fk FOREIGN KEY (tenant_id, project_id) REFERENCES public.projects (tenant_id, id),
            CONSTRAINT project_briefs_one_per_project UNIQUE (tenant_id, project_id)
        );
        ALTER TABLE public.project_briefs ENABLE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON public.project_briefs AS RESTRICTIVE FOR ALL TO public
            USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
        CREATE POLICY "Tenant reads briefs" ON public.project_briefs FOR SELECT TO anon, authenticated, service_role USING (true);
        GRANT SELECT (id, tenant_id, project_id, summary) ON public.project_briefs TO anon, authenticated, service_role;

        CREATE TABLE public.project_links (
            id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id    uuid NOT NULL DEFAULT auth.tenant_id() REFERENCES public.tenants (id),
            from_project uuid NOT NULL,
            to_project   uuid NOT NULL,
            label        text,
            CONSTRAINT project_links_from_fk FOREIGN KEY (tenant_id, from_project) REFERENCES public.projects (tenant_id, id),
            CONSTRAINT project_links_to_fk FOREIGN KEY (tenant_id, to_project) REFERENCES public.projects (tenant_id, id)
        );
        ALTER TABLE public.project_links ENABLE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON public.project_links AS RESTRICTIVE FOR ALL TO public
            USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
        CREATE POLICY "Tenant reads links" ON public.project_links FOR SELECT TO anon, authenticated, service_role USING (true);
        GRANT SELECT ON public.project_links TO anon, authenticated, service_role;

        CREATE TABLE public.project_tags (
            id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL DEFAULT auth.tenant_id() REFERENCES public.tenants (id),
            label     text NOT NULL,
            CONSTRAINT project_tags_tenant_id_id_key UNIQUE (tenant_id, id)
        );
        ALTER TABLE public.project_tags ENABLE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON public.project_tags AS RESTRICTIVE FOR ALL TO public
            USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
        CREATE POLICY "Tenant reads tags" ON public.project_tags FOR SELECT TO anon, authenticated, service_role USING (true);
        GRANT SELECT ON public.project_tags TO anon, authenticated, service_role;

        CREATE TABLE public.project_taggings (
            tenant_id  uuid NOT NULL DEFAULT auth.tenant_id() REFERENCES public.tenants (id),
            project_id uuid NOT NULL,
            tag_id     uuid NOT NULL,
            PRIMARY KEY (tenant_id, project_id, tag_id),
            CONSTRAINT project_taggings_project_fk FOREIGN KEY (tenant_id, project_id) REFERENCES public.projects (tenant_id, id),
            CONSTRAINT project_taggings_tag_fk FOREIGN KEY (tenant_id, tag_id) REFERENCES public.project_tags (tenant_id, id)
        );
        ALTER TABLE public.project_taggings ENABLE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON public.project_taggings AS RESTRICTIVE FOR ALL TO public
            USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
        CREATE POLICY "Taggings of visible projects" ON public.project_taggings FOR SELECT TO anon, authenticated, service_role
            USING (EXISTS (SELECT 1 FROM public.projects p
                           WHERE p.id = project_taggings.project_id AND (p.user_id = auth.uid() OR p.is_public = true)));
        GRANT SELECT ON public.project_taggings TO anon, authenticated, service_role;

        CREATE TABLE public.project_vault (
            id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id  uuid NOT NULL DEFAULT auth.tenant_id() REFERENCES public.tenants (id),
            project_id uuid NOT NULL,
            secret     text,
            CONSTRAINT project_vault_project_fk FOREIGN KEY (tenant_id, project_id) REFERENCES public.projects (tenant_id, id)
        );
        ALTER TABLE public.project_vault ENABLE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON public.project_vault AS RESTRICTIVE FOR ALL TO public
            USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
        """

    static let policies = [
        "project_briefs.yaml": """
        table: public.project_briefs
        tenant_column: tenant_id
        rest: read
        rest_hidden: [internal_note]
        columns:
          id: uuid
          tenant_id: uuid
          project_id: uuid
          summary: text
          internal_note: text
        indexes:
          - [id]
          - [tenant_id, project_id]
        policies:
          - name: Tenant reads briefs
            command: select
            roles: [anon, authenticated, service_role]
            using: "true"
        """,
        "project_links.yaml": """
        table: public.project_links
        tenant_column: tenant_id
        rest: read
        columns:
          id: uuid
          tenant_id: uuid
          from_project: uuid
          to_project: uuid
          label: text
        indexes:
          - [id]
        policies:
          - name: Tenant reads links
            command: select
            roles: [anon, authenticated, service_role]
            using: "true"
        """,
        "project_tags.yaml": """
        table: public.project_tags
        tenant_column: tenant_id
        rest: read
        columns:
          id: uuid
          tenant_id: uuid
          label: text
        indexes:
          - [id]
          - [tenant_id, id]
        policies:
          - name: Tenant reads tags
            command: select
            roles: [anon, authenticated, service_role]
            using: "true"
        """,
        "project_taggings.yaml": """
        table: public.project_taggings
        tenant_column: tenant_id
        rest: read
        columns:
          tenant_id: uuid
          project_id: uuid
          tag_id: uuid
        indexes:
          - [tenant_id, project_id, tag_id]
        policies:
          - name: Taggings of visible projects
            command: select
            roles: [anon, authenticated, service_role]
            using: |-
              EXISTS (SELECT 1 FROM public.projects p
                WHERE p.id = project_taggings.project_id AND (p.user_id = auth.uid() OR p.is_public = true))
        """,
        "project_vault.yaml": """
        table: public.project_vault
        tenant_column: tenant_id
        rest: none
        columns:
          id: uuid
          tenant_id: uuid
          project_id: uuid
          secret: text
        indexes:
          - [id]
        policies: []
        """,
    ]

    /// Alice (acme) owns `alpha` (private, sitemaps home and about, a brief, a vault secret) and
    /// `beta` (public, sitemap pricing); carol (globex) owns `gamma` (public, sitemap home).
    struct Seeded {
        let alpha: UUID, beta: UUID, gamma: UUID
    }

    static func run(_ body: @escaping @Sendable (RESTFixture, Seeded) async throws -> Void) async throws {
        try await RESTFixture.run(extraSQL: tables, extraPolicies: policies) { f in
            let owner = f.auth.owner
            let seeded = Seeded(alpha: UUID(), beta: UUID(), gamma: UUID())
            for (tenant, user) in [(f.acme.id, f.alice), (f.acme.id, f.bob), (f.globex.id, f.carol)] {
                try await owner.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant])
            }
            for (id, tenant, user, name, isPublic) in [
                (seeded.alpha, f.acme.id, f.alice, "alpha", false), (seeded.beta, f.acme.id, f.alice, "beta", true),
                (seeded.gamma, f.globex.id, f.carol, "gamma", true),
            ] {
                try await owner.query(
                    "INSERT INTO projects (id, tenant_id, user_id, name, type, is_public) VALUES ($1, $2, $3, $4, 'website', $5)",
                    [id, tenant, user, name, isPublic])
            }
            for (tenant, project, title) in [
                (f.acme.id, seeded.alpha, "home"), (f.acme.id, seeded.alpha, "about"), (f.acme.id, seeded.beta, "pricing"),
                (f.globex.id, seeded.gamma, "home"),
            ] {
                try await owner.query("INSERT INTO sitemaps (tenant_id, project_id, title) VALUES ($1, $2, $3)", [tenant, project, title])
            }
            try await owner.query(
                "INSERT INTO wireframes (tenant_id, sitemap_id, title) SELECT tenant_id, id, title || '-frame' FROM sitemaps")
            try await owner.query(
                "INSERT INTO project_briefs (tenant_id, project_id, summary, internal_note) VALUES ($1, $2, 'secret plan', 'do not show')",
                [f.acme.id, seeded.alpha])
            try await owner.query(
                "INSERT INTO project_links (tenant_id, from_project, to_project, label) VALUES ($1, $2, $3, 'alpha to beta')",
                [f.acme.id, seeded.alpha, seeded.beta])
            try await owner.query(
                "INSERT INTO project_vault (tenant_id, project_id, secret) VALUES ($1, $2, 'vault-secret')", [f.acme.id, seeded.alpha])
            try await owner.query(
                "INSERT INTO project_tags (tenant_id, label) VALUES ($1, 'urgent'), ($1, 'web'), ($2, 'web')", [f.acme.id, f.globex.id])
            try await owner.query(
                """
                INSERT INTO project_taggings (tenant_id, project_id, tag_id)
                SELECT t.tenant_id, p.id, t.id FROM project_tags t JOIN projects p ON p.tenant_id = t.tenant_id
                WHERE (p.name = 'alpha') OR (t.label = 'web')
                """)
            try await body(f, seeded)
        }
    }

    /// The JSON answer of a GET that must succeed.
    static func get(_ f: RESTFixture, _ uri: String, as tenant: TestTenant, _ user: UUID?, headers: HTTPFields = [:]) async throws -> Any {
        let answer = try await f.request(.get, uri, as: tenant, user, headers: headers)
        #expect(answer.status == .ok, "\(uri): \(answer.status) \(answer.body)")
        return try JSONSerialization.jsonObject(with: Data(answer.body.utf8))
    }

    /// Rows as dictionaries, compared through their JSON text (sorted keys).
    static func canonical(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    static func expectError(
        _ f: RESTFixture, _ uri: String, as tenant: TestTenant, _ user: UUID?, status: HTTPResponse.Status, code: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let answer = try await f.request(.get, uri, as: tenant, user)
        #expect(answer.status == status, "\(uri): \(answer.status) \(answer.body)", sourceLocation: sourceLocation)
        #expect(answer.body.contains("\"code\":\"\(code)\""), "\(uri): \(answer.body)", sourceLocation: sourceLocation)
        #expect(!answer.body.contains("vault-secret") && !answer.body.contains("do not show"), sourceLocation: sourceLocation)
    }

    // MARK: - Refusals first

    @Test("a table /rest/v1 does not serve cannot be embedded: 403 42501, as at the top level")
    func restNoneRefused() async throws {
        try await Self.run { (f: RESTFixture, _: Seeded) async throws in
            for uri in [
                "/rest/v1/projects?select=name,project_vault(secret)", "/rest/v1/projects?select=name,project_vault()",
                "/rest/v1/projects?select=name,v:project_vault!inner(id)", "/rest/v1/projects?select=name,...project_vault(secret)",
                "/rest/v1/sitemaps?select=title,projects(name,project_vault(secret))",
                "/rest/v1/projects?select=name,user_secrets(service_name)",
            ] {
                try await Self.expectError(f, uri, as: f.acme, f.alice, status: .forbidden, code: "42501")
            }
            try await Self.expectError(f, "/rest/v1/project_vault", as: f.acme, f.alice, status: .forbidden, code: "42501")
        }
    }

    @Test("hidden columns never appear inside an embed, and naming them is 42703")
    func hiddenColumns() async throws {
        try await Self.run { (f: RESTFixture, seeded: Seeded) async throws in
            let rows = try #require(
                try await Self.get(f, "/rest/v1/projects?select=name,project_briefs(*)&name=eq.alpha", as: f.acme, f.alice)
                    as? [[String: Any]])
            let brief = try #require(rows.first?["project_briefs"] as? [String: Any])
            #expect(brief["summary"] as? String == "secret plan")
            #expect(brief["internal_note"] == nil)
            #expect(Set(brief.keys) == ["id", "tenant_id", "project_id", "summary"])
            for uri in [
                "/rest/v1/projects?select=name,project_briefs(internal_note)",
                "/rest/v1/projects?select=name,project_briefs(summary)&project_briefs.internal_note=eq.x",
                "/rest/v1/projects?select=name,project_briefs(summary)&project_briefs.order=internal_note",
                "/rest/v1/projects?select=name,...project_briefs(internal_note)",
            ] {
                try await Self.expectError(f, uri, as: f.acme, f.alice, status: .badRequest, code: "42703")
            }
            _ = seeded
        }
    }

    @Test(
        "attack review: a spread of * (the lateral row's own columns) carries no hidden column and no internal one, in JSON or CSV; grouped or= terms on one embed, negated or not, see only rows its policy shows"
    )
    func spreadColumnsAndGroupedOr() async throws {
        try await Self.run { (f: RESTFixture, _: Seeded) async throws in
            for uri in [
                "/rest/v1/projects?select=name,...project_briefs(*)&name=eq.alpha",
                "/rest/v1/projects?select=*,...project_briefs(*)&name=eq.alpha",
            ] {
                for headers in [[:], [.accept: "text/csv"]] as [HTTPFields] {
                    let answer = try await f.request(.get, uri, as: f.acme, f.alice, headers: headers)
                    // CSV of `*,...rel(*)` has two columns named id: Postgres's 42702, as before spreads were columns.
                    let csvDuplicate = !headers.isEmpty && uri.contains("select=*")
                    #expect(answer.status == .ok || (csvDuplicate && answer.body.contains("42702")), "\(uri) \(headers): \(answer.body)")
                    #expect(answer.status != .ok || answer.body.contains("secret plan"), "\(uri): \(answer.body)")
                    for leak in ["internal_note", "do not show", "_pgw_"] {
                        #expect(!answer.body.contains(leak), "\(uri) \(headers): \(answer.body)")
                    }
                }
            }
            // Another tenant's reader gets its own rows only through the spread.
            let carol = try await f.request(
                .get, "/rest/v1/projects?select=name,...project_briefs(*)", as: f.globex, f.carol, headers: [.accept: "text/csv"])
            #expect(carol.status == .ok && !carol.body.contains("secret plan"), "\(carol.body)")
            // Bob cannot see alice's private alpha: P or not-P on its name, in one EXISTS, still matches nothing of it.
            for filter in ["or=(projects.name.eq.alpha,projects.name.not.eq.alpha)", "or=(projects.name.not.eq.zzz,projects.name.is.null)"]
            {
                let brief = try await Self.get(f, "/rest/v1/project_briefs?select=summary,projects(name)&\(filter)", as: f.acme, f.bob)
                #expect(try Self.canonical(brief) == "[]", "\(filter)")
            }
            // Alice sees it; a NULL-free negation and its positive both match through the one EXISTS.
            let alice = try await Self.get(
                f, "/rest/v1/project_briefs?select=summary,projects(name)&or=(projects.name.eq.nope,projects.name.not.eq.nope)", as: f.acme,
                f.alice)
            #expect(try Self.canonical(alice) == #"[{"projects":{"name":"alpha"},"summary":"secret plan"}]"#)
        }
    }

    @Test("no relationship is PGRST200, several are PGRST201 with the hints to choose, options for no embed are PGRST108")
    func relationshipErrors() async throws {
        try await Self.run { (f: RESTFixture, _: Seeded) async throws in
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,brands(name)", as: f.acme, f.alice, status: .badRequest, code: "PGRST200")
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,nowhere(name)", as: f.acme, f.alice, status: .badRequest, code: "PGRST200")
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,sitemaps!nope(title)", as: f.acme, f.alice, status: .badRequest, code: "PGRST200")
            let ambiguous = try await f.request(.get, "/rest/v1/project_links?select=label,projects(name)", as: f.acme, f.alice)
            #expect(ambiguous.status == .multipleChoices, "\(ambiguous.body)")
            #expect(ambiguous.body.contains("PGRST201"))
            #expect(ambiguous.body.contains("projects!project_links_from_fk") && ambiguous.body.contains("projects!project_links_to_fk"))
            try await Self.expectError(
                f, "/rest/v1/projects?select=name&sitemaps.limit=1", as: f.acme, f.alice, status: .badRequest, code: "PGRST108")
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,sitemaps(title)&maps.title=eq.x", as: f.acme, f.alice, status: .badRequest,
                code: "PGRST108")
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,project_briefs(summary)&project_briefs.sitemaps.limit=1", as: f.acme, f.alice,
                status: .badRequest, code: "PGRST108")
            // A spread needs a to-one relationship.
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,...sitemaps(title)", as: f.acme, f.alice, status: .badRequest, code: "PGRST119")
            // A table inside itself is refused rather than answered wrongly.
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,sitemaps(title,projects(name))", as: f.acme, f.alice, status: .badRequest,
                code: "PGRST100")
        }
    }

    @Test("another tenant's rows never appear through an embed, either way")
    func otherTenant() async throws {
        try await Self.run { (f: RESTFixture, _: Seeded) async throws in
            let carol = try await Self.get(
                f, "/rest/v1/projects?select=name,sitemaps(title,wireframes(title))&order=name", as: f.globex, f.carol)
            #expect(try Self.canonical(carol) == #"[{"name":"gamma","sitemaps":[{"title":"home","wireframes":[{"title":"home-frame"}]}]}]"#)
            let up = try await Self.get(f, "/rest/v1/sitemaps?select=title,projects(name)&order=title", as: f.globex, f.carol)
            #expect(try Self.canonical(up) == #"[{"projects":{"name":"gamma"},"title":"home"}]"#)
            // Alice's uuid under globex is another subject: globex's public project only.
            let alias = try await Self.get(f, "/rest/v1/projects?select=name,sitemaps(title)", as: f.globex, f.alice)
            #expect(try Self.canonical(alias) == #"[{"name":"gamma","sitemaps":[{"title":"home"}]}]"#)
            let anon = try await Self.get(f, "/rest/v1/project_links?select=label,from:projects!from_project(name)", as: f.globex, nil)
            #expect(try Self.canonical(anon) == "[]")
        }
    }

    @Test("a private parent never appears through a child the caller may read")
    func privateParent() async throws {
        try await Self.run { (f: RESTFixture, _: Seeded) async throws in
            // Bob may read every brief of his tenant, not alice's private project.
            let bob = try await Self.get(f, "/rest/v1/project_briefs?select=summary,projects(name)", as: f.acme, f.bob)
            #expect(try Self.canonical(bob) == #"[{"projects":null,"summary":"secret plan"}]"#)
            let inner = try await Self.get(f, "/rest/v1/project_briefs?select=summary,projects!inner(name)", as: f.acme, f.bob)
            #expect(try Self.canonical(inner) == "[]")
            let spread = try await Self.get(f, "/rest/v1/project_briefs?select=summary,...projects(name)", as: f.acme, f.bob)
            #expect(try Self.canonical(spread) == #"[{"name":null,"summary":"secret plan"}]"#)
            // Links between a private and a public project: only the public end shows.
            let links = try await Self.get(
                f, "/rest/v1/project_links?select=label,from:projects!project_links_from_fk(name),to:projects!to_project(name)", as: f.acme,
                f.bob)
            #expect(try Self.canonical(links) == #"[{"from":null,"label":"alpha to beta","to":{"name":"beta"}}]"#)
            // Children of a hidden parent: bob sees only beta's sitemaps, anon the same.
            for user in [f.bob, nil] as [UUID?] {
                let maps = try await Self.get(f, "/rest/v1/projects?select=name,sitemaps(title)&order=name", as: f.acme, user)
                #expect(try Self.canonical(maps) == #"[{"name":"beta","sitemaps":[{"title":"pricing"}]}]"#)
            }
        }
    }

    @Test(
        "or= across embedded resources tests only related rows the caller may read: no private parent, hidden column, other tenant or unserved table"
    )
    func orAcrossEmbedsSideDoors() async throws {
        try await Self.run { (f: RESTFixture, _: Seeded) async throws in
            // Alpha (private to alice) has the sitemap "home": bob matches nothing through it.
            let bob = try await Self.get(
                f, "/rest/v1/projects?select=name,sitemaps(title)&or=(name.eq.none,sitemaps.title.eq.home)", as: f.acme, f.bob)
            #expect(try Self.canonical(bob) == "[]")
            // A child bob may read never reveals its private parent through or=, nor its presence.
            for filter in ["or=(projects.name.eq.alpha)", "or=(projects.not.is.null)", "and=(projects.is_public.is.false)"] {
                let brief = try await Self.get(f, "/rest/v1/project_briefs?select=summary,projects(name)&\(filter)", as: f.acme, f.bob)
                #expect(try Self.canonical(brief) == "[]", "\(filter)")
            }
            // Another tenant's children: acme's "about" does not exist for carol.
            let carol = try await Self.get(
                f, "/rest/v1/projects?select=name,sitemaps(title)&or=(sitemaps.title.eq.about,name.eq.none)", as: f.globex, f.carol)
            #expect(try Self.canonical(carol) == "[]")
            // A hidden column of an embed is as unknown as at the top level.
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,project_briefs(summary)&or=(project_briefs.internal_note.eq.do%20not%20show)",
                as: f.acme, f.alice, status: .badRequest, code: "42703")
            // An unserved table cannot be embedded, so cannot be tested; an embed not selected is PGRST108.
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,project_vault(secret)&or=(project_vault.secret.eq.vault-secret)",
                as: f.acme, f.alice, status: .forbidden, code: "42501")
            try await Self.expectError(
                f, "/rest/v1/projects?select=name&or=(project_vault.secret.eq.vault-secret)", as: f.acme, f.alice, status: .badRequest,
                code: "PGRST108")
            try await Self.expectError(
                f, "/rest/v1/projects?select=name&or=(sitemaps.title.eq.home)", as: f.acme, f.alice, status: .badRequest, code: "PGRST108")
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,sitemaps(title)&or=(sitemaps.nope.eq.1)", as: f.acme, f.alice, status: .badRequest,
                code: "42703")
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,sitemaps(title)&or=(sitemaps.version.eq.x)", as: f.acme, f.alice, status: .badRequest,
                code: "22P02")
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,sitemaps(title)&sitemaps=is.true", as: f.acme, f.alice, status: .badRequest,
                code: "PGRST100")
        }
    }

    @Test("a foreign key added while the gateway runs embeds on its first use; before it, PGRST200")
    func relationshipAddedAtRuntime() async throws {
        let sql = """
            CREATE TABLE public.project_notes (
                id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                tenant_id  uuid NOT NULL DEFAULT auth.tenant_id() REFERENCES public.tenants (id),
                project_id uuid NOT NULL,
                body       text
            );
            ALTER TABLE public.project_notes ENABLE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON public.project_notes AS RESTRICTIVE FOR ALL TO public
                USING (tenant_id = auth.tenant_id()) WITH CHECK (tenant_id = auth.tenant_id());
            CREATE POLICY "Notes of visible projects" ON public.project_notes FOR SELECT TO anon, authenticated, service_role
                USING (EXISTS (SELECT 1 FROM public.projects p
                               WHERE p.id = project_notes.project_id AND (p.user_id = auth.uid() OR p.is_public = true)));
            GRANT SELECT ON public.project_notes TO anon, authenticated, service_role;
            """
        let policy = """
            table: public.project_notes
            tenant_column: tenant_id
            rest: read
            columns:
              id: uuid
              tenant_id: uuid
              project_id: uuid
              body: text
            indexes:
              - [id]
            policies:
              - name: Notes of visible projects
                command: select
                roles: [anon, authenticated, service_role]
                using: |-
                  EXISTS (SELECT 1 FROM public.projects p
                    WHERE p.id = project_notes.project_id AND (p.user_id = auth.uid() OR p.is_public = true))
            """
        try await RESTFixture.run(extraSQL: sql, extraPolicies: ["project_notes.yaml": policy]) { f in
            let owner = f.auth.owner
            try await owner.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2), ($3, $2)", [f.alice, f.acme.id, f.bob])
            let project = UUID()
            try await owner.query(
                "INSERT INTO projects (id, tenant_id, user_id, name, type, is_public) VALUES ($1, $2, $3, 'noted', 'website', false)",
                [project, f.acme.id, f.alice])
            try await owner.query("INSERT INTO project_notes (tenant_id, project_id, body) VALUES ($1, $2, 'n1')", [f.acme.id, project])
            // The catalogue is read (a first embed), then the key appears.
            _ = try await Self.get(f, "/rest/v1/sitemaps?select=title,projects(name)", as: f.acme, f.alice)
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,project_notes(body)", as: f.acme, f.alice, status: .badRequest, code: "PGRST200")
            try await owner.query(
                "ALTER TABLE public.project_notes ADD CONSTRAINT project_notes_project_fk FOREIGN KEY (tenant_id, project_id) REFERENCES public.projects (tenant_id, id)"
            )
            let noted = try await Self.get(f, "/rest/v1/projects?select=name,project_notes(body)", as: f.acme, f.alice)
            #expect(try Self.canonical(noted) == #"[{"name":"noted","project_notes":[{"body":"n1"}]}]"#)
            // Still under the new embed's policies: bob sees neither the private project nor its note.
            let bob = try await Self.get(f, "/rest/v1/project_notes?select=body,projects(name)", as: f.acme, f.bob)
            #expect(try Self.canonical(bob) == "[]")
        }
    }

    // MARK: - Shapes

    @Test("or= across embedded resources filters the parents, not the embedded rows; nested paths, presence, negation and counts")
    func orAcrossEmbeds() async throws {
        try await Self.run { (f: RESTFixture, _: Seeded) async throws in
            let either = try await Self.get(
                f,
                "/rest/v1/projects?select=name,sitemaps(title)&or=(name.eq.beta,sitemaps.title.eq.about)&order=name&sitemaps.order=title",
                as: f.acme, f.alice)
            #expect(
                try Self.canonical(either)
                    == #"[{"name":"alpha","sitemaps":[{"title":"about"},{"title":"home"}]},{"name":"beta","sitemaps":[{"title":"pricing"}]}]"#
            )
            let inner = try await Self.get(
                f, "/rest/v1/projects?select=name,sitemaps!inner(title)&or=(name.eq.none,sitemaps.title.eq.pricing)", as: f.acme, f.alice)
            #expect(try Self.canonical(inner) == #"[{"name":"beta","sitemaps":[{"title":"pricing"}]}]"#)
            let nested = try await Self.get(
                f,
                "/rest/v1/projects?select=name,sitemaps(wireframes(title))&or=(sitemaps.wireframes.title.eq.about-frame)&sitemaps.limit=0",
                as: f.acme, f.alice)
            #expect(try Self.canonical(nested) == #"[{"name":"alpha","sitemaps":[]}]"#)
            let toOne = try await Self.get(
                f, "/rest/v1/sitemaps?select=title,projects(name)&or=(title.eq.home,projects.name.eq.beta)&order=title", as: f.acme, f.alice
            )
            #expect(
                try Self.canonical(toOne)
                    == #"[{"projects":{"name":"alpha"},"title":"home"},{"projects":{"name":"beta"},"title":"pricing"}]"#)
            let negated = try await Self.get(
                f, "/rest/v1/projects?select=name,sitemaps(title)&and=(sitemaps.title.not.eq.pricing)&sitemaps.limit=0", as: f.acme, f.alice
            )
            #expect(try Self.canonical(negated) == #"[{"name":"alpha","sitemaps":[]}]"#)
            let missing = try await Self.get(
                f, "/rest/v1/projects?select=name,brief:project_briefs(summary)&brief=is.null", as: f.acme, f.alice)
            #expect(try Self.canonical(missing) == #"[{"brief":null,"name":"beta"}]"#)
            let present = try await Self.get(
                f, "/rest/v1/projects?select=name,brief:project_briefs(summary)&or=(brief.not.is.null,name.eq.none)", as: f.acme, f.alice)
            #expect(try Self.canonical(present) == #"[{"brief":{"summary":"secret plan"},"name":"alpha"}]"#)
            // Terms on one path share one EXISTS; each keeps its own negation, the others their place.
            let grouped = try await Self.get(
                f,
                "/rest/v1/projects?select=name,sitemaps(title)&or=(sitemaps.title.eq.none,name.eq.none,sitemaps.title.not.in.(home,about))&sitemaps.limit=0",
                as: f.acme, f.alice)
            #expect(try Self.canonical(grouped) == #"[{"name":"beta","sitemaps":[]}]"#)
            let counted = try await f.request(
                .get,
                "/rest/v1/projects?select=name,sitemaps(title)&or=(sitemaps.title.eq.home,sitemaps.title.eq.pricing)&limit=1&order=name",
                as: f.acme, f.alice, headers: [HTTPField.Name("Prefer")!: "count=exact"])
            #expect(counted.status == .partialContent, "\(counted.body)")
            #expect(counted.headers[.contentRange] == "0-0/2")
        }
    }

    @Test("one-to-many is an array, many-to-one an object, one-to-one an object, nested levels and aliases as PostgREST")
    func shapes() async throws {
        try await Self.run { (f: RESTFixture, _: Seeded) async throws in
            let many = try await Self.get(
                f, "/rest/v1/projects?select=name,sitemaps(title)&order=name&sitemaps.order=title", as: f.acme, f.alice)
            #expect(
                try Self.canonical(many)
                    == #"[{"name":"alpha","sitemaps":[{"title":"about"},{"title":"home"}]},{"name":"beta","sitemaps":[{"title":"pricing"}]}]"#
            )
            let one = try await Self.get(
                f, "/rest/v1/sitemaps?select=title,project:projects(name,is_public)&order=title", as: f.acme, f.alice)
            #expect(
                try Self.canonical(one)
                    == #"[{"project":{"is_public":false,"name":"alpha"},"title":"about"},{"project":{"is_public":false,"name":"alpha"},"title":"home"},{"project":{"is_public":true,"name":"beta"},"title":"pricing"}]"#
            )
            let oneToOne = try await Self.get(
                f, "/rest/v1/projects?select=name,brief:project_briefs(summary)&order=name", as: f.acme, f.alice)
            #expect(try Self.canonical(oneToOne) == #"[{"brief":{"summary":"secret plan"},"name":"alpha"},{"brief":null,"name":"beta"}]"#)
            let nested = try await Self.get(
                f, "/rest/v1/projects?select=name,maps:sitemaps(title,frames:wireframes(title))&name=eq.beta", as: f.acme, f.alice)
            #expect(try Self.canonical(nested) == #"[{"maps":[{"frames":[{"title":"pricing-frame"}],"title":"pricing"}],"name":"beta"}]"#)
            let upward = try await Self.get(
                f, "/rest/v1/wireframes?select=title,sitemaps(title,projects(name))&title=eq.home-frame", as: f.acme, f.alice)
            #expect(try Self.canonical(upward) == #"[{"sitemaps":{"projects":{"name":"alpha"},"title":"home"},"title":"home-frame"}]"#)
            let spread = try await Self.get(
                f, "/rest/v1/sitemaps?select=title,...projects(project:name)&order=title&limit=1", as: f.acme, f.alice)
            #expect(try Self.canonical(spread) == #"[{"project":"alpha","title":"about"}]"#)
            let empty = try await Self.get(f, "/rest/v1/projects?select=name,sitemaps()&name=eq.beta", as: f.acme, f.alice)
            #expect(try Self.canonical(empty) == #"[{"name":"beta","sitemaps":[{}]}]"#)
        }
    }

    @Test("embedded filters, order and limit shape the embedded rows; !inner also filters the parents and the count")
    func embeddedOptions() async throws {
        try await Self.run { (f: RESTFixture, _: Seeded) async throws in
            let filtered = try await Self.get(
                f, "/rest/v1/projects?select=name,sitemaps(title)&sitemaps.title=eq.home&order=name", as: f.acme, f.alice)
            #expect(try Self.canonical(filtered) == #"[{"name":"alpha","sitemaps":[{"title":"home"}]},{"name":"beta","sitemaps":[]}]"#)
            let inner = try await f.request(
                .get, "/rest/v1/projects?select=name,sitemaps!inner(title)&sitemaps.title=eq.home", as: f.acme, f.alice,
                headers: [HTTPField.Name("Prefer")!: "count=exact"])
            #expect(inner.status == .ok)
            #expect(inner.headers[.contentRange] == "0-0/1")
            #expect(
                try Self.canonical(try JSONSerialization.jsonObject(with: Data(inner.body.utf8)))
                    == #"[{"name":"alpha","sitemaps":[{"title":"home"}]}]"#)
            let limited = try await Self.get(
                f, "/rest/v1/projects?select=name,sitemaps(title)&name=eq.alpha&sitemaps.order=title.desc&sitemaps.limit=1", as: f.acme,
                f.alice)
            #expect(try Self.canonical(limited) == #"[{"name":"alpha","sitemaps":[{"title":"home"}]}]"#)
            let offset = try await Self.get(
                f, "/rest/v1/projects?select=name,sitemaps(title)&name=eq.alpha&sitemaps.order=title&sitemaps.offset=1", as: f.acme, f.alice
            )
            #expect(try Self.canonical(offset) == #"[{"name":"alpha","sitemaps":[{"title":"home"}]}]"#)
            let logic = try await Self.get(
                f, "/rest/v1/projects?select=name,sitemaps(title)&name=eq.alpha&sitemaps.or=(title.eq.about,title.eq.none)", as: f.acme,
                f.alice)
            #expect(try Self.canonical(logic) == #"[{"name":"alpha","sitemaps":[{"title":"about"}]}]"#)
            let deep = try await Self.get(
                f, "/rest/v1/projects?select=name,sitemaps!inner(title,wireframes!inner(title))&sitemaps.wireframes.title=eq.about-frame",
                as: f.acme, f.alice)
            #expect(
                try Self.canonical(deep) == #"[{"name":"alpha","sitemaps":[{"title":"about","wireframes":[{"title":"about-frame"}]}]}]"#)
            // An embedded filter with a malformed value is a 400, never a 5xx.
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,sitemaps(title)&sitemaps.version=eq.x", as: f.acme, f.alice, status: .badRequest,
                code: "22P02")
        }
    }

    @Test("a write's representation embeds as a read does, under the embedded tables' policies")
    func writesEmbed() async throws {
        try await Self.run { (f: RESTFixture, seeded: Seeded) async throws in
            let representation: HTTPFields = [HTTPField.Name("Prefer")!: "return=representation"]
            let patched = try await f.request(
                .patch,
                "/rest/v1/projects?id=eq.\(seeded.beta.uuidString.lowercased())&select=name,sitemaps(title),brief:project_briefs(summary)",
                as: f.acme, f.alice, body: #"{"name": "renamed"}"#, headers: representation)
            #expect(patched.status == .ok, "\(patched.body)")
            #expect(
                try Self.canonical(try JSONSerialization.jsonObject(with: Data(patched.body.utf8)))
                    == #"[{"brief":null,"name":"renamed","sitemaps":[{"title":"pricing"}]}]"#)
            let created = try await f.request(
                .post, "/rest/v1/sitemaps?select=title,project:projects(name),wireframes(title)", as: f.acme, f.alice,
                body: #"{"title": "contact", "project_id": "\#(seeded.alpha.uuidString.lowercased())"}"#, headers: representation)
            #expect(created.status == .created, "\(created.body)")
            #expect(
                try Self.canonical(try JSONSerialization.jsonObject(with: Data(created.body.utf8)))
                    == #"[{"project":{"name":"alpha"},"title":"contact","wireframes":[]}]"#)
            // A bad embed refuses the write before anything is written.
            let refused = try await f.request(
                .post, "/rest/v1/sitemaps?select=title,project_vault(secret)", as: f.acme, f.alice,
                body: #"{"title": "never", "project_id": "\#(seeded.alpha.uuidString.lowercased())"}"#, headers: representation)
            #expect(refused.status == .forbidden, "\(refused.body)")
            let titles = try await Self.get(f, "/rest/v1/sitemaps?select=title&title=eq.never", as: f.acme, f.alice)
            #expect(try Self.canonical(titles) == "[]")
            // Deleting: the representation shows the row as it was, its parent through the policy.
            let deleted = try await f.request(
                .delete, "/rest/v1/sitemaps?title=eq.contact&select=title,projects(name)", as: f.acme, f.alice, headers: representation)
            #expect(deleted.status == .ok, "\(deleted.body)")
            #expect(
                try Self.canonical(try JSONSerialization.jsonObject(with: Data(deleted.body.utf8)))
                    == #"[{"projects":{"name":"alpha"},"title":"contact"}]"#)
        }
    }

    @Test("many-to-many through a junction: an array, scoped by the target's and the junction's policies")
    func manyToMany() async throws {
        try await Self.run { (f: RESTFixture, _: Seeded) async throws in
            let alice = try await Self.get(
                f, "/rest/v1/projects?select=name,project_tags(label)&order=name&project_tags.order=label", as: f.acme, f.alice)
            #expect(
                try Self.canonical(alice)
                    == #"[{"name":"alpha","project_tags":[{"label":"urgent"},{"label":"web"}]},{"name":"beta","project_tags":[{"label":"web"}]}]"#
            )
            // Bob sees every tag, but links to alice's private project are hidden from him, and the project too.
            let bob = try await Self.get(
                f, "/rest/v1/project_tags?select=label,projects!project_taggings(name)&order=label", as: f.acme, f.bob)
            #expect(try Self.canonical(bob) == #"[{"label":"urgent","projects":[]},{"label":"web","projects":[{"name":"beta"}]}]"#)
            let inner = try await Self.get(f, "/rest/v1/project_tags?select=label,projects!inner(name)&order=label", as: f.acme, f.bob)
            #expect(try Self.canonical(inner) == #"[{"label":"web","projects":[{"name":"beta"}]}]"#)
            let carol = try await Self.get(f, "/rest/v1/project_tags?select=label,projects(name)", as: f.globex, f.carol)
            #expect(try Self.canonical(carol) == #"[{"label":"web","projects":[{"name":"gamma"}]}]"#)
            // The junction itself is read as a one-to-many from either end.
            let links = try await Self.get(f, "/rest/v1/projects?select=name,project_taggings(tag_id)&name=eq.beta", as: f.acme, f.bob)
            #expect((links as? [[String: Any]])?.first?["project_taggings"] as? [Any] != nil)
            // A table with foreign keys to both that is not keyed by them is no junction:
            // brands → conversation_sessions stays one relationship (conversation_messages references both).
            _ = try await Self.get(f, "/rest/v1/brands?select=name,conversation_sessions(id)", as: f.acme, f.alice)
        }
    }

    @Test("order=relation(column) sorts by a to-one embed's column, selected or not, under its policies")
    func relatedOrder() async throws {
        try await Self.run { (f: RESTFixture, _: Seeded) async throws in
            let byName = try await Self.get(
                f, "/rest/v1/sitemaps?select=title,projects(name)&order=projects(name).desc,title", as: f.acme, f.alice)
            #expect(
                try Self.canonical(byName)
                    == #"[{"projects":{"name":"beta"},"title":"pricing"},{"projects":{"name":"alpha"},"title":"about"},{"projects":{"name":"alpha"},"title":"home"}]"#
            )
            let unselected = try await Self.get(
                f, "/rest/v1/sitemaps?select=title,p:projects(name)&order=p(is_public).desc,title", as: f.acme, f.alice)
            #expect(
                try Self.canonical(unselected)
                    == #"[{"p":{"name":"beta"},"title":"pricing"},{"p":{"name":"alpha"},"title":"about"},{"p":{"name":"alpha"},"title":"home"}]"#
            )
            // A parent the caller may not see sorts as NULL: its value never leaks into the order.
            let bob = try await Self.get(
                f, "/rest/v1/project_briefs?select=summary,projects(name)&order=projects(name).nullsfirst", as: f.acme, f.bob)
            #expect(try Self.canonical(bob) == #"[{"projects":null,"summary":"secret plan"}]"#)
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,sitemaps(title)&order=sitemaps(title)", as: f.acme, f.alice, status: .badRequest,
                code: "PGRST118")
            try await Self.expectError(
                f, "/rest/v1/projects?select=name&order=nowhere(title)", as: f.acme, f.alice, status: .badRequest, code: "PGRST108")
            try await Self.expectError(
                f, "/rest/v1/projects?select=name,project_briefs(summary)&order=project_briefs(internal_note)", as: f.acme, f.alice,
                status: .badRequest, code: "42703")
        }
    }
}
