import Foundation
import Postgres

/// Proofs against the first signed checkpoint that covers an entry: a stable choice (checkpoints
/// are append-only), so building the proof again later gives the same proof. Used for the
/// documents the gateway hands out — deletion certificates and exports — which must verify
/// offline with only the pinned key.
extension AuditProofs {
    /// The seq of the tenant's first checkpoint with a signed note (a C2SP checkpoint) at or after
    /// `seq`; nil when no such checkpoint exists yet.
    public static func firstSignedCheckpoint(covering seq: Int64, pool: ConnectionPool, tenant: UUID) async throws -> Int64? {
        do {
            return try await pool.pipeline(
                tenant: tenant,
                [
                    Statement(
                        """
                        SELECT seq FROM public.audit_checkpoints
                        WHERE tenant_id = $1 AND seq >= $2 AND note IS NOT NULL ORDER BY seq LIMIT 1
                        """, [tenant, seq])
                ])[0].first.map { try $0.decode("seq", as: Int64.self) }
        } catch {
            throw AuditError.wrap(error, "finding a checkpoint covering entry \(seq) failed")
        }
    }

    /// The inclusion proof of entry `seq` in the first signed checkpoint covering it; nil when no
    /// signed checkpoint covers it yet (checkpoint the tenant first).
    public static func inclusionInFirstCovering(pool: ConnectionPool, tenant: UUID, seq: Int64) async throws -> InclusionProof? {
        guard let checkpoint = try await firstSignedCheckpoint(covering: seq, pool: pool, tenant: tenant) else { return nil }
        return try await inclusion(pool: pool, tenant: tenant, seq: seq, checkpointSeq: checkpoint)
    }
}

extension CodableEntry: Equatable {
    public static func == (lhs: CodableEntry, rhs: CodableEntry) -> Bool { lhs.entry == rhs.entry }
}

extension InclusionProof: Equatable {
    public static func == (lhs: InclusionProof, rhs: InclusionProof) -> Bool {
        lhs.type == rhs.type && lhs.tenantID == rhs.tenantID && lhs.entry == rhs.entry && lhs.leafIndex == rhs.leafIndex
            && lhs.treeSize == rhs.treeSize && lhs.hashes == rhs.hashes && lhs.checkpoint == rhs.checkpoint
    }
}
