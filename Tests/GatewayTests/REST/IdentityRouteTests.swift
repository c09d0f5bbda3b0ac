import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import Postgres
import Privacy
import Sodium
import Tenancy
import TestSupport
import Testing

@testable import Gateway

struct Unreachable: Error {}

/// Codes "sent" to subjects, kept in memory for the test to read as the person would.
final class CodeInbox: IdentityNotifier, @unchecked Sendable {
    private let lock = NSLock()
    private var codes: [IdentityCode] = []
    /// While set, deliveries fail (an unreachable webhook).
    var failing = false

    func deliver(_ code: IdentityCode) async throws {
        try lock.withLock {
            if failing { throw Unreachable() }
            codes.append(code)
        }
    }

    var delivered: [IdentityCode] { lock.withLock { codes } }
    func last(_ request: String) throws -> String {
        try #require(lock.withLock { codes.last { $0.requestID.lowercasedString == request } }).code
    }
}

extension PrivacyRouteFixture {
    /// A request with the subject's JWT; `authTime` adds the sign-in time (seconds ago), `apikey` another key.
    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ uri: String, as tenant: TestTenant, _ user: UUID?, signedInAgo: Int? = nil,
        apikey: String? = nil, body: String? = nil
    ) async throws -> (status: HTTPResponse.Status, body: String) {
        var headers: HTTPFields = [.apikey: apikey ?? tenant.apikey, .userAgent: "identity-tests/1.0"]
        if let user {
            let extra: [String: JSONValue] = signedInAgo.map { ["auth_time": .int(Int64(Date().timeIntervalSince1970) - Int64($0))] } ?? [:]
            headers[.authorization] = "Bearer " + (try await Tokens.hs256(claims: Tokens.user(user, extra: extra), secret: tenant.secret!))
        }
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            (response.status, String(buffer: response.body))
        }
    }

    /// Files `kind` for `user` with an old sign-in; returns the request id (the code is in the inbox).
    func fileWaiting(_ path: String, _ user: UUID) async throws -> String {
        let filed = try await call(.post, "/v1/privacy/\(path)", as: acme, user, signedInAgo: 3600)
        #expect(filed.status == .accepted, "\(filed.body)")
        let body = try object(filed.body)
        let request = try #require(body["request"] as? [String: Any])
        #expect(request["status"] as? String == "received")
        let verification = try #require(body["verification"] as? [String: Any])
        #expect(verification["method"] as? String == "code")
        #expect(verification["attempts_left"] as? Int == 5)
        #expect(verification["code"] == nil)
        return try #require(request["id"] as? String)
    }

    func status(_ kind: String, _ id: String) async throws -> (status: String, reason: String?) {
        let row = try #require(
            try await auth.owner.query(
                "SELECT status, status_reason FROM public.data_\(kind)_requests WHERE id = $1::uuid", [id]
            ).first)
        return (try row.decode("status"), try row.decodeIfPresent("status_reason"))
    }
}

/// A code other than `code`.
func wrong(_ code: String) -> String { code == "000000" ? "000001" : "000000" }

@Suite("/v1/privacy identity verification")
struct IdentityRouteTests {
    static let policy = IdentityPolicy(maxAuthAge: .seconds(300))

