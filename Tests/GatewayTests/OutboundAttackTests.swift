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
@testable import Privacy

#if canImport(Glibc)
    import Glibc
#endif

/// PinnedHTTP and OutboundHost under attack: address spellings, IPv6 transition forms, redirects,
/// servers that answer slowly or never, cancelled callers, and names resolving to this machine.
@Suite("Outbound requests attacked: spellings, IPv6 transition forms, redirects, stalled servers")
struct OutboundAttackTests {
    final class Flag: Sendable {
        private let storage = Mutex(false)
        var isSet: Bool { storage.withLock { $0 } }
        func set() { storage.withLock { $0 = true } }
    }

    final class Paths: Sendable {
        private let storage = Mutex<[String]>([])
        var seen: [String] { storage.withLock { $0 } }
        func append(_ path: String) { storage.withLock { $0.append(path) } }
    }

    /// A loopback server: `/hop` redirects to `/landed` on itself (and `/metadata` to the cloud
    /// metadata service), `/stall` answers a head and a first byte, then withholds the rest of the
    /// body until the test ends.
    private static func withServer(_ body: @Sendable (Int, Paths) async throws -> Void) async throws {
        let paths = Paths()
        let released = Flag()
        let router = Router()
        router.get("/hop") { request, _ -> Response in
            paths.append("/hop")
            let port = request.head.authority?.split(separator: ":").last.map(String.init) ?? ""
            return Response(status: .found, headers: [.location: "http://127.0.0.1:\(port)/landed"])
        }
        router.get("/metadata") { _, _ -> Response in
            paths.append("/metadata")
            return Response(status: .found, headers: [.location: "http://169.254.169.254/latest/meta-data/"])
        }
        router.get("/landed") { _, _ -> String in
            paths.append("/landed")
            return #"{"keys": []}"#
        }
        router.get("/stall") { _, _ -> Response in
            paths.append("/stall")
            return Response(
                status: .ok,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: #"{"keys": ["#))
                    while !released.isSet { try await Task.sleep(for: .milliseconds(50)) }
                    try await writer.finish(nil)
                })
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            defer { released.set() }
            try await body(try #require(client.port), paths)
        }
    }

    /// A loopback port that accepts connections (the kernel completes them) and never reads or answers.
    private static func withSilentPort(_ body: (Int) async throws -> Void) async throws {
        let (fd, port) = try boundLoopbackSocket()
        defer { close(fd) }
        try #require(listen(fd, 16) == 0)
        try await body(port)
    }

    /// Runs `work`, or records an issue when it is still running long after any deadline it was given.
    private static func finishes<T: Sendable>(_ what: String, _ work: @escaping @Sendable () async -> T) async -> T? {
        await withTaskGroup(of: T?.self) { group in
            group.addTask { await work() }
            group.addTask {
                try? await Task.sleep(for: .seconds(60))
                return nil
            }
            defer { group.cancelAll() }
            let first = await group.next() ?? nil
            if first == nil { Issue.record("\(what) was still running after 60 s") }
            return first
        }
    }

