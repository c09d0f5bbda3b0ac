import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Tenancy
import Testing

@testable import Gateway
@testable import Outbound

#if canImport(Glibc)
    import Glibc
#endif

/// The gateway's requests to URLs a tenant chose go to an address checked just before, never to a
/// second resolution of the name (PinnedHTTP): a DNS answer that flips from public to internal
/// after the check (rebinding) cannot move the connection.
@Suite("Outbound requests are pinned to the address just checked")
struct OutboundPinningTests {
    /// The Host (authority) of each request a test server got.
    final class Hosts: Sendable {
        private let storage = Mutex<[String]>([])
        var seen: [String] { storage.withLock { $0 } }
        func append(_ host: String) { storage.withLock { $0.append(host) } }
    }

    /// A loopback server recording the Host of each request it gets.
    private static func withServer(_ body: @Sendable (Int, Hosts) async throws -> Void) async throws {
        let hosts = Hosts()
        let router = Router()
        router.get("/jwks") { request, _ -> String in
            hosts.append(request.head.authority ?? "")
            return #"{"keys": []}"#
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in try await body(try #require(client.port), hosts) }
    }

    @Test("a request pinned to an address reaches that address under a name that resolves nowhere, and sends the name as Host")
    func pinnedToCheckedAddress() async throws {
        try await Self.withServer { port, hosts in
            // `.invalid` never resolves (RFC 6761): only the pinned address can have been used.
            let request = HTTPClientRequest(url: "http://pinned.invalid:\(port)/jwks")
            let status = try await PinnedHTTP.execute(
                request, to: PinnedHTTP.Target(address: "127.0.0.1"), deadline: .now() + .seconds(5)
            ) { $0.status.code }
            #expect(status == 200)
            #expect(hosts.seen == ["pinned.invalid:\(port)"])
        }
    }

    @Test("the check refuses a name that resolves to this machine or does not resolve, and accepts loopback only when asked")
    func checkRefusesInternalNames() async throws {
        let own = ownHostName()
        #expect(await PinnedHTTP.check(own, reach: .init()) == .failure(.internalAddress))
        // The loopback allowance is for a URL naming loopback, not for a name that resolves here.
        #expect(await PinnedHTTP.check(own, reach: .init(loopback: true)) == .failure(.internalAddress))
        #expect(await PinnedHTTP.check("pinned.invalid", reach: .init(privateNetwork: true)) == .failure(.unresolved))
        #expect(await PinnedHTTP.check("127.0.0.1", reach: .init()) == .failure(.internalAddress))
        #expect(await PinnedHTTP.check("169.254.169.254", reach: .init(loopback: true)) == .failure(.internalAddress))
        // An address as written is connected to as written; loopback only with the loopback reach.
        #expect(await PinnedHTTP.check("127.0.0.1", reach: .init(loopback: true)) == .success(PinnedHTTP.Target(address: nil)))
        if case .success(let target) = await PinnedHTTP.check(own, reach: .init(privateNetwork: true)) {
            #expect(target.address != nil, "a name is pinned to one of its checked addresses")
        } else {
            Issue.record("\(own) resolves to an internal address, which privateNetwork accepts")
        }
    }

    @Test("a JWKS URL whose name resolves to this machine is refused at the fetch, with the reason logged, and nothing is fetched")
    func jwksNameResolvingInsideIsRefused() async throws {
        let own = ownHostName()
        try await Self.withServer { port, hosts in
            let lines = LogLines()
            let cache = JWKSCache(options: JWKSCache.Options(), logger: Logger(label: "jwks") { _ in CapturingLogHandler(lines: lines) })
            // Accepted when set (a name is not resolved then: it may not resolve yet) …
            let url = "https://\(own):\(port)/jwks"
            #expect(TenantKeys.jwksURLProblem(url, allowsInsecureLoopback: false) == nil)
            // … and refused when fetched: it resolves to this machine.
            #expect(await cache.keys(for: url) == nil)
            #expect(hosts.seen.isEmpty)
            let problems = lines.lines.compactMap { $0.metadata["problem"]?.description }
            #expect(problems == ["its host resolves to an internal address"], "\(problems)")
        }
    }
}
