import CSodium

/// Subkeys from a master key (libsodium `crypto_kdf`, BLAKE2b-based).
///
/// Each subkey is BLAKE2b keyed with the master key, with the subkey id and the context as
/// salt and personalisation, so subkeys reveal nothing about the master or each other.
public enum KeyDerivation {
    /// Required master key length: 32 bytes.
    public static let masterKeyLength = Int(crypto_kdf_KEYBYTES)
    /// Supported subkey lengths: 16...64 bytes.
    public static let subkeyLengths = Int(crypto_kdf_BYTES_MIN)...Int(crypto_kdf_BYTES_MAX)
    /// Required context length: exactly 8 ASCII characters.
    public static let contextLength = Int(crypto_kdf_CONTEXTBYTES)

    /// Derives subkey number `id` for `context` from `master`.
    ///
    /// The same inputs always give the same subkey; a different id or context gives an
    /// unrelated one. The context names the purpose (e.g. `"auditkey"`), so keys for
    /// different purposes never coincide even with equal ids.
    ///
    /// - Throws: ``SodiumError/Code/invalidKeyLength`` if `master` is not 32 bytes,
    ///   ``SodiumError/Code/invalidContext`` unless `context` is 8 ASCII characters,
    ///   ``SodiumError/Code/invalidOutputLength`` if `length` is outside 16...64.
    public static func subkey(
        from master: SecureBytes,
        id: UInt64,
        context: String,
        length: Int = 32
    ) throws(SodiumError) -> SecureBytes {
        LibSodium.require()
        guard master.count == masterKeyLength else { throw SodiumError(.invalidKeyLength) }
        let contextBytes = Array(context.utf8)
        guard contextBytes.count == contextLength, contextBytes.allSatisfy({ $0 < 0x80 }) else {
            throw SodiumError(.invalidContext)
        }
        guard subkeyLengths.contains(length) else { throw SodiumError(.invalidOutputLength) }

        return try SecureBytes(count: length) { (output) throws(SodiumError) in
            let status = contextBytes.withUnsafeBufferPointer { context in
                context.withMemoryRebound(to: CChar.self) { context in
                    master.withBytePointer { master in
                        crypto_kdf_derive_from_key(
                            output.baseAddress!.assumingMemoryBound(to: UInt8.self), length,
                            id, context.baseAddress!, master)
                    }
                }
            }
            guard status == 0 else { throw SodiumError(.derivationFailed) }
        }
    }
}
