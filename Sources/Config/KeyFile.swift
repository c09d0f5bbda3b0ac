import Foundation
import Keyring
import Sodium

/// Key files: 32 random bytes, standard base64 on one line, mode 0600 (DESIGN.md §6).
/// Used for the root key and the Ed25519 signing seed.
public enum KeyFile {
    /// Writes a new random key. Refuses to overwrite an existing file: losing a root key loses every secret.
    public static func generate(at path: String) throws {
        let key = try SecureBytes(count: 32)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ConfigurationError("cannot write key file \(path): directory \(directory) does not exist")
        }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else {
            let reason = errno == EEXIST ? "the file already exists (refusing to overwrite a key)" : String(cString: strerror(errno))
            throw ConfigurationError("cannot write key file \(path): \(reason)")
        }
        defer { close(descriptor) }
        let line = Array((key.base64EncodedString() + "\n").utf8)
        let written = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == line.count, fsync(descriptor) == 0 else {
            unlink(path)
            throw ConfigurationError("cannot write key file \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Loads a key, refusing files that others can read and contents that are not a 32-byte key.
    public static func load(_ path: String, purpose: String) throws -> SecureBytes {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ConfigurationError(
                "\(purpose) file \(path) cannot be read: \(String(cString: strerror(errno)))",
                hint: "create one with: privacyctl keys generate --out \(path)")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw ConfigurationError(
                "\(purpose) file \(path) is readable by other users (mode \(String(info.st_mode & 0o777, radix: 8)))",
                hint: "chmod 600 \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("\(purpose) file \(path) cannot be read")
        }
        do {
            return try SecureBytes(base64: String(decoding: data, as: UTF8.self), count: 32)
        } catch {
            throw ConfigurationError(
                "\(purpose) file \(path) does not hold a 32-byte key in base64 on one line",
                hint: "create one with: privacyctl keys generate --out FILE")
        }
    }
}

extension KeyFile {
    /// The root key's source: the key file if given, else the passphrase file (one line, mode
    /// 0600, at least 12 characters), else a configuration error that says how to make one.
    public static func rootKeySource(keyFile: String?, passphraseFile: String?) throws -> RootKeySource {
        if let keyFile {
            return .key(try load(keyFile, purpose: "root key"))
        }
        guard let passphraseFile else {
            throw ConfigurationError(
                "no root key: set PRIVACY_ROOT_KEY_FILE (or PRIVACY_ROOT_PASSPHRASE_FILE)",
                hint: "create one with: privacyctl keys generate --out root.key")
        }
        var info = stat()
        guard stat(passphraseFile, &info) == 0, let data = FileManager.default.contents(atPath: passphraseFile) else {
            throw ConfigurationError("root passphrase file \(passphraseFile) cannot be read")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw ConfigurationError(
                "root passphrase file \(passphraseFile) is readable by other users (mode \(String(info.st_mode & 0o777, radix: 8)))",
                hint: "chmod 600 \(passphraseFile)")
        }
        let passphrase = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        guard passphrase.count >= RootKeySource.minimumPassphraseLength else {
            throw ConfigurationError(
                "root passphrase file \(passphraseFile) holds fewer than \(RootKeySource.minimumPassphraseLength) characters")
        }
        return .passphrase(passphrase)
    }
}
