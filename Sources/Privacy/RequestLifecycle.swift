import Foundation

/// The statuses a data-subject request moves through, and the one table of moves allowed between
/// them. The privacy service only ever asks for these moves, and migration 0020's trigger refuses
/// any other `status` change in the database, whoever makes it (the owner excepted: repairs and
/// migrations); a test walks every pair of statuses against that trigger and this table.
///
/// ```
/// export:   received → identity_verified → pending → processing → completed | partially_completed
///                                                      ↘ requires_input ↗ (processors, migration 0034)
/// deletion: received → identity_verified → awaiting_confirmation → pending → processing → completed | partially_completed
///                                                                      ↘ requires_input ↗ (processors, migration 0026)
/// ```
/// An erasure whose database work is done waits in `requires_input` for its processors' signed
/// answers (``PrivacyService/dispatchProcessorCalls(limit:)``); once each answered or passed its
/// deadline, a worker takes it back to `processing` and issues the certificate. An export waits
/// there for its `export_required` processors before its archive is written, which lists them.
/// Open requests can go `on_hold` and back, be `denied` (with a reason) or `canceled`; a run ends
/// `failed` (so does a queued request the privacy service did not file: `pending → failed`), and
/// `retry` takes a failed request back to `pending` — an erasure then resumes from
/// its committed batches. `processing → processing` is a run resumed after its worker died.
public enum RequestStatus: String, Sendable, Codable, CaseIterable {
    case received
    case identityVerified = "identity_verified"
    case awaitingConfirmation = "awaiting_confirmation"
    case pending
    case onHold = "on_hold"
    case processing
    case requiresInput = "requires_input"
    case completed
    case partiallyCompleted = "partially_completed"
    case denied
    case canceled
    case failed

    /// No move leaves these but `failed → pending` (a retry).
    public var isClosed: Bool { [.completed, .partiallyCompleted, .denied, .canceled, .failed].contains(self) }
}

public enum RequestLifecycle {
    /// Statuses a request may be created in.
    public static func initial(_ kind: RequestKind) -> Set<RequestStatus> {
        kind == .export ? [.received, .pending] : [.received, .awaitingConfirmation]
    }

    /// Every allowed move, by kind.
    public static func allowed(_ kind: RequestKind) -> [RequestStatus: Set<RequestStatus>] {
        let stop: Set<RequestStatus> = [.onHold, .denied, .canceled]
        switch kind {
        case .export:
            return [
                .received: stop.union([.identityVerified, .pending]),
                .identityVerified: stop.union([.pending]),
                .pending: stop.union([.processing, .failed]),
                .onHold: [.pending, .denied, .canceled],
                .processing: [.processing, .requiresInput, .completed, .partiallyCompleted, .failed],
                .requiresInput: [.processing, .failed],
                .failed: [.pending],
            ]
        case .deletion:
            return [
                .received: stop.union([.identityVerified, .awaitingConfirmation]),
                .identityVerified: stop.union([.awaitingConfirmation]),
                .awaitingConfirmation: stop.union([.pending]),
                .pending: stop.union([.processing, .failed]),
                .onHold: [.awaitingConfirmation, .pending, .denied, .canceled],
                .processing: [.processing, .requiresInput, .completed, .partiallyCompleted, .failed],
                .requiresInput: [.processing, .failed],
                .failed: [.pending],
            ]
        }
    }

    public static func allows(_ kind: RequestKind, from: RequestStatus, to: RequestStatus) -> Bool {
        allowed(kind)[from]?.contains(to) ?? false
    }
}
