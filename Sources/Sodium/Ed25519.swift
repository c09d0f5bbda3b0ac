import CSodium

/// Ed25519 signatures (RFC 8032), for audit checkpoints and deletion certificates.
public enum Ed25519 {
    /// Seed length in bytes: 32. Key files for signing keys hold the seed.
    public static let seedLength = Int(crypto_sign_SEEDBYTES)
    /// Public key length in bytes: 32.
    public static let publicKeyLength = Int(crypto_sign_PUBLICKEYBYTES)
    /// Signature length in bytes: 64.
    public static let signatureLength = Int(crypto_sign_BYTES)

    /// A private signing key and its public key.
    ///
    /// The secret half stays in ``SecureBytes``; only the public key is an ordinary array.
    /// Printing shows the public key only.
    public struct SigningKey: Sendable, CustomStringConvertible {
        /// The 32-byte public key that verifies this key's signatures.
        public let publicKey: [UInt8]
        /// libsodium's 64-byte secret key: the seed followed by the public key.
        private let secretKey: SecureBytes

        /// The key pair determined by `seed` (`crypto_sign_seed_keypair`), e.g. one read
        /// from a key file with ``SecureBytes/init(base64:count:)``.
        ///
        /// - Throws: ``SodiumError/Code/invalidKeyLength`` unless `seed` is 32 bytes.
        public init(seed: SecureBytes) throws(SodiumError) {
            LibSodium.require()
            guard seed.count == Ed25519.seedLength else { throw SodiumError(.invalidKeyLength) }
            var publicKey = [UInt8](repeating: 0, count: Ed25519.publicKeyLength)
            secretKey = try SecureBytes(count: Int(crypto_sign_SECRETKEYBYTES)) { output in
                seed.withBytePointer { seed in
                    // Always succeeds: any 32 bytes are a valid seed.
                    _ = crypto_sign_seed_keypair(
                        &publicKey, output.baseAddress!.assumingMemoryBound(to: UInt8.self), seed)
                }
            }
            self.publicKey = publicKey
        }

        /// A new key pair from a random seed. To keep the key, generate the seed with
        /// ``SecureBytes/init(count:)``, store it, and use ``init(seed:)`` instead.
        public static func generate() throws(SodiumError) -> SigningKey {
            try SigningKey(seed: SecureBytes(count: Ed25519.seedLength))
        }

        /// The detached 64-byte signature of `message`. Ed25519 signing is deterministic:
        /// the same key and message always give the same signature.
        public func sign(_ message: [UInt8]) -> [UInt8] {
            [UInt8](filling: Ed25519.signatureLength) { output in
                message.withBytePointer { message, messageLength in
                    secretKey.withBytePointer { secretKey in
                        _ = crypto_sign_detached(output, nil, message, UInt64(messageLength), secretKey)
                    }
                }
            }
        }

        public var description: String { "Ed25519.SigningKey(publicKey: \(Hex.encode(publicKey)))" }
    }

    /// Whether `signature` is a valid signature of `message` by the holder of `publicKey`.
    ///
    /// Inputs of the wrong length (from a corrupt or hostile export, say) are simply
    /// invalid, never a crash.
    public static func isValidSignature(
        _ signature: [UInt8], for message: [UInt8], publicKey: [UInt8]
    ) -> Bool {
        guard signature.count == signatureLength, publicKey.count == publicKeyLength else {
            return false
        }
        LibSodium.require()
        return signature.withBytePointer { signature, _ in
            message.withBytePointer { message, messageLength in
                publicKey.withBytePointer { publicKey, _ in
                    crypto_sign_verify_detached(signature, message, UInt64(messageLength), publicKey) == 0
                }
            }
        }
    }
}
