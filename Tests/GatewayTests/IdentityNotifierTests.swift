import Foundation
import HTTPTypes
import Hummingbird
import Privacy
import Sodium
import Testing

/// What the test webhook received.
actor HookLog {
    var calls: [(timestamp: String?, signature: String?, body: [UInt8])] = []
    var answer: HTTPResponse.Status = .noContent
    func record(_ timestamp: String?, _ signature: String?, _ body: [UInt8]) -> HTTPResponse.Status {
        calls.append((timestamp, signature, body))
        return answer
    }
    func answer(with status: HTTPResponse.Status) { answer = status }
}

@Suite("Identity code notifiers")
struct IdentityNotifierTests {
    static let code = IdentityCode(
        tenant: UUID(), subject: UUID(), kind: .deletion, requestID: UUID(), code: "042917", expiresAt: "2026-12-06T10:00:00Z")

    /// A small HTTP server in the test standing in for the app's webhook; `body` gets its port.
    static func withHook(_ log: HookLog, _ body: (Int) async throws -> Void) async throws {
        let router = Router()
        router.post("/hook") { request, _ -> HTTPResponse.Status in
            let bytes = try await request.body.collect(upTo: 64 * 1024)
            return await log.record(
                request.headers[HTTPField.Name("X-PGW-Timestamp")!], request.headers[HTTPField.Name("X-PGW-Signature")!],
                Array(bytes.readableBytesView))
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) })
        let server = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        defer { server.cancel() }
        try await body(port)
    }

    @Test(
        "unhappy: a webhook that is not https (but for localhost) or a short secret is refused; a non-2xx answer is a failed delivery that does not quote the code"
    )
    func refused() async throws {
        let secret = try SecureBytes(count: 32)
        #expect(throws: PrivacyError.self) { try WebhookNotifier(url: URL(string: "http://hooks.example.com/code")!, secret: secret) }
        #expect(throws: PrivacyError.self) { try WebhookNotifier(url: URL(string: "ftp://localhost/code")!, secret: secret) }
        #expect(throws: PrivacyError.self) {
            try WebhookNotifier(url: URL(string: "https://hooks.example.com/code")!, secret: try SecureBytes(count: 16))
        }
        let log = HookLog()
        await log.answer(with: .internalServerError)
        try await Self.withHook(log) { port in
            let notifier = try WebhookNotifier(url: URL(string: "http://127.0.0.1:\(port)/hook")!, secret: secret)
            do {
                try await notifier.deliver(Self.code)
                Issue.record("a 500 answer was taken for a delivery")
            } catch let error as PrivacyError {
                #expect(error.code == .notifierFailed)
                #expect(!error.description.contains(Self.code.code))
            }
        }
    }

    @Test(
        "the webhook gets the code with a timestamp and an HMAC-SHA-256 signature the receiver recomputes; another secret or an edited body does not verify"
    )
    func signed() async throws {
        let secret = try SecureBytes(count: 32)
        let log = HookLog()
        try await Self.withHook(log) { port in
            try await WebhookNotifier(url: URL(string: "http://localhost:\(port)/hook")!, secret: secret).deliver(Self.code)
        }
        let call = try #require(await log.calls.first)
        let timestamp = try #require(call.timestamp.flatMap(Int.init))
        #expect(abs(Double(timestamp) - Date().timeIntervalSince1970) < 3600)
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(call.body)) as? [String: String])
        #expect(payload["code"] == "042917" && payload["kind"] == "deletion" && payload["type"] == "identity_code")
        #expect(payload["request_id"] == Self.code.requestID.lowercasedString && payload["user_id"] == Self.code.subject.lowercasedString)
        let signature = try #require(call.signature)
        #expect(signature == WebhookNotifier.signature(body: call.body, timestamp: timestamp, secret: secret))
        let mac = try #require(Hex.decode(String(signature.dropFirst(3))))
        #expect(HMACSHA256.isValid(mac, for: Array("\(timestamp).".utf8) + call.body, key: secret))
        #expect(!HMACSHA256.isValid(mac, for: Array("\(timestamp).".utf8) + call.body, key: try SecureBytes(count: 32)))
        #expect(!HMACSHA256.isValid(mac, for: Array("\(timestamp + 1).".utf8) + call.body, key: secret))
        #expect(!HMACSHA256.isValid(mac, for: Array("\(timestamp).".utf8) + call.body + [0x20], key: secret))
    }

    @Test("the development notifier appends codes to a file only its owner can read, and nowhere else")
    func developmentFile() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("codes-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let notifier = FileNotifier(path: path)
        try await notifier.deliver(Self.code)
        try await notifier.deliver(Self.code)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2 && lines.allSatisfy { $0.contains(#""code":"042917""#) })
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode & 0o077 == 0)
        await #expect(throws: PrivacyError.self) { try await FileNotifier(path: "/nonexistent-dir/codes.jsonl").deliver(Self.code) }
    }
}
