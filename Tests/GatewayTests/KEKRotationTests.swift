import Audit
import Config
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Postgres
import Sodium
import Tenancy
import TestSupport
import Testing

@testable import Gateway
@testable import Keyring

/// Issue 17, item 1: KEK rotation as an operator's job — started through `/v1/admin`, run in the
/// background, its progress read back, resumed after a kill without rotating any tenant twice.
@Suite("KEK rotation: operator only, progress and status, resumable after SIGKILL", .serialized)
struct KEKRotationTests {
    /// Creates `count` subject keys (DEKs) in `tenant`; returns each user's key bytes.
    static func subjects(_ pool: ConnectionPool, _ keyring: Keyring, _ tenant: UUID, count: Int) async throws -> [UUID: [UInt8]] {
        var keys: [UUID: [UInt8]] = [:]
        for _ in 0..<count {
            let user = UUID()
            keys[user] = try await pool.transaction { connection in
                try keyring.subjectKey(tenant, user: user, create: true, in: connection)!.withUnsafeBytes { Array($0) }
            }
        }
        return keys
    }

    /// Each subject key still opens to the same bytes (read with a keyring opened afresh).
    static func expectUnchanged(_ pool: ConnectionPool, _ keyring: Keyring, _ tenant: UUID, _ keys: [UUID: [UInt8]]) async throws {
        let fresh = try await Keyring.open(pool: pool, root: .key(keyring.root.key))
        for (user, bytes) in keys {
            let now = try await pool.transaction { connection in
                try fresh.subjectKey(tenant, user: user, create: false, in: connection)!.withUnsafeBytes { Array($0) }
            }
            #expect(now == bytes, "subject \(user) of \(tenant)")
        }
    }

    /// The tenant's live (unretired) KEK versions.
    static func liveVersions(_ pool: ConnectionPool, _ tenant: UUID) async throws -> [Int] {
        try await pool.query(
            "SELECT version FROM keyring.tenant_keys WHERE tenant_id = $1 AND retired_at IS NULL ORDER BY version", [tenant]
        ).rows.map { try $0.decode("version") }
    }

