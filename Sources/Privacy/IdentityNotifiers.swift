import Foundation
import JSON
import Sodium

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Sends each one-time code to the app's webhook, which reaches the person (e-mail, SMS):
/// `POST` of `{"type": "identity_code", "tenant_id", "user_id", "request_id", "kind", "code",
/// "expires_at"}` with `X-PGW-Timestamp` (Unix seconds) and `X-PGW-Signature: v1=<hex>`, the
/// HMAC-SHA-256 under the shared secret of `<timestamp>.<body>`. The receiver recomputes it (in
/// constant time) and refuses a timestamp older than a few minutes, so a captured call cannot be
/// replayed or forged. Any answer but 2xx is a failed delivery.
public struct WebhookNotifier: IdentityNotifier {
    public let url: URL
    let secret: SecureBytes
    let timeout: Duration

    /// - Throws: ``PrivacyError/Code/invalidInput`` unless `url` is https (plain http only to this
    ///   machine, for development) and `secret` has at least 32 bytes.
    public init(url: URL, secret: SecureBytes, timeout: Duration = .seconds(10)) throws {
        let local = ["localhost", "127.0.0.1", "::1"].contains(url.host ?? "")
        guard url.scheme == "https" || (url.scheme == "http" && local) else {
            throw PrivacyError(.invalidInput, "the identity webhook must be https (http only to localhost)")
        }
        guard secret.count >= 32 else { throw PrivacyError(.invalidInput, "the identity webhook secret must be at least 32 bytes") }
        self.url = url
        self.secret = secret
        self.timeout = timeout
    }

    /// The signature header's value for `body` sent at `timestamp`.
    public static func signature(body: [UInt8], timestamp: Int, secret: SecureBytes) -> String {
        "v1=" + Hex.encode(HMACSHA256.authenticate(Array("\(timestamp).".utf8) + body, key: secret))
    }

    public func deliver(_ code: IdentityCode) async throws {
        let payload: [String: String] = [
            "type": "identity_code", "tenant_id": code.tenant.lowercasedString, "user_id": code.subject.lowercasedString,
            "request_id": code.requestID.lowercasedString, "kind": code.kind.rawValue, "code": code.code, "expires_at": code.expiresAt,
        ]
        let body = try JSONCoding.encoder().encode(payload)
        let timestamp = Int(Date().timeIntervalSince1970)
        var request = URLRequest(url: url, timeoutInterval: Double(timeout.components.seconds))
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue(String(timestamp), forHTTPHeaderField: "X-PGW-Timestamp")
        request.setValue(Self.signature(body: Array(body), timestamp: timestamp, secret: secret), forHTTPHeaderField: "X-PGW-Signature")
        let (_, response) = try await URLSession.shared.data(for: request)
        guard let status = (response as? HTTPURLResponse)?.statusCode, (200..<300).contains(status) else {
            throw PrivacyError(.notifierFailed, "the identity webhook answered \((response as? HTTPURLResponse)?.statusCode ?? 0)")
        }
    }
}

/// For development only: appends each code as a JSON line to a file (created mode 0600) that a
/// developer reads instead of an inbox. Codes are secrets, so they go nowhere else — not to the
/// gateway's log — and the gateway uses this only when told to (`PRIVACY_IDENTITY_NOTIFIER=file:<path>`).
public struct FileNotifier: IdentityNotifier {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public func deliver(_ code: IdentityCode) async throws {
        let line: [String: String] = [
            "tenant_id": code.tenant.lowercasedString, "user_id": code.subject.lowercasedString,
            "request_id": code.requestID.lowercasedString, "kind": code.kind.rawValue, "code": code.code, "expires_at": code.expiresAt,
        ]
        let data = try JSONCoding.encoder().encode(line) + Data("\n".utf8)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw PrivacyError(.notifierFailed, "cannot open the development code file") }
        defer { close(descriptor) }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == data.count else { throw PrivacyError(.notifierFailed, "cannot write the development code file") }
    }
}
