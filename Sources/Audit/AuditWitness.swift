import Foundation
import Postgres
import Sodium

/// A witness's side of the transparency log (C2SP `tlog-cosignature`, Ed25519 `cosignature/v1`):
/// it remembers the last checkpoint it cosigned, cosigns a new one only after checking that it
/// extends the remembered one (consistency proof), and refuses a smaller (rolled back) or
/// different same-size or non-extending (forked) checkpoint.
public enum AuditWitness {
    /// The cosignature signature type byte (key id input).
    static let cosignatureType: UInt8 = 0x04

    /// What a witness keeps per log: the last checkpoint it cosigned.
    public struct State: Sendable, Codable, Equatable {
        public var origin: String
        public var size: Int64
        /// Hex.
        public var rootHash: String
        /// The cosigned note (the log's note plus this witness's line).
        public var note: String

        enum CodingKeys: String, CodingKey {
            case origin, size, rootHash = "root_hash", note
        }
    }

    /// `SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]`.
    public static func keyID(name: String, publicKey: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(Array(name.utf8) + [0x0A, cosignatureType] + publicKey).prefix(4))
    }

    /// The signed message: `cosignature/v1\ntime <t>\n` and the checkpoint's note text.
    static func message(text: String, timestamp: UInt64) -> [UInt8] {
        Array("cosignature/v1\ntime \(timestamp)\n\(text)".utf8)
    }

    /// The cosignature line for a checkpoint's note text.
    public static func cosign(text: String, name: String, key: Ed25519.SigningKey, timestamp: UInt64) -> SignedNote.Signature {
        var stamp = [UInt8](repeating: 0, count: 8)
        for index in 0..<8 { stamp[index] = UInt8(truncatingIfNeeded: timestamp >> (56 - 8 * UInt64(index))) }
        return SignedNote.Signature(
            name: name, keyID: keyID(name: name, publicKey: key.publicKey),
            signature: stamp + key.sign(message(text: text, timestamp: timestamp)))
    }

    /// Verifies the cosignature by (`name`, `publicKey`) on a note; returns its timestamp.
    public static func verifyCosignature(_ note: String, name: String, publicKey: [UInt8]) throws -> UInt64 {
        let (text, signatures) = try SignedNote.open(note)
        let id = keyID(name: name, publicKey: publicKey)
        guard let line = signatures.first(where: { $0.name == name && $0.keyID == id }) else {
            throw AuditError(.proof, "no cosignature by witness \(name)+\(Hex.encode(id))")
        }
        guard line.signature.count == 72 else {
            throw AuditError(.proof, "the cosignature by \(name) is not a timestamped Ed25519 signature")
        }
        let timestamp = line.signature.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard timestamp <= UInt64(Int64.max),
            Ed25519.isValidSignature(
                Array(line.signature.dropFirst(8)), for: message(text: text, timestamp: timestamp), publicKey: publicKey)
        else { throw AuditError(.proof, "the cosignature by witness \(name) does not verify") }
        return timestamp
    }

    /// Checks `note` (the tenant's newest signed checkpoint) against `previous` and, if it
    /// extends it, cosigns it. `proof` is the consistency proof from `previous.size` to the new
    /// size (ignored without `previous` or for the same size).
    ///
    /// - Throws: ``AuditError/Code/proof``: the note is not signed by the pinned log key, or the
    ///   log rolled back (smaller tree) or forked (same size, other root; or no valid proof).
    public static func witness(
        note: String, tenant: UUID, logPublicKey: [UInt8], previous: State?, proof: [[UInt8]],
        name: String, key: Ed25519.SigningKey, now: Date = Date()
    ) throws -> State {
        let body = try AuditProofs.verifiedCheckpoint(note, tenant: tenant, publicKey: logPublicKey)
        if let previous {
            guard previous.origin == body.origin, let oldRoot = Hex.decode(previous.rootHash) else {
                throw AuditError(.proof, "the witness state is for log \(previous.origin), not \(body.origin)")
            }
            if body.size < previous.size {
                throw AuditError(
                    .proof,
                    "rollback refused: log \(body.origin) now shows a tree of \(body.size) entries, smaller than the \(previous.size) this witness already cosigned"
                )
            }
            if body.size == previous.size, body.rootHash != oldRoot {
                throw AuditError(
                    .proof,
                    "fork refused: log \(body.origin) shows a different root for the tree of \(body.size) entries this witness already cosigned"
                )
            }
            do {
                try MerkleTree.verifyConsistency(
                    oldSize: previous.size, newSize: body.size, oldRoot: oldRoot, newRoot: body.rootHash,
                    proof: body.size == previous.size ? [] : proof)
            } catch {
                throw AuditError(
                    .proof,
                    "fork refused: log \(body.origin)'s tree of \(body.size) entries does not extend the tree of \(previous.size) this witness cosigned (\(error))"
                )
            }
        }
        let text = try SignedNote.open(note).text
        let line = cosign(text: text, name: name, key: key, timestamp: UInt64(max(0, now.timeIntervalSince1970)))
        return State(origin: body.origin, size: body.size, rootHash: Hex.encode(body.rootHash), note: note + line.line)
    }
}

