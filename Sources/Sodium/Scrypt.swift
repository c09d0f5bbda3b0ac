import CSodium

/// scrypt (RFC 7914) with explicit parameters, libsodium's `crypto_pwhash_scryptsalsa208sha256_ll`.
///
/// Only for formats that name scrypt, such as the age file format's passphrase recipient
/// (`N = 2^logN`, `r = 8`, `p = 1`); everything of this product's own uses Argon2id (``Argon2id``).
/// Memory is `128 · r · N` bytes: 256 MiB at age's default `logN = 18`.
public enum Scrypt {
    /// The largest work factor accepted (`N = 2^22`, 4 GiB with `r = 8`): what the age tool
    /// accepts by default when decrypting, so a file cannot make a reader allocate more.
    public static let maximumLogN = 22

    /// The scrypt key of `passphrase` and `salt` with `N = 2^logN`, `r`, `p`, `length` bytes,
    /// straight into secure memory.
    ///
    /// - Throws: ``SodiumError/Code/derivationFailed`` for parameters out of range (`logN` not in
    ///   1…``maximumLogN``, `r`, `p` not positive) or when the memory cannot be allocated.
    public static func deriveKey(
        passphrase: String, salt: [UInt8], logN: Int, r: UInt32 = 8, p: UInt32 = 1, length: Int = 32
    ) throws(SodiumError) -> SecureBytes {
        LibSodium.require()
        guard (1...maximumLogN).contains(logN), r > 0, p > 0, length > 0 else { throw SodiumError(.derivationFailed) }
        var passphrase = passphrase
        let result = passphrase.withUTF8 { utf8 in
            Result { () throws(SodiumError) in
                try SecureBytes(count: length) { (output) throws(SodiumError) in
                    let status = salt.withBytePointer { salt, saltLength in
                        // libsodium wants a non-null pointer even for an empty passphrase.
                        withUnsafePointer(to: UInt8(0)) { empty in
                            crypto_pwhash_scryptsalsa208sha256_ll(
                                utf8.baseAddress ?? empty, utf8.count, salt, saltLength,
                                UInt64(1) << UInt64(logN), r, p,
                                output.baseAddress!.assumingMemoryBound(to: UInt8.self), length)
                        }
                    }
                    guard status == 0 else { throw SodiumError(.derivationFailed) }
                }
            }
        }
        return try result.get()
    }
}
