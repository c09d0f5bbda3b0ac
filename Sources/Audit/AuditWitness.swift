import Foundation
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
        guard line.signature.count == 72 else { throw AuditError(.proof, "the cosignature by \(name) is not a timestamped Ed25519 signature") }
        let timestamp = line.signature.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard timestamp <= UInt64(Int64.max),
              Ed25519.isValidSignature(Array(line.signature.dropFirst(8)), for: message(text: text, timestamp: timestamp), publicKey: publicKey)
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
                    "rollback refused: log \(body.origin) now shows a tree of \(body.size) entries, smaller than the \(previous.size) this witness already cosigned")
            }
            if body.size == previous.size, body.rootHash != oldRoot {
                throw AuditError(
                    .proof, "fork refused: log \(body.origin) shows a different root for the tree of \(body.size) entries this witness already cosigned")
            }
            do {
                try MerkleTree.verifyConsistency(
                    oldSize: previous.size, newSize: body.size, oldRoot: oldRoot, newRoot: body.rootHash,
                    proof: body.size == previous.size ? [] : proof)
            } catch {
                throw AuditError(
                    .proof,
                    "fork refused: log \(body.origin)'s tree of \(body.size) entries does not extend the tree of \(previous.size) this witness cosigned (\(error))")
            }
        }
        let text = try SignedNote.open(note).text
        let line = cosign(text: text, name: name, key: key, timestamp: UInt64(max(0, now.timeIntervalSince1970)))
        return State(origin: body.origin, size: body.size, rootHash: Hex.encode(body.rootHash), note: note + line.line)
    }
}
