import Foundation
import Logging
import Postgres
import Sodium

/// A signed statement "tenant T's chain had head H at seq N", chained to the previous one.
///
/// The signature covers ``signingMessage()`` (ENCODING.md §4). Checkpoints copied out of the
/// database (exports, a WORM sink, the tenant) are what make truncation and rewrites by
/// someone with database superuser rights detectable.
public struct AuditCheckpoint: Sendable, Hashable {
    /// The chain's tenant.
    public var tenantID: UUID
    /// The seq of the entry the checkpoint covers up to (inclusive).
    public var seq: Int64
    /// That entry's hash.
    public var headHash: [UInt8]
    /// ``hash()`` of the tenant's previous checkpoint; 32 zero bytes for the first.
    public var previousCheckpointHash: [UInt8]
    /// Canonical time text (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), from the database clock.
    public var signedAt: String
    /// Lowercase hex SHA-256 of ``publicKey``.
    public var keyID: String
    /// The 32-byte Ed25519 public key that signed (kept so old checkpoints verify after rotation).
    public var publicKey: [UInt8]
    /// The 64-byte Ed25519 signature of ``signingMessage()``.
    public var signature: [UInt8]
    /// The RFC 9162 Merkle root of entries 1…``seq`` (nil for checkpoints signed before migration 0019).
    public var rootHash: [UInt8]?
    /// The C2SP signed note (`tlog-checkpoint` body: ``TreeCheckpoint/origin(tenant:)``, ``seq``,
    /// ``rootHash``) signed by the same key under the origin's name; nil with ``rootHash``.
    public var note: String?
    /// Witness cosignature lines (C2SP tlog-cosignature) on ``note``, each ending in a newline, as
    /// the gateway stored them; readers verify them against the witness keys they pin.
    public var cosignatures: [String] = []

    /// A checkpoint as read from storage or a bundle (``AuditCheckpointer`` makes new ones).
    public init(
        tenantID: UUID, seq: Int64, headHash: [UInt8], previousCheckpointHash: [UInt8], signedAt: String,
        keyID: String, publicKey: [UInt8], signature: [UInt8], rootHash: [UInt8]? = nil, note: String? = nil
    ) {
        self.tenantID = tenantID
        self.seq = seq
        self.headHash = headHash
        self.previousCheckpointHash = previousCheckpointHash
        self.signedAt = signedAt
        self.keyID = keyID
        self.publicKey = publicKey
        self.signature = signature
        self.rootHash = rootHash
        self.note = note
    }

