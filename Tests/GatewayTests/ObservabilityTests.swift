import Audit
import Config
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InMemoryTracing
import Instrumentation
import Logging
import Policy
import Secrets
import Synchronization
import TestSupport
import Testing
import Tracing

@testable import Gateway

/// `/metrics` (labels bounded, no secret in it, the optional token), the observability settings,
/// and tracing (a caller's `traceparent` is the parent of the request's spans; its trace id and
/// the request id are in the request's log line).
@Suite("Observability: metrics, their token, tracing and log lines")
struct ObservabilityTests {
    /// A router with secrets and the given metrics token, and a client; `logs` collects the log lines.
    static func withGateway(
        metricsToken: String? = nil, logs: LogLines = LogLines(),
        _ body: @escaping @Sendable (AuthFixture, GatewayMetrics, any TestClientProtocol) async throws -> Void
    ) async throws {
        try await AuthFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let auditKeys = try AuditKeys(rootKey: f.keyring.serviceMaster)
            let audit = AuditAppender(pool: f.gateway, keys: auditKeys)
            let metrics = GatewayMetrics()
            var services = GatewayServices(
                pool: f.gateway, policies: policies, authenticator: f.authenticator,
                readiness: try Readiness(pool: f.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: audit, metrics: metrics,
                secrets: SecretStore(pool: f.gateway, keyring: f.keyring, audit: audit, auditKeys: auditKeys),
                auditKeys: auditKeys)
            services.metricsToken = metricsToken.map { Array($0.utf8) }
            let logger = Logger(label: "test") { _ in CapturingLogHandler(lines: logs) }
            try await Application(router: GatewayApplication.router(services: services), logger: logger).test(.router) { client in
                try await body(f, metrics, client)
            }
        }
    }

    // MARK: - Metrics token

