import Foundation
import Synchronization

/// A per-tenant cap on concurrent database work in this process, so one tenant cannot hold the
/// whole pool: each tenant has at most ``concurrency`` units in flight; the next wait, first come
/// first served, in that tenant's own queue (never in front of another tenant), and past
/// ``queueLength`` waiting a request is refused at once (503 with `Retry-After`). A cancelled
/// waiter leaves the queue at once. No timers, no polling: a finishing unit hands its slot to the
/// tenant's next waiter.
///
/// The pool holds the slots (``ConnectionPool/withConnection(tenant:_:)``, ``ConnectionPool/pipeline(tenant:_:timeout:)``,
/// ``ConnectionPool/transaction(tenant:isolation:_:)``, given one in ``ConnectionPool/Options/tenantLimiter``),
/// only around database work: callers name the tenant, never take a slot themselves. The audit
/// appender's group commit is outside it (one connection per tenant lane already), so a secret
/// read's audit entry waits without holding a slot.
public final class TenantLimiter: Sendable {
    public let concurrency: Int
    public let queueLength: Int

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct TenantState {
        var inFlight = 0
        var waiters: [Waiter] = []
    }

    private struct State {
        var tenants: [UUID: TenantState] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Why ``acquire(_:)`` refused; the pool throws it as ``PostgresError/Code/tenantBusy``.
    public struct Saturated: Error, Sendable {
        public let concurrency: Int
        public let queued: Int
    }

    public init(concurrency: Int, queueLength: Int) {
        precondition(concurrency >= 1 && queueLength >= 0)
        self.concurrency = concurrency
        self.queueLength = queueLength
    }

    /// Runs `work` holding one of `tenant`'s slots. Throws ``Saturated`` when the tenant's queue
    /// is full, `CancellationError` when the task is cancelled while waiting.
    public func run<T>(_ tenant: UUID, _ work: () async throws -> T) async throws -> T {
        try await acquire(tenant)
        defer { release(tenant) }
        return try await work()
    }

    /// Units `tenant` has in flight now (for tests and metrics).
    public func inFlight(_ tenant: UUID) -> Int {
        state.withLock { $0.tenants[tenant]?.inFlight ?? 0 }
    }

    /// Requests of `tenant` waiting for a slot now.
    public func waiting(_ tenant: UUID) -> Int {
        state.withLock { $0.tenants[tenant]?.waiters.count ?? 0 }
    }

    private enum Decision {
        case admitted
        case refused(Int)
        case wait
    }

    public func acquire(_ tenant: UUID) async throws {
        let (decision, id): (Decision, UInt64) = state.withLock { state in
            var entry = state.tenants[tenant, default: TenantState()]
            if entry.inFlight < concurrency {
                entry.inFlight += 1
                state.tenants[tenant] = entry
                return (.admitted, 0)
            }
            if entry.waiters.count >= queueLength { return (.refused(entry.waiters.count), 0) }
            state.nextID &+= 1
            return (.wait, state.nextID)
        }
        switch decision {
        case .admitted: return
        case .refused(let queued): throw Saturated(concurrency: concurrency, queued: queued)
        case .wait: break
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled: Bool = state.withLock { state in
                    if Task.isCancelled { return true }
                    var entry = state.tenants[tenant, default: TenantState()]
                    // A slot may have been freed between the two locks: take it instead of waiting.
                    if entry.inFlight < concurrency {
                        entry.inFlight += 1
                        state.tenants[tenant] = entry
                        continuation.resume()
                        return false
                    }
                    entry.waiters.append(Waiter(id: id, continuation: continuation))
                    state.tenants[tenant] = entry
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let waiter: Waiter? = state.withLock { state in
                guard var entry = state.tenants[tenant], let index = entry.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                let waiter = entry.waiters.remove(at: index)
                state.tenants[tenant] = entry
                return waiter
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Hands the slot to the tenant's first waiter, or frees it.
    public func release(_ tenant: UUID) {
        let next: Waiter? = state.withLock { state in
            guard var entry = state.tenants[tenant] else { return nil }
            if !entry.waiters.isEmpty {
                let next = entry.waiters.removeFirst()
                state.tenants[tenant] = entry
                return next
            }
            entry.inFlight -= 1
            state.tenants[tenant] = entry.inFlight == 0 ? nil : entry
            return nil
        }
        next?.continuation.resume()
    }
}
