import Foundation
import HTTPTypes
import Postgres

extension GatewayError {
    /// A database error as PostgREST reports it: SQLSTATE → HTTP status, the server's message,
    /// never the SQL. Details that could reveal rows the caller cannot see (the key values of
    /// unique, exclusion and foreign-key violations, which may be another tenant's) are dropped,
    /// for every table.
    static func database(_ error: PostgresError, anonymous: Bool) -> GatewayError {
        guard error.code == .server, let state = error.sqlState else {
            switch error.code {
            case .tenantBusy:
                return .tenantSaturated(error, rest: true)
            case .poolTimeout:
                return GatewayError(.serviceUnavailable, code: "PGRST003", "Timed out acquiring connection from connection pool.")
            default:
                return GatewayError(.serviceUnavailable, code: "PGRST001", "Database client error. Retrying the connection.")
            }
        }
        let status: HTTPResponse.Status
        var message = error.message
        var details = error.detail
        var hint = error.hint
        switch state {
        case "23503", "23505", "23P01":
            status = .conflict
            details = nil
        case "428C9":
            // An identity column GENERATED ALWAYS (ids no tenant may choose); Postgres' hint
            // (OVERRIDING SYSTEM VALUE) is not something a REST caller can do.
            status = .badRequest
            message =
                error.message.replacingOccurrences(of: "non-DEFAULT value", with: "value")
                + ": the database assigns it"
            details = nil
            hint = "leave the column out of the body"
        case "42501": status = anonymous ? .unauthorized : .forbidden
        case "42P01", "42883": status = .notFound
        case "25006": status = .methodNotAllowed
        case "P0001": status = .badRequest
        case "57014": status = .gatewayTimeout
        default:
            switch state.prefix(2) {
            case "08", "53": status = .serviceUnavailable
            case "22", "23", "42": status = .badRequest
            case "28", "0L", "0P": status = .forbidden
            case "54": status = .contentTooLarge
            default: status = .internalServerError
            }
        }
        return GatewayError(status, code: state, message, details: details, hint: hint)
    }
}
