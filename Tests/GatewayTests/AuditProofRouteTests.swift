import Audit
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Policy
import Postgres
import Sodium
import Testing
import TestSupport

/// Issue 16 through the real router: `/v1/audit/entries/{seq}/proof` and
/// `/v1/audit/checkpoints/consistency`, as an attacker would call them.
@Suite("/v1/audit proofs: tenant-scoped, audit:read only, bad parameters are 400")
struct AuditProofRouteTests {
    @Test("another tenant's seq or checkpoint, a narrower scope, no key and bad parameters are refused; own proofs verify")
    func proofRoutes() async throws {
        try await AuthFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let acme = try await f.tenant("acme", scopes: [.auditRead])
            let globex = try await f.tenant("globex", scopes: [.auditRead])
            let (_, dataKey) = try await ServiceKeyRegistry(pool: f.owner, rootKey: f.rootKey)
                .create(tenant: acme.id, scopes: [.dataRead, .secretsRead, .privacyExport], name: "narrow")
            let signingKey = try Ed25519.SigningKey.generate()
            let services = GatewayServices(
                pool: f.gateway, policies: policies, authenticator: f.authenticator,
                readiness: try Readiness(pool: f.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: AuditAppender(pool: f.gateway), auditTrustedKeys: AuditCheckpoint.trustedKeys([signingKey.publicKey]))
            let appender = AuditAppender(pool: f.gateway)
            for index in 0..<6 {
                _ = try await appender.append(tenant: acme.id, AuditEvent(action: "test.event", details: ["n": .int(Int64(index))]))
            }
            for index in 0..<3 {
                _ = try await appender.append(tenant: globex.id, AuditEvent(action: "test.other", details: ["n": .int(Int64(index))]))
            }
            let checkpointer = AuditCheckpointer(pool: f.gateway, signingKey: signingKey)
            _ = try await checkpointer.checkpoint(tenant: acme.id)
            _ = try await checkpointer.checkpoint(tenant: globex.id)
            _ = try await appender.append(tenant: acme.id, AuditEvent(action: "test.event"))
            _ = try await checkpointer.checkpoint(tenant: acme.id)  // acme: checkpoints 6 and 7; globex: 3

            try await Application(router: GatewayApplication.router(services: services)).test(.router) { client in
                func get(_ uri: String, _ key: String?) async throws -> (HTTPResponse.Status, String) {
                    try await client.execute(uri: uri, method: .get, headers: key.map { [.apikey: $0] } ?? [:]) {
                        ($0.status, String(buffer: $0.body))
                    }
                }
                // No key, a key without audit:read.
                #expect(try await get("/v1/audit/entries/3/proof?checkpoint=6", nil).0 == .unauthorized)
                #expect(try await get("/v1/audit/entries/3/proof?checkpoint=6", dataKey).0 == .forbidden)
                #expect(try await get("/v1/audit/checkpoints/consistency?from=6&to=7", dataKey).0 == .forbidden)
                // Another tenant's checkpoint and entries are not in the caller's log.
                #expect(try await get("/v1/audit/entries/3/proof?checkpoint=6", globex.apikey).0 == .notFound)
                #expect(try await get("/v1/audit/entries/5/proof?checkpoint=3", globex.apikey).0 == .badRequest)
                #expect(try await get("/v1/audit/checkpoints/consistency?from=6&to=7", globex.apikey).0 == .notFound)
                #expect(try await get("/v1/audit/entries/1/proof?checkpoint=3", acme.apikey).0 == .notFound)
                // Bad parameters: 400 PGW400 naming the parameter, never a 5xx.
                for uri in [
                    "/v1/audit/entries/3/proof", "/v1/audit/entries/3/proof?checkpoint=", "/v1/audit/entries/3/proof?checkpoint=abc",
                    "/v1/audit/entries/3/proof?checkpoint=0", "/v1/audit/entries/3/proof?checkpoint=-6",
                    "/v1/audit/entries/3/proof?checkpoint=99999999999999999999", "/v1/audit/entries/0/proof?checkpoint=6",
                    "/v1/audit/entries/x/proof?checkpoint=6", "/v1/audit/entries/-1/proof?checkpoint=6",
                    "/v1/audit/entries/7/proof?checkpoint=6",
                    "/v1/audit/checkpoints/consistency", "/v1/audit/checkpoints/consistency?from=6",
                    "/v1/audit/checkpoints/consistency?from=7&to=6", "/v1/audit/checkpoints/consistency?from=a&to=7",
                ] {
                    let (status, body) = try await get(uri, acme.apikey)
                    #expect(status == .badRequest, "\(uri): \(status) \(body)")
                    #expect(body.contains("PGW400"), "\(uri): \(body)")
                }

                // The caller's own proofs verify offline with only the public key.
                let (status, body) = try await get("/v1/audit/entries/3/proof?checkpoint=6", acme.apikey)
                #expect(status == .ok)
                let proof = try JSONDecoder().decode(InclusionProof.self, from: Data(body.utf8))
                #expect(proof.tenantID == acme.id && proof.entry.entry.seq == 3 && proof.treeSize == 6)
                try AuditProofs.verify(proof, publicKey: signingKey.publicKey)
                let own = try await get("/v1/audit/entries/2/proof?checkpoint=3", globex.apikey)
                #expect(own.0 == .ok)
                try AuditProofs.verify(try JSONDecoder().decode(InclusionProof.self, from: Data(own.1.utf8)), publicKey: signingKey.publicKey)
                let consistency = try await get("/v1/audit/checkpoints/consistency?from=6&to=7", acme.apikey)
                #expect(consistency.0 == .ok)
                try AuditProofs.verify(
                    try JSONDecoder().decode(ConsistencyProof.self, from: Data(consistency.1.utf8)), publicKey: signingKey.publicKey)
            }
        }
    }
}
