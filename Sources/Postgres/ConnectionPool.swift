import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A connection checked out of a ``ConnectionPool``.
///
/// Its libpq connection lives on a dedicated serial queue: blocking libpq calls run there, never on
/// Swift's cooperative thread pool. Work is handed over in whole units (``run(_:)``), so a request
/// that sends one pipeline costs one thread hop and one round trip.
public final class PooledConnection: @unchecked Sendable {
    // Invariant: `connection` is only touched on `queue`.
    private let connection: Connection
    private let queue: DispatchQueue

    private struct Checkout {
        /// Units of work since this checkout began.
        var runs = 0
        /// The first unit of work checks the connection before using it (see ``checkout()``).
        var checkPending = false
    }
    private let checkoutState = Mutex(Checkout())

    private init(connection: Connection, queue: DispatchQueue) {
        self.connection = connection
        self.queue = queue
    }

    static func open(_ configuration: PostgresConfiguration, label: String) async throws -> PooledConnection {
        let queue = DispatchQueue(label: label)
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do {
                    let connection = try Connection(configuration: configuration)
                    continuation.resume(returning: PooledConnection(connection: connection, queue: queue))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Starts a checkout. The connection is checked — alive, and no transaction left open by its
    /// previous user — at the start of the first unit of work, on its own thread, rather than in
    /// a hop of its own: a request then costs one thread hop and one round trip.
    func checkout() {
        checkoutState.withLock { $0 = Checkout(runs: 0, checkPending: true) }
    }

    /// Counts a unit of work; returns whether it must check the connection first.
    private func beginUnit() -> Bool {
        checkoutState.withLock { state -> Bool in
            state.runs += 1
            defer { state.checkPending = false }
            return state.checkPending
        }
    }

    /// Runs blocking libpq work on this connection's own thread.
    public func run<T: Sendable>(_ work: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await run(check: beginUnit(), work)
    }

    private func run<T: Sendable>(check: Bool, _ work: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    if check { try self.connection.prepareForNewUser() }
                    return try work(self.connection)
                })
            }
        }
    }

    /// Runs one parameterised statement.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> QueryResult {
        try await pipeline([Statement(sql, parameters)])[0]
    }

    /// Sends the statements as one pipeline; see ``Connection/pipeline(_:timeout:)``.
    ///
    /// Sent from the calling thread and read by ``PostgresReactor``. Pipelines with large
    /// parameters, and a first unit that finds a transaction to roll back, take the connection's
    /// own thread instead, where a slow send or the extra round trip may block.
    public func pipeline(_ statements: [Statement], timeout: Duration? = nil) async throws -> [QueryResult] {
        guard !statements.isEmpty else { return [] }
        let check = beginUnit()
        if check {
            guard connection.isHealthy else {
                throw PostgresError(.connectionLost, "the database closed this connection while it was idle")
            }
        }
        guard !(check && connection.inTransaction), Self.isSmall(statements) else {
            return try await run(check: check) { try $0.pipeline(statements, timeout: timeout) }
        }
        let pending = try connection.sendPipeline(statements, timeout: timeout)
        let home = PostgresReactor.homeLoop()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            @Sendable func finish(_ outcome: Result<Void, Error>) { PostgresReactor.resume(continuation, with: outcome, on: home) }
            do {
                try PostgresReactor.shared.watch(connection.socket) { [self] failure in
                    if let failure {
                        finish(.failure(failure))
                        return true
                    }
                    do {
                        guard try connection.readPipeline(pending) else { return false }
                        finish(.success(()))
                    } catch {
                        finish(.failure(error))
                    }
                    return true
                }
            } catch {
                continuation.resume(throwing: error)
            }
        }
        return try connection.finishPipeline(pending)
    }

    /// Whether a pipeline's parameters are small enough to be sent without ever filling the
    /// socket's buffer (a full buffer would block the sending thread).
    static func isSmall(_ statements: [Statement]) -> Bool {
        var bytes = 0
        for statement in statements {
            bytes += statement.sql.utf8.count
            for bind in statement.binds { bytes += bind.byteCount }
            if bytes > 32 * 1024 { return false }
        }
        return true
    }

    var runsSinceCheckout: Int { checkoutState.withLock { $0.runs } }
}

