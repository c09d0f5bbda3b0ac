import Dispatch
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Synchronization
import Tracing

/// A connection checked out of a ``ConnectionPool``: the lease its holder borrows for the
/// duration of ``ConnectionPool/withConnection(_:)``'s body, and the only way to use it.
///
/// `~Copyable`, lent only as a `borrowing` parameter, and without a public initialiser: the
/// compiler refuses to let it outlive the body — it cannot be returned, stored, copied, or
/// captured by an escaping closure or another task — so the connection has one holder at a time
/// and is used by nobody once it is back in the pool. What the compiler cannot see (code inside
/// this module, two units started at once from one body) is checked when each unit begins: a
/// lease from an ended checkout, or a second unit while one is in flight, is refused with
/// ``PostgresError/Code/notOwner`` before anything touches libpq (THREADING.md).
///
/// Blocking libpq work (``run(_:)``) runs on the connection's own serial queue, never on Swift's
/// cooperative thread pool; a small ``pipeline(_:timeout:)`` is sent from the caller's thread and
/// read by ``PostgresReactor``.
public struct PooledConnection: ~Copyable, Sendable {
    let entry: PoolEntry
    /// The checkout this lease belongs to (``PoolEntry/checkout()``).
    let lease: UInt64

    init(entry: PoolEntry, lease: UInt64) {
        self.entry = entry
        self.lease = lease
    }

    /// Runs blocking libpq work on this connection's own thread. The ``Connection`` is lent to
    /// `work` for its duration only.
    public func run<T: Sendable>(_ work: @escaping @Sendable (borrowing Connection) throws -> T) async throws -> T {
        let check = try entry.beginUnit(lease)
        defer { entry.endUnit() }
        return try await entry.run(check: check, work)
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
        let check = try entry.beginUnit(lease)
        defer { entry.endUnit() }
        return try await ConnectionPool.traced(statements) { try await entry.pipeline(statements, timeout: timeout, check: check) }
    }
}

/// The pool's side of a checked-out connection: the libpq connection, its serial queue, and who
/// holds it now. Internal: callers only ever see it through a ``PooledConnection`` lease.
final class PoolEntry: @unchecked Sendable {
    // Invariant: `connection` is touched by one thread at a time — the thread running the
    // holder's current unit (its own, `queue`, or the reactor thread), units never overlapping
    // (``beginUnit(_:)``) and each handed over through a continuation.
    private let connection: LibPQConnection
    private let queue: DispatchQueue

    private struct Checkout {
        /// The current checkout's number; 0 while the connection is in the pool. Never reused.
        var lease: UInt64 = 0
        var lastLease: UInt64 = 0
        /// Whether a unit of work is running now.
        var busy = false
        /// Units of work since this checkout began.
        var runs = 0
        /// The first unit of work checks the connection before using it (see ``checkout()``).
        var checkPending = false
    }
    private let checkoutState = Mutex(Checkout())

    private init(connection: LibPQConnection, queue: DispatchQueue) {
        self.connection = connection
        self.queue = queue
    }

