import Config
import Foundation
import Hummingbird
import HummingbirdTLS
import NIOSSL

/// TLS on the gateway's own listener (issue 17, item 5): `GATEWAY_TLS_CERT_FILE` (a PEM chain, the
/// server's certificate first) and `GATEWAY_TLS_KEY_FILE` (its PEM private key). Optional: behind
/// a TLS-terminating proxy on the same host, leave both unset.
///
/// Everything is checked before the server starts, and each problem names its file: unreadable,
/// not PEM, an empty chain, a key that does not belong to the certificate. swift-nio-ssl
/// (BoringSSL) does the TLS; TLS 1.2 is the minimum.
public enum ListenerTLS {
    public static func configuration(certificateFile: String, keyFile: String) throws -> TLSConfiguration {
        for (variable, path) in [("GATEWAY_TLS_CERT_FILE", certificateFile), ("GATEWAY_TLS_KEY_FILE", keyFile)] {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ConfigurationError("\(variable) \(path) does not exist or cannot be read")
            }
        }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        } catch {
            throw ConfigurationError("GATEWAY_TLS_CERT_FILE \(certificateFile) is not a PEM certificate chain")
        }
        guard !chain.isEmpty else {
            throw ConfigurationError("GATEWAY_TLS_CERT_FILE \(certificateFile) holds no certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            // The key's bytes are never quoted.
            throw ConfigurationError("GATEWAY_TLS_KEY_FILE \(keyFile) is not a PEM private key (an encrypted key is not supported)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do {
            // BoringSSL refuses a key that does not match the leaf certificate here, not at the first handshake.
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigurationError(
                "GATEWAY_TLS_KEY_FILE \(keyFile) does not match the certificate in GATEWAY_TLS_CERT_FILE \(certificateFile)")
        }
        return configuration
    }
}

extension GatewayConfiguration {
    /// The listener's TLS configuration, or nil for plain HTTP; both files or neither.
    public func listenerTLS() throws -> TLSConfiguration? {
        switch (tlsCertificateFile, tlsKeyFile) {
        case (nil, nil): return nil
        case (let certificate?, let key?): return try ListenerTLS.configuration(certificateFile: certificate, keyFile: key)
        case (nil, _?): throw ConfigurationError("GATEWAY_TLS_KEY_FILE is set but GATEWAY_TLS_CERT_FILE is not: set both, or neither")
        case (_?, nil): throw ConfigurationError("GATEWAY_TLS_CERT_FILE is set but GATEWAY_TLS_KEY_FILE is not: set both, or neither")
        }
    }
}
