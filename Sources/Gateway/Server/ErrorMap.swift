import Audit
import Config
import Foundation
import Keyring
import Postgres
import Privacy
import Reports
import Secrets
import Tenancy

/// The one place each module's error type becomes an HTTP answer in PostgREST's shape
/// (`{code, message, details, hint}`), as PostgREST's `Error.hs` does. Routes throw what their
/// module threw; ``RequestIDMiddleware`` applies this map to everything that reaches it, so no
/// route carries a wrapper of its own and one error never gets two answers on two routes.
///
/// Messages come from the modules, which write them for the caller (no secrets, no SQL, no bound
/// values); a database error adds only its SQLSTATE. Anything unknown is a 500 without detail.
extension GatewayError {
    /// `error`'s answer; an error of a type the map does not know is a 500 that says nothing of it.
    public init(mapping error: any Error) {
        self = GatewayError(known: error) ?? GatewayError(.internalServerError, code: "PGW500", "internal error")
    }

    /// `error`'s answer, or nil for an error of a type the map does not know (worth a log line).
    init?(known error: any Error) {
        if let busy = Self.tenantBusy(error) {
            // The tenant's slots in the pool are all in use and its queue is full (any module's
            // database work); /rest/v1 answers PostgREST's pool code, set where REST meets it.
            self = .tenantSaturated(busy, rest: false)
            return
        }
        switch error {
        case let error as GatewayError:
            self = error
        case let error as RESTGrammarError:
            self.init(error)
        case let error as TenancyError:
            switch error.kind {
            case .invalidInput: self = .invalidInput(error.message, hint: error.hint)
            case .notFound: self = .notFound(error.message)
            case .conflict: self.init(.conflict, code: error.code ?? "PGW409", error.message, hint: error.hint)
            case .unconfigured: self = .configuration(error.message, hint: error.hint)
            }
        case let error as ConfigurationError:
            self = .configuration(error.message, hint: error.hint)
        case let error as SecretsError:
            switch error.code {
            case .invalidInput: self = .invalidInput(error.message)
            case .notFound: self = .notFound(error.message)
            case .deleted: self = .notFound(error.message, hint: "POST /v1/secrets/{service}/undelete restores it")
            case .versionConflict: self.init(.preconditionFailed, code: "PGW412", error.message)
            case .forbidden: self.init(.forbidden, code: "PGW403", error.message)
            case .shredded: self.init(.gone, code: "PGW410", error.message)
            case .cannotOpen: self.init(.internalServerError, code: "PGW500", error.message)
            default: self.init(.serviceUnavailable, code: "PGW503", error.message)
            }
        case let error as PrivacyError:
            switch error.code {
            case .notFound: self = .notFound(error.message)
            case .invalidState, .busy: self.init(.conflict, code: "PGW409", error.message)
            case .invalidInput: self = .invalidInput(error.message)
            case .tokenRejected: self.init(.forbidden, code: "PGW403", error.message)
            case .gone: self.init(.gone, code: "PGW410", error.message)
            case .notifierFailed: self.init(.serviceUnavailable, code: "PGW503", error.message)
            case .signatureRejected: self.init(.unauthorized, code: "PGW401", error.message)
            default: self.init(.internalServerError, code: "PGW500", error.message)
            }
        case let error as AuditError:
            switch error.code {
            // Another tenant's seq or checkpoint is simply not in this tenant's log.
            case .notFound: self = .notFound(error.message)
            case .invalidRequest: self = .invalidInput(error.message)
            case _ where error.underlying?.isDataError == true:
                // Parameters are validated first; a value the database still refuses is the caller's.
                self = .invalidInput("the database refused a parameter as malformed or out of range", details: error.message)
            default: self.init(.serviceUnavailable, code: "PGW503", "the audit trail is unavailable", details: error.message)
            }
        case let error as ReportError:
            if error.code == .invalidPeriod {
                self = .invalidInput(error.message)
            } else if error.isDataError {
                // The dates are validated first; one the database still refuses is the caller's, not an outage.
                self = .invalidInput("the database refused the period as out of range", details: error.message)
            } else {
                self.init(.serviceUnavailable, code: "PGW503", "the report could not be made", details: error.message)
            }
        case let error as KeyringError:
            switch error.code {
            case .keyMissing: self = .notFound(error.message)
            case .invalidInput: self = .invalidInput(error.message)
            case .rootRotationInProgress, .rotationConflict: self.init(.conflict, code: "PGW409", error.message)
            default: self.init(.serviceUnavailable, code: "PGW503", "the keyring cannot serve this request now", details: error.message)
            }
        case let error as PostgresError where error.code != .server || error.sqlState.map({ ["08", "53"].contains($0.prefix(2)) }) == true:
            // The database unreachable or out of connections wherever it was met (authentication's
            // lookups included): the server is busy, not broken — 503 as PostgREST answers it.
            self = .database(error, anonymous: false)
            // Its SQLSTATE only, as every other database error here: a server's detail and hint
            // (a file path, a memory context, a row) are not the caller's to read.
            if error.code == .server {
                details = error.sqlState
                hint = nil
            }
        case let error as PostgresError where error.isDataError:
            // Input validation comes first; a value the database still refuses is the caller's, not an outage.
            self = .invalidInput("the database refused a value as malformed or out of range", details: error.sqlState)
        case let error as PostgresError where error.sqlState == "23514":
            self = .invalidInput("the database refused a value (check constraint)", details: error.sqlState)
        case let error as PostgresError:
            self.init(.serviceUnavailable, code: "PGW503", "the database could not complete the request", details: error.sqlState)
        default:
            return nil
        }
    }
}

extension ReportError {
    /// The database refused a value the report bound (a data exception), directly or through the audit reader.
    var isDataError: Bool {
        switch underlying {
        case let error as PostgresError: error.isDataError
        case let error as AuditError: error.underlying?.isDataError == true
        default: false
        }
    }
}
