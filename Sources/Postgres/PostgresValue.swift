import Foundation

/// One bind parameter, already in the form libpq sends: text, raw bytes (for `bytea`) or NULL.
///
/// Values only ever reach the server as bind parameters; this module has no way to splice
/// a value into SQL text.
public struct PostgresBind: Sendable, Hashable {
    enum Storage: Sendable, Hashable {
        case null
        case text(String)
        case binary([UInt8])
    }
    let storage: Storage

    public static let null = PostgresBind(storage: .null)
    public static func text(_ value: String) -> PostgresBind { PostgresBind(storage: .text(value)) }
    public static func bytes(_ value: [UInt8]) -> PostgresBind { PostgresBind(storage: .binary(value)) }

    /// The size of the value on the wire.
    var byteCount: Int {
        switch storage {
        case .null: 0
        case .text(let text): text.utf8.count
        case .binary(let bytes): bytes.count
        }
    }
}

/// A Swift value that can be sent as a bind parameter.
public protocol PostgresEncodable: Sendable {
    var postgresBind: PostgresBind { get }
}

extension PostgresBind: PostgresEncodable {
    public var postgresBind: PostgresBind { self }
}

extension String: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(self) }
}
extension Substring: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(String(self)) }
}
extension Int: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(String(self)) }
}
extension Int32: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(String(self)) }
}
extension Int64: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(String(self)) }
}
extension Double: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(String(self)) }
}
extension Bool: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(self ? "true" : "false") }
}
extension Decimal: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(description) }
}
extension UUID: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(lowercasedString) }
}
extension Date: PostgresEncodable {
    public var postgresBind: PostgresBind { .text(PostgresTimestamp.format(self)) }
}
extension Array: PostgresEncodable where Element == UInt8 {
    public var postgresBind: PostgresBind { .bytes(self) }
}
extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresBind: PostgresBind {
        switch self {
        case .none: return .null
        case .some(let value): return value.postgresBind
        }
    }
}

/// A `text[]` (or any array) parameter, sent as an array literal with every element quoted.
public struct PostgresTextArray: PostgresEncodable, Hashable {
    public var elements: [String?]
    public init(_ elements: [String?]) { self.elements = elements }
    public var postgresBind: PostgresBind { .text(PostgresArrayLiteral.encode(elements)) }
}

/// A `json`/`jsonb` parameter given as serialised JSON text.
public struct PostgresJSON: PostgresEncodable, Hashable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public init<T: Encodable>(encoding value: T) throws {
        let data = try JSONEncoder().encode(value)
        self.text = String(decoding: data, as: UTF8.self)
    }
    public var postgresBind: PostgresBind { .text(text) }
}

// MARK: - Decoding

/// A Swift type that can be read from a text-format result value.
public protocol PostgresDecodable {
    init(postgresText text: String) throws
}

extension String: PostgresDecodable {
    public init(postgresText text: String) throws { self = text }
}
extension Int: PostgresDecodable {
    public init(postgresText text: String) throws { self = try decodeNumber(text, Int.init) }
}
extension Int32: PostgresDecodable {
    public init(postgresText text: String) throws { self = try decodeNumber(text, Int32.init) }
}
extension Int64: PostgresDecodable {
    public init(postgresText text: String) throws { self = try decodeNumber(text, Int64.init) }
}
extension Double: PostgresDecodable {
    public init(postgresText text: String) throws { self = try decodeNumber(text, Double.init) }
}
extension Decimal: PostgresDecodable {
    public init(postgresText text: String) throws {
        guard let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) else {
            throw PostgresError(.decoding, "value is not a numeric")
        }
        self = value
    }
}
extension Bool: PostgresDecodable {
    public init(postgresText text: String) throws {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw PostgresError(.decoding, "value is not a boolean")
        }
    }
}
extension UUID: PostgresDecodable {
    public init(postgresText text: String) throws {
        guard let value = UUID(canonical: text) else { throw PostgresError(.decoding, "value is not a uuid") }
        self = value
    }
}
extension Date: PostgresDecodable {
    public init(postgresText text: String) throws { self = try PostgresTimestamp.parse(text) }
}
extension Array: PostgresDecodable where Element == UInt8 {
    /// `bytea` in the server's default `hex` output format (`\x0a1b…`).
    public init(postgresText text: String) throws {
        var utf8 = Substring(text).utf8
        guard utf8.starts(with: "\\x".utf8) else { throw PostgresError(.decoding, "value is not a hex bytea") }
        utf8 = utf8.dropFirst(2)
        guard utf8.count % 2 == 0 else { throw PostgresError(.decoding, "value is not a hex bytea") }
        var bytes = [UInt8]()
        bytes.reserveCapacity(utf8.count / 2)
        var high: UInt8?
        for char in utf8 {
            guard let nibble = hexNibble(char) else { throw PostgresError(.decoding, "value is not a hex bytea") }
            if let h = high { bytes.append(h << 4 | nibble); high = nil } else { high = nibble }
        }
        self = bytes
    }
}

/// `text[]` and other one-dimensional arrays, as `[String?]` (NULL elements are `nil`).
extension PostgresTextArray: PostgresDecodable {
    public init(postgresText text: String) throws {
        self.init(try PostgresArrayLiteral.decode(text))
    }
}
extension PostgresJSON: PostgresDecodable {
    public init(postgresText text: String) throws { self.init(text) }

    /// Decodes the JSON text into `T`.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw PostgresError(.decoding, "json value does not match \(T.self)")
        }
    }
}

