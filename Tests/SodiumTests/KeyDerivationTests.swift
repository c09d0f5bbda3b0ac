import Sodium
import Testing

@Suite("Subkey derivation")
struct KeyDerivationTests {
    let master: SecureBytes

    init() throws {
        master = try SecureBytes(count: KeyDerivation.masterKeyLength)
    }

    @Test("the same master, id and context always give the same subkey")
    func deterministic() throws {
        let first = try KeyDerivation.subkey(from: master, id: 7, context: "tenantkk")
        let second = try KeyDerivation.subkey(from: master, id: 7, context: "tenantkk")
        #expect(first.count == 32)
        #expect(first.isEqual(to: second))
        #expect(!first.isEqual(to: master))
    }

    @Test("a different id gives a different subkey")
    func differentID() throws {
        let first = try KeyDerivation.subkey(from: master, id: 7, context: "tenantkk")
        let second = try KeyDerivation.subkey(from: master, id: 8, context: "tenantkk")
        #expect(!first.isEqual(to: second))
    }

    @Test("a different context gives a different subkey")
    func differentContext() throws {
        let first = try KeyDerivation.subkey(from: master, id: 7, context: "tenantkk")
        let second = try KeyDerivation.subkey(from: master, id: 7, context: "auditkey")
        #expect(!first.isEqual(to: second))
    }

    @Test("a different master gives a different subkey")
    func differentMaster() throws {
        let other = try SecureBytes(count: KeyDerivation.masterKeyLength)
        let first = try KeyDerivation.subkey(from: master, id: 7, context: "tenantkk")
        let second = try KeyDerivation.subkey(from: other, id: 7, context: "tenantkk")
        #expect(!first.isEqual(to: second))
    }

    @Test(
        "a context that is not exactly 8 ASCII characters is rejected",
        arguments: ["", "tenant", "tenantk", "tenantkey", "keyrïng"])  // "keyrïng" is 8 UTF-8 bytes
    func badContext(context: String) {
        #expect(throws: SodiumError(.invalidContext)) {
            try KeyDerivation.subkey(from: master, id: 1, context: context)
        }
    }

    @Test("a master key that is not 32 bytes is rejected", arguments: [0, 16, 31, 33])
    func badMasterLength(length: Int) throws {
        let badMaster = try SecureBytes(count: length)
        #expect(throws: SodiumError(.invalidKeyLength)) {
            try KeyDerivation.subkey(from: badMaster, id: 1, context: "tenantkk")
        }
    }

    @Test("subkeys of 16 to 64 bytes can be derived, other lengths are rejected")
    func subkeyLengths() throws {
        #expect(try KeyDerivation.subkey(from: master, id: 1, context: "tenantkk", length: 16).count == 16)
        #expect(try KeyDerivation.subkey(from: master, id: 1, context: "tenantkk", length: 64).count == 64)
        for length in [0, 15, 65] {
            #expect(throws: SodiumError(.invalidOutputLength)) {
                try KeyDerivation.subkey(from: master, id: 1, context: "tenantkk", length: length)
            }
        }
    }
}
