import Foundation
import Sodium

/// One thing wrong with a chain, named and located.
public struct VerificationFailure: Sendable, Hashable, Codable, CustomStringConvertible {
    /// What kind of failure; the raw values are stable (scripts match on them).
    public enum Kind: String, Sendable, Hashable, Codable {
        /// An entry's stored hash is not the SHA-256 of its canonical encoding: it was edited.
        case hashMismatch = "hash_mismatch"
        /// Entries are missing between two seqs (or before the first one).
        case gap
        /// Seqs repeat or go backwards (rows reordered or duplicated).
        case outOfOrder = "out_of_order"
        /// An entry's prev_hash is not the previous entry's hash.
        case brokenLink = "broken_link"
        /// A checkpoint's signature does not verify, or its key id does not match its key.
        case badSignature = "bad_signature"
        /// A checkpoint was signed by a key that is not trusted.
        case unknownKey = "unknown_key"
        /// A checkpoint's previous_checkpoint_hash does not match the previous checkpoint.
        case checkpointChainBroken = "checkpoint_chain_broken"
        /// A checkpoint's head hash differs from the entry at its seq.
        case checkpointMismatch = "checkpoint_mismatch"
        /// A checkpoint's signed Merkle root differs from the RFC 9162 root of entries 1…seq.
        case rootMismatch = "root_mismatch"
        /// The newest signed checkpoint lacks the witness cosignatures the verifier requires.
        case missingCosignatures = "missing_cosignatures"
        /// A checkpoint covers entries that are not there: the chain was cut back.
        case truncated
        /// The chain does not end at the recorded head (the head row, or the bundle manifest's head).
        case headMismatch = "head_mismatch"
        /// Bundle-level problems: a file's SHA-256 differs from the manifest, an unreadable line,
        /// entries of another tenant.
        case malformed
    }

    public var kind: Kind
    /// The entry or checkpoint seq the failure is about, when there is one.
    public var seq: Int64?
    /// A sentence naming what differs.
    public var detail: String

    public init(_ kind: Kind, seq: Int64?, _ detail: String) {
        self.kind = kind
        self.seq = seq
        self.detail = detail
    }

    public var description: String {
        (seq.map { "\(kind.rawValue) at seq \($0)" } ?? kind.rawValue) + ": " + detail
    }
}

/// The outcome of verifying one tenant's chain.
public struct VerificationReport: Sendable, Codable {
    public var tenantID: UUID
    public var entriesChecked: Int
    public var checkpointsChecked: Int
    public var firstSeq: Int64?
    public var lastSeq: Int64?
    /// seq of the last checkpoint whose signature and head both verified.
    public var lastVerifiedCheckpoint: Int64?
    public var failures: [VerificationFailure]

    /// No failures at all.
    public var isValid: Bool { failures.isEmpty }

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenant_id", entriesChecked = "entries_checked", checkpointsChecked = "checkpoints_checked"
        case firstSeq = "first_seq", lastSeq = "last_seq", lastVerifiedCheckpoint = "last_verified_checkpoint"
        case failures, valid
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        tenantID = try container.decode(UUID.self, forKey: .tenantID)
        entriesChecked = try container.decode(Int.self, forKey: .entriesChecked)
        checkpointsChecked = try container.decode(Int.self, forKey: .checkpointsChecked)
        firstSeq = try container.decodeIfPresent(Int64.self, forKey: .firstSeq)
        lastSeq = try container.decodeIfPresent(Int64.self, forKey: .lastSeq)
        lastVerifiedCheckpoint = try container.decodeIfPresent(Int64.self, forKey: .lastVerifiedCheckpoint)
        failures = try container.decode([VerificationFailure].self, forKey: .failures)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tenantID.lowercasedString, forKey: .tenantID)
        try container.encode(entriesChecked, forKey: .entriesChecked)
        try container.encode(checkpointsChecked, forKey: .checkpointsChecked)
        try container.encode(firstSeq, forKey: .firstSeq)
        try container.encode(lastSeq, forKey: .lastSeq)
        try container.encode(lastVerifiedCheckpoint, forKey: .lastVerifiedCheckpoint)
        try container.encode(isValid, forKey: .valid)
        try container.encode(failures, forKey: .failures)
    }

    init(tenantID: UUID) {
        self.tenantID = tenantID
        entriesChecked = 0
        checkpointsChecked = 0
        failures = []
    }

    /// A few lines for people: the verdict, then one line per failure.
    public var summary: String {
        let range = firstSeq.map { "seq \($0)…\(lastSeq ?? $0)" } ?? "no entries"
        var lines = [
            "\(isValid ? "OK" : "FAILED"): tenant \(tenantID.lowercasedString), \(entriesChecked) entries (\(range)), "
                + "\(checkpointsChecked) checkpoints" + (lastVerifiedCheckpoint.map { ", last good checkpoint at seq \($0)" } ?? "")
        ]
        lines += failures.map { "  " + $0.description }
        return lines.joined(separator: "\n")
    }
}

