import Sodium
import Testing

@Suite("Constant-time comparison")
struct ConstantTimeTests {
    @Test("equal byte arrays compare equal")
    func equal() {
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(ConstantTime.equals([], []))
    }

    @Test("arrays differing in any byte compare unequal")
    func unequal() {
        #expect(!ConstantTime.equals([1, 2, 3], [0, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
    }

    @Test("arrays of different lengths compare unequal, even when one is a prefix")
    func differentLengths() {
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2]))
        #expect(!ConstantTime.equals([], [0]))
    }
}

@Suite("HMAC-SHA-256 checks")
struct HMACSHA256Tests {
    @Test("a MAC is valid for its message and key only")
    func validity() throws {
        let key = try SecureBytes(count: 32)
        let message = Array("user@example.com".utf8)
        let mac = HMACSHA256.authenticate(message, key: key)
        #expect(mac.count == HMACSHA256.macLength)
        #expect(HMACSHA256.isValid(mac, for: message, key: key))
        #expect(!HMACSHA256.isValid(flippingBit(5, of: mac), for: message, key: key))
        #expect(!HMACSHA256.isValid(mac, for: message + [0], key: key))
        #expect(!HMACSHA256.isValid(mac, for: message, key: try SecureBytes(count: 32)))
    }

    @Test("a MAC of the wrong length is invalid")
    func wrongLength() throws {
        let key = try SecureBytes(count: 32)
        let mac = HMACSHA256.authenticate([1, 2, 3], key: key)
        #expect(!HMACSHA256.isValid(Array(mac.prefix(16)), for: [1, 2, 3], key: key))
        #expect(!HMACSHA256.isValid([], for: [1, 2, 3], key: key))
    }

    @Test("an empty key is allowed, as RFC 2104 permits")
    func emptyKey() throws {
        let mac = HMACSHA256.authenticate(Array("abc".utf8), key: try SecureBytes(copying: []))
        #expect(Hex.encode(mac) == "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351")  // Python hmac
    }
}

@Suite("Streaming SHA-256")
struct SHA256HasherTests {
    @Test("hashing in pieces gives the same digest as hashing at once")
    func pieces() {
        var hasher = SHA256.Hasher()
        hasher.update(Array("a".utf8))
        hasher.update([])
        hasher.update(Array("bc".utf8))
        #expect(hasher.finalize() == SHA256.hash(Array("abc".utf8)))
    }

    @Test("raw buffers can be fed without copying into an array")
    func rawBuffer() {
        let bytes = Array("abc".utf8)
        var hasher = SHA256.Hasher()
        bytes.withUnsafeBytes { hasher.update($0) }
        hasher.update(UnsafeRawBufferPointer(start: nil, count: 0))
        #expect(hasher.finalize() == SHA256.hash(bytes))
    }

    @Test("finalizing does not end the hasher: later input extends the same stream")
    func finalizeIsNotDestructive() {
        var hasher = SHA256.Hasher()
        hasher.update(Array("ab".utf8))
        #expect(hasher.finalize() == SHA256.hash(Array("ab".utf8)))
        hasher.update(Array("c".utf8))
        #expect(hasher.finalize() == SHA256.hash(Array("abc".utf8)))
    }
}

@Suite("Hex")
struct HexTests {
    @Test("bytes encode as lowercase hex, two digits each")
    func encode() {
        #expect(Hex.encode([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
        #expect(Hex.encode([]) == "")
    }

    @Test("upper- and lowercase hex decode to the same bytes")
    func decode() {
        #expect(Hex.decode("000fa0ff") == [0x00, 0x0f, 0xa0, 0xff])
        #expect(Hex.decode("000FA0FF") == [0x00, 0x0f, 0xa0, 0xff])
        #expect(Hex.decode("") == [])
    }

    @Test("odd lengths and non-hex characters do not decode", arguments: ["0", "abc", "0g", "zz", " 00", "00 ", "0x00", "éé"])
    func rejects(text: String) {
        #expect(Hex.decode(text) == nil)
    }

    @Test("every byte value survives a round trip")
    func roundTrip() {
        let all = Array(UInt8.min...UInt8.max)
        #expect(Hex.decode(Hex.encode(all)) == all)
    }
}

@Suite("Randomness and initialisation")
struct RandomTests {
    @Test("libsodium initialises without error, however often it is asked")
    func initialization() throws {
        try LibSodium.ensureInitialized()
        try LibSodium.ensureInitialized()
    }

    @Test("random bytes have the requested length and differ between calls")
    func bytes() {
        #expect(Random.bytes(0) == [])
        #expect(Random.bytes(32).count == 32)
        #expect(Random.bytes(32) != Random.bytes(32))
    }

    @Test("uniform values stay below the bound")
    func uniform() {
        #expect(Random.uniform(1) == 0)
        for _ in 0..<1000 {
            #expect(Random.uniform(10) < 10)
        }
        let seen = Set((0..<1000).map { _ in Random.uniform(4) })
        #expect(seen == [0, 1, 2, 3])
    }
}
