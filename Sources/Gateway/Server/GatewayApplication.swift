import Foundation
import Hummingbird
import Audit
import Logging
import Policy
import Postgres
import Secrets
import Privacy

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
    /// The Ed25519 public key deletion certificates must verify with to count as signed in reports
    /// (the signing key's public half); defaults to the privacy service's.
    public let certificatePublicKey: [UInt8]?

    public init(
        pool: ConnectionPool, policies: PolicySet, authenticator: RequestAuthenticator, readiness: Readiness,
        audit: AuditAppender, metrics: GatewayMetrics = GatewayMetrics(), secrets: SecretStore? = nil, auditKeys: AuditKeys? = nil,
        privacy: PrivacyService? = nil, auditTrustedKeys: [String: [UInt8]] = [:], certificatePublicKey: [UInt8]? = nil
    ) {
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
        router.add(middleware: RequestIDMiddleware(metrics: services.metrics))
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
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            let text = services.metrics.render(pool: services.pool.statistics)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }

        AuditRoutes(pool: services.pool, authenticator: services.authenticator, trustedKeys: services.auditTrustedKeys).add(to: router)
        if let secrets = services.secrets {
            SecretRoutes(store: secrets, authenticator: services.authenticator).add(to: router)
        }
        ReportRoutes(
            pool: services.pool, authenticator: services.authenticator, policies: services.policies, auditKeys: services.auditKeys,
            trustedKeys: services.auditTrustedKeys,
            certificateKeys: services.certificatePublicKey.map { [$0] } ?? [])
            .add(to: router)
        PrivacyRoutes(privacy: services.privacy, authenticator: services.authenticator).add(to: router)

        let rest = RESTHandler(
            pool: services.pool, policies: services.policies, authenticator: services.authenticator,
            audit: services.audit, metrics: services.metrics)
        let table: @Sendable (Request, GatewayRequestContext) async throws -> Response = { request, context in
            try await rest.handle(request, table: context.parameters.get("table") ?? "", facts: context.facts)
        }
        router.get("/rest/v1/:table", use: table)
        router.head("/rest/v1/:table", use: table)
        router.post("/rest/v1/:table", use: table)
        router.patch("/rest/v1/:table", use: table)
        router.delete("/rest/v1/:table", use: table)
        return router
    }

    public static func make(
        configuration: GatewayConfiguration, services: GatewayServices, logger: Logger
    ) -> some ApplicationProtocol {
        Application(
            router: router(services: services),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "privacy-gateway"),
            logger: logger)
    }

    /// A non-negative integer query parameter; nil when absent, a 400 naming it when malformed.
    static func queryInteger(_ text: String?, name: String) throws -> Int? {
        guard let text else { return nil }
        guard let number = Int(text), number >= 0 else {
            throw GatewayError.invalidInput("\(name) must be a non-negative integer, got \"\(text)\"")
        }
        return number
    }

    static func jsonResponse<T: Encodable>(_ status: HTTPResponse.Status, _ value: T) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
