import Config
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import Gateway

/// Which address audit and consent records carry: forwarding headers count only from a trusted proxy.
@Suite("Client address: forwarding headers believed only from trusted proxies")
struct ClientAddressTests {
    static let loopback = try! TrustedProxies(parsing: "127.0.0.1")

    static func headers(_ fields: [(String, String)]) -> HTTPFields {
        var headers = HTTPFields()
        for (name, value) in fields { headers.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        return headers
    }

    @Test("a peer that is not a trusted proxy is the client, whatever it forwards")
    func untrustedPeerIsTheClient() {
        let spoofed = Self.headers([("X-Forwarded-For", "203.0.113.7"), ("Forwarded", "for=203.0.113.8")])
        #expect(TrustedProxies.none.clientAddress(peer: "127.0.0.1", headers: spoofed) == "127.0.0.1")
        #expect(Self.loopback.clientAddress(peer: "192.0.2.9", headers: spoofed) == "192.0.2.9")
        #expect(Self.loopback.clientAddress(peer: nil, headers: spoofed) == nil)
    }

    @Test("through trusted proxies the client is the nearest untrusted hop: entries a client prepends are ignored")
    func nearestUntrustedHop() throws {
        let proxies = try TrustedProxies(parsing: "127.0.0.1, 10.0.0.0/8")
        #expect(proxies.clientAddress(peer: "127.0.0.1", headers: Self.headers([("X-Forwarded-For", "203.0.113.7")])) == "203.0.113.7")
        #expect(
            proxies.clientAddress(peer: "127.0.0.1", headers: Self.headers([("X-Forwarded-For", "198.51.100.1, 203.0.113.7")]))
                == "203.0.113.7")
        #expect(
            proxies.clientAddress(peer: "127.0.0.1", headers: Self.headers([("X-Forwarded-For", "203.0.113.7, 10.1.2.3")])) == "203.0.113.7"
        )
        // Two header lines are one list, in order.
        #expect(
            proxies.clientAddress(
                peer: "127.0.0.1", headers: Self.headers([("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "10.9.9.9")]))
                == "198.51.100.1")
        // Every hop trusted: the farthest one is the client.
        #expect(proxies.clientAddress(peer: "127.0.0.1", headers: Self.headers([("X-Forwarded-For", "10.0.0.1, 10.0.0.2")])) == "10.0.0.1")
        // No header: the proxy itself.
        #expect(proxies.clientAddress(peer: "127.0.0.1", headers: HTTPFields()) == "127.0.0.1")
    }

    @Test("an unknown or obfuscated hop stops the walk at the nearest known address; garbage never becomes the address")
    func unknownHops() throws {
        let proxies = try TrustedProxies(parsing: "127.0.0.1, 10.0.0.0/8")
        #expect(
            proxies.clientAddress(peer: "127.0.0.1", headers: Self.headers([("X-Forwarded-For", "203.0.113.7, unknown")])) == "127.0.0.1")
        #expect(proxies.clientAddress(peer: "127.0.0.1", headers: Self.headers([("X-Forwarded-For", "unknown, 10.0.0.4")])) == "10.0.0.4")
        #expect(proxies.clientAddress(peer: "127.0.0.1", headers: Self.headers([("Forwarded", "for=_hidden")])) == "127.0.0.1")
        #expect(
            proxies.clientAddress(peer: "127.0.0.1", headers: Self.headers([("X-Forwarded-For", "'; DROP TABLE x; --")])) == "127.0.0.1")
    }

    @Test("Forwarded (RFC 7239) is read before X-Forwarded-For: quoted, bracketed IPv6 and ports")
    func forwardedHeader() {
        let headers = Self.headers([
            ("Forwarded", #"for="[2001:db8:cafe::17]:4711";proto=https, for=127.0.0.1"#),
            ("X-Forwarded-For", "198.51.100.1"),
        ])
        #expect(Self.loopback.clientAddress(peer: "127.0.0.1", headers: headers) == "2001:db8:cafe::17")
        #expect(
            Self.loopback.clientAddress(peer: "127.0.0.1", headers: Self.headers([("Forwarded", "for=192.0.2.60:8080;by=10.0.0.1")]))
                == "192.0.2.60")
        // An IPv4-mapped peer is the IPv4 proxy it is.
        #expect(
            Self.loopback.clientAddress(peer: "::ffff:127.0.0.1", headers: Self.headers([("X-Forwarded-For", "203.0.113.7")]))
                == "203.0.113.7")
    }

    @Test("GATEWAY_TRUSTED_PROXIES: a bad entry is an error naming it; networks match by prefix")
    func parsing() throws {
        for bad in ["10.0.0.0/33", "nonsense", "1.2.3.4/x", "::/129", "1.2.3.4/-1", "1.2.3"] {
            #expect { try TrustedProxies(parsing: "127.0.0.1, \(bad)") } throws: { error in
                (error as? ConfigurationError)?.message.contains("\"\(bad)\"") == true
            }
        }
        let v6 = try TrustedProxies(parsing: "fd00::/8")
        #expect(v6.trusts(IPNetwork.bytes("fd12::1")!))
        #expect(!v6.trusts(IPNetwork.bytes("fe80::1")!))
        #expect(!v6.trusts(IPNetwork.bytes("10.0.0.1")!))
        let all = try TrustedProxies(parsing: "0.0.0.0/0")
        #expect(all.trusts(IPNetwork.bytes("203.0.113.7")!))
        let configured = try GatewayConfiguration.fromEnvironment(["GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8,192.0.2.1"])
        #expect(configured.trustedProxies.networks.count == 2)
        #expect(try GatewayConfiguration.fromEnvironment([:]).trustedProxies == .none)
    }

    @Test("a secret write's audit entry carries the forwarded client behind a trusted proxy, the peer otherwise")
    func auditRecordsTheClient() async throws {
        for (proxies, expected) in [(Self.loopback, "203.0.113.7"), (TrustedProxies.none, "127.0.0.1")] {
            try await LimitsFixture.run(limits: GatewayLimits(), setup: .live, trustedProxies: proxies) { f in
                let alice = UUID()
                var headers = try await f.headers(f.acme, alice)
                headers[.contentType] = "application/json"
                headers.append(HTTPField(name: HTTPField.Name("X-Forwarded-For")!, value: "198.51.100.1, 203.0.113.7"))
                let status = try await f.client.execute(
                    uri: "/v1/secrets/openai", method: .put, headers: headers, body: ByteBuffer(string: #"{"value": "v"}"#)
                ) { $0.status }
                #expect(status == .created || status == .ok)
                let ip = try await f.auth.owner.query(
                    "SELECT host(ip) AS ip FROM public.audit_events WHERE tenant_id = $1 AND action = 'secret.write'", [f.acme.id]
                )
                .first?.decode("ip", as: String.self)
                #expect(ip == expected)
            }
        }
    }
}
