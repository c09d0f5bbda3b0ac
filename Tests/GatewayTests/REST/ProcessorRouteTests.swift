import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Keyring
import Postgres
import Privacy
import Sodium
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// A processor for the tests: a small HTTP server (Hummingbird, live on a loopback port) that
/// records every signed call it gets, answers 500 a set number of times first, or takes its time.
actor TestProcessor {
    struct Call: Sendable {
        let path: String
        let timestamp: String?
        let requestID: String?
        let signature: String?
        let idempotencyKey: String?
        let body: [UInt8]
    }
    private(set) var calls: [Call] = []
    private var failures: [String: Int] = [:]
    private var delays: [String: Duration] = [:]
    private var redirects: [String: String] = [:]
    private var hugeBodies: Set<String> = []
    /// Bytes of the huge bodies written before the gateway hung up.
    private(set) var hugeBytesWritten = 0
    private(set) var hugeBodyFinished = false

    func fail(_ path: String, times: Int) { failures[path] = times }
    func delay(_ path: String, by duration: Duration) { delays[path] = duration }
    /// Answers 307 to `location` (which keeps method and body: the signed call, signature and all).
    func redirect(_ path: String, to location: String) { redirects[path] = location }
    /// Answers 202 with a body of 1 GiB.
    func huge(_ path: String) { hugeBodies.insert(path) }
    func wrote(_ bytes: Int, finished: Bool) { hugeBytesWritten += bytes; if finished { hugeBodyFinished = true } }
    func answer(for path: String) -> (location: String?, huge: Bool) { (redirects[path], hugeBodies.contains(path)) }

    /// Records the call; the status to answer, after the delay set for the path.
    func receive(_ call: Call) -> (HTTPResponse.Status, Duration?) {
        calls.append(call)
        if let left = failures[call.path], left > 0 {
            failures[call.path] = left - 1
            return (.internalServerError, nil)
        }
        return (.accepted, delays[call.path])
    }

    func calls(to path: String) -> [Call] { calls.filter { $0.path == path } }

    /// Runs the processor on a free loopback port for `body`.
    static func run(_ body: @escaping @Sendable (TestProcessor, Int) async throws -> Void) async throws {
        let processor = TestProcessor()
        let router = Router()
        router.post("/:name") { request, context -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 16)
            let (status, delay) = await processor.receive(
                Call(
                    path: "/" + (context.parameters.get("name") ?? ""), timestamp: request.headers[.pgwTimestamp],
                    requestID: request.headers[.pgwRequestID], signature: request.headers[.pgwSignature],
                    idempotencyKey: request.headers[HTTPField.Name("Idempotency-Key")!], body: Array(buffer.readableBytesView)))
            if let delay { try? await Task.sleep(for: delay) }
            let (location, huge) = await processor.answer(for: "/" + (context.parameters.get("name") ?? ""))
            if let location { return Response(status: .temporaryRedirect, headers: [.location: location]) }
            if huge {
                return Response(
                    status: status,
                    body: ResponseBody { writer in
                        let chunk = ByteBuffer(repeating: 0x41, count: 1 << 16)
                        for _ in 0..<(1 << 14) {
                            try await writer.write(chunk)
                            await processor.wrote(1 << 16, finished: false)
                        }
                        await processor.wrote(0, finished: true)
                        try await writer.finish(nil)
                    })
            }
            return Response(status: status)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await body(processor, try #require(client.port))
        }
    }
}

extension PrivacyRouteFixture {
    /// A ``TestProcessor`` live on a loopback port, and the routes configured to call it
    /// (``ProcessorRouteTests/loopback(_:)``, then `configure`); `body` gets the processor's port.
    static func withProcessor(
        configure: @escaping @Sendable (inout PrivacyConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (PrivacyRouteFixture, TestProcessor, Int) async throws -> Void
    ) async throws {
        try await TestProcessor.run { processor, port in
            try await run(configure: {
                ProcessorRouteTests.loopback(&$0)
                configure(&$0)
            }) { f in try await body(f, processor, port) }
        }
    }

    /// An `admin` key of `tenant` (the admin API takes the key alone).
    func adminKey(_ tenant: TestTenant) async throws -> String {
        try await ServiceKeyRegistry(pool: auth.owner, rootKey: auth.rootKey).create(tenant: tenant.id, scopes: [.admin], name: nil).1
    }

    func admin(_ method: HTTPRequest.Method, _ uri: String, key: String, body: String? = nil) async throws -> (
        status: HTTPResponse.Status, body: String
    ) {
        var headers: HTTPFields = [.apikey: key]
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            (response.status, String(buffer: response.body))
        }
    }

