import Foundation
import HTTPTypes

/// The peers allowed to say who the client is (`GATEWAY_TRUSTED_PROXIES`: addresses or CIDR
/// networks, comma-separated). Audit and consent records carry the client's address: the peer's
/// own, unless the peer is one of these proxies — then the nearest address in `Forwarded`
/// (RFC 7239) or `X-Forwarded-For` that is not a trusted proxy itself, read from the right (the
/// entries on the left are whatever the client chose to send). None by default: a gateway
/// reached directly never believes a forwarding header.
public struct TrustedProxies: Sendable, Equatable {
    public let networks: [IPNetwork]

    public static let none = TrustedProxies(networks: [])

    /// Hops examined at most: a longer chain stops there (its header is bounded anyway).
    package static let maximumHops = 32

    public init(networks: [IPNetwork]) {
        self.networks = networks
    }

    /// Parses `10.0.0.0/8, 192.0.2.1, fd00::/8`; a bad entry is an error naming it.
    public init(parsing text: String, variable: String = "GATEWAY_TRUSTED_PROXIES") throws {
        var networks: [IPNetwork] = []
        for entry in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            guard let network = IPNetwork(String(entry)) else {
                throw ConfigurationError(
                    "\(variable) must list IP addresses or CIDR networks (e.g. 10.0.0.0/8, 192.0.2.1, fd00::/8), separated by commas; \"\(entry)\" is not one"
                )
            }
            networks.append(network)
        }
        self.networks = networks
    }

    package func trusts(_ address: [UInt8]) -> Bool {
        networks.contains { $0.contains(address) }
    }

    /// The client's address for a request from `peer` (the socket's address, nil in tests
    /// without a socket) carrying `headers`.
    public func clientAddress(peer: String?, headers: HTTPFields) -> String? {
        guard let peer, !networks.isEmpty, let peerBytes = IPNetwork.bytes(peer), trusts(peerBytes) else { return peer }
        let hops: [String]
        if let forwarded = headers[values: .forwarded].nonEmpty {
            hops = forwarded.flatMap(Self.forwardedFor)
        } else {
            hops = headers[values: .xForwardedFor].flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        }
        var client = peer
        for hop in hops.reversed().prefix(Self.maximumHops) {
            // An unknown or obfuscated hop (`unknown`, `_hidden`): the nearest address known is the client's.
            guard let bytes = IPNetwork.bytes(hop) else { return client }
            client = IPNetwork.text(bytes)
            if !trusts(bytes) { return client }
        }
        return client
    }

    /// The `for=` values of one `Forwarded` field value (`for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"`).
    package static func forwardedFor(_ value: String) -> [String] {
        value.split(separator: ",").compactMap { element in
            for pair in element.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces).lowercased() == "for" else { continue }
                var node = parts[1].trimmingCharacters(in: .whitespaces)
                if node.hasPrefix("\""), node.hasSuffix("\""), node.count >= 2 { node = String(node.dropFirst().dropLast()) }
                return node
            }
            return nil
        }
    }
}

/// An IPv4 or IPv6 network (`192.0.2.0/24`, `fd00::/8`; a bare address is a network of one).
public struct IPNetwork: Sendable, Equatable {
    let address: [UInt8]
    let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.address(String(parts[0])) else { return nil }
        let bits = address.count * 8
        var length = bits
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...bits).contains(parsed), parts[1].allSatisfy(\.isASCII) else { return nil }
            length = parsed
        }
        self.address = address
        self.prefixLength = length
    }

    package func contains(_ other: [UInt8]) -> Bool {
        guard other.count == address.count else { return false }
        var remaining = prefixLength
        for (a, b) in zip(address, other) where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xff : ~(0xff >> UInt8(remaining))
            if a & mask != b & mask { return false }
            remaining -= 8
        }
        return true
    }

    /// A plain address (`192.0.2.1`, `2001:db8::1`): 4 or 16 bytes.
    package static func address(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// A hop as forwarding headers write it: an address, `192.0.2.1:8080`, `[2001:db8::1]:4711`
    /// or `[2001:db8::1]`. An IPv4-mapped IPv6 address counts as its IPv4 address.
    package static func bytes(_ hop: String) -> [UInt8]? {
        var text = Substring(hop)
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            text = text[text.index(after: text.startIndex)..<close]
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            text = text[..<colon]
        }
        guard let bytes = address(String(text)) else { return nil }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff { return Array(bytes[12...]) }
        return bytes
    }

    /// The canonical text of 4 or 16 address bytes.
    package static func text(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        return String(cString: buffer)
    }
}

extension HTTPField.Name {
    static let forwarded = HTTPField.Name("Forwarded")!
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}

extension Array {
    fileprivate var nonEmpty: Self? { isEmpty ? nil : self }
}
