import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where an outbound URL's host points, for the gateway's own requests to URLs a tenant chose
/// (processors' webhooks, JWKS URLs): one classifier, so no caller checks "internal" its own way.
/// Internal means loopback, private, link-local (the cloud metadata service at 169.254.169.254),
/// CGNAT, ULA, multicast, unspecified, IPv6 forms of an internal IPv4 address (mapped, NAT64,
/// 6to4), Teredo, and IPv4 written as one number or in octal/hex (the
/// resolver reads those as addresses). ``classify(_:)`` reads the name as written;
/// ``resolve(_:)`` also resolves a host *name* and classifies every address it resolves to.
public enum OutboundHost: Sendable, Equatable {
    case `public`, loopback, `private`, invalid

    /// What a URL's host names, as the resolver would read it.
    public static func classify(_ raw: String) -> OutboundHost {
        var host = raw.lowercased()
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        while host.hasSuffix(".") { host.removeLast() }
        guard !host.isEmpty, !host.contains("%") else { return .invalid }
        if host == "localhost" || host.hasSuffix(".localhost") { return .loopback }
        if host.hasSuffix(".internal") || host.hasSuffix(".local") { return .private }  // metadata.google.internal, mDNS
        func v4(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> OutboundHost {
            switch (a, b, c) {
            case (127, _, _): return .loopback
            case (0, _, _), (10, _, _), (169, 254, _), (192, 168, _), (192, 0, 0): return .private
            case (100, 64...127, _), (172, 16...31, _), (198, 18...19, _), (224...255, _, _): return .private
            default: return .public
            }
        }
        if host.contains(":") {
            var address = in6_addr()
            guard inet_pton(AF_INET6, host, &address) == 1 else { return .invalid }
            let b = withUnsafeBytes(of: &address) { Array($0) }
            if b[0..<15].allSatisfy({ $0 == 0 }) { return b[15] == 1 ? .loopback : .private }  // ::1, ::
            if b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xff, b[11] == 0xff { return v4(b[12], b[13], b[14]) }  // ::ffff:a.b.c.d
            if b[0..<12].allSatisfy({ $0 == 0 }) { return v4(b[12], b[13], b[14]) }  // ::a.b.c.d
            // 64:ff9b::/96
            if b[0] == 0x00, b[1] == 0x64, b[2] == 0xff, b[3] == 0x9b, b[4..<12].allSatisfy({ $0 == 0 }) { return v4(b[12], b[13], b[14]) }
            // 6to4 2002::/16 carries an IPv4 address in its next 32 bits (2002:7f00:1:: is 127.0.0.1)
            if b[0] == 0x20, b[1] == 0x02 { return v4(b[2], b[3], b[4]) }
            // Teredo 2001::/32 (its addresses are obfuscated) and local-use NAT64 64:ff9b:1::/48: tunnels
            // and translators to addresses this check cannot see, so internal
            if b[0] == 0x20, b[1] == 0x01, b[2] == 0, b[3] == 0 { return .private }
            if b[0] == 0x00, b[1] == 0x64, b[2] == 0xff, b[3] == 0x9b, b[4] == 0, b[5] == 0x01 { return .private }
            // ULA, link-local, site-local (deprecated, still routed by some stacks), multicast
            if b[0] & 0xfe == 0xfc || (b[0] == 0xfe && b[1] & 0x80 == 0x80) || b[0] == 0xff { return .private }
            return .public
        }
        // inet_aton reads what the resolver reads: 127.1, 2130706433, 0x7f.0.0.1, 0177.0.0.1.
        var address = in_addr()
        if host.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == "x" }), inet_aton(host, &address) != 0 {
            let b = withUnsafeBytes(of: &address) { Array($0) }
            return v4(b[0], b[1], b[2])
        }
        return .public
    }

    /// What a host name resolves to, now: the literal classification when it is an address or a
    /// name known to be internal; else every address the system resolver answers (`getaddrinfo`,
    /// IPv4 and IPv6), each classified, the least public winning (`private` over `loopback` over
    /// `public`): a name that resolves to 8.8.8.8 and 10.0.0.5 is private. A name that does not
    /// resolve is `invalid`. Blocking (the resolver's timeouts): call it off the cooperative pool
    /// (``resolveDetached(_:)``).
    public static func resolve(_ raw: String) -> (target: OutboundHost, addresses: [String]) {
        let literal = classify(raw)
        var host = raw.lowercased()
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard literal == .public, !isNumeric(host) else { return (literal, []) }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return (.invalid, []) }
        defer { freeaddrinfo(first) }
        var addresses: [String] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let current = node {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if let address = current.pointee.ai_addr,
                getnameinfo(address, current.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0
            {
                let text = String(cString: buffer)
                if !addresses.contains(text) { addresses.append(text) }
            }
            node = current.pointee.ai_next
        }
        guard !addresses.isEmpty else { return (.invalid, []) }
        var target = OutboundHost.public
        for address in addresses {
            switch classify(address) {
            case .public: continue
            case .loopback: if target == .public { target = .loopback }
            case .private, .invalid: target = .private  // an address the classifier cannot read counts as internal
            }
        }
        return (target, addresses)
    }

    /// ``resolve(_:)`` on a thread of its own, so a slow resolver blocks no task.
    public static func resolveDetached(_ host: String) async -> (target: OutboundHost, addresses: [String]) {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: resolve(host)) }
        }
    }

    /// Written as an address (IPv6, or IPv4 in any form inet_aton reads): nothing to resolve.
    private static func isNumeric(_ host: String) -> Bool {
        var address = in_addr()
        return host.contains(":") || (host.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == "x" }) && inet_aton(host, &address) != 0)
    }
}
