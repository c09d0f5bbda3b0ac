import CSodium

/// Comparisons whose running time does not depend on the bytes compared.
public enum ConstantTime {
    /// Whether `a` and `b` hold the same bytes.
    ///
    /// Use for MACs, tokens and other secrets checked against user input, where an ordinary
    /// `==` that stops at the first difference would let an attacker guess byte by byte.
    /// Arrays of different lengths are unequal without looking at their contents; only the
    /// lengths, which are not secret, affect the time taken.
    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        LibSodium.require()
        return a.withBytePointer { left, count in
            b.withBytePointer { right, _ in sodium_memcmp(left, right, count) == 0 }
        }
    }
}
