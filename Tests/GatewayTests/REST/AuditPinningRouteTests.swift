import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Policy
import Postgres
import Sodium
import TestSupport
import Testing

@testable import Gateway

/// Issue 12, item 8, through the real router: `/v1/audit/verify` trusts the configured keys only,
/// and the periodic checkpointer refuses (logged and counted) to sign a tampered chain.
@Suite("/v1/audit/verify with pinned keys; checkpoint refusals are counted")
struct AuditPinningRouteTests {
    @Test("GET /v1/audit/verify fails a checkpoint signed by a key that is not configured, though its key is in the database")
    func forgedCheckpoint() async throws {
        try await AuthFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let acme = try await f.tenant("acme", scopes: [.auditRead])
            let signingKey = try Ed25519.SigningKey.generate()
            let metrics = GatewayMetrics()
            let services = GatewayServices(
                pool: f.gateway, policies: policies, authenticator: f.authenticator,
                readiness: try Readiness(pool: f.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: AuditAppender(pool: f.gateway), metrics: metrics,
                auditTrustedKeys: AuditCheckpoint.trustedKeys([signingKey.publicKey]))
            let appender = AuditAppender(pool: f.gateway)
            for index in 0..<4 {
                _ = try await appender.append(tenant: acme.id, AuditEvent(action: "test.event", details: ["n": .int(Int64(index))]))
            }
            let service = CheckpointService(
                checkpointer: AuditCheckpointer(pool: f.gateway, signingKey: signingKey), interval: .seconds(3600),
                logger: Logger(label: "test"), metrics: metrics)
            await service.round()
            let legit = try #require(try await AuditReader.checkpoints(pool: f.owner, tenant: acme.id).last)
            #expect(legit.seq == 4)

            try await Application(router: GatewayApplication.router(services: services)).test(.router) { client in
                func verify() async throws -> [String: Any] {
                    let text = try await client.execute(uri: "/v1/audit/verify", method: .get, headers: [.apikey: acme.apikey]) {
                        String(buffer: $0.body)
                    }
                    return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
                }
                #expect(try await verify()["valid"] as? Bool == true)

                // An attacker with write access appends an entry and a checkpoint signed by their own key,
                // stored with that key.
                _ = try await appender.append(tenant: acme.id, AuditEvent(action: "test.forged"))
                let head = try await f.owner.query("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1", [acme.id]).first!
                let attacker = try Ed25519.SigningKey.generate()
                var forged = AuditCheckpoint(
                    tenantID: acme.id, seq: try head.decode("seq"), headHash: try head.decode("hash"),
                    previousCheckpointHash: legit.hash(), signedAt: "2026-01-01T00:00:00.000000Z",
                    keyID: AuditCheckpoint.keyID(of: attacker.publicKey), publicKey: attacker.publicKey, signature: [])
                forged.signature = attacker.sign(forged.signingMessage())
                try await f.owner.query(
                    """
                    INSERT INTO audit_checkpoints (tenant_id, seq, head_hash, previous_checkpoint_hash, signed_at, key_id, public_key, signature)
                    VALUES ($1, $2, $3, $4, $5::timestamptz, $6, $7, $8)
                    """,
                    [
                        forged.tenantID, forged.seq, forged.headHash, forged.previousCheckpointHash, forged.signedAt, forged.keyID,
                        forged.publicKey, forged.signature,
                    ])

                let report = try await verify()
                #expect(report["valid"] as? Bool == false)
                let failures = try #require(report["failures"] as? [[String: Any]])
                #expect(failures.contains { $0["kind"] as? String == "unknown_key" && $0["seq"] as? Int == 5 }, "\(failures)")

                // A tampered entry after the last checkpoint: the checkpointer refuses, logs and counts it.
                _ = try await appender.append(tenant: acme.id, AuditEvent(action: "test.after"))
                try await f.owner.withConnection { connection in
                    try await connection.run { connection in
                        try connection.simple("ALTER TABLE audit_events DISABLE TRIGGER USER")
                        try connection.query(
                            #"UPDATE audit_events SET details = '{"n": 99}' WHERE tenant_id = $1 AND seq = 6"#, [acme.id])
                        try connection.simple("ALTER TABLE audit_events ENABLE TRIGGER USER")
                    }
                }
                await service.round()
                #expect(try await AuditReader.checkpoints(pool: f.owner, tenant: acme.id).count == 2)
                let exposition = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
                #expect(exposition.contains(#"privacy_gateway_audit_checkpoint_failures_total{reason="chain_corrupt"} 1"#), "\(exposition)")
            }
        }
    }

    @Test("the checkpoint service signs once as soon as it starts, not only after its first interval")
    func signsAtStart() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme", scopes: [.auditRead])
            _ = try await AuditAppender(pool: f.gateway).append(tenant: acme.id, AuditEvent(action: "test.event"))
            let service = CheckpointService(
                checkpointer: AuditCheckpointer(pool: f.gateway, signingKey: try Ed25519.SigningKey.generate()),
                interval: .seconds(3600), logger: Logger(label: "test"))
            let running = Task { try await service.run() }
            defer { running.cancel() }
            var signed: [AuditCheckpoint] = []
            for _ in 0..<200 where signed.isEmpty {
                signed = try await AuditReader.checkpoints(pool: f.owner, tenant: acme.id)
                if signed.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(signed.map(\.seq) == [1])
        }
    }
}
