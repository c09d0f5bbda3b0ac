import Foundation
import Postgres

/// Where a KEK rotation (`keyring.kek_rotations`, migration 0027) stands. Progress is read from
/// the keyring itself, so it is right after a crash too: a subject key is done when its KEK
/// version was created after the rotation started; a tenant is done when every live KEK version
/// of it was.
public struct KEKRotationStatus: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable {
        /// A process holds the rotation's lock and is rewrapping.
        case running
        /// Unfinished and nobody runs it (the process stopped or was killed): start it again to resume.
        case interrupted
        case finished
    }

    public var id: UUID
    /// The one tenant rotated; nil: every tenant.
    public var tenantID: UUID?
    public var state: State
    public var startedAt: Date
    public var startedBy: String
    public var finishedAt: Date?
    public var tenantsTotal: Int
    public var tenantsDone: Int
    /// Subject keys (DEKs) in scope, and those already under a KEK made by this rotation.
    public var rowsTotal: Int
    public var rowsDone: Int
    /// Why the last run stopped, when it failed (no key material).
    public var lastError: String?

    enum CodingKeys: String, CodingKey {
        case id, state
        case tenantID = "tenant_id"
        case startedAt = "started_at"
        case startedBy = "started_by"
        case finishedAt = "finished_at"
        case tenantsTotal = "tenants_total"
        case tenantsDone = "tenants_done"
        case rowsTotal = "rows_total"
        case rowsDone = "rows_done"
        case lastError = "last_error"
    }

    /// Ids in lower case, as everywhere else; absent values as null (a client sees every field).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.uuidString.lowercased(), forKey: .id)
        try container.encode(tenantID?.uuidString.lowercased(), forKey: .tenantID)
        try container.encode(state, forKey: .state)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(startedBy, forKey: .startedBy)
        try container.encode(finishedAt, forKey: .finishedAt)
        try container.encode(tenantsTotal, forKey: .tenantsTotal)
        try container.encode(tenantsDone, forKey: .tenantsDone)
        try container.encode(rowsTotal, forKey: .rowsTotal)
        try container.encode(rowsDone, forKey: .rowsDone)
        try container.encode(lastError, forKey: .lastError)
    }
}

extension Keyring {
    /// The session advisory lock (two-key form, shown in `pg_locks` as classid 27, objid 1) the
    /// process running a KEK rotation holds; released when its connection ends, even by a kill.
    static let rotationLock = (27, 1)

    /// Starts a KEK rotation of `tenant` (nil: every tenant), or returns the unfinished one of the
    /// same scope (`resumed`); an unfinished one of another scope is a conflict (resume it first).
    public static func beginKEKRotation(tenant: UUID?, by actor: String, pool: ConnectionPool) async throws -> (
        KEKRotationStatus, resumed: Bool
    ) {
        let resumed: Bool = try await database {
            try await pool.transaction { connection in
                if let tenant, try connection.query("SELECT 1 FROM public.tenants WHERE id = $1", [tenant]).first == nil {
                    throw KeyringError(.keyMissing, "tenant \(tenant.lowercasedString) does not exist")
                }
                // The unique index allows one unfinished rotation; this lock orders two concurrent starts.
                try connection.query("SELECT pg_advisory_xact_lock($1, 0)", [rotationLock.0])
                if let open = try connection.query("SELECT tenant_id FROM keyring.kek_rotations WHERE finished_at IS NULL").first {
                    let scope: UUID? = try open.decodeIfPresent("tenant_id")
                    guard scope == tenant else {
                        throw KeyringError(
                            .rotationConflict,
                            "an unfinished KEK rotation of \(scope.map { "tenant " + $0.lowercasedString } ?? "every tenant") must finish first (start it again to resume it)"
                        )
                    }
                    return true
                }
                try connection.query(
                    "INSERT INTO keyring.kek_rotations (tenant_id, started_by) VALUES ($1, $2)", [tenant, String(actor.prefix(200))])
                return false
            }
        }
        guard let status = try await kekRotationStatus(pool: pool) else {
            throw KeyringError(.keyMissing, "the KEK rotation just started is gone")
        }
        return (status, resumed)
    }