    /// Checks the signed note against a pinned key: signed by `publicKey` under the tenant's origin,
    /// and its body says this tenant, this seq, this root. Nil when there is no note.
    public func noteProblem(publicKey: [UInt8]) -> String? {
        guard let note else { return nil }
        let origin = TreeCheckpoint.origin(tenant: tenantID)
        do {
            let body = try TreeCheckpoint(text: SignedNote.verify(note, name: origin, publicKey: publicKey))
            if body.origin != origin { return "the signed note names log \(body.origin), not \(origin)" }
            if body.size != seq { return "the signed note is for tree size \(body.size), not \(seq)" }
            if body.rootHash != rootHash { return "the signed note's root hash differs from the checkpoint's root_hash" }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// The bytes that are signed: everything but the public key and the signature.
    public func signingMessage() -> [UInt8] {
        var out = CanonicalEncoding.checkpointDomain
        CanonicalEncoding.appendField("v1", to: &out)
        CanonicalEncoding.appendField(tenantID.lowercasedString, to: &out)
        CanonicalEncoding.appendField(String(seq), to: &out)
        CanonicalEncoding.appendField(headHash, to: &out)
        CanonicalEncoding.appendField(previousCheckpointHash, to: &out)
        CanonicalEncoding.appendField(signedAt, to: &out)
        CanonicalEncoding.appendField(keyID, to: &out)
        return out
    }

    /// SHA-256 of ``signingMessage()``: what the next checkpoint's ``previousCheckpointHash`` holds.
    public func hash() -> [UInt8] {
        SHA256.hash(signingMessage())
    }

    /// Whether ``signature`` is valid for ``signingMessage()`` under ``publicKey``, and
    /// ``keyID`` names that key. Whether the key is trusted is the caller's question.
    public func hasValidSignature() -> Bool {
        keyID == Self.keyID(of: publicKey)
            && Ed25519.isValidSignature(signature, for: signingMessage(), publicKey: publicKey)
    }

    /// A public key's id: lowercase hex SHA-256 of its 32 bytes.
    public static func keyID(of publicKey: [UInt8]) -> String {
        Hex.encode(SHA256.hash(publicKey))
    }

    /// Public keys as a verifier takes them (key id → key), e.g. from configuration.
    public static func trustedKeys(_ publicKeys: [[UInt8]]) -> [String: [UInt8]] {
        Dictionary(publicKeys.map { (keyID(of: $0), $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// Signs checkpoints with an Ed25519 key held outside the database
/// (`PRIVACY_SIGNING_KEY_FILE`). Used by `privacyctl audit checkpoint` and by the gateway's
/// periodic task.
public struct AuditCheckpointer: Sendable {
    private let pool: ConnectionPool
    private let signingKey: Ed25519.SigningKey
    private let trustedKeys: [String: [UInt8]]
    private let logger: Logger

    /// - Parameters:
    ///   - pool: the owner's or the gateway's connections (both may insert checkpoints).
    ///   - signingKey: from the Ed25519 seed file `PRIVACY_SIGNING_KEY_FILE`.
    ///   - trustedKeys: earlier signing keys (key id → public key, from configuration) whose
    ///     checkpoints a new one may extend; the signing key is always trusted. A last checkpoint
    ///     not signed by one of them is never extended: a new signature would vouch for it.
    public init(
        pool: ConnectionPool, signingKey: Ed25519.SigningKey, trustedKeys: [String: [UInt8]] = [:],
        logger: Logger = Logger(label: "audit")
    ) {
        self.pool = pool
        self.signingKey = signingKey
        self.trustedKeys = trustedKeys.merging(AuditCheckpoint.trustedKeys([signingKey.publicKey])) { first, _ in first }
        self.logger = logger
    }

    /// The signing key's id, as stored in checkpoints.
    public var keyID: String { AuditCheckpoint.keyID(of: signingKey.publicKey) }

    /// Verifies the entries since the tenant's last checkpoint, then signs the head they end at,
    /// unless the last checkpoint already covers it (then that one is returned).
    ///
    /// The entries are read and checked in one repeatable-read snapshot without holding the head
    /// lock, so appends go on meanwhile: their hashes recomputed, seqs contiguous, each linked to
    /// the one before, the first to the last checkpoint's head, the last equal to the head row.
    /// A chain that fails any of these is never signed: a signature would vouch for the tampering.
    /// Signing then locks the head row for a moment, so two checkpointers cannot fork the
    /// checkpoint chain; the checkpoint covers the verified head (appends made since wait for
    /// the next round).
    ///
    /// - Throws: ``AuditError/Code/emptyChain`` for a tenant with no entries;
    ///   ``AuditError/Code/chainCorrupt`` when the entries since the last checkpoint fail verification.
    public func checkpoint(tenant: UUID) async throws -> AuditCheckpoint {
        let signingKey = signingKey
        let trustedKeys = trustedKeys
        do {
            return try await pool.withConnection(tenant: tenant) { connection in
                try await connection.run { connection in
                    try AuditTree.ensureCurrent(tenant: tenant, connection: connection)
                    let (head, previous, root) = try Self.verifiedHead(tenant, connection: connection)
                    if let previous {
                        // Verified with the trusted key, never with the key stored beside it.
                        guard let key = trustedKeys[previous.keyID], key == previous.publicKey, previous.hasValidSignature() else {
                            throw AuditError(
                                .chainCorrupt,
                                "tenant \(tenant.lowercasedString): the last checkpoint (seq \(previous.seq)) is not signed by a trusted key; refusing to extend it"
                            )
                        }
                    }
                    if let previous, previous.seq == head.seq { return previous }
                    do {
                        let results = try connection.pipeline([
                            AuditSQL.begin, AuditSQL.lockHead(tenant), AuditSQL.lastCheckpoint(tenant),
                        ])
                        let latest = try results[2].first.map(AuditSQL.checkpoint)
                        if let latest, latest.seq >= head.seq || latest.seq != previous?.seq {
                            // Another checkpointer signed meanwhile: its checkpoint stands.
                            try connection.simple("ROLLBACK")
                            return latest
                        }
                        var checkpoint = AuditCheckpoint(
                            tenantID: tenant, seq: head.seq, headHash: head.hash,
                            previousCheckpointHash: previous?.hash() ?? AuditEntry.genesisHash,
                            signedAt: try results[1].first!.decode("now"), keyID: AuditCheckpoint.keyID(of: signingKey.publicKey),
                            publicKey: signingKey.publicKey, signature: [], rootHash: root)
                        checkpoint.signature = signingKey.sign(checkpoint.signingMessage())
                        let origin = TreeCheckpoint.origin(tenant: tenant)
                        checkpoint.note = SignedNote.sign(
                            text: TreeCheckpoint(origin: origin, size: head.seq, rootHash: root).text, name: origin, key: signingKey)
                        _ = try connection.pipeline([AuditSQL.insertCheckpoint(checkpoint), AuditSQL.commit])
                        return checkpoint
                    } catch {
                        if connection.inTransaction { try? connection.simple("ROLLBACK") }
                        throw error
                    }
                }
            }
        } catch {
            throw AuditError.wrap(error, "audit checkpoint failed")
        }
    }

    /// The tenant's head and last checkpoint, after verifying every entry between them (one
    /// snapshot). Throws ``AuditError/Code/chainCorrupt`` naming the first failure.
    private static func verifiedHead(
        _ tenant: UUID, connection: borrowing Connection
    ) throws -> (head: (seq: Int64, hash: [UInt8]), previous: AuditCheckpoint?, root: [UInt8]) {
        try connection.transaction(isolation: .repeatableRead) { connection in
            let results = try connection.pipeline([AuditSQL.head(tenant), AuditSQL.lastCheckpoint(tenant)])
            guard let row = results[0].first, try row.decode("seq", as: Int64.self) > 0 else {
                throw AuditError(.emptyChain, "tenant \(tenant.lowercasedString) has no audit entries to checkpoint")
            }
            let head = (seq: try row.decode("seq", as: Int64.self), hash: try row.decode("hash", as: [UInt8].self))
            let previous = try results[1].first.map(AuditSQL.checkpoint)
            if let previous, previous.seq >= head.seq { return (head, previous, previous.rootHash ?? []) }
            let from = (previous?.seq ?? 0) + 1
            // The tree's edge at the last checkpoint, from stored nodes, held to the root it signed;
            // then extended with the entries verified below: the new root never rests on an unchecked row.
            var tree = try AuditTree.range(at: from - 1, tenant: tenant, connection: connection)
            if let previous, let signedRoot = previous.rootHash, tree.root != signedRoot {
                throw AuditError(
                    .chainCorrupt,
                    "tenant \(tenant.lowercasedString): the stored Merkle tree at seq \(previous.seq) does not match the root the checkpoint signed; refusing to sign"
                )
            }
            var verifier = AuditVerifier(tenant: tenant, checkpoints: [], trustedKeys: [:], startSeq: from, expectedHead: head)
            var failures: [VerificationFailure] = []
            var after = from - 1
            while true {
                let page = try connection.pipeline([AuditSQL.entries(tenant, after: after, limit: 2000)])[0].rows
                if page.isEmpty { break }
                for row in page {
                    let entry = try AuditSQL.entry(row)
                    // The verifier takes a partial chain's first link on trust; the last checkpoint vouches for it here.
                    if entry.seq == from, entry.prevHash != (previous?.headHash ?? AuditEntry.genesisHash) {
                        failures.append(
                            VerificationFailure(
                                .brokenLink, seq: entry.seq,
                                "prev_hash does not match the head hash the checkpoint at seq \(from - 1) signed"))
                    }
                    verifier.consume(entry)
                    tree.append(MerkleTree.leafHash(entry.computedHash()))
                    after = entry.seq
                }
            }
            failures += verifier.finish().failures
            if let first = failures.first {
                throw AuditError(
                    .chainCorrupt,
                    "tenant \(tenant.lowercasedString): the entries since \(previous.map { "the checkpoint at seq \($0.seq)" } ?? "the start") "
                        + "fail verification (\(first)\(failures.count > 1 ? ", and \(failures.count - 1) more" : "")); refusing to sign")
            }
            // Proofs are served from the stored nodes: they must give the same root.
            if try AuditTree.range(at: head.seq, tenant: tenant, connection: connection).root != tree.root {
                throw AuditError(
                    .chainCorrupt,
                    "tenant \(tenant.lowercasedString): the stored Merkle tree nodes disagree with the verified entries up to seq \(head.seq); refusing to sign"
                )
            }
            return (head, previous, tree.root)
        }
    }

    /// Per tenant with an audit chain: when the oldest entry that no checkpoint covers yet was
    /// written, nil when the head is checkpointed. An idle tenant's last checkpoint may be old
    /// and still cover everything, so this, not the last checkpoint's time, says a chain is going
    /// unsigned (the gateway's `privacy_gateway_audit_checkpoint_age_seconds`).
    public func oldestUncheckpointed() async throws -> [UUID: Date?] {
        do {
            let rows = try await pool.withConnection { connection in
                try await connection.pipeline([
                    Statement(
                        """
                        SELECT h.tenant_id, e.at
                        FROM public.audit_heads h
                        LEFT JOIN LATERAL (SELECT max(c.seq) AS seq FROM public.audit_checkpoints c WHERE c.tenant_id = h.tenant_id) c ON true
                        LEFT JOIN public.audit_events e
                            ON e.tenant_id = h.tenant_id AND h.seq > coalesce(c.seq, 0) AND e.seq = coalesce(c.seq, 0) + 1
                        """)
                ])[0].rows
            }
            var oldest: [UUID: Date?] = [:]
            for row in rows { oldest[try row.decode("tenant_id")] = .some(try row.decodeIfPresent("at", as: Date.self)) }
            return oldest
        } catch {
            throw AuditError.wrap(error, "reading checkpoint coverage failed")
        }
    }

    /// Checkpoints every tenant whose head moved since its last checkpoint; one failing tenant
    /// does not stop the others (it is logged and reported). For a periodic task.
    public func checkpointAll() async throws -> (checkpoints: [AuditCheckpoint], failures: [UUID: AuditError]) {
        let tenants: [UUID]
        do {
            tenants = try await pool.withConnection { connection in
                try await connection.pipeline([AuditSQL.tenantsBehindCheckpoint])[0].rows.map { try $0.decode("tenant_id") }
            }
        } catch {
            throw AuditError.wrap(error, "listing tenants to checkpoint failed")
        }
        var checkpoints: [AuditCheckpoint] = []
        var failures: [UUID: AuditError] = [:]
        for tenant in tenants {
            do {
                checkpoints.append(try await checkpoint(tenant: tenant))
            } catch {
                let error = AuditError.wrap(error, "audit checkpoint failed")
                logger.error("audit checkpoint failed", metadata: ["tenant": "\(tenant.lowercasedString)", "error": "\(error)"])
                failures[tenant] = error
            }
        }
        return (checkpoints, failures)
    }
}
