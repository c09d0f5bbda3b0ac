import Foundation
import Logging
import Postgres
import ServiceLifecycle

/// Keeps this process's authentication caches in step with the other gateway processes and with
/// `privacyctl`: polls `public.cache_invalidations` (migration 0016; rows appended by trigger when
/// a tenant's JWT keys or a service key change) every ``interval`` for rows past the last one seen,
/// and drops what they name (``RequestAuthenticator/invalidateTenant(_:)``, and the tenant's cached
/// service keys). A change is so honoured everywhere within about one interval (250 ms by default)
/// plus a query, instead of the caches' TTLs (60 s for tenant keys).
///
/// Why a polled log and not LISTEN/NOTIFY: a notification sent while the listening connection is
/// down is lost, and catching up after a reconnect needs this same `seq >` query; the poll is one
/// index range scan (4 per second per process) on a table holding a day of administrative changes.
/// A failed poll is logged and retried; it never stops the gateway (the TTLs still bound staleness).
public struct CacheInvalidationService: Service {
    let pool: ConnectionPool
    let authenticator: RequestAuthenticator
    let interval: Duration
    let logger: Logger

    public init(pool: ConnectionPool, authenticator: RequestAuthenticator, interval: Duration = .milliseconds(250), logger: Logger) {
        self.pool = pool
        self.authenticator = authenticator
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var last: Int64?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                last = try await poll(after: last)
            } catch {
                logger.warning("cache invalidation poll failed", metadata: ["error_type": "\(type(of: error))"])
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// One poll: with no position yet, starts from the newest row (this process's caches are empty
    /// or were filled after it); otherwise invalidates each tenant named after `last`. Returns the
    /// new position.
    @discardableResult
    public func poll(after last: Int64?) async throws -> Int64 {
        guard let last else {
            return try await pool.query("SELECT coalesce(max(seq), 0) AS seq FROM public.cache_invalidations").first!.decode("seq")
        }
        let rows = try await pool.query(
            "SELECT seq, tenant_id FROM public.cache_invalidations WHERE seq > $1 ORDER BY seq LIMIT 10000", [last]
        ).rows
        var position = last
        var tenants: Set<UUID> = []
        for row in rows {
            position = max(position, try row.decode("seq"))
            tenants.insert(try row.decode("tenant_id"))
        }
        for tenant in tenants {
            authenticator.invalidateTenant(tenant)
            authenticator.invalidateServiceKeys(of: tenant)
        }
        if !tenants.isEmpty {
            logger.debug("caches invalidated", metadata: ["tenants": "\(tenants.count)"])
        }
        return position
    }
}
