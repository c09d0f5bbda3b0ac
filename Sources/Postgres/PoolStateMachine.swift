/// The connection pool's decisions, as a value: every event — a request for a connection, a
/// connection given back (clean or in doubt), a failed open, a waiter's timeout or cancellation,
/// a failed health check, close — changes the state and returns the actions the shell
/// (``ConnectionPool``) must run: hand a connection to a request, let a request open one in a
/// slot counted for it, fail a request, close connections. It does no I/O, takes no locks and
/// reads no clock (the time is an argument), so it is tested alone with a fake clock
/// (`PoolStateMachineTests`). After postgres-nio's `PoolStateMachine`, much reduced.
///
/// Invariants: `open` counts every slot — idle, leased, being opened, and shared (see
/// ``takeSlotForShared()``) — and never exceeds `maxConnections`; a request waits only while no
/// connection is idle and no slot is free; waiters are served first come, first served.
struct PoolStateMachine<Connection: AnyObject> {
    typealias RequestID = Int

    enum Failure: Equatable, Sendable {
        case timeout, cancelled, closed
    }

    enum Action {
        /// Give this idle connection to the request.
        case lease(Connection, RequestID)
        /// The request opens a connection itself, in a slot already counted for it.
        case open(RequestID)
        /// The request waits; the shell calls ``timeout(_:now:)`` at the deadline.
        case wait(RequestID, deadline: Duration)
        case fail(RequestID, Failure)
        /// Close these connections; their slots are already given back.
        case close([Connection])
    }

    private struct Waiter {
        let id: RequestID
        let deadline: Duration
    }

    let maxConnections: Int
    let acquireTimeout: Duration
    private(set) var idle: [Connection] = []
    private(set) var open = 0
    private var waiters: [Waiter] = []
    private(set) var isClosed = false

    init(maxConnections: Int, acquireTimeout: Duration) {
        self.maxConnections = max(1, maxConnections)
        self.acquireTimeout = acquireTimeout
    }

    var waiting: Int { waiters.count }

    /// A request for a connection at time `now`.
    mutating func acquire(_ id: RequestID, now: Duration) -> [Action] {
        if isClosed { return [.fail(id, .closed)] }
        if let connection = idle.popLast() { return [.lease(connection, id)] }
        if open < maxConnections {
            open += 1
            return [.open(id)]
        }
        let deadline = now + acquireTimeout
        waiters.append(Waiter(id: id, deadline: deadline))
        return [.wait(id, deadline: deadline)]
    }

    /// A leased connection comes back. `reusable`: its protocol state is certainly clean;
    /// otherwise it is closed and its slot goes to the next waiter.
    mutating func release(_ connection: Connection, reusable: Bool) -> [Action] {
        guard reusable, !isClosed else { return discard(connection) }
        if !waiters.isEmpty { return [.lease(connection, waiters.removeFirst().id)] }
        idle.append(connection)
        return []
    }

    /// A leased connection is closed (found dead by a health check, or in doubt).
    mutating func discard(_ connection: Connection) -> [Action] {
        [.close([connection])] + slotFreed()
    }

    /// Opening a connection for a request failed: the slot counted for it is given back.
    mutating func openFailed() -> [Action] {
        slotFreed()
    }

    /// After a server restart every idle connection is dead too: close them all at once.
    mutating func dropIdle() -> [Action] {
        let dropped = idle
        idle.removeAll()
        var actions: [Action] = dropped.isEmpty ? [] : [.close(dropped)]
        for _ in dropped { actions += slotFreed() }
        return actions
    }

    /// The shell's timer for request `id` fired at `now`: fail it if it still waits and its
    /// deadline has come.
    mutating func timeout(_ id: RequestID, now: Duration) -> [Action] {
        guard let index = waiters.firstIndex(where: { $0.id == id }), waiters[index].deadline <= now else { return [] }
        waiters.remove(at: index)
        return [.fail(id, .timeout)]
    }

    /// The request's task was cancelled: it leaves the queue at once.
    mutating func cancel(_ id: RequestID) -> [Action] {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return [] }
        waiters.remove(at: index)
        return [.fail(id, .cancelled)]
    }

    /// Refuses new requests, fails the waiting ones and closes idle connections; leased ones
    /// are closed when they come back. `shared` slots (see ``takeSlotForShared()``) are given up.
    mutating func close(sharedSlots shared: Int = 0) -> [Action] {
        isClosed = true
        var actions: [Action] = waiters.map { .fail($0.id, .closed) }
        waiters.removeAll()
        if !idle.isEmpty { actions.append(.close(idle)) }
        open -= idle.count + shared
        idle.removeAll()
        return actions
    }

    enum SharedSlot {
        case free
        /// The slot of this idle connection, which the shell closes.
        case fromIdle(Connection)
    }

    /// A slot for a shared connection: a free one, else an idle connection's. `nil` when every
    /// slot is leased or shared, or the pool is closed.
    mutating func takeSlotForShared() -> SharedSlot? {
        if isClosed { return nil }
        if open < maxConnections {
            open += 1
            return .free
        }
        guard !idle.isEmpty else { return nil }
        return .fromIdle(idle.removeFirst())
    }

    /// A shared connection's slot is given back (it failed, or could not be opened).
    mutating func returnSlot() -> [Action] {
        slotFreed()
    }

    /// One slot less in use: the next waiter may open a connection in it.
    private mutating func slotFreed() -> [Action] {
        if !isClosed, !waiters.isEmpty { return [.open(waiters.removeFirst().id)] }
        open -= 1
        return []
    }
}
