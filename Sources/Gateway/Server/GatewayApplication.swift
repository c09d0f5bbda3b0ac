import Audit
import Config
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import JSON
import Keyring
import Logging
import Policy
import Postgres
import Privacy
import Secrets

/// The parts a running gateway is made of, built once at start-up.
public struct GatewayServices: Sendable {
    /// Connections as the gateway's own login role.
    public let pool: ConnectionPool
    public let policies: PolicySet
    public let authenticator: RequestAuthenticator
    public let readiness: Readiness
    /// Every policy denial is recorded here before it is answered (fail closed).
    public let audit: AuditAppender
    public let metrics: GatewayMetrics
    /// The secret store behind `/v1/secrets`; without one those routes do not exist.
    public let secrets: SecretStore?
    /// Resolves service pseudonyms in reports; nil shows the pseudonyms.
    public let auditKeys: AuditKeys?
    /// Data-subject requests (`/v1/privacy`); nil when not configured (the routes answer 503).
    public let privacy: PrivacyService?
    /// Checkpoint keys `/v1/audit/verify` and reports trust (key id → public key), from
    /// configuration (``GatewayConfiguration/pinnedAuditKeys()``), never from the database.
    public let auditTrustedKeys: [String: [UInt8]]
    /// The witnesses whose cosignatures the gateway stores (name, Ed25519 public key), from
    /// configuration (``GatewayConfiguration/declaredWitnesses()``); none: cosignatures are refused.
    public let auditWitnesses: [(name: String, publicKey: [UInt8])]
    /// The Ed25519 public key deletion certificates must verify with to count as signed in reports
    /// (the signing key's public half); defaults to the privacy service's.
    public let certificatePublicKey: [UInt8]?
    /// Statement timeout, row cap, query-size and HTTP limits (README, "Limits").
    public let limits: GatewayLimits
    /// The per-tenant cap on concurrent database work: the pool's own
    /// (``ConnectionPool/Options/tenantLimiter``, sized by ``GatewayLimits/tenantLimiter(poolSize:)``
    /// at start-up), held by every tenant's database work through the pool; nil: none.
    public var tenantLimiter: TenantLimiter? { pool.tenantLimiter }
    /// Proxies whose forwarding headers name the client (``TrustedProxies``); none by default.
    public var trustedProxies = TrustedProxies.none
    /// The tenant whose `admin` keys are deployment operators in `/v1/admin` (``AdminRoutes``);
    /// nil: none, every admin key is tenant-local.
    public var operatorTenant: UUID? = nil
    /// Seals tenants' HS256 secrets set through `/v1/admin`; nil: they cannot be set there.
    public var keyring: Keyring? = nil
    /// Connections that keep session state (a session advisory lock), for the KEK rotation's
    /// runner; nil: ``pool``. Differs from it behind a pooler in transaction mode (`GATEWAY_WORKER_DATABASE_URL`).
    public var sessionPool: ConnectionPool? = nil
    /// `/metrics` answers only this bearer token when set (``ObservabilityConfiguration/metricsToken``).
    public var metricsToken: [UInt8]? = nil

    public init(
        pool: ConnectionPool, policies: PolicySet, authenticator: RequestAuthenticator, readiness: Readiness,
        audit: AuditAppender, metrics: GatewayMetrics = GatewayMetrics(), secrets: SecretStore? = nil, auditKeys: AuditKeys? = nil,
        privacy: PrivacyService? = nil, auditTrustedKeys: [String: [UInt8]] = [:], certificatePublicKey: [UInt8]? = nil,
        limits: GatewayLimits = GatewayLimits(),
        auditWitnesses: [(name: String, publicKey: [UInt8])] = []
    ) {
        self.limits = limits
        self.auditWitnesses = auditWitnesses
        self.auditTrustedKeys = auditTrustedKeys
        self.secrets = secrets
        self.privacy = privacy
        self.certificatePublicKey = certificatePublicKey ?? privacy?.certificatePublicKey
        self.pool = pool
        self.policies = policies
        self.authenticator = authenticator
        self.readiness = readiness
        self.audit = audit
        self.metrics = metrics
        self.auditKeys = auditKeys
    }
}

