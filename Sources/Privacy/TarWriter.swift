import Crypto
import Foundation
import Sodium

/// A file written through a 256 KiB buffer with plain POSIX calls (no Foundation per-row cost).
final class BufferedFile {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private static let capacity = 1 << 18
    let path: String

    init(creating path: String) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw PrivacyError(.archive, "cannot create \(path): \(String(cString: strerror(errno)))") }
        buffer.reserveCapacity(Self.capacity)
    }

    deinit { close(descriptor) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > Self.capacity { try flush() }
        if bytes.count >= Self.capacity {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw PrivacyError(.archive, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// Appends `count` bytes of `source` in the kernel, without copying them through this process.
    func copy(from source: Int32, count: Int64) throws {
        try flush()
        var remaining = count
        while remaining > 0 {
            let copied = sendfile(descriptor, source, nil, Int(min(remaining, 1 << 30)))
            if copied < 0 {
                if errno == EINTR { continue }
                throw PrivacyError(.archive, "cannot copy into \(path): \(String(cString: strerror(errno)))")
            }
            if copied == 0 { throw PrivacyError(.archive, "\(path): source ended early") }
            remaining -= Int64(copied)
        }
    }

    /// Current end of the file (after flushing).
    func offset() throws -> Int64 {
        try flush()
        return Int64(lseek(descriptor, 0, SEEK_CUR))
    }

    /// Overwrites `bytes` at `offset`, then returns to the end.
    func patch(at offset: Int64, _ bytes: [UInt8]) throws {
        try flush()
        let end = lseek(descriptor, 0, SEEK_CUR)
        guard lseek(descriptor, off_t(offset), SEEK_SET) == off_t(offset) else { throw PrivacyError(.archive, "cannot seek in \(path)") }
        try bytes.withUnsafeBytes { try writeAll($0) }
        guard lseek(descriptor, end, SEEK_SET) == end else { throw PrivacyError(.archive, "cannot seek in \(path)") }
    }

    func sync() throws {
        try flush()
        guard fsync(descriptor) == 0 else { throw PrivacyError(.archive, "cannot sync \(path)") }
    }
}

/// Writes a POSIX ustar archive entry by entry, streaming each entry's content: the header is
/// written as a placeholder and patched with the size and checksum once the entry ends, so no
/// entry is ever held in memory. Each entry's SHA-256 is computed on the way.
final class TarWriter {
    struct Entry {
        let name: String
        let bytes: Int64
        let sha256: String
    }

    private let file: BufferedFile
    private var current: (name: String, headerOffset: Int64, bytes: Int64, hasher: BackgroundHasher)?
    private(set) var entries: [Entry] = []
    private let modificationTime: Int

    init(path: String, modificationTime: Date = Date()) throws {
        file = try BufferedFile(creating: path)
        self.modificationTime = Int(modificationTime.timeIntervalSince1970)
    }

    func begin(_ name: String) throws {
        precondition(current == nil, "an entry is still open")
        guard name.utf8.count <= 100 else { throw PrivacyError(.archive, "entry name too long: \(name)") }
        let offset = try file.offset()
        try file.write([UInt8](repeating: 0, count: 512))
        current = (name, offset, 0, BackgroundHasher())
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        current!.bytes += Int64(bytes.count)
        current!.hasher.update(bytes)
        try file.write(bytes)
    }

    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    @discardableResult
    func end() throws -> Entry {
        guard let entry = current else { preconditionFailure("no entry is open") }
        current = nil
        let padding = Int((512 - entry.bytes % 512) % 512)
        if padding > 0 { try file.write([UInt8](repeating: 0, count: padding)) }
        try file.patch(at: entry.headerOffset, Self.header(name: entry.name, size: entry.bytes, mtime: modificationTime))
        let done = Entry(name: entry.name, bytes: entry.bytes, sha256: Hex.encode(entry.hasher.finalize()))
        entries.append(done)
        return done
    }

    /// Appends the file at `path` as one entry, copied by the kernel (`sendfile`), with the
    /// SHA-256 its writer computed.
    func append(_ name: String, from path: String, sha256: [UInt8]) throws -> Entry {
        precondition(current == nil, "an entry is still open")
        guard name.utf8.count <= 100 else { throw PrivacyError(.archive, "entry name too long: \(name)") }
        let source = open(path, O_RDONLY)
        guard source >= 0 else { throw PrivacyError(.archive, "cannot read \(path)") }
        defer { close(source) }
        var info = stat()
        guard fstat(source, &info) == 0 else { throw PrivacyError(.archive, "cannot stat \(path)") }
        let size = Int64(info.st_size)
        try file.write(Self.header(name: name, size: size, mtime: modificationTime))
        try file.copy(from: source, count: size)
        let padding = Int((512 - size % 512) % 512)
        if padding > 0 { try file.write([UInt8](repeating: 0, count: padding)) }
        let entry = Entry(name: name, bytes: size, sha256: Hex.encode(sha256))
        entries.append(entry)
        return entry
    }

    /// Two zero blocks end the archive; the file is synced to disk.
    func finish() throws {
        try file.write([UInt8](repeating: 0, count: 1024))
        try file.sync()
    }

    static func header(name: String, size: Int64, mtime: Int) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, length: Int) {
            for (index, byte) in text.utf8.prefix(length).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int64, at offset: Int, length: Int) {
            put(
                String(repeating: "0", count: max(0, length - 1 - String(value, radix: 8).count)) + String(value, radix: 8), at: offset,
                length: length - 1)
        }
        put(name, at: 0, length: 100)
        octal(0o600, at: 100, length: 8)  // mode
        octal(0, at: 108, length: 8)  // uid
        octal(0, at: 116, length: 8)  // gid
        octal(size, at: 124, length: 12)
        octal(Int64(mtime), at: 136, length: 12)
        for index in 148..<156 { header[index] = 0x20 }  // checksum field counts as spaces
        header[156] = UInt8(ascii: "0")  // regular file
        put("ustar", at: 257, length: 6)  // magic "ustar\0"
        put("00", at: 263, length: 2)  // version
        let checksum = header.reduce(0) { $0 + Int64($1) }
        octal(checksum, at: 148, length: 7)
        header[155] = 0x20
        return header
    }
}

