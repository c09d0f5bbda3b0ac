import Foundation
import Keyring
import Policy
import Postgres
import Privacy
import Sodium
import TestSupport
import Testing

/// The masking strategies of `anonymize:` run end to end: erasure (one subject, in batches) and
/// retention (many subjects at once) against the real database, on the seed's column types.
@Suite("Masking strategies")
struct MaskingTests {
    /// The repository's policies, with three seed tables anonymised instead of deleted.
    static let policies: PolicySet = {
        let rules: [String: String] = [
            "builder_sessions": """
              erasure: anonymize
              anonymize:
                user_id: null
                session_token: hmac
                user_agent: { replace: "erased" }
                ip_address: truncate_ip
                started_at: { truncate: day }
                ended_at: { truncate: month }
                duration: { replace: "0" }
                step_data: { replace: '{"erased": true}' }

            """,
            "campaigns": """
              erasure: anonymize
              anonymize:
                created_by: null
                name: hmac
                description: null
                budget: { replace: "0" }
                auto_managed: { replace: "false" }
                start_date: { truncate: year }
                end_date: { truncate: month }
                target_audience: redact

            """,
            "ghl_opportunities": """
              erasure: anonymize
              anonymize:
                user_id: null
                contact_email: hmac
                ghl_opportunity_id: hmac
                session_id: hmac
                contact_name: { replace: "erased" }
                contact_phone: null
                monetary_value: { replace: "0" }
                metadata: { replace: '{"erased": true}' }
                pipeline_stage: redact
                created_at: { truncate: year }

            """,
        ]
        let directory = TestDatabase.repositoryPolicies.path
        let names = try! FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.sorted()
        return try! PolicySet.load(
            sources: names.map { name in
                var text = try! String(contentsOfFile: (directory as NSString).appendingPathComponent(name), encoding: .utf8)
                if let rule = rules[String(name.dropLast(5))] {
                    precondition(text.contains("  erasure: delete\n"))
                    text = text.replacingOccurrences(of: "  erasure: delete\n", with: rule)
                }
                return PolicySource(file: "policies/\(name)", text: text)
            })
    }()

