import Audit
import Config
import Foundation
import Keyring
import Postgres
import Sodium
import Synchronization
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// Three real `privacy-gateway serve` processes on one database (issue 13, item 6).
@Suite("Several gateways, one database", .serialized)
struct MultiGatewayTests {
    /// Runs `body` on `count` threads at once (blocking sockets: the cooperative pool has as many
    /// threads as cores, which would serialise the requests).
    static func concurrently(_ jobs: [@Sendable () -> Void]) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let group = DispatchGroup()
            for job in jobs {
                group.enter()
                Thread {
                    job(); group.leave()
                }.start()
            }
            group.notify(queue: .global()) { done.resume() }
        }
    }

    @Test(
        "three gateways: a revoked key is refused by each on its next request, a rotated JWT secret by each within the poll, concurrent audited writes through all three leave each tenant's chain contiguous and verifying, and exports filed through each run exactly once"
    )
    func threeGateways() async throws {
        try await GatewayProcessFixture.run("gateways") { f in
            let scopes: [Scope] = [.dataRead, .secretsRead, .secretsWrite, .auditRead, .privacyExport]
            let firstSecret = AuthFixture.secret()
            let acme = try await f.tenants.create(name: "acme", jwtSecret: firstSecret)
            let globexSecret = AuthFixture.secret()
            let globex = try await f.tenants.create(name: "globex", jwtSecret: globexSecret)
            let (doomed, doomedKey) = try await f.keys.create(tenant: acme.id, scopes: scopes, name: "doomed")
            let (_, acmeKey) = try await f.keys.create(tenant: acme.id, scopes: scopes, name: "acme")
            let (_, globexKey) = try await f.keys.create(tenant: globex.id, scopes: scopes, name: "globex")

            let gateways = try await f.startGateways(3, poolSize: 6)
            defer { for gateway in gateways { _ = gateway.stop() } }

            let alice = UUID(), bob = UUID()
            let aliceToken = try await Tokens.hs256(claims: Tokens.user(alice), secret: firstSecret)
            let bobToken = try await Tokens.hs256(claims: Tokens.user(bob), secret: globexSecret)

            // 1. A revoked key: every process has it cached, and each refuses it on its very next request.
            for gateway in gateways {
                #expect(gateway.request("GET", "/rest/v1/projects?select=id", headers: ["apikey": doomedKey]).status == 200)
                #expect(
                    gateway.request("GET", "/v1/secrets", headers: ["apikey": doomedKey, "Authorization": "Bearer \(aliceToken)"]).status
                        == 200)
            }
            try await f.keys.revoke(id: doomed.id)
            for gateway in gateways {
                #expect(gateway.request("GET", "/rest/v1/projects?select=id", headers: ["apikey": doomedKey]).status == 401)
                #expect(
                    gateway.request("GET", "/v1/secrets", headers: ["apikey": doomedKey, "Authorization": "Bearer \(aliceToken)"]).status
                        == 401)
            }

            // 2. A rotated JWT secret: every process cached the tenant's keys and the token; each
            //    refuses the old token once its invalidation poll has run — polled here, the guard
            //    (30 s) well under the cache's own TTL (60 s), so only the invalidation can pass it.
            for gateway in gateways {
                #expect(
                    gateway.request("GET", "/v1/secrets", headers: ["apikey": acmeKey, "Authorization": "Bearer \(aliceToken)"]).status
                        == 200)
            }
            let secondSecret = AuthFixture.secret()
            let rotated = ContinuousClock.now
            // No overlap: the old secret stops at once.
            try await f.tenants.setJWT(tenant: acme.id, secret: secondSecret, jwks: nil, secretOverlapSeconds: 0)
            var elapsed: [Duration] = []
            for gateway in gateways {
                var refused = false
                while !refused && ContinuousClock.now - rotated < .seconds(30) {
                    refused =
                        gateway.request("GET", "/v1/secrets", headers: ["apikey": acmeKey, "Authorization": "Bearer \(aliceToken)"]).status
                        == 401
                    if !refused { try await Task.sleep(for: .milliseconds(20)) }
                }
                #expect(refused, "gateway on port \(gateway.port) still accepts a token signed with the replaced secret")
                elapsed.append(ContinuousClock.now - rotated)
            }
            print(
                "MultiGatewayTests: old JWT refused by the three gateways after \(elapsed.map { "\($0)" }.joined(separator: ", ")) (measured, not asserted)"
            )
            let newToken = try await Tokens.hs256(claims: Tokens.user(alice), secret: secondSecret)
            for gateway in gateways {
                #expect(
                    gateway.request("GET", "/v1/secrets", headers: ["apikey": acmeKey, "Authorization": "Bearer \(newToken)"]).status == 200
                )
            }

            // 3. Concurrent audited writes through all three processes, two tenants.
            let statuses = Mutex<[Int]>([])
            var jobs: [@Sendable () -> Void] = []
            for (index, gateway) in gateways.enumerated() {
                for round in 0..<8 {
                    for (key, token) in [(acmeKey, newToken), (globexKey, bobToken)] {
                        jobs.append {
                            let status = gateway.request(
                                "PUT", "/v1/secrets/svc-\(index)-\(round)", headers: ["apikey": key, "Authorization": "Bearer \(token)"],
                                body: #"{"value": "v\#(round)"}"#
                            ).status
                            statuses.withLock { $0.append(status) }
                        }
                    }
                }
            }
            await Self.concurrently(jobs)
            let all = statuses.withLock { $0 }
            #expect(all.count == 48)
            #expect(all.allSatisfy { $0 == 200 || $0 == 201 }, "\(all)")
            // 4. The data-subject request queue is shared: exports filed through each gateway are
            //    each run exactly once by one of the three workers (SELECT … FOR UPDATE SKIP LOCKED).
            let subjects = (0..<6).map { _ in UUID() }
            for (index, subject) in subjects.enumerated() {
                let token = try await Tokens.hs256(claims: Tokens.user(subject), secret: secondSecret)
                let filed = gateways[index % 3].request(
                    "POST", "/v1/privacy/exports", headers: ["apikey": acmeKey, "Authorization": "Bearer \(token)"])
                #expect(filed.status == 202, "\(filed.body)")
            }
            var pending = subjects.count
            let filedAt = ContinuousClock.now
            while pending > 0 && ContinuousClock.now - filedAt < .seconds(120) {
                try await Task.sleep(for: .milliseconds(100))
                pending = try await f.ownerPool.query(
                    "SELECT count(*)::int AS n FROM public.data_export_requests WHERE tenant_id = $1 AND status <> 'completed'", [acme.id]
                ).first!.decode("n")
            }
            #expect(pending == 0, "exports left unfinished")
            let completions = try await f.ownerPool.query(
                """
                SELECT (SELECT count(*)::int FROM public.audit_events e
                        WHERE e.tenant_id = r.tenant_id AND e.action = 'privacy.export_completed' AND e.target = r.id::text) AS n
                FROM public.data_export_requests r WHERE r.tenant_id = $1
                """, [acme.id]
            ).rows.map { try $0.decode("n", as: Int.self) }
            #expect(completions == Array(repeating: 1, count: subjects.count), "each export completed exactly once: \(completions)")

            for tenant in [acme.id, globex.id] {
                let report = try await AuditBundle.verifyLive(pool: f.ownerPool, tenant: tenant, trustedKeys: [:])
                #expect(report.isValid, "\(report.failures)")
                #expect(report.firstSeq == 1)
                let writes = try await f.ownerPool.query(
                    "SELECT count(*)::int AS n FROM public.audit_events WHERE tenant_id = $1 AND action = 'secret.write'", [tenant]
                ).first?.decode("n", as: Int.self)
                #expect(writes == 24)
                #expect(report.lastSeq == Int64(report.entriesChecked))
            }
        }
    }
}
