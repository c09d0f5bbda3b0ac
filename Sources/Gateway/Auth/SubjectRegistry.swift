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
/// Subjects are per tenant: `auth.users` is keyed by (tenant_id, id), so the same uuid named by
/// two tenants' JWTs is two data subjects, and nothing here depends on (or reveals) whether an
/// id exists in another tenant. Runs as the gateway login role (SELECT, INSERT, UPDATE
/// (last_seen_at)).
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

    /// A data subject: its tenant and its id there.
    private struct Key: Hashable, Sendable {
        let tenant: UUID
        let subject: UUID
    }

    private let pool: ConnectionPool
    private let options: Options
    private let known: Mutex<BoundedCache<Key, ContinuousClock.Instant>>
    private let visits = Atomic<Int>(0)

    /// `pool` logs in as the gateway role.
    public init(pool: ConnectionPool, options: Options = Options()) {
        self.pool = pool
        self.options = options
        self.known = Mutex(BoundedCache(capacity: options.capacity))
    }

    /// Makes sure `subject` is registered under `tenant`.
    public func register(_ subject: UUID, tenant: UUID) async throws {
        let key = Key(tenant: tenant, subject: subject)
        if let checkedAt = known.withLock({ $0.value(for: key) }), ContinuousClock.now - checkedAt < options.touchInterval {
            return
        }
        visits.add(1, ordering: .relaxed)
        let interval =
            Double(options.touchInterval.components.seconds)
            + Double(options.touchInterval.components.attoseconds) / 1e18
        // One round trip, one implicit transaction. The INSERT writes nothing when the subject is
        // already registered in this tenant — also when a concurrent first sighting (another
        // request or process) inserted it a moment ago: ON CONFLICT waits for that insert and
        // then does nothing. The UPDATE writes only when last_seen_at is stale; the SELECT (a
        // fresh snapshot, after both) confirms the row is there.
        let results = try await pool.pipeline([
            Statement(
                """
                INSERT INTO auth.users (tenant_id, id, last_seen_at) VALUES ($1, $2, now())
                ON CONFLICT (tenant_id, id) DO NOTHING
                """, [tenant, subject]),
            Statement(
                """
                UPDATE auth.users SET last_seen_at = now()
                WHERE tenant_id = $1 AND id = $2
                  AND (last_seen_at IS NULL OR last_seen_at < now() - make_interval(secs => $3::double precision))
                """, [tenant, subject, interval]),
            Statement("SELECT 1 AS registered FROM auth.users WHERE tenant_id = $1 AND id = $2", [tenant, subject]),
        ])
        // Deleted between the statements (erasure racing a request): nothing to remember.
        guard results[2].first != nil else { return }
        // Counted from when the check finished: a slow round trip must not eat the interval.
        known.withLock { $0.insert(ContinuousClock.now, for: key) }
    }

    /// Forgets a subject of `tenant`, e.g. after erasing it, so its next request checks the
    /// database again.
    public func forget(_ subject: UUID, tenant: UUID) {
        known.withLock { $0.removeValue(for: Key(tenant: tenant, subject: subject)) }
    }

    /// How many times ``register(_:tenant:)`` went to the database (for tests and metrics).
    public var databaseVisits: Int { visits.load(ordering: .relaxed) }
}
