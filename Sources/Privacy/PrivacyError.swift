import Foundation

/// The one error type of the Privacy module. Callers switch on ``code``; ``message`` never holds
/// personal data, secrets or passphrases.
public struct PrivacyError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable, Codable {
        /// No request with that id in the tenant (or not the caller's).
        case notFound = "privacy.not_found"
        /// The request is in a state that does not allow the step (e.g. cancel after processing started).
        case invalidState = "privacy.invalid_state"
        /// Input out of range (extension length, empty reason, batch size…).
        case invalidInput = "privacy.invalid_input"
        /// The subject graph of the policy files cannot be ordered or walked.
        case graph = "privacy.graph"
        /// The archive could not be written, read or decrypted.
        case archive = "privacy.archive"
        /// A download token is unknown, used or expired.
        case tokenRejected = "privacy.token_rejected"
        /// A certificate's signature or content does not verify.
        case verificationFailed = "privacy.verification_failed"
        /// Another worker holds the request.
        case busy = "privacy.busy"
        /// The request was not filed (or, for an erasure, not confirmed) through the privacy
        /// service: its audit entries are missing, so it is never run.
        case refused = "privacy.refused"
        /// The export archive was removed (downloaded once, expired, or the subject was erased).
        case gone = "privacy.gone"
        /// A one-time identity code could not be delivered through the configured notifier.
        case notifierFailed = "privacy.notifier_failed"
        /// The erasure's database work is done and it waits (`requires_input`) for its processors'
        /// answers; a worker finishes it once they answered or their deadline passed.
        case awaitingInput = "privacy.awaiting_input"
        /// A processor's callback is unsigned, signed with another key, or outside the timestamp window.
        case signatureRejected = "privacy.signature_rejected"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
