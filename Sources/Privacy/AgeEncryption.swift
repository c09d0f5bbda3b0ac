import Crypto
import Foundation
import Sodium

/// The age file format (age-encryption.org/v1, https://age-encryption.org/v1) with one passphrase
/// recipient: how an export is encrypted for the data subject, so that the standard `age -d` opens it
/// (Debian package `age`, or any of its implementations) and they need nothing from us.
///
/// Built from the primitives the spec names, none hand-rolled: scrypt from libsodium (``Scrypt``),
/// ChaCha20-Poly1305, HKDF-SHA-256 and HMAC-SHA-256 from swift-crypto.
///
/// - header: `age-encryption.org/v1`, one stanza `-> scrypt SALT LOGN` whose body is the 16-byte file
///   key sealed with ChaCha20-Poly1305 (zero nonce) under scrypt(`age-encryption.org/v1/scrypt` ‖ salt,
///   N = 2^LOGN, r = 8, p = 1), then `--- MAC`: HMAC-SHA-256 of the header up to `---` under
///   HKDF(file key, info `header`);
/// - payload: a 16-byte nonce, then 64 KiB chunks sealed with ChaCha20-Poly1305 under HKDF(file key,
///   salt nonce, info `payload`), chunk i's nonce being i (11 bytes, big-endian) ‖ 0x01 for the last
///   chunk, 0x00 otherwise; so truncation and reordering are detected.
public enum AgeEncryption {
    /// age's own default work factor (`age -p`): 2^18, 256 MiB and about a second per derivation.
    public static let defaultLogN = 18
    /// Plaintext bytes per payload chunk (the last one may be shorter).
    public static let chunkSize = 64 * 1024
    static let tagLength = 16
    static let versionLine = "age-encryption.org/v1"
    static let scryptLabel = Array("age-encryption.org/v1/scrypt".utf8)
    /// Headers this long or longer are refused unread: ours is about 130 bytes.
    static let maximumHeaderLength = 4096

    /// Whether `bytes` (a file's first bytes) start an age file.
    public static func isAgeFile(_ bytes: [UInt8]) -> Bool {
        bytes.starts(with: Array((versionLine + "\n").utf8))
    }

    /// Encrypts a stream of plaintext chunk by chunk, e.g. straight into an HTTP response: write
    /// ``prefix`` first, then what ``write(_:)`` returns, then what ``finish()`` returns.
    public struct Sealer: ~Copyable {
        /// The header and the payload nonce: the file's first bytes.
        public let prefix: [UInt8]
        private let payloadKey: SymmetricKey
        private var pending: [UInt8] = []
        private var counter: UInt64 = 0

        /// - Throws: ``PrivacyError/Code/archive`` when scrypt cannot run with `logN`.
        public init(passphrase: String, logN: Int = AgeEncryption.defaultLogN) throws {
            let salt = Random.bytes(16)
            let wrappingKey: SymmetricKey
            do {
                let derived = try Scrypt.deriveKey(passphrase: passphrase, salt: scryptLabel + salt, logN: logN)
                wrappingKey = derived.withUnsafeBytes { SymmetricKey(data: $0) }
            } catch {
                throw PrivacyError(.archive, "cannot derive the passphrase key (scrypt work factor \(logN))")
            }
            let fileKey = SymmetricKey(size: .init(bitCount: 128))
            let wrapped = try ChaChaPoly.seal(fileKey.withUnsafeBytes { Data($0) }, using: wrappingKey, nonce: zeroNonce)
            var header = versionLine + "\n"
            header += "-> scrypt \(base64(salt)) \(logN)\n"
            header += base64(Array(wrapped.ciphertext + wrapped.tag)) + "\n"
            header += "---"
            let mac = HMAC<Crypto.SHA256>.authenticationCode(for: Array(header.utf8), using: headerKey(fileKey))
            header += " " + base64(Array(mac)) + "\n"
            let nonce = Random.bytes(16)
            payloadKey = HKDF<Crypto.SHA256>.deriveKey(
                inputKeyMaterial: fileKey, salt: nonce, info: Array("payload".utf8), outputByteCount: 32)
            prefix = Array(header.utf8) + nonce
        }

        /// Seals every complete chunk that `bytes` completes. A chunk is sealed only once more bytes
        /// follow it, so the last chunk is known to be last (and is never empty unless the whole
        /// payload is, as the spec requires).
        public mutating func write(_ bytes: [UInt8]) -> [UInt8] {
            pending += bytes
            var sealed: [UInt8] = []
            while pending.count > chunkSize {
                sealed += seal(pending[..<chunkSize], last: false)
                pending.removeFirst(chunkSize)
            }
            return sealed
        }

