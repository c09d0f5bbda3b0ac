import Audit
import Config
import Foundation
import Hummingbird
import JSON
import Postgres
import Reports

/// The one error type of the gateway. It renders itself as PostgREST does:
/// a JSON body `{code, message, details, hint}` with the matching HTTP status.
///
/// Messages are written for the caller: they never contain secrets, SQL or bound values.
public struct GatewayError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    /// Stable machine-readable code, e.g. `PGRST301` or `42501`.
    public var code: String
    public var message: String
    public var details: String?
    public var hint: String?
    /// For a policy denial, the policy (or policies) that decided. Recorded in the audit entry;
    /// not part of the response body.
    public var policy: String?
    /// Seconds after which the caller may retry (`Retry-After`), for a refusal under load.
    public var retryAfter: Int?

    public init(_ status: HTTPResponse.Status, code: String, _ message: String, details: String? = nil, hint: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
    }

    public var description: String {
        var text = message
        if let details { text += " — \(details)" }
        if let hint { text += " (hint: \(hint))" }
        return text
    }

    /// Bad configuration or environment, found before anything was served.
    public static func configuration(_ message: String, hint: String? = nil) -> GatewayError {
        GatewayError(.internalServerError, code: "PGW001", message, hint: hint)
    }

    /// Input that names something unknown or malformed.
    public static func invalidInput(_ message: String, details: String? = nil, hint: String? = nil) -> GatewayError {
        GatewayError(.badRequest, code: "PGW400", message, details: details, hint: hint)
    }

    /// A body past ``GatewayLimits/maximumBodyBytes``: 413, `PGRST413` on `/rest/v1`, `PGW413` elsewhere.
    public static func bodyTooLarge(_ limit: Int, rest: Bool) -> GatewayError {
        GatewayError(.contentTooLarge, code: rest ? "PGRST413" : "PGW413", "request body is larger than \(limit) bytes")
    }

    /// A tenant's queue for database work is full (``PostgresError/Code/tenantBusy``, from the
    /// pool's per-tenant cap): 503 with `Retry-After`, PostgREST's pool-exhaustion code on `/rest/v1`.
    static func tenantSaturated(_ busy: PostgresError, rest: Bool) -> GatewayError {
        var error = GatewayError(
            .serviceUnavailable, code: rest ? "PGRST003" : "PGW503", busy.message, details: busy.detail, hint: busy.hint)
        error.retryAfter = 1
        return error
    }

    /// The per-tenant cap's refusal inside `error` — thrown by the pool, or wrapped by the audit or
    /// report layer (``AuditError/underlying``, ``ReportError/underlying``) — if that is what `error` is.
    static func tenantBusy(_ error: any Error) -> PostgresError? {
        switch error {
        case let error as PostgresError: error.code == .tenantBusy ? error : nil
        case let error as AuditError: error.underlying.flatMap { tenantBusy($0) }
        case let error as ReportError: error.underlying.flatMap { tenantBusy($0) }
        default: nil
        }
    }

    public static func notFound(_ message: String, details: String? = nil, hint: String? = nil) -> GatewayError {
        GatewayError(.notFound, code: "PGW404", message, details: details, hint: hint)
    }
}

extension GatewayError: HTTPResponseError {
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try JSONCoding.encoder().encode(PostgRESTErrorBody(code: code, message: message, details: details, hint: hint))
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if status == .unauthorized { headers[.wwwAuthenticate] = wwwAuthenticate }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension GatewayError {
    /// RFC 6750's challenge on every 401, as PostgREST sends it: `invalid_token` with the
    /// message for a JWT that cannot be used (PGRST301/303), a bare `Bearer` otherwise
    /// (no or bad API key, anonymous caller refused by a policy). Messages hold no secrets.
    var wwwAuthenticate: String {
        guard code == "PGRST301" || code == "PGRST303" else { return "Bearer" }
        let description = message.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "Bearer error=\"invalid_token\", error_description=\"\(description)\""
    }
}

/// PostgREST always sends all four keys, null when empty.
struct PostgRESTErrorBody: Encodable {
    let code: String
    let message: String
    let details: String?
    let hint: String?
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(code, forKey: .code)
        try container.encode(message, forKey: .message)
        try container.encode(details, forKey: .details)
        try container.encode(hint, forKey: .hint)
    }
    enum CodingKeys: String, CodingKey { case code, message, details, hint }
}
