import Sodium
import Testing

@Suite("Secure bytes")
struct SecureBytesTests {
    /// The bytes 0...31 as a key file would hold them.
    let keyFileText = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

    @Test("random secure bytes have the requested length and differ each time")
    func random() throws {
        let first = try SecureBytes(count: 32)
        let second = try SecureBytes(count: 32)
        #expect(first.count == 32)
        #expect(!first.isEqual(to: second))
        #expect(try SecureBytes(count: 0).count == 0)
    }

    @Test("copied bytes are held unchanged")
    func copying() throws {
        let bytes: [UInt8] = Array(0...31)
        let secure = try SecureBytes(copying: bytes)
        #expect(secure.withUnsafeBytes { Array($0) } == bytes)
    }

    @Test("a key survives a round trip through its base64 key-file form")
    func base64RoundTrip() throws {
        let key = try SecureBytes(count: 32)
        let text = key.base64EncodedString()
        #expect(text.utf8.count == 44)
        #expect(try SecureBytes(base64: text).isEqual(to: key))
    }

    @Test(
        "a key file decodes to its bytes, ignoring surrounding whitespace and the final newline",
        arguments: ["", "\n", "\r\n", "  ", "\t"])
    func base64KnownValue(whitespace: String) throws {
        let key = try SecureBytes(base64: whitespace + keyFileText + whitespace)
        #expect(key.isEqual(to: try SecureBytes(copying: Array(0...31))))
        #expect(key.base64EncodedString() == keyFileText)
    }

    @Test(
        "base64 of the wrong length is rejected as a wrong key length",
        arguments: [
            "", "AAECAwQFBgcICQoLDA0ODw==", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==",
        ])
    func base64WrongLength(text: String) {
        #expect(throws: SodiumError(.invalidKeyLength)) { try SecureBytes(base64: text) }
    }

    @Test(
        "text that is not padded standard base64 is rejected as bad encoding",
        arguments: [
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",  // padding missing
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd Hh8=",  // inner space
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH_8=",  // URL-safe alphabet
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh!=",
        ])
    func base64BadEncoding(text: String) {
        #expect(throws: SodiumError(.invalidEncoding)) { try SecureBytes(base64: text) }
    }

    @Test("a base64 key of another expected length can be read")
    func base64OtherLength() throws {
        let key = try SecureBytes(base64: "AAECAwQFBgcICQoLDA0ODw==", count: 16)
        #expect(key.isEqual(to: try SecureBytes(copying: Array(0...15))))
    }

    @Test("printing, debug-printing and dumping show the length but never the contents")
    func descriptionHidesContents() throws {
        let key = try SecureBytes(copying: [UInt8](repeating: 0xab, count: 32))
        #expect(key.description == "SecureBytes(32 bytes)")
        #expect(String(reflecting: key) == "SecureBytes(32 bytes)")
        #expect("\(key)" == "SecureBytes(32 bytes)")
        var dumped = ""
        dump(key, to: &dumped)
        #expect(dumped.contains("32"))
        for leak in ["ab", "AB", "171", "q6ur"] {  // hex, decimal, base64 of 0xab bytes
            #expect(!dumped.contains(leak), "dump revealed \(leak): \(dumped)")
        }
    }

    @Test("equality compares contents and lengths")
    func equality() throws {
        let bytes: [UInt8] = Array(0...31)
        let key = try SecureBytes(copying: bytes)
        #expect(key.isEqual(to: try SecureBytes(copying: bytes)))
        #expect(key.isEqual(to: key))
        var lastDiffers = bytes
        lastDiffers[31] ^= 1
        #expect(!key.isEqual(to: try SecureBytes(copying: lastDiffers)))
        #expect(!key.isEqual(to: try SecureBytes(copying: Array(bytes.prefix(31)))))
        #expect(try SecureBytes(copying: []).isEqual(to: try SecureBytes(copying: [])))
    }

    @Test("secure bytes can be shared across concurrent tasks")
    func sendable() async throws {
        let key = try SecureBytes(count: 32)
        let encodings = await withTaskGroup(of: String.self) { group in
            for _ in 0..<8 {
                group.addTask { key.base64EncodedString() }
            }
            return await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(encodings == [key.base64EncodedString()])
    }
}
