import CSodium

/// Keys from passphrases with Argon2id v1.3 (libsodium `crypto_pwhash`), which is slow
/// and memory-hard on purpose so that guessing passphrases offline is expensive.
///
/// The same passphrase, salt, length and limits always give the same key, so all of them
/// must be stored (the salt is not secret) to derive the key again.
public enum Argon2id {
    /// Required salt length: 16 bytes. Use a fresh ``Random/bytes(_:)`` salt per key.
    public static let saltLength = Int(crypto_pwhash_SALTBYTES)
    /// Shortest derivable key: 16 bytes.
    public static let minimumKeyLength = Int(crypto_pwhash_BYTES_MIN)

    /// Interactive limits (2 passes, 64 MiB): the default; well under a second.
    public static let interactiveOpsLimit = UInt64(crypto_pwhash_OPSLIMIT_INTERACTIVE)
    /// Memory for the interactive limits, in bytes (64 MiB).
    public static let interactiveMemLimit = Int(crypto_pwhash_MEMLIMIT_INTERACTIVE)
    /// Moderate limits (3 passes, 256 MiB): stronger, for keys derived rarely, such as a
    /// root key at start-up; about 0.6 s.
    public static let moderateOpsLimit = UInt64(crypto_pwhash_OPSLIMIT_MODERATE)
    /// Memory for the moderate limits, in bytes (256 MiB).
    public static let moderateMemLimit = Int(crypto_pwhash_MEMLIMIT_MODERATE)
    /// The smallest accepted limits (1 pass, 8 KiB). Offer no protection; for tests only.
    public static let minimumOpsLimit = UInt64(crypto_pwhash_OPSLIMIT_MIN)
    /// The smallest accepted memory limit, in bytes (8 KiB). For tests only.
    public static let minimumMemLimit = Int(crypto_pwhash_MEMLIMIT_MIN)

    /// Derives a `length`-byte key from `passphrase` and `salt`.
    ///
    /// The caller's passphrase array cannot be reliably zeroed here; drop it promptly.
    ///
    /// - Throws: ``SodiumError/Code/invalidSaltLength`` unless `salt` is 16 bytes,
    ///   ``SodiumError/Code/invalidOutputLength`` if `length` is below 16,
    ///   ``SodiumError/Code/derivationFailed`` if the limits are out of range or the
    ///   memory could not be allocated.
    public static func deriveKey(
        passphrase: [UInt8],
        salt: [UInt8],
        length: Int = 32,
        opsLimit: UInt64 = interactiveOpsLimit,
        memLimit: Int = interactiveMemLimit
    ) throws(SodiumError) -> SecureBytes {
        try passphrase.withBytePointer { (pointer, count) throws(SodiumError) in
            try derive(
                UnsafeBufferPointer(start: pointer, count: count),
                salt: salt, length: length, opsLimit: opsLimit, memLimit: memLimit)
        }
    }

    /// Derives a key from the UTF-8 bytes of `passphrase`, exactly as the `[UInt8]`
    /// overload does with `Array(passphrase.utf8)`.
    ///
    /// The bytes are read in place without an extra copy, but the string itself cannot be
    /// zeroed. No Unicode normalisation is applied: the same passphrase typed with a
    /// different normalisation gives a different key.
    public static func deriveKey(
        passphrase: String,
        salt: [UInt8],
        length: Int = 32,
        opsLimit: UInt64 = interactiveOpsLimit,
        memLimit: Int = interactiveMemLimit
    ) throws(SodiumError) -> SecureBytes {
        var passphrase = passphrase
        // String.withUTF8 only rethrows untyped errors; carry the result out instead.
        let result = passphrase.withUTF8 { utf8 in
            Result { () throws(SodiumError) in
                try derive(utf8, salt: salt, length: length, opsLimit: opsLimit, memLimit: memLimit)
            }
        }
        return try result.get()
    }

    private static func derive(
        _ passphrase: UnsafeBufferPointer<UInt8>,
        salt: [UInt8],
        length: Int,
        opsLimit: UInt64,
        memLimit: Int
    ) throws(SodiumError) -> SecureBytes {
        LibSodium.require()
        guard salt.count == saltLength else { throw SodiumError(.invalidSaltLength) }
        guard length >= minimumKeyLength else { throw SodiumError(.invalidOutputLength) }

        return try SecureBytes(count: length) { (output) throws(SodiumError) in
            // crypto_pwhash wants non-null pointers even for an empty passphrase.
            let status = withUnsafePointer(to: CChar(0)) { empty in
                passphrase.withMemoryRebound(to: CChar.self) { chars in
                    salt.withBytePointer { salt, _ in
                        crypto_pwhash(
                            output.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(length),
                            chars.baseAddress ?? empty, UInt64(chars.count),
                            salt, opsLimit, memLimit, crypto_pwhash_ALG_ARGON2ID13)
                    }
                }
            }
            guard status == 0 else { throw SodiumError(.derivationFailed) }
        }
    }
}
