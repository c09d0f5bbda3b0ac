import Foundation
import Postgres
import Sodium

/// The inclusion proofs of several entries of one tenant's log against one signed checkpoint
/// (a data subject's export: the audit entries about them), and the entries that no signed
/// checkpoint covered yet, each with the reason. `privacyctl audit verify-proof` checks the file.
public struct InclusionProofSet: Sendable, Codable, Equatable {
    public static let type = "privacy-gateway-audit-inclusion-proofs"

    /// An entry without a proof, and why.
    public struct Unproven: Sendable, Codable, Equatable {
        public var seq: Int64
        public var reason: String

        public init(seq: Int64, reason: String) {
            self.seq = seq
            self.reason = reason
        }
    }

    public var type: String = Self.type
    public var tenantID: UUID
    /// The checkpoint's tree size; nil when the tenant has no signed checkpoint.
    public var treeSize: Int64?
    /// The checkpoint's C2SP signed note (also in each proof).
    public var checkpoint: String?
    public var proofs: [InclusionProof]
    public var unproven: [Unproven]

    enum CodingKeys: String, CodingKey {
        case type, tenantID = "tenant_id", treeSize = "tree_size", checkpoint, proofs, unproven
    }

    public init(tenantID: UUID, treeSize: Int64?, checkpoint: String?, proofs: [InclusionProof], unproven: [Unproven]) {
        self.tenantID = tenantID
        self.treeSize = treeSize
        self.checkpoint = checkpoint
        self.proofs = proofs
        self.unproven = unproven
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encode(tenantID.lowercasedString, forKey: .tenantID)
        try c.encodeIfPresent(treeSize, forKey: .treeSize)
        try c.encodeIfPresent(checkpoint, forKey: .checkpoint)
        try c.encode(proofs, forKey: .proofs)
        try c.encode(unproven, forKey: .unproven)
    }

    /// The proofs of entries `seqs` of the tenant in its newest signed checkpoint, built in one
    /// snapshot (O(log n) reads per entry); entries after that checkpoint (or all, without one)
    /// are listed in ``unproven`` with `reason`.
    ///
    /// - Throws: ``AuditError/Code/notFound`` when one of `seqs` is not in the tenant's log.
    public static func build(pool: ConnectionPool, tenant: UUID, seqs: [Int64], unprovenReason reason: String) async throws -> InclusionProofSet {
        do {
            return try await pool.withConnection(tenant: tenant) { connection in
                try await connection.run { connection in
                    try connection.transaction(isolation: .repeatableRead) { connection in
                        let newest = try connection.pipeline([
                            Statement(
                                "SELECT seq FROM public.audit_checkpoints WHERE tenant_id = $1 AND note IS NOT NULL ORDER BY seq DESC LIMIT 1",
                                [tenant])
                        ])[0].first.map { try $0.decode("seq", as: Int64.self) }
                        guard let newest,
                              let checkpoint = try connection.pipeline([AuditSQL.checkpoint(tenant, seq: newest)])[0].first.map(AuditSQL.checkpoint),
                              let note = checkpoint.note
                        else {
                            return InclusionProofSet(
                                tenantID: tenant, treeSize: nil, checkpoint: nil, proofs: [],
                                unproven: seqs.map { Unproven(seq: $0, reason: "the log has no signed checkpoint yet: \(reason)") })
                        }
                        var proofs: [InclusionProof] = []
                        var unproven: [Unproven] = []
                        let covered = seqs.filter { $0 <= newest }
                        for seq in seqs where seq > newest {
                            unproven.append(Unproven(seq: seq, reason: "after the newest signed checkpoint (tree size \(newest)): \(reason)"))
                        }
                        // Entries in pipelines of 100, and their paths in chunks of 100 entries: the
                        // subtrees the chunk's paths need are read once each (neighbouring entries share
                        // most of them). Measured on a 4,000-entry log, 200 entries, same run on a loaded
                        // 2-core machine: 0.69 ms per proof, against 9.3 ms one by one (AuditProofs.inclusion).
                        for start in stride(from: 0, to: covered.count, by: 100) {
                            let chunk = Array(covered[start..<min(start + 100, covered.count)])
                            let results = try connection.pipeline(chunk.map { AuditSQL.entry(tenant, seq: $0) })
                            let pieces = chunk.map { seq in
                                MerkleTree.inclusionRanges(index: seq - 1, size: newest).map(MerkleTree.decompose)
                            }
                            let nodes = try AuditTree.nodeHashes(pieces.flatMap { $0.flatMap { $0 } }, tenant: tenant, connection: connection)
                            for ((seq, result), path) in zip(zip(chunk, results), pieces) {
                                guard let entry = try result.first.map(AuditSQL.entry) else {
                                    throw AuditError(.notFound, "this tenant's log has no entry \(seq)")
                                }
                                let hashes = path.map { MerkleTree.rangeHash($0.map { nodes[$0]! }) }
                                proofs.append(InclusionProof(tenantID: tenant, entry: entry, treeSize: newest, hashes: hashes, checkpoint: note))
                            }
                        }
                        return InclusionProofSet(tenantID: tenant, treeSize: newest, checkpoint: note, proofs: proofs, unproven: unproven)
                    }
                }
            }
        } catch {
            throw AuditError.wrap(error, "building the inclusion proofs failed")
        }
    }

    /// Verifies every proof with only the pinned public key: each against the set's one checkpoint.
    ///
    /// - Throws: ``AuditError/Code/proof`` naming the first entry that fails and why.
    @discardableResult
    public func verify(publicKey: [UInt8]) throws -> String {
        var seen = Set<Int64>()
        for proof in proofs {
            let seq = proof.entry.entry.seq
            guard proof.tenantID == tenantID else {
                throw AuditError(.proof, "entry \(seq): its proof is for tenant \(proof.tenantID.lowercasedString), not \(tenantID.lowercasedString)")
            }
            guard proof.treeSize == treeSize, proof.checkpoint == checkpoint else {
                throw AuditError(.proof, "entry \(seq): its proof is against another checkpoint than the file's (tree size \(proof.treeSize))")
            }
            guard seen.insert(seq).inserted else { throw AuditError(.proof, "entry \(seq) is proven twice") }
            do {
                try AuditProofs.verify(proof, publicKey: publicKey)
            } catch let error as AuditError {
                // The first proof's failure to verify the note under this key is the whole file's.
                throw AuditError(.proof, error.message.hasPrefix("entry \(seq)") ? error.message : "entry \(seq): \(error.message)")
            }
        }
        var verdict = "OK: all \(proofs.count) proven entries of tenant \(tenantID.lowercasedString) are in the signed checkpoint"
        verdict += treeSize.map { " of size \($0)" } ?? ""
        if !unproven.isEmpty {
            verdict += "; \(unproven.count) not yet provable (seq \(unproven.map { String($0.seq) }.joined(separator: ", ")): \(unproven[0].reason))"
        }
        return verdict
    }
}