        /// The last chunk. Call once, after the last ``write(_:)``.
        public mutating func finish() -> [UInt8] {
            defer { pending = [] }
            return seal(pending[...], last: true)
        }

        private mutating func seal(_ chunk: ArraySlice<UInt8>, last: Bool) -> [UInt8] {
            defer { counter += 1 }
            // Cannot fail: the key is 32 bytes and the nonce 12.
            let box = try! ChaChaPoly.seal(chunk, using: payloadKey, nonce: chunkNonce(counter, last: last))
            return Array(box.ciphertext) + Array(box.tag)
        }
    }

    /// Encrypts the file at `source` into `destination` in constant memory.
    public static func encrypt(source: String, destination: String, passphrase: String, logN: Int = defaultLogN) throws {
        guard let input = FileHandle(forReadingAtPath: source) else { throw PrivacyError(.archive, "cannot read \(source)") }
        defer { try? input.close() }
        let output = try BufferedFile(creating: destination)
        var sealer = try Sealer(passphrase: passphrase, logN: logN)
        try output.write(sealer.prefix)
        while let data = try input.read(upToCount: chunkSize), !data.isEmpty {
            try output.write(sealer.write(Array(data)))
        }
        try output.write(sealer.finish())
        try output.sync()
    }

    /// Decrypts an age file with a passphrase into `destination`, in constant memory. A wrong
    /// passphrase, any other recipient type, a work factor above ``Scrypt/maximumLogN``, tampering or
    /// truncation is ``PrivacyError/Code/archive``, and nothing is left at `destination`.
    public static func decrypt(source: String, destination: String, passphrase: String) throws {
        guard let input = FileHandle(forReadingAtPath: source) else { throw PrivacyError(.archive, "cannot read \(source)") }
        defer { try? input.close() }
        var reader = ByteReader(input)
        let payloadKey = try readHeader(&reader, passphrase: passphrase)
        let output = try BufferedFile(creating: destination)
        do {
            var counter: UInt64 = 0
            var current = try reader.read(upTo: chunkSize + tagLength)
            while true {
                let next = try reader.read(upTo: chunkSize + tagLength)
                let last = next.isEmpty
                guard current.count >= tagLength, last || current.count == chunkSize + tagLength else {
                    throw PrivacyError(.archive, "the encrypted archive is truncated")
                }
                let box = try ChaChaPoly.SealedBox(
                    nonce: chunkNonce(counter, last: last), ciphertext: current.dropLast(tagLength), tag: current.suffix(tagLength))
                let plaintext: Data
                do {
                    plaintext = try ChaChaPoly.open(box, using: payloadKey)
                } catch {
                    throw PrivacyError(.archive, "the encrypted archive was tampered with or truncated")
                }
                guard !(last && plaintext.isEmpty && counter > 0) else {
                    throw PrivacyError(.archive, "the encrypted archive ends with an empty chunk")
                }
                try output.write(Array(plaintext))
                if last { break }
                current = next
                counter += 1
            }
            try output.sync()
        } catch {
            unlink(destination)
            throw error
        }
    }