/// Verifies one tenant's chain with no database: pure computation over entries, checkpoints
/// and the public keys the auditor trusts (DESIGN.md §8, ENCODING.md §5).
///
/// Entries are fed in order one at a time (``consume(_:)``), so a chain of any length is checked
/// in constant memory; checkpoints are few and are given up front.
public struct AuditVerifier: Sendable {
    private var report: VerificationReport
    private let checkpoints: [AuditCheckpoint]
    /// Checkpoint seq → head hash, for checkpoints whose signature verified.
    private var pending: [Int64: [UInt8]] = [:]
    private var expectedHead: (seq: Int64, hash: [UInt8])?
    private var startSeq: Int64
    /// The seq and stored hash of the last entry consumed (`previousHash` is reused in place).
    private var previousSeq: Int64?
    private var previousHash: [UInt8] = []
    private var signedCheckpointSeqs: Set<Int64> = []
    /// Checkpoint seq → signed Merkle root, for checkpoints whose note verified.
    private var pendingRoots: [Int64: [UInt8]] = [:]
    /// The tree of the recomputed entry hashes so far (whole chains, or a range whose tree edge
    /// was anchored to a signed root by ``restrict(startSeq:endSeq:tree:)``; a partial export
    /// cannot rebuild the roots).
    private var tree = InlineRange()
    /// Whether ``tree`` holds the leaves 1…`startSeq - 1`, so roots can be checked.
    private var treeAnchored: Bool
    /// The last seq this verification covers when it stops before the head (a period report):
    /// checkpoints after it are not expected to be reached.
    private var endSeq: Int64?
    /// Canonical encodings of streamed rows (``consume(row:)``).
    private var encoder: EntryEncoder

    /// - Parameters:
    ///   - tenant: the chain's tenant; entries of any other tenant are a failure.
    ///   - checkpoints: all of the tenant's checkpoints (they are small; exports always include
    ///     all of them, so the checkpoint chain is checked from its start).
    ///   - trustedKeys: key id → public key. A checkpoint signed by any other key is reported as
    ///     ``VerificationFailure/Kind/unknownKey``. Keep old keys here after a rotation.
    ///   - startSeq: the first seq expected (1 for a whole chain; later for `export --since`,
    ///     where the first entry's prev_hash is then taken on trust).
    ///   - expectedHead: the head the chain must end at, when known (the head row, or the head
    ///     recorded in a bundle's manifest).
    public init(
        tenant: UUID, checkpoints: [AuditCheckpoint], trustedKeys: [String: [UInt8]], startSeq: Int64 = 1,
        expectedHead: (seq: Int64, hash: [UInt8])? = nil, witnesses: WitnessPolicy = WitnessPolicy()
    ) {
        report = VerificationReport(tenantID: tenant)
        self.checkpoints = checkpoints.sorted { $0.seq < $1.seq }
        self.startSeq = startSeq
        self.expectedHead = expectedHead
        treeAnchored = startSeq == 1
        encoder = EntryEncoder(tenant: tenant)
        verifyCheckpoints(trustedKeys: trustedKeys)
        verifyCosignatures(witnesses)
    }

    /// The newest checkpoint with a signed note must carry `required` valid cosignatures by
    /// distinct pinned witnesses (a split view shown to this verifier would lack them).
    private mutating func verifyCosignatures(_ policy: WitnessPolicy) {
        guard policy.required > 0 else { return }
        guard let newest = checkpoints.last(where: { $0.note != nil }), let note = newest.note else {
            fail(.missingCosignatures, nil, "\(policy.required) witness cosignatures are required but no checkpoint has a signed note")
            return
        }
        let cosigned = note + newest.cosignatures.joined()
        let valid = policy.witnesses.filter {
            (try? AuditWitness.verifyCosignature(cosigned, name: $0.name, publicKey: $0.publicKey)) != nil
        }
        if valid.count < policy.required {
            fail(
                .missingCosignatures, newest.seq,
                "the newest signed checkpoint has \(valid.count) valid cosignature\(valid.count == 1 ? "" : "s") by pinned witnesses; \(policy.required) required"
            )
        }
    }

