import Audit
import Foundation
import Postgres
import Sodium
import TestSupport
import Testing

/// A migrated database with one tenant, pools as the owner and as the gateway's login, an
/// appender and a checkpointer that use the gateway's pool (proving its grants suffice).
struct AuditFixture: Sendable {
    let ownerConfiguration: PostgresConfiguration
    let owner: ConnectionPool
    let gateway: ConnectionPool
    let tenant: UUID
    let rootKey: SecureBytes
    let keys: AuditKeys
    let appender: AuditAppender
    let signingKey: Ed25519.SigningKey
    let checkpointer: AuditCheckpointer

    var trustedKeys: [String: [UInt8]] { [AuditCheckpoint.keyID(of: signingKey.publicKey): signingKey.publicKey] }

    static func with(_ body: (AuditFixture) async throws -> Void) async throws {
        try await TestDatabase.withMigratedDatabase { owner in
            let ownerPool = ConnectionPool(configuration: owner, options: .init(maxConnections: 2))
            let gatewayPool = ConnectionPool(configuration: TestDatabase.gateway(owner), options: .init(maxConnections: 8))
            defer {
                ownerPool.close()
                gatewayPool.close()
            }
            let tenant = try await createTenant(ownerPool)
            let rootKey = try SecureBytes(count: 32)
            let keys = try AuditKeys(rootKey: rootKey)
            let signingKey = try Ed25519.SigningKey.generate()
            try await body(
                AuditFixture(
                    ownerConfiguration: owner, owner: ownerPool, gateway: gatewayPool, tenant: tenant, rootKey: rootKey,
                    keys: keys, appender: AuditAppender(pool: gatewayPool, keys: keys), signingKey: signingKey,
                    checkpointer: AuditCheckpointer(pool: gatewayPool, signingKey: signingKey)))
        }
    }

    static func createTenant(_ pool: ConnectionPool) async throws -> UUID {
        try await pool.query("INSERT INTO public.tenants (name) VALUES ($1) RETURNING id", ["t-" + UUID().uuidString])
            .first!.decode("id")
    }

    /// Appends `count` numbered events, one after the other.
    @discardableResult
    func appendSequentially(_ count: Int, tenant: UUID? = nil) async throws -> [AuditReceipt] {
        var receipts: [AuditReceipt] = []
        for index in 0..<count {
            receipts.append(
                try await appender.append(
                    tenant: tenant ?? self.tenant,
                    AuditEvent(
                        actor: "user-\(index % 3)", action: "secret.read", target: "openai", requestID: "req-\(index)",
                        ip: "10.0.0.\(index % 250 + 1)", userAgent: "tests/1.0", details: ["n": .int(Int64(index))])))
        }
        return receipts
    }

    /// Appends one entry per canonical `at` text (a chain spread over months, which the appender
    /// cannot write: it stamps the database clock), as the owner, with correct chain hashes, and
    /// moves the head row to the last one. The Merkle tree catches up on the next checkpoint or
    /// append (AuditTree.ensureCurrent), as for a chain written before the tree existed.
    func seed(_ stamps: [String], tenant: UUID? = nil) async throws {
        let tenant = tenant ?? self.tenant
        try await owner.withConnection { connection in
            try await connection.run { connection in
                try connection.transaction { connection in
                    _ = try connection.query(
                        "INSERT INTO public.audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (tenant_id) DO NOTHING",
                        [tenant, AuditEntry.genesisHash])
                    let head = try connection.query("SELECT seq, hash FROM public.audit_heads WHERE tenant_id = $1 FOR UPDATE", [tenant])
                        .first!
                    var seq: Int64 = try head.decode("seq")
                    var previous: [UInt8] = try head.decode("hash")
                    for stamp in stamps {
                        seq += 1
                        var entry = AuditEntry(
                            tenantID: tenant, seq: seq, at: stamp, actor: "user-\(seq % 3)", action: "secret.read", target: "openai",
                            outcome: "success", requestID: "req-\(seq)", ip: "10.0.0.1", userAgent: "tests/1.0",
                            details: ["n": .int(seq)], prevHash: previous, hash: [])
                        entry.hash = entry.computedHash()
                        _ = try connection.query(
                            """
                            INSERT INTO public.audit_events
                                (tenant_id, seq, at, actor, action, target, outcome, request_id, ip, user_agent, details, prev_hash, hash)
                            VALUES ($1, $2, $3::timestamptz, $4, $5, $6, $7, $8, $9::inet, $10, $11::jsonb, $12, $13)
                            """,
                            [
                                tenant, seq, stamp, entry.actor, entry.action, entry.target, entry.outcome, entry.requestID, entry.ip,
                                entry.userAgent, "{\"n\": \(seq)}", entry.prevHash, entry.hash,
                            ])
                        previous = entry.hash
                    }
                    _ = try connection.query(
                        "UPDATE public.audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1", [tenant, seq, previous])
                }
            }
        }
    }

    /// Runs owner SQL with the append-only triggers off, as a superuser or owner tampering
    /// with the rows would.
    func tamper(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws {
        try await owner.withConnection { connection in
            try await connection.run { connection in
                try connection.transaction { connection in
                    try connection.simple(
                        """
                        ALTER TABLE public.audit_events DISABLE TRIGGER USER;
                        ALTER TABLE public.audit_checkpoints DISABLE TRIGGER USER;
                        ALTER TABLE public.audit_heads DISABLE TRIGGER USER;
                        ALTER TABLE public.audit_tree_nodes DISABLE TRIGGER USER
                        """)
                    _ = try connection.query(sql, parameters)
                    try connection.simple(
                        """
                        ALTER TABLE public.audit_events ENABLE TRIGGER USER;
                        ALTER TABLE public.audit_checkpoints ENABLE TRIGGER USER;
                        ALTER TABLE public.audit_heads ENABLE TRIGGER USER;
                        ALTER TABLE public.audit_tree_nodes ENABLE TRIGGER USER
                        """)
                }
            }
        }
    }

    func verifyLive(trusted: [String: [UInt8]]? = nil) async throws -> VerificationReport {
        try await AuditBundle.verifyLive(pool: gateway, tenant: tenant, trustedKeys: trusted ?? trustedKeys)
    }

    /// Exports to a fresh temporary directory and verifies it offline.
    func exportAndVerify(trusted: [String: [UInt8]]? = nil) async throws -> VerificationReport {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try await AuditBundle.export(pool: gateway, tenant: tenant, to: directory)
        return try AuditBundle.verify(directory: directory, trustedKeys: trusted ?? trustedKeys)
    }
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("audit-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

extension VerificationReport {
    func has(_ kind: VerificationFailure.Kind, at seq: Int64? = nil) -> Bool {
        failures.contains { $0.kind == kind && (seq == nil || $0.seq == seq) }
    }
}