    /// Parses and authenticates the header; returns the payload key.
    static func readHeader(_ reader: inout ByteReader, passphrase: String) throws -> SymmetricKey {
        func malformed(_ why: String) -> PrivacyError { PrivacyError(.archive, "not a valid age file: \(why)") }
        var consumed = 0
        func line() throws -> String {
            var bytes: [UInt8] = []
            while true {
                guard let byte = try reader.byte() else { throw malformed("the header is truncated") }
                consumed += 1
                guard consumed < maximumHeaderLength else { throw malformed("the header is too long") }
                if byte == 0x0A { break }
                bytes.append(byte)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        guard try line() == versionLine else { throw malformed("it does not start with \(versionLine)") }
        let stanza = try line().split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard stanza.first == "->" else { throw malformed("no recipient stanza") }
        guard stanza.count == 4, stanza[1] == "scrypt" else {
            throw PrivacyError(.archive, "the archive is not encrypted with a passphrase (recipient \(stanza.dropFirst().first ?? "?"))")
        }
        guard let salt = unbase64(stanza[2]), salt.count == 16 else { throw malformed("the scrypt salt is not 16 bytes") }
        guard let logN = Int(stanza[3]), String(logN) == stanza[3], logN > 0 else {
            throw malformed("the scrypt work factor is not a number")
        }
        guard logN <= Scrypt.maximumLogN else {
            throw PrivacyError(
                .archive, "the archive's scrypt work factor \(logN) is above \(Scrypt.maximumLogN); refusing to spend that much memory")
        }
        let bodyLine = try line()
        guard let body = unbase64(bodyLine), body.count == 32 else { throw malformed("the scrypt stanza's body is not 32 bytes") }
        let macLine = try line()
        guard macLine.hasPrefix("--- ") else {
            throw PrivacyError(.archive, "the archive has more than one recipient; a passphrase archive has exactly one")
        }
        guard let mac = unbase64(String(macLine.dropFirst(4))), mac.count == 32 else { throw malformed("the header MAC is not 32 bytes") }

        let wrappingKey: SymmetricKey
        do {
            let derived = try Scrypt.deriveKey(passphrase: passphrase, salt: scryptLabel + salt, logN: logN)
            wrappingKey = derived.withUnsafeBytes { SymmetricKey(data: $0) }
        } catch {
            throw PrivacyError(.archive, "cannot derive the passphrase key (scrypt work factor \(logN))")
        }
        let fileKey: SymmetricKey
        do {
            let box = try ChaChaPoly.SealedBox(nonce: zeroNonce, ciphertext: body.prefix(16), tag: body.suffix(16))
            fileKey = SymmetricKey(data: try ChaChaPoly.open(box, using: wrappingKey))
        } catch {
            throw PrivacyError(.archive, "wrong passphrase")
        }
        let authenticated = Array("\(versionLine)\n\(stanza.joined(separator: " "))\n\(bodyLine)\n---".utf8)
        guard HMAC<Crypto.SHA256>.isValidAuthenticationCode(mac, authenticating: authenticated, using: headerKey(fileKey)) else {
            throw PrivacyError(.archive, "the archive's header was tampered with")
        }
        let nonce = try reader.read(upTo: 16)
        guard nonce.count == 16 else { throw PrivacyError(.archive, "the encrypted archive is truncated") }
        return HKDF<Crypto.SHA256>.deriveKey(inputKeyMaterial: fileKey, salt: nonce, info: Array("payload".utf8), outputByteCount: 32)
    }

    static let zeroNonce = try! ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12))

    static func headerKey(_ fileKey: SymmetricKey) -> SymmetricKey {
        HKDF<Crypto.SHA256>.deriveKey(inputKeyMaterial: fileKey, salt: [UInt8](), info: Array("header".utf8), outputByteCount: 32)
    }

    static func chunkNonce(_ counter: UInt64, last: Bool) -> ChaChaPoly.Nonce {
        let bytes = [0, 0, 0] + (0..<8).map { UInt8(truncatingIfNeeded: counter >> (56 - 8 * $0)) } + [last ? 1 : 0]
        return try! ChaChaPoly.Nonce(data: bytes)
    }

    /// Standard base64 without padding, as age writes it.
    static func base64(_ bytes: [UInt8]) -> String {
        String(Data(bytes).base64EncodedString().prefix { $0 != "=" })
    }

    /// Decodes unpadded standard base64, refusing non-canonical encodings (as age does).
    static func unbase64(_ text: String) -> [UInt8]? {
        guard !text.contains("=") else { return nil }
        let padded = text + String(repeating: "=", count: (4 - text.count % 4) % 4)
        guard let data = Data(base64Encoded: padded), base64(Array(data)) == text else { return nil }
        return Array(data)
    }

    /// Buffered reads from a file: single bytes for the header, blocks for the payload.
    struct ByteReader {
        let handle: FileHandle
        var buffer: [UInt8] = []
        var position = 0
        init(_ handle: FileHandle) { self.handle = handle }

        mutating func byte() throws -> UInt8? {
            if position == buffer.count {
                buffer = Array(try handle.read(upToCount: 4096) ?? Data())
                position = 0
                if buffer.isEmpty { return nil }
            }
            defer { position += 1 }
            return buffer[position]
        }

        /// Up to `count` bytes; fewer only at the end of the file.
        mutating func read(upTo count: Int) throws -> [UInt8] {
            var result = Array(buffer[position...].prefix(count))
            position += result.count
            while result.count < count {
                let data = try handle.read(upToCount: count - result.count) ?? Data()
                if data.isEmpty { break }
                result += data
            }
            return result
        }
    }
}
