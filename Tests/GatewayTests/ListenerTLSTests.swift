import AsyncHTTPClient
import Config
import Foundation
import Hummingbird
import HummingbirdTLS
import NIOCore
import TestSupport
import Testing

@testable import Gateway

/// Issue 17, item 5: optional TLS on the gateway's listener, from `GATEWAY_TLS_CERT_FILE` and
/// `GATEWAY_TLS_KEY_FILE`, with self-signed certificates made by the openssl CLI in each test.
@Suite("Listener TLS: certificate and key files, HTTPS served, plain HTTP refused")
struct ListenerTLSTests {
    /// A directory with `name.crt` / `name.key` pairs (P-256, CN and SAN localhost/127.0.0.1).
    final class Files {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")

        init() throws {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(at: directory) }

        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

        @discardableResult
        func selfSigned(_ name: String) throws -> (certificate: String, key: String) {
            let result = try Subprocess.run(
                "/usr/bin/openssl",
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", path("\(name).key"), "-out", path("\(name).crt"), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                ], environment: ["PATH": "/usr/bin:/bin"])
            #expect(result.status == 0, "\(result.stderr)")
            return (path("\(name).crt"), path("\(name).key"))
        }

        func write(_ name: String, _ text: String) throws -> String {
            try text.write(toFile: path(name), atomically: true, encoding: .utf8)
            return path(name)
        }
    }

    /// The configuration error `environment` gives, or nil when it configures TLS (or none).
    static func startError(_ environment: [String: String]) -> String? {
        do {
            _ = try GatewayConfiguration.fromEnvironment(environment).listenerTLS()
            return nil
        } catch let error as ConfigurationError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test(
        "one file without the other, a missing, garbage or empty file and a key of another certificate each stop the start, naming the file"
    )
    func badFiles() throws {
        let files = try Files()
        let good = try files.selfSigned("good")
        let other = try files.selfSigned("other")
        let garbage = try files.write("garbage.pem", "not a certificate\n")
        let empty = try files.write("empty.pem", "")
        let missing = files.path("missing.pem")

        let cases: [([String: String], [String])] = [
            (["GATEWAY_TLS_CERT_FILE": good.certificate], ["GATEWAY_TLS_KEY_FILE is not"]),
            (["GATEWAY_TLS_KEY_FILE": good.key], ["GATEWAY_TLS_CERT_FILE is not"]),
            (["GATEWAY_TLS_CERT_FILE": missing, "GATEWAY_TLS_KEY_FILE": good.key], [missing, "cannot be read"]),
            (["GATEWAY_TLS_CERT_FILE": good.certificate, "GATEWAY_TLS_KEY_FILE": missing], [missing, "GATEWAY_TLS_KEY_FILE"]),
            (["GATEWAY_TLS_CERT_FILE": garbage, "GATEWAY_TLS_KEY_FILE": good.key], [garbage, "not a PEM certificate"]),
            (["GATEWAY_TLS_CERT_FILE": empty, "GATEWAY_TLS_KEY_FILE": good.key], [empty, "GATEWAY_TLS_CERT_FILE"]),
            (["GATEWAY_TLS_CERT_FILE": good.certificate, "GATEWAY_TLS_KEY_FILE": garbage], [garbage, "not a PEM private key"]),
            // The certificate's own key swapped for another: refused before serving, not at the first handshake.
            (
                ["GATEWAY_TLS_CERT_FILE": good.certificate, "GATEWAY_TLS_KEY_FILE": other.key],
                [other.key, "does not match", good.certificate]
            ),
            // A key file given as the certificate.
            (["GATEWAY_TLS_CERT_FILE": good.key, "GATEWAY_TLS_KEY_FILE": good.key], [good.key, "GATEWAY_TLS_CERT_FILE"]),
        ]
        for (environment, expected) in cases {
            let message = Self.startError(environment)
            #expect(message != nil, "\(environment) started")
            for piece in expected { #expect(message?.contains(piece) == true, "\(environment): \(message ?? "no error")") }
            // The key's bytes are never in the message.
            let keyText = try String(contentsOfFile: good.key, encoding: .utf8)
            #expect(message?.contains(keyText.split(separator: "\n")[1]) != true)
        }
        #expect(Self.startError([:]) == nil)
        #expect(Self.startError(["GATEWAY_TLS_CERT_FILE": good.certificate, "GATEWAY_TLS_KEY_FILE": good.key]) == nil)
    }

    @Test("HTTPS with a self-signed certificate answers a client that trusts it; plain HTTP to the same port gets no HTTP answer")
    func https() async throws {
        let files = try Files()
        let pair = try files.selfSigned("server")
        let tls = try #require(
            try GatewayConfiguration.fromEnvironment([
                "GATEWAY_TLS_CERT_FILE": pair.certificate, "GATEWAY_TLS_KEY_FILE": pair.key,
            ]).listenerTLS())
        try await AuthFixture.run { f in
            let services = try JWTRotationTests.services(f, operatorTenant: nil)
            let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
            let app = Application(
                router: GatewayApplication.router(services: services),
                server: try GatewayApplication.server(limits: services.limits, tls: tls),
                configuration: GatewayApplication.serverConfiguration(address: .hostname("127.0.0.1", port: 0), limits: services.limits),
                onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) })
            let server = Task { try await app.runService(gracefulShutdownSignals: []) }
            defer { server.cancel() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())

            // A client that trusts only this certificate, checking the name.
            var clientTLS = TLSConfiguration.makeClientConfiguration()
            clientTLS.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(pair.certificate))
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: clientTLS))
            // A client with the system's roots only: the self-signed certificate is not trusted.
            let strict = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                let response = try await client.execute(HTTPClientRequest(url: "https://localhost:\(port)/health"), timeout: .seconds(30))
                #expect(response.status == .ok)
                let body = try await response.body.collect(upTo: 1 << 16)
                #expect(String(buffer: body).contains("ok"), "\(String(buffer: body))")

                await #expect(throws: (any Error).self) {
                    _ = try await strict.execute(HTTPClientRequest(url: "https://localhost:\(port)/health"), timeout: .seconds(30))
                }
                // Plain HTTP to the TLS port: the handshake fails, no HTTP answer comes back.
                await #expect(throws: (any Error).self) {
                    let response = try await client.execute(
                        HTTPClientRequest(url: "http://127.0.0.1:\(port)/health"), timeout: .seconds(30))
                    _ = try await response.body.collect(upTo: 1 << 16)
                }
            } catch {
                try await client.shutdown()
                try await strict.shutdown()
                throw error
            }
            try await client.shutdown()
            try await strict.shutdown()
        }
    }
}
