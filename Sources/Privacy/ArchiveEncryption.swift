import Foundation
import Sodium

/// Encryption of an export archive:
///
/// - for the subject (a download with a passphrase, `privacyctl export --passphrase-file`): the age
///   format with a passphrase (``AgeEncryption``), so the standard `age -d` opens it. Archives written
///   before, in this module's own `PGWEXP01` layout (Argon2id + secretstream: `PGWEXP01` · salt (16) ·
///   opslimit (u64 BE) · memlimit (u64 BE) · stream header (24) · chunks), still decrypt;
/// - at rest in the gateway's export directory: libsodium's secretstream in 64 KiB chunks (the last one
///   tagged final, so truncation is detected) under a key derived from the subject's data key
///   (``atRestKey(subjectKey:)``), so crypto-shredding it at erasure makes every copy of the file
///   unreadable. `PGWARC01` · stream header (24) · chunks, each a u32 BE length and the sealed chunk.
public enum ArchiveEncryption {
    /// The earlier passphrase layout (decrypt only).
    static let magic = Array("PGWEXP01".utf8)
    static let atRestMagic = Array("PGWARC01".utf8)
    static let chunkSize = 1 << 16

    /// The cost of a passphrase archive's key: scrypt with N = 2^`scryptLogN` (age's format).
    public struct Limits: Sendable {
        public var scryptLogN: Int
        public init(scryptLogN: Int = AgeEncryption.defaultLogN) {
            self.scryptLogN = scryptLogN
        }
        /// Cheap enough for tests (2^10, 1 MiB); never for real archives.
        public static let testing = Limits(scryptLogN: 10)
    }

    /// Seals an archive chunk by chunk in the at-rest layout.
    public struct Sealer: ~Copyable {
        private var encryptor: SecretStream.Encryptor
        /// The file's first bytes: magic and stream header.
        public let prefix: [UInt8]

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

    /// Encrypts the file at `source` into `destination` for the subject (age, passphrase), in constant memory.
    public static func encrypt(source: String, destination: String, passphrase: String, limits: Limits = Limits()) throws {
        try AgeEncryption.encrypt(source: source, destination: destination, passphrase: passphrase, logN: limits.scryptLogN)
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

    /// Whether the file starts like a passphrase-encrypted archive (age, or the earlier layout).
    public static func isEncrypted(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let start = Array((try? handle.read(upToCount: 32)) ?? Data())
        return AgeEncryption.isAgeFile(start) || start.starts(with: magic)
    }

    /// Decrypts a passphrase-encrypted archive (age, or the earlier `PGWEXP01` layout) from `source`
    /// into `destination`; a wrong passphrase, tampering or truncation is ``PrivacyError/Code/archive``
    /// and nothing usable is left behind.
    public static func decrypt(source: String, destination: String, passphrase: String) throws {
        guard let handle = FileHandle(forReadingAtPath: source) else { throw PrivacyError(.archive, "cannot read \(source)") }
        let start = Array((try? handle.read(upToCount: 32)) ?? Data())
        try? handle.close()
        if AgeEncryption.isAgeFile(start) {
            try AgeEncryption.decrypt(source: source, destination: destination, passphrase: passphrase)
        } else {
            try decryptEarlierLayout(source: source, destination: destination, passphrase: passphrase)
        }
    }

    /// The `PGWEXP01` layout, written before archives became age files.
    static func decryptEarlierLayout(source: String, destination: String, passphrase: String) throws {
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
        let key = try Argon2id.deriveKey(
            passphrase: passphrase, salt: salt, length: SecretStream.keyLength,
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
            guard prefix.count == atRestMagic.count + SecretStream.headerLength, Array(prefix.prefix(atRestMagic.count)) == atRestMagic
            else {
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