    private mutating func verifyCheckpoints(trustedKeys: [String: [UInt8]]) {
        var previousHash = AuditEntry.genesisHash
        var previousSeq: Int64 = 0
        var sawNote = false
        for checkpoint in checkpoints {
            report.checkpointsChecked += 1
            if checkpoint.tenantID != report.tenantID {
                fail(.malformed, checkpoint.seq, "checkpoint belongs to tenant \(checkpoint.tenantID.lowercasedString)")
                continue
            }
            if checkpoint.previousCheckpointHash != previousHash {
                fail(
                    .checkpointChainBroken, checkpoint.seq,
                    "previous_checkpoint_hash does not match the checkpoint at seq \(previousSeq) (a checkpoint was removed or altered)")
            }
            previousHash = checkpoint.hash()
            previousSeq = checkpoint.seq
            guard let trusted = trustedKeys[checkpoint.keyID] else {
                fail(.unknownKey, checkpoint.seq, "signed by key \(checkpoint.keyID), which is not trusted")
                continue
            }
            guard checkpoint.publicKey == trusted, checkpoint.hasValidSignature() else {
                fail(.badSignature, checkpoint.seq, "the Ed25519 signature by key \(checkpoint.keyID) does not verify")
                continue
            }
            if let problem = checkpoint.noteProblem(publicKey: trusted) {
                fail(.badSignature, checkpoint.seq, problem)
                continue
            }
            if checkpoint.note == nil, sawNote {
                fail(.badSignature, checkpoint.seq, "the checkpoint has no signed note although an earlier one has (it was stripped)")
                continue
            }
            if let root = checkpoint.rootHash {
                sawNote = true
                pendingRoots[checkpoint.seq] = root
            }
            pending[checkpoint.seq] = checkpoint.headHash
            signedCheckpointSeqs.insert(checkpoint.seq)
        }
    }

    /// The checkpoints whose signature (and signed note, if any) verified with a trusted key, in
    /// seq order: the anchors a range verification may start from.
    public var trustedCheckpoints: [AuditCheckpoint] {
        checkpoints.filter { signedCheckpointSeqs.contains($0.seq) }
    }

    /// Narrows the verification to the entries `startSeq…endSeq` before any is consumed (a period
    /// report, ``AuditBundle/verifyPeriod``). `tree` is the tree's edge over leaves
    /// 1…`startSeq - 1` when the caller has anchored it to a signed root (roots of later
    /// checkpoints are then checked); nil skips root checks. Checkpoints after `endSeq` are not
    /// expected to be reached; the head is checked only when `endSeq` is nil.
    mutating func restrict(startSeq: Int64, endSeq: Int64?, tree: CompactRange?) {
        precondition(report.entriesChecked == 0, "restrict before consuming entries")
        self.startSeq = startSeq
        self.endSeq = endSeq
        if endSeq != nil { expectedHead = nil }
        if let tree, tree.size == startSeq - 1 {
            self.tree = InlineRange(tree)
            treeAnchored = true
        } else {
            self.tree = InlineRange()
            treeAnchored = startSeq == 1
        }
    }

    /// Checks the next entry: its hash, its seq against the previous one, its link, and any
    /// checkpoint at its seq.
    public mutating func consume(_ entry: AuditEntry) {
        let computed = entry.computedHash()
        check(
            seq: entry.seq, tenant: entry.tenantID == report.tenantID ? nil : entry.tenantID, computed: Hash32(computed)!,
            hashMatches: computed == entry.hash, storedHash: { entry.hash },
            prevHashMatches: { entry.prevHash == $0 }, storeHash: { $0 = entry.hash })
    }

    /// ``consume(_:)`` for a streamed row, hashed from its bytes (``EntryEncoder``) — or, for a row
    /// the fast encoder declines, through the ``AuditEntry`` it reads as.
    mutating func consume(row: StreamedEntry) throws {
        let seq = try row.seq()
        let isTenant = try encoder.isTenant(row)
        guard isTenant, try encoder.encode(row, seq: seq) else {
            consume(try row.entry())
            return
        }
        let computed = encoder.out.withUnsafeBytes { Hash32.sha256($0) }
        let stored = try row.required(StreamedEntry.Column.hash)
        let prev = try row.required(StreamedEntry.Column.prevHash)
        check(
            seq: seq, tenant: nil, computed: computed, hashMatches: computed.equals(stored), storedHash: { Array(stored) },
            prevHashMatches: { $0.elementsEqual(prev) },
            storeHash: { hash in
                if hash.count == stored.count {
                    hash.withUnsafeMutableBytes { $0.copyMemory(from: stored) }
                } else {
                    hash = Array(stored)
                }
            })
    }

