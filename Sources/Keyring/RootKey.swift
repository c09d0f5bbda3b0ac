import Foundation
import Sodium

/// Where the root key comes from: a key file's 32 bytes, or a passphrase stretched with Argon2id.
///
/// A passphrase's salt and Argon2id limits are kept in `keyring.root_keys` (they are not
/// secret), so the same passphrase gives the same root key on every start.
public enum RootKeySource: Sendable {
    case key(SecureBytes)
    case passphrase(String)

    /// Passphrases shorter than this are refused.
    public static let minimumPassphraseLength = 12
}

/// The root key, in secure memory, with the version under which it is registered.
struct RootKey: Sendable {
    let key: SecureBytes
    let version: Int

    /// HMAC-SHA-256 of a fixed label under a subkey of the root key: identifies a root key
    /// without revealing anything about it. Stored in `keyring.root_keys.fingerprint`.
    static func fingerprint(of key: SecureBytes) throws -> [UInt8] {
        let subkey = try KeyDerivation.subkey(from: key, id: 3, context: "rootfpr_")
        return HMACSHA256.authenticate(Array("privacy-gateway root key fingerprint v1".utf8), key: subkey)
    }
}
