import Sodium
import Testing

@Suite("XChaCha20-Poly1305 sealing and opening")
struct XChaCha20Poly1305Tests {
    let key: SecureBytes
    let associatedData = Array("tenant=1;user=2;secret=3;v=1".utf8)
    let plaintext = Array("postgres://user:hunter2@db/app".utf8)

    init() throws {
        key = try SecureBytes(count: XChaCha20Poly1305.keyLength)
    }

    private func sealed() throws -> (nonce: [UInt8], ciphertext: [UInt8]) {
        try XChaCha20Poly1305.seal(plaintext, key: key, associatedData: associatedData)
    }

    @Test("a sealed message opens with the same key, nonce and associated data")
    func roundTrip() throws {
        let box = try sealed()
        #expect(box.nonce.count == XChaCha20Poly1305.nonceLength)
        #expect(box.ciphertext.count == plaintext.count + XChaCha20Poly1305.tagLength)
        #expect(try XChaCha20Poly1305.open(box.ciphertext, nonce: box.nonce, key: key, associatedData: associatedData) == plaintext)
    }

    @Test("an empty message with empty associated data round-trips")
    func emptyRoundTrip() throws {
        let box = try XChaCha20Poly1305.seal([], key: key, associatedData: [])
        #expect(box.ciphertext.count == XChaCha20Poly1305.tagLength)
        #expect(try XChaCha20Poly1305.open(box.ciphertext, nonce: box.nonce, key: key, associatedData: []) == [])
    }

    @Test("each seal picks a fresh random nonce, so equal plaintexts give different ciphertexts")
    func freshNonces() throws {
        let first = try sealed()
        let second = try sealed()
        #expect(first.nonce != second.nonce)
        #expect(first.ciphertext != second.ciphertext)
    }

    @Test("a flipped ciphertext bit does not open")
    func flippedCiphertextBit() throws {
        let box = try sealed()
        #expect(throws: SodiumError(.authenticationFailed)) {
            try XChaCha20Poly1305.open(flippingBit(3, of: box.ciphertext), nonce: box.nonce, key: key, associatedData: associatedData)
        }
    }

    @Test("a flipped tag bit does not open")
    func flippedTagBit() throws {
        let box = try sealed()
        let lastBit = box.ciphertext.count * 8 - 1
        #expect(throws: SodiumError(.authenticationFailed)) {
            try XChaCha20Poly1305.open(flippingBit(lastBit, of: box.ciphertext), nonce: box.nonce, key: key, associatedData: associatedData)
        }
    }

    @Test("a different nonce does not open")
    func differentNonce() throws {
        let box = try sealed()
        #expect(throws: SodiumError(.authenticationFailed)) {
            try XChaCha20Poly1305.open(box.ciphertext, nonce: flippingBit(0, of: box.nonce), key: key, associatedData: associatedData)
        }
    }

    @Test("a ciphertext moved to another row (different associated data) does not open")
    func differentAssociatedData() throws {
        let box = try sealed()
        let otherRow = Array("tenant=1;user=9;secret=3;v=1".utf8)
        #expect(throws: SodiumError(.authenticationFailed)) {
            try XChaCha20Poly1305.open(box.ciphertext, nonce: box.nonce, key: key, associatedData: otherRow)
        }
    }

    @Test("a different key does not open")
    func differentKey() throws {
        let box = try sealed()
        let otherKey = try SecureBytes(count: XChaCha20Poly1305.keyLength)
        #expect(throws: SodiumError(.authenticationFailed)) {
            try XChaCha20Poly1305.open(box.ciphertext, nonce: box.nonce, key: otherKey, associatedData: associatedData)
        }
    }

    @Test("a ciphertext truncated below the tag length does not open", arguments: [0, 1, 15])
    func truncated(length: Int) throws {
        let box = try sealed()
        #expect(throws: SodiumError(.authenticationFailed)) {
            try XChaCha20Poly1305.open(Array(box.ciphertext.prefix(length)), nonce: box.nonce, key: key, associatedData: associatedData)
        }
    }

    @Test("keys that are not 32 bytes are rejected when sealing and opening", arguments: [0, 16, 31, 33, 64])
    func wrongKeyLength(length: Int) throws {
        let badKey = try SecureBytes(count: length)
        let box = try sealed()
        #expect(throws: SodiumError(.invalidKeyLength)) {
            try XChaCha20Poly1305.seal(plaintext, key: badKey, associatedData: associatedData)
        }
        #expect(throws: SodiumError(.invalidKeyLength)) {
            try XChaCha20Poly1305.open(box.ciphertext, nonce: box.nonce, key: badKey, associatedData: associatedData)
        }
    }

    @Test("nonces that are not 24 bytes are rejected when sealing and opening", arguments: [0, 12, 23, 25])
    func wrongNonceLength(length: Int) throws {
        let badNonce = [UInt8](repeating: 7, count: length)
        let box = try sealed()
        #expect(throws: SodiumError(.invalidNonceLength)) {
            try XChaCha20Poly1305.seal(plaintext, key: key, associatedData: associatedData, nonce: badNonce)
        }
        #expect(throws: SodiumError(.invalidNonceLength)) {
            try XChaCha20Poly1305.open(box.ciphertext, nonce: badNonce, key: key, associatedData: associatedData)
        }
    }

    @Test("an authentication failure's description reveals no plaintext or key")
    func errorDescriptionIsSafe() throws {
        let box = try sealed()
        let error = try #require(throws: SodiumError.self) {
            try XChaCha20Poly1305.open(box.ciphertext, nonce: box.nonce, key: key, associatedData: [])
        }
        #expect(error.code == .authenticationFailed)
        #expect(error.description == "SodiumError.authenticationFailed: ciphertext failed authentication")
    }
}
