import CSodium

/// Random values from the operating system's CSPRNG, through libsodium.
public enum Random {
    /// `count` unpredictable bytes (`randombytes_buf`), e.g. for salts and tokens.
    /// For keys use ``SecureBytes/init(count:)``, which never puts them in an array.
    public static func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "Random.bytes count must not be negative")
        LibSodium.require()
        return [UInt8](filling: count) { randombytes_buf($0, count) }
    }

    /// A uniformly distributed value in `0..<upperBound` (`randombytes_uniform`, which
    /// avoids the modulo bias of `random % upperBound`).
    public static func uniform(_ upperBound: UInt32) -> UInt32 {
        // Matches Swift's `random(in: 0..<0)`: an empty range is a programming error.
        precondition(upperBound > 0, "Random.uniform upper bound must be greater than zero")
        LibSodium.require()
        return randombytes_uniform(upperBound)
    }
}
