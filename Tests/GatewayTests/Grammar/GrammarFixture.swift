import Gateway
import HTTPTypes
import Testing

/// Shorthands for the grammar tests: parse a query string, or get the error it must fail with.
enum GrammarFixture {
    static func parse(
        _ query: String, method: HTTPRequest.Method = .get, headers: RESTQuery.Headers = RESTQuery.Headers()
    ) throws -> RESTQuery {
        try RESTQuery.parse(method: method, query: query, headers: headers)
    }

    /// The error `query` is refused with, as the gateway answers it (GatewayError.init(_:)
    /// maps the grammar's error to HTTP); records an issue when it parses instead.
    static func rejection(
        _ query: String, method: HTTPRequest.Method = .get, headers: RESTQuery.Headers = RESTQuery.Headers(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> GatewayError? {
        do {
            let parsed = try RESTQuery.parse(method: method, query: query, headers: headers)
            Issue.record("expected \(query) to be refused, parsed \(parsed)", sourceLocation: sourceLocation)
            return nil
        } catch {
            return GatewayError(error)
        }
    }

    /// The single filter of `query`.
    static func filter(_ query: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> RESTQuery.FilterTree? {
        try parse(query).filter
    }

    static func condition(
        _ column: String, _ operation: RESTQuery.FilterOperation, path: [RESTQuery.JSONStep] = []
    ) -> RESTQuery.FilterTree {
        .condition(RESTQuery.Condition(RESTQuery.Field(column, jsonPath: path), operation))
    }

    static func eq(_ column: String, _ value: String) -> RESTQuery.FilterTree {
        condition(column, .compare(.eq, value))
    }

    static func column(_ name: String, alias: String? = nil, cast: String? = nil, path: [RESTQuery.JSONStep] = []) -> RESTQuery.SelectItem {
        .column(RESTQuery.SelectColumn(RESTQuery.Field(name, jsonPath: path), alias: alias, cast: cast))
    }

    /// The PostgREST-style message for a parse error at `column` of `text`.
    static func message(_ subject: String, _ text: String, column: Int) -> String {
        "\"failed to parse \(subject) (\(text))\" (line 1, column \(column))"
    }
}
