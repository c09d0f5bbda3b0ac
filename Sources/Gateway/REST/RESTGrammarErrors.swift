import HTTPTypes
// Re-exported so the gateway's routes, and code importing Gateway, name RESTQuery as before.
@_exported import RESTGrammar

extension GatewayError {
    /// The one place a grammar refusal becomes an HTTP answer: PostgREST's statuses for its
    /// codes (400 malformed, 406 not acceptable, 416 range), its body unchanged. The request
    /// middleware applies it to any RESTGrammarError a route lets through.
    public init(_ error: RESTGrammarError) {
        let status: HTTPResponse.Status =
            switch error.kind {
            case .malformed: .badRequest
            case .notAcceptable: .notAcceptable
            case .rangeNotSatisfiable: .rangeNotSatisfiable
            }
        self.init(status, code: error.code, error.message, details: error.details, hint: error.hint)
    }
}
