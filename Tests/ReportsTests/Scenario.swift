import Audit
import Foundation
import Postgres
import Sodium
import TestSupport
import Testing

@testable import Privacy
@testable import Reports

/// A seeded tenant whose report figures are counted by hand in the comments below.
///
/// Requests (period from 2026-01-01 to now):
///
/// | id | kind     | received         | due        | extended to | completed        | status     |
/// |----|----------|------------------|------------|-------------|------------------|------------|
/// | E0 | export   | 2025-11-01 10:00 | 2025-12-01 |             | 2025-11-10       | completed  | ← before the period
/// | E1 | export   | 2026-01-05 10:00 | 2026-02-05 |             | 2026-01-15 10:00 | completed  | 10 d, on time
/// | E2 | export   | 2026-01-10 10:00 | 2026-02-10 |             | 2026-02-20 10:00 | completed  | 41 d, 10 d late
/// | D3 | deletion | 2026-01-20 00:00 | 2026-02-20 | 2026-03-20  | 2026-03-25 00:00 | completed  | 64 d, 5 d late; odd certificate
/// | D1 | deletion | 2026-02-01 00:00 | 2026-03-01 | 2026-04-01  | 2026-03-15 00:00 | completed  | 42 d, on time (extended); certificate
/// | E3 | export   | 2026-03-01 00:00 | 2026-04-01 |             |                  | processing | overdue
/// | D2 | deletion | 2026-03-05 00:00 | 2026-04-05 |             |                  | denied     |
struct Scenario: Sendable {
    let ownerConfiguration: PostgresConfiguration
    let owner: ConnectionPool
    let gateway: ConnectionPool
    let tenant: UUID
    let keys: AuditKeys
    let appender: AuditAppender
    let signingKey: Ed25519.SigningKey
    /// The checkpoint keys an auditor pins: the scenario's signing key.
    var trustedKeys: [String: [UInt8]] { AuditCheckpoint.trustedKeys([signingKey.publicKey]) }
    let alice: UUID, bob: UUID, carol: UUID
    let serviceKey: UUID
    let requests: [String: UUID]

    static let since = ReportDate.parse("2026-01-01")!

