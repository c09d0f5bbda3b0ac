import Config
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Sodium

/// What the operator configures about metrics and logs: the `/metrics` token and the log level.
/// Read apart from ``GatewayConfiguration`` (same rules: an empty variable is unset, a bad value
/// is an error naming the variable).
public struct ObservabilityConfiguration: Sendable {
    /// `GATEWAY_METRICS_TOKEN` or `GATEWAY_METRICS_TOKEN_FILE`: when set, `/metrics` answers only
    /// `Authorization: Bearer <token>` (compared in constant time); unset: `/metrics` is open, as
    /// the other unauthenticated endpoints (`/health`, `/ready`).
    public var metricsToken: [UInt8]?
    /// `LOG_LEVEL`: trace, debug, info, notice, warning, error, critical.
    public var logLevel: Logger.Level = .info

    public init(metricsToken: [UInt8]? = nil, logLevel: Logger.Level = .info) {
        self.metricsToken = metricsToken
        self.logLevel = logLevel
    }

    /// The shortest token accepted: a guessable scrape token would expose pool and tenant figures.
    public static let minimumTokenLength = 16

    public static func fromEnvironment(_ environment: [String: String]) throws -> ObservabilityConfiguration {
        func value(_ name: String) -> String? {
            guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }
        var configuration = ObservabilityConfiguration()
        if let level = value("LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw ConfigurationError(
                    "LOG_LEVEL must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(level)\"")
            }
            configuration.logLevel = parsed
        }
        let inline = value("GATEWAY_METRICS_TOKEN")
        let file = value("GATEWAY_METRICS_TOKEN_FILE")
        if inline != nil && file != nil {
            throw ConfigurationError("set GATEWAY_METRICS_TOKEN or GATEWAY_METRICS_TOKEN_FILE, not both")
        }
        var token = inline
        var source = "GATEWAY_METRICS_TOKEN"
        if let file {
            source = "GATEWAY_METRICS_TOKEN_FILE"
            var status = stat()
            guard stat(file, &status) == 0, let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError("GATEWAY_METRICS_TOKEN_FILE: cannot read \(file)")
            }
            guard status.st_mode & 0o077 == 0 else {
                throw ConfigurationError("GATEWAY_METRICS_TOKEN_FILE: \(file) is readable by others (chmod 600 it)")
            }
            token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let token {
            // Printable ASCII without spaces: it travels in an HTTP header.
            guard token.utf8.count >= minimumTokenLength, token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw ConfigurationError(
                    "\(source) must be at least \(minimumTokenLength) printable characters without spaces (e.g. openssl rand -hex 32)")
            }
            configuration.metricsToken = Array(token.utf8)
        }
        return configuration
    }
}

extension GatewayError {
    /// `/metrics` without the configured token, or with another one (the same answer for both).
    static let metricsToken = GatewayError(
        .unauthorized, code: "PGW401", "metrics need the metrics token",
        hint: "send Authorization: Bearer <GATEWAY_METRICS_TOKEN>")
}

/// `GET /metrics`: the Prometheus exposition, behind the metrics token when one is configured.
enum MetricsRoute {
    static func add(to router: Router<GatewayRequestContext>, services: GatewayServices) {
        let token = services.metricsToken
        router.get("/metrics") { request, _ in
            if let token {
                guard let header = request.headers[.authorization], let presented = bearer(header),
                    ConstantTime.equals(Array(presented.utf8), token)
                else { throw GatewayError.metricsToken }
            }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            headers[.cacheControl] = "no-store"
            let bytes = services.metrics.exposition(pool: services.pool.statistics)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }

    /// The token of `Bearer <token>` (scheme case-insensitive), or nil.
    static func bearer(_ header: String) -> Substring? {
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        return header.dropFirst(7).drop { $0 == " " }
    }
}