/// Reads a ustar archive written by ``TarWriter`` (for tests and `privacyctl`): entry names and contents.
public enum TarReader {
    public static func entries(_ data: [UInt8]) throws -> [(name: String, content: [UInt8])] {
        var result: [(String, [UInt8])] = []
        var offset = 0
        while offset + 512 <= data.count {
            let header = Array(data[offset..<offset + 512])
            if header.allSatisfy({ $0 == 0 }) { break }
            let name = String(decoding: header[0..<100].prefix { $0 != 0 }, as: UTF8.self)
            let sizeText = String(decoding: header[124..<136].prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self)
            guard let size = Int(sizeText, radix: 8), offset + 512 + size <= data.count else {
                throw PrivacyError(.archive, "malformed tar header at \(offset)")
            }
            result.append((name, Array(data[offset + 512..<offset + 512 + size])))
            offset += 512 + (size + 511) / 512 * 512
        }
        return result
    }
}

/// SHA-256 computed on its own thread while the caller goes on producing bytes: libsodium's
/// SHA-256 is the slowest step of an export, and the machine has a core to spare for it. At most
/// `window` chunks are in flight, so memory stays bounded.
final class BackgroundHasher: @unchecked Sendable {
    // @unchecked: `hasher` is only touched on `queue`.
    private let queue = DispatchQueue(label: "privacy.sha256")
    private let window = DispatchSemaphore(value: 32)
    // swift-crypto's SHA-256 (BoringSSL, with the CPU's SHA instructions; already built for
    // jwt-kit): libsodium's portable SHA-256 was half of an export's CPU (perf).
    private var hasher = Crypto.SHA256()

    func update(_ bytes: UnsafeRawBufferPointer) {
        update(Array(bytes))
    }

    func update(_ chunk: [UInt8]) {
        guard !chunk.isEmpty else { return }
        window.wait()
        queue.async {
            self.hasher.update(data: chunk)
            self.window.signal()
        }
    }

    /// Waits for the queued chunks and returns the digest.
    func finalize() -> [UInt8] {
        queue.sync { Array(hasher.finalize()) }
    }
}