    @Test("IPv6 forms that carry or tunnel an internal IPv4 address are internal: mapped, NAT64, 6to4, Teredo; zones are invalid")
    func ipv6TransitionForms() {
        let expected: [(String, OutboundHost)] = [
            ("::ffff:169.254.169.254", .private), ("[::ffff:a9fe:a9fe]", .private), ("::ffff:7f00:1", .loopback),
            ("::127.0.0.1", .loopback), ("64:ff9b::7f00:1", .loopback), ("64:ff9b::a9fe:a9fe", .private),
            ("64:ff9b::808:808", .public), ("64:ff9b:1::a9fe:a9fe", .private),
            // 6to4: the IPv4 address sits in bits 16–47.
            ("2002:7f00:1::", .loopback), ("[2002:7f00:0001::1]", .loopback), ("2002:a9fe:a9fe::", .private),
            ("2002:a9fe::", .private), ("2002:0a00:0001::1", .private), ("2002:c0a8:0101::", .private),
            ("2002:0808:0808::1", .public),
            // Teredo: the client's address is obfuscated, the tunnel ends who knows where.
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", .private), ("2001::1", .private),
            ("fe80::1%eth0", .invalid), ("[fe80::1%25eth0]", .invalid), ("fe80::1", .private), ("fec0::1", .private),
            ("fd00::1", .private), ("ff02::1", .private), ("::", .private), ("::1", .loopback), ("[::1]", .loopback),
            ("2606:4700:4700::1111", .public), ("2001:4860:4860::8888", .public),
        ]
        for (host, target) in expected {
            #expect(OutboundHost.classify(host) == target, "\(host)")
            if target != .public { #expect(OutboundHost.resolve(host).target != .public, "\(host)") }
        }
    }

    @Test("IPv4 spellings and names classify as the resolver reads them: trailing dots, uppercase, short, octal, hex, one number")
    func ipv4SpellingsAndNames() async {
        let expected: [(String, OutboundHost)] = [
            ("127.0.0.1.", .loopback), ("127.1", .loopback), ("0x7F.0.0.1", .loopback), ("0177.0.0.1", .loopback),
            ("2130706433", .loopback), ("0x7f000001", .loopback), ("LOCALHOST.", .loopback), ("Foo.LocalHost", .loopback),
            ("169.254.169.254.", .private), ("0251.0376.0251.0376", .private), ("0xA9FEA9FE", .private),
            ("Metadata.Google.Internal.", .private), ("0.0.0.0", .private), ("0", .private), ("100.64.0.1", .private),
            ("192.0.0.170", .private), ("255.255.255.255", .private), ("8.8.8.8", .public), ("", .invalid), ("...", .invalid),
        ]
        for (host, target) in expected { #expect(OutboundHost.classify(host) == target, "\(host)") }
        // A name resolving here, however spelled, is resolved and refused.
        let own = ownHostName()
        for spelling in [own, own.uppercased(), own + ".", own.uppercased() + "."] {
            #expect(await PinnedHTTP.check(spelling, reach: .init()) != .success(PinnedHTTP.Target(address: nil)), "\(spelling)")
            #expect(OutboundHost.resolve(spelling).target != .public, "\(spelling)")
        }
        // Userinfo does not change the host a URL names; both callers refuse credentials anyway.
        #expect(URL(string: "https://example.com@169.254.169.254:443/jwks")?.host == "169.254.169.254")
        #expect(TenantKeys.jwksURLProblem("https://example.com@127.0.0.1/jwks", allowsInsecureLoopback: true) != nil)
        #expect(throws: (any Error).self) {
            try PrivacyService.checkWebhookURL("https://user:pw@example.com/hook", allowLoopbackHTTP: false)
        }
    }

    @Test("a redirect is answered, never followed: not to the server's own other path, not to the metadata service")
    func redirectsNotFollowed() async throws {
        try await Self.withServer { port, paths in
            for path in ["/hop", "/metadata"] {
                let status = try await PinnedHTTP.execute(
                    HTTPClientRequest(url: "http://pinned.invalid:\(port)\(path)"), to: PinnedHTTP.Target(address: "127.0.0.1"),
                    deadline: .now() + .seconds(30)
                ) { $0.status.code }
                #expect(status == 302)
            }
            #expect(paths.seen == ["/hop", "/metadata"])
            let lines = LogLines()
            var options = JWKSCache.Options()
            options.allowsInsecureLoopback = true
            let cache = JWKSCache(options: options, logger: Logger(label: "jwks") { _ in CapturingLogHandler(lines: lines) })
            #expect(await cache.keys(for: "http://127.0.0.1:\(port)/metadata") == nil)
            #expect(paths.seen == ["/hop", "/metadata", "/metadata"])
            #expect(lines.lines.compactMap { $0.metadata["problem"]?.description } == ["the JWKS answered HTTP 302"])
        }
    }

    @Test("the deadline also bounds the body: a server that sends a head and withholds the body ends the call with deadlineExceeded")
    func bodyWithheldEndsAtDeadline() async throws {
        try await Self.withServer { port, paths in
            let outcome = await Self.finishes("a read of a withheld body") { () -> String in
                do {
                    let body = try await PinnedHTTP.execute(
                        HTTPClientRequest(url: "http://127.0.0.1:\(port)/stall"), to: PinnedHTTP.Target(address: nil),
                        deadline: .now() + .seconds(1)
                    ) { try await $0.body.collect(upTo: 1 << 20) }
                    return "read \(body.readableBytes) bytes"
                } catch let error as HTTPClientError where error == .deadlineExceeded {
                    return "deadline"
                } catch {
                    return "\(error)"
                }
            }
            #expect(outcome == "deadline")
            // The JWKS fetch is bounded by its fetch timeout the same way.
            let lines = LogLines()
            var options = JWKSCache.Options()
            options.allowsInsecureLoopback = true
            options.fetchTimeout = .seconds(1)
            let cache = JWKSCache(options: options, logger: Logger(label: "jwks") { _ in CapturingLogHandler(lines: lines) })
            let refused = await Self.finishes("a JWKS fetch of a withheld body") {
                await cache.keys(for: "http://127.0.0.1:\(port)/stall") == nil
            }
            #expect(refused == true)
            #expect(paths.seen == ["/stall", "/stall"])
        }
    }

    @Test("a server that accepts and never answers ends the call at its deadline; a cancelled caller ends at once")
    func silentServerAndCancellation() async throws {
        try await Self.withSilentPort { port in
            let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/")
            let outcome = await Self.finishes("a call to a silent server") { () -> String in
                do {
                    _ = try await PinnedHTTP.execute(request, to: PinnedHTTP.Target(address: nil), deadline: .now() + .seconds(1)) {
                        $0.status.code
                    }
                    return "answered"
                } catch let error as HTTPClientError where error == .deadlineExceeded {
                    return "deadline"
                } catch {
                    return "\(error)"
                }
            }
            #expect(outcome == "deadline")
            // Cancelled long before its deadline: the call ends (its client shut down), with an error.
            let task = Task { () -> String in
                do {
                    _ = try await PinnedHTTP.execute(request, to: PinnedHTTP.Target(address: nil), deadline: .now() + .seconds(3600)) {
                        $0.status.code
                    }
                    return "answered"
                } catch {
                    return "failed"
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            task.cancel()
            #expect(await Self.finishes("a cancelled call") { await task.value } == "failed")
        }
    }

    @Test(
        "the JWKS loopback flag admits a URL naming this machine, not a name that merely resolves here: refused before any connection"
    )
    func jwksLoopbackFlagIsForLoopbackURLs() async throws {
        let own = ownHostName()
        try await Self.withServer { port, paths in
            let lines = LogLines()
            var options = JWKSCache.Options()
            options.allowsInsecureLoopback = true
            let cache = JWKSCache(options: options, logger: Logger(label: "jwks") { _ in CapturingLogHandler(lines: lines) })
            #expect(await cache.keys(for: "https://\(own):\(port)/landed") == nil)
            #expect(lines.lines.compactMap { $0.metadata["problem"]?.description } == ["its host resolves to an internal address"])
            // A URL that names loopback is still fetched with the flag.
            _ = await cache.keys(for: "http://127.0.0.1:\(port)/landed")
            #expect(paths.seen == ["/landed"])
        }
    }
}
