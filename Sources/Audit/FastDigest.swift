import Crypto

/// SHA-256 for the per-entry hot path (entry hashes, Merkle leaves and nodes) through
/// swift-crypto, whose BoringSSL core uses the CPU's SHA extensions: verification hashes every
/// entry of a chain about three times. libsodium's portable SHA-256 measured 13 µs for a 350-byte
/// entry on the (loaded) 2-core build machine; `openssl speed -evp sha256` ~0.25 µs for 256
/// bytes in the same minute. Same function, same bytes: only the speed differs.
enum FastDigest {
    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        Array(Crypto.SHA256.hash(data: bytes))
    }
}
