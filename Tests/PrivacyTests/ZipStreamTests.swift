import Foundation
import Testing

@testable import Privacy

/// The ZIP re-packing of an export's tar on download (a real reader, Python's zipfile and unzip,
/// opens it in Tests/python/test_age_export.py).
@Suite("Exports re-packed as ZIP")
struct ZipStreamTests {
    /// A tar written by the exporter's own writer.
    static func tar(_ files: [(String, [UInt8])]) throws -> [UInt8] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zip-\(UUID().uuidString).tar").path
        defer { unlink(path) }
        let writer = try TarWriter(path: path)
        for (name, content) in files {
            try writer.begin(name)
            try writer.write(content)
            try writer.end()
        }
        try writer.finish()
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func le32(_ bytes: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }

    @Test("CRC-32 matches the standard check value")
    func crc() {
        var crc = CRC32()
        crc.update(Array("123456789".utf8))
        #expect(crc.value == 0xCBF4_3926)
    }

    @Test("however the tar stream is split, the ZIP is the same, with one central entry per file and its CRC")
    func splits() throws {
        let files: [(String, [UInt8])] = [
            ("a.csv", Array("id,name\n1,x\n".utf8)), ("empty.json", []),
            ("big.json", (0..<70_000).map { UInt8(truncatingIfNeeded: $0) }), ("index.html", Array("<p>".utf8)),
        ]
        let tar = try Self.tar(files)
        let date = Date(timeIntervalSince1970: 1_800_000_000)
        var whole = TarToZip(modificationTime: date)
        let reference = try whole.write(tar) + whole.finish()
        for size in [1, 7, 511, 512, 513, 4096, 65536] {
            var zip = TarToZip(modificationTime: date)
            var output: [UInt8] = []
            var offset = 0
            while offset < tar.count {
                output += try zip.write(Array(tar[offset..<min(tar.count, offset + size)]))
                offset += size
            }
            output += try zip.finish()
            #expect(output == reference, "split \(size)")
        }
        // The classic end record is last and points at ZIP64 records; one central header per file.
        #expect(Self.le32(reference, reference.count - 22) == 0x0605_4b50)
        let centralHeaders = (0..<(reference.count - 4)).filter { Self.le32(reference, $0) == 0x0201_4b50 }
        #expect(centralHeaders.count == files.count)
        for ((name, content), at) in zip(files, centralHeaders) {
            var crc = CRC32()
            crc.update(content)
            #expect(Self.le32(reference, at + 16) == crc.value, "\(name)")
            let nameLength = Int(reference[at + 28]) | Int(reference[at + 29]) << 8
            #expect(String(decoding: reference[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self) == name)
        }
    }

    @Test("a tar stream that ends inside an entry or has a malformed header is an error, not a short ZIP")
    func malformed() throws {
        let tar = try Self.tar([("a.csv", Array(repeating: 65, count: 1000))])
        var cut = TarToZip()
        _ = try cut.write(Array(tar.prefix(700)))
        #expect(throws: PrivacyError.self) { try cut.finish() }
        var garbage = TarToZip()
        var header = [UInt8](repeating: 0, count: 512)
        header[0] = 0x61
        for index in 124..<135 { header[index] = UInt8(ascii: "9") }  // not octal
        #expect(throws: PrivacyError.self) { try garbage.write(header) }
    }
}