    @Test("unhappy: wrong codes are counted, the fifth denies the request, and the right code is refused after it")
    func tooManyAttempts() async throws {
        let inbox = CodeInbox()
        try await PrivacyRouteFixture.run(identity: Self.policy, notifier: inbox) { f in
            try await f.seed(f.alice)
            let id = try await f.fileWaiting("exports", f.alice)
            let code = try inbox.last(id)
            for left in [4, 3, 2, 1] {
                let attempt = try await f.call(
                    .post, "/v1/privacy/exports/\(id)/verify", as: f.acme, f.alice, body: #"{"code": "\#(wrong(code))"}"#)
                #expect(attempt.status == .forbidden && attempt.body.contains("\(left) attempt"), "\(attempt.body)")
            }
            let last = try await f.call(
                .post, "/v1/privacy/exports/\(id)/verify", as: f.acme, f.alice, body: #"{"code": "\#(wrong(code))"}"#)
            #expect(last.status == .forbidden && last.body.contains("denied"), "\(last.body)")
            #expect(try await f.status("export", id) == ("denied", "identity_unverified: too many wrong codes"))
            let late = try await f.call(.post, "/v1/privacy/exports/\(id)/verify", as: f.acme, f.alice, body: #"{"code": "\#(code)"}"#)
            #expect(late.status == .conflict, "\(late.body)")
            let rejected = try await AuditReader.entries(
                pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.identity_code_rejected")
            #expect(rejected.count == 5 && rejected.allSatisfy { $0.outcome == "denied" })
            #expect(
                try await f.auth.owner.query("SELECT count(*) AS n FROM privacy.identity_challenges").first!.decode("n", as: Int.self) == 0)
        }
    }

    @Test("unhappy: an expired code is refused (410) and the worker's pass denies the request as identity_unverified")
    func expiredCode() async throws {
        let inbox = CodeInbox()
        try await PrivacyRouteFixture.run(identity: Self.policy, notifier: inbox) { f in
            try await f.seed(f.alice)
            let id = try await f.fileWaiting("deletions", f.alice)
            let code = try inbox.last(id)
            try await f.auth.owner.query(
                "UPDATE privacy.identity_challenges SET expires_at = now() - interval '1 second' WHERE request_id = $1::uuid", [id])
            let expired = try await f.call(.post, "/v1/privacy/deletions/\(id)/verify", as: f.acme, f.alice, body: #"{"code": "\#(code)"}"#)
            #expect(expired.status == .gone, "\(expired.body)")
            #expect(try await f.service.expireUnverified() == 1)
            #expect(try await f.status("deletion", id) == ("denied", "identity_unverified: the code expired before it was entered"))
            #expect(try await f.service.expireUnverified() == 0)
            let entries = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.request_expired")
            #expect(entries.count == 1 && entries.first?.details["reason"] == .string("identity_unverified"))
            // Filing again starts a new request with a new code.
            let again = try await f.fileWaiting("deletions", f.alice)
            #expect(again != id)
        }
    }

    @Test(
        "side doors: another subject's request, another tenant, a narrower key, no JWT, a malformed or unknown id reach nothing and spend no attempt"
    )
    func sideDoors() async throws {
        let inbox = CodeInbox()
        try await PrivacyRouteFixture.run(identity: Self.policy, notifier: inbox) { f in
            try await f.seed(f.alice)
            try await f.seed(f.bob)
            let id = try await f.fileWaiting("exports", f.alice)
            let code = try inbox.last(id)
            let body = #"{"code": "\#(code)"}"#
            // Bob with Alice's request id and her code.
            #expect(try await f.call(.post, "/v1/privacy/exports/\(id)/verify", as: f.acme, f.bob, body: body).status == .notFound)
            // Another tenant whose JWT names Alice's id.
            let initech = try await f.auth.tenant("initech", scopes: [.privacyExport, .privacyErase])
            #expect(try await f.call(.post, "/v1/privacy/exports/\(id)/verify", as: initech, f.alice, body: body).status == .notFound)
            // A key without privacy:export; a key with privacy:export on the deletion route; the other kind's route.
            #expect(try await f.call(.post, "/v1/privacy/exports/\(id)/verify", as: f.dataOnly, f.alice, body: body).status == .forbidden)
            let (_, exportOnly) = try await ServiceKeyRegistry(pool: f.auth.owner, rootKey: f.auth.rootKey).create(
                tenant: f.acme.id, scopes: [.privacyExport], name: nil)
            #expect(
                try await f.call(.post, "/v1/privacy/deletions/\(id)/verify", as: f.acme, f.alice, apikey: exportOnly, body: body).status
                    == .forbidden)
            #expect(try await f.call(.post, "/v1/privacy/deletions/\(id)/verify", as: f.acme, f.alice, body: body).status == .notFound)
            // The service key alone (the back office) cannot enter a subject's code.
            #expect(try await f.call(.post, "/v1/privacy/exports/\(id)/verify", as: f.acme, nil, body: body).status == .unauthorized)
            // Malformed codes and bodies, unknown and malformed ids.
            for bad in [
                #"{"code": "12345"}"#, #"{"code": "1234567"}"#, #"{"code": "12a456"}"#, #"{"code": 123456}"#, #"{"code": "١٢٣٤٥٦"}"#,
                #"{"code": "\#(code)", "extra": 1}"#, "{}", "not json",
            ] {
                let answer = try await f.call(.post, "/v1/privacy/exports/\(id)/verify", as: f.acme, f.alice, body: bad)
                #expect(answer.status == .badRequest, "\(bad): \(answer.status) \(answer.body)")
            }
            #expect(
                try await f.call(.post, "/v1/privacy/exports/\(UUID().uuidString.lowercased())/verify", as: f.acme, f.alice, body: body)
                    .status == .notFound)
            #expect(try await f.call(.post, "/v1/privacy/exports/not-a-uuid/verify", as: f.acme, f.alice, body: body).status == .badRequest)
            // None of that spent an attempt: the first wrong code leaves four.
            let first = try await f.call(
                .post, "/v1/privacy/exports/\(id)/verify", as: f.acme, f.alice, body: #"{"code": "\#(wrong(code))"}"#)
            #expect(first.status == .forbidden && first.body.contains("4 attempts left"), "\(first.body)")
            // The request is still Alice's to verify.
            #expect(try await f.call(.post, "/v1/privacy/exports/\(id)/verify", as: f.acme, f.alice, body: body).status == .ok)
        }
    }

    @Test("the right code moves the request on and the worker runs it; the code is never stored, audited or answered; a replay is refused")
    func verified() async throws {
        let inbox = CodeInbox()
        try await PrivacyRouteFixture.run(identity: Self.policy, notifier: inbox) { f in
            try await f.seed(f.alice)
            let id = try await f.fileWaiting("exports", f.alice)
            #expect(inbox.delivered.count == 1)
            let code = try inbox.last(id)
            #expect(code.count == 6 && code.allSatisfy(\.isASCII) && code.allSatisfy(\.isNumber))
            // Waiting for the code, the worker does not touch it.
            #expect(try await f.service.claimNext(.export) == nil)
            // Stored as a keyed hash only; nowhere in the audit trail.
            let stored = try #require(
                try await f.auth.owner.query("SELECT code_hash FROM privacy.identity_challenges WHERE request_id = $1::uuid", [id]).first)
            let hash: [UInt8] = try stored.decode("code_hash")
            #expect(hash.count == 32 && hash != SHA256.hash(Array(code.utf8)))
            func auditMentions(_ text: String) async throws -> Int {
                try await f.auth.owner.query(
                    "SELECT count(*) AS n FROM public.audit_events WHERE details::text LIKE '%' || $1 || '%'", ["\"\(text)\""]
                )
                .first!.decode("n", as: Int.self)
            }
            let ok = try await f.call(.post, "/v1/privacy/exports/\(id)/verify", as: f.acme, f.alice, body: #"{"code": "\#(code)"}"#)
            #expect(ok.status == .ok, "\(ok.body)")
            #expect(try f.object(ok.body)["status"] as? String == "pending")
            #expect(!ok.body.contains(code))
            #expect(try await auditMentions(code) == 0)
            let verifiedEntry = try await AuditReader.entries(
                pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.identity_verified")
            #expect(verifiedEntry.count == 1 && verifiedEntry.first?.details["method"] == .string("code"))
            #expect(verifiedEntry.first?.actor == "user:" + f.alice.uuidString.lowercased())
            // Filed through the privacy service: the worker takes it (it would refuse a forged row).
            let claimed = try await f.service.claimNext(.export)
            #expect(claimed?.id.lowercasedString == id)
            // Replayed: the request no longer waits for a code.
            let replay = try await f.call(.post, "/v1/privacy/exports/\(id)/verify", as: f.acme, f.alice, body: #"{"code": "\#(code)"}"#)
            #expect(replay.status == .conflict, "\(replay.body)")
        }
    }

    @Test(
        "an erasure: re-filing re-sends a new code (the old one stops working) up to the limit; the code leads to the plan; a failed delivery is a 503"
    )
    func deletionCodes() async throws {
        let inbox = CodeInbox()
        try await PrivacyRouteFixture.run(identity: Self.policy, notifier: inbox) { f in
            try await f.seed(f.alice)
            let id = try await f.fileWaiting("deletions", f.alice)
            let first = try inbox.last(id)
            let resent = try await f.call(.post, "/v1/privacy/deletions", as: f.acme, f.alice, signedInAgo: 3600)
            #expect(resent.status == .accepted && resent.body.contains(id), "\(resent.body)")
            let second = try inbox.last(id)
            #expect(inbox.delivered.count == 2)
            inbox.failing = true
            let undelivered = try await f.call(.post, "/v1/privacy/deletions", as: f.acme, f.alice, signedInAgo: 3600)
            #expect(undelivered.status == .serviceUnavailable, "\(undelivered.body)")
            #expect(!undelivered.body.contains(first) && !undelivered.body.contains(second))
            inbox.failing = false
            // Three codes were issued (the third never arrived): no fourth.
            let exhausted = try await f.call(.post, "/v1/privacy/deletions", as: f.acme, f.alice, signedInAgo: 3600)
            #expect(exhausted.status == .conflict, "\(exhausted.body)")
            // The third code replaced the second, which replaced the first.
            if first != second {
                let old = try await f.call(
                    .post, "/v1/privacy/deletions/\(id)/verify", as: f.acme, f.alice, body: #"{"code": "\#(first)"}"#)
                #expect(old.status == .forbidden)
            }
            #expect(try await f.status("deletion", id).status == "received")
        }
    }

    @Test("side door: the privacy worker sees and writes only the current tenant's codes; the table itself is closed to it")
    func tenantView() async throws {
        let inbox = CodeInbox()
        try await PrivacyRouteFixture.run(identity: Self.policy, notifier: inbox) { f in
            try await f.seed(f.alice)
            let initech = try await f.auth.tenant("initech", scopes: [.privacyExport])
            try await f.call(.get, "/v1/privacy/settings", as: initech, f.bob)
            let mine = try await f.fileWaiting("exports", f.alice)
            let theirs = try await f.service.fileUnverified(.export, tenant: initech.id, subject: f.bob, actor: PrivacyActor("test"))
                .request.id
            /// Runs `sql` as the privacy worker with acme as the current tenant.
            func asWorker(_ sql: String, _ binds: [any PostgresEncodable] = []) async throws -> QueryResult {
                try await f.auth.gateway.transaction { connection in
                    try connection.query(
                        "SELECT set_config('role', 'privacy_worker', true), set_config('request.tenant_id', $1, true)",
                        [f.acme.id.lowercasedString])
                    return try connection.query(sql, binds)
                }
            }
            let seen = try await asWorker("SELECT request_id::text AS id FROM privacy.tenant_identity_challenges").rows.map {
                try $0.decode("id", as: String.self)
            }
            #expect(seen == [mine])
            #expect(
                try await asWorker("UPDATE privacy.tenant_identity_challenges SET attempts = 0 WHERE request_id = $1::uuid", [theirs])
                    .affectedRows == 0)
            #expect(
                try await asWorker("DELETE FROM privacy.tenant_identity_challenges WHERE request_id = $1::uuid", [theirs]).affectedRows == 0
            )
            await #expect(throws: PostgresError.self) {
                _ = try await asWorker(
                    """
                    INSERT INTO privacy.tenant_identity_challenges (tenant_id, request_kind, request_id, user_id, code_hash, expires_at)
                    VALUES ($1, 'export', gen_random_uuid(), $2, decode(repeat('00', 32), 'hex'), now() + interval '1 hour')
                    """, [initech.id, f.bob])
            }
            await #expect(throws: PostgresError.self) { _ = try await asWorker("SELECT count(*) FROM privacy.identity_challenges") }
            #expect(
                try await f.auth.owner.query("SELECT count(*) AS n FROM privacy.identity_challenges WHERE request_id = $1::uuid", [theirs])
                    .first!.decode("n", as: Int.self) == 1)
        }
    }

    @Test(
        "an authorized agent's request is filed by the service key for a registered subject, and every entry names the key and the agent; forged or incomplete filings are refused"
    )
    func authorizedAgent() async throws {
        try await PrivacyRouteFixture.run(identity: Self.policy, notifier: CodeInbox()) { f in
            try await f.seed(f.alice)
            try await f.seed(f.bob)
            let initech = try await f.auth.tenant("initech", scopes: [.privacyExport, .privacyErase])
            let carol = UUID()
            try await f.call(.get, "/v1/privacy/settings", as: initech, carol)
            let agent = #"{"subject": "\#(f.alice.uuidString.lowercased())", "agent": "Fair Data Legal LLP, authorization 2026-17"}"#
            // Unhappy first: a key without the scope, a subject of another tenant, an unknown one, malformed bodies, no body.
            #expect(try await f.call(.post, "/v1/privacy/exports", as: f.dataOnly, nil, body: agent).status == .forbidden)
            let foreign = #"{"subject": "\#(carol.uuidString.lowercased())", "agent": "x"}"#
            #expect(try await f.call(.post, "/v1/privacy/exports", as: f.acme, nil, body: foreign).status == .notFound)
            #expect(
                try await f.call(
                    .post, "/v1/privacy/exports", as: f.acme, nil, body: #"{"subject": "\#(UUID().uuidString)", "agent": "x"}"#
                ).status == .notFound)
            for bad in [
                #"{"subject": "\#(f.alice.uuidString)"}"#, #"{"subject": "not-a-uuid", "agent": "x"}"#,
                #"{"subject": "\#(f.alice.uuidString)", "agent": ""}"#, #"{"subject": "\#(f.alice.uuidString)", "agent": "a\u0000b"}"#,
                #"{"subject": "\#(f.alice.uuidString)", "agent": "\#(String(repeating: "a", count: 201))"}"#,
                #"{"subject": "\#(f.alice.uuidString)", "agent": "x", "role": "service_role"}"#, "[]",
            ] {
                let answer = try await f.call(.post, "/v1/privacy/deletions", as: f.acme, nil, body: bad)
                #expect(answer.status == .badRequest, "\(bad): \(answer.status) \(answer.body)")
            }
            #expect(try await f.call(.post, "/v1/privacy/exports", as: f.acme, nil).status == .unauthorized)
            #expect(
                try await f.auth.owner.query("SELECT count(*) AS n FROM public.data_export_requests").first!.decode("n", as: Int.self) == 0)

            let filed = try await f.call(.post, "/v1/privacy/exports", as: f.acme, nil, body: agent)
            #expect(filed.status == .accepted, "\(filed.body)")
            let request = try #require(try f.object(filed.body)["request"] as? [String: Any])
            #expect(request["status"] as? String == "pending" && request["subject"] as? String == f.alice.uuidString.lowercased())
            let entries = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.export_requested")
            #expect(entries.count == 1)
            #expect(entries.first?.actor == "service_key:" + f.acme.keyID.uuidString.lowercased())
            #expect(entries.first?.details["agent"] == .string("Fair Data Legal LLP, authorization 2026-17"))
            // A JWT always files for its own subject: a body naming someone else is not read.
            let own = try await f.call(
                .post, "/v1/privacy/deletions", as: f.acme, f.bob, signedInAgo: 5,
                body: #"{"subject": "\#(f.alice.uuidString.lowercased())", "agent": "x"}"#)
            #expect(own.status == .created, "\(own.body)")
            #expect(
                try #require(try f.object(own.body)["request"] as? [String: Any])["subject"] as? String == f.bob.uuidString.lowercased())
        }
    }

    @Test(
        "a recent sign-in verifies at once (no code), and verifies a request that was waiting for one; without a maximum age the JWT suffices"
    )
    func recentSignIn() async throws {
        let inbox = CodeInbox()
        try await PrivacyRouteFixture.run(identity: Self.policy, notifier: inbox) { f in
            try await f.seed(f.alice)
            try await f.seed(f.bob)
            let fresh = try await f.call(.post, "/v1/privacy/exports", as: f.acme, f.alice, signedInAgo: 10)
            #expect(fresh.status == .accepted)
            #expect(try #require(try f.object(fresh.body)["request"] as? [String: Any])["status"] as? String == "pending")
            #expect(inbox.delivered.isEmpty)
            // No auth_time at all counts as an old sign-in.
            let unknown = try await f.call(.post, "/v1/privacy/deletions", as: f.acme, f.bob)
            #expect(unknown.status == .accepted && unknown.body.contains("\"verification\""), "\(unknown.body)")
            // A sign-in "from the future" is not a sign-in either.
            let future = try await f.call(.post, "/v1/privacy/deletions", as: f.acme, f.bob, signedInAgo: -3600)
            #expect(future.status == .accepted && future.body.contains("\"verification\""), "\(future.body)")
            let waiting = try await f.fileWaiting("deletions", f.alice)
            let signedIn = try await f.call(.post, "/v1/privacy/deletions", as: f.acme, f.alice, signedInAgo: 5)
            #expect(signedIn.status == .created, "\(signedIn.body)")
            let body = try f.object(signedIn.body)
            #expect(try #require(body["request"] as? [String: Any])["id"] as? String == waiting)
            #expect(try #require(body["request"] as? [String: Any])["status"] as? String == "awaiting_confirmation")
            #expect(body["plan"] is [String: Any])
            let method = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.identity_verified")
            #expect(method.last?.details["method"] == .string("recent_sign_in"))
            #expect(
                try await f.auth.owner.query("SELECT count(*) AS n FROM privacy.identity_challenges WHERE request_id = $1::uuid", [waiting])
                    .first!.decode("n", as: Int.self) == 0)
            // An export waiting for a code, the same way: verified by the fresh sign-in and answered 202 with its status.
            let waitingExport = try await f.fileWaiting("exports", f.bob)
            let exportSignedIn = try await f.call(.post, "/v1/privacy/exports", as: f.acme, f.bob, signedInAgo: 5)
            #expect(exportSignedIn.status == .accepted, "\(exportSignedIn.body)")
            let export = try #require(try f.object(exportSignedIn.body)["request"] as? [String: Any])
            #expect(export["id"] as? String == waitingExport && export["status"] as? String == "pending", "\(exportSignedIn.body)")
        }
        // The default policy: the subject's JWT verifies them whatever its age.
        try await PrivacyRouteFixture.run { f in
            try await f.seed(f.alice)
            let filed = try await f.call(.post, "/v1/privacy/exports", as: f.acme, f.alice)
            #expect(filed.status == .accepted && !filed.body.contains("verification"))
        }
    }
}
