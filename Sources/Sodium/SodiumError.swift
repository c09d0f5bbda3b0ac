/// The one error type thrown by this module.
///
/// Callers switch on ``code``, never on the description text. The description is fixed per
/// code and never contains key material, plaintext, passphrases or any other input bytes,
/// so it is safe to log.
public struct SodiumError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable identifier for what went wrong.
    ///
    /// A struct rather than an enum so that new codes can be added without breaking
    /// exhaustive `switch` statements in other modules.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case initializationFailed
            case outOfMemory
            case invalidKeyLength
            case invalidNonceLength
            case invalidSaltLength
            case invalidOutputLength
            case invalidContext
            case invalidEncoding
            case authenticationFailed
            case derivationFailed
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// `sodium_init()` failed; no cryptography is available in this process.
        public static let initializationFailed = Code(.initializationFailed)
        /// Secure memory (`sodium_malloc`) could not be allocated.
        public static let outOfMemory = Code(.outOfMemory)
        /// A key, seed or decoded key file does not have the required length.
        public static let invalidKeyLength = Code(.invalidKeyLength)
        /// A nonce does not have the required length.
        public static let invalidNonceLength = Code(.invalidNonceLength)
        /// A password-hashing salt does not have the required length.
        public static let invalidSaltLength = Code(.invalidSaltLength)
        /// A requested derived-key length is outside what the algorithm supports.
        public static let invalidOutputLength = Code(.invalidOutputLength)
        /// A key-derivation context is not exactly 8 ASCII characters.
        public static let invalidContext = Code(.invalidContext)
        /// Text that should be base64 is not.
        public static let invalidEncoding = Code(.invalidEncoding)
        /// A ciphertext did not authenticate: wrong key, nonce or associated data, or tampering.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// A key derivation failed inside libsodium (for Argon2id usually because the
        /// limits are out of range or the memory could not be allocated).
        public static let derivationFailed = Code(.derivationFailed)

        /// The code's name, e.g. `authenticationFailed`; stable, suitable for logs and metrics.
        public var description: String { base.rawValue }

        fileprivate var message: String {
            switch base {
            case .initializationFailed: "libsodium could not be initialised"
            case .outOfMemory: "secure memory could not be allocated"
            case .invalidKeyLength: "key has the wrong length"
            case .invalidNonceLength: "nonce has the wrong length"
            case .invalidSaltLength: "salt has the wrong length"
            case .invalidOutputLength: "requested key length is not supported"
            case .invalidContext: "key-derivation context must be exactly 8 ASCII characters"
            case .invalidEncoding: "text is not valid base64"
            case .authenticationFailed: "ciphertext failed authentication"
            case .derivationFailed: "key derivation failed"
            }
        }
    }

    /// What went wrong.
    public let code: Code

    /// Creates an error with the given code; public so that callers' tests can build
    /// expected values, e.g. `#expect(throws: SodiumError(.authenticationFailed))`.
    public init(_ code: Code) {
        self.code = code
    }

    /// `SodiumError.<code>: <fixed message>`; safe to log, it never includes inputs.
    public var description: String { "SodiumError.\(code): \(code.message)" }
}
