/// Why a request's query string or headers do not follow PostgREST's grammar.
///
/// The grammar knows nothing of HTTP responses: ``Kind`` says what went wrong and the gateway
/// maps it to a status in one place (`GatewayError.init(_: RESTGrammarError)`). `code`,
/// `message`, `details` and `hint` are PostgREST's, shown to the caller as they are.
public struct RESTGrammarError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The query string or a header does not parse (PostgREST answers 400).
        case malformed
        /// The `Accept` or profile headers ask for something not offered (406).
        case notAcceptable
        /// The `Range` header or `limit`/`offset` select nothing servable (416).
        case rangeNotSatisfiable
    }

    public var kind: Kind
    /// PostgREST's code, e.g. `PGRST100`.
    public var code: String
    public var message: String
    public var details: String?
    public var hint: String?

    public init(_ kind: Kind, code: String, _ message: String, details: String? = nil, hint: String? = nil) {
        self.kind = kind
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
}