private func decodeNumber<T>(_ text: String, _ parse: (String) -> T?) throws -> T {
    guard let value = parse(text) else { throw PostgresError(.decoding, "value is not a \(T.self)") }
    return value
}

private func hexNibble(_ char: UInt8) -> UInt8? {
    switch char {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return char - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return char - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return char - UInt8(ascii: "A") + 10
    default: return nil
    }
}

/// Array literals in Postgres's text format: `{a,"b c",NULL}`.
enum PostgresArrayLiteral {
    static func encode(_ elements: [String?]) -> String {
        var out = "{"
        out.reserveCapacity(elements.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (index, element) in elements.enumerated() {
            if index > 0 { out += "," }
            guard let element else { out += "NULL"; continue }
            out += "\""
            if element.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                for scalar in element.unicodeScalars {
                    if scalar == "\"" || scalar == "\\" { out.unicodeScalars.append("\\") }
                    out.unicodeScalars.append(scalar)
                }
            } else {
                out += element  // the common case: nothing to escape
            }
            out += "\""
        }
        return out + "}"
    }

    static func decode(_ text: String) throws -> [String?] {
        let chars = Array(text.utf8)
        guard chars.first == UInt8(ascii: "{"), chars.last == UInt8(ascii: "}") else {
            throw PostgresError(.decoding, "value is not a one-dimensional array")
        }
        var elements = [String?]()
        var index = 1
        let end = chars.count - 1
        if index == end { return [] }
        while index < end {
            var bytes = [UInt8]()
            var quoted = false
            if chars[index] == UInt8(ascii: "\"") {
                quoted = true
                index += 1
                while index < end, chars[index] != UInt8(ascii: "\"") {
                    if chars[index] == UInt8(ascii: "\\") { index += 1 }
                    guard index < end else { break }
                    bytes.append(chars[index])
                    index += 1
                }
                index += 1  // closing quote
            } else {
                while index < end, chars[index] != UInt8(ascii: ",") {
                    if chars[index] == UInt8(ascii: "{") {
                        throw PostgresError(.decoding, "multi-dimensional arrays are not supported")
                    }
                    bytes.append(chars[index])
                    index += 1
                }
            }
            let value = String(decoding: bytes, as: UTF8.self)
            elements.append(!quoted && value == "NULL" ? nil : value)
            guard index == end || chars[index] == UInt8(ascii: ",") else {
                throw PostgresError(.decoding, "malformed array literal")
            }
            index += 1
        }
        return elements
    }
}

/// `timestamptz` text in ISO style, as sessions opened by this module print it (TimeZone UTC).
enum PostgresTimestamp {
    static func format(_ date: Date) -> String {
        // Microsecond precision, always UTC, no locale involvement.
        let totalMicros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        var seconds = Int64((totalMicros / 1_000_000).rounded(.down))
        var micros = Int64(totalMicros) - seconds * 1_000_000
        if micros < 0 { micros += 1_000_000; seconds -= 1 }
        var days = seconds / 86_400
        var rem = seconds % 86_400
        if rem < 0 { rem += 86_400; days -= 1 }
        let (y, m, d) = civilFromDays(days)
        let fraction = String(micros)
        let padded = String(repeating: "0", count: 6 - fraction.count) + fraction
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2)) \(pad(rem / 3600, 2)):\(pad(rem % 3600 / 60, 2)):\(pad(rem % 60, 2)).\(padded)+00:00"
    }

    static func parse(_ text: String) throws -> Date {
        let b = Array(text.utf8)
        func digits(_ start: Int, _ count: Int) throws -> Int64 {
            guard start + count <= b.count else { throw PostgresError(.decoding, "value is not a timestamp") }
            var v: Int64 = 0
            for i in start..<start + count {
                let c = b[i]
                guard c >= 48, c <= 57 else { throw PostgresError(.decoding, "value is not a timestamp") }
                v = v * 10 + Int64(c - 48)
            }
            return v
        }
        // yyyy-mm-dd hh:mm:ss[.ffffff][(+|-)hh[:mm[:ss]]]
        guard b.count >= 19, b[4] == 45, b[7] == 45, b[10] == 32 || b[10] == 84 else {
            throw PostgresError(.decoding, "value is not a timestamp")
        }
        let year = try digits(0, 4), month = try digits(5, 2), day = try digits(8, 2)
        let hour = try digits(11, 2), minute = try digits(14, 2), second = try digits(17, 2)
        var index = 19
        var micros: Int64 = 0
        if index < b.count, b[index] == 46 {
            index += 1
            var scale: Int64 = 100_000
            while index < b.count, b[index] >= 48, b[index] <= 57 {
                micros += Int64(b[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offset: Int64 = 0
        if index < b.count {
            let sign: Int64
            switch b[index] {
            case 43: sign = 1
            case 45: sign = -1
            case 90: sign = 0  // "Z"
            default: throw PostgresError(.decoding, "value is not a timestamp")
            }
            if sign != 0 {
                offset = try digits(index + 1, 2) * 3600
                if index + 3 < b.count, b[index + 3] == 58 { offset += try digits(index + 4, 2) * 60 }
                offset *= sign
            }
        }
        let days = daysFromCivil(year, month, day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let s = String(value)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    // Howard Hinnant's civil-date algorithms: exact for the proleptic Gregorian calendar.
    private static func daysFromCivil(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civilFromDays(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? yoe + era * 400 + 1 : yoe + era * 400, m, d)
    }
}
