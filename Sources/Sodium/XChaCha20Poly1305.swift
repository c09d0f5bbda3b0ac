import CSodium

/// Authenticated encryption with XChaCha20-Poly1305 (IETF variant, libsodium's
/// `crypto_aead_xchacha20poly1305_ietf_*`).
///
/// The 24-byte nonce is long enough to be chosen at random for every message without a
/// realistic chance of repetition, which is why it is the AEAD for stored secrets.
/// Associated data is authenticated but not encrypted: bind a ciphertext to where it
/// belongs (tenant, row, version) so that it does not open anywhere else.
public enum XChaCha20Poly1305 {
    /// Key length in bytes: 32.
    public static let keyLength = Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES)
    /// Nonce length in bytes: 24.
    public static let nonceLength = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    /// Length of the authentication tag appended to every ciphertext: 16.
    public static let tagLength = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)

    /// Encrypts and authenticates `plaintext`, and authenticates `associatedData`.
    ///
    /// - Parameter nonce: leave nil to get a fresh random nonce, which is what callers
    ///   should do. Passing one exists for test vectors; reusing a nonce with the same key
    ///   destroys confidentiality and authenticity.
    /// - Returns: the nonce used (store it with the ciphertext) and the ciphertext, which is
    ///   `plaintext.count + tagLength` bytes (the tag is at the end).
    /// - Throws: ``SodiumError/Code/invalidKeyLength`` or ``SodiumError/Code/invalidNonceLength``.
    public static func seal(
        _ plaintext: [UInt8],
        key: SecureBytes,
        associatedData: [UInt8],
        nonce: [UInt8]? = nil
    ) throws(SodiumError) -> (nonce: [UInt8], ciphertext: [UInt8]) {
        LibSodium.require()
        guard key.count == keyLength else { throw SodiumError(.invalidKeyLength) }
        let nonce = nonce ?? Random.bytes(nonceLength)
        guard nonce.count == nonceLength else { throw SodiumError(.invalidNonceLength) }

        let ciphertext = [UInt8](filling: plaintext.count + tagLength) { output in
            plaintext.withBytePointer { message, messageLength in
                associatedData.withBytePointer { data, dataLength in
                    nonce.withBytePointer { nonce, _ in
                        key.withBytePointer { key in
                            // Cannot fail for in-range lengths; the written length is
                            // always messageLength + tagLength.
                            _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                                output, nil,
                                message, UInt64(messageLength),
                                data, UInt64(dataLength),
                                nil, nonce, key)
                        }
                    }
                }
            }
        }
        return (nonce, ciphertext)
    }

    /// Verifies and decrypts a ciphertext produced by ``seal(_:key:associatedData:nonce:)``.
    ///
    /// Nothing is decrypted unless the tag verifies, so on failure no plaintext exists.
    ///
    /// - Throws: ``SodiumError/Code/authenticationFailed`` if the key, nonce or associated
    ///   data differ from sealing or any byte was changed (a ciphertext shorter than the tag
    ///   included); ``SodiumError/Code/invalidKeyLength`` or
    ///   ``SodiumError/Code/invalidNonceLength`` for malformed inputs.
    public static func open(
        _ ciphertext: [UInt8],
        nonce: [UInt8],
        key: SecureBytes,
        associatedData: [UInt8]
    ) throws(SodiumError) -> [UInt8] {
        LibSodium.require()
        guard key.count == keyLength else { throw SodiumError(.invalidKeyLength) }
        guard nonce.count == nonceLength else { throw SodiumError(.invalidNonceLength) }
        guard ciphertext.count >= tagLength else { throw SodiumError(.authenticationFailed) }

        var status: Int32 = -1
        let plaintext = [UInt8](filling: ciphertext.count - tagLength) { output in
            ciphertext.withBytePointer { sealed, sealedLength in
                associatedData.withBytePointer { data, dataLength in
                    nonce.withBytePointer { nonce, _ in
                        key.withBytePointer { key in
                            status = crypto_aead_xchacha20poly1305_ietf_decrypt(
                                output, nil, nil,
                                sealed, UInt64(sealedLength),
                                data, UInt64(dataLength),
                                nonce, key)
                        }
                    }
                }
            }
        }
        guard status == 0 else { throw SodiumError(.authenticationFailed) }
        return plaintext
    }

    // MARK: - Keys wrapped by keys

    /// Seals a key held in secure memory (key wrapping): like ``seal(_:key:associatedData:nonce:)``
    /// but the plaintext never passes through an ordinary Swift array.
    public static func wrap(
        _ secret: SecureBytes, key: SecureBytes, associatedData: [UInt8]
    ) throws(SodiumError) -> (nonce: [UInt8], ciphertext: [UInt8]) {
        LibSodium.require()
        guard key.count == keyLength else { throw SodiumError(.invalidKeyLength) }
        let nonce = Random.bytes(nonceLength)
        let ciphertext = [UInt8](filling: secret.count + tagLength) { output in
            secret.withBytePointer { message in
                associatedData.withBytePointer { data, dataLength in
                    nonce.withBytePointer { nonce, _ in
                        key.withBytePointer { key in
                            _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                                output, nil, message, UInt64(secret.count), data, UInt64(dataLength), nil, nonce, key)
                        }
                    }
                }
            }
        }
        return (nonce, ciphertext)
    }

    /// Opens a key sealed by ``wrap(_:key:associatedData:)`` straight into secure memory.
    ///
    /// - Throws: ``SodiumError/Code/authenticationFailed`` if anything differs from wrapping.
    public static func unwrap(
        _ ciphertext: [UInt8], nonce: [UInt8], key: SecureBytes, associatedData: [UInt8]
    ) throws(SodiumError) -> SecureBytes {
        LibSodium.require()
        guard key.count == keyLength else { throw SodiumError(.invalidKeyLength) }
        guard nonce.count == nonceLength else { throw SodiumError(.invalidNonceLength) }
        guard ciphertext.count >= tagLength else { throw SodiumError(.authenticationFailed) }
        return try SecureBytes(count: ciphertext.count - tagLength) { (output) throws(SodiumError) in
            let status = ciphertext.withBytePointer { sealed, sealedLength in
                associatedData.withBytePointer { data, dataLength in
                    nonce.withBytePointer { nonce, _ in
                        key.withBytePointer { key in
                            crypto_aead_xchacha20poly1305_ietf_decrypt(
                                output.baseAddress?.assumingMemoryBound(to: UInt8.self), nil, nil,
                                sealed, UInt64(sealedLength), data, UInt64(dataLength), nonce, key)
                        }
                    }
                }
            }
            guard status == 0 else { throw SodiumError(.authenticationFailed) }
        }
    }
}
