import CLibPQ
import Foundation
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One thread that waits, with epoll, on the sockets of every connection whose pipeline is in
/// flight, and reads the results as they arrive.
///
/// Why: a pipeline sent from a request's own thread and finished here costs no thread hop to
/// send, and under load one wake of this thread reads the answers of many connections. A
/// blocking libpq call on a thread per connection costs two wakes per round trip, which on a
/// two-core machine was a third of the gateway's CPU.
///
/// Callers register a socket with a handler; the handler runs on this thread each time the
/// socket is readable, until it says it is done. Registrations are one-shot (`EPOLLONESHOT`), so
/// a handler never runs twice at once and never after it finished.
final class PostgresReactor: @unchecked Sendable {
    /// Runs on the reactor thread when the socket is readable; returns `true` when it needs no
    /// more readiness, `false` to wait for the socket again. Given an error, the socket can no
    /// longer be watched: the handler must give up (its return value is ignored).
    typealias Handler = @Sendable (_ failure: PostgresError?) -> Bool

    static let shared = PostgresReactor()

    private let epoll: Int32
    private let handlers = Mutex<[Int32: Handler]>([:])

    /// The event loop to resume a caller on: the one it runs on, when there is one. Resumed from
    /// the reactor's thread it would continue on any loop and hop back to write its response.
    /// Only the singleton group's loops, which are never shut down, are trusted with it.
    static func homeLoop() -> (any EventLoop)? {
        MultiThreadedEventLoopGroup.currentEventLoop.flatMap { singletonLoops.contains(ObjectIdentifier($0)) ? $0 : nil }
    }

    /// Resumes a caller on `home` (see ``homeLoop()``) when there is one, else right here.
    static func resume<T: Sendable>(
        _ continuation: CheckedContinuation<T, Error>, with outcome: Result<T, Error>, on home: (any EventLoop)?
    ) {
        guard let home else { return continuation.resume(with: outcome) }
        home.execute { continuation.resume(with: outcome) }
    }

    private static let singletonLoops = Set(MultiThreadedEventLoopGroup.singleton.makeIterator().map { ObjectIdentifier($0) })

    private init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epoll >= 0, "epoll_create1 failed (errno \(errno))")
        let thread = Thread { [self] in run() }
        thread.name = "postgres-reactor"
        thread.start()
    }

    /// Calls `handler` on the reactor thread whenever `socket` is readable, until it returns `true`.
    /// Throws if the socket cannot be watched (then `handler` never runs).
    func watch(_ socket: Int32, _ handler: @escaping Handler) throws {
        handlers.withLock { $0[socket] = handler }
        guard arm(socket) else {
            let error = errno
            handlers.withLock { _ = $0.removeValue(forKey: socket) }
            throw PostgresError(.connectionLost, "cannot wait for the database connection's socket (errno \(error))")
        }
    }

    /// Enables the one-shot registration of `socket`, adding it on first use (or after its
    /// number was closed and reused: closing a descriptor drops it from the epoll set).
    private func arm(_ socket: Int32) -> Bool {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLONESHOT.rawValue
        event.data.fd = socket
        if epoll_ctl(epoll, EPOLL_CTL_MOD, socket, &event) == 0 { return true }
        guard errno == ENOENT else { return false }
        return epoll_ctl(epoll, EPOLL_CTL_ADD, socket, &event) == 0
    }

    private func run() {
        let capacity = 64
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        while true {
            let count = epoll_wait(epoll, events, Int32(capacity), -1)
            if count < 0 { continue }  // EINTR
            for index in 0..<Int(count) {
                let socket = events[index].data.fd
                guard let handler = handlers.withLock({ $0.removeValue(forKey: socket) }) else { continue }
                if handler(nil) { continue }
                handlers.withLock { $0[socket] = handler }
                if !arm(socket) {
                    let error = errno
                    handlers.withLock { _ = $0.removeValue(forKey: socket) }
                    _ = handler(PostgresError(.connectionLost, "cannot wait for the database connection's socket (errno \(error))"))
                }
            }
        }
    }
}