/// A bounded pool of libpq connections.
///
/// Checkout waits (without blocking a thread) when all connections are in use, up to
/// `acquireTimeout`. Connections the server dropped — a restart, say — are noticed by the first
/// unit of work of a checkout, before it sends anything; that unit is then retried once on a
/// fresh connection (and the other idle ones are dropped), so a server restart is invisible to
/// callers once the server is back.
public final class ConnectionPool: Sendable {
    public struct Options: Sendable {
        public var maxConnections: Int
        public var acquireTimeout: Duration
        /// How many of the connections ``ConnectionPool/pipeline(_:timeout:)`` may share among
        /// concurrent callers (0: it checks one out like any other work).
        ///
        /// Off by default: under load, a pipeline's error can leave libpq's pipeline state such
        /// that the next pipeline on the shared connection reads a NULL where its first result
        /// is due, and every pipeline queued on that connection fails (seen once in CI, in
        /// "each pipeline on a shared connection is its own transaction"). Until that is
        /// understood, nothing shares connections unless asked to.
        public var sharedConnections: Int
        public init(maxConnections: Int = 10, acquireTimeout: Duration = .seconds(10), sharedConnections: Int = 0) {
            self.maxConnections = max(1, maxConnections)
            self.acquireTimeout = acquireTimeout
            self.sharedConnections = max(0, min(sharedConnections, self.maxConnections))
        }
    }

    /// A snapshot of the pool, for metrics and `/ready`.
    public struct Statistics: Sendable, Equatable {
        public var open: Int
        public var idle: Int
        public var waiting: Int
        /// Connections carrying ``ConnectionPool/pipeline(_:timeout:)``'s shared pipelines.
        public var shared: Int = 0
        /// Connections checked out right now (shared ones not counted).
        public var inUse: Int { open - idle - shared }
    }

