import Foundation

/// Re-packs an export's tar stream as a ZIP archive on the way out, for people whose computer opens
/// ZIP files but not tar: each entry stored (not compressed: the CSV and JSON files are what the
/// person asked for, and storing keeps the download streaming at disk speed), in constant memory.
///
/// The tar headers give each entry's size before its data; its CRC-32 is known only after it, so
/// each entry is followed by a data descriptor (general-purpose flag bit 3). Every size and offset
/// is written in ZIP64 form (APPNOTE 4.5.3), so there is no 4 GiB limit and no second code path.
public struct TarToZip {
    private enum State {
        case header([UInt8])
        case content(remaining: Int64, padding: Int)
        case padding(Int)
        case end
    }

    private struct Entry {
        let name: [UInt8]
        let offset: UInt64
        var size: UInt64
        var crc = CRC32()
    }

    private var state = State.header([])
    private var entries: [Entry] = []
    private var written: UInt64 = 0
    private let dosTime: UInt16
    private let dosDate: UInt16

    public init(modificationTime: Date = Date()) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: modificationTime)
        dosTime = UInt16(parts.hour! << 11 | parts.minute! << 5 | parts.second! / 2)
        dosDate = UInt16(max(0, parts.year! - 1980) << 9 | parts.month! << 5 | parts.day!)
    }

    /// ZIP bytes for the tar bytes given (any split).
    /// - Throws: ``PrivacyError/Code/archive`` for a malformed tar header.
    public mutating func write(_ tar: [UInt8]) throws -> [UInt8] {
        var output: [UInt8] = []
        var input = tar[...]
        while !input.isEmpty {
            switch state {
            case .header(var block):
                let taken = input.prefix(512 - block.count)
                block += taken
                input = input.dropFirst(taken.count)
                guard block.count == 512 else { state = .header(block); continue }
                if block.allSatisfy({ $0 == 0 }) { state = .end; continue }
                let name = Array(block[0..<100].prefix { $0 != 0 })
                let sizeText = String(decoding: block[124..<136].prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self)
                guard !name.isEmpty, let size = Int64(sizeText, radix: 8) else { throw PrivacyError(.archive, "malformed tar header") }
                entries.append(Entry(name: name, offset: written, size: UInt64(size)))
                output += emit(localHeader(name))
                state = size == 0 ? finishEntry(&output, padding: 0) : .content(remaining: size, padding: Int((512 - size % 512) % 512))
            case .content(let remaining, let padding):
                let taken = input.prefix(Int(min(Int64(input.count), remaining)))
                entries[entries.count - 1].crc.update(taken)
                output += emit(Array(taken))
                input = input.dropFirst(taken.count)
                state =
                    remaining == Int64(taken.count)
                    ? finishEntry(&output, padding: padding) : .content(remaining: remaining - Int64(taken.count), padding: padding)
            case .padding(let count):
                let skipped = min(count, input.count)
                input = input.dropFirst(skipped)
                state = count == skipped ? .header([]) : .padding(count - skipped)
            case .end:
                input = input.dropFirst(input.count)
            }
        }
        return output
    }

    /// The central directory and end records. Call once, after the tar stream's last bytes.
    /// - Throws: ``PrivacyError/Code/archive`` when the tar stream ended inside an entry.
    public mutating func finish() throws -> [UInt8] {
        switch state {
        case .end: break
        case .header(let block) where block.isEmpty: break
        default: throw PrivacyError(.archive, "the archive ended inside an entry")
        }
        var directory: [UInt8] = []
        for entry in entries {
            // ZIP64 extra field: uncompressed size, compressed size, local header offset.
            let extra = le16(0x0001) + le16(24) + le64(entry.size) + le64(entry.size) + le64(entry.offset)
            directory += le32(0x0201_4b50) + le16(0x032D) + le16(45) + le16(0x0808) + le16(0) + le16(dosTime) + le16(dosDate)
            directory += le32(entry.crc.value) + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF)
            directory += le16(UInt16(entry.name.count)) + le16(UInt16(extra.count)) + le16(0) + le16(0) + le16(0)
            directory += le32(UInt32(0o100644) << 16) + le32(0xFFFF_FFFF) + entry.name + extra
        }
        let directoryOffset = written
        var output = emit(directory)
        let end64Offset = written
        let count = UInt64(entries.count)
        // ZIP64 end of central directory record and locator, then the classic end record pointing at them.
        output += emit(
            le32(0x0606_4b50) + le64(44) + le16(0x032D) + le16(45) + le32(0) + le32(0)
                + le64(count) + le64(count) + le64(UInt64(directory.count)) + le64(directoryOffset))
        output += emit(le32(0x0706_4b50) + le32(0) + le64(end64Offset) + le32(1))
        output += emit(
            le32(0x0605_4b50) + le16(0) + le16(0) + le16(0xFFFF) + le16(0xFFFF)
                + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) + le16(0))
        return output
    }

    private func localHeader(_ name: [UInt8]) -> [UInt8] {
        // Sizes in the ZIP64 extra (zero here, as flag bit 3 asks); the data descriptor carries them.
        let extra = le16(0x0001) + le16(16) + le64(0) + le64(0)
        return le32(0x0403_4b50) + le16(45) + le16(0x0808) + le16(0) + le16(dosTime) + le16(dosDate)
            + le32(0) + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) + le16(UInt16(name.count)) + le16(UInt16(extra.count)) + name + extra
    }

    private mutating func finishEntry(_ output: inout [UInt8], padding: Int) -> State {
        let entry = entries[entries.count - 1]
        output += emit(le32(0x0807_4b50) + le32(entry.crc.value) + le64(entry.size) + le64(entry.size))
        return padding > 0 ? .padding(padding) : .header([])
    }

    private mutating func emit(_ bytes: [UInt8]) -> [UInt8] {
        written += UInt64(bytes.count)
        return bytes
    }

    private func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
    private func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    private func le64(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) as ZIP uses it: a checksum against
/// corruption, not a cryptographic hash.
struct CRC32 {
    private static let table: [UInt32] = (0..<256).map { index -> UInt32 in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }
    private var state: UInt32 = 0xFFFF_FFFF

    mutating func update(_ bytes: some Collection<UInt8>) {
        var crc = state
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        state = crc
    }

    var value: UInt32 { state ^ 0xFFFF_FFFF }
}
