import Foundation
import Sodium

/// C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures, the format of the
/// log's checkpoints and of witness cosignatures' envelopes.
///
/// ```
/// <text, ending in a newline>
/// <empty line>
/// — <key name> <base64(key id (4 bytes) ‖ signature (64 bytes))>
/// ```
///
/// The signature is over the text (with its final newline). The key id is the first 4 bytes of
/// `SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)` (0x01: the Ed25519 signature type).
public enum SignedNote {
    /// The Ed25519 signature type byte.
    static let ed25519Type: UInt8 = 0x01

    /// One signature line.
    public struct Signature: Sendable, Hashable {
        public var name: String
        public var keyID: [UInt8]
        public var signature: [UInt8]

        /// The line as written in a note, with its newline.
        public var line: String {
            "— \(name) \(Data(keyID + signature).base64EncodedString())\n"
        }
    }

    /// Why a note was refused; the description names what failed.
    public enum NoteError: Error, Sendable, Equatable, CustomStringConvertible {
        case malformed(String)
        case noSignatureByKey(String)
        case badSignature(String)
        case badKey(String)

        public var description: String {
            switch self {
            case let .malformed(detail): "malformed signed note: \(detail)"
            case let .noSignatureByKey(key): "the note carries no signature by the trusted key \(key)"
            case let .badSignature(key): "the signature by \(key) does not verify (the note was altered or signed by another key)"
            case let .badKey(detail): "malformed verifier key: \(detail)"
            }
        }
    }

    /// The 4-byte key id of an Ed25519 key with `name`.
    public static func keyID(name: String, publicKey: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(Array(name.utf8) + [0x0A, ed25519Type] + publicKey).prefix(4))
    }

    /// The verifier key string `name+hex(key id)+base64(0x01 ‖ public key)`.
    public static func verifierKey(name: String, publicKey: [UInt8]) -> String {
        "\(name)+\(Hex.encode(keyID(name: name, publicKey: publicKey)))+\(Data([ed25519Type] + publicKey).base64EncodedString())"
    }

    /// Parses a verifier key string; checks its key id.
    public static func parseVerifierKey(_ text: String) throws(NoteError) -> (name: String, publicKey: [UInt8]) {
        let parts = text.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, isValidName(parts[0]), parts[1].count == 8, let id = Hex.decode(parts[1]),
            let material = Data(base64Encoded: parts[2]).map(Array.init), material.count == 33, material[0] == ed25519Type
        else { throw .badKey("expected name+<8 hex digits>+<base64 of 0x01 and a 32-byte Ed25519 key>") }
        let publicKey = Array(material.dropFirst())
        guard keyID(name: parts[0], publicKey: publicKey) == id else { throw .badKey("the key id does not match the name and key") }
        return (parts[0], publicKey)
    }

    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("+") && !name.unicodeScalars.contains { $0.properties.isWhitespace }
    }

    /// The signature line for `text` (which must end in a newline) by `key` under `name`.
    public static func signature(text: String, name: String, key: Ed25519.SigningKey) -> Signature {
        Signature(name: name, keyID: keyID(name: name, publicKey: key.publicKey), signature: key.sign(Array(text.utf8)))
    }

    /// A note of `text` signed by `key` under `name`.
    public static func sign(text: String, name: String, key: Ed25519.SigningKey) -> String {
        text + "\n" + signature(text: text, name: name, key: key).line
    }

    /// Splits a note into its text and signature lines (unverified).
    public static func open(_ note: String) throws(NoteError) -> (text: String, signatures: [Signature]) {
        let bytes = Array(note.utf8)
        guard bytes.last == 0x0A else { throw .malformed("it does not end in a newline") }
        // The signature block starts after the last blank line.
        var split: Int?
        var index = bytes.count - 2
        while index > 0 {
            if bytes[index] == 0x0A && bytes[index - 1] == 0x0A { split = index; break }
            index -= 1
        }
        guard let split else { throw .malformed("no blank line separates the text from the signatures") }
        let text = String(decoding: bytes[..<split], as: UTF8.self)
        var signatures: [Signature] = []
        for line in String(decoding: bytes[(split + 1)...], as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast()
        {
            guard line.hasPrefix("— ") else { throw .malformed("a signature line does not start with an em dash and a space") }
            let fields = line.dropFirst(2).split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2, isValidName(String(fields[0])),
                let blob = Data(base64Encoded: String(fields[1])).map(Array.init), blob.count >= 5
            else { throw .malformed("unreadable signature line") }
            signatures.append(Signature(name: String(fields[0]), keyID: Array(blob.prefix(4)), signature: Array(blob.dropFirst(4))))
        }
        guard !signatures.isEmpty else { throw .malformed("no signatures") }
        return (text, signatures)
    }

    /// The note's text, after verifying its signature by `publicKey` under `name`.
    public static func verify(_ note: String, name: String, publicKey: [UInt8]) throws(NoteError) -> String {
        let (text, signatures) = try open(note)
        let id = keyID(name: name, publicKey: publicKey)
        let display = "\(name)+\(Hex.encode(id))"
        guard let signature = signatures.first(where: { $0.name == name && $0.keyID == id }) else {
            throw .noSignatureByKey(display)
        }
        guard Ed25519.isValidSignature(signature.signature, for: Array(text.utf8), publicKey: publicKey) else {
            throw .badSignature(display)
        }
        return text
    }
}

/// The body of a C2SP `tlog-checkpoint` (https://c2sp.org/tlog-checkpoint): origin, tree size,
/// base64 root hash, one per line.
public struct TreeCheckpoint: Sendable, Hashable {
    public var origin: String
    public var size: Int64
    public var rootHash: [UInt8]

    public init(origin: String, size: Int64, rootHash: [UInt8]) {
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
    }

    /// The origin of a tenant's log: also the name its checkpoints are signed under.
    public static func origin(tenant: UUID) -> String {
        "privacy-gateway/audit/\(tenant.lowercasedString)"
    }

    /// The note text.
    public var text: String {
        "\(origin)\n\(size)\n\(Data(rootHash).base64EncodedString())\n"
    }

    /// Parses a note text (extension lines after the root are allowed and ignored).
    public init(text: String) throws(SignedNote.NoteError) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 4, lines.last == "", !lines[0].isEmpty,
            let size = Int64(lines[1]), size >= 0, String(size) == lines[1],
            let root = Data(base64Encoded: String(lines[2])).map(Array.init), root.count == 32
        else { throw .malformed("not a checkpoint (origin, decimal tree size, base64 32-byte root hash)") }
        self.init(origin: String(lines[0]), size: size, rootHash: root)
    }
}
