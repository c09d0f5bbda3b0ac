import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Policy
import Postgres
import Sodium
import Tenancy
import TestSupport
import Testing

@testable import Gateway

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
                // Checkpoints far past any log are not found, promptly: the proof's shape for a tree of
                // 2^63 - 1 leaves once spun forever on an event loop (doubling overflowed).
                for huge in ["9223372036854775807", "4611686018427387905", "4611686018427387904"] {
                    #expect(try await get("/v1/audit/entries/1/proof?checkpoint=\(huge)", acme.apikey).0 == .notFound, "\(huge)")
                    #expect(try await get("/v1/audit/entries/\(huge)/proof?checkpoint=\(huge)", acme.apikey).0 == .notFound, "\(huge)")
                }
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
                try AuditProofs.verify(
                    try JSONDecoder().decode(InclusionProof.self, from: Data(own.1.utf8)), publicKey: signingKey.publicKey)
                let consistency = try await get("/v1/audit/checkpoints/consistency?from=6&to=7", acme.apikey)
                #expect(consistency.0 == .ok)
                try AuditProofs.verify(
                    try JSONDecoder().decode(ConsistencyProof.self, from: Data(consistency.1.utf8)), publicKey: signingKey.publicKey)
            }
        }
    }

    @Test("a witness's cosignature is stored only if it verifies on the caller's own checkpoint, then served and countable")
    func cosignatureRoute() async throws {
        try await AuthFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let acme = try await f.tenant("acme", scopes: [.auditRead])
            let globex = try await f.tenant("globex", scopes: [.auditRead])
            let (_, dataKey) = try await ServiceKeyRegistry(pool: f.owner, rootKey: f.rootKey)
                .create(tenant: acme.id, scopes: [.dataRead, .dataWrite], name: "narrow")
            let signingKey = try Ed25519.SigningKey.generate()
            let witness = try Ed25519.SigningKey.generate()
            let other = try Ed25519.SigningKey.generate()
            let name = "auditor.example/w1"
            let readiness = try Readiness(pool: f.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies)
            let services = GatewayServices(
                pool: f.gateway, policies: policies, authenticator: f.authenticator, readiness: readiness,
                audit: AuditAppender(pool: f.gateway), auditTrustedKeys: AuditCheckpoint.trustedKeys([signingKey.publicKey]),
                auditWitnesses: [(name, witness.publicKey)])
            let appender = AuditAppender(pool: f.gateway)
            for tenant in [acme.id, globex.id] {
                for index in 0..<3 {
                    _ = try await appender.append(tenant: tenant, AuditEvent(action: "test.event", details: ["n": .int(Int64(index))]))
                }
            }
            let checkpointer = AuditCheckpointer(pool: f.gateway, signingKey: signingKey)
            let checkpoint = try await checkpointer.checkpoint(tenant: acme.id)
            _ = try await checkpointer.checkpoint(tenant: globex.id)
            let text = try SignedNote.open(try #require(checkpoint.note)).text
            let now = UInt64(Date().timeIntervalSince1970)
            let line = AuditWitness.cosign(text: text, name: name, key: witness, timestamp: now).line
            @Sendable func body(_ line: String, key: [UInt8] = witness.publicKey, name: String = name) -> String {
                let object: [String: String] = ["name": name, "public_key": Hex.encode(key), "cosignature": line]
                return String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            }

            try await Application(router: GatewayApplication.router(services: services)).test(.router) { client in
                func post(_ seq: Int64, _ body: String, _ key: String) async throws -> (HTTPResponse.Status, String) {
                    try await client.execute(
                        uri: "/v1/audit/checkpoints/\(seq)/cosignatures", method: .post,
                        headers: [.apikey: key, .contentType: "application/json"], body: ByteBuffer(string: body)
                    ) { ($0.status, String(buffer: $0.body)) }
                }
                // Narrower scope; another tenant's checkpoint (globex has its own seq 3, with another root).
                #expect(try await post(3, body(line), dataKey).0 == .forbidden)
                let foreign = try await post(3, body(line), globex.apikey)
                #expect(foreign.0 == .badRequest && foreign.1.contains("does not verify"), "\(foreign)")
                #expect(try await post(4, body(line), acme.apikey).0 == .notFound)
                // The side door: an audit:read holder's self-made witnesses, each with a valid cosignature,
                // are refused (more of them than the per-checkpoint cap), and store nothing.
                for index in 0..<(AuditCosignatures.maximumPerCheckpoint + 2) {
                    let fake = try Ed25519.SigningKey.generate()
                    let fakeName = "self.made/w\(index)"
                    let fakeLine = AuditWitness.cosign(text: text, name: fakeName, key: fake, timestamp: now).line
                    let (status, answer) = try await post(3, body(fakeLine, key: fake.publicKey, name: fakeName), acme.apikey)
                    #expect(status == .forbidden && answer.contains("PGW403") && answer.contains("is not declared"), "\(status) \(answer)")
                }
                // A declared name with another key, and the declared key under another name, are not the declared witness.
                let otherLine = AuditWitness.cosign(text: text, name: name, key: other, timestamp: now).line
                #expect(try await post(3, body(otherLine, key: other.publicKey), acme.apikey).0 == .forbidden)
                let renamed = AuditWitness.cosign(text: text, name: "auditor.example/w9", key: witness, timestamp: now).line
                #expect(try await post(3, body(renamed, name: "auditor.example/w9"), acme.apikey).0 == .forbidden)
                // Forged: claims the declared witness but is signed by another key; a line that is two lines;
                // a future timestamp; junk.
                let forged = try await post(3, body(otherLine), acme.apikey)
                #expect(forged.0 == .badRequest && forged.1.contains("does not verify"), "\(forged)")
                #expect(try await post(3, body(line + line), acme.apikey).0 == .badRequest)
                let future = AuditWitness.cosign(text: text, name: name, key: witness, timestamp: now + 86400).line
                #expect(try await post(3, body(future), acme.apikey).1.contains("future"))
                for bad in [
                    #"{"name": "w"}"#, "[]", #"{"name": "a b", "public_key": "00", "cosignature": "x\n"}"#,
                    #"{"name": "w", "public_key": "\#(Hex.encode(witness.publicKey))", "cosignature": "x\n", "extra": 1}"#,
                ] {
                    let (status, text) = try await post(3, bad, acme.apikey)
                    #expect(status == .badRequest && text.contains("PGW400"), "\(bad): \(status) \(text)")
                }
                // The declared witness: stored once, idempotent (a duplicate is 200, not a second row), served with the checkpoint.
                #expect(try await post(3, body(line), acme.apikey).0 == .created)
                #expect(try await post(3, body(line), acme.apikey).0 == .ok)
                let later = AuditWitness.cosign(text: text, name: name, key: witness, timestamp: now + 1).line
                #expect(try await post(3, body(later), acme.apikey).0 == .ok)
                let listing = try await client.execute(uri: "/v1/audit/checkpoints", method: .get, headers: [.apikey: acme.apikey]) {
                    String(buffer: $0.body)
                }
                struct Listing: Decodable { let checkpoints: [CodableCheckpoint] }
                let served = try JSONDecoder().decode(Listing.self, from: Data(listing.utf8)).checkpoints.last!.checkpoint
                #expect(served.cosignatures == [line])
                let globexListing = try await client.execute(uri: "/v1/audit/checkpoints", method: .get, headers: [.apikey: globex.apikey])
                { String(buffer: $0.body) }
                #expect(!globexListing.contains("cosignatures"))
            }
            // A verifier requiring cosignatures: one pinned witness suffices for 1, not for 2.
            let one = WitnessPolicy(witnesses: [(name, witness.publicKey)], required: 1)
            #expect(
                try await AuditBundle.verifyLive(pool: f.gateway, tenant: acme.id, trustedKeys: services.auditTrustedKeys, witnesses: one)
                    .isValid)
            let two = WitnessPolicy(witnesses: [(name, witness.publicKey), ("auditor.example/w2", other.publicKey)], required: 2)
            let report = try await AuditBundle.verifyLive(
                pool: f.gateway, tenant: acme.id, trustedKeys: services.auditTrustedKeys, witnesses: two)
            #expect(report.failures.map(\.kind) == [.missingCosignatures])
            #expect(report.failures.first?.detail.contains("1 valid cosignature by pinned witnesses; 2 required") == true)

            // Without declared witnesses the route refuses every cosignature and says how to declare one.
            let closed = GatewayServices(
                pool: f.gateway, policies: policies, authenticator: f.authenticator, readiness: readiness,
                audit: AuditAppender(pool: f.gateway), auditTrustedKeys: services.auditTrustedKeys)
            try await Application(router: GatewayApplication.router(services: closed)).test(.router) { client in
                let (status, answer) = try await client.execute(
                    uri: "/v1/audit/checkpoints/3/cosignatures", method: .post,
                    headers: [.apikey: acme.apikey, .contentType: "application/json"], body: ByteBuffer(string: body(line))
                ) { ($0.status, String(buffer: $0.body)) }
                #expect(
                    status == .forbidden && answer.contains("no witnesses are declared") && answer.contains("PRIVACY_AUDIT_WITNESS_KEYS"),
                    "\(answer)")
                // Scope is still checked first: a key without audit:read learns nothing about the configuration.
                let narrow = try await client.execute(
                    uri: "/v1/audit/checkpoints/3/cosignatures", method: .post,
                    headers: [.apikey: dataKey, .contentType: "application/json"], body: ByteBuffer(string: body(line))
                ) { String(buffer: $0.body) }
                #expect(narrow.contains("audit:read"))
            }
        }
    }
}
