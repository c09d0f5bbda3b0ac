import Foundation
import Postgres
import Sodium

/// All SQL of this module, in one place (DESIGN.md §2). Values are always bind parameters;
/// there are no identifiers to splice.
enum AuditSQL {
    /// `at`/`signed_at` as the canonical text that is hashed: RFC 3339, UTC, six fraction digits.
    static let canonicalTimeFormat = #"'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"#

    static let begin = Statement("BEGIN")
    static let commit = Statement("COMMIT")

    /// Creates the tenant's head at seq 0 on its first append; a no-op afterwards.
    static func ensureHead(_ tenant: UUID) -> Statement {
        Statement(
            "INSERT INTO public.audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (tenant_id) DO NOTHING",
            [tenant, AuditEntry.genesisHash])
    }

    /// Locks the tenant's head for the rest of the transaction and reads the database clock
    /// (one clock for all gateway processes, so `at` never depends on a host's time).
    /// The tree columns are read through `to_jsonb` so that the statement also runs on a database
    /// not yet migrated to 0019 (NULL there): `privacyctl tenant seal-secrets` appends entries
    /// before migration 0014 may run.
    static func lockHead(_ tenant: UUID) -> Statement {
        Statement(
            """
            SELECT seq, hash, (to_jsonb(h) ->> 'tree_size')::bigint AS tree_size,
                   decode(substr(to_jsonb(h) ->> 'frontier', 3), 'hex') AS frontier,
                   to_char(clock_timestamp() AT TIME ZONE 'UTC', \(canonicalTimeFormat)) AS now
            FROM public.audit_heads h WHERE tenant_id = $1 FOR UPDATE
            """,
            [tenant])
    }

    /// One statement for any batch size (arrays + unnest), so it is prepared once per connection.
    static func insert(_ entries: [AuditEntry]) -> Statement {
        func hex(_ bytes: [UInt8]) -> String? { "\\x" + Hex.encode(bytes) }
        return Statement(
            """
            INSERT INTO public.audit_events
                (tenant_id, seq, at, actor, action, target, outcome, request_id, ip, user_agent, details, prev_hash, hash)
            SELECT $1::uuid, u.* FROM unnest($2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
                                             $7::text[], $8::text[], $9::inet[], $10::text[], $11::jsonb[],
                                             $12::bytea[], $13::bytea[]) AS u
            """,
            [
                entries[0].tenantID,
                PostgresTextArray(entries.map { String($0.seq) }),
                PostgresTextArray(entries.map(\.at)),
                PostgresTextArray(entries.map(\.actor)),
                PostgresTextArray(entries.map(\.action)),
                PostgresTextArray(entries.map(\.target)),
                PostgresTextArray(entries.map(\.outcome)),
                PostgresTextArray(entries.map(\.requestID)),
                PostgresTextArray(entries.map(\.ip)),
                PostgresTextArray(entries.map(\.userAgent)),
                PostgresTextArray(entries.map { CanonicalJSON.string($0.details) }),
                PostgresTextArray(entries.map { hex($0.prevHash) }),
                PostgresTextArray(entries.map { hex($0.hash) }),
            ])
    }

    /// Moves the head to `entry` only: a database without the tree (before migration 0019).
    static func advanceHead(_ tenant: UUID, to entry: AuditEntry) -> Statement {
        Statement("UPDATE public.audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1", [tenant, entry.seq, entry.hash])
    }

    /// Moves the head to `entry` and the tree's right edge with it (the tree covers the chain).
    static func advanceHead(_ tenant: UUID, to entry: AuditEntry, tree: CompactRange) -> Statement {
        Statement(
            "UPDATE public.audit_heads SET seq = $2, hash = $3, tree_size = $4, frontier = $5 WHERE tenant_id = $1",
            [tenant, entry.seq, entry.hash, tree.size, tree.bytes])
    }

    /// Run as the session user (the gateway's login, which holds the audit grants) even when the
    /// caller's transaction has `SET LOCAL ROLE` to a request role; see 0008_audit.sql.
    static let assumeSessionUser = Statement(
        "SELECT set_config('privacy_audit.saved_role', current_user, true), set_config('role', 'none', true)")
    static let restoreRole = Statement(
        "SELECT set_config('role', current_setting('privacy_audit.saved_role'), true)")

    static let entryColumns = """
        tenant_id, seq, to_char(at AT TIME ZONE 'UTC', \(canonicalTimeFormat)) AS at, actor, action, target, outcome,
        request_id, host(ip) AS ip, user_agent, details::text AS details, prev_hash, hash
        """

