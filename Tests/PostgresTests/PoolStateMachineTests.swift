import Testing

@testable import Postgres

/// The pool's decisions alone: no server, no threads, a fake clock (durations since an epoch).
@Suite("Pool state machine")
struct PoolStateMachineTests {
    private final class Fake: CustomStringConvertible {
        let number: Int
        init(_ number: Int) { self.number = number }
        var description: String { "connection \(number)" }
    }

    private typealias Machine = PoolStateMachine<Fake>

    /// The actions, spelled out for comparison.
    private func describe(_ actions: [Machine.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .lease(let connection, let id): "lease \(connection.number) to \(id)"
            case .open(let id): "open for \(id)"
            case .wait(let id, let deadline): "wait \(id) until \(deadline)"
            case .fail(let id, let failure): "fail \(id): \(failure)"
            case .close(let connections): "close \(connections.map(\.number))"
            }
        }
    }

    private func machine(max: Int = 2) -> Machine {
        Machine(maxConnections: max, acquireTimeout: .seconds(10))
    }

    @Test("a request waits only when the bound is reached and nothing is idle")
    func boundAndWait() {
        var pool = machine()
        #expect(describe(pool.acquire(1, now: .zero)) == ["open for 1"])
        #expect(describe(pool.acquire(2, now: .zero)) == ["open for 2"])
        #expect(describe(pool.acquire(3, now: .seconds(1))) == ["wait 3 until 11.0 seconds"])
        #expect(pool.open == 2)
        #expect(pool.waiting == 1)
    }

    @Test("a waiter times out at its deadline, not before, and a late timer does nothing")
    func timeout() {
        var pool = machine(max: 1)
        _ = pool.acquire(1, now: .zero)
        _ = pool.acquire(2, now: .seconds(1))
        #expect(describe(pool.timeout(2, now: .milliseconds(10_999))).isEmpty)
        #expect(describe(pool.timeout(2, now: .seconds(11))) == ["fail 2: timeout"])
        #expect(pool.waiting == 0)
        #expect(describe(pool.timeout(2, now: .seconds(12))).isEmpty)
    }

    @Test("a cancelled waiter leaves the queue at once; the next release goes to the one behind it")
    func cancellation() {
        var pool = machine(max: 1)
        let first = Fake(1)
        _ = pool.acquire(1, now: .zero)
        _ = pool.acquire(2, now: .zero)
        _ = pool.acquire(3, now: .zero)
        #expect(describe(pool.cancel(2)) == ["fail 2: cancelled"])
        #expect(describe(pool.cancel(2)).isEmpty)
        #expect(describe(pool.release(first, reusable: true)) == ["lease 1 to 3"])
        #expect(pool.waiting == 0)
    }

    @Test("released connections go to the longest waiter first, else become idle and are reused")
    func fifoAndReuse() {
        var pool = machine(max: 1)
        let first = Fake(1)
        _ = pool.acquire(1, now: .zero)
        _ = pool.acquire(2, now: .zero)
        _ = pool.acquire(3, now: .zero)
        #expect(describe(pool.release(first, reusable: true)) == ["lease 1 to 2"])
        #expect(describe(pool.release(first, reusable: true)) == ["lease 1 to 3"])
        #expect(describe(pool.release(first, reusable: true)).isEmpty)
        #expect(describe(pool.acquire(4, now: .zero)) == ["lease 1 to 4"])
        #expect(pool.open == 1)
    }

    @Test("a connection in doubt is closed, and its slot lets the next waiter open a fresh one")
    func inDoubt() {
        var pool = machine(max: 1)
        let first = Fake(1)
        _ = pool.acquire(1, now: .zero)
        _ = pool.acquire(2, now: .zero)
        #expect(describe(pool.release(first, reusable: false)) == ["close [1]", "open for 2"])
        #expect(pool.open == 1)
        #expect(describe(pool.release(Fake(2), reusable: false)) == ["close [2]"])
        #expect(pool.open == 0)
    }

    @Test("a failed open gives its slot to the next waiter, or back to the pool")
    func openFailed() {
        var pool = machine(max: 1)
        _ = pool.acquire(1, now: .zero)
        _ = pool.acquire(2, now: .zero)
        #expect(describe(pool.openFailed()) == ["open for 2"])
        #expect(describe(pool.openFailed()).isEmpty)
        #expect(pool.open == 0)
    }

    @Test("a failed health check closes the connection and every idle one, freeing their slots")
    func healthCheck() {
        var pool = machine(max: 3)
        let (a, b, c) = (Fake(1), Fake(2), Fake(3))
        for id in 1...3 { _ = pool.acquire(id, now: .zero) }
        _ = pool.release(b, reusable: true)
        _ = pool.release(c, reusable: true)
        #expect(describe(pool.discard(a)) == ["close [1]"])
        #expect(describe(pool.dropIdle()) == ["close [2, 3]"])
        #expect(pool.open == 0)
        #expect(pool.idle.isEmpty)
    }

    @Test("close fails every waiter, closes idle connections, and closes leased ones when they return")
    func close() {
        var pool = machine(max: 2)
        let (a, b) = (Fake(1), Fake(2))
        _ = pool.acquire(1, now: .zero)
        _ = pool.acquire(2, now: .zero)
        _ = pool.release(a, reusable: true)
        _ = pool.acquire(3, now: .zero)  // gets a
        _ = pool.acquire(4, now: .zero)
        #expect(describe(pool.close()) == ["fail 4: closed"])
        #expect(describe(pool.release(b, reusable: true)) == ["close [2]"])
        #expect(describe(pool.release(a, reusable: true)) == ["close [1]"])
        #expect(pool.open == 0)
        #expect(describe(pool.acquire(5, now: .zero)) == ["fail 5: closed"])
    }

    @Test("a shared connection takes a free slot, else an idle connection's, else none")
    func sharedSlots() {
        var pool = machine(max: 2)
        let a = Fake(1)
        guard case .free = pool.takeSlotForShared() else { Issue.record("no free slot"); return }
        _ = pool.acquire(1, now: .zero)
        _ = pool.release(a, reusable: true)
        guard case .fromIdle(let idle) = pool.takeSlotForShared() else { Issue.record("no idle slot"); return }
        #expect(idle === a)
        #expect(pool.takeSlotForShared() == nil)
        #expect(pool.open == 2)
        _ = pool.acquire(2, now: .zero)
        #expect(describe(pool.returnSlot()) == ["open for 2"])
        #expect(describe(pool.close(sharedSlots: 1)).isEmpty)
        #expect(pool.open == 1)  // the leased one, closed when it comes back
    }
}
