import Foundation

/// The one error type of this module. Callers switch on ``code``; the message is for people.
public struct ReportError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidPeriod = "invalid_period"
            case database
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// `since` is not before `until`.
        public static let invalidPeriod = Code(.invalidPeriod)
        /// Reading the tenant's records failed; see ``ReportError/underlying``.
        public static let database = Code(.database)

        /// Stable, for logs and scripts.
        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String
    /// The error that caused this one, when there is one (a `PostgresError`, an `AuditError`).
    public let underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        "report error [\(code)]: \(message)" + (underlying.map { " (\($0))" } ?? "")
    }
}
