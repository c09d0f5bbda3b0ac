/// Why a tenant, service key or JWT setting was refused or not found.
///
/// The module knows nothing of HTTP: the gateway's error map (`GatewayError(mapping:)`) answers
/// `.invalidInput` 400 `PGW400`, `.notFound` 404 `PGW404`, `.conflict` 409 with ``code``, and
/// `.unconfigured` 500 `PGW001`; `privacyctl` prints ``description`` and exits 1.
public struct TenancyError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Input that is malformed or out of range (a name, a scope, an expiry, a JWKS).
        case invalidInput
        /// The tenant or key named does not exist.
        case notFound
        /// The change conflicts with what exists (a duplicate name, a revoked key's rotation).
        case conflict
        /// The operation needs something this process was not given (the root key).
        case unconfigured
    }

    public var kind: Kind
    /// A stable code for a conflict: `23505` (a duplicate) or `PGW409`.
    public var code: String?
    public var message: String
    public var hint: String?

    public init(_ kind: Kind, code: String? = nil, _ message: String, hint: String? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.hint = hint
    }

    public static func invalidInput(_ message: String, hint: String? = nil) -> TenancyError {
        TenancyError(.invalidInput, message, hint: hint)
    }

    public static func notFound(_ message: String) -> TenancyError {
        TenancyError(.notFound, message)
    }

    public var description: String {
        hint.map { "\(message) (hint: \($0))" } ?? message
    }
}