    /// Declares a processor through the admin API; its id.
    func declare(_ name: String, url: String, secret: String, key: String, required: Bool = true, timeout: Int = 3600) async throws -> UUID
    {
        let answer = try await admin(
            .post, "/v1/admin/processors", key: key,
            body: """
                {"name": "\(name)", "data_kind": "\(name) records", "webhook_url": "\(url)", "secret": "\(secret)",
                 "timeout_seconds": \(timeout), "erasure_required": \(required)}
                """)
        #expect(answer.status == .created, "\(answer.body)")
        let processor = try #require(try object(answer.body)["processor"] as? [String: Any])
        let id = try #require(processor["id"] as? String)
        return try #require(UUID(uuidString: id))
    }

    /// A processor's callback as it would send it: `v2=HMAC(secret, "<processor id>.<ts>.<request id>.<body>")`;
    /// `signedAs` signs it as another processor would (a replay at the wrong route).
    func callback(
        _ processor: UUID, request: String, outcome: String, secret: String, timestamp: Int = Int(Date().timeIntervalSince1970),
        headerRequestID: String? = nil, detail: String? = nil, signature: String? = nil, signedAs: UUID? = nil, reference: String? = nil
    ) async throws -> (status: HTTPResponse.Status, body: String) {
        var body =
            detail.map { #"{"request_id": "\#(request)", "outcome": "\#(outcome)", "detail": "\#($0)"}"# }
            ?? #"{"request_id": "\#(request)", "outcome": "\#(outcome)"}"#
        if let reference { body = String(body.dropLast()) + #", "reference": "\#(reference)"}"# }
        let requestID = headerRequestID ?? request
        let key = try SecureBytes(copying: Array(secret.utf8))
        let signed =
            signature
            ?? ProcessorSignature.sign(
                body: Array(body.utf8), processorID: (signedAs ?? processor).lowercasedString, timestamp: timestamp, requestID: requestID,
                secret: key)
        let headers: HTTPFields = [
            .contentType: "application/json", .pgwTimestamp: String(timestamp), .pgwRequestID: requestID, .pgwSignature: signed,
        ]
        return try await client.execute(
            uri: "/v1/privacy/processors/\(processor.lowercasedString)/callback", method: .post, headers: headers,
            body: ByteBuffer(string: body)
        ) { response in (response.status, String(buffer: response.body)) }
    }

    /// Files and confirms alice's erasure through the routes, then runs it as the worker does
    /// until it waits for its processors; its id.
    func erasureWaitingForProcessors(_ user: UUID) async throws -> UUID {
        try await seed(user)
        let filed = try await request(.post, "/v1/privacy/deletions", as: acme, user)
        let id = try #require(try (object(filed.body)["request"] as? [String: Any])?["id"] as? String)
        #expect(try await request(.post, "/v1/privacy/deletions/\(id)/confirm", as: acme, user).status == .accepted)
        let claimed = try #require(try await service.claimNext(.deletion))
        do {
            _ = try await service.processDeletion(tenant: claimed.tenant, id: claimed.id)
            Issue.record("the erasure did not wait for its processors")
        } catch let error as PrivacyError {
            #expect(error.code == .awaitingInput, "\(error)")
        }
        #expect(try await service.request(.deletion, tenant: acme.id, id: claimed.id).status == "requires_input")
        return claimed.id
    }

    /// acme's processors `crm` (required) and `logs` on the test processor at `port`, declared
    /// through the admin API with a new admin `key`, and alice's erasure waiting for both; its `id`.
    func erasureAwaitingCRMAndLogs(
        port: Int, crmSecret: String, logsSecret: String, logsRequired: Bool = true
    ) async throws -> (key: String, crm: UUID, logs: UUID, id: UUID) {
        let key = try await adminKey(acme)
        let crm = try await declare("crm", url: "http://127.0.0.1:\(port)/crm", secret: crmSecret, key: key)
        let logs = try await declare("logs", url: "http://127.0.0.1:\(port)/logs", secret: logsSecret, key: key, required: logsRequired)
        return (key, crm, logs, try await erasureWaitingForProcessors(alice))
    }

    /// Declares a processor of `tenant` (acme by default) straight through the service, as actor `test`; its id.
    func declareThroughService(_ name: String, dataKind: String, url: String, secret: String, tenant: UUID? = nil) async throws -> String {
        try await service.declareProcessor(
            tenant: tenant ?? acme.id, ProcessorDeclaration(name: name, dataKind: dataKind, webhookURL: url, secret: secret),
            actor: PrivacyActor("test")
        ).processor.id
    }

    /// Runs `sql` on the gateway's login as the privacy worker, acme's work: role `privacy_worker`, acme as the tenant.
    func asPrivacyWorker(_ sql: String, _ binds: [any PostgresEncodable] = []) async throws -> QueryResult {
        let tenant = acme.id.lowercasedString
        return try await auth.gateway.transaction { connection in
            try connection.query("SELECT set_config('role', 'privacy_worker', true), set_config('request.tenant_id', $1, true)", [tenant])
            return try connection.query(sql, binds)
        }
    }

    /// The request's processor calls, by processor name: `processor_name`, `delivered`, `last_error`.
    func deliveries(_ id: UUID) async throws -> [PostgresRow] {
        try await auth.owner.query(
            "SELECT processor_name, delivered_at IS NOT NULL AS delivered, last_error FROM privacy.processor_calls WHERE request_id = $1 ORDER BY processor_name",
            [id]
        ).rows
    }

    func outcomes(_ id: UUID) async throws -> [String: ProcessorOutcome] {
        Dictionary(uniqueKeysWithValues: try await service.processorOutcomes(tenant: acme.id, id: id).map { ($0.name, $0) })
    }

    /// Takes the processor's deadline into the past (instead of waiting for it).
    func expire(_ processor: UUID) async throws {
        try await auth.owner.query(
            "UPDATE privacy.processor_calls SET deadline_at = now() - interval '1 second' WHERE processor_id = $1", [processor])
    }
}

private let crmSecret = "crm-secret-0123456789abcdefghijklmnopqrstuvwxyz"
private let logsSecret = "logs-secret-0123456789abcdefghijklmnopqrstuvwxyz"

@Suite("Processors: data held outside Postgres, called signed on every erasure, answers verified, listed in the certificate")
struct ProcessorRouteTests {
    static func loopback(_ configuration: inout PrivacyConfiguration) {
        configuration.processorsAllowLoopbackHTTP = true
        configuration.processorRetryBase = .zero
        // Long enough that a processor answering at once is never timed out on a loaded CI machine
        // (1 s was: a 202 the server sent counted as "no answer"), short enough for the slow-processor test.
        configuration.processorAttemptTimeout = .seconds(5)
    }

    @Test(
        "forged callbacks are refused — wrong HMAC, another processor's secret, an old or future timestamp, another tenant's request, an unknown processor — and record nothing"
    )
    func forgedCallbacks() async throws {
        try await PrivacyRouteFixture.withProcessor { f, _, port in
            let (_, crm, _, erasure) = try await f.erasureAwaitingCRMAndLogs(port: port, crmSecret: crmSecret, logsSecret: logsSecret)
            let id = erasure.lowercasedString
            // Another tenant with its own processor and its own erasure.
            let globex = try await f.auth.tenant("initech", scopes: [.privacyErase])
            let theirs = try await f.declareThroughService(
                "crm", dataKind: "crm", url: "http://127.0.0.1:\(port)/theirs", secret: crmSecret + "x", tenant: globex.id)
            let theirID = try #require(UUID(uuidString: theirs))

            let now = Int(Date().timeIntervalSince1970)
            // Wrong HMAC, and the right body signed with another processor's secret.
            #expect(
                try await f.callback(
                    crm, request: id, outcome: "confirmed", secret: crmSecret, signature: "v2=" + String(repeating: "0", count: 64)
                ).status == .unauthorized)
            #expect(try await f.callback(crm, request: id, outcome: "confirmed", secret: logsSecret).status == .unauthorized)
            #expect(
                try await f.callback(crm, request: id, outcome: "confirmed", secret: crmSecret, signature: "garbage").status
                    == .unauthorized)
            // A replayed old callback (timestamp outside the window), and one from the future.
            #expect(
                try await f.callback(crm, request: id, outcome: "confirmed", secret: crmSecret, timestamp: now - 600).status
                    == .unauthorized)
            #expect(
                try await f.callback(crm, request: id, outcome: "confirmed", secret: crmSecret, timestamp: now + 600).status
                    == .unauthorized)
            #expect(
                try await f.callback(crm, request: id, outcome: "confirmed", secret: crmSecret, timestamp: Int.min).status
                    == .unauthorized)
            // Signed for another request id than the body names.
            let other = UUID().uuidString.lowercased()
            #expect(
                try await f.callback(crm, request: id, outcome: "confirmed", secret: crmSecret, headerRequestID: other).status
                    == .badRequest)
            // Another tenant's processor, correctly signed with its own secret, naming acme's request: not its call.
            #expect(try await f.callback(theirID, request: id, outcome: "confirmed", secret: crmSecret + "x").status == .notFound)
            // A processor that does not exist answers as a bad signature: nothing says which ids exist.
            #expect(try await f.callback(UUID(), request: id, outcome: "confirmed", secret: crmSecret).status == .unauthorized)
            #expect(try await f.callback(crm, request: id, outcome: "erased-maybe", secret: crmSecret).status == .badRequest)
            #expect(try await f.outcomes(try #require(UUID(uuidString: id)))["crm"]?.outcome == nil)

            // The real one is recorded once; the same answer again is a no-op, another answer a conflict.
            #expect(try await f.callback(crm, request: id, outcome: "confirmed", secret: crmSecret).status == .ok)
            #expect(try await f.callback(crm, request: id, outcome: "confirmed", secret: crmSecret).status == .ok)
            #expect(try await f.callback(crm, request: id, outcome: "refused", secret: crmSecret).status == .conflict)
            let recorded = try await f.outcomes(try #require(UUID(uuidString: id)))
            #expect(recorded["crm"]?.outcome == "confirmed" && recorded["logs"]?.outcome == nil)
            let answers = try await AuditReader.entries(
                pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.processor_answered")
            #expect(answers.count == 1 && answers.first?.actor == "processor:" + crm.lowercasedString)
        }
    }

    @Test(
        "an erasure waits in requires_input, retries a processor after a 500, records each signed answer, and certifies every processor with its outcome; the signature covers the list"
    )
    func erasureWithProcessors() async throws {
        try await PrivacyRouteFixture.withProcessor { f, processor, port in
            await processor.fail("/crm", times: 1)
            let (_, crm, logs, id) = try await f.erasureAwaitingCRMAndLogs(
                port: port, crmSecret: crmSecret, logsSecret: logsSecret, logsRequired: false)
            // Waiting: the worker finds nothing to run, the subject's key and registration are already gone.
            #expect(try await f.service.claimNext(.deletion) == nil)
            #expect(
                try await f.auth.owner.query(
                    "SELECT count(*) AS n FROM auth.users WHERE tenant_id = $1 AND id = $2", [f.acme.id, f.alice]
                ).first!.decode("n", as: Int.self) == 0)

            // First round: crm answers 500 (retried), logs accepts. Second round: crm accepts.
            #expect(try await f.service.dispatchProcessorCalls() == 2)
            #expect(try await f.outcomes(id)["crm"]?.attempts == 1)
            #expect(try await f.service.dispatchProcessorCalls() == 1)
            #expect(try await f.service.dispatchProcessorCalls() == 0)
            let crmCalls = await processor.calls(to: "/crm")
            #expect(crmCalls.count == 2)
            // Each call is signed over timestamp, request id and body with that processor's secret, and idempotent by request id.
            for call in crmCalls + (await processor.calls(to: "/logs")) {
                let secret = call.path == "/crm" ? crmSecret : logsSecret
                let header = try #require(call.timestamp)
                let timestamp = try #require(Int(header))
                #expect(call.requestID == id.lowercasedString && call.idempotencyKey == id.lowercasedString)
                let processorID = (call.path == "/crm" ? crm : logs).lowercasedString
                #expect(
                    call.signature
                        == ProcessorSignature.sign(
                            body: call.body, processorID: processorID, timestamp: timestamp, requestID: id.lowercasedString,
                            secret: try SecureBytes(copying: Array(secret.utf8))))
                let body = try f.object(String(decoding: call.body, as: UTF8.self))
                #expect(body["type"] as? String == "erasure" && body["user_id"] as? String == f.alice.uuidString.lowercased())
                #expect(
                    body["request_id"] as? String == id.lowercasedString
                        && body["tenant_id"] as? String == f.acme.id.uuidString.lowercased())
            }
            #expect(try await f.outcomes(id)["crm"]?.attempts == 2)

            // crm confirms; logs (optional) never answers and passes its deadline.
            #expect(try await f.callback(crm, request: id.lowercasedString, outcome: "confirmed", secret: crmSecret).status == .ok)
            #expect(try await f.service.claimNext(.deletion) == nil)
            try await f.expire(logs)
            let claimed = try #require(try await f.service.claimNext(.deletion))
            #expect(claimed.id == id)
            let certificate = try await f.service.processDeletion(tenant: claimed.tenant, id: claimed.id).certificate
            #expect(certificate.outcome == "completed")
            let listed = Dictionary(uniqueKeysWithValues: (certificate.processors ?? []).map { ($0.name, $0) })
            #expect(listed["crm"]?.outcome == "confirmed" && listed["crm"]?.required == true && listed["crm"]?.answeredAt != nil)
            #expect(listed["logs"]?.outcome == "timed_out" && listed["logs"]?.required == false && listed["logs"]?.answeredAt != nil)
            #expect(try await f.service.request(.deletion, tenant: f.acme.id, id: id).status == "completed")
            // The tables were erased once: the resumed run did not erase (or count) them again.
            #expect(certificate.tables.first { $0.table == "public.projects" }?.rows == 1)
            #expect(certificate.verification.passed)

            // Signed and proven offline; editing the processors list breaks the signature.
            #expect(certificate.verify(publicKey: f.signingKey.publicKey))
            _ = try certificate.verifyOffline(publicKeys: [f.signingKey.publicKey])
            let json = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(certificate)) as! [String: Any]
            var edited = json
            var entries = try #require(edited["processors"] as? [[String: Any]])
            entries[entries.firstIndex { $0["name"] as? String == "logs" }!]["outcome"] = "confirmed"
            edited["processors"] = entries
            let forged = try JSONDecoder().decode(DeletionCertificate.self, from: try JSONSerialization.data(withJSONObject: edited))
            #expect(!forged.verify(publicKey: f.signingKey.publicKey))
            var dropped = json
            dropped["processors"] = Array(entries.prefix(1))
            #expect(
                !(try JSONDecoder().decode(DeletionCertificate.self, from: try JSONSerialization.data(withJSONObject: dropped))).verify(
                    publicKey: f.signingKey.publicKey))

            // The route shows the processors' part too; the trail has each step and never a secret.
            let status = try f.object(try await f.request(.get, "/v1/privacy/deletions/\(id.lowercasedString)", as: f.acme, nil).body)
            #expect((status["processors"] as? [[String: Any]])?.count == 2)
            for action in [
                "privacy.processor_declared", "privacy.processor_called", "privacy.processor_answered", "privacy.processor_timed_out",
            ] {
                #expect(
                    try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: action).count >= 1, "\(action)")
            }
            #expect(try await PlaintextAtRestTests.scan(f.auth.owner, for: crmSecret).hits == [])
            #expect(try await PlaintextAtRestTests.scan(f.auth.owner, for: logsSecret).hits == [])
        }
    }

    @Test(
        "a required processor that refuses, or does not answer by its deadline, makes the erasure partially_completed, and the certificate says so"
    )
    func requiredProcessorNotConfirmed() async throws {
        try await PrivacyRouteFixture.withProcessor { f, _, port in
            let (_, crm, logs, id) = try await f.erasureAwaitingCRMAndLogs(port: port, crmSecret: crmSecret, logsSecret: logsSecret)
            try await f.service.dispatchProcessorCalls()
            #expect(
                try await f.callback(crm, request: id.lowercasedString, outcome: "refused", secret: crmSecret, detail: "legal hold")
                    .status == .ok)
            try await f.expire(logs)
            // A callback after the deadline is refused: the call closes as timed_out.
            #expect(
                try await f.callback(logs, request: id.lowercasedString, outcome: "confirmed", secret: logsSecret).status == .conflict)
            let claimed = try #require(try await f.service.claimNext(.deletion))
            let certificate = try await f.service.processDeletion(tenant: claimed.tenant, id: claimed.id).certificate
            #expect(certificate.outcome == "partially_completed")
            #expect(certificate.verification.passed)  // the database part is complete; the processors are not
            let listed = Dictionary(uniqueKeysWithValues: (certificate.processors ?? []).map { ($0.name, $0) })
            #expect(listed["crm"]?.outcome == "refused" && listed["crm"]?.detail == "legal hold")
            #expect(listed["logs"]?.outcome == "timed_out")
            let request = try await f.service.request(.deletion, tenant: f.acme.id, id: id)
            #expect(request.status == "partially_completed")
            #expect(request.statusReason?.contains("crm, logs") == true)
            #expect(certificate.verify(publicKey: f.signingKey.publicKey))
        }
    }

    @Test("one slow processor does not hold up the others: its attempt ends at the attempt timeout and is retried later")
    func slowProcessor() async throws {
        try await PrivacyRouteFixture.withProcessor { f, processor, port in
            let key = try await f.adminKey(f.acme)
            await processor.delay("/slow", by: .seconds(15))
            _ = try await f.declare("slow", url: "http://127.0.0.1:\(port)/slow", secret: crmSecret, key: key)
            _ = try await f.declare("fast", url: "http://127.0.0.1:\(port)/fast", secret: logsSecret, key: key)
            let id = try await f.erasureWaitingForProcessors(f.alice)
            #expect(try await f.service.dispatchProcessorCalls() == 2)
            let recorded = try await f.deliveries(id)
            #expect(try recorded.map { try $0.decode("processor_name", as: String.self) } == ["fast", "slow"])
            #expect(try recorded[0].decode("delivered", as: Bool.self) == true)
            #expect(try recorded[1].decode("delivered", as: Bool.self) == false)
            #expect(try recorded[1].decodeIfPresent("last_error", as: String.self)?.contains("could not be reached") == true)
        }
    }

    @Test(
        "side door: the privacy worker sees and writes only the current tenant's processors and calls; the tables themselves are closed to it"
    )
    func tenantViews() async throws {
        try await PrivacyRouteFixture.run(configure: Self.loopback) { f in
            let initech = try await f.auth.tenant("initech", scopes: [.admin])
            let mine = try await f.declareThroughService("crm", dataKind: "crm", url: "https://a.example/pgw", secret: crmSecret)
            let theirs = try await f.declareThroughService(
                "crm", dataKind: "crm", url: "https://b.example/pgw", secret: logsSecret, tenant: initech.id)
            #expect(
                try await f.asPrivacyWorker("SELECT id::text AS id FROM privacy.tenant_processors").rows.map {
                    try $0.decode("id", as: String.self)
                }
                    == [mine])
            #expect(
                try await f.asPrivacyWorker(
                    "UPDATE privacy.tenant_processors SET webhook_url = 'https://evil.example' WHERE id = $1::uuid", [theirs]
                ).affectedRows == 0)
            #expect(try await f.asPrivacyWorker("DELETE FROM privacy.tenant_processors WHERE id = $1::uuid", [theirs]).affectedRows == 0)
            await #expect(throws: PostgresError.self) {
                _ = try await f.asPrivacyWorker(
                    """
                    INSERT INTO privacy.tenant_processor_calls (tenant_id, request_kind, request_id, processor_id, processor_name, data_kind, required, user_id, deadline_at)
                    VALUES ($1, 'deletion', gen_random_uuid(), $2::uuid, 'crm', 'crm', true, gen_random_uuid(), now())
                    """, [initech.id, theirs])
            }
            await #expect(throws: PostgresError.self) { _ = try await f.asPrivacyWorker("SELECT count(*) FROM privacy.processors") }
            await #expect(throws: PostgresError.self) { _ = try await f.asPrivacyWorker("SELECT count(*) FROM privacy.processor_calls") }
            // Request roles reach neither.
            await #expect(throws: PostgresError.self) {
                _ = try await f.auth.gateway.transaction { connection in
                    try connection.query("SELECT set_config('role', 'service_role', true)")
                    return try connection.query("SELECT count(*) FROM privacy.tenant_processors")
                }
            }
        }
    }

    @Test(
        "the admin API declares, lists and removes a tenant's processors: secret sealed and never listed, tenant-local, scope admin, bad input 400"
    )
    func adminRoutes() async throws {
        try await PrivacyRouteFixture.run(configure: Self.loopback) { f in
            let key = try await f.adminKey(f.acme)
            let otherTenant = try await f.auth.tenant("initech", scopes: [.admin])
            // Without a secret the gateway makes one and shows it once.
            let created = try await f.admin(
                .post, "/v1/admin/processors", key: key,
                body: """
                    {"name": "openai", "data_kind": "assistant threads", "webhook_url": "https://erasure.example.com/pgw"}
                    """)
            #expect(created.status == .created)
            let secret = try #require(try f.object(created.body)["secret"] as? String)
            #expect(secret.count == 64)
            let id = try #require((try f.object(created.body)["processor"] as? [String: Any])?["id"] as? String)
            let listed = try await f.admin(.get, "/v1/admin/processors", key: key)
            #expect(listed.status == .ok && listed.body.contains("openai") && !listed.body.contains(secret))
            #expect(try await PlaintextAtRestTests.scan(f.auth.owner, for: secret).hits == [])
            let declared = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.processor_declared")
            #expect(declared.count == 1 && declared.first?.actor?.hasPrefix("service_key:") == true)

            // Bad input: precise 400s, nothing written.
            for body in [
                #"{"name": "Bad Name", "data_kind": "x", "webhook_url": "https://a.example"}"#,
                #"{"name": "a", "data_kind": "x", "webhook_url": "http://a.example/hook"}"#,
                #"{"name": "a", "data_kind": "x", "webhook_url": "https://user:pw@a.example/hook"}"#,
                #"{"name": "a", "data_kind": "x", "webhook_url": "https://a.example/hook?token=abc"}"#,
                #"{"name": "a", "data_kind": "x", "webhook_url": "https://a.example", "secret": "short"}"#,
                #"{"name": "a", "data_kind": "x", "webhook_url": "https://a.example", "timeout_seconds": 0}"#,
                #"{"name": "a", "data_kind": "", "webhook_url": "https://a.example"}"#,
                #"{"name": "a", "data_kind": "x", "webhook_url": "https://a.example", "colour": "red"}"#,
                #"{"name": "a"}"#,
            ] {
                let answer = try await f.admin(.post, "/v1/admin/processors", key: key, body: body)
                #expect(answer.status == .badRequest, "\(body) → \(answer.status) \(answer.body)")
            }
            #expect(
                try await f.admin(
                    .post, "/v1/admin/processors", key: key,
                    body: """
                        {"name": "openai", "data_kind": "x", "webhook_url": "https://b.example"}
                        """
                ).status == .conflict)
            #expect(try await f.service.processors(tenant: f.acme.id).count == 1)

            // Another tenant's admin key: sees none of acme's, cannot remove or target them.
            let theirs = try await f.admin(.get, "/v1/admin/processors", key: otherTenant.apikey)
            #expect(theirs.status == .ok && !theirs.body.contains("openai"))
            #expect(
                try await f.admin(.get, "/v1/admin/processors?tenant_id=\(f.acme.id.uuidString.lowercased())", key: otherTenant.apikey)
                    .status == .notFound)
            #expect(try await f.admin(.delete, "/v1/admin/processors/\(id)", key: otherTenant.apikey).status == .notFound)
            // A key without admin, and a user's JWT: refused.
            #expect(try await f.admin(.get, "/v1/admin/processors", key: f.acme.apikey).status == .forbidden)
            #expect(try await f.request(.get, "/v1/admin/processors", as: f.acme, f.alice).status == .forbidden)
            #expect(try await f.admin(.get, "/v1/admin/processors", key: "pgw_nonsense").status == .unauthorized)
            #expect(try await f.admin(.delete, "/v1/admin/processors/not-a-uuid", key: key).status == .badRequest)

            #expect(try await f.admin(.delete, "/v1/admin/processors/\(id)", key: key).status == .ok)
            #expect(try await f.admin(.delete, "/v1/admin/processors/\(id)", key: key).status == .notFound)
            #expect(try await f.service.processors(tenant: f.acme.id).isEmpty)
        }
    }
}
