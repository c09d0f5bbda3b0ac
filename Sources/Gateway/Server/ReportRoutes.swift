import Audit
import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import Policy
import Postgres
import Reports

/// `GET /v1/audit/report?since=DATE&until=DATE&format=json|md|html` — the caller's tenant's
/// compliance report (issue #8), for service keys with the `audit:read` scope.
///
/// Dates are `YYYY-MM-DD` (a bare `until` includes that day) or RFC 3339 times; `format`
/// defaults to `json` (schema: Sources/Reports/SCHEMA.md). Service names are resolved when the
/// gateway has its root key; policy drift and lint are judged against the live catalogue; a deletion
/// certificate counts as signed only when its signature verifies with the gateway's signing key.
struct ReportRoutes: Sendable {
    let pool: ConnectionPool
    let authenticator: RequestAuthenticator
    let policies: PolicySet
    let auditKeys: AuditKeys?
    /// Pinned checkpoint keys (configuration), never the database's.
    let trustedKeys: [String: [UInt8]]
    /// Public keys deletion certificates are verified with (the gateway's signing key's public half).
    let certificateKeys: [[UInt8]]

    func add(to router: Router<GatewayRequestContext>) {
        let router = router.group().add(middleware: AuthenticationMiddleware(authenticator: authenticator, scope: .always(.auditRead)))
        router.get("/v1/audit/report") { request, context in
            let caller = try context.authenticated()
            let query = request.uri.queryParameters
            let formatText = query["format"].map(String.init) ?? "json"
            guard let format = ReportFormat(rawValue: formatText) else {
                throw GatewayError.invalidInput("format must be json, md or html, got \"\(formatText)\"")
            }
            let since = try Self.date(query["since"].map(String.init), name: "since", asEnd: false)
            let until = try Self.date(query["until"].map(String.init), name: "until", asEnd: true)
            if let since, let until, since >= until {
                throw GatewayError.invalidInput("since must be before until")
            }
            let live = try await LiveSchema.read(from: pool, tenant: caller.tenantID)
            let report = try await ReportCollector(pool: pool, keys: auditKeys, trustedKeys: trustedKeys, certificateKeys: certificateKeys)
                .report(
                    tenant: caller.tenantID, since: since, until: until,
                    policy: PolicyStatus(policies: policies, livePolicies: live.policies, liveTables: live.tables))
            var headers = HTTPFields()
            headers[.contentType] = format.contentType
            return Response(
                status: .ok, headers: headers,
                body: .init(byteBuffer: ByteBuffer(string: ReportRenderer.render(report, as: format))))
        }
    }

    private static func date(_ text: String?, name: String, asEnd: Bool) throws -> Date? {
        guard let text else { return nil }
        guard let date = ReportDate.parse(text, asEnd: asEnd) else {
            throw GatewayError.invalidInput(
                "\(name) must be a date (YYYY-MM-DD) or an RFC 3339 time from 1970-01-01 to 9999-12-31, "
                    + "got \"\(GatewayApplication.quoted(text))\"")
        }
        return date
    }
}
