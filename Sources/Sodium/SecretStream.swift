import CSodium

/// Authenticated encryption of a stream of chunks with libsodium's
/// `crypto_secretstream_xchacha20poly1305`: each chunk is sealed with its own tag, chunks cannot be
/// reordered, dropped or truncated unnoticed (the last one carries the `final` tag).
///
/// The 24-byte header (written first, not secret) starts the stream; the key is 32 bytes, e.g.
/// from ``Argon2id/deriveKey(passphrase:salt:length:opsLimit:memLimit:)``.
public enum SecretStream {
    public static let keyLength = Int(crypto_secretstream_xchacha20poly1305_KEYBYTES)
    public static let headerLength = Int(crypto_secretstream_xchacha20poly1305_HEADERBYTES)
    /// Bytes a sealed chunk is longer than its plaintext.
    public static let overhead = Int(crypto_secretstream_xchacha20poly1305_ABYTES)

    /// Seals chunks in order; call ``seal(_:final:)`` with `final: true` for the last one.
    public struct Encryptor: ~Copyable {
        private var state = crypto_secretstream_xchacha20poly1305_state()
        /// Write this first; the decryptor needs it.
        public let header: [UInt8]

        public init(key: SecureBytes) throws(SodiumError) {
            LibSodium.require()
            guard key.count == SecretStream.keyLength else { throw SodiumError(.invalidKeyLength) }
            var header = [UInt8](repeating: 0, count: SecretStream.headerLength)
            var state = crypto_secretstream_xchacha20poly1305_state()
            let status = key.withUnsafeBytes { key in
                crypto_secretstream_xchacha20poly1305_init_push(
                    &state, &header, key.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            guard status == 0 else { throw SodiumError(.invalidKeyLength) }
            self.state = state
            self.header = header
        }

        public mutating func seal(_ chunk: UnsafeRawBufferPointer, final: Bool) -> [UInt8] {
            var output = [UInt8](repeating: 0, count: chunk.count + SecretStream.overhead)
            var length: UInt64 = 0
            let tag = UInt8(final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
            _ = crypto_secretstream_xchacha20poly1305_push(
                &state, &output, &length, chunk.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(chunk.count),
                nil, 0, tag)
            output.removeLast(output.count - Int(length))
            return output
        }

        public mutating func seal(_ chunk: [UInt8], final: Bool) -> [UInt8] {
            chunk.withUnsafeBytes { seal($0, final: final) }
        }
    }

    /// Opens chunks in order; ``open(_:)`` reports whether the chunk was the final one.
    public struct Decryptor: ~Copyable {
        private var state = crypto_secretstream_xchacha20poly1305_state()

        public init(key: SecureBytes, header: [UInt8]) throws(SodiumError) {
            LibSodium.require()
            guard key.count == SecretStream.keyLength else { throw SodiumError(.invalidKeyLength) }
            guard header.count == SecretStream.headerLength else { throw SodiumError(.invalidNonceLength) }
            var state = crypto_secretstream_xchacha20poly1305_state()
            let status = key.withUnsafeBytes { key in
                crypto_secretstream_xchacha20poly1305_init_pull(
                    &state, header, key.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            guard status == 0 else { throw SodiumError(.authenticationFailed) }
            self.state = state
        }

        /// - Throws: ``SodiumError/Code/authenticationFailed`` for a wrong key, a tampered or
        ///   reordered chunk.
        public mutating func open(_ sealed: [UInt8]) throws(SodiumError) -> (plaintext: [UInt8], final: Bool) {
            guard sealed.count >= SecretStream.overhead else { throw SodiumError(.authenticationFailed) }
            var output = [UInt8](repeating: 0, count: sealed.count - SecretStream.overhead)
            var length: UInt64 = 0
            var tag: UInt8 = 0
            let status = crypto_secretstream_xchacha20poly1305_pull(
                &state, &output, &length, &tag, sealed, UInt64(sealed.count), nil, 0)
            guard status == 0 else { throw SodiumError(.authenticationFailed) }
            output.removeLast(output.count - Int(length))
            return (output, tag == UInt8(crypto_secretstream_xchacha20poly1305_TAG_FINAL))
        }
    }
}
