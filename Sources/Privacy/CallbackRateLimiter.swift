import Foundation

/// The bound on `POST /v1/privacy/processors/{id}/callback`, the one route no key guards (the
/// HMAC is the credential, so every attempt costs a lookup, an unsealing and a MAC): at most
/// `limit` callbacks per `window` from one client address (an IPv6 client by its /64, which the
/// route passes as its address), and at most `limit` per window naming
/// one processor id. Checked before the body is read; past it the route answers 429 with
/// `Retry-After` (the rest of the window). Fixed windows, in this process's memory: with several
/// gateways each counts its own share.
///
/// The per-processor count is a trade-off: someone who knows a processor's id (it is in the
/// callback path of the calls that processor receives, nowhere else) can hold that processor's
/// callbacks at 429 for a window at a time; the processor retries after `Retry-After`, and its call
/// stays open until its deadline. Without it, many addresses could make the gateway unseal a
/// processor's secret without bound.
public final class CallbackRateLimiter: @unchecked Sendable {
    public let limit: Int
    public let window: Duration
    /// Keys tracked at most; past it the windows start over (memory stays bounded whatever ids or
    /// addresses a flood names — a new address can add at most `limit` processor keys a window).
    public static let maxKeys = 10_000

    private let lock = NSLock()
    private var counts: [String: (start: ContinuousClock.Instant, count: Int)] = [:]
    private let clock = ContinuousClock()

    public init(limit: Int, window: Duration = .seconds(60)) {
        self.limit = max(1, limit)
        self.window = window
    }

    /// Counts one callback; nil when it may go on, else the seconds until it may be tried again.
    public func admit(processor: String, address: String?) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        let now = clock.now
        if counts.count >= Self.maxKeys {
            counts = counts.filter { now - $0.value.start < window }
            // Then every key still under its limit: a flood of fresh addresses (each refused, each
            // adding its own key) must not wipe a full window and so reopen the processor it names.
            // A full key costs `limit` admitted callbacks, so these are few; past the bound all go.
            if counts.count >= Self.maxKeys { counts = counts.filter { $0.value.count >= limit } }
            if counts.count >= Self.maxKeys { counts.removeAll(keepingCapacity: true) }
        }
        // The address first: a refused caller adds no processor key.
        for key in ["address:" + (address ?? "unknown"), "processor:" + processor] {
            var entry = counts[key] ?? (start: now, count: 0)
            if now - entry.start >= window { entry = (start: now, count: 0) }
            guard entry.count < limit else {
                let left = window - (now - entry.start)
                return max(1, Int(left.components.seconds) + (left.components.attoseconds > 0 ? 1 : 0))
            }
            entry.count += 1
            counts[key] = entry
        }
        return nil
    }
}
