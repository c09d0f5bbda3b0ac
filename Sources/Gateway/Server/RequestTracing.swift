import HTTPTypes
import Hummingbird
import Instrumentation
import Logging
import Tracing

/// A W3C `traceparent` (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`), checked
/// before any part of it reaches a log line: an invalid header is ignored, as the
/// specification asks.
public struct TraceParent: Sendable, Equatable {
    public let traceID: String
    public let parentID: String
    public let flags: String

    public init?(_ header: String) {
        let parts = header.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].utf8.count == 2, parts[0] != "ff",
            parts[1].utf8.count == 32, parts[2].utf8.count == 16, parts[3].utf8.count == 2,
            // Version 00 has exactly four parts; a later version may append more.
            parts[0] != "00" || parts.count == 4,
            parts.prefix(4).allSatisfy({ $0.utf8.allSatisfy(Self.isLowerHex) }),
            parts[1].utf8.contains(where: { $0 != UInt8(ascii: "0") }), parts[2].utf8.contains(where: { $0 != UInt8(ascii: "0") })
        else { return nil }
        traceID = String(parts[1])
        parentID = String(parts[2])
        flags = String(parts[3])
    }

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte)
    }
}

/// The request's server span, through swift-distributed-tracing's process-wide tracer
/// (`InstrumentationSystem.bootstrap`): the caller's trace context is extracted from the request
/// headers (a W3C tracer, such as swift-otel's, reads `traceparent`), the span is the parent of
/// everything the request does (authentication, policy, database pipelines, audit appends), and
/// the trace id goes into the request's logger, so every log line of the request carries it.
///
/// Modelled on Hummingbird's `TracingMiddleware`, which records the raw path, the query string,
/// the user agent and the peer's address as span attributes: in a privacy gateway those carry
/// filter values (emails, user ids) to whatever backend receives spans. This one records the
/// route template, the method and the status only.
///
/// Without a tracer (the default build bootstraps none) no span is made; a valid incoming
/// `traceparent` still puts its trace id in the log lines, so they can be joined with the
/// caller's trace.
struct RequestTracingMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// Whether a tracer was bootstrapped before the router was built.
    let tracing: Bool

    init() {
        tracing = !(InstrumentationSystem.tracer is NoOpTracer)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let incoming = request.headers[.traceparent].flatMap(TraceParent.init)
        guard tracing else {
            guard let incoming else { return try await next(request, context) }
            var context = context
            context.logger[metadataKey: "trace_id"] = .string(incoming.traceID)
            return try await next(request, context)
        }
        var parent = InstrumentationContext.current ?? .topLevel
        InstrumentationSystem.instrument.extract(request.headers, into: &parent, using: HTTPFieldsExtractor())
        let method = GatewayMetrics.knownMethods.contains(request.method.rawValue) ? request.method.rawValue : "other"
        let span = startSpan("HTTP \(method)", context: parent, ofKind: .server)
        defer { span.end() }
        span.attributes["http.request.method"] = method
        var traced = context
        if let traceID = Self.traceID(of: span.context) ?? incoming?.traceID {
            traced.logger[metadataKey: "trace_id"] = .string(traceID)
        }
        let requestContext = traced
        let response = try await InstrumentationContext.$current.withValue(span.context) {
            try await next(request, requestContext)
        }
        let route = GatewayMetrics.routeLabel(requestContext.endpointPath)
        span.operationName = "\(method) \(route)"
        span.attributes["http.route"] = route
        span.attributes["http.response.status_code"] = Int(response.status.code)
        if response.status.code >= 500 { span.setStatus(.init(code: .error)) }
        return response
    }

    /// The trace id the tracer propagates for `context`, read back from the `traceparent` it
    /// would inject (any W3C tracer writes one); nil for a tracer that does not.
    static func traceID(of context: InstrumentationContext) -> String? {
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryInjector())
        return carrier["traceparent"].flatMap(TraceParent.init)?.traceID
    }
}

/// Reads propagation headers from a request's fields.
struct HTTPFieldsExtractor: Extractor {
    func extract(key: String, from fields: HTTPFields) -> String? {
        guard let name = HTTPField.Name(key) else { return nil }
        return fields[name]
    }
}

/// Collects what a tracer injects, to read the trace id back.
struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key.lowercased()] = value
    }
}
