import Sodium
import Testing

@Suite("Argon2id passphrase keys")
struct Argon2idTests {
    let salt = Random.bytes(Argon2id.saltLength)

    private func derive(_ passphrase: String, salt: [UInt8], length: Int = 32) throws -> SecureBytes {
        try Argon2id.deriveKey(
            passphrase: passphrase, salt: salt, length: length,
            opsLimit: Argon2id.minimumOpsLimit, memLimit: Argon2id.minimumMemLimit)
    }

    @Test("the same passphrase, salt and limits always give the same key")
    func deterministic() throws {
        let first = try derive("correct horse", salt: salt)
        let second = try derive("correct horse", salt: salt)
        #expect(first.count == 32)
        #expect(first.isEqual(to: second))
    }

    @Test("a String passphrase gives the same key as its UTF-8 bytes")
    func stringMatchesBytes() throws {
        let fromString = try derive("pässwörd", salt: salt)
        let fromBytes = try Argon2id.deriveKey(
            passphrase: Array("pässwörd".utf8), salt: salt,
            opsLimit: Argon2id.minimumOpsLimit, memLimit: Argon2id.minimumMemLimit)
        #expect(fromString.isEqual(to: fromBytes))
    }

    @Test("a different salt gives a different key")
    func differentSalt() throws {
        let first = try derive("correct horse", salt: salt)
        let second = try derive("correct horse", salt: flippingBit(0, of: salt))
        #expect(!first.isEqual(to: second))
    }

    @Test("a different passphrase gives a different key")
    func differentPassphrase() throws {
        #expect(!(try derive("correct horse", salt: salt)).isEqual(to: try derive("correct horsf", salt: salt)))
    }

    @Test("an empty passphrase still derives a key")
    func emptyPassphrase() throws {
        #expect(try derive("", salt: salt).count == 32)
    }

    @Test("a salt that is not 16 bytes is rejected", arguments: [0, 8, 15, 17, 32])
    func wrongSaltLength(length: Int) {
        #expect(throws: SodiumError(.invalidSaltLength)) {
            try derive("correct horse", salt: [UInt8](repeating: 1, count: length))
        }
    }

    @Test("keys shorter than 16 bytes are rejected")
    func tooShort() {
        #expect(throws: SodiumError(.invalidOutputLength)) {
            try derive("correct horse", salt: salt, length: 15)
        }
    }

    @Test("limits below the minimum fail as a derivation error")
    func limitsTooLow() {
        #expect(throws: SodiumError(.derivationFailed)) {
            try Argon2id.deriveKey(passphrase: "x", salt: salt, opsLimit: 0, memLimit: Argon2id.minimumMemLimit)
        }
        #expect(throws: SodiumError(.derivationFailed)) {
            try Argon2id.deriveKey(passphrase: "x", salt: salt, opsLimit: 1, memLimit: 1024)
        }
    }

    @Test("the default limits are libsodium's interactive ones and moderate is stronger")
    func limits() {
        #expect(Argon2id.interactiveOpsLimit == 2)
        #expect(Argon2id.interactiveMemLimit == 64 * 1024 * 1024)
        #expect(Argon2id.moderateOpsLimit == 3)
        #expect(Argon2id.moderateMemLimit == 256 * 1024 * 1024)
        #expect(Argon2id.minimumOpsLimit == 1)
        #expect(Argon2id.minimumMemLimit == 8 * 1024)
    }
}