    /// The key `hmac` uses for a subject, derived here from the DEK as the privacy service does.
    static func maskingKey(_ fixture: PrivacyFixture, tenant: UUID, subject: UUID) async throws -> SecureBytes {
        let keyring = fixture.keyring
        let dek = try await fixture.pool.transaction { try keyring.subjectKey(tenant, user: subject, create: false, in: $0) }
        return try KeyDerivation.subkey(from: try #require(dek), id: 1, context: "maskhmac")
    }

    static func hmac(_ value: String, table: String, key: SecureBytes) -> String {
        Hex.encode(HMACSHA256.authenticate(Array("\(table)\u{0}\(value)".utf8), key: key))
    }

    /// The seed's subject columns are NOT NULL for builder_sessions and campaigns (their rows die
    /// with the user); these tests keep anonymised rows, so the throwaway database lets them outlive it.
    static func prepare(_ fixture: PrivacyFixture) async throws {
        try await fixture.pool.query("ALTER TABLE public.builder_sessions ALTER COLUMN user_id DROP NOT NULL")
        try await fixture.pool.query("ALTER TABLE public.campaigns ALTER COLUMN created_by DROP NOT NULL")
    }

    /// Gives the subject's rows the values the strategies act on (the fixture leaves them empty).
    static func fill(_ fixture: PrivacyFixture, tenant: UUID, subject: UUID) async throws {
        let binds: [any PostgresEncodable] = [tenant, subject]
        try await fixture.pool.query(
            """
            UPDATE public.builder_sessions SET ip_address = '192.168.17.201', user_agent = 'Mozilla/5.0 (X11; Ann)',
                started_at = '2025-08-17 23:30:00+02', ended_at = '2025-08-18 00:10:00+00', duration = 600,
                step_data = '{"email": "ann@example.com"}'
            WHERE tenant_id = $1 AND user_id = $2
            """, binds)
        try await fixture.pool.query(
            """
            UPDATE public.builder_sessions SET ip_address = '2001:db8:abcd:12:1::7'
            WHERE id = (SELECT id FROM public.builder_sessions WHERE tenant_id = $1 AND user_id = $2 ORDER BY id LIMIT 1)
            """, binds)
        try await fixture.pool.query(
            """
            UPDATE public.campaigns SET description = 'Ann''s campaign', budget = 1234.56, auto_managed = true,
                start_date = '2025-08-17', end_date = '2025-09-23', target_audience = '{"age": 33}'
            WHERE tenant_id = $1 AND created_by = $2
            """, binds)
        try await fixture.pool.query(
            """
            UPDATE public.ghl_opportunities SET contact_email = 'ann@example.com', contact_name = 'Ann', contact_phone = '+44 20 7946 0000',
                session_id = 'sess-ann', metadata = '{"phone": "+44"}', pipeline_stage = 'won', created_at = '2025-08-17 23:30:00+02'
            WHERE tenant_id = $1 AND user_id = $2
            """, binds)
    }

    static func erase(_ fixture: PrivacyFixture, tenant: UUID, subject: UUID) async throws -> DeletionCertificate {
        let requested = try await fixture.service.requestDeletion(tenant: tenant, subject: subject, actor: operatorActor)
        let id = try #require(UUID(uuidString: requested.request.id))
        _ = try await fixture.service.confirmDeletion(tenant: tenant, id: id, actor: operatorActor)
        return try await fixture.service.processDeletion(tenant: tenant, id: id).certificate
    }

    /// Rows of `table` with the given ids, as text columns.
    static func rows(_ fixture: PrivacyFixture, _ table: String, ids: [String], columns: String) async throws -> [PostgresRow] {
        try await fixture.pool.query(
            "SELECT \(columns) FROM \(table) WHERE id::text = ANY(string_to_array($1, ',')) ORDER BY id", [ids.joined(separator: ",")]
        ).rows
    }

    static func ids(_ fixture: PrivacyFixture, _ table: String, subjectColumn: String, tenant: UUID, subject: UUID) async throws -> [String]
    {
        try await fixture.pool.query(
            "SELECT id::text AS id FROM \(table) WHERE tenant_id = $1 AND \(subjectColumn) = $2 ORDER BY id", [tenant, subject]
        ).rows.map { try $0.decode("id") }
    }

    @Test(
        "erasure masks each seed column type as its policy says: keyed hash, null, fixed value, day/month/year, /24 and /48; the certificate verifies"
    )
    func erasure() async throws {
        try await PrivacyFixture.with(batchSize: 3, policies: Self.policies) { fixture in
            try await Self.prepare(fixture)
            let tenant = try await fixture.tenant()
            let other = try await fixture.tenant()
            // Four rounds in batches of three: the keyed path runs more than one batch.
            let user = try await fixture.subject(in: tenant, rounds: 4)
            let neighbour = try await fixture.subject(in: tenant, rounds: 1)
            let stranger = try await fixture.subject(in: other, rounds: 1)
            for (t, s) in [(tenant, user), (tenant, neighbour), (other, stranger)] { try await Self.fill(fixture, tenant: t, subject: s) }
            let neighbourBefore = try await fixture.snapshot(subject: neighbour, tenant: tenant)
            let key = try await Self.maskingKey(fixture, tenant: tenant, subject: user)
            let sessions = try await Self.ids(fixture, "public.builder_sessions", subjectColumn: "user_id", tenant: tenant, subject: user)
            let campaigns = try await Self.ids(fixture, "public.campaigns", subjectColumn: "created_by", tenant: tenant, subject: user)
            let opportunities = try await Self.ids(
                fixture, "public.ghl_opportunities", subjectColumn: "user_id", tenant: tenant, subject: user)
            #expect(sessions.count == 4 && campaigns.count == 4 && opportunities.count == 4)
            let tokens = try await Self.rows(fixture, "public.builder_sessions", ids: sessions, columns: "session_token").map {
                try $0.decode("session_token", as: String.self)
            }
            let names = try await Self.rows(fixture, "public.campaigns", ids: campaigns, columns: "name").map {
                try $0.decode("name", as: String.self)
            }
            let opportunityIDs = try await Self.rows(fixture, "public.ghl_opportunities", ids: opportunities, columns: "ghl_opportunity_id")
                .map { try $0.decode("ghl_opportunity_id", as: String.self) }

            let certificate = try await Self.erase(fixture, tenant: tenant, subject: user)
            #expect(certificate.verification.passed)
            #expect(certificate.verification.subjectKey == "destroyed")
            for table in ["public.builder_sessions", "public.campaigns", "public.ghl_opportunities"] {
                let entry = certificate.tables.first { $0.table == table }
                #expect(entry?.strategy == "anonymize" && entry?.rows == 4, "\(table): \(String(describing: entry))")
            }

            // builder_sessions: text (hmac, replace), inet (/24, /48), timestamptz (day, month; in UTC), integer and jsonb (replace).
            let session = try await Self.rows(
                fixture, "public.builder_sessions", ids: sessions,
                columns: """
                    user_id::text AS user_id, session_token, user_agent, ip_address::text AS ip, duration, step_data::text AS step_data,
                    to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS started, to_char(ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS ended
                    """)
            #expect(session.count == 4)
            for (row, token) in zip(session, tokens) {
                #expect(try row.decodeIfPresent("user_id", as: String.self) == nil)
                let hashed: String = try row.decode("session_token")
                #expect(hashed == Self.hmac(token, table: "public.builder_sessions", key: key))
                #expect(hashed != Hex.encode(SHA256.hash(Array(token.utf8))))
                #expect(hashed != Hex.encode(SHA256.hash(Array("\(tenant.lowercasedString):public.builder_sessions:\(token)".utf8))))
                #expect(try row.decode("user_agent", as: String.self) == "erased")
                #expect(try row.decode("duration", as: Int.self) == 0)
                #expect(try row.decode("step_data", as: String.self) == #"{"erased": true}"#)
                #expect(try row.decode("started", as: String.self) == "2025-08-17 00:00:00")  // 21:30 UTC on the 17th
                #expect(try row.decode("ended", as: String.self) == "2025-08-01 00:00:00")
            }
            #expect(Set(try session.map { try $0.decode("ip", as: String.self) }) == ["192.168.17.0/24", "2001:db8:abcd::/48"])

            // campaigns: text (hmac), numeric and boolean (replace), date (year, month), jsonb (redact), text (null).
            let campaign = try await Self.rows(
                fixture, "public.campaigns", ids: campaigns,
                columns: """
                    created_by::text AS created_by, name, description, budget::text AS budget, auto_managed,
                    start_date::text AS start_date, end_date::text AS end_date, target_audience::text AS audience
                    """)
            #expect(campaign.count == 4)
            for (row, name) in zip(campaign, names) {
                #expect(try row.decodeIfPresent("created_by", as: String.self) == nil)
                #expect(try row.decode("name", as: String.self) == Self.hmac(name, table: "public.campaigns", key: key))
                #expect(try row.decodeIfPresent("description", as: String.self) == nil)
                #expect(try row.decode("budget", as: String.self) == "0.00")
                #expect(try row.decode("auto_managed", as: Bool.self) == false)
                #expect(try row.decode("start_date", as: String.self) == "2025-01-01")
                #expect(try row.decode("end_date", as: String.self) == "2025-09-01")
                #expect(try row.decode("audience", as: String.self) == "{}")
            }

            // ghl_opportunities: varchar(255) and text (hmac); the same e-mail hashes alike within the subject's rows only.
            let opportunity = try await Self.rows(
                fixture, "public.ghl_opportunities", ids: opportunities,
                columns: """
                    ghl_opportunity_id, contact_email, session_id, contact_name, contact_phone, monetary_value::text AS value,
                    metadata::text AS metadata, pipeline_stage, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS created
                    """)
            let email = Self.hmac("ann@example.com", table: "public.ghl_opportunities", key: key)
            for (row, original) in zip(opportunity, opportunityIDs) {
                #expect(
                    try row.decode("ghl_opportunity_id", as: String.self)
                        == Self.hmac(original, table: "public.ghl_opportunities", key: key))
                #expect(try row.decode("contact_email", as: String.self) == email)
                #expect(try row.decode("session_id", as: String.self) == Self.hmac("sess-ann", table: "public.ghl_opportunities", key: key))
                #expect(try row.decode("contact_name", as: String.self) == "erased")
                #expect(try row.decodeIfPresent("contact_phone", as: String.self) == nil)
                #expect(try row.decode("value", as: String.self) == "0.00")
                #expect(try row.decode("metadata", as: String.self) == #"{"erased": true}"#)
                #expect(try row.decode("pipeline_stage", as: String.self) == "[redacted]")
                #expect(try row.decode("created", as: String.self) == "2025-01-01 00:00:00")
            }

            // The neighbour in the same tenant is untouched.
            #expect(try await fixture.snapshot(subject: neighbour, tenant: tenant) == neighbourBefore)

            // Another tenant's subject with the same e-mail: another key, another hash.
            let strangerKey = try await Self.maskingKey(fixture, tenant: other, subject: stranger)
            let strangerOpportunities = try await Self.ids(
                fixture, "public.ghl_opportunities", subjectColumn: "user_id", tenant: other, subject: stranger)
            _ = try await Self.erase(fixture, tenant: other, subject: stranger)
            let strangerEmail = try #require(
                try await Self.rows(fixture, "public.ghl_opportunities", ids: strangerOpportunities, columns: "contact_email").first
            )
            .decode("contact_email", as: String.self)
            #expect(strangerEmail == Self.hmac("ann@example.com", table: "public.ghl_opportunities", key: strangerKey))
            #expect(strangerEmail != email)

            // Shredded: the key the hashes were made with cannot be had any more, so a guess cannot be tested.
            let keyring = fixture.keyring
            await #expect(throws: KeyringError.self) {
                _ = try await fixture.pool.transaction { try keyring.subjectKey(tenant, user: user, create: false, in: $0) }
            }
        }
    }

    @Test("retention masks each subject's expired rows under that subject's own key; the subjects stay registered")
    func retention() async throws {
        try await PrivacyFixture.with(batchSize: 3, policies: Self.policies) { fixture in
            try await Self.prepare(fixture)
            let tenant = try await fixture.tenant()
            let ann = try await fixture.subject(in: tenant, rounds: 2)
            let bob = try await fixture.subject(in: tenant, rounds: 2)
            let young = try await fixture.subject(in: tenant, rounds: 1)
            for subject in [ann, bob, young] { try await Self.fill(fixture, tenant: tenant, subject: subject) }
            try await fixture.pool.query(
                "UPDATE public.user_privacy_settings SET data_retention_days = 30 WHERE tenant_id = $1 AND user_id <> $2", [tenant, young])
            try await fixture.pool.query(
                "UPDATE public.ghl_opportunities SET created_at = now() - interval '40 days' WHERE tenant_id = $1", [tenant])
            let youngBefore = try await fixture.rows(of: young, in: tenant)["public.ghl_opportunities"]
            let ids = [
                ann: try await Self.ids(fixture, "public.ghl_opportunities", subjectColumn: "user_id", tenant: tenant, subject: ann),
                bob: try await Self.ids(fixture, "public.ghl_opportunities", subjectColumn: "user_id", tenant: tenant, subject: bob),
            ]
            let sweeps = try await fixture.service.sweepRetention(tenant: tenant, actor: operatorActor)
            #expect(
                sweeps.contains(
                    RetentionSweep(
                        tenant: tenant.lowercasedString, table: "public.ghl_opportunities", basis: "subject", strategy: "anonymize", rows: 4
                    )))
            var hashes: [UUID: String] = [:]
            for subject in [ann, bob] {
                let key = try await Self.maskingKey(fixture, tenant: tenant, subject: subject)
                let rows = try await Self.rows(
                    fixture, "public.ghl_opportunities", ids: ids[subject]!, columns: "user_id::text AS u, contact_email")
                #expect(rows.count == 2)
                for row in rows {
                    #expect(try row.decodeIfPresent("u", as: String.self) == nil)
                    #expect(
                        try row.decode("contact_email", as: String.self)
                            == Self.hmac("ann@example.com", table: "public.ghl_opportunities", key: key))
                }
                hashes[subject] = try rows[0].decode("contact_email")
            }
            #expect(hashes[ann] != hashes[bob])
            // The subject whose own setting keeps rows longer is untouched.
            #expect(try await fixture.rows(of: young, in: tenant)["public.ghl_opportunities"] == youngBefore)
        }
    }

    /// campaigns anonymised with its subject column kept: the statement runs once per run (its rows keep matching).
    static let keepingSubject: PolicySet = {
        let directory = TestDatabase.repositoryPolicies.path
        let names = try! FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.sorted()
        return try! PolicySet.load(
            sources: names.map { name in
                var text = try! String(contentsOfFile: (directory as NSString).appendingPathComponent(name), encoding: .utf8)
                if name == "campaigns.yaml" {
                    text = text.replacingOccurrences(
                        of: "  erasure: delete\n", with: "  erasure: anonymize\n  anonymize:\n    name: hmac\n\n")
                }
                return PolicySource(file: "policies/\(name)", text: text)
            })
    }()

    @Test("an erasure interrupted after an anonymisation that keeps the subject column, then retried, hashes each hmac value once")
    func resumedErasureHashesOnce() async throws {
        try await PrivacyFixture.with(batchSize: 3, policies: Self.keepingSubject) { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 2)
            let key = try await Self.maskingKey(fixture, tenant: tenant, subject: user)
            let campaigns = try await Self.ids(fixture, "public.campaigns", subjectColumn: "created_by", tenant: tenant, subject: user)
            #expect(campaigns.count == 2)
            let names = try await Self.rows(fixture, "public.campaigns", ids: campaigns, columns: "name").map {
                try $0.decode("name", as: String.self)
            }
            // Rows that keep their subject column would go with the subject's registration (ON DELETE CASCADE):
            // this throwaway database keeps them, so the hashes can be read after the erasure.
            try await fixture.pool.query(
                """
                DO $$ DECLARE c text; BEGIN
                    FOR c IN SELECT conname FROM pg_constraint WHERE conrelid = 'public.campaigns'::regclass AND contype = 'f' LOOP
                        EXECUTE format('ALTER TABLE public.campaigns DROP CONSTRAINT %I', c);
                    END LOOP;
                END $$
                """)
            // The run dies after every table committed, in its last transaction (removing the subject's registration).
            try await fixture.pool.query(
                """
                CREATE FUNCTION public.pgw_test_interrupt() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'interrupted'; END $$
                """)
            try await fixture.pool.query(
                "CREATE TRIGGER pgw_test_interrupt BEFORE DELETE ON auth.users FOR EACH ROW EXECUTE FUNCTION public.pgw_test_interrupt()")
            let requested = try await fixture.service.requestDeletion(tenant: tenant, subject: user, actor: operatorActor)
            let id = try #require(UUID(uuidString: requested.request.id))
            _ = try await fixture.service.confirmDeletion(tenant: tenant, id: id, actor: operatorActor)
            await #expect(throws: (any Error).self) { try await fixture.service.processDeletion(tenant: tenant, id: id) }
            let once = try await Self.rows(fixture, "public.campaigns", ids: campaigns, columns: "name").map {
                try $0.decode("name", as: String.self)
            }
            #expect(once == names.map { Self.hmac($0, table: "public.campaigns", key: key) })

            try await fixture.pool.query("DROP TRIGGER pgw_test_interrupt ON auth.users")
            try await fixture.service.fail(.deletion, tenant: tenant, id: id, reason: "interrupted")
            _ = try await fixture.service.retry(.deletion, tenant: tenant, id: id, subject: nil, actor: operatorActor)
            let certificate = try await fixture.service.processDeletion(tenant: tenant, id: id).certificate
            let after = try await Self.rows(fixture, "public.campaigns", ids: campaigns, columns: "name").map {
                try $0.decode("name", as: String.self)
            }
            #expect(after == once, "the resumed run hashed the hashes again")
            #expect(certificate.tables.first { $0.table == "public.campaigns" }?.rows == 2)
            #expect(certificate.verification.subjectKey == "destroyed")
        }
    }
}