    static func with(_ body: (Scenario) async throws -> Void) async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let ownerPool = ConnectionPool(configuration: owner, options: .init(maxConnections: 2))
            let gatewayPool = ConnectionPool(configuration: TestDatabase.gateway(owner), options: .init(maxConnections: 4))
            defer {
                ownerPool.close()
                gatewayPool.close()
            }
            let keys = try AuditKeys(rootKey: try SecureBytes(count: 32))
            let tenant: UUID = try await ownerPool.query(
                "INSERT INTO public.tenants (name) VALUES ($1) RETURNING id", ["report-" + UUID().uuidString]
            ).first!.decode("id")
            let scenario = Scenario(
                ownerConfiguration: owner, owner: ownerPool, gateway: gatewayPool, tenant: tenant, keys: keys,
                appender: AuditAppender(pool: gatewayPool, keys: keys), signingKey: try Ed25519.SigningKey.generate(),
                alice: UUID(), bob: UUID(), carol: UUID(), serviceKey: UUID(),
                requests: Dictionary(uniqueKeysWithValues: ["E0", "E1", "E2", "E3", "D1", "D2", "D3"].map { ($0, UUID()) }))
            try await scenario.seed()
            try await body(scenario)
        }
    }

    /// D1's certificate: Privacy's own type, signed with the scenario's signing key.
    func certificate() throws -> DeletionCertificate {
        try DeletionCertificate(
            requestID: requests["D1"]!.uuidString.lowercased(), tenant: tenant.uuidString.lowercased(),
            subject: alice.uuidString.lowercased(), policyVersion: "sha256:test", requestedAt: "2026-02-01T00:00:00Z",
            completedAt: "2026-03-15T00:00:00Z",
            tables: [
                .init(table: "public.user_secrets", strategy: "delete", rows: 3, ground: nil),
                .init(table: "public.user_privacy_settings", strategy: "delete", rows: 1, ground: nil),
                .init(table: "public.data_deletion_requests", strategy: "retain", rows: 1, ground: nil),
            ],
            verification: .init(passed: true, remaining: [:], subjectKey: "destroyed", subjectRegistered: false),
            auditHead: .init(seq: 12, hash: "ab12"), keyID: Hex.encode(SHA256.hash(signingKey.publicKey)),
            publicKey: Hex.encode(signingKey.publicKey), archivesRemoved: [], signature: nil
        ).signed(with: signingKey)
    }

    static func canonical(_ certificate: DeletionCertificate) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(certificate)
    }

    private func seed() async throws {
        let t = tenant
        for user in [alice, bob, carol] {
            _ = try await owner.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, t])
        }
        func request(
            _ name: String, _ table: String, status: String, requested: String, due: String, extended: String? = nil,
            reason: String? = nil, completed: String? = nil, certificate: String? = nil, signature: [UInt8]? = nil
        ) async throws {
            let certificateColumns = table == "data_deletion_requests" ? ", certificate, certificate_signature" : ""
            let certificateValues = table == "data_deletion_requests" ? ", $10::jsonb, $11" : ""
            var binds: [any PostgresEncodable] = [requests[name]!, t, alice, status, requested, due, extended, reason, completed]
            if table == "data_deletion_requests" {
                binds += [certificate, signature]
            }
            // The table name comes from this file, never from input.
            _ = try await owner.query(
                """
                INSERT INTO public.\(table) (id, tenant_id, user_id, status, requested_at, due_at, extended_due_at, extension_reason,
                                             extended_at, completed_at\(certificateColumns))
                VALUES ($1, $2, $3, $4, $5::timestamptz, $6::timestamptz, $7::timestamptz, $8,
                        CASE WHEN $7::timestamptz IS NULL THEN NULL ELSE $5::timestamptz + interval '10 days' END,
                        $9::timestamptz\(certificateValues))
                """, binds)
        }
        let export = "data_export_requests", deletion = "data_deletion_requests"
        try await request(
            "E0", export, status: "completed", requested: "2025-11-01T10:00:00Z", due: "2025-12-01T10:00:00Z",
            completed: "2025-11-10T10:00:00Z")
        try await request(
            "E1", export, status: "completed", requested: "2026-01-05T10:00:00Z", due: "2026-02-05T10:00:00Z",
            completed: "2026-01-15T10:00:00Z")
        try await request(
            "E2", export, status: "completed", requested: "2026-01-10T10:00:00Z", due: "2026-02-10T10:00:00Z",
            completed: "2026-02-20T10:00:00Z")
        try await request(
            "D3", deletion, status: "completed", requested: "2026-01-20T00:00:00Z", due: "2026-02-20T00:00:00Z",
            extended: "2026-03-20T00:00:00Z", reason: "awaiting identity documents", completed: "2026-03-25T00:00:00Z",
            certificate: #"{"format": "draft-0", "note": "unknown shape"}"#)
        try await request(
            "D1", deletion, status: "completed", requested: "2026-02-01T00:00:00Z", due: "2026-03-01T00:00:00Z",
            extended: "2026-04-01T00:00:00Z", reason: "14 linked accounts to trace", completed: "2026-03-15T00:00:00Z",
            certificate: String(decoding: try Self.canonical(try certificate()), as: UTF8.self),
            signature: Hex.decode(try certificate().signature!))
        try await request("E3", export, status: "processing", requested: "2026-03-01T00:00:00Z", due: "2026-04-01T00:00:00Z")
        try await request("D2", deletion, status: "denied", requested: "2026-03-05T00:00:00Z", due: "2026-04-05T00:00:00Z")

        // Secrets: openai (used 10 days ago, key v2), github (used 120 days ago), stripe (never used, updated 200 days ago),
        // legacy (deleted). Unused 90+: github, stripe.
        func secret(_ service: String, keyVersion: Int, lastUsedDaysAgo: Int?, updatedDaysAgo: Int, deleted: Bool = false) async throws {
            _ = try await owner.query(
                """
                INSERT INTO public.user_secrets (tenant_id, user_id, service_name, encrypted_value, initialization_vector, key_version,
                                                 updated_at, last_used_at, deleted_at)
                VALUES ($1, $2, $3, $4, $5, $6, now() - make_interval(days => $7::int),
                        now() - make_interval(days => $8::int), CASE WHEN $9::bool THEN now() ELSE NULL END)
                """,
                [
                    t, alice, service, [UInt8](repeating: 1, count: 32), [UInt8](repeating: 2, count: 24), keyVersion, updatedDaysAgo,
                    lastUsedDaysAgo, deleted,
                ])
        }
        try await secret("openai", keyVersion: 2, lastUsedDaysAgo: 10, updatedDaysAgo: 300)
        try await secret("github", keyVersion: 1, lastUsedDaysAgo: 120, updatedDaysAgo: 300)
        try await secret("stripe", keyVersion: 1, lastUsedDaysAgo: nil, updatedDaysAgo: 200)
        try await secret("legacy", keyVersion: 1, lastUsedDaysAgo: nil, updatedDaysAgo: 400, deleted: true)

        // Keyring: tenant key v1 (retired) and v2; alice's subject key under v2, bob's shredded under v1.
        _ = try await owner.query("INSERT INTO keyring.root_keys (version, fingerprint) VALUES (1, $1)", [[UInt8](repeating: 9, count: 32)])
        for (version, created, retired) in [
            (1, "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z" as String?), (2, "2026-06-01T00:00:00Z", nil),
        ] {
            _ = try await owner.query(
                """
                INSERT INTO keyring.tenant_keys (tenant_id, version, root_version, nonce, wrapped_key, created_at, retired_at)
                VALUES ($1, $2, 1, $3, $4, $5::timestamptz, $6::timestamptz)
                """, [t, version, [UInt8](repeating: 3, count: 24), [UInt8](repeating: 4, count: 48), created, retired])
        }
        _ = try await owner.query(
            "INSERT INTO keyring.subject_keys (tenant_id, user_id, kek_version, nonce, wrapped_key) VALUES ($1, $2, 2, $3, $4)",
            [t, alice, [UInt8](repeating: 5, count: 24), [UInt8](repeating: 6, count: 48)])
        _ = try await owner.query(
            "INSERT INTO keyring.subject_keys (tenant_id, user_id, kek_version, destroyed_at) VALUES ($1, $2, 1, now())", [t, bob])

        // Consents: alice and bob consent to processing and marketing; carol to nothing.
        for (user, flag) in [(alice, true), (bob, true), (carol, false)] {
            _ = try await owner.query(
                """
                INSERT INTO public.user_privacy_settings (tenant_id, user_id, data_processing_consent, marketing_consent)
                VALUES ($1, $2, $3, $3)
                """, [t, user, flag])
        }

        // The audit trail, through the appender, with the contract's action names.
        let a = "user:" + alice.uuidString.lowercased(), b = "user:" + bob.uuidString.lowercased()
        let k = "service_key:" + serviceKey.uuidString.lowercased()
        func service(_ name: String) throws -> String { try keys.pseudonym(name, tenant: t) }
        func append(
            _ actor: String?, _ action: String, _ target: String?, _ outcome: AuditOutcome = .success,
            _ details: [String: AuditValue] = [:]
        ) async throws {
            _ = try await appender.append(
                tenant: t, AuditEvent(actor: actor, action: action, target: target, outcome: outcome, details: details))
        }
        let subject: [String: AuditValue] = ["user_id": .string(alice.uuidString.lowercased())]
        for _ in 0..<3 { try await append(a, "secret.read", try service("openai"), .success, subject) }
        try await append(k, "secret.read", try service("github"), .success, subject)
        try await append(b, "secret.read", try service("openai"), .denied, subject)
        try await append(b, "secret.read", try service("openai"), .denied, subject)
        try await append(a, "secret.write", try service("stripe"), .success, subject.merging(["version": .int(2)]) { $1 })
        try await append(a, "secret.list", nil, .success, subject)
        try await append(k, "secret.read", try service("no-such-service"), .failure, subject)
        let checkpointer = AuditCheckpointer(pool: gateway, signingKey: signingKey)
        _ = try await checkpointer.checkpoint(tenant: t)  // covers seq 1…9

        for _ in 0..<3 {
            try await append(
                nil, "policy.denied", "public.projects", .denied,
                ["command": .string("select"), "role": .string("anon"), "reason": .string("no policy allows select for anon")])
        }
        try await append(
            b, "policy.denied", "public.user_secrets", .denied,
            ["command": .string("update"), "role": .string("authenticated"), "reason": .string("Users can update own secrets")])
        try await append(
            a, "privacy.settings_updated", nil, .success,
            [
                "user_id": .string(alice.uuidString.lowercased()),
                "changed": .object([
                    "marketing_consent": .object(["from": .bool(false), "to": .bool(true)]),
                    "analytics_consent": .object(["from": .bool(true), "to": .bool(false)]),
                ]),
            ])
        try await append(
            b, "privacy.settings_updated", nil, .success,
            [
                "user_id": .string(bob.uuidString.lowercased()),
                "changed": .object(["marketing_consent": .object(["from": .bool(false), "to": .bool(true)])]),
            ])
        try await append("operator", "keys.rotated", nil, .success, ["from_version": .int(1), "to_version": .int(2), "rewrapped": .int(1)])
        // 9 + 4 + 2 + 1 = 16 entries; 7 after the checkpoint.
    }

    /// Edits an audit row by hand, as an owner with the append-only triggers off would.
    func tamper(seq: Int64) async throws {
        try await owner.withConnection { connection in
            try await connection.run { connection in
                try connection.transaction { connection in
                    try connection.simple("ALTER TABLE public.audit_events DISABLE TRIGGER USER")
                    _ = try connection.query(
                        "UPDATE public.audit_events SET outcome = 'success' WHERE tenant_id = $1 AND seq = $2", [tenant, seq])
                    try connection.simple("ALTER TABLE public.audit_events ENABLE TRIGGER USER")
                }
            }
        }
    }
}