    /// The checks of one entry. `tenant`: the entry's tenant when it is not the report's.
    private mutating func check(
        seq: Int64, tenant: UUID?, computed: Hash32, hashMatches: Bool, storedHash: () -> [UInt8],
        prevHashMatches: ([UInt8]) -> Bool, storeHash: (inout [UInt8]) -> Void
    ) {
        report.entriesChecked += 1
        if report.firstSeq == nil {
            report.firstSeq = seq
            if seq > startSeq {
                fail(.gap, seq, "the chain should start at seq \(startSeq) but starts at \(seq)")
            }
        }
        if let tenant {
            fail(.malformed, seq, "entry belongs to tenant \(tenant.lowercasedString)")
        }
        if !hashMatches {
            fail(
                .hashMismatch, seq,
                "stored hash \(Hex.encode(storedHash())) ≠ recomputed \(Hex.encode(computed.bytes)) (the entry was edited)")
        }
        if let previousSeq {
            if seq <= previousSeq {
                fail(.outOfOrder, seq, "follows seq \(previousSeq)")
            } else if seq != previousSeq + 1 {
                fail(.gap, seq, "entries \(previousSeq + 1)…\(seq - 1) are missing")
            }
            if !prevHashMatches(previousHash) {
                fail(.brokenLink, seq, "prev_hash does not match the hash of seq \(previousSeq)")
            }
        } else if seq == 1, !prevHashMatches(AuditEntry.genesisHash) {
            fail(.brokenLink, seq, "the first entry's prev_hash is not 32 zero bytes")
        }
        if treeAnchored {
            tree.append(Hash32.leaf(computed))
            if !pendingRoots.isEmpty, let root = pendingRoots.removeValue(forKey: seq), root != tree.root {
                fail(
                    .rootMismatch, seq,
                    "the signed Merkle root differs from the root of the entries up to this seq (entries were changed, dropped or reordered)"
                )
            }
        }
        if !pending.isEmpty, let signed = pending.removeValue(forKey: seq) {
            // Compare with the recomputed hash: a checkpoint vouches for content, not for a stored column.
            if signed != computed.bytes {
                fail(.checkpointMismatch, seq, "the signed head hash differs from this entry's hash")
            } else if report.failures.isEmpty {
                report.lastVerifiedCheckpoint = seq
            }
        }
        report.lastSeq = seq
        previousSeq = seq
        storeHash(&previousHash)
    }

    /// Final checks (truncation, head) and the report.
    public mutating func finish() -> VerificationReport {
        let lastSeq = report.lastSeq ?? (startSeq - 1)
        for seq in pending.keys.sorted() where endSeq.map({ seq <= $0 }) ?? true {
            if seq > lastSeq {
                fail(.truncated, seq, "a signed checkpoint covers seq \(seq) but the chain ends at \(lastSeq): entries were removed")
            } else if seq >= startSeq {
                fail(.gap, seq, "the entry at this checkpointed seq is missing")
            }
        }
        pending.removeAll()
        if let expectedHead {
            if expectedHead.seq != lastSeq {
                fail(
                    expectedHead.seq > lastSeq ? .truncated : .headMismatch, expectedHead.seq,
                    "the recorded head is seq \(expectedHead.seq) but the chain ends at \(lastSeq)")
            } else if previousSeq != nil, previousHash != expectedHead.hash {
                fail(.headMismatch, expectedHead.seq, "the recorded head hash differs from the last entry's hash")
            }
        }
        return report
    }

    private mutating func fail(_ kind: VerificationFailure.Kind, _ seq: Int64?, _ detail: String) {
        report.failures.append(VerificationFailure(kind, seq: seq, detail))
    }

    /// Verifies a whole chain given as an array.
    public static func verify(
        tenant: UUID, entries: [AuditEntry], checkpoints: [AuditCheckpoint], trustedKeys: [String: [UInt8]],
        startSeq: Int64 = 1, expectedHead: (seq: Int64, hash: [UInt8])? = nil
    ) -> VerificationReport {
        var verifier = AuditVerifier(
            tenant: tenant, checkpoints: checkpoints, trustedKeys: trustedKeys, startSeq: startSeq, expectedHead: expectedHead)
        for entry in entries { verifier.consume(entry) }
        return verifier.finish()
    }
}
