import Postgres

/// The one error type thrown by this module.
///
/// Callers switch on ``code``; the message is for people and logs. Messages name fields and
/// sequence numbers, never sensitive values (those are HMAC-ed before they get this far).
/// A database failure keeps the underlying ``PostgresError`` in ``underlying`` so callers can
/// still read its SQLSTATE.
public struct AuditError: Error, Sendable, CustomStringConvertible {
    /// A stable identifier for what went wrong; extensible without breaking `switch`es.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidEvent
            case noAuditKey
            case notInTransaction
            case database
            case chainCorrupt
            case emptyChain
            case bundle
            case notFound
            case invalidRequest
            case proof
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The event cannot be encoded (a NUL character, a float in details, a bad IP address).
        public static let invalidEvent = Code(.invalidEvent)
        /// Sensitive values were given but the appender has no root key to derive audit keys from.
        public static let noAuditKey = Code(.noAuditKey)
        /// ``AuditAppender/append(in:tenant:_:)`` was called outside an open transaction.
        public static let notInTransaction = Code(.notInTransaction)
        /// The database refused or failed an audit statement; see ``AuditError/underlying``.
        public static let database = Code(.database)
        /// The stored head does not match the entries (the chain was tampered with); appends stop.
        public static let chainCorrupt = Code(.chainCorrupt)
        /// A checkpoint was requested for a tenant with no entries.
        public static let emptyChain = Code(.emptyChain)
        /// An export bundle could not be written or read.
        public static let bundle = Code(.bundle)
        /// The entry or checkpoint asked for does not exist in this tenant's log.
        public static let notFound = Code(.notFound)
        /// The request cannot be answered as asked (e.g. a proof against a checkpoint that does
        /// not cover the entry, or that predates the Merkle tree).
        public static let invalidRequest = Code(.invalidRequest)
        /// A proof does not verify; the message says which check failed.
        public static let proof = Code(.proof)

        /// The code's name, e.g. `database`; stable, suitable for logs and metrics.
        public var description: String { base.rawValue }
    }

    /// What went wrong.
    public let code: Code
    /// A sentence for people.
    public let message: String
    /// The database error behind a ``Code/database`` failure.
    public let underlying: PostgresError?

    /// Creates an error; public so callers' tests can build expected values.
    public init(_ code: Code, _ message: String, underlying: PostgresError? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        var text = "AuditError.\(code): \(message)"
        if let underlying { text += " (\(underlying.summary))" }
        return text
    }

    /// Wraps any error from a database call; audit errors pass through unchanged.
    static func wrap(_ error: any Error, _ message: String) -> AuditError {
        switch error {
        case let error as AuditError: error
        case let error as PostgresError: AuditError(.database, message, underlying: error)
        default: AuditError(.database, "\(message): \(error)")
        }
    }
}
