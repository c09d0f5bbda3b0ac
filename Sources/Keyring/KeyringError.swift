import Postgres

/// The one error type thrown by this module.
///
/// Messages name tenants, users and versions, never key material.
public struct KeyringError: Error, Sendable, CustomStringConvertible {
    /// A stable identifier for what went wrong; extensible without breaking `switch`es.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case wrongRootKey, retiredRootKey, rootRotationInProgress, invalidInput
            case subjectKeyDestroyed, keyMissing, unwrapFailed, database, rotationConflict
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The root key matches no registered root key: the gateway refuses to start.
        public static let wrongRootKey = Code(.wrongRootKey)
        /// The root key was replaced by `privacyctl keys rotate --root`.
        public static let retiredRootKey = Code(.retiredRootKey)
        /// Keys are wrapped under another root version: a root rotation has not finished.
        public static let rootRotationInProgress = Code(.rootRotationInProgress)
        /// A passphrase, batch size or other argument is unusable.
        public static let invalidInput = Code(.invalidInput)
        /// The subject's key was destroyed (crypto-shredded): their secrets cannot be opened.
        public static let subjectKeyDestroyed = Code(.subjectKeyDestroyed)
        /// A key the data refers to does not exist.
        public static let keyMissing = Code(.keyMissing)
        /// A wrapped key or sealed value did not authenticate: it was moved, altered, or the key is wrong.
        public static let unwrapFailed = Code(.unwrapFailed)
        /// The database refused or failed a keyring statement; see ``KeyringError/underlying``.
        public static let database = Code(.database)
        /// A KEK rotation of another scope is unfinished, or another process is running this one.
        public static let rotationConflict = Code(.rotationConflict)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// A sentence for people; never contains key material.
    public let message: String
    public let underlying: PostgresError?

    public init(_ code: Code, _ message: String, underlying: PostgresError? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }
}
