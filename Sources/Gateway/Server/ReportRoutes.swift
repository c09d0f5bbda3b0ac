import Audit
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
        router.get("/v1/audit/report") { request, context in
            let caller = try await authenticator.authenticate(
                apikey: request.headers[.apikey], authorization: request.headers[.authorization])
            context.facts.tenantID = caller.tenantID
            try caller.require(.auditRead)
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
            let report: ComplianceReport
            do {
                let live = try await LiveSchema.read(from: pool, tenant: caller.tenantID)
                report = try await ReportCollector(pool: pool, keys: auditKeys, trustedKeys: trustedKeys, certificateKeys: certificateKeys).report(
                    tenant: caller.tenantID, since: since, until: until,
                    policy: PolicyStatus(policies: policies, livePolicies: live.policies, liveTables: live.tables))
            } catch let error where GatewayError.tenantBusy(error) != nil {
                throw GatewayError.tenantSaturated(GatewayError.tenantBusy(error)!, rest: false)
            } catch let error as ReportError where error.code == .invalidPeriod {
                throw GatewayError.invalidInput(error.message)
            } catch let error as ReportError where error.isDataError {
                // The dates are validated first; one the database still refuses is the caller's, not an outage.
                throw GatewayError.invalidInput("the database refused the period as out of range", details: error.message)
            } catch let error as ReportError {
                // Without database detail, as for the other audit routes.
                throw GatewayError(.serviceUnavailable, code: "PGW503", "the report could not be made", details: error.message)
            } catch let error as PostgresError where error.isDataError {
                throw GatewayError.invalidInput("the database refused the period as out of range", details: error.code.description)
            } catch let error as PostgresError {
                throw GatewayError(.serviceUnavailable, code: "PGW503", "the report could not be made", details: error.code.description)
            }
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

extension ReportError {
    /// The database refused a value the report bound (a data exception), directly or through the audit reader.
    fileprivate var isDataError: Bool {
        switch underlying {
        case let error as PostgresError: error.isDataError
        case let error as AuditError: error.underlying?.isDataError == true
        default: false
        }
    }
}
