import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Keyring
import Policy
import Postgres
import Privacy
import Secrets
import Sodium
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// Issue 12, item 9: no secret is stored in plaintext. Migration 0014 drops the legacy
/// `tenants.jwt_secret` column, refusing while a plaintext secret is left, and a scripted
/// workload leaves none of its secrets readable in any column of any table.
@Suite("No secret in plaintext at rest")
struct PlaintextAtRestTests {
    /// Quotes an identifier read from the catalogue.
    private static func quoted(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Every (schema.table.column) of a text-like, JSON, array or bytea type whose value contains
    /// `needle` (for bytea: its UTF-8 bytes), and how many columns were searched.
    static func scan(_ pool: ConnectionPool, for needle: String) async throws -> (hits: [String], columns: Int) {
        let columns = try await pool.query(
            """
            SELECT c.table_schema, c.table_name, c.column_name, c.data_type
            FROM information_schema.columns c
            JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
              AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY', 'bytea', 'USER-DEFINED')
            ORDER BY 1, 2, 3
            """
        ).rows
        var hits: [String] = []
        for row in columns {
            let schema: String = try row.decode("table_schema"), table: String = try row.decode("table_name")
            let column: String = try row.decode("column_name"), type: String = try row.decode("data_type")
            let target = "\(quoted(schema)).\(quoted(table))"
            let condition =
                type == "bytea"
                ? "position(convert_to($1, 'UTF8') in \(quoted(column))) > 0"
                : "strpos(\(quoted(column))::text, $1) > 0"
            let count = try await pool.query("SELECT count(*) AS n FROM \(target) WHERE \(condition)", [needle]).first!.decode(
                "n", as: Int.self)
            if count > 0 { hits.append("\(schema).\(table).\(column)") }
        }
        return (hits, columns.count)
    }

    @Test("after a workload (tenant with a JWT secret, service key, secrets written and read, settings changed) no column holds a secret")
    func scriptedWorkload() async throws {
        try await AuthFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let auditKeys = try AuditKeys(rootKey: f.keyring.serviceMaster)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plaintext-scan-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let privacy = PrivacyService(
                pool: f.owner, graph: try await SubjectGraph.load(policies: policies, pool: f.owner),
                audit: AuditAppender(pool: f.owner, keys: auditKeys), signingKey: try Ed25519.SigningKey.generate(),
                tokenKey: try SecureBytes(count: 32),
                configuration: PrivacyConfiguration(
                    policyVersion: try PrivacyConfiguration.policyVersion(directory: TestDatabase.repositoryPolicies.path),
                    exportDirectory: directory.path))
            let audit = AuditAppender(pool: f.gateway, keys: auditKeys)
            let services = GatewayServices(
                pool: f.gateway, policies: policies, authenticator: f.authenticator,
                readiness: try Readiness(pool: f.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: audit, secrets: SecretStore(pool: f.gateway, keyring: f.keyring, audit: audit, auditKeys: auditKeys),
                auditKeys: auditKeys, privacy: privacy)

            // As privacyctl does it: audited, sealed with the keyring.
            let operatorAuditing = AdminAuditing(appender: AuditAppender(pool: f.owner, keys: auditKeys), actor: "privacyctl")
            let jwtSecret = "jwt-" + AuthFixture.secret()
            let tenant = try await TenantRegistry(pool: f.owner, auditing: operatorAuditing, keyring: f.keyring)
                .create(name: "scan-tenant", jwtSecret: jwtSecret)
            let (_, apikey) = try await ServiceKeyRegistry(pool: f.owner, rootKey: f.rootKey, auditing: operatorAuditing)
                .create(tenant: tenant.id, scopes: [.secretsRead, .secretsWrite, .privacyExport, .privacyErase, .dataRead], name: "scan")
            let user = UUID()
            let jwt = try await Tokens.hs256(claims: Tokens.user(user), secret: jwtSecret)
            let values = ["sk-live-" + AuthFixture.secret(), "ghp_" + AuthFixture.secret(), "second version " + AuthFixture.secret()]

            try await Application(router: GatewayApplication.router(services: services)).test(.router) { client in
                let headers: HTTPFields = [.apikey: apikey, .authorization: "Bearer \(jwt)", .contentType: "application/json"]
                for (service, value) in [("openai", values[0]), ("github", values[1]), ("openai", values[2])] {
                    let status = try await client.execute(
                        uri: "/v1/secrets/\(service)", method: .put, headers: headers,
                        body: ByteBuffer(string: #"{"value": "\#(value)"}"#)
                    ) { $0.status }
                    #expect(status == .ok || status == .created, "PUT \(service): \(status)")
                }
                let read = try await client.execute(uri: "/v1/secrets/openai", method: .get, headers: headers) { String(buffer: $0.body) }
                #expect(read.contains(values[2]))
                let settings = try await client.execute(
                    uri: "/v1/privacy/settings", method: .put, headers: headers,
                    body: ByteBuffer(string: #"{"marketing_consent": true, "data_retention_days": 400}"#)
                ) { $0.status }
                #expect(settings == .ok)
            }

            // The scan works: it finds a value that is meant to be stored in clear.
            let control = try await Self.scan(f.owner, for: "scan-tenant")
            #expect(control.hits.contains("public.tenants.name"))
            #expect(control.columns > 50)

            // `pgw_<id hex>_<base64url of 32 random bytes>`: the secret part may itself hold `_`,
            // so it is everything after the second one (a short tail would match random bytes).
            let secretPart = String(apikey.split(separator: "_", maxSplits: 2)[2])
            #expect(secretPart.count == 43)
            for (label, needle) in [("JWT secret", jwtSecret), ("service key", apikey), ("service key secret part", secretPart)]
                + values.map({ ("secret value", $0) })
            {
                let found = try await Self.scan(f.owner, for: needle)
                #expect(found.hits.isEmpty, "\(label) found in \(found.hits)")
            }
        }
    }

    @Test("migration 0014 refuses while a tenant holds a plaintext JWT secret; seal-secrets seals it, then the column is dropped")
    func legacyColumn() async throws {
        try await TestDatabase.withFreshDatabase { owner in
            let pool = ConnectionPool(configuration: owner, options: .init(maxConnections: 2))
            defer { pool.close() }
            // The database as it was before 0014, with a secret stored the old way.
            let older = FileManager.default.temporaryDirectory.appendingPathComponent("migrations-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: older, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: older) }
            for file in try FileManager.default.contentsOfDirectory(atPath: TestDatabase.repositoryMigrations.path)
            where file.hasSuffix(".sql") && (Int(file.prefix(4)) ?? 9999) < 14 {
                try FileManager.default.copyItem(
                    at: TestDatabase.repositoryMigrations.appendingPathComponent(file), to: older.appendingPathComponent(file))
            }
            try await MigrationRunner(directory: older, pool: pool).migrate()
            let secret = "legacy-" + AuthFixture.secret()
            let tenant: UUID = try await pool.query(
                "INSERT INTO public.tenants (name, jwt_secret) VALUES ('legacy', $1) RETURNING id", [secret]
            ).first!.decode("id")

            let current = MigrationRunner(directory: TestDatabase.repositoryMigrations, pool: pool)
            let refused = await #expect(throws: PostgresError.self) { _ = try await current.migrate() }
            #expect(refused?.description.contains("privacyctl tenant seal-secrets") == true, "\(String(describing: refused))")
            #expect(
                try await pool.query("SELECT jwt_secret FROM public.tenants WHERE id = $1", [tenant]).first?.decode(
                    "jwt_secret", as: String.self) == secret)

            let keyring = try await Keyring.open(pool: pool, root: .key(try SecureBytes(count: 32)))
            let registry = TenantRegistry(
                pool: pool, auditing: AdminAuditing(appender: AuditAppender(pool: pool), actor: "privacyctl"), keyring: keyring)
            #expect(try await registry.sealPlaintextSecrets() == 1)
            #expect(try await registry.sealPlaintextSecrets() == 0)
            _ = try await current.migrate()
            #expect(try await registry.sealPlaintextSecrets() == 0)  // the column is gone: nothing to do
            let columns = try await pool.query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'tenants'"
            ).rows.map { try $0.decode("column_name", as: String.self) }
            #expect(!columns.contains("jwt_secret") && columns.contains("jwt_secret_sealed"))
            let actions = try await AuditReader.entries(pool: pool, tenant: tenant).map(\.action)
            #expect(actions == ["tenant.jwt_sealed"])

            // The sealed secret still verifies the tenant's tokens.
            let rootKey = try SecureBytes(count: 32)
            let (_, apikey) = try await ServiceKeyRegistry(pool: pool, rootKey: rootKey).create(
                tenant: tenant, scopes: [.dataRead], name: nil)
            let authenticator = try RequestAuthenticator(pool: pool, rootKey: rootKey, keyring: keyring)
            let token = try await Tokens.hs256(claims: Tokens.user(), secret: secret)
            #expect(try await authenticator.authenticate(apikey: apikey, authorization: "Bearer \(token)").role == .authenticated)
        }
    }
}
