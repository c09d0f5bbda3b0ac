import Foundation

/// The one error type thrown by this module. Messages name services and versions, never values.
public struct SecretsError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidInput, notFound, deleted, versionConflict, forbidden, shredded, cannotOpen, auditUnavailable, unavailable
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A service name, value, version or page token that cannot be used.
        public static let invalidInput = Code(.invalidInput)
        /// No such secret (or version) for this subject.
        public static let notFound = Code(.notFound)
        /// The secret is soft-deleted: undelete it to read it again.
        public static let deleted = Code(.deleted)
        /// `If-Match` named a version that is not the current one (check-and-set lost).
        public static let versionConflict = Code(.versionConflict)
        /// The caller may not reach this subject's secrets.
        public static let forbidden = Code(.forbidden)
        /// The subject's key was destroyed (erasure): their secrets can never be opened.
        public static let shredded = Code(.shredded)
        /// The stored ciphertext does not open under its binding: altered, or moved from another row.
        public static let cannotOpen = Code(.cannotOpen)
        /// The audit trail could not record the access, so nothing was done or returned.
        public static let auditUnavailable = Code(.auditUnavailable)
        /// The database failed; nothing was changed or returned.
        public static let unavailable = Code(.unavailable)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