    @Test(
        "through /v1/admin: a tenant admin and narrower keys get 403; bad input 400/404; a started rotation runs in the background to finished with progress; another scope while one is unfinished is 409; the same scope resumes"
    )
    func adminRotation() async throws {
        try await AuthFixture.run { f in
            let ops = try await f.tenant("ops", secret: nil, scopes: [.admin])
            let acme = try await f.tenant("acme", scopes: [.admin, .dataRead])
            let globex = try await f.tenant("globex", secret: nil, scopes: [.admin])
            let (_, narrowKey) = try await ServiceKeyRegistry(pool: f.owner, rootKey: f.rootKey)
                .create(tenant: ops.id, scopes: [.dataRead, .auditRead], name: "narrow")
            let acmeKeys = try await Self.subjects(f.owner, f.keyring, acme.id, count: 7)
            let globexKeys = try await Self.subjects(f.owner, f.keyring, globex.id, count: 5)
            let services = try JWTRotationTests.services(f, operatorTenant: ops.id)
            let user = UUID()
            let token = try await Tokens.hs256(claims: Tokens.user(user), secret: acme.secret!)

            try await JWTRotationTests.withRouter(services) { call in
                let path = "/v1/admin/kek-rotation"
                #expect(try await call(.get, path, ops.apikey, nil, nil).status == .notFound)
                for key in [acme.apikey, globex.apikey, narrowKey] {
                    #expect(try await call(.post, path, key, nil, "{}").status == .forbidden)
                    #expect(try await call(.post, path, key, nil, #"{"tenant_id": "\#(acme.id.lowercasedString)"}"#).status == .forbidden)
                    #expect(try await call(.get, path, key, nil, nil).status == .forbidden)
                }
                #expect(try await call(.post, path, nil, nil, "{}").status == .unauthorized)
                for (body, status) in [
                    (#"{"tenant_id": "acme"}"#, HTTPResponse.Status.badRequest), (#"{"tenant": "x"}"#, .badRequest), ("[]", .badRequest),
                    (#"{"tenant_id": "\#(UUID().lowercasedString)"}"#, .notFound),
                ] {
                    let answer = try await call(.post, path, ops.apikey, nil, body)
                    #expect(answer.status == status, "\(body): \(answer.body)")
                }
                // Nothing started by any of that.
                #expect(try await call(.get, path, ops.apikey, nil, nil).status == .notFound)
                let before = try await f.owner.query("SELECT count(*)::int AS n FROM keyring.kek_rotations").first!.decode(
                    "n", as: Int.self)
                #expect(before == 0)

                // Every tenant: 202 at once, then finished in the background.
                let started = try await call(.post, path, ops.apikey, nil, nil)
                #expect(started.status == .accepted, "\(started.body)")
                #expect(started.json["resumed"] as? Bool == false)
                var status: [String: Any] = [:]
                for _ in 0..<600 {
                    let answer = try await call(.get, path, ops.apikey, nil, nil)
                    #expect(answer.status == .ok)
                    status = answer.json
                    if status["state"] as? String == "finished" { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(status["state"] as? String == "finished", "\(status)")
                #expect(status["rows_total"] as? Int == 12 && status["rows_done"] as? Int == 12, "\(status)")
                #expect(status["tenants_total"] as? Int == 3 && status["tenants_done"] as? Int == 3, "\(status)")
                #expect(status["started_by"] as? String == "service_key:" + ops.keyID.lowercasedString)
                #expect(status["tenant_id"] is NSNull && status["finished_at"] is String)
                for tenant in [acme.id, globex.id] { #expect(try await Self.liveVersions(f.owner, tenant) == [2]) }
                try await Self.expectUnchanged(f.owner, f.keyring, acme.id, acmeKeys)
                try await Self.expectUnchanged(f.owner, f.keyring, globex.id, globexKeys)
                f.authenticator.invalidateTenant(acme.id)
                #expect(try await JWTRotationTests.read(call, acme, token).status == .ok, "the sealed JWT secret was rewrapped")

                // An unfinished rotation of acme (as one interrupted leaves it): every tenant is 409
                // until it is finished; starting acme's again resumes it.
                let (open, _) = try await Keyring.beginKEKRotation(tenant: acme.id, by: "test", pool: f.owner)
                #expect(open.state == .interrupted && open.rowsDone == 0 && open.rowsTotal == 7)
                let conflict = try await call(.post, path, ops.apikey, nil, "{}")
                #expect(conflict.status == .conflict && conflict.body.contains("unfinished"), "\(conflict.body)")
                let resumed = try await call(.post, path, ops.apikey, nil, #"{"tenant_id": "\#(acme.id.lowercasedString)"}"#)
                #expect(resumed.status == .accepted && resumed.json["resumed"] as? Bool == true, "\(resumed.body)")
                for _ in 0..<600 {
                    if try await call(.get, path, ops.apikey, nil, nil).json["state"] as? String == "finished" { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(try await Self.liveVersions(f.owner, acme.id) == [3])
                #expect(try await Self.liveVersions(f.owner, globex.id) == [2], "another tenant untouched")
                try await Self.expectUnchanged(f.owner, f.keyring, acme.id, acmeKeys)
            }

            // Audited: the start in the operator's trail, each tenant's rotation in its own, the refusals in the caller's.
            func count(_ tenant: UUID, _ action: String, actor: String? = nil) async throws -> Int {
                try await f.owner.query(
                    "SELECT count(*)::int AS n FROM public.audit_events WHERE tenant_id = $1 AND action = $2 AND ($3::text IS NULL OR actor = $3)",
                    [tenant, action, actor]
                ).first!.decode("n", as: Int.self)
            }
            let operatorActor = "service_key:" + ops.keyID.lowercasedString
            #expect(try await count(ops.id, "keys.rotation_started", actor: operatorActor) == 1)
            #expect(try await count(ops.id, "keys.rotation_resumed", actor: operatorActor) == 1)
            #expect(try await count(acme.id, "keys.rotated", actor: operatorActor) == 2)
            #expect(try await count(globex.id, "keys.rotated", actor: operatorActor) == 1)
            #expect(try await count(acme.id, "admin.denied", actor: "service_key:" + acme.keyID.lowercasedString) == 3)
        }
    }

    @Test(
        "privacyctl keys rotate killed with SIGKILL mid-run: the status says interrupted; the next run (over HTTP, by a gateway) resumes it and no tenant is rotated twice"
    )
    func killedMidRun() async throws {
        try await GatewayProcessFixture.run("kek-kill", ownerConnections: 3) { f in
            let ops = try await f.tenants.create(name: "ops", jwtSecret: nil)
            let (_, operatorKey) = try await f.keys.create(tenant: ops.id, scopes: [.admin], name: "operator")
            var subjects: [UUID: [UUID: [UInt8]]] = [:]
            var order: [UUID] = []
            for name in ["a", "b", "c"] {
                let tenant = try await f.tenants.create(name: name, jwtSecret: nil).id
                subjects[tenant] = try await Self.subjects(f.ownerPool, f.keyring, tenant, count: 30)
                order.append(tenant)
            }
            let last = order.last!

            // One subject key of the last tenant stays locked until the kill: the run cannot finish
            // before it however slow the machine is (the rewrap skips locked rows and comes back).
            try await f.ownerPool.withConnection { holder in
                try await holder.query("BEGIN")
                #expect(
                    try await holder.query(
                        "SELECT 1 FROM keyring.subject_keys WHERE tenant_id = $1 ORDER BY user_id DESC LIMIT 1 FOR UPDATE", [last]
                    ).rows.count == 1)
                let running = try Subprocess.start(
                    Subprocess.product("privacyctl"), ["keys", "rotate", "--batch-size", "1", "--json"],
                    environment: [
                        "DATABASE_URL": TestDatabase.url(f.owner), "PRIVACY_ROOT_KEY_FILE": f.rootKeyFile, "PATH": "/usr/bin:/bin",
                    ])
                var seenRunning = false
                let deadline = ContinuousClock.now + .seconds(300)
                while ContinuousClock.now < deadline, !running.hasExited {
                    if let status = try await Keyring.kekRotationStatus(pool: f.ownerPool) {
                        seenRunning = seenRunning || status.state == .running
                        // Two tenants done and part of the third: kill it there.
                        if status.tenantsDone >= 3, status.rowsDone >= 70 { break }
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
                if running.hasExited {
                    Issue.record("privacyctl finished or failed before the kill: \(running.wait().stderr)")
                } else {
                    running.kill(SIGKILL)
                    _ = running.wait()
                }
                #expect(seenRunning, "the status showed the rotation running while privacyctl held it")
                try await holder.query("ROLLBACK")
            }
            // The killed process's session (and its lock) ends: interrupted, with partial progress.
            var interrupted: KEKRotationStatus?
            for _ in 0..<300 {
                interrupted = try await Keyring.kekRotationStatus(pool: f.ownerPool)
                if interrupted?.state == .interrupted { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let partial = try #require(interrupted)
            #expect(partial.state == .interrupted && partial.finishedAt == nil)
            #expect(partial.rowsTotal == 90 && partial.rowsDone >= 70 && partial.rowsDone < 90, "\(partial)")
            let versionsBefore = try await Self.liveVersions(f.ownerPool, last)
            #expect(versionsBefore == [1, 2], "the last tenant is half-way: \(versionsBefore)")

            // Resumed over HTTP: a gateway runs it; privacyctl needs no database URL or root key.
            let gateway = try await f.startGateways(1, poolSize: 4, operatorTenant: ops.id)[0]
            defer { _ = gateway.stop() }
            let resumed = try Subprocess.runProduct(
                "privacyctl", ["keys", "rotate", "--json"],
                environment: ["PRIVACY_ADDR": "127.0.0.1:\(gateway.port)", "PRIVACY_TOKEN": operatorKey])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let final = jsonObject(resumed.stdout)
            #expect(
                final["state"] as? String == "finished" && final["rows_done"] as? Int == 90 && final["tenants_done"] as? Int == 4,
                "\(resumed.stdout)")
            #expect(final["id"] as? String == partial.id.lowercasedString, "the same rotation, resumed")

            // No tenant rotated twice: each has exactly one new version, every subject key under it.
            for tenant in order {
                #expect(try await Self.liveVersions(f.ownerPool, tenant) == [2], "\(tenant)")
                let highest = try await f.ownerPool.query(
                    "SELECT max(version)::int AS v FROM keyring.tenant_keys WHERE tenant_id = $1", [tenant]
                ).first!.decode("v", as: Int.self)
                #expect(highest == 2)
                try await Self.expectUnchanged(f.ownerPool, f.keyring, tenant, subjects[tenant]!)
            }
            let rotations = try await f.ownerPool.query("SELECT count(*)::int AS n FROM keyring.kek_rotations").first!.decode(
                "n", as: Int.self)
            #expect(rotations == 1)
        }
    }
}
