import CLibPQ
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A connection that carries the pipelines of many requests at once (``ConnectionPool/pipeline(_:timeout:)``).
///
/// It stays in pipeline mode. Each caller sends its statements and a Sync — its own implicit
/// transaction, so settings made with `set_config(…, true)` and errors stay within it — without
/// waiting for the pipelines before it; ``PostgresReactor`` reads the results in order and hands
/// each caller its own. Under load the server then finds several requests' pipelines per wake,
/// which halves its CPU per request on a two-core machine (measured with pgbench).
///
/// libpq is not thread-safe per connection: senders and the reactor take `lock` for every call.
///
/// A pipeline ends at its own Sync result, never by counting libpq's NULLs (see
/// ``LibPQConnection/readAvailable(_:shared:)``), so an error in one pipeline — mid-pipeline or at its
/// commit — stays in it. A protocol-level failure (lost connection, results that do not match
/// what was sent, a failed send) breaks the connection: every pipeline in flight on it gets a
/// connection error, none another's results, and the pool replaces it.
final class SharedConnection: @unchecked Sendable {
    private struct Waiting {
        let pending: PendingPipeline
        /// Resumes the caller: with `nil` once the results are in, else with the connection's failure.
        let resume: @Sendable (PostgresError?) -> Void
    }

    private struct State {
        var queue: [Waiting] = []
        /// When the queue last moved: became non-empty, or had a pipeline answered.
        var lastProgress = ContinuousClock.now
        var watching = false
        var broken = false
    }

    // Invariant: `connection` and `state` are touched only with `lock` held.
    private let connection: LibPQConnection
    private let lock = NSLock()
    private var state = State()

    private init(connection: LibPQConnection) {
        self.connection = connection
    }

    /// Opens a connection in pipeline mode (blocking: call it off the cooperative pool).
    static func open(_ configuration: PostgresConfiguration) throws -> SharedConnection {
        let connection = try LibPQConnection(configuration: configuration)
        try connection.enterPipelineMode()
        return SharedConnection(connection: connection)
    }

    /// Pipelines sent and not yet answered, and — when there are any — since when none has been
    /// answered. A connection that answers nothing for long is busy with a slow statement; one
    /// that answers steadily is merely loaded.
    var load: (inFlight: Int, stuckSince: ContinuousClock.Instant?) {
        lock.withLock { (state.queue.count, state.queue.isEmpty ? nil : state.lastProgress) }
    }

    /// Whether the connection can take pipelines: not failed, and — when nothing is in flight to
    /// say otherwise — not closed by the server while it sat idle.
    var isUsable: Bool {
        lock.withLock {
            if state.broken { return false }
            if !state.queue.isEmpty { return true }
            return connection.isHealthy
        }
    }

    /// Sends the statements and waits for their results, resumed on `home` when given.
    func pipeline(_ statements: [Statement], timeout: Duration?, home: (any EventLoop)?) async throws -> [QueryResult] {
        let pending: PendingPipeline = try await withCheckedThrowingContinuation { continuation in
            @Sendable func resume(_ outcome: Result<PendingPipeline, Error>) {
                PostgresReactor.resume(continuation, with: outcome, on: home)
            }
            lock.lock()
            guard !state.broken else {
                lock.unlock()
                var error = PostgresError(.connectionLost, "the database connection was lost")
                error.unsent = true  // nothing of this pipeline was sent
                resume(.failure(error))
                return
            }
            let pending: PendingPipeline
            do {
                pending = try connection.sendPipeline(statements, timeout: timeout, shared: true)
            } catch {
                // A failed send leaves the pipeline's framing unknown: nothing more goes on this connection.
                let failed = breakLocked()
                lock.unlock()
                failed.forEach { $0.resume(PostgresError(.connectionLost, "the database connection was lost")) }
                resume(.failure(error))
                return
            }
            if state.queue.isEmpty { state.lastProgress = .now }
            state.queue.append(Waiting(pending: pending) { failure in resume(failure.map { .failure($0) } ?? .success(pending)) })
            let startWatching = !state.watching
            state.watching = true
            lock.unlock()
            if startWatching {
                do {
                    try PostgresReactor.shared.watch(connection.socket) { [self] failure in readable(failure) }
                } catch {
                    lock.lock()
                    let failed = breakLocked()
                    lock.unlock()
                    let failure = error as? PostgresError ?? PostgresError(.connectionLost, "\(error)")
                    failed.forEach { $0.resume(failure) }
                }
            }
        }
        return try pending.finish()
    }

    /// On the reactor thread: hands out every pipeline whose results are complete. Returns
    /// `true` when nothing is left to wait for.
    private func readable(_ failure: PostgresError?) -> Bool {
        var done: [Waiting] = []
        var failed: [Waiting] = []
        var problem = failure
        lock.lock()
        if problem == nil {
            do {
                try connection.consumeInput(failing: nil)
                while let head = state.queue.first, try connection.readAvailable(head.pending, shared: true) {
                    done.append(state.queue.removeFirst())
                }
                if !done.isEmpty { state.lastProgress = .now }
            } catch {
                problem = error as? PostgresError ?? PostgresError(.connectionLost, "\(error)")
            }
        }
        if problem != nil { failed = breakLocked() }
        let finished = state.queue.isEmpty
        if finished { state.watching = false }
        lock.unlock()
        done.forEach { $0.resume(nil) }
        if let problem { failed.forEach { $0.resume(problem) } }
        return finished
    }

    /// Marks the connection unusable and takes every waiting pipeline out of the queue.
    private func breakLocked() -> [Waiting] {
        state.broken = true
        let waiting = state.queue
        state.queue.removeAll()
        waiting.forEach { $0.pending.discard() }
        return waiting
    }
}
