import Sodium
import Testing

/// Published test vectors, so the wrappers are known to call the right primitives with the
/// right parameters. Where a vector is not from a standard (KDF, Argon2id), the expected
/// value was computed independently with Python's hashlib / `cryptography` package.
@Suite("Known-answer vectors")
struct KnownAnswerTests {
    @Test("SHA-256 of the empty string matches FIPS 180-2")
    func sha256Empty() {
        #expect(Hex.encode(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("SHA-256 of \"abc\" matches FIPS 180-2")
    func sha256ABC() {
        #expect(Hex.encode(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("SHA-256 of one million 'a' streamed in uneven chunks matches FIPS 180-2")
    func sha256MillionA() {
        var hasher = SHA256.Hasher()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 999)
        var remaining = 1_000_000
        while remaining > 0 {
            let take = min(remaining, chunk.count)
            hasher.update(Array(chunk.prefix(take)))
            remaining -= take
        }
        #expect(Hex.encode(hasher.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("HMAC-SHA-256 matches RFC 4231 test case 1 (20-byte key)")
    func hmacCase1() throws {
        let key = try SecureBytes(copying: [UInt8](repeating: 0x0b, count: 20))
        let mac = HMACSHA256.authenticate(Array("Hi There".utf8), key: key)
        #expect(Hex.encode(mac) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    @Test("HMAC-SHA-256 matches RFC 4231 test case 2 (4-byte key)")
    func hmacCase2() throws {
        let key = try SecureBytes(copying: Array("Jefe".utf8))
        let mac = HMACSHA256.authenticate(Array("what do ya want for nothing?".utf8), key: key)
        #expect(Hex.encode(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("HMAC-SHA-256 matches RFC 4231 test case 6 (131-byte key, hashed first)")
    func hmacCase6() throws {
        let key = try SecureBytes(copying: [UInt8](repeating: 0xaa, count: 131))
        let message = Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)
        let mac = HMACSHA256.authenticate(message, key: key)
        #expect(Hex.encode(mac) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test("Ed25519 matches RFC 8032 §7.1 TEST 1 (empty message)")
    func ed25519Test1() throws {
        let key = try Ed25519.SigningKey(seed: secureKey(hex: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
        #expect(Hex.encode(key.publicKey) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        let signature = key.sign([])
        #expect(
            Hex.encode(signature)
                == "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        )
        #expect(Ed25519.isValidSignature(signature, for: [], publicKey: key.publicKey))
    }

    @Test("Ed25519 matches RFC 8032 §7.1 TEST 2 (one-byte message)")
    func ed25519Test2() throws {
        let key = try Ed25519.SigningKey(seed: secureKey(hex: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
        #expect(Hex.encode(key.publicKey) == "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
        let signature = key.sign([0x72])
        #expect(
            Hex.encode(signature)
                == "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        )
        #expect(Ed25519.isValidSignature(signature, for: [0x72], publicKey: key.publicKey))
    }

    @Test("XChaCha20-Poly1305 matches draft-irtf-cfrg-xchacha-03 §A.3.1 both ways")
    func xchachaDraftVector() throws {
        let key = try SecureBytes(copying: Array(0x80...0x9f))
        let nonce = try unhex("404142434445464748494a4b4c4d4e4f5051525354555657")
        let associatedData = try unhex("50515253c0c1c2c3c4c5c6c7")
        let plaintext = Array(
            "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8)
        let expected = try unhex(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
                + "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
                + "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
                + "21f9664c97637da9768812f615c68b13b52e"
                + "c0875924c1c7987947deafd8780acf49")  // tag

        let sealed = try XChaCha20Poly1305.seal(plaintext, key: key, associatedData: associatedData, nonce: nonce)
        #expect(sealed.nonce == nonce)
        #expect(sealed.ciphertext == expected)
        #expect(try XChaCha20Poly1305.open(expected, nonce: nonce, key: key, associatedData: associatedData) == plaintext)
    }

    @Test("KDF subkeys equal keyed BLAKE2b with the id as salt and the context as personalisation")
    func kdfMatchesBlake2b() throws {
        let master = try SecureBytes(copying: Array(0...31))
        let audit = try KeyDerivation.subkey(from: master, id: 1, context: "auditkey")
        let tenant = try KeyDerivation.subkey(from: master, id: 42, context: "tenantkk")
        #expect(audit.isEqual(to: try secureKey(hex: "9106193f4da20c8f9c4fa878baaa4159f12b4f34e4877d17df5bbad9854927c3")))
        #expect(tenant.isEqual(to: try secureKey(hex: "4dc35eb38ceaf51de4c41646d4a6e0749d68d4c62b2918fe6afdab6d0dc067ea")))
    }

    @Test("Argon2id matches an independent Argon2id v1.3 implementation")
    func argon2idMatchesReference() throws {
        let salt = Array(UInt8(0)...15)
        let minimal = try Argon2id.deriveKey(
            passphrase: "correct horse battery staple", salt: salt,
            opsLimit: Argon2id.minimumOpsLimit, memLimit: Argon2id.minimumMemLimit)
        #expect(minimal.isEqual(to: try secureKey(hex: "d17ea6341ca93da6079ea2f64dc4aa31dd1aaf9caa67fb42ac4afd0714706f26")))

        // Two passes over 64 KiB, and a passphrase that is not ASCII (hashed as UTF-8).
        let larger = try Argon2id.deriveKey(
            passphrase: Array("pässwörd".utf8), salt: salt, opsLimit: 2, memLimit: 64 * 1024)
        #expect(larger.isEqual(to: try secureKey(hex: "524f225245bf4a51c6795f406c86e4f0f76fe0f11d7310f1b44733f7186593fe")))
    }
}
