import Foundation
import Privacy
import Sodium
import Testing

/// The age file format of passphrase-encrypted exports (interoperability with the `age` tool itself
/// is tested in Tests/python/test_age_export.py).
@Suite("Exports encrypted for the subject are age files")
struct AgeEncryptionTests {
    static let logN = 10  // cheap for tests; real archives use 2^18

    /// A directory removed afterwards, with `plain` holding `bytes` and `age` its encryption.
    static func withEncrypted(
        _ bytes: [UInt8], passphrase: String = "correct horse",
        _ body: (_ directory: URL, _ age: String) throws -> Void
    ) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("age-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let plain = directory.appendingPathComponent("plain").path
        try Data(bytes).write(to: URL(fileURLWithPath: plain))
        let age = directory.appendingPathComponent("plain.age").path
        try AgeEncryption.encrypt(source: plain, destination: age, passphrase: passphrase, logN: logN)
        try body(directory, age)
    }

    static func contents(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func refusal(_ path: String, passphrase: String = "correct horse", into out: String) -> String? {
        do {
            try ArchiveEncryption.decrypt(source: path, destination: out, passphrase: passphrase)
            return nil
        } catch let error as PrivacyError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test("a wrong passphrase is refused and nothing is written")
    func wrongPassphrase() throws {
        try Self.withEncrypted(Array(repeating: 7, count: 100)) { directory, age in
            let out = directory.appendingPathComponent("out").path
            #expect(Self.refusal(age, passphrase: "incorrect horse", into: out) == "wrong passphrase")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }

    @Test("a changed payload byte, a dropped last chunk or a swapped chunk pair is refused, leaving no output")
    func tampering() throws {
        let chunk = AgeEncryption.chunkSize + 16
        try Self.withEncrypted(Random.bytes(3 * AgeEncryption.chunkSize + 5)) { directory, age in
            let file = try Self.contents(age)
            let headerAndNonce = file.count - (3 * chunk + 5 + 16)
            let out = directory.appendingPathComponent("out").path
            let variants: [(String, [UInt8])] = [
                (
                    "flipped",
                    {
                        var f = file; f[headerAndNonce + 10] ^= 1; return f
                    }()
                ),
                ("dropped last chunk", Array(file.prefix(file.count - 21))),
                ("cut at a chunk boundary", Array(file.prefix(headerAndNonce + 2 * chunk))),
                (
                    "swapped",
                    Array(file.prefix(headerAndNonce)) + Array(file[(headerAndNonce + chunk)..<(headerAndNonce + 2 * chunk)])
                        + Array(file[headerAndNonce..<(headerAndNonce + chunk)]) + Array(file.suffix(from: headerAndNonce + 2 * chunk))
                ),
            ]
            for (name, bytes) in variants {
                let path = directory.appendingPathComponent(name).path
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                let refused = Self.refusal(path, into: out)
                #expect(
                    refused?.contains("tampered with or truncated") == true || refused?.contains("truncated") == true,
                    "\(name): \(refused ?? "opened")")
                #expect(!FileManager.default.fileExists(atPath: out), "\(name)")
            }
        }
    }

    @Test("a changed header MAC, a second recipient or a work factor above 2^22 is refused before any payload is read")
    func header() throws {
        try Self.withEncrypted(Array("hello".utf8)) { directory, age in
            let text = String(decoding: try Self.contents(age), as: UTF8.self)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let out = directory.appendingPathComponent("out").path
            func refusal(_ lines: [String]) throws -> String? {
                let path = directory.appendingPathComponent("variant").path
                try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path))
                return Self.refusal(path, into: out)
            }
            var mac = lines
            mac[3] = "--- " + String(repeating: "A", count: 43)
            #expect(try refusal(mac) == "the archive's header was tampered with")
            var foreign = lines
            foreign[1] = "-> X25519 " + String(repeating: "A", count: 43)
            #expect(try refusal(foreign)?.contains("not encrypted with a passphrase") == true)
            var huge = lines
            huge[1] = lines[1].split(separator: " ").dropLast().joined(separator: " ") + " 40"
            #expect(try refusal(huge)?.contains("work factor 40 is above 22") == true)
            var second = lines
            second.insert(contentsOf: ["-> scrypt AAAAAAAAAAAAAAAAAAAAAA 10", String(repeating: "A", count: 43)], at: 3)
            #expect(try refusal(second)?.contains("more than one recipient") == true)
            #expect(try refusal(["not age", ""]) == "not an encrypted export archive")
        }
    }

    @Test("round trips at every chunk boundary, the empty file included", arguments: [0, 1, 65535, 65536, 65537, 3 * 65536])
    func roundTrip(size: Int) throws {
        let bytes = Random.bytes(size)
        try Self.withEncrypted(bytes) { directory, age in
            let file = try Self.contents(age)
            #expect(AgeEncryption.isAgeFile(file))
            #expect(ArchiveEncryption.isEncrypted(path: age))
            let chunks = max(1, (size + AgeEncryption.chunkSize - 1) / AgeEncryption.chunkSize)
            #expect(String(decoding: file.prefix(32), as: UTF8.self).hasPrefix("age-encryption.org/v1\n-> scrypt "))
            #expect(file.count == (file.firstRange(of: Array("\n---".utf8))!.lowerBound + 4 + 1 + 43 + 1) + 16 + size + 16 * chunks)
            let out = directory.appendingPathComponent("out").path
            try ArchiveEncryption.decrypt(source: age, destination: out, passphrase: "correct horse")
            #expect(try Self.contents(out) == bytes)
        }
    }

    @Test("the sealer's streaming output is the same file format, whatever the sizes written")
    func streaming() throws {
        let bytes = Random.bytes(2 * 65536 + 100)
        var sealer = try AgeEncryption.Sealer(passphrase: "pw", logN: Self.logN)
        var file = sealer.prefix
        var offset = 0
        for size in [1, 70000, 3, 65536, 30000] where offset < bytes.count {
            let end = min(bytes.count, offset + size)
            file += sealer.write(Array(bytes[offset..<end]))
            offset = end
        }
        file += sealer.write(Array(bytes[offset...]))
        file += sealer.finish()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("age-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("s.age").path
        try Data(file).write(to: URL(fileURLWithPath: path))
        try ArchiveEncryption.decrypt(source: path, destination: path + ".out", passphrase: "pw")
        #expect(try Self.contents(path + ".out") == bytes)
    }
}
