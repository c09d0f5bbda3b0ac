import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Outbound
import Postgres
import Privacy
import Sodium
import TestSupport
import Testing

@testable import Gateway

#if canImport(Glibc)
    import Glibc
#endif

private let crmSecret = "crm-secret-0123456789abcdefghijklmnopqrstuvwxyz"

@Suite("Processors' outbound calls and callback route under attack: names resolving inside the network, callback floods")
struct ProcessorOutboundTests {
    @Test("a host name resolving to an internal address is classified by its addresses, not by how it is spelled")
    func resolvedClassification() async throws {
        let own = ownHostName()
        #expect(OutboundHost.classify(own) == .public, "the literal classifier reads \(own) as a name")
        let resolved = await OutboundHost.resolveDetached(own)
        // Loopback (/etc/hosts) or the container's private address; unresolvable is refused too.
        #expect(resolved.target != .public, "\(own) → \(resolved.addresses)")
        // Literals are classified as written, never resolved.
        #expect(OutboundHost.resolve("127.0.0.1").target == .loopback && OutboundHost.resolve("127.0.0.1").addresses.isEmpty)
        #expect(OutboundHost.resolve("[::1]").target == .loopback)
        #expect(OutboundHost.resolve("169.254.169.254").target == .private)
        #expect(OutboundHost.resolve("2852039166").target == .private)
        #expect(OutboundHost.resolve("localhost").target == .loopback)
    }

    @Test("a webhook whose name resolves to this machine is refused at each send: nothing sent, a failed attempt recorded and retried")
    func nameResolvingToLoopbackRefused() async throws {
        let own = ownHostName()
        try await TestProcessor.run { processor, port in
            // No loopback http allowance: as in production.
            try await PrivacyRouteFixture.run(configure: {
                $0.processorRetryBase = .zero; $0.processorAttemptTimeout = .seconds(5)
            }) { f in
                let key = try await f.adminKey(f.acme)
                // Accepted at declaration (a name is not resolved then: it may not resolve yet)…
                let crm = try await f.declare("crm", url: "https://\(own):\(port)/crm", secret: crmSecret, key: key)
                let id = try await f.erasureWaitingForProcessors(f.alice)
                // …refused at each send, before any connection.
                #expect(try await f.service.dispatchProcessorCalls() == 1)
                #expect(try await f.service.dispatchProcessorCalls() == 1)
                let row = try #require(
                    try await f.auth.owner.query(
                        "SELECT last_error, attempts, delivered_at IS NULL AS undelivered FROM privacy.processor_calls WHERE request_id = $1 AND processor_id = $2",
                        [id, crm]
                    ).first)
                let error: String = try row.decode("last_error")
                #expect(
                    ["webhook_url refused: its host resolves to an internal address", "webhook_url's host did not resolve"].contains(error),
                    "\(error)")
                #expect(try row.decode("attempts", as: Int.self) == 2 && row.decode("undelivered", as: Bool.self))
                #expect(await processor.calls.isEmpty)
                #expect(try await f.outcomes(id)["crm"]?.outcome == nil)
            }
        }
    }

    @Test(
        "with loopback http allowed (development), a webhook whose name resolves to this machine is still refused at each send: the allowance is for URLs naming loopback"
    )
    func loopbackAllowanceIsForLoopbackURLs() async throws {
        let own = ownHostName()
        try await TestProcessor.run { processor, port in
            try await PrivacyRouteFixture.run(configure: {
                $0.processorsAllowLoopbackHTTP = true
                $0.processorRetryBase = .zero; $0.processorAttemptTimeout = .seconds(5)
            }) { f in
                let key = try await f.adminKey(f.acme)
                let crm = try await f.declare("crm", url: "https://\(own):\(port)/crm", secret: crmSecret, key: key)
                let id = try await f.erasureWaitingForProcessors(f.alice)
                #expect(try await f.service.dispatchProcessorCalls() == 1)
                let row = try #require(
                    try await f.auth.owner.query(
                        "SELECT last_error FROM privacy.processor_calls WHERE request_id = $1 AND processor_id = $2", [id, crm]
                    ).first)
                let error: String = try row.decode("last_error")
                #expect(
                    ["webhook_url refused: its host resolves to an internal address", "webhook_url's host did not resolve"].contains(error),
                    "\(error)")
                #expect(await processor.calls.isEmpty)
            }
        }
    }

    @Test(
        "the callback route takes at most the configured callbacks a minute per address and per processor: past it 429 with Retry-After, before any signature is checked, recording nothing"
    )
    func callbackFloodLimited() async throws {
        try await TestProcessor.run { _, port in
            try await PrivacyRouteFixture.run(configure: {
                $0.processorsAllowLoopbackHTTP = true
                $0.processorCallbacksPerMinute = 3
            }) { f in
                let key = try await f.adminKey(f.acme)
                let crm = try await f.declare("crm", url: "http://127.0.0.1:\(port)/crm", secret: crmSecret, key: key)
                let id = try await f.erasureWaitingForProcessors(f.alice).lowercasedString
                // Three forged attempts are checked (401); the fourth, even correctly signed, is not.
                for _ in 0..<3 {
                    #expect(try await f.callback(UUID(), request: id, outcome: "confirmed", secret: crmSecret).status == .unauthorized)
                }
                let body = #"{"request_id": "\#(id)", "outcome": "confirmed"}"#
                let now = Int(Date().timeIntervalSince1970)
                let signature = ProcessorSignature.sign(
                    body: Array(body.utf8), processorID: crm.lowercasedString, timestamp: now, requestID: id,
                    secret: try .init(copying: Array(crmSecret.utf8)))
                let (status, retryAfter, answer) = try await f.client.execute(
                    uri: "/v1/privacy/processors/\(crm.lowercasedString)/callback", method: .post,
                    headers: [.contentType: "application/json", .pgwTimestamp: String(now), .pgwRequestID: id, .pgwSignature: signature],
                    body: ByteBuffer(string: body)
                ) { response in (response.status, response.headers[.retryAfter], String(buffer: response.body)) }
                #expect(status == .tooManyRequests, "\(answer)")
                let seconds = try #require(retryAfter.flatMap { Int($0) })
                #expect((1...60).contains(seconds))
                let error = try f.object(answer)
                #expect(error["code"] as? String == "PGW429" && error.keys.contains("hint"))
                #expect(try await f.outcomes(try #require(UUID(uuidString: id)))["crm"]?.outcome == nil)
            }
        }
    }

    @Test(
        "the limiter counts per address and per processor: another address naming a flooded processor waits, another processor from a fresh address does not"
    )
    func limiterKeys() {
        let limiter = CallbackRateLimiter(limit: 2)
        #expect(limiter.admit(processor: "p", address: "a") == nil)
        #expect(limiter.admit(processor: "p", address: "a") == nil)
        #expect(limiter.admit(processor: "p", address: "a") != nil)  // both keys full
        #expect(limiter.admit(processor: "q", address: "b") == nil)
        #expect(limiter.admit(processor: "p", address: "c") != nil)  // p is full whatever the address
        #expect(limiter.admit(processor: "r", address: "c") == nil)
        #expect(limiter.admit(processor: "s", address: "c") != nil)  // c is full (its refused attempt at p counted)
        #expect(limiter.admit(processor: "q", address: nil) == nil)  // no address known: one shared key
        if let wait = limiter.admit(processor: "p", address: "d") { #expect((1...60).contains(wait)) } else { Issue.record("p admitted") }
    }
}
