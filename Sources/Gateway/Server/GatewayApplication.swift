import Foundation
import Hummingbird
import Logging
import Postgres

/// The parts a running gateway is made of, built once at start-up.
public struct GatewayServices: Sendable {
    /// Connections as the gateway's own login role.
    public let pool: ConnectionPool
    public let readiness: Readiness

    public init(pool: ConnectionPool, readiness: Readiness) {
        self.pool = pool
        self.readiness = readiness
    }
}

/// Builds the gateway's HTTP application: one router, one error format.
public enum GatewayApplication {
    public static func router(services: GatewayServices) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestIDMiddleware())
        router.get("/health") { _, _ in
            try jsonResponse(.ok, ["status": "ok"])
        }
        router.get("/ready") { _, _ in
            let report = await services.readiness.check()
            return try jsonResponse(report.ready ? .ok : .serviceUnavailable, report)
        }
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

    static func jsonResponse<T: Encodable>(_ status: HTTPResponse.Status, _ value: T) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
