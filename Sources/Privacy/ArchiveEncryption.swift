import Foundation
import Sodium

/// Encryption of an export archive with libsodium's secretstream, in 64 KiB chunks (the last one
/// tagged final, so truncation is detected), in two layouts:
///
/// - for the subject (a download with a passphrase, `privacyctl export --passphrase-file`): Argon2id
///   derives the key. `PGWEXP01` · salt (16) · opslimit (u64 BE) · memlimit (u64 BE) · stream header (24) · chunks;
/// - at rest in the gateway's export directory: the key is derived from the subject's data key
///   (``atRestKey(subjectKey:)``), so crypto-shredding it at erasure makes every copy of the file
///   unreadable. `PGWARC01` · stream header (24) · chunks.
///
/// Each chunk is a u32 BE length and the sealed chunk.
public enum ArchiveEncryption {
    static let magic = Array("PGWEXP01".utf8)
    static let atRestMagic = Array("PGWARC01".utf8)
    static let chunkSize = 1 << 16

    public struct Limits: Sendable {
        public var opsLimit: UInt64
        public var memLimit: Int
        public init(opsLimit: UInt64 = Argon2id.interactiveOpsLimit, memLimit: Int = Argon2id.interactiveMemLimit) {
            self.opsLimit = opsLimit
            self.memLimit = memLimit
        }
        /// The cheapest limits libsodium accepts; for tests only.
        public static let testing = Limits(opsLimit: Argon2id.minimumOpsLimit, memLimit: Argon2id.minimumMemLimit)
    }

    /// Seals an archive chunk by chunk in the file format above, e.g. straight into an HTTP response.
    public struct Sealer: ~Copyable {
        private var encryptor: SecretStream.Encryptor
        /// The file's first bytes: magic, salt, limits and stream header.
        public let prefix: [UInt8]

        public init(passphrase: String, limits: Limits = Limits()) throws {
            let salt = Random.bytes(Argon2id.saltLength)
            let key = try Argon2id.deriveKey(passphrase: passphrase, salt: salt, length: SecretStream.keyLength,
                                             opsLimit: limits.opsLimit, memLimit: limits.memLimit)
            encryptor = try SecretStream.Encryptor(key: key)
            prefix = magic + salt + bigEndian(limits.opsLimit) + bigEndian(UInt64(limits.memLimit)) + encryptor.header
        }

        /// The at-rest layout, under a key from ``ArchiveEncryption/atRestKey(subjectKey:)``.
        public init(atRestKey key: SecureBytes) throws {
            encryptor = try SecretStream.Encryptor(key: key)
            prefix = atRestMagic + encryptor.header
        }

        /// One framed chunk (at most ``ArchiveEncryption/chunkSize`` bytes of plaintext); `final` for the last.
        public mutating func seal(_ chunk: UnsafeRawBufferPointer, final: Bool) -> [UInt8] {
            let sealed = encryptor.seal(chunk, final: final)
            return bigEndian32(UInt32(sealed.count)) + sealed
        }
    }

    /// Plaintext bytes per sealed chunk.
    public static let plaintextChunk = chunkSize

    /// The key an archive of the subject is sealed under at rest: a subkey of the subject's data
    /// key (Keyring), for this purpose only. Gone when that key is shredded.
    public static func atRestKey(subjectKey: SecureBytes) throws -> SecureBytes {
        try KeyDerivation.subkey(from: subjectKey, id: 1, context: "exparchv", length: SecretStream.keyLength)
    }

    /// Encrypts the file at `source` into `destination` in constant memory.
    public static func encrypt(source: String, destination: String, passphrase: String, limits: Limits = Limits()) throws {
        try encrypt(source: source, destination: destination, sealer: try Sealer(passphrase: passphrase, limits: limits))
    }

    /// Seals the file at `source` into `destination` in the at-rest layout, in constant memory.
    public static func sealAtRest(source: String, destination: String, key: SecureBytes) throws {
        try encrypt(source: source, destination: destination, sealer: try Sealer(atRestKey: key))
    }

    static func encrypt(source: String, destination: String, sealer: consuming Sealer) throws {
        guard let input = FileHandle(forReadingAtPath: source) else { throw PrivacyError(.archive, "cannot read \(source)") }
        defer { try? input.close() }
        let output = try BufferedFile(creating: destination)
        var sealer = sealer
        try output.write(sealer.prefix)
        var chunk = try input.read(upToCount: chunkSize) ?? Data()
        while true {
            let next = try input.read(upToCount: chunkSize) ?? Data()
            let framed = chunk.withUnsafeBytes { sealer.seal($0, final: next.isEmpty) }
            try output.write(framed)
            if next.isEmpty { break }
            chunk = next
        }
        try output.sync()
    }

