import CSodium

/// HMAC-SHA-256 (RFC 2104), e.g. for pseudonymising sensitive values in audit entries
/// with a per-tenant key.
public enum HMACSHA256 {
    /// MAC length in bytes: 32.
    public static let macLength = Int(crypto_auth_hmacsha256_BYTES)

    /// The HMAC-SHA-256 of `message` under `key`.
    ///
    /// Any key length works, as RFC 2104 specifies (keys longer than 64 bytes are hashed
    /// first). This goes through `crypto_auth_hmacsha256_init` rather than
    /// `crypto_auth_hmacsha256`, which accepts only 32-byte keys.
    public static func authenticate(_ message: [UInt8], key: SecureBytes) -> [UInt8] {
        LibSodium.require()
        var state = crypto_auth_hmacsha256_state()
        // The state holds key-derived pads; wipe it so the key does not linger on the stack.
        defer { sodium_memzero(&state, MemoryLayout.size(ofValue: state)) }
        key.withBytePointer { keyBytes in
            _ = crypto_auth_hmacsha256_init(&state, keyBytes, key.count)
        }
        message.withBytePointer { pointer, count in
            _ = crypto_auth_hmacsha256_update(&state, pointer, UInt64(count))
        }
        return [UInt8](filling: macLength) { output in
            _ = crypto_auth_hmacsha256_final(&state, output)
        }
    }

    /// Whether `mac` is the HMAC-SHA-256 of `message` under `key`, compared in constant
    /// time. A `mac` of the wrong length is simply invalid.
    public static func isValid(_ mac: [UInt8], for message: [UInt8], key: SecureBytes) -> Bool {
        ConstantTime.equals(mac, authenticate(message, key: key))
    }
}