    static func open(_ configuration: PostgresConfiguration, label: String) async throws -> PoolEntry {
        let queue = DispatchQueue(label: label)
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do {
                    let connection = try LibPQConnection(configuration: configuration)
                    continuation.resume(returning: PoolEntry(connection: connection, queue: queue))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Starts a checkout and returns its lease number. The connection is checked — alive (a
    /// zero-timeout `poll`, see ``LibPQConnection/isHealthy``), and no transaction left open by
    /// its previous user (rolled back on the connection's queue) — by the first unit of work
    /// rather than in a hop of its own: a request then costs one round trip.
    func checkout() -> UInt64 {
        checkoutState.withLock { state in
            state.lastLease += 1
            state = Checkout(lease: state.lastLease, lastLease: state.lastLease, busy: false, runs: 0, checkPending: true)
            return state.lease
        }
    }

    /// Ends the checkout: every lease of it is refused from now on. Returns whether a unit was
    /// still running (then the connection must not be reused).
    func endCheckout() -> Bool {
        checkoutState.withLock { state in
            state.lease = 0
            return state.busy
        }
    }

    /// Begins a unit of work for `lease`; returns whether it must check the connection first.
    /// Refuses a lease whose checkout has ended, and a second unit while one is running: either
    /// would put a second thread on the libpq connection.
    func beginUnit(_ lease: UInt64) throws -> Bool {
        try checkoutState.withLock { state -> Bool in
            guard lease != 0, state.lease == lease else {
                throw PostgresError(
                    .notOwner, "this connection was given back to the pool; a lease cannot be used after its checkout ended")
            }
            guard !state.busy else {
                throw PostgresError(.notOwner, "another unit of work is in flight on this connection; await it before starting the next")
            }
            state.busy = true
            state.runs += 1
            defer { state.checkPending = false }
            return state.checkPending
        }
    }

    func endUnit() {
        checkoutState.withLock { $0.busy = false }
    }

    /// Runs blocking libpq work on this connection's own thread, lending it a ``Connection``.
    func run<T: Sendable>(check: Bool, _ work: @escaping @Sendable (borrowing Connection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: self.runHere(check: check, work))
            }
        }
    }

    /// The body of ``run(check:_:)`` on the connection's queue. Not inlined, and no `Result { }`
    /// closure around the lent ``Connection``: Swift 6.3.1's release inliner (EarlyPerfInliner)
    /// crashes inlining that closure into its specialisation.
    @inline(never)
    private func runHere<T>(check: Bool, _ work: (borrowing Connection) throws -> T) -> Result<T, Error> {
        do {
            if check { try connection.prepareForNewUser() }
            let lent = Connection(connection)
            return .success(try work(lent))
        } catch {
            return .failure(error)
        }
    }

    /// See ``PooledConnection/pipeline(_:timeout:)``.
    func pipeline(_ statements: [Statement], timeout: Duration?, check: Bool) async throws -> [QueryResult] {
        if check {
            guard connection.isHealthy else { throw PostgresError.closedWhileIdle }
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

    /// Whether the connection may serve another checkout (see ``LibPQConnection/isReusable``).
    /// Read by the pool once its holder's checkout has ended (``endCheckout()``).
    var isReusable: Bool { connection.isReusable }
}

/// A bounded pool of libpq connections.
///
/// Checkout waits (without blocking a thread) when all connections are in use, up to
/// `acquireTimeout`; a waiting task that is cancelled leaves the queue at once.
///
/// Never one caller's results for another: a connection goes back to the pool only when its
/// protocol state is certainly clean (``LibPQConnection/isReusable``: no protocol error, out of
/// pipeline mode, no command in progress); any other is closed.
///
/// Retries: only an error that certainly came before the caller's work reached the server is
/// retried, once, on a fresh connection — a connection found closed (the server restarted or
/// dropped it) when its checkout's first unit of work checks it, or a shared connection found
/// broken before anything was sent on it. Those are ``PostgresError/unsent``. Nothing else is
/// retried: a connection lost after sending may have committed the unit (a duplicate write or
/// audit batch), and a server error is the caller's to handle. A server restart is still
/// invisible to callers once the server is back: idle connections are checked before use.
public final class ConnectionPool: Sendable {
    public struct Options: Sendable {
        public var maxConnections: Int
        public var acquireTimeout: Duration
        /// How many of the connections ``ConnectionPool/pipeline(_:timeout:)`` may share among
        /// concurrent callers (0: it checks one out like any other work).
        ///
        /// By default a quarter of the pool, at most 2, and none in a pool of fewer than 4 (a
        /// shared connection keeps its slot, and small pools serve checkouts). It was off until
        /// the cause of a rare failure was found: a pipeline whose commit failed at its Sync
        /// gives libpq one more result, and libpq drops a NULL when a pipeline is appended while
        /// another is aborted; the reader counted NULLs, so the pipeline behind read a NULL or
        /// the failed one's Sync. Pipelines now end at their own Sync (THREADING.md).
        public var sharedConnections: Int
        /// The per-tenant cap that ``ConnectionPool/withConnection(tenant:_:)``,
        /// ``ConnectionPool/pipeline(tenant:_:timeout:)`` and ``ConnectionPool/transaction(tenant:isolation:_:)``
        /// hold a slot of around their database work; nil: no cap. The pools of one process may
        /// share one limiter, so the cap is the tenant's in the whole process.
        public var tenantLimiter: TenantLimiter?
        public init(
            maxConnections: Int = 10, acquireTimeout: Duration = .seconds(10), sharedConnections: Int? = nil,
            tenantLimiter: TenantLimiter? = nil
        ) {
            self.maxConnections = max(1, maxConnections)
            self.acquireTimeout = acquireTimeout
            self.tenantLimiter = tenantLimiter
            let shared = sharedConnections ?? min(2, self.maxConnections / 4)
            self.sharedConnections = max(0, min(shared, self.maxConnections))
        }
    }

    /// A snapshot of the pool, for metrics and `/ready`.
    public struct Statistics: Sendable, Equatable {
        public var open: Int
        public var idle: Int
        public var waiting: Int
        /// Connections carrying ``ConnectionPool/pipeline(_:timeout:)``'s shared pipelines.
        public var shared: Int = 0
        /// Shared connections that have answered nothing for longer than ``ConnectionPool/stall``
        /// (a slow statement): new pipelines are no longer sent behind them.
        public var stalled: Int = 0
        /// Connections checked out right now (shared ones not counted).
        public var inUse: Int { open - idle - shared }
    }

    private enum Grant {
        case connection(PoolEntry)
        case openNew
    }

    private typealias Machine = PoolStateMachine<PoolEntry>

    private struct State {
        /// Every decision about checkouts and slots (see ``PoolStateMachine``); this shell runs its actions.
        var machine: Machine
        /// The requests waiting for the machine's answer.
        var requests: [Int: CheckedContinuation<Grant, Error>] = [:]
        /// Connections in ``ConnectionPool/pipeline(_:timeout:)``'s use; their slots are counted by the machine.
        var shared: [SharedConnection] = []
        var sharedOpening = 0
        /// Callers waiting for the shared connection being opened.
        var sharedWaiters: [CheckedContinuation<Void, Never>] = []
        /// The timers that fail waiting requests at their deadline.
        var timers: [Int: Task<Void, Never>] = [:]
        var nextID = 0
        var closed: Bool { machine.isClosed }
    }

    public let configuration: PostgresConfiguration
    public let options: Options
    private let logger: Logger
    private let state: Mutex<State>
    /// The machine's clock starts here (it takes durations, so tests can fake them).
    private let epoch = ContinuousClock.now

    public init(configuration: PostgresConfiguration, options: Options = Options(), logger: Logger = Logger(label: "postgres")) {
        self.configuration = configuration
        self.options = options
        self.logger = logger
        self.state = Mutex(State(machine: Machine(maxConnections: options.maxConnections, acquireTimeout: options.acquireTimeout)))
    }

    public var statistics: Statistics {
        state.withLock {
            let now = ContinuousClock.now
            return Statistics(
                open: $0.machine.open, idle: $0.machine.idle.count, waiting: $0.machine.waiting, shared: $0.shared.count,
                stalled: $0.shared.count { connection in connection.load.stuckSince.map { now - $0 > Self.stall } ?? false })
        }
    }

    /// Checks out a connection for the duration of `body`, which borrows it (``PooledConnection``):
    /// the lease cannot outlive `body`. For work that belongs to no tenant (start-up, schema
    /// reads, the cross-tenant queues); a tenant's work goes through ``withConnection(tenant:_:)``.
    public func withConnection<T>(_ body: (borrowing PooledConnection) async throws -> T) async throws -> T {
        var retried = false
        while true {
            let connection = try await acquire()
            do {
                let value = try await body(PooledConnection(entry: connection, lease: connection.checkout()))
                await release(connection)
                return value
            } catch let error as PostgresError where error.unsent && !retried {
                // The connection was found dead before this unit of work was sent: the server
                // restarted or dropped it. Retry once on a fresh connection.
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
        guard options.sharedConnections > 0, PoolEntry.isSmall(statements) else {
            return try await withConnection { try await $0.pipeline(statements, timeout: timeout) }
        }
        var retried = false
        while true {
            guard let connection = try await sharedConnection() else {
                return try await withConnection { try await $0.pipeline(statements, timeout: timeout) }
            }
            do {
                let home = PostgresReactor.homeLoop()
                return try await Self.traced(statements) { try await connection.pipeline(statements, timeout: timeout, home: home) }
            } catch let error as PostgresError where error.isConnectionFailure || !connection.isUsable {
                retire(connection)
                // As for a checked-out connection's first unit of work: retried only when nothing
                // of this pipeline was sent (the connection had already failed).
                guard error.unsent, !retried else { throw error }
                logger.warning("database connection lost; reconnecting", metadata: ["error": "\(error.message)"])
                retried = true
            }
        }
    }

    /// One pipeline as a client span (`db.pipeline`): the system and the number of statements,
    /// never their text or parameters. A no-op tracer (the default) records nothing.
    static func traced(_ statements: [Statement], _ body: () async throws -> [QueryResult]) async throws -> [QueryResult] {
        try await withSpan("db.pipeline", ofKind: .client) { span in
            span.attributes["db.system"] = "postgresql"
            span.attributes["db.statement_count"] = statements.count
            return try await body()
        }
    }

    /// How long a shared connection may answer nothing before others stop queueing behind it.
    static let stall: Duration = .milliseconds(20)

    /// The shared connection with the fewest pipelines in flight, opening another while all are
    /// busy and the bound allows; `nil` when none is free of a slow statement and no slot is free
    /// (then the caller checks a connection out) — unless every slot is a shared connection's, when
    /// a checkout could never be served: then the least loaded one, slow statement or not.
    private func sharedConnection() async throws -> SharedConnection? {
        while true {
            enum Choice { case use(SharedConnection), open, wait, none, closed }
            let now = ContinuousClock.now
            var dropped: PoolEntry?
            defer { _ = dropped }  // closed outside the lock
            let choice: Choice = state.withLock { state in
                if state.closed { return .closed }
                // A connection that has answered nothing for `stall` is busy with a slow statement:
                // pipelines sent behind it would wait for it too.
                var best: (connection: SharedConnection, inFlight: Int)?
                var least: (connection: SharedConnection, inFlight: Int)?
                for connection in state.shared {
                    let load = connection.load
                    if least == nil || load.inFlight < least!.inFlight { least = (connection, load.inFlight) }
                    if let since = load.stuckSince, now - since > Self.stall { continue }
                    if best == nil || load.inFlight < best!.inFlight { best = (connection, load.inFlight) }
                }
                let wanted = state.shared.count + state.sharedOpening < options.sharedConnections && (best == nil || best!.inFlight > 0)
                // With the pool full, an idle checked-out-style connection gives up its slot.
                if wanted, let slot = state.machine.takeSlotForShared() {
                    if case .fromIdle(let idle) = slot { dropped = idle }
                    state.sharedOpening += 1
                    return .open
                }
                if let best { return .use(best.connection) }
                // One is being opened: wait for it rather than take a slot of its own.
                if state.sharedOpening > 0 { return .wait }
                // Every slot carries a shared connection: a checkout would wait for a slot that none
                // gives back (until its acquire timeout). Queue behind the slow statement instead.
                if let least, state.shared.count >= options.maxConnections { return .use(least.connection) }
                return .none
            }
            switch choice {
            case .closed:
                throw PostgresError(.poolClosed, "the connection pool is closed")
            case .none:
                return nil
            case .wait:
                // Woken when the connection being opened is ready or failed (no polling).
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let now = state.withLock { state -> Bool in
                        if state.sharedOpening == 0 { return true }
                        state.sharedWaiters.append(continuation)
                        return false
                    }
                    if now { continuation.resume() }
                }
            case .use(let connection):
                if connection.isUsable { return connection }
                retire(connection)
            case .open:
                let configuration = self.configuration
                do {
                    let connection = try await withCheckedThrowingContinuation { continuation in
                        DispatchQueue.global().async { continuation.resume(with: Result { try SharedConnection.open(configuration) }) }
                    }
                    let (kept, waiters) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                        state.sharedOpening -= 1
                        defer { state.sharedWaiters.removeAll() }
                        if state.closed { return (false, state.sharedWaiters) }
                        state.shared.append(connection)
                        return (true, state.sharedWaiters)
                    }
                    waiters.forEach { $0.resume() }
                    if !kept { freeSlot() }
                    return connection
                } catch {
                    let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                        state.sharedOpening -= 1
                        defer { state.sharedWaiters.removeAll() }
                        return state.sharedWaiters
                    }
                    waiters.forEach { $0.resume() }
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

    /// Runs `body` in a transaction on one connection; errors roll back. For work that belongs to
    /// no tenant; a tenant's goes through ``transaction(tenant:isolation:_:)``.
    public func transaction<T: Sendable>(
        isolation: IsolationLevel = .readCommitted, _ body: @escaping @Sendable (borrowing Connection) throws -> T
    ) async throws -> T {
        try await withConnection { connection in
            try await connection.run { try $0.transaction(isolation: isolation, body) }
        }
    }

    // MARK: - A tenant's work

    /// ``withConnection(_:)`` as `tenant`'s database work: it holds one of the tenant's slots
    /// (``Options/tenantLimiter``) from before the checkout until the connection is back, so one
    /// tenant cannot hold the whole pool. Past the tenant's queue it throws at once a
    /// ``PostgresError/Code/tenantBusy`` error (nothing was sent); cancelled while waiting, a
    /// `CancellationError`. `tenant` nil: work that belongs to no tenant, as ``withConnection(_:)``.
    public func withConnection<T>(tenant: UUID?, _ body: (borrowing PooledConnection) async throws -> T) async throws -> T {
        try await asTenant(tenant) { try await withConnection(body) }
    }

    /// ``pipeline(_:timeout:)`` as `tenant`'s database work (see ``withConnection(tenant:_:)``).
    public func pipeline(tenant: UUID?, _ statements: [Statement], timeout: Duration? = nil) async throws -> [QueryResult] {
        try await asTenant(tenant) { try await pipeline(statements, timeout: timeout) }
    }

    /// ``transaction(isolation:_:)`` as `tenant`'s database work (see ``withConnection(tenant:_:)``).
    public func transaction<T: Sendable>(
        tenant: UUID?, isolation: IsolationLevel = .readCommitted, _ body: @escaping @Sendable (borrowing Connection) throws -> T
    ) async throws -> T {
        try await asTenant(tenant) { try await transaction(isolation: isolation, body) }
    }

    /// The per-tenant cap of ``withConnection(tenant:_:)`` and its kin; nil: none.
    public var tenantLimiter: TenantLimiter? { options.tenantLimiter }

    private func asTenant<T>(_ tenant: UUID?, _ work: () async throws -> T) async throws -> T {
        guard let tenant, let limiter = options.tenantLimiter else { return try await work() }
        do {
            try await limiter.acquire(tenant)
        } catch let saturated as TenantLimiter.Saturated {
            throw PostgresError.tenantBusy(saturated)
        }
        defer { limiter.release(tenant) }
        return try await work()
    }

    /// `SELECT 1` on a pooled connection: is the database reachable now?
    public func ping() async throws {
        try await query("SELECT 1")
    }

    /// Closes idle connections and refuses new checkouts; in-use connections close on release.
    public func close() {
        let (actions, requests) = state.withLock { state -> ([Machine.Action], [Int: CheckedContinuation<Grant, Error>]) in
            let actions = state.machine.close(sharedSlots: state.shared.count)
            state.shared.removeAll()
            return (actions, Self.take(actions, from: &state))
        }
        run(actions, requests)
    }

    // MARK: - Checkout

    private var now: Duration { ContinuousClock.now - epoch }

    /// Runs the machine's actions, outside the lock. `requests`: the continuations the actions
    /// may resume, taken out of the state under the lock.
    private func run(_ actions: [Machine.Action], _ requests: [Int: CheckedContinuation<Grant, Error>]) {
        for action in actions {
            switch action {
            case .lease(let connection, let id): requests[id]?.resume(returning: .connection(connection))
            case .open(let id): requests[id]?.resume(returning: .openNew)
            case .fail(let id, let failure): requests[id]?.resume(throwing: error(failure))
            case .close(let connections): _ = connections  // released here: deinit calls PQfinish
            case .wait: break
            }
        }
    }

    /// Applies `event` to the machine and runs the actions it returns. The continuations of the
    /// requests those actions answer leave the state in the same critical section.
    private func apply(_ event: @Sendable (inout Machine) -> [Machine.Action]) {
        let (actions, requests) = state.withLock { state -> ([Machine.Action], [Int: CheckedContinuation<Grant, Error>]) in
            let actions = event(&state.machine)
            return (actions, Self.take(actions, from: &state))
        }
        run(actions, requests)
    }

    private static func take(_ actions: [Machine.Action], from state: inout State) -> [Int: CheckedContinuation<Grant, Error>] {
        var taken: [Int: CheckedContinuation<Grant, Error>] = [:]
        for action in actions {
            switch action {
            case .lease(_, let id), .open(let id), .fail(let id, _): taken[id] = state.requests.removeValue(forKey: id)
            case .wait, .close: break
            }
        }
        return taken
    }

    private func error(_ failure: Machine.Failure) -> Error {
        switch failure {
        case .timeout:
            PostgresError(
                .poolTimeout, "no database connection became free within \(options.acquireTimeout) (pool size \(options.maxConnections))")
        case .cancelled: CancellationError()
        case .closed: PostgresError(.poolClosed, "the connection pool is closed")
        }
    }

    private func acquire() async throws -> PoolEntry {
        let connection: PoolEntry
        let asked = ContinuousClock.now
        defer { PostgresMetrics.poolWait.record(duration: ContinuousClock.now - asked) }
        switch try await request() {
        case .connection(let granted): connection = granted
        case .openNew: connection = try await openConnection()
        }
        return connection
    }

    /// Asks the machine for a connection; waits, without polling, while it says so. A waiter is
    /// failed by a timer at its deadline, and at once when its task is cancelled.
    private func request() async throws -> Grant {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        defer { state.withLock { $0.timers.removeValue(forKey: id) }?.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let (actions, requests) = state.withLock { state -> ([Machine.Action], [Int: CheckedContinuation<Grant, Error>]) in
                    // Cancelled before it could wait: the cancellation handler found nothing to remove.
                    if Task.isCancelled { return ([.fail(id, .cancelled)], [id: continuation]) }
                    state.requests[id] = continuation
                    let actions = state.machine.acquire(id, now: now)
                    return (actions, Self.take(actions, from: &state))
                }
                for case .wait(_, let deadline) in actions {
                    let instant = epoch + deadline
                    let timer = Task { [weak self] in
                        guard (try? await Task.sleep(until: instant, clock: .continuous)) != nil, let self else { return }
                        self.apply { $0.timeout(id, now: self.now) }
                    }
                    state.withLock { $0.timers[id] = timer }
                }
                run(actions, requests)
            }
        } onCancel: {
            apply { $0.cancel(id) }
        }
    }

    /// Opens a connection for a slot already counted by the machine.
    private func openConnection() async throws -> PoolEntry {
        do {
            let number = state.withLock { state -> Int in
                state.nextID += 1
                return state.nextID
            }
            return try await PoolEntry.open(configuration, label: "postgres.connection.\(number)")
        } catch {
            apply { $0.openFailed() }
            throw error
        }
    }

    // MARK: - Return

    /// Returns a connection, or closes it when its protocol state is in doubt. Whether the server
    /// closed it since is checked by its next user's first unit of work, not here.
    private func release(_ connection: PoolEntry) async {
        // The lease is void from here on; a unit still running (impossible through a borrowed
        // lease, see PooledConnection) leaves the connection in doubt, so it is closed.
        let unitRunning = connection.endCheckout()
        let reusable = !unitRunning && connection.isReusable
        if !reusable { logger.debug("database connection closed after a protocol error") }
        apply { $0.release(connection, reusable: reusable) }
    }

    private func discard(_ connection: PoolEntry) {
        _ = connection.endCheckout()
        apply { $0.discard(connection) }
    }

    /// Gives a shared connection's slot back; a waiter, if any, gets the right to open a new connection in it.
    private func freeSlot() {
        apply { $0.returnSlot() }
    }

    /// After a server restart every idle connection is dead too; drop them rather than find out one by one.
    private func dropIdle() {
        apply { $0.dropIdle() }
    }
}
