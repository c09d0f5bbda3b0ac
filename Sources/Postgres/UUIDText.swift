import Foundation

/// UUIDs as text without Foundation's formatter and parser, which go through sprintf and sscanf
/// (both showed up in the gateway's profile: a request formats and parses several UUIDs).
extension UUID {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The canonical lowercase form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as Postgres prints
    /// a uuid. Equal to `uuidString.lowercased()`.
    public var lowercasedString: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { output in
                var position = 0
                for index in 0..<16 {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        output[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    output[position] = UUID.hexDigits[Int(bytes[index] >> 4)]
                    output[position + 1] = UUID.hexDigits[Int(bytes[index] & 0x0f)]
                    position += 2
                }
                return 36
            }
        }
    }

    /// Parses the canonical 36-character form, in either case; `nil` for anything else. Accepts
    /// exactly what `UUID(uuidString:)` accepts.
    public init?(canonical text: some StringProtocol) {
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let parsed: Bool = withUnsafeMutableBytes(of: &bytes) { output in
            var utf8 = text.utf8.makeIterator()
            var count = 0
            var index = 0
            func nibble(_ character: UInt8) -> UInt8? {
                switch character {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
                default: nil
                }
            }
            while index < 16 {
                if count == 8 || count == 13 || count == 18 || count == 23 {
                    guard utf8.next() == UInt8(ascii: "-") else { return false }
                    count += 1
                }
                guard let high = utf8.next().flatMap(nibble), let low = utf8.next().flatMap(nibble) else { return false }
                output[index] = high << 4 | low
                index += 1
                count += 2
            }
            return utf8.next() == nil
        }
        guard parsed else { return nil }
        self.init(uuid: bytes)
    }
}
