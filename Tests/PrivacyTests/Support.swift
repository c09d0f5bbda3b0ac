import Audit
import Foundation
import Keyring
import Policy
import Postgres
import Privacy
import Sodium
import TestSupport
import Testing

/// A database, the Privacy service over it, and helpers to fill it.
struct PrivacyFixture {
    let owner: PostgresConfiguration
    let pool: ConnectionPool
    let service: PrivacyService
    let signingKey: Ed25519.SigningKey
    let rootKey: SecureBytes
    let keyring: Keyring
    let directory: URL

    static let policies: PolicySet = try! PolicySet.load(directory: TestDatabase.repositoryPolicies.path)

    /// `policies`: the repository's unless a test governs the tables differently (e.g. other erasure strategies).
    static func with<T>(batchSize: Int = 3, policies: PolicySet = Self.policies, _ body: (PrivacyFixture) async throws -> T) async throws
        -> T
    {
        try await TestDatabase.withMigratedDatabase { owner in
            let pool = ConnectionPool(configuration: owner, options: .init(maxConnections: 4))
            // The service runs as the gateway runs it: on the gateway's own login, as the privacy
            // worker role — never as the owner, who would pass every policy.
            let servicePool = ConnectionPool(configuration: TestDatabase.gateway(owner), options: .init(maxConnections: 4))
            defer {
                servicePool.close()
                pool.close()
            }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("privacy-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let rootKey = try SecureBytes(count: 32)
            let signingKey = try Ed25519.SigningKey.generate()
            var configuration = PrivacyConfiguration(
                policyVersion: try PrivacyConfiguration.policyVersion(directory: TestDatabase.repositoryPolicies.path),
                exportDirectory: directory.appendingPathComponent("exports").path)
            configuration.batchSize = batchSize
            configuration.encryptionLimits = .testing
            let graph = try await SubjectGraph.load(policies: policies, pool: servicePool)
            let keyring = try await Keyring.open(pool: pool, root: .key(rootKey))
            let service = PrivacyService(
                pool: servicePool, graph: graph, audit: AuditAppender(pool: servicePool, keys: try AuditKeys(rootKey: rootKey)),
                signingKey: signingKey, tokenKey: try SecureBytes(count: 32), keyring: keyring, configuration: configuration)
            return try await body(
                PrivacyFixture(
                    owner: owner, pool: pool, service: service, signingKey: signingKey, rootKey: rootKey, keyring: keyring,
                    directory: directory))
        }
    }

    func tenant() async throws -> UUID {
        let id = UUID()
        try await pool.query("INSERT INTO public.tenants (id, name) VALUES ($1, $2)", [id, "t-\(id.uuidString.prefix(8))"])
        return id
    }

    /// A subject with `rounds` rows in every table that has a subject (and a live DEK).
    func subject(in tenant: UUID, rounds: Int = 2) async throws -> UUID {
        let user = UUID()
        try await pool.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant])
        let keyring = self.keyring
        _ = try await pool.transaction { try keyring.subjectKey(tenant, user: user, create: true, in: $0) }
        try await pool.query(
            "INSERT INTO public.profiles (id, tenant_id, email, full_name) VALUES ($2, $1, 'a@example.com', E'Ann \"A\", tab\\there')",
            [tenant, user])
        try await pool.query("INSERT INTO public.user_preferences (tenant_id, user_id) VALUES ($1, $2)", [tenant, user])
        try await pool.query("INSERT INTO public.user_privacy_settings (tenant_id, user_id) VALUES ($1, $2)", [tenant, user])
        try await pool.query(
            "INSERT INTO public.data_export_requests (tenant_id, user_id, status) VALUES ($1, $2, 'completed')", [tenant, user])
        try await pool.query(
            "INSERT INTO public.data_deletion_requests (tenant_id, user_id, status) VALUES ($1, $2, 'canceled')", [tenant, user])
        for round in 0..<rounds {
            let tag = "r\(round)-\(user.uuidString.prefix(8))"
            let statements: [String] = [
                "INSERT INTO public.user_secrets (tenant_id, user_id, service_name, encrypted_value, initialization_vector) VALUES ($1, $2, 'svc-' || $3, '\\x00112233445566778899aabbccddeeff00'::bytea, decode(repeat('ab', 24), 'hex'))",
                "INSERT INTO public.user_secret_versions (tenant_id, secret_id, user_id, version, encrypted_value, initialization_vector, key_version, created_at) SELECT $1, id, $2, 1, encrypted_value, initialization_vector, 1, now() FROM public.user_secrets WHERE tenant_id = $1 AND user_id = $2 AND service_name = 'svc-' || $3",
                "INSERT INTO public.projects (tenant_id, user_id, name, type) VALUES ($1, $2, E'project, \"one\"\\nline two ' || $3, 'website')",
                "INSERT INTO public.sitemaps (tenant_id, project_id, title) SELECT $1, id, 'map ' || $3 FROM public.projects WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, id LIMIT 1",
                "INSERT INTO public.wireframes (tenant_id, sitemap_id, title) SELECT $1, s.id, 'wf ' || $3 FROM public.sitemaps s JOIN public.projects p ON p.id = s.project_id WHERE p.tenant_id = $1 AND p.user_id = $2 ORDER BY s.created_at, s.id LIMIT 1",
                "INSERT INTO public.style_guides (tenant_id, wireframe_id, title) SELECT $1, w.id, 'sg ' || $3 FROM public.wireframes w JOIN public.sitemaps s ON s.id = w.sitemap_id JOIN public.projects p ON p.id = s.project_id WHERE p.tenant_id = $1 AND p.user_id = $2 ORDER BY w.created_at, w.id LIMIT 1",
                "INSERT INTO public.version_history (tenant_id, entity_type, entity_id, version_number, user_id, changes) VALUES ($1, 'project', gen_random_uuid(), 1, $2, '{\"a\": [1, \"x\\\\y\"]}')",
                "INSERT INTO public.builder_sessions (tenant_id, user_id, session_token) VALUES ($1, $2, 'tok-' || $3 || gen_random_uuid())",
                "INSERT INTO public.ai_assistant_sessions (tenant_id, user_id, session_id) VALUES ($1, $2, 'sess-' || $3 || gen_random_uuid())",
                "INSERT INTO public.optimizations (tenant_id, user_id) VALUES ($1, $2)",
                "INSERT INTO public.chat_sessions (tenant_id, user_id) VALUES ($1, $2)",
                "INSERT INTO public.chat_messages (tenant_id, session_id, user_id, role, content) SELECT $1, id, $2, 'user', 'hello ' || $3 FROM public.chat_sessions WHERE tenant_id = $1 AND user_id = $2 LIMIT 1",
                "INSERT INTO public.ai_threads (tenant_id, user_id, openai_thread_id, optimization_id) SELECT $1, $2, 'th-' || $3, id FROM public.optimizations WHERE tenant_id = $1 AND user_id = $2 LIMIT 1",
                "INSERT INTO public.content_modifications (tenant_id, user_id, optimization_id, operation, field_path, message_id) SELECT $1, $2, o.id, 'replace', 'a.b', (SELECT id FROM public.chat_messages WHERE tenant_id = $1 AND user_id = $2 LIMIT 1) FROM public.optimizations o WHERE o.tenant_id = $1 AND o.user_id = $2 LIMIT 1",
                "INSERT INTO public.style_customization_history (tenant_id, user_id, optimization_id, customization_type, changes) SELECT $1, $2, id, 'color', '{\"c\": 1}' FROM public.optimizations WHERE tenant_id = $1 AND user_id = $2 LIMIT 1",
                "INSERT INTO public.job_drafts (tenant_id, user_id, title, generated_skills) VALUES ($1, $2, 'job ' || $3, ARRAY['swift', 'sql, \"quoted\"'])",
                "INSERT INTO public.analytics (tenant_id, user_id, session_id, event_type, event_data, job_draft_id) SELECT $1, $2, 's-' || $3, 'view', '{\"page\": \"/x\"}', id FROM public.job_drafts WHERE tenant_id = $1 AND user_id = $2 LIMIT 1",
                "INSERT INTO public.ghl_opportunities (tenant_id, user_id, ghl_opportunity_id, monetary_value) VALUES ($1, $2, 'g-' || $3, 12.50)",
                "INSERT INTO public.brands (tenant_id, user_id, name) VALUES ($1, $2, 'brand ' || $3)",
                "INSERT INTO public.conversation_sessions (tenant_id, brand_id, user_id) SELECT $1, id, $2 FROM public.brands WHERE tenant_id = $1 AND user_id = $2 LIMIT 1",
                "INSERT INTO public.conversation_messages (tenant_id, session_id, brand_id, user_id, role, content) SELECT $1, id, brand_id, $2, 'user', 'hi ' || $3 FROM public.conversation_sessions WHERE tenant_id = $1 AND user_id = $2 LIMIT 1",
                "INSERT INTO public.campaigns (tenant_id, created_by, name) VALUES ($1, $2, 'camp ' || $3)",
                "INSERT INTO public.campaign_tasks (tenant_id, campaign_id, created_by, title) SELECT $1, id, $2, 'task ' || $3 FROM public.campaigns WHERE tenant_id = $1 AND created_by = $2 LIMIT 1",
                "INSERT INTO public.content_calendar (tenant_id, created_by, title) VALUES ($1, $2, 'cal ' || $3)",
                "INSERT INTO public.leads (tenant_id, created_by, email, tags) VALUES ($1, $2, 'lead@example.com', ARRAY['a'])",
                "INSERT INTO public.lead_activities (tenant_id, lead_id, activity_type) SELECT $1, id, 'call ' || $3 FROM public.leads WHERE tenant_id = $1 AND created_by = $2 LIMIT 1",
                "INSERT INTO public.support_tickets (tenant_id, user_id, subject, message) VALUES ($1, $2, 'help ' || $3, E'multi\\nline \\\\ backslash é ✓')",
            ]
            for sql in statements {
                // An unused parameter has no type Postgres could infer: bind only what the statement uses.
                try await pool.query(sql, sql.contains("$3") ? [tenant, user, tag] : [tenant, user])
            }
        }
        return user
    }

    /// The archive of export `id` as its subject gets it: opened with the key derived from their
    /// data key into a plain tar (from `path`, default the export directory). Returns its path.
    func decryptedArchive(_ id: UUID, tenant: UUID, subject: UUID, from path: String? = nil) async throws -> String {
        let keyring = self.keyring
        let key = try await pool.transaction { try keyring.subjectKey(tenant, user: subject, create: false, in: $0) }
        let handle = try #require(FileHandle(forReadingAtPath: path ?? service.archivePath(id)))
        let reader = try ArchiveEncryption.AtRestReader(handle: handle, key: try ArchiveEncryption.atRestKey(subjectKey: try #require(key)))
        defer { reader.close() }
        let plain = directory.appendingPathComponent("\(id.uuidString)-\(UUID().uuidString).tar").path
        try reader.decrypt(to: plain)
        return plain
    }

    /// Every subject table's rows of the subject, as `row_to_json` text, per table (the ground truth).
    func rows(of subject: UUID, in tenant: UUID) async throws -> [String: [String]] {
        var result: [String: [String]] = [:]
        for node in service.graph.nodes {
            let predicate = try service.graph.predicate(node.table, tenant: "$1", subject: "$2")
            result[node.qualifiedName] = try await pool.query(
                "SELECT row_to_json(t0)::text AS j FROM \(node.table.quotedName) t0 WHERE \(predicate) ORDER BY 1", [tenant, subject]
            ).rows.map { try $0.decode("j", as: String.self) }
        }
        return result
    }

    /// A byte-exact picture of every governed table's rows of a tenant, plus its keys.
    func snapshot(tenant: UUID) async throws -> [String: [String]] {
        var result: [String: [String]] = [:]
        for table in Self.policies.tables {
            result[table.qualifiedName] = try await pool.query(
                "SELECT row_to_json(t)::text AS j FROM \(table.quotedName) t WHERE tenant_id = $1 ORDER BY 1", [tenant]
            ).rows.map { try $0.decode("j", as: String.self) }
        }
        result["keyring.subject_keys"] = try await pool.query(
            "SELECT row_to_json(k)::text AS j FROM keyring.subject_keys k WHERE tenant_id = $1 ORDER BY 1", [tenant]
        ).rows.map { try $0.decode("j", as: String.self) }
        return result
    }

    /// A user's rows only (for the "untouched" check within one tenant).
    func snapshot(subject: UUID, tenant: UUID) async throws -> [String: [String]] {
        var result = try await rows(of: subject, in: tenant)
        result["keyring.subject_keys"] = try await pool.query(
            "SELECT row_to_json(k)::text AS j FROM keyring.subject_keys k WHERE tenant_id = $1 AND user_id = $2", [tenant, subject]
        ).rows.map { try $0.decode("j", as: String.self) }
        return result
    }
}

let operatorActor = PrivacyActor("privacyctl")

func readArchive(_ path: String) throws -> [String: [UInt8]] {
    let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    var files: [String: [UInt8]] = [:]
    for entry in try TarReader.entries(data) { files[entry.name] = entry.content }
    return files
}
