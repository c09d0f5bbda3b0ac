import Audit
import Config
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Keyring
import Postgres
import Privacy
import Reports
import Secrets
import Tenancy
import Testing

@testable import Gateway

/// The one map from each module's error type to an HTTP answer (ErrorMap.swift).
@Suite("Error map: every module's error gets one answer, never a 500 for the caller's mistake")
struct ErrorMapTests {
    struct Unknown: Error {}

    @Test("an error type the map does not know is a 500 that says nothing of the error")
    func unknownIsOpaque() {
        let answer = GatewayError(mapping: Unknown())
        #expect(answer.status == .internalServerError)
        #expect(answer.code == "PGW500")
        #expect(answer.message == "internal error")
        #expect(answer.details == nil)
        #expect(GatewayError(known: Unknown()) == nil)
    }

    @Test("a database error never carries its server detail (which can quote row values) into the answer")
    func databaseDetailStaysOut() {
        let failing = PostgresError(
            .server, "new row violates check constraint", sqlState: "23514", detail: "Failing row contains (secret)")
        let answer = GatewayError(mapping: failing)
        #expect(answer.status == .badRequest)
        #expect(answer.details == "23514")
        #expect(!answer.description.contains("secret"))
        let outage = GatewayError(mapping: PostgresError(.server, "deadlock detected", sqlState: "40P01", detail: "Process 12 waits for …"))
        #expect(outage.status == .serviceUnavailable)
        #expect(outage.details == "40P01")
        #expect(GatewayError(mapping: PostgresError(.connectionFailed, "no route to host")).status == .serviceUnavailable)
    }

    @Test("a full tenant queue is 503 with Retry-After, however deep a module wrapped it")
    func tenantBusyWrapped() {
        let busy = PostgresError(.tenantBusy, "tenant is busy")
        for error in [
            busy, AuditError(.database, "append failed", underlying: busy), ReportError(.database, "read failed", underlying: busy),
        ] as [any Error] {
            let answer = GatewayError(mapping: error)
            #expect(answer.status == .serviceUnavailable)
            #expect(answer.code == "PGW503")
            #expect(answer.retryAfter == 1)
        }
    }

    @Test("each module's refusals of the caller's input are 4xx with the module's own message")
    func moduleRefusals() {
        let cases: [(any Error, HTTPResponse.Status, String)] = [
            (TenancyError.invalidInput("tenant name must be 1 to 200 characters"), .badRequest, "PGW400"),
            (TenancyError.notFound("tenant x does not exist"), .notFound, "PGW404"),
            (TenancyError(.conflict, code: "23505", "a tenant named \"acme\" already exists"), .conflict, "23505"),
            (TenancyError(.conflict, "service key is revoked"), .conflict, "PGW409"),
            (SecretsError(.versionConflict, "version 3 is not the current one"), .preconditionFailed, "PGW412"),
            (SecretsError(.notFound, "no secret"), .notFound, "PGW404"),
            (PrivacyError(.invalidState, "already processing"), .conflict, "PGW409"),
            (PrivacyError(.signatureRejected, "bad signature"), .unauthorized, "PGW401"),
            (AuditError(.notFound, "no checkpoint 9"), .notFound, "PGW404"),
            (AuditError(.invalidRequest, "from must be before to"), .badRequest, "PGW400"),
            (ReportError(.invalidPeriod, "since is not before until"), .badRequest, "PGW400"),
            (KeyringError(.rotationConflict, "a rotation is running"), .conflict, "PGW409"),
        ]
        for (error, status, code) in cases {
            let answer = GatewayError(mapping: error)
            #expect(answer.status == status, "\(error)")
            #expect(answer.code == code, "\(error)")
            #expect(GatewayError(known: error) != nil)
        }
        // Configuration errors are the operator's, met at start-up; should one surface in a request it is a 500, not the caller's fault.
        #expect(GatewayError(mapping: ConfigurationError("PORT must be a port number")).code == "PGW001")
        // An answer already made passes through unchanged.
        let made = GatewayError(.forbidden, code: "42501", "permission denied for table tenants")
        #expect(GatewayError(mapping: made).code == "42501")
    }

    @Test("a route's module error reaches the caller through the map: an unknown tenant id on the admin API is 404, not 500")
    func throughTheRouter() async throws {
        // Built without a database: the map is the router's, whatever the route.
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: RequestIDMiddleware(metrics: GatewayMetrics(), trustedProxies: .none))
        router.get("/tenancy") { _, _ -> Response in
            throw TenancyError.notFound("tenant 00000000-0000-0000-0000-000000000000 does not exist")
        }
        router.get("/opaque") { _, _ -> Response in throw Unknown() }
        let app = Application(router: router)
        try await app.test(.router) { client in
            try await client.execute(uri: "/tenancy", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).contains("\"code\":\"PGW404\""))
            }
            try await client.execute(uri: "/opaque", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(!String(buffer: response.body).contains("Unknown"))
            }
        }
    }

    @Test("a route registered outside an authenticated group never runs as a caller")
    func noCallerOutsideTheGroup() async throws {
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: RequestIDMiddleware(metrics: GatewayMetrics(), trustedProxies: .none))
        router.get("/unguarded") { _, context -> Response in
            _ = try context.authenticated()
            return Response(status: .ok)
        }
        let app = Application(router: router)
        try await app.test(.router) { client in
            try await client.execute(uri: "/unguarded", method: .get, headers: [.init("apikey")!: "pgw_anything"]) { response in
                #expect(response.status == .internalServerError)
            }
        }
    }
}
