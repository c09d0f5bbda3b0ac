/// The one JSON string escaper, byte-level.
///
/// RFC 8259 with one fixed choice per character, the same as PostgreSQL's `escape_json` and the
/// audit's canonical form (Sources/Audit/ENCODING.md §3): `"` → `\"`, `\` → `\\`, U+0008 → `\b`,
/// U+000C → `\f`, U+000A → `\n`, U+000D → `\r`, U+0009 → `\t`, other U+0000…U+001F → `\u00xx`
/// (lowercase hex); every other byte — `/`, DEL, all non-ASCII including U+2028/U+2029 — is
/// copied as it is (JSON text is UTF-8, RFC 8259 §8.1).
///
/// Bytes in, bytes out, no validation: a Swift `String`'s UTF-8 is always well formed (decoding
/// replaces ill-formed sequences with U+FFFD), and the export's fields are text PostgreSQL
/// already validated. `@inlinable` so the export's per-field loop (Privacy/RowEncoder) and the log
/// line writer specialise it for their byte collections, as their own copies were: 1,000,000 fields
/// of benchmarks/export-vs-psql-copy's rows took 0.60–0.73 s through this function from another
/// module against 0.72–0.76 s through RowEncoder's former copy (swiftc -O -wmo, best of 7, same run).
public enum JSONEscaper {
    @usableFromInline static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `bytes` (UTF-8) as a quoted JSON string.
    @inlinable
    public static func appendQuoted<Bytes: Sequence>(_ bytes: Bytes, to out: inout [UInt8]) where Bytes.Element == UInt8 {
        out.append(UInt8(ascii: "\""))
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): out.append(0x5C); out.append(UInt8(ascii: "\""))
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x08: out.append(0x5C); out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(0x5C); out.append(UInt8(ascii: "f"))
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            case 0x00..<0x20:
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends `text` as a quoted JSON string.
    @inlinable
    public static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        appendQuoted(text.utf8, to: &out)
    }

    /// `text` as a quoted JSON string.
    public static func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 2)
        appendQuoted(text.utf8, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