    /// A page of a tenant's entries after `afterSeq`, in order.
    static func entries(_ tenant: UUID, after afterSeq: Int64, limit: Int) -> Statement {
        Statement(
            "SELECT \(entryColumns) FROM public.audit_events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            [tenant, afterSeq, limit])
    }

    /// A page of a tenant's entries after `afterSeq` up to `throughSeq`, in order (range verification).
    static func entries(_ tenant: UUID, after afterSeq: Int64, through throughSeq: Int64, limit: Int) -> Statement {
        Statement(
            "SELECT \(entryColumns) FROM public.audit_events WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
            [tenant, afterSeq, throughSeq, limit])
    }

    /// The first seq at or after `date`, for `export --since`.
    static func firstSeq(_ tenant: UUID, since date: Date) -> Statement {
        Statement("SELECT min(seq) AS seq FROM public.audit_events WHERE tenant_id = $1 AND at >= $2", [tenant, date])
    }

    /// The first seq of the entries stamped at or after `date` (no row when there are none), read
    /// through `audit_events_tenant_at_idx`: the earliest such `at`, the lowest seq among the
    /// entries stamped with it (one batch; an incremental sort). Entries are stamped under the
    /// head lock with the database clock, so `at` does not decrease along the chain and this is
    /// the period's edge. (`min(seq) … WHERE at = (…)` was planned as a primary-key scan
    /// filtering on `at`: O(position in the chain).)
    static func firstSeq(_ tenant: UUID, atOrAfter date: Date) -> Statement {
        Statement(
            "SELECT seq FROM public.audit_events WHERE tenant_id = $1 AND at >= $2 ORDER BY at, seq LIMIT 1",
            [tenant, date])
    }

    static func head(_ tenant: UUID) -> Statement {
        Statement("SELECT seq, hash FROM public.audit_heads WHERE tenant_id = $1", [tenant])
    }

    static let checkpointColumns = """
        tenant_id, seq, head_hash, previous_checkpoint_hash,
        to_char(signed_at AT TIME ZONE 'UTC', \(canonicalTimeFormat)) AS signed_at, key_id, public_key, signature,
        root_hash, note,
        (SELECT string_agg(c.line, '' ORDER BY c.witness_name, c.key_id) FROM public.audit_cosignatures c
         WHERE c.tenant_id = audit_checkpoints.tenant_id AND c.seq = audit_checkpoints.seq) AS cosignatures
        """

    static func checkpoints(_ tenant: UUID) -> Statement {
        Statement("SELECT \(checkpointColumns) FROM public.audit_checkpoints WHERE tenant_id = $1 ORDER BY seq", [tenant])
    }

    static func lastCheckpoint(_ tenant: UUID) -> Statement {
        Statement(
            "SELECT \(checkpointColumns) FROM public.audit_checkpoints WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
            [tenant])
    }

    static func insertCheckpoint(_ checkpoint: AuditCheckpoint) -> Statement {
        Statement(
            """
            INSERT INTO public.audit_checkpoints
                (tenant_id, seq, head_hash, previous_checkpoint_hash, signed_at, key_id, public_key, signature, root_hash, note)
            VALUES ($1, $2, $3, $4, $5::timestamptz, $6, $7, $8, $9, $10)
            """,
            [
                checkpoint.tenantID, checkpoint.seq, checkpoint.headHash, checkpoint.previousCheckpointHash,
                checkpoint.signedAt, checkpoint.keyID, checkpoint.publicKey, checkpoint.signature,
                checkpoint.rootHash, checkpoint.note,
            ])
    }

    /// Tenants whose head has moved past their last checkpoint (for the periodic checkpointer).
    static let tenantsBehindCheckpoint = Statement(
        """
        SELECT h.tenant_id FROM public.audit_heads h
        WHERE h.seq > coalesce((SELECT max(c.seq) FROM public.audit_checkpoints c WHERE c.tenant_id = h.tenant_id), 0)
        ORDER BY h.tenant_id
        """)

    // MARK: - Rows

    static func entry(_ row: PostgresRow) throws -> AuditEntry {
        let details = Self.details(try row.decode("details"))
        return AuditEntry(
            tenantID: try row.decode("tenant_id"), seq: try row.decode("seq"), at: try row.decode("at"),
            actor: try row.decodeIfPresent("actor"), action: try row.decode("action"),
            target: try row.decodeIfPresent("target"), outcome: try row.decode("outcome"),
            requestID: try row.decodeIfPresent("request_id"), ip: try row.decodeIfPresent("ip"),
            userAgent: try row.decodeIfPresent("user_agent"), details: details,
            prevHash: try row.decode("prev_hash"), hash: try row.decode("hash"))
    }

    /// An entry's `details::text` as values: the fast reader for what PostgreSQL prints, else
    /// Foundation's JSONDecoder (the reference; the fast reader declines whatever it might read
    /// differently).
    static func details(_ text: String) -> [String: AuditValue] {
        if let parsed = DetailsParser.parse(text) { return parsed }
        if let decoded = try? JSONDecoder().decode([String: AuditValue].self, from: Data(text.utf8)) { return decoded }
        // A hand-edited row may hold JSON the canonical encoding cannot express (a float, say).
        // Keep the raw text in its place: the entry then fails verification with a hash mismatch
        // at its seq, instead of the whole read failing.
        return ["$unreadable": .string(text)]
    }

    static func checkpoint(_ row: PostgresRow) throws -> AuditCheckpoint {
        var checkpoint = try checkpointFields(row)
        checkpoint.cosignatures =
            (try row.decodeIfPresent("cosignatures", as: String.self))?
            .split(separator: "\n").map { String($0) + "\n" } ?? []
        return checkpoint
    }

    private static func checkpointFields(_ row: PostgresRow) throws -> AuditCheckpoint {
        AuditCheckpoint(
            tenantID: try row.decode("tenant_id"), seq: try row.decode("seq"), headHash: try row.decode("head_hash"),
            previousCheckpointHash: try row.decode("previous_checkpoint_hash"), signedAt: try row.decode("signed_at"),
            keyID: try row.decode("key_id"), publicKey: try row.decode("public_key"), signature: try row.decode("signature"),
            rootHash: try row.decodeIfPresent("root_hash"), note: try row.decodeIfPresent("note"))
    }

    /// One checkpoint of the tenant at `seq`.
    static func checkpoint(_ tenant: UUID, seq: Int64) -> Statement {
        Statement("SELECT \(checkpointColumns) FROM public.audit_checkpoints WHERE tenant_id = $1 AND seq = $2", [tenant, seq])
    }

    /// The tenant's entry at `seq`.
    static func entry(_ tenant: UUID, seq: Int64) -> Statement {
        Statement("SELECT \(entryColumns) FROM public.audit_events WHERE tenant_id = $1 AND seq = $2", [tenant, seq])
    }
}

/// Reads entries and checkpoints for the HTTP API and reports (`GET /v1/audit/events`,
/// `/v1/audit/checkpoints`). Keyset pagination by seq: pass the last seq seen as `afterSeq`.
public enum AuditReader {
    /// Up to `limit` entries of the tenant with seq > `afterSeq`, in seq order, optionally only
    /// actions starting with `actionPrefix` (e.g. `secret.`) and by `actor`.
    ///
    /// Planned with its values each time (``Statement/customPlans``): planned without them, the
    /// optional filters look selective, and the generic plan fetched every entry after `afterSeq`
    /// and sorted them for the page — the first page of a long chain read all of it.
    public static func entries(
        pool: ConnectionPool, tenant: UUID, afterSeq: Int64 = 0, limit: Int = 100,
        actionPrefix: String? = nil, actor: String? = nil
    ) async throws -> [AuditEntry] {
        // LIKE metacharacters in the prefix are escaped so a filter value matches literally.
        let pattern = actionPrefix.map {
            $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%"
        }
        let statement = Statement(
            """
            SELECT \(AuditSQL.entryColumns) FROM public.audit_events
            WHERE tenant_id = $1 AND seq > $2 AND ($4::text IS NULL OR action LIKE $4) AND ($5::text IS NULL OR actor = $5)
            ORDER BY seq LIMIT $3
            """,
            [tenant, afterSeq, max(0, limit), pattern, actor])
        do {
            return try await pool.withConnection(tenant: tenant) {
                try await $0.pipeline([.customPlans, statement])[1].rows.map(AuditSQL.entry)
            }
        } catch {
            throw AuditError.wrap(error, "reading audit entries failed")
        }
    }

    /// The tenant's newest entry with exactly `action` stamped before `date`, if any: one read
    /// through `audit_events_tenant_action_idx` (newest first), however long the chain.
    public static func latest(pool: ConnectionPool, tenant: UUID, action: String, before date: Date) async throws -> AuditEntry? {
        let statement = Statement(
            """
            SELECT \(AuditSQL.entryColumns) FROM public.audit_events
            WHERE tenant_id = $1 AND action = $2 AND at < $3 ORDER BY seq DESC LIMIT 1
            """,
            [tenant, action, date])
        do {
            return try await pool.withConnection(tenant: tenant) { try await $0.pipeline([statement])[0].first.map(AuditSQL.entry) }
        } catch {
            throw AuditError.wrap(error, "reading the latest audit entry failed")
        }
    }

    /// All of the tenant's checkpoints, oldest first.
    public static func checkpoints(pool: ConnectionPool, tenant: UUID) async throws -> [AuditCheckpoint] {
        do {
            return try await pool.withConnection(tenant: tenant) {
                try await $0.pipeline([AuditSQL.checkpoints(tenant)])[0].rows.map(AuditSQL.checkpoint)
            }
        } catch {
            throw AuditError.wrap(error, "reading audit checkpoints failed")
        }
    }
}
