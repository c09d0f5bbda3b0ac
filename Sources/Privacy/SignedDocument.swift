import Foundation
import JSON
import Sodium

/// A JSON document the gateway signs with its Ed25519 key (`PRIVACY_SIGNING_KEY_FILE`): deletion
/// certificates and consent receipts.
///
/// The signature covers ``signingMessage()``: the document as JSON with sorted keys and without
/// `signature`, so a verifier re-encodes what it received (e.g. from a jsonb column, whose key order
/// differs) and checks the same bytes.
public protocol SignedDocument: Codable {
    /// Hex of the Ed25519 public key the document names as its signer.
    var publicKey: String { get }
    /// Hex of the signature; nil before signing.
    var signature: String? { get set }
    /// The document without the parts the signature does not cover (besides `signature`): parts
    /// that authenticate themselves and are attached after signing. By default, all of it.
    func withoutUnsignedAttachments() -> Self
}

extension SignedDocument {
    /// The signed bytes.
    public func signingMessage() throws -> [UInt8] {
        var unsigned = withoutUnsignedAttachments()
        unsigned.signature = nil
        return try JSONCoding.encode(unsigned)
    }

    public func withoutUnsignedAttachments() -> Self { self }

    public func signed(with key: Ed25519.SigningKey) throws -> Self {
        var copy = self
        copy.signature = Hex.encode(key.sign(try signingMessage()))
        return copy
    }

    /// Whether the signature is valid under `publicKey` (the verifier's own copy of the key, not
    /// the one the document names) and the document names that key.
    public func verify(publicKey: [UInt8]) -> Bool {
        guard let signature, let bytes = Hex.decode(signature), let message = try? signingMessage() else { return false }
        return self.publicKey == Hex.encode(publicKey) && Ed25519.isValidSignature(bytes, for: message, publicKey: publicKey)
    }
}
