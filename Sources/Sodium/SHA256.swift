import CSodium

/// SHA-256 (FIPS 180-4), for audit hash chains and export manifests.
///
/// Not for passwords (use ``Argon2id``) and not for authenticating with a secret (use
/// ``HMACSHA256``).
public enum SHA256 {
    /// Digest length in bytes: 32.
    public static let digestLength = Int(crypto_hash_sha256_BYTES)

    /// The digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var hasher = Hasher()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// Incremental SHA-256, for input that arrives in pieces (large exports streamed from
    /// the database) and should not be held in memory at once.
    ///
    /// A value type: copying a hasher forks it, and ``finalize()`` does not consume it,
    /// so a digest of a prefix can be taken and hashing continued.
    public struct Hasher: Sendable {
        private var state = crypto_hash_sha256_state()

        /// A hasher that has seen no input.
        public init() {
            LibSodium.require()
            _ = crypto_hash_sha256_init(&state)
        }

        /// Feeds `bytes` into the hash.
        public mutating func update(_ bytes: [UInt8]) {
            bytes.withBytePointer { pointer, count in
                _ = crypto_hash_sha256_update(&state, pointer, UInt64(count))
            }
        }

        /// Feeds the bytes in `buffer` into the hash, e.g. straight from an I/O buffer
        /// without copying into an array first.
        public mutating func update(_ buffer: UnsafeRawBufferPointer) {
            guard let base = buffer.baseAddress, buffer.count > 0 else { return }
            _ = crypto_hash_sha256_update(
                &state, base.assumingMemoryBound(to: UInt8.self), UInt64(buffer.count))
        }

        /// The digest of everything fed in so far. The hasher itself is unchanged.
        public func finalize() -> [UInt8] {
            // libsodium's final step pads the state in place; work on a copy.
            var state = state
            return [UInt8](filling: SHA256.digestLength) { output in
                _ = crypto_hash_sha256_final(&state, output)
            }
        }
    }
}
