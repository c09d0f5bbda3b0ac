import Sodium
import Testing

@Suite("Ed25519 signing and verification")
struct Ed25519Tests {
    let key: Ed25519.SigningKey
    let message = Array("tenant=1 seq=42 head=ab12".utf8)

    init() throws {
        key = try Ed25519.SigningKey.generate()
    }

    @Test("a signature verifies with the signer's public key")
    func verifies() {
        let signature = key.sign(message)
        #expect(signature.count == Ed25519.signatureLength)
        #expect(key.publicKey.count == Ed25519.publicKeyLength)
        #expect(Ed25519.isValidSignature(signature, for: message, publicKey: key.publicKey))
    }

    @Test("the same seed gives the same key pair and the same signatures")
    func deterministicFromSeed() throws {
        let seed = try SecureBytes(count: Ed25519.seedLength)
        let first = try Ed25519.SigningKey(seed: seed)
        let second = try Ed25519.SigningKey(seed: seed)
        #expect(first.publicKey == second.publicKey)
        #expect(first.sign(message) == second.sign(message))
    }

    @Test("a modified message does not verify")
    func modifiedMessage() {
        let signature = key.sign(message)
        #expect(!Ed25519.isValidSignature(signature, for: flippingBit(0, of: message), publicKey: key.publicKey))
        #expect(!Ed25519.isValidSignature(signature, for: message + [0], publicKey: key.publicKey))
    }

    @Test("a modified signature does not verify")
    func modifiedSignature() {
        let signature = key.sign(message)
        for bit in [0, 255, 256, 511] {
            #expect(!Ed25519.isValidSignature(flippingBit(bit, of: signature), for: message, publicKey: key.publicKey))
        }
    }

    @Test("another key's public key does not verify the signature")
    func otherPublicKey() throws {
        let other = try Ed25519.SigningKey.generate()
        #expect(!Ed25519.isValidSignature(key.sign(message), for: message, publicKey: other.publicKey))
    }

    @Test("signatures and public keys of the wrong length are invalid, not a crash")
    func wrongLengths() {
        let signature = key.sign(message)
        #expect(!Ed25519.isValidSignature([], for: message, publicKey: key.publicKey))
        #expect(!Ed25519.isValidSignature(Array(signature.dropLast()), for: message, publicKey: key.publicKey))
        #expect(!Ed25519.isValidSignature(signature + [0], for: message, publicKey: key.publicKey))
        #expect(!Ed25519.isValidSignature(signature, for: message, publicKey: []))
        #expect(!Ed25519.isValidSignature(signature, for: message, publicKey: Array(key.publicKey.dropLast())))
        #expect(!Ed25519.isValidSignature(signature, for: message, publicKey: key.publicKey + [0]))
    }

    @Test("a seed that is not 32 bytes is rejected", arguments: [0, 31, 33, 64])
    func wrongSeedLength(length: Int) throws {
        let seed = try SecureBytes(count: length)
        #expect(throws: SodiumError(.invalidKeyLength)) { try Ed25519.SigningKey(seed: seed) }
    }

    @Test("printing a signing key shows only its public key")
    func descriptionShowsPublicKeyOnly() {
        #expect(String(describing: key) == "Ed25519.SigningKey(publicKey: \(Hex.encode(key.publicKey)))")
    }
}
