import ArgumentParser
import Catalog
import Config
import Foundation
import Tenancy

#if canImport(FoundationNetworking)
    import FoundationNetworking
    import JSON
#endif

/// privacyctl over HTTP (issue 17, item 2): with `PRIVACY_ADDR` (the gateway, e.g.
/// `https://gateway.example.com` or `127.0.0.1:8080`) and `PRIVACY_TOKEN` (a service key with the
/// `admin` scope) set, the admin commands go through `/v1/admin` and need neither the owner's
/// database URL nor the root key. Without `PRIVACY_ADDR` they talk to the database directly — the
/// bootstrap mode, for the first tenant and its first admin key.
///
/// The token is read from the environment only (never a flag: arguments are visible to every
/// user of the host in `ps`), sent in the `apikey` header, and never printed.
struct AdminHTTP {
    let base: URL
    let token: String

    /// The HTTP client the environment asks for, or nil (direct-database mode).
    static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AdminHTTP? {
        guard let address = environment["PRIVACY_ADDR"]?.trimmingCharacters(in: .whitespaces), !address.isEmpty else { return nil }
        guard let token = environment["PRIVACY_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty else {
            throw ConfigurationError(
                "PRIVACY_ADDR is set but PRIVACY_TOKEN is not", hint: "export PRIVACY_TOKEN=<a service key with the admin scope>")
        }
        var text = address.contains("://") ? address : "http://" + address
        while text.hasSuffix("/") { text.removeLast() }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil,
            url.query == nil
        else {
            throw ConfigurationError("PRIVACY_ADDR must be http(s)://host[:port], got \"\(address)\"")
        }
        return AdminHTTP(base: url, token: token)
    }

    /// Says a command has no HTTP form yet (refused rather than silently using the database).
    static func directOnly(_ what: String) -> ConfigurationError {
        ConfigurationError(
            "\(what) is not available over HTTP", hint: "unset PRIVACY_ADDR and use direct-database mode (DATABASE_URL and the root key)")
    }

    /// `method path` with an optional JSON body; the 2xx answer decoded as `T`. A refusal is an
    /// ``AdminHTTPError`` carrying the gateway's message.
    func send<T: Decodable>(
        _ method: String, _ path: String, query: [String: String?] = [:], body: (any Encodable)? = nil, as type: T.Type = T.self
    ) async throws -> T {
        var components = URLComponents(url: base.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        let items = query.compactMap { name, value in value.map { URLQueryItem(name: name, value: $0) } }.sorted { $0.name < $1.name }
        if !items.isEmpty { components.queryItems = items }
        var request = URLRequest(url: components.url!)
        request.httpMethod = method
        request.timeoutInterval = 60
        request.setValue(token, forHTTPHeaderField: "apikey")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        request.setValue("privacyctl/\(PrivacyGatewayVersion.string)", forHTTPHeaderField: "User-Agent")
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONCoding.encoder().encode(body)
        }
        let data: Data, response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw ConfigurationError(
                "cannot reach the gateway at \(base.absoluteString): \(error.localizedDescription)", hint: "check PRIVACY_ADDR")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            let body = try? JSONDecoder().decode(ErrorBody.self, from: data)
            throw AdminHTTPError(
                status: status, code: body?.code, message: body?.message ?? String(decoding: data.prefix(300), as: UTF8.self),
                hint: body?.hint, request: "\(method) \(path)")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            let plain = ISO8601DateFormatter()
            let fractional = ISO8601DateFormatter()
            fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let date = plain.date(from: text) ?? fractional.date(from: text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an RFC 3339 time"))
            }
            return date
        }
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            throw ConfigurationError("the gateway's answer to \(method) \(path) is not what this privacyctl expects (versions differ?)")
        }
    }
}

/// The gateway's `{code, message, details, hint}` error body.
private struct ErrorBody: Decodable {
    let code: String?, message: String?, hint: String?
}

/// The gateway refused an admin request: its status and PostgREST-style message.
struct AdminHTTPError: Error, CustomStringConvertible {
    let status: Int
    let code: String?
    let message: String
    let hint: String?
    let request: String

    /// 401/403: the token is wrong, revoked, or lacks the right (exit code 4).
    var isRefusal: Bool { status == 401 || status == 403 }

    var description: String {
        var text: String
        switch status {
        case 401: text = "the gateway refused PRIVACY_TOKEN (401): \(message)"
        case 403: text = "PRIVACY_TOKEN may not do this (403): \(message)"
        default: text = "\(request) answered \(status): \(message)"
        }
        if let hint { text += " (hint: \(hint))" }
        return text
    }
}
