import Sodium
import Testing

/// Bytes from a hex literal in a test vector; fails the test (not the process) on a typo.
func unhex(_ text: String) throws -> [UInt8] {
    try #require(Hex.decode(text), "test vector is not hex: \(text)")
}

/// A key held in secure memory, from a hex test vector.
func secureKey(hex text: String) throws -> SecureBytes {
    try SecureBytes(copying: unhex(text))
}

/// The same bytes with one bit flipped, for tampering tests.
func flippingBit(_ bit: Int, of bytes: [UInt8]) -> [UInt8] {
    var copy = bytes
    copy[bit / 8] ^= 1 << UInt8(bit % 8)
    return copy
}