/// Builds the gateway's HTTP application: one router, one error format.
public enum GatewayApplication {
    public static func router(services: GatewayServices) -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        // Outermost: the request's span (W3C traceparent) and its trace id in every log line.
        router.add(middleware: RequestTracingMiddleware())
        router.add(middleware: RequestIDMiddleware(metrics: services.metrics, trustedProxies: services.trustedProxies))
        router.add(middleware: RequestLimitsMiddleware(limits: services.limits))
        router.get("/health") { _, _ in
            try jsonResponse(.ok, ["status": "ok"])
        }
        router.get("/ready") { _, _ in
            let report = await services.readiness.check()
            return try jsonResponse(report.ready ? .ok : .serviceUnavailable, report)
        }
        let openAPI = OpenAPIDocument.json(policies: services.policies)
        router.get("/openapi.json") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/openapi+json; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: openAPI)))
        }
        MetricsRoute.add(to: router, services: services)

        AuditRoutes(
            pool: services.pool, authenticator: services.authenticator, trustedKeys: services.auditTrustedKeys,
            witnesses: services.auditWitnesses
        ).add(to: router)
        if let secrets = services.secrets {
            SecretRoutes(store: secrets, authenticator: services.authenticator, metrics: services.metrics).add(to: router)
        }
        ReportRoutes(
            pool: services.pool, authenticator: services.authenticator, policies: services.policies, auditKeys: services.auditKeys,
            trustedKeys: services.auditTrustedKeys,
            certificateKeys: services.certificatePublicKey.map { [$0] } ?? []
        )
        .add(to: router)
        PrivacyRoutes(privacy: services.privacy, authenticator: services.authenticator).add(to: router)
        AdminRoutes(
            pool: services.pool, authenticator: services.authenticator, audit: services.audit, privacy: services.privacy,
            operatorTenant: services.operatorTenant, keyring: services.keyring, sessionPool: services.sessionPool
        ).add(to: router)

        let rest = RESTHandler(
            pool: services.pool, policies: services.policies, authenticator: services.authenticator,
            audit: services.audit, metrics: services.metrics, limits: services.limits)
        let table: @Sendable (Request, GatewayRequestContext) async throws -> Response = { request, context in
            try await rest.handle(
                request, table: context.parameters.get("table") ?? "", caller: context.authenticated(), facts: context.facts)
        }
        let rpc = RPCHandler(
            pool: services.pool, policies: services.policies, authenticator: services.authenticator,
            audit: services.audit, metrics: services.metrics, limits: services.limits)
        let function: @Sendable (Request, GatewayRequestContext) async throws -> Response = { request, context in
            try await rpc.handle(
                request, function: context.parameters.get("function") ?? "", caller: context.authenticated(), facts: context.facts)
        }
        // The key's revocation check rides in each request's own statement pipeline (one round trip saved).
        // A volatile function writes (data:write); a stable or immutable one, or a name not declared (404), reads.
        let policies = services.policies
        let functions = router.group().add(
            middleware: AuthenticationMiddleware(
                authenticator: services.authenticator,
                scope: .decided { _, context in
                    policies.function(named: context.parameters.get("function") ?? "")?.volatility == .volatile ? .dataWrite : .dataRead
                },
                checksRevocation: false))
        for method in [HTTPRequest.Method.get, .head, .post, .patch, .delete, .put] {
            functions.on("/rest/v1/rpc/:function", method: method, use: function)
        }
        let tables = router.group().add(
            middleware: AuthenticationMiddleware(
                authenticator: services.authenticator, scope: .byMethod(read: .dataRead, write: .dataWrite), checksRevocation: false))
        tables.get("/rest/v1/:table", use: table)
        tables.head("/rest/v1/:table", use: table)
        tables.post("/rest/v1/:table", use: table)
        tables.patch("/rest/v1/:table", use: table)
        tables.delete("/rest/v1/:table", use: table)
        // PostgREST's root serves the OpenAPI document (tables and columns, no rows: no key, as
        // /openapi.json); a path deeper than a table answers its error shape, not an empty 404.
        // (Hummingbird refuses `/rest/v1/**` beside `/rest/v1/:table`, hence `:table/**`.)
        router.get("/rest/v1") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/openapi+json; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: openAPI)))
        }
        for method in [HTTPRequest.Method.get, .head, .post, .put, .patch, .delete] {
            router.on("/rest/v1/:table/**", method: method) { _, _ -> Response in
                throw GatewayError(.notFound, code: "PGRST125", "Invalid path specified in request URL")
            }
        }
        return router
    }

    /// `tls`: the listener's TLS (``GatewayConfiguration/listenerTLS()``); nil: plain HTTP.
    public static func make(
        configuration: GatewayConfiguration, services: GatewayServices, logger: Logger, tls: TLSConfiguration? = nil
    ) throws -> some ApplicationProtocol {
        Application(
            router: router(services: services),
            server: try server(limits: services.limits, tls: tls),
            configuration: serverConfiguration(address: .hostname(configuration.host, port: configuration.port), limits: services.limits),
            logger: logger)
    }

    /// ``server(limits:)`` inside TLS when `tls` is given.
    public static func server(limits: GatewayLimits, tls: TLSConfiguration?) throws -> HTTPServerBuilder {
        guard let tls else { return server(limits: limits) }
        return try .tls(server(limits: limits), tlsConfiguration: tls)
    }

    /// HTTP/1.1 with the head-size and idle limits (Hummingbird's own: NIO's decoder limits and
    /// `HTTP1Channel`'s idle timeout), a head too large answered 431 instead of Hummingbird's bare
    /// 400, and the body timeout on the rest of a body the route never read (``UnreadBodyHandler``).
    public static func server(limits: GatewayLimits) -> HTTPServerBuilder {
        .http1(
            configuration: HTTP1Channel.Configuration(
                additionalChannelHandlers: [HeadTooLargeHandler(), UnreadBodyHandler(timeoutSeconds: limits.bodyTimeoutSeconds)],
                idleTimeout: .seconds(Int64(limits.idleTimeoutSeconds)),
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: limits.maximumHeaderBytes, maxHeaderListSize: limits.maximumHeaderBytes)))
    }

    /// The listening address, the server name and the connection cap (Hummingbird's
    /// `MaximumAvailableConnections`: past it the server stops accepting until one closes).
    public static func serverConfiguration(address: BindAddress, limits: GatewayLimits) -> ApplicationConfiguration {
        ApplicationConfiguration(
            address: address, serverName: "privacy-gateway",
            availableConnectionsDelegate: MaximumAvailableConnections(limits.maximumConnections))
    }

    /// An integer query parameter within `range`; nil when absent, a 400 naming it and the range
    /// when malformed or outside it. Every `/v1` number is checked here, before SQL: a value past
    /// a column's type (e.g. a version past 32 bits) is the caller's error, not a database failure.
    static func queryInteger(_ text: String?, name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text else { return nil }
        guard let number = Int(text), range.contains(number) else {
            throw GatewayError.invalidInput(
                "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), got \"\(quoted(text))\"")
        }
        return number
    }

    /// A `true`/`false` query parameter; nil when absent, a 400 naming it otherwise.
    static func queryBoolean(_ text: String?, name: String) throws -> Bool? {
        switch text {
        case nil: return nil
        case "true": return true
        case "false": return false
        case let text?: throw GatewayError.invalidInput("\(name) must be true or false, got \"\(quoted(text))\"")
        }
    }

    /// A free-text query parameter (a cursor, a filter value): at most `maximumLength` Unicode
    /// scalars and no control characters (Postgres text cannot hold NUL; a bound NUL would cut the
    /// value short). nil when absent, a 400 naming it otherwise.
    static func queryText(_ text: String?, name: String, maximumLength: Int) throws -> String? {
        guard let text else { return nil }
        guard text.unicodeScalars.count <= maximumLength,
            !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw GatewayError.invalidInput("\(name) must be text of at most \(maximumLength) characters without control characters")
        }
        return text
    }

    /// A JSON object body decoded as `T`, with no field outside `fields` (a misspelt field is
    /// refused, not silently ignored). A 400 saying what was `expected` otherwise; the decoder's
    /// reason (a field's path and expected type, never its value) is in `details`.
    static func jsonBody<T: Decodable>(_ bytes: some Collection<UInt8>, as type: T.Type = T.self, fields: Set<String>, expected: String)
        throws -> T
    {
        let data = Data(bytes)
        guard let object = (try? JSONSerialization.jsonObject(with: data, options: [])) as? [String: Any] else {
            throw GatewayError.invalidInput("the body must be a JSON object \(expected)")
        }
        let unknown = object.keys.filter { !fields.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw GatewayError.invalidInput(
                "unknown field\(unknown.count == 1 ? "" : "s") \(unknown.prefix(5).map { "\"\(quoted($0))\"" }.joined(separator: ", ")): "
                    + "the body is \(expected)")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw GatewayError.invalidInput("the body must be \(expected)", details: decodingReason(error))
        }
    }

    /// Where and why decoding failed — the coding path and the expected type, never the value.
    private static func decodingReason(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String { keys.isEmpty ? "the body" : keys.map(\.stringValue).joined(separator: ".") }
        switch error {
        case .typeMismatch(let type, let context): return "\(path(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context): return "\(path(context.codingPath)): expected \(type), got null"
        case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])): required"
        case .dataCorrupted(let context): return "\(path(context.codingPath)): not a valid value of its type"
        @unknown default: return "not the expected JSON"
        }
    }

    /// A caller's value as it may be echoed in an error: short, control characters escaped.
    static func quoted(_ text: String) -> String {
        let short = text.unicodeScalars.count > 64 ? String(String.UnicodeScalarView(text.unicodeScalars.prefix(64))) + "…" : text
        return short.unicodeScalars.map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined()
    }

    static func jsonResponse<T: Encodable>(_ status: HTTPResponse.Status, _ value: T) throws -> Response {
        let data = try JSONCoding.encoder().encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