    /// Whether the file starts like an encrypted archive.
    public static func isEncrypted(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: magic.count)).map { Array($0) == magic } ?? false
    }

    /// Decrypts `source` into `destination`; a wrong passphrase, tampering or truncation is
    /// ``PrivacyError/Code/archive`` and nothing usable is left behind.
    public static func decrypt(source: String, destination: String, passphrase: String) throws {
        guard let input = FileHandle(forReadingAtPath: source) else { throw PrivacyError(.archive, "cannot read \(source)") }
        defer { try? input.close() }
        func read(_ count: Int) throws -> [UInt8] {
            let data = try input.read(upToCount: count) ?? Data()
            guard data.count == count else { throw PrivacyError(.archive, "the encrypted archive is truncated") }
            return Array(data)
        }
        guard try read(magic.count) == magic else { throw PrivacyError(.archive, "not an encrypted export archive") }
        let salt = try read(Argon2id.saltLength)
        let opsLimit = fromBigEndian(try read(8))
        let memLimit = fromBigEndian(try read(8))
        let header = try read(SecretStream.headerLength)
        let key = try Argon2id.deriveKey(passphrase: passphrase, salt: salt, length: SecretStream.keyLength,
                                         opsLimit: opsLimit, memLimit: Int(memLimit))
        var decryptor = try SecretStream.Decryptor(key: key, header: header)
        let output = try BufferedFile(creating: destination)
        var finished = false
        do {
            while !finished {
                let lengthBytes = try input.read(upToCount: 4) ?? Data()
                guard lengthBytes.count == 4 else { throw PrivacyError(.archive, "the encrypted archive is truncated") }
                let length = Int(fromBigEndian(Array(lengthBytes)))
                guard length <= chunkSize + SecretStream.overhead else { throw PrivacyError(.archive, "malformed chunk") }
                let opened: (plaintext: [UInt8], final: Bool)
                do {
                    opened = try decryptor.open(try read(length))
                } catch is SodiumError {
                    throw PrivacyError(.archive, "wrong passphrase or tampered archive")
                }
                try output.write(opened.plaintext)
                finished = opened.final
            }
            try output.sync()
        } catch {
            unlink(destination)
            throw error
        }
    }

    /// Reads an archive sealed at rest, chunk by chunk (constant memory), e.g. straight into an
    /// HTTP response. Holds the open file: the archive may be unlinked once this is made.
    public final class AtRestReader: @unchecked Sendable {
        private let input: FileHandle
        private var decryptor: SecretStream.Decryptor
        private var finished = false

        /// - Throws: ``PrivacyError/Code/archive`` when the file is not a sealed archive or the key is not its key.
        public init(handle: FileHandle, key: SecureBytes) throws {
            input = handle
            let prefix = Array(try handle.read(upToCount: atRestMagic.count + SecretStream.headerLength) ?? Data())
            guard prefix.count == atRestMagic.count + SecretStream.headerLength, Array(prefix.prefix(atRestMagic.count)) == atRestMagic else {
                throw PrivacyError(.archive, "not an archive sealed at rest")
            }
            do {
                decryptor = try SecretStream.Decryptor(key: key, header: Array(prefix.suffix(SecretStream.headerLength)))
            } catch {
                throw PrivacyError(.archive, "the archive does not open with this key")
            }
        }

        /// The next plaintext chunk; nil after the final one.
        /// - Throws: ``PrivacyError/Code/archive`` for a wrong key, tampering or truncation.
        public func next() throws -> [UInt8]? {
            guard !finished else { return nil }
            let lengthBytes = Array(try input.read(upToCount: 4) ?? Data())
            guard lengthBytes.count == 4 else { throw PrivacyError(.archive, "the archive is truncated") }
            let length = Int(fromBigEndian(lengthBytes))
            guard length <= chunkSize + SecretStream.overhead else { throw PrivacyError(.archive, "malformed chunk") }
            let sealed = Array(try input.read(upToCount: length) ?? Data())
            guard sealed.count == length else { throw PrivacyError(.archive, "the archive is truncated") }
            do {
                let opened = try decryptor.open(sealed)
                finished = opened.final
                return opened.plaintext
            } catch {
                throw PrivacyError(.archive, "the archive does not open with this key, or was tampered with")
            }
        }

        public func close() { try? input.close() }

        /// Decrypts the whole archive into `destination` (for tests and tools).
        public func decrypt(to destination: String) throws {
            let output = try BufferedFile(creating: destination)
            do {
                while let chunk = try next() { try output.write(chunk) }
                try output.sync()
            } catch {
                unlink(destination)
                throw error
            }
        }
    }

    static func bigEndian(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) } }
    static func bigEndian32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
    static func fromBigEndian(_ bytes: [UInt8]) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }
}