    private enum Grant {
        case connection(PooledConnection)
        case openNew
    }

    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Grant, Error>
    }

    private struct State {
        var idle: [PooledConnection] = []
        /// Connections in ``ConnectionPool/pipeline(_:timeout:)``'s use; counted in `open`.
        var shared: [SharedConnection] = []
        var sharedOpening = 0
        var open = 0
        var waiters: [Waiter] = []
        var nextID = 0
        var closed = false
    }

    public let configuration: PostgresConfiguration
    public let options: Options
    private let logger: Logger
    private let state = Mutex(State())

    public init(configuration: PostgresConfiguration, options: Options = Options(), logger: Logger = Logger(label: "postgres")) {
        self.configuration = configuration
        self.options = options
        self.logger = logger
    }

    public var statistics: Statistics {
        state.withLock { Statistics(open: $0.open, idle: $0.idle.count, waiting: $0.waiters.count, shared: $0.shared.count) }
    }

    /// Checks out a connection for the duration of `body`.
    public func withConnection<T>(_ body: (PooledConnection) async throws -> T) async throws -> T {
        var retried = false
        while true {
            let connection = try await acquire()
            do {
                let value = try await body(connection)
                await release(connection)
                return value
            } catch let error as PostgresError where error.isConnectionFailure && !retried && connection.runsSinceCheckout <= 1 {
                // The connection died before this unit of work could have done anything:
                // the server restarted or dropped it. Retry once on a fresh connection.
                logger.warning("database connection lost; reconnecting", metadata: ["error": "\(error.message)"])
                discard(connection)
                dropIdle()
                retried = true
            } catch {
                await release(connection)
                throw error
            }
        }
    }

    /// Runs one pipeline — one implicit transaction, one round trip — on a connection it may
    /// share with other callers' pipelines in flight (see ``SharedConnection``). For statements
    /// that need nothing from the session beyond their own transaction, like a REST request's
    /// settings and query. Large pipelines, and a pool without shared connections, check a
    /// connection out instead.
    public func pipeline(_ statements: [Statement], timeout: Duration? = nil) async throws -> [QueryResult] {
        guard !statements.isEmpty else { return [] }
        guard options.sharedConnections > 0, PooledConnection.isSmall(statements) else {
            return try await withConnection { try await $0.pipeline(statements, timeout: timeout) }
        }
        var retried = false
        while true {
            guard let connection = try await sharedConnection() else {
                return try await withConnection { try await $0.pipeline(statements, timeout: timeout) }
            }
            do {
                return try await connection.pipeline(statements, timeout: timeout, home: PostgresReactor.homeLoop())
            } catch let error as PostgresError where error.sqlState == "26000" && !retried {
                // A statement another caller's pipeline was preparing failed or was skipped with
                // that pipeline; this one's transaction did nothing. Send it again, prepared afresh.
                retried = true
            } catch let error as PostgresError where error.isConnectionFailure {
                retire(connection)
                // As for a checked-out connection's first unit of work: the server dropped the
                // connection (a restart, say); retry once on a fresh one.
                guard !retried else { throw error }
                logger.warning("database connection lost; reconnecting", metadata: ["error": "\(error.message)"])
                retried = true
            }
        }
    }

    /// How long a shared connection may answer nothing before others stop queueing behind it.
    static let stall: Duration = .milliseconds(20)

    /// The shared connection with the fewest pipelines in flight, opening another while all are
    /// busy and the bound allows; `nil` when none is free of a slow statement and no slot is free
    /// (then the caller checks a connection out).
    private func sharedConnection() async throws -> SharedConnection? {
        while true {
            enum Choice { case use(SharedConnection), open, wait, none, closed }
            let now = ContinuousClock.now
            var dropped: PooledConnection?
            defer { _ = dropped }  // closed outside the lock
            let choice: Choice = state.withLock { state in
                if state.closed { return .closed }
                // A connection that has answered nothing for `stall` is busy with a slow statement:
                // pipelines sent behind it would wait for it too.
                var best: (connection: SharedConnection, inFlight: Int)?
                for connection in state.shared {
                    let load = connection.load
                    if let since = load.stuckSince, now - since > Self.stall { continue }
                    if best == nil || load.inFlight < best!.inFlight { best = (connection, load.inFlight) }
                }
                let wanted = state.shared.count + state.sharedOpening < options.sharedConnections && (best == nil || best!.inFlight > 0)
                if wanted, state.open < options.maxConnections || !state.idle.isEmpty {
                    // With the pool full, an idle checked-out-style connection gives up its slot.
                    if state.open < options.maxConnections { state.open += 1 } else { dropped = state.idle.removeFirst() }
                    state.sharedOpening += 1
                    return .open
                }
                if let best { return .use(best.connection) }
                // One is being opened: wait for it rather than take a slot of its own.
                return state.sharedOpening > 0 ? .wait : .none
            }
            switch choice {
            case .closed:
                throw PostgresError(.poolClosed, "the connection pool is closed")
            case .none:
                return nil
            case .wait:
                try await Task.sleep(for: .milliseconds(1))
            case .use(let connection):
                if connection.isUsable { return connection }
                retire(connection)
            case .open:
                let configuration = self.configuration
                do {
                    let connection = try await withCheckedThrowingContinuation { continuation in
                        DispatchQueue.global().async { continuation.resume(with: Result { try SharedConnection.open(configuration) }) }
                    }
                    let kept = state.withLock { state -> Bool in
                        state.sharedOpening -= 1
                        if state.closed { return false }
                        state.shared.append(connection)
                        return true
                    }
                    if !kept { freeSlot() }
                    return connection
                } catch {
                    state.withLock { $0.sharedOpening -= 1 }
                    freeSlot()
                    throw error
                }
            }
        }
    }

    /// Drops a shared connection that failed or that the server closed, and frees its slot.
    private func retire(_ connection: SharedConnection) {
        let removed = state.withLock { state -> Bool in
            guard let index = state.shared.firstIndex(where: { $0 === connection }) else { return false }
            state.shared.remove(at: index)
            return true
        }
        if removed { freeSlot() }
    }

    /// Runs one parameterised statement on any connection.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> QueryResult {
        try await withConnection { try await $0.query(sql, parameters) }
    }

    /// Runs `body` in a transaction on one connection; errors roll back.
    public func transaction<T: Sendable>(
        isolation: IsolationLevel = .readCommitted, _ body: @escaping @Sendable (Connection) throws -> T
    ) async throws -> T {
        try await withConnection { connection in
            try await connection.run { try $0.transaction(isolation: isolation, body) }
        }
    }

    /// `SELECT 1` on a pooled connection: is the database reachable now?
    public func ping() async throws {
        try await query("SELECT 1")
    }

    /// Closes idle connections and refuses new checkouts; in-use connections close on release.
    public func close() {
        let (idle, waiters) = state.withLock { state -> ([PooledConnection], [Waiter]) in
            state.closed = true
            let idle = state.idle
            let waiters = state.waiters
            state.open -= idle.count + state.shared.count
            state.shared.removeAll()
            state.idle.removeAll()
            state.waiters.removeAll()
            return (idle, waiters)
        }
        _ = idle  // released here: deinit calls PQfinish
        for waiter in waiters { waiter.continuation.resume(throwing: PostgresError(.poolClosed, "the connection pool is closed")) }
    }

    // MARK: - Checkout

    private enum Decision {
        case use(PooledConnection)
        case open
        case wait
        case closed
    }

    private func acquire() async throws -> PooledConnection {
        while true {
            let decision: Decision = state.withLock { state in
                if state.closed { return .closed }
                if let connection = state.idle.popLast() { return .use(connection) }
                if state.open < options.maxConnections {
                    state.open += 1
                    return .open
                }
                return .wait
            }
            switch decision {
            case .closed:
                throw PostgresError(.poolClosed, "the connection pool is closed")
            case .use(let connection):
                connection.checkout()
                return connection
            case .open:
                let connection = try await openConnection()
                connection.checkout()
                return connection
            case .wait:
                let connection: PooledConnection
                switch try await waitForGrant() {
                case .connection(let granted): connection = granted
                case .openNew: connection = try await openConnection()
                }
                connection.checkout()
                return connection
            }
        }
    }

    /// Opens a connection for a slot already counted in `open`.
    private func openConnection() async throws -> PooledConnection {
        do {
            let number = state.withLock { state -> Int in
                state.nextID += 1
                return state.nextID
            }
            return try await PooledConnection.open(configuration, label: "postgres.connection.\(number)")
        } catch {
            freeSlot()
            throw error
        }
    }

    private func waitForGrant() async throws -> Grant {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        let timeout = options.acquireTimeout
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.expire(waiter: id)
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            let immediate: Grant? = state.withLock { state in
                // Re-check: a connection may have been released between deciding to wait and now.
                if let connection = state.idle.popLast() { return .connection(connection) }
                if state.open < options.maxConnections {
                    state.open += 1
                    return .openNew
                }
                state.waiters.append(Waiter(id: id, continuation: continuation))
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    private func expire(waiter id: Int) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: PostgresError(
            .poolTimeout, "no database connection became free within \(options.acquireTimeout) (pool size \(options.maxConnections))"))
    }

    // MARK: - Return

    /// Returns a connection. It is checked by its next user's first unit of work, not here.
    private func release(_ connection: PooledConnection) async {
        let waiter = state.withLock { state -> Waiter? in
            if state.closed {
                state.open -= 1
                return nil
            }
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.idle.append(connection)
            return nil
        }
        waiter?.continuation.resume(returning: .connection(connection))
    }

    private func discard(_ connection: PooledConnection) {
        _ = connection
        freeSlot()
    }

    /// Gives a slot back; a waiter, if any, gets the right to open a new connection in it.
    private func freeSlot() {
        let waiter = state.withLock { state -> Waiter? in
            if !state.closed, !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .openNew)
    }

    /// After a server restart every idle connection is dead too; drop them rather than find out one by one.
    private func dropIdle() {
        let dropped = state.withLock { state -> [PooledConnection] in
            let idle = state.idle
            state.idle.removeAll()
            state.open -= idle.count
            return idle
        }
        _ = dropped
    }
}

