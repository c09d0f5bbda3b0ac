import AsyncHTTPClient
import Foundation
import NIOCore

/// The gateway's own requests to URLs a tenant chose (processors' webhooks, JWKS URLs): the host is
/// resolved once, every address it resolves to is classified (``OutboundHost/resolve(_:)``), and the
/// connection goes to one of the addresses just checked. The HTTP client is never left to resolve
/// the name again: a DNS answer that changes after the check (rebinding: TTL 0, public then internal)
/// cannot move the connection. TLS still sends the name (SNI) and checks the certificate against
/// it (AsyncHTTPClient's `dnsOverride`), and no redirect is followed.
public enum PinnedHTTP {
    /// Which internal targets a caller accepts besides public ones.
    public struct Reach: Sendable {
        /// This machine, for a URL that names it as written (`127.0.0.1`, `[::1]`, `localhost`):
        /// tests, a development identity provider. Never a name that merely resolves here, which is
        /// how a rebinding name looks.
        public var loopback: Bool
        /// Any internal address: private, link-local, CGNAT, ULA… (and loopback).
        public var privateNetwork: Bool

        public init(loopback: Bool = false, privateNetwork: Bool = false) {
            self.loopback = loopback
            self.privateNetwork = privateNetwork
        }

        /// Whether `target`, what `host` resolves to, may be called.
        func accepts(_ target: OutboundHost, host: String) -> Bool {
            switch target {
            case .public: true
            case .loopback: privateNetwork || (loopback && OutboundHost.classify(host) == .loopback)
            case .private: privateNetwork
            case .invalid: false
            }
        }
    }

    /// Why a host may not be called now.
    public enum Refusal: Error, Sendable, Equatable {
        /// The host is, or resolves to (any of its addresses), an internal address the caller does not accept.
        case internalAddress
        /// The name did not resolve, or is not a valid host.
        case unresolved
    }

    /// Where a checked host may be reached: the address to connect to, or nil for a host written as
    /// an address (connected to as written).
    public struct Target: Sendable, Equatable {
        public let address: String?
    }

    /// Resolves `host` now (off the cooperative pool) and answers where to connect, or why not.
    public static func check(_ host: String, reach: Reach) async -> Result<Target, Refusal> {
        let (target, addresses) = await OutboundHost.resolveDetached(host)
        guard target != .invalid else { return .failure(.unresolved) }
        guard reach.accepts(target, host: host) else { return .failure(.internalAddress) }
        return .success(Target(address: addresses.first))
    }

    /// Sends `request` to `target` (from ``check(_:reach:)`` of the request URL's host), never to
    /// what the name resolves to later. `deadline` bounds the whole call, the response head and
    /// what `read` takes of the body (AsyncHTTPClient's own deadline ends at the head: a server that
    /// answers a head and then trickles or withholds the body would hold the call forever), then
    /// throws `HTTPClientError.deadlineExceeded`. `read` takes what it needs of the response
    /// (nothing, or a bounded body) before the connection is closed. A client per call: its only
    /// host mapping is this one.
    public static func execute<T: Sendable>(
        _ request: HTTPClientRequest, to target: Target, deadline: NIODeadline,
        read: @escaping @Sendable (HTTPClientResponse) async throws -> T
    ) async throws -> T {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        if let address = target.address {
            guard let host = URL(string: request.url)?.host, !host.isEmpty else { throw Refusal.unresolved }
            configuration.dnsOverride = [host: address]
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let result: Result<T, any Error>
        do {
            result = .success(
                try await withThrowingTaskGroup(of: T.self) { group in
                    group.addTask { try await read(try await client.execute(request, deadline: deadline)) }
                    group.addTask {
                        let (end, now) = (deadline.uptimeNanoseconds, NIODeadline.now().uptimeNanoseconds)
                        try await Task.sleep(nanoseconds: end > now ? end - now : 0)
                        throw HTTPClientError.deadlineExceeded
                    }
                    // The first to finish wins; the other is cancelled (a body read ends with the task).
                    defer { group.cancelAll() }
                    return try await group.next()!
                })
        } catch {
            result = .failure(error)
        }
        // Closes the connection, with whatever of the body was not read.
        try? await client.shutdown()
        return try result.get()
    }
}