/// Which witnesses a verifier trusts and how many must have cosigned the newest checkpoint.
public struct WitnessPolicy: Sendable {
    public var witnesses: [(name: String, publicKey: [UInt8])]
    public var required: Int

    public init(witnesses: [(name: String, publicKey: [UInt8])] = [], required: Int = 0) {
        self.witnesses = witnesses
        self.required = required
    }
}

/// Cosignatures submitted by witnesses (`POST /v1/audit/checkpoints/{seq}/cosignatures`).
public enum AuditCosignatures {
    /// Distinct witnesses kept per checkpoint: enough for any quorum, a bound on what a caller can store.
    public static let maximumPerCheckpoint = 32
    /// How far in the future a cosignature's timestamp may be (clock skew).
    public static let allowedSkew: TimeInterval = 600

    /// Verifies `line` as the cosignature by (`name`, `publicKey`) of the tenant's checkpoint at
    /// `seq` and stores it. Returns false when it was already stored.
    ///
    /// - Throws: ``AuditError/Code/notFound`` (no such checkpoint in this tenant's log),
    ///   ``AuditError/Code/invalidRequest`` (no signed note, not one signature line, does not verify,
    ///   a timestamp in the future, too many witnesses).
    public static func add(
        pool: ConnectionPool, tenant: UUID, seq: Int64, name: String, publicKey: [UInt8], line: String, now: Date = Date()
    ) async throws -> Bool {
        guard SignedNote.isValidName(name), name.utf8.count <= 255 else {
            throw AuditError(.invalidRequest, "name must be 1 to 255 bytes without spaces or '+'")
        }
        guard publicKey.count == Ed25519.publicKeyLength else {
            throw AuditError(.invalidRequest, "public_key must be a 32-byte Ed25519 key in hex")
        }
        guard line.hasSuffix("\n"), line.utf8.filter({ $0 == 0x0A }).count == 1, line.utf8.count <= 1024 else {
            throw AuditError(.invalidRequest, "cosignature must be one signature line ending in a newline")
        }
        do {
            return try await pool.withConnection(tenant: tenant) { connection in
                try await connection.run { connection in
                    try connection.transaction { connection in
                        guard
                            let checkpoint = try connection.pipeline([AuditSQL.checkpoint(tenant, seq: seq)])[0].first.map(
                                AuditSQL.checkpoint)
                        else {
                            throw AuditError(.notFound, "this tenant's log has no checkpoint at seq \(seq)")
                        }
                        guard let note = checkpoint.note else {
                            throw AuditError(.invalidRequest, "the checkpoint at seq \(seq) has no signed note to cosign")
                        }
                        let timestamp: UInt64
                        do {
                            timestamp = try AuditWitness.verifyCosignature(note + line, name: name, publicKey: publicKey)
                        } catch let error as AuditError {
                            throw AuditError(.invalidRequest, "the cosignature does not verify: \(error.message)")
                        } catch {
                            throw AuditError(.invalidRequest, "the cosignature is not a signature line: \(error)")
                        }
                        guard Double(timestamp) <= now.timeIntervalSince1970 + allowedSkew else {
                            throw AuditError(.invalidRequest, "the cosignature's timestamp is in the future")
                        }
                        let results = try connection.pipeline([
                            Statement(
                                "SELECT count(*)::int AS n FROM public.audit_cosignatures WHERE tenant_id = $1 AND seq = $2", [tenant, seq]),
                            Statement(
                                """
                                INSERT INTO public.audit_cosignatures (tenant_id, seq, witness_name, key_id, line)
                                SELECT $1, $2, $3, $4, $5
                                WHERE (SELECT count(*) FROM public.audit_cosignatures WHERE tenant_id = $1 AND seq = $2) < $6
                                ON CONFLICT DO NOTHING
                                """,
                                [tenant, seq, name, AuditWitness.keyID(name: name, publicKey: publicKey), line, maximumPerCheckpoint]),
                        ])
                        if results[1].affectedRows == 0, try results[0].first!.decode("n", as: Int.self) >= maximumPerCheckpoint {
                            throw AuditError(
                                .invalidRequest, "the checkpoint at seq \(seq) already has \(maximumPerCheckpoint) cosignatures")
                        }
                        return results[1].affectedRows == 1
                    }
                }
            }
        } catch {
            throw AuditError.wrap(error, "storing the cosignature failed")
        }
    }
}
