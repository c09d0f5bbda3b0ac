import Foundation
import Postgres
import Synchronization

/// Registers each tenant's data subjects in `auth.users` the first time a JWT names them
/// (DESIGN.md §3: the gateway is not a login server).
///
/// Remembered in memory, so a known subject costs no database work: the database is visited on
/// first sight, and afterwards at most once per ``Options/touchInterval`` to move `last_seen_at`
/// on. The update itself only writes when the stored `last_seen_at` is older than the interval, so
/// several gateway processes together still write at most about once per interval per subject.
///
/// `auth.users.id` is a global primary key: a subject registered under one tenant is refused
/// (403) in every other. Runs as the gateway login role (SELECT, INSERT, UPDATE (last_seen_at)).
public final class SubjectRegistry: Sendable {
    public struct Options: Sendable {
        /// How often a known subject's `last_seen_at` is moved on (and its row re-checked).
        public var touchInterval: Duration
        /// How many subjects are remembered; the least recently seen are forgotten first.
        public var capacity: Int

        public init(touchInterval: Duration = .seconds(300), capacity: Int = 100_000) {
            self.touchInterval = touchInterval
            self.capacity = capacity
        }
    }

    private struct Entry: Sendable {
        let tenant: UUID
        let checkedAt: ContinuousClock.Instant
    }

    private let pool: ConnectionPool
    private let options: Options
    private let known: Mutex<BoundedCache<UUID, Entry>>
    private let visits = Atomic<Int>(0)

    /// `pool` logs in as the gateway role.
    public init(pool: ConnectionPool, options: Options = Options()) {
        self.pool = pool
        self.options = options
        self.known = Mutex(BoundedCache(capacity: options.capacity))
    }

    /// Makes sure `subject` is registered under `tenant`; throws 403 when it belongs to another.
    public func register(_ subject: UUID, tenant: UUID) async throws {
        let now = ContinuousClock.now
        if let entry = known.withLock({ $0.value(for: subject) }) {
            guard entry.tenant == tenant else { throw GatewayError.foreignSubject }
            if now - entry.checkedAt < options.touchInterval { return }
        }
        visits.add(1, ordering: .relaxed)
        let interval = Double(options.touchInterval.components.seconds)
            + Double(options.touchInterval.components.attoseconds) / 1e18
        // One round trip, one implicit transaction. The INSERT writes nothing on conflict — with no
        // conflict target, because a concurrent first insert of the same subject can surface on
        // the (tenant_id, id) unique index rather than the primary key, and that too means
        // "already registered". The UPDATE writes only when last_seen_at is stale; the SELECT (a
        // fresh snapshot, after both) says whose subject it is — also when another process
        // registered it a moment ago.
        let results = try await pool.pipeline([
            Statement(
                """
                INSERT INTO auth.users (id, tenant_id, last_seen_at) VALUES ($1, $2, now())
                ON CONFLICT DO NOTHING
                """, [subject, tenant]),
            Statement(
                """
                UPDATE auth.users SET last_seen_at = now()
                WHERE id = $1 AND tenant_id = $2
                  AND (last_seen_at IS NULL OR last_seen_at < now() - make_interval(secs => $3::double precision))
                """, [subject, tenant, interval]),
            Statement("SELECT tenant_id FROM auth.users WHERE id = $1", [subject]),
        ])
        // Deleted between the statements (erasure racing a request): nothing to remember.
        guard let owner: UUID = try results[2].first?.decode("tenant_id") else { return }
        // Counted from when the check finished: a slow round trip must not eat the interval.
        known.withLock { $0.insert(Entry(tenant: owner, checkedAt: ContinuousClock.now), for: subject) }
        guard owner == tenant else { throw GatewayError.foreignSubject }
    }

    /// Forgets a subject, e.g. after erasing it, so its next request checks the database again.
    public func forget(_ subject: UUID) {
        known.withLock { $0.removeValue(for: subject) }
    }

    /// How many times ``register(_:tenant:)`` went to the database (for tests and metrics).
    public var databaseVisits: Int { visits.load(ordering: .relaxed) }
}