    @Test("/metrics with a token configured: none, another (shorter, equal length, longer) or another scheme is 401; the token is 200")
    func metricsToken() async throws {
        let token = "scrape-" + UUID().uuidString
        try await Self.withGateway(metricsToken: token) { _, _, client in
            let none = try await client.execute(uri: "/metrics", method: .get) {
                ($0.status, $0.headers[.wwwAuthenticate], String(buffer: $0.body))
            }
            #expect(none.0 == .unauthorized)
            #expect(none.1 == "Bearer")
            #expect(none.2.contains("PGW401") && !none.2.contains("privacy_gateway_"))
            let wrong = String(token.dropLast()) + (token.last == "0" ? "1" : "0")
            for header in ["Bearer " + wrong, "Bearer " + token.dropLast(), "Bearer " + token + "x", "Basic " + token, token, "Bearer "] {
                let status = try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: header]) { $0.status }
                #expect(status == .unauthorized, "\(header)")
            }
            let (status, body) = try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer " + token]) {
                ($0.status, String(buffer: $0.body))
            }
            #expect(status == .ok)
            #expect(body.contains("privacy_gateway_build_info{version=\"\(PrivacyGatewayVersion.string)\"} 1.0"))
            // Refusals are counted, under their own reason; the token itself never appears.
            #expect(body.contains(#"privacy_gateway_auth_failures_total{reason="metrics_token"} 7"#), "\(body)")
            #expect(!body.contains(token) && !body.contains(wrong))
        }
    }

    @Test("/metrics without a token configured is open, as /health and /ready")
    func metricsOpenByDefault() async throws {
        try await Self.withGateway { _, _, client in
            let status = try await client.execute(uri: "/metrics", method: .get) { $0.status }
            #expect(status == .ok)
        }
    }

    @Test("LOG_LEVEL and the metrics token are checked at start, naming the variable")
    func configuration() throws {
        #expect(throws: ConfigurationError.self) { try ObservabilityConfiguration.fromEnvironment(["LOG_LEVEL": "loud"]) }
        #expect(throws: ConfigurationError.self) { try ObservabilityConfiguration.fromEnvironment(["GATEWAY_METRICS_TOKEN": "short"]) }
        #expect(throws: ConfigurationError.self) {
            try ObservabilityConfiguration.fromEnvironment(["GATEWAY_METRICS_TOKEN": "with spaces in the token ok"])
        }
        #expect(throws: ConfigurationError.self) {
            try ObservabilityConfiguration.fromEnvironment([
                "GATEWAY_METRICS_TOKEN": String(repeating: "a", count: 32), "GATEWAY_METRICS_TOKEN_FILE": "/x",
            ])
        }
        do {
            _ = try ObservabilityConfiguration.fromEnvironment(["LOG_LEVEL": "loud"])
        } catch let error as ConfigurationError {
            #expect(error.description.contains("LOG_LEVEL"))
        }
        // A token file others can read is refused; mode 0600 is read, trimmed.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).token").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let token = String(repeating: "b", count: 40)
        #expect(FileManager.default.createFile(atPath: path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o644]))
        #expect(throws: ConfigurationError.self) { try ObservabilityConfiguration.fromEnvironment(["GATEWAY_METRICS_TOKEN_FILE": path]) }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let configuration = try ObservabilityConfiguration.fromEnvironment(["GATEWAY_METRICS_TOKEN_FILE": path, "LOG_LEVEL": "DEBUG"])
        #expect(configuration.metricsToken == Array(token.utf8))
        #expect(configuration.logLevel == .debug)
        #expect(try ObservabilityConfiguration.fromEnvironment([:]).metricsToken == nil)
    }

    // MARK: - Bounded labels, no secrets

    @Test("an unknown path is one route label (unmatched), an unknown method is other: never the raw path or method")
    func unknownPathsAreOneLabel() async throws {
        try await Self.withGateway { f, metrics, client in
            let tenant = try await f.tenant("labels")
            var markers: [String] = []
            for _ in 0..<5 {
                let marker = "probe" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
                markers.append(marker)
                _ = try await client.execute(uri: "/\(marker)/x?y=\(marker)", method: .get) { $0.status }
                // A table that does not exist goes through the table route: its template is the label.
                _ = try await client.execute(uri: "/rest/v1/\(marker)", method: .get, headers: [.apikey: tenant.apikey]) { $0.status }
            }
            let method = HTTPRequest.Method("PROBEMETHOD")!
            _ = try await client.execute(uri: "/health", method: method) { $0.status }
            let text = metrics.render(pool: f.gateway.statistics)
            #expect(
                text.contains(#"privacy_gateway_http_request_duration_seconds_count{route="unmatched",method="GET",status="4xx"} 5"#),
                "\(text)")
            #expect(
                text.contains(#"privacy_gateway_http_request_duration_seconds_count{route="/rest/v1/{table}",method="GET",status="4xx"} 5"#)
            )
            #expect(text.contains(#"method="other""#))
            #expect(!text.contains("PROBEMETHOD"))
            for marker in markers { #expect(!text.contains(marker)) }
        }
    }

    @Test("no API key, JWT, secret value, user id or metrics token ever appears in the exposition")
    func noSecretsInExposition() async throws {
        let token = "scrape-" + UUID().uuidString
        try await Self.withGateway(metricsToken: token) { f, metrics, client in
            let tenant = try await f.tenant("secrets-metrics", scopes: [.dataRead, .dataWrite, .secretsRead, .secretsWrite])
            let user = UUID()
            let jwt = try await Tokens.hs256(claims: Tokens.user(user), secret: tenant.secret!)
            let value = "sk-live-" + UUID().uuidString
            let headers: HTTPFields = [.apikey: tenant.apikey, .authorization: "Bearer \(jwt)", .contentType: "application/json"]
            let put = try await client.execute(
                uri: "/v1/secrets/openai", method: .put, headers: headers, body: ByteBuffer(string: #"{"value": "\#(value)"}"#)
            ) { $0.status }
            #expect(put == .created)
            let read = try await client.execute(uri: "/v1/secrets/openai", method: .get, headers: headers) { $0.status }
            #expect(read == .ok)
            // Refusals of every kind: a forged key, a key with a wrong tail, a JWT of another secret, an expired JWT.
            let forgedKey = "pgw_" + String(repeating: "z", count: 76)
            _ = try await client.execute(uri: "/v1/secrets/openai", method: .get, headers: [.apikey: forgedKey]) { $0.status }
            let badJWT = try await Tokens.hs256(claims: Tokens.user(user), secret: AuthFixture.secret())
            _ = try await client.execute(
                uri: "/v1/secrets/openai", method: .get, headers: [.apikey: tenant.apikey, .authorization: "Bearer \(badJWT)"]
            ) { $0.status }
            _ = try await client.execute(uri: "/v1/secrets/\(value)", method: .get, headers: headers) { $0.status }
            _ = try await client.execute(uri: "/rest/v1/projects?name=eq.\(value)", method: .get, headers: headers) { $0.status }
            let text = try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer " + token]) {
                String(buffer: $0.body)
            }
            #expect(text.contains(#"privacy_gateway_secrets_operations_total{action="write",outcome="ok"} 1"#), "\(text)")
            #expect(text.contains(#"privacy_gateway_secrets_operations_total{action="read",outcome="ok"} 1"#))
            #expect(text.contains(#"privacy_gateway_secrets_operations_total{action="read",outcome="denied"} 2"#))
            #expect(text.contains(#"privacy_gateway_auth_failures_total{reason="invalid_api_key"} 1"#))
            #expect(text.contains(#"privacy_gateway_auth_failures_total{reason="jwt_invalid"} 1"#))
            for secret in [tenant.apikey, forgedKey, jwt, badJWT, value, user.lowercasedString, user.uuidString, token, tenant.secret!] {
                #expect(!text.contains(secret))
            }
        }
    }

    // MARK: - Tracing and log lines

    @Test("a traceparent sent in is the parent of the request's spans; its trace id and the request id are in the log line")
    func traceparentIsTheParent() async throws {
        let tracer = TestTracing.tracer
        let logs = LogLines()
        try await Self.withGateway(logs: logs) { f, _, client in
            let tenant = try await f.tenant("tracing", scopes: [.dataRead, .dataWrite, .secretsRead, .secretsWrite])
            let user = UUID()
            let jwt = try await Tokens.hs256(claims: Tokens.user(user), secret: tenant.secret!)
            let traceID = TestTracing.hex(16)
            let parentID = TestTracing.hex(8)
            var headers: HTTPFields = [.apikey: tenant.apikey, .authorization: "Bearer \(jwt)", .contentType: "application/json"]
            headers[.traceparent] = "00-\(traceID)-\(parentID)-01"
            headers[.requestID] = "trace-test-\(traceID.prefix(8))"
            let rest = try await client.execute(uri: "/rest/v1/projects?select=id", method: .get, headers: headers) { $0.status }
            #expect(rest == .ok)
            let put = try await client.execute(
                uri: "/v1/secrets/traced", method: .put, headers: headers, body: ByteBuffer(string: #"{"value": "v"}"#)
            ) { $0.status }
            #expect(put == .created)
            let read = try await client.execute(uri: "/v1/secrets/traced", method: .get, headers: headers) { $0.status }
            #expect(read == .ok)

            let spans = tracer.base.finishedSpans.filter { $0.traceID == traceID }
            let servers = spans.filter { $0.kind == .server }
            #expect(servers.count == 3, "\(spans.map(\.operationName))")
            // The caller's span is the parent of each server span.
            #expect(servers.allSatisfy { $0.parentSpanID == parentID })
            #expect(
                Set(servers.map(\.operationName)) == ["GET /rest/v1/{table}", "PUT /v1/secrets/{service}", "GET /v1/secrets/{service}"])
            let serverIDs = Set(servers.map(\.spanID))
            for name in ["authenticate", "policy", "db.pipeline", "audit.append"] {
                let named = spans.filter { $0.operationName == name }
                #expect(!named.isEmpty, "no \(name) span in \(spans.map(\.operationName))")
                // Each is inside a request's span: its parent is the server span or another span of the trace.
                #expect(named.allSatisfy { span in span.parentSpanID.map { id in spans.contains { $0.spanID == id } } ?? false })
            }
            #expect(spans.filter { $0.operationName == "authenticate" }.allSatisfy { serverIDs.contains($0.parentSpanID ?? "") })
            // No span records the query string or a header value.
            for span in spans {
                #expect(!"\(span.attributes)".contains("select=id"))
                #expect(!"\(span.attributes)".contains(jwt))
            }
            let lines = logs.lines.filter { $0.message == "request" && $0.metadata["trace_id"] == "\(traceID)" }
            #expect(lines.count == 3, "\(logs.lines.map(\.metadata))")
            #expect(lines.allSatisfy { $0.metadata["request_id"] == "trace-test-\(traceID.prefix(8))" })
        }
    }

    @Test("a malformed traceparent is ignored: the request is served, its log line has a trace id of the gateway's own")
    func malformedTraceparent() async throws {
        _ = TestTracing.tracer
        let logs = LogLines()
        try await Self.withGateway(logs: logs) { _, _, client in
            for header in [
                "00-\(String(repeating: "0", count: 32))-\(TestTracing.hex(8))-01", "zz-bad",
                "00-\(TestTracing.hex(16).uppercased())-\(TestTracing.hex(8))-01",
                "00-\(TestTracing.hex(16))-\(TestTracing.hex(8))-01-extra", "ff-\(TestTracing.hex(16))-\(TestTracing.hex(8))-01",
            ] {
                #expect(TraceParent(header) == nil, "\(header)")
                let status = try await client.execute(uri: "/health", method: .get, headers: [.traceparent: header]) { $0.status }
                #expect(status == .ok)
            }
            let lines = logs.lines.filter { $0.message == "request" }
            #expect(lines.count == 5)
            #expect(lines.allSatisfy { line in line.metadata["trace_id"].map { "\($0)".count == 32 } ?? false })
        }
        #expect(
            TraceParent("00-\(String(repeating: "a", count: 32))-\(String(repeating: "b", count: 16))-01")?.traceID
                == String(repeating: "a", count: 32))
    }
}