    /// The latest KEK rotation, or nil when none was ever started.
    public static func kekRotationStatus(pool: ConnectionPool) async throws -> KEKRotationStatus? {
        try await database {
            guard
                let row = try await pool.query(
                    """
                    SELECT r.id, r.tenant_id, r.started_at, r.started_by, r.finished_at, r.last_error,
                           EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE l.locktype = 'advisory' AND l.granted
                                   AND l.classid = $1::int::oid AND l.objid = $2::int::oid AND l.objsubid = 2) AS running,
                           (SELECT count(*)::int FROM public.tenants t WHERE r.tenant_id IS NULL OR t.id = r.tenant_id) AS tenants_total,
                           (SELECT count(*)::int FROM public.tenants t
                            WHERE (r.tenant_id IS NULL OR t.id = r.tenant_id)
                              AND EXISTS (SELECT 1 FROM keyring.tenant_keys k WHERE k.tenant_id = t.id AND k.retired_at IS NULL)
                              AND NOT EXISTS (SELECT 1 FROM keyring.tenant_keys k
                                              WHERE k.tenant_id = t.id AND k.retired_at IS NULL AND k.created_at < r.started_at)
                           ) AS tenants_done,
                           (SELECT count(*)::int FROM keyring.subject_keys s
                            WHERE s.destroyed_at IS NULL AND (r.tenant_id IS NULL OR s.tenant_id = r.tenant_id)) AS rows_total,
                           (SELECT count(*)::int FROM keyring.subject_keys s
                            JOIN keyring.tenant_keys k ON k.tenant_id = s.tenant_id AND k.version = s.kek_version
                            WHERE s.destroyed_at IS NULL AND (r.tenant_id IS NULL OR s.tenant_id = r.tenant_id)
                              AND k.created_at >= r.started_at) AS rows_done
                    FROM keyring.kek_rotations r ORDER BY r.started_at DESC, r.finished_at IS NULL DESC LIMIT 1
                    """, [rotationLock.0, rotationLock.1]
                ).first
            else { return nil }
            let finishedAt: Date? = try row.decodeIfPresent("finished_at")
            let running: Bool = try row.decode("running")
            return KEKRotationStatus(
                id: try row.decode("id"), tenantID: try row.decodeIfPresent("tenant_id"),
                state: finishedAt != nil ? .finished : running ? .running : .interrupted,
                startedAt: try row.decode("started_at"), startedBy: try row.decode("started_by"), finishedAt: finishedAt,
                tenantsTotal: try row.decode("tenants_total"), tenantsDone: try row.decode("tenants_done"),
                rowsTotal: try row.decode("rows_total"), rowsDone: try row.decode("rows_done"),
                lastError: try row.decodeIfPresent("last_error"))
        }
    }

    /// Runs the unfinished KEK rotation to its end: every tenant in scope not yet done is rotated
    /// (``rotateTenantKey(_:pool:batchSize:progress:)``, which itself resumes a tenant whose
    /// rewrap was cut short), `rotated` is called after each, and the rotation is marked
    /// finished. Killed at any point, a new call resumes it without rotating a done tenant again.
    /// Throws ``KeyringError/Code/rotationConflict`` when another process is running it. Returns
    /// the final status (nil: there was nothing to run).
    @discardableResult
    public func runKEKRotation(
        pool: ConnectionPool, batchSize: Int = 500,
        progress: @Sendable (RotationProgress) -> Void = { _ in },
        rotated: (RotationReport) async throws -> Void = { _ in }
    ) async throws -> KEKRotationStatus? {
        try await pool.withConnection { holder in
            let locked = try await Self.database {
                try await holder.run { connection in
                    try connection.query("SELECT pg_try_advisory_lock($1, $2) AS locked", [Self.rotationLock.0, Self.rotationLock.1])
                        .first!.decode("locked", as: Bool.self)
                }
            }
            guard locked else { throw KeyringError(.rotationConflict, "another process is running the KEK rotation") }
            do {
                let status = try await runLocked(pool: pool, batchSize: batchSize, progress: progress, rotated: rotated)
                _ = try? await holder.run { try $0.query("SELECT pg_advisory_unlock($1, $2)", [Self.rotationLock.0, Self.rotationLock.1]) }
                return status
            } catch {
                _ = try? await holder.run { try $0.query("SELECT pg_advisory_unlock($1, $2)", [Self.rotationLock.0, Self.rotationLock.1]) }
                throw error
            }
        }
    }

    private func runLocked(
        pool: ConnectionPool, batchSize: Int, progress: @Sendable (RotationProgress) -> Void,
        rotated: (RotationReport) async throws -> Void
    ) async throws -> KEKRotationStatus? {
        guard
            let open = try await Self.database({
                try await pool.query("SELECT id, tenant_id, started_at FROM keyring.kek_rotations WHERE finished_at IS NULL").first
            })
        else { return try await Self.kekRotationStatus(pool: pool) }
        let id: UUID = try open.decode("id")
        // Tenants not done yet, in a stable order; ones created meanwhile got a fresh KEK (done).
        let pending: [UUID] = try await Self.database {
            try await pool.query(
                """
                SELECT t.id FROM public.tenants t, keyring.kek_rotations r
                WHERE r.id = $1 AND (r.tenant_id IS NULL OR t.id = r.tenant_id)
                  AND NOT (EXISTS (SELECT 1 FROM keyring.tenant_keys k WHERE k.tenant_id = t.id AND k.retired_at IS NULL)
                           AND NOT EXISTS (SELECT 1 FROM keyring.tenant_keys k
                                           WHERE k.tenant_id = t.id AND k.retired_at IS NULL AND k.created_at < r.started_at))
                ORDER BY t.created_at, t.id
                """, [id]
            ).rows.map { try $0.decode("id") }
        }
        for tenant in pending {
            do {
                let report = try await rotateTenantKey(tenant, pool: pool, batchSize: batchSize, progress: progress)
                try await rotated(report)
            } catch {
                let reason = (error as? KeyringError)?.message ?? "the rotation of tenant \(tenant.lowercasedString) failed"
                _ = try? await pool.query(
                    "UPDATE keyring.kek_rotations SET last_error = $2 WHERE id = $1", [id, String(reason.prefix(1000))])
                throw error
            }
        }
        try await Self.database {
            _ = try await pool.query("UPDATE keyring.kek_rotations SET finished_at = now(), last_error = NULL WHERE id = $1", [id])
        }
        return try await Self.kekRotationStatus(pool: pool)
    }
}