/// The process's tracer for these tests: swift-distributed-tracing's `InMemoryTracer`, with W3C
/// `traceparent` extraction and injection (the in-memory tracer propagates its own headers).
/// Bootstrapped once per test process; tests tell their spans apart by trace id.
enum TestTracing {
    static let tracer: W3CInMemoryTracer = {
        let tracer = W3CInMemoryTracer()
        InstrumentationSystem.bootstrap(tracer)
        return tracer
    }()

    static func hex(_ bytes: Int) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}

struct W3CInMemoryTracer: Tracer {
    let base = InMemoryTracer(idGenerator: .init(nextTraceID: { TestTracing.hex(16) }, nextSpanID: { TestTracing.hex(8) }))

    func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> InstrumentationContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> InMemorySpan {
        base.startSpan(operationName, context: context(), ofKind: kind, at: instant(), function: function, file: fileID, line: line)
    }

    func forceFlush() {}

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let header = extractor.extract(key: "traceparent", from: carrier), let parent = TraceParent(header) else { return }
        context.inMemorySpanContext = InMemorySpanContext(traceID: parent.traceID, spanID: parent.parentID, parentSpanID: nil)
    }

    func inject<Carrier, Inject: Injector>(_ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let span = context.inMemorySpanContext else { return }
        injector.inject("00-\(span.traceID)-\(span.spanID)-01", forKey: "traceparent", into: &carrier)
    }
}

/// Log lines a test's application wrote.
final class LogLines: Sendable {
    struct Line: Sendable {
        let message: String
        let metadata: Logger.Metadata
    }
    private let storage = Mutex<[Line]>([])
    var lines: [Line] { storage.withLock { $0 } }
    func append(_ line: Line) { storage.withLock { $0.append(line) } }
}

struct CapturingLogHandler: LogHandler {
    let lines: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.append(.init(message: event.message.description, metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
    }
}
