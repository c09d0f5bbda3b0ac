import Foundation
import JSON

/// A value in a row, an auth claim or a bind parameter.
///
/// Comparisons follow Postgres: NULL compares as unknown, text compares byte-wise (the `C`
/// collation), uuids by their 16 bytes. A text value meeting a uuid, number or boolean is read as
/// that type, as Postgres reads an untyped literal; if it does not parse the comparison is unknown,
/// which never grants access.
public enum PolicyValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case text(String)
    case uuid(UUID)
    case array([PolicyValue])

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

/// A row as column name → value. A column the dictionary lacks reads as NULL, so callers pass
/// writes' new rows with the database's defaults already applied.
public typealias PolicyRow = [String: PolicyValue]

extension PolicyValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .text(value) }
    public init(arrayLiteral elements: PolicyValue...) { self = .array(elements) }
}

extension PolicyValue {
    /// `Optional<UUID>` as a value: `.uuid` or `.null`.
    public init(_ uuid: UUID?) {
        self = uuid.map(PolicyValue.uuid) ?? .null
    }

    /// The value as Postgres prints it in text (`::text`, `->>`): uuids lower-case, booleans
    /// `true`/`false`, arrays and nested JSON as JSON text. NULL has no text.
    public var textValue: String? {
        switch self {
        case .null: return nil
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .text(let value): return value
        case .uuid(let value): return value.uuidString.lowercased()
        case .array: return jsonText
        }
    }

    private var jsonText: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .text(let value): return JSONEscaper.quoted(value)  // escape_json's escapes, \b and \f included
        case .uuid(let value): return "\"" + value.uuidString.lowercased() + "\""
        case .array(let values): return "[" + values.map(\.jsonText).joined(separator: ", ") + "]"
        }
    }
}

// MARK: - SQL comparison

extension PolicyValue {
    /// Three-way comparison with SQL semantics: nil when either side is NULL or the two cannot be
    /// compared (which the caller treats as unknown).
    static func compare(_ lhs: PolicyValue, _ rhs: PolicyValue) -> Int? {
        switch (lhs, rhs) {
        case (.null, _), (_, .null):
            return nil
        case (.uuid(let a), .uuid(let b)):
            return compareUUID(a, b)
        case (.text(let a), .text(let b)):
            return compareText(a, b)
        case (.int(let a), .int(let b)):
            return a == b ? 0 : (a < b ? -1 : 1)
        case (.bool(let a), .bool(let b)):
            return a == b ? 0 : (!a ? -1 : 1)
        case (.double(let a), .double(let b)):
            return compareDouble(a, b)
        case (.int(let a), .double(let b)):
            return compareDouble(Double(a), b)
        case (.double(let a), .int(let b)):
            return compareDouble(a, Double(b))
        case (.array(let a), .array(let b)):
            return compareArrays(a, b)
        case (.text(let text), _):
            guard let converted = PolicyValue.parse(text, like: rhs) else { return nil }
            return compare(converted, rhs)
        case (_, .text(let text)):
            guard let converted = PolicyValue.parse(text, like: lhs) else { return nil }
            return compare(lhs, converted)
        default:
            return nil
        }
    }

    /// The scalar kinds a text can be read as.
    enum Kind { case uuid, integer, number, boolean, text }

    /// Reads `text` as a value of the same kind as `model` (an untyped literal meeting a typed one).
    static func parse(_ text: String, like model: PolicyValue) -> PolicyValue? {
        switch model {
        case .uuid: return parse(text, as: .uuid)
        case .int: return parse(text, as: .integer)
        case .double: return parse(text, as: .number)
        case .bool: return parse(text, as: .boolean)
        case .text: return .text(text)
        case .null, .array: return nil
        }
    }

    static func parse(_ text: String, as kind: Kind) -> PolicyValue? {
        switch kind {
        case .uuid: return UUID(uuidString: text.trimmingCharacters(in: .whitespaces)).map(PolicyValue.uuid)
        case .integer: return Int64(text.trimmingCharacters(in: .whitespaces)).map(PolicyValue.int)
        case .number: return Double(text.trimmingCharacters(in: .whitespaces)).map(PolicyValue.double)
        case .boolean: return parseBool(text).map(PolicyValue.bool)
        case .text: return .text(text)
        }
    }

    /// Postgres' boolean input: t, true, y, yes, on, 1 and their opposites, case-insensitively.
    static func parseBool(_ text: String) -> Bool? {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "t", "true", "y", "yes", "on", "1": return true
        case "f", "false", "n", "no", "off", "0": return false
        default: return nil
        }
    }

    private static func compareUUID(_ a: UUID, _ b: UUID) -> Int {
        let x = a.uuid
        let y = b.uuid
        // Postgres orders uuids by memcmp of their 16 bytes.
        return withUnsafeBytes(of: x) { xb in
            withUnsafeBytes(of: y) { yb in
                for i in 0..<16 where xb[i] != yb[i] {
                    return xb[i] < yb[i] ? -1 : 1
                }
                return 0
            }
        }
    }

    private static func compareText(_ a: String, _ b: String) -> Int {
        // Byte-wise, as a deterministic `C` collation: Swift's `==` would equate canonically
        // equivalent but differently encoded strings, which Postgres does not.
        var ai = a.utf8.makeIterator()
        var bi = b.utf8.makeIterator()
        while true {
            switch (ai.next(), bi.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let x?, let y?) where x != y: return x < y ? -1 : 1
            default: continue
            }
        }
    }

    private static func compareDouble(_ a: Double, _ b: Double) -> Int? {
        if a.isNaN || b.isNaN {
            // Postgres sorts NaN above every other number and equal to itself.
            if a.isNaN && b.isNaN { return 0 }
            return a.isNaN ? 1 : -1
        }
        return a == b ? 0 : (a < b ? -1 : 1)
    }

    private static func compareArrays(_ a: [PolicyValue], _ b: [PolicyValue]) -> Int? {
        // Postgres' array ordering: element by element, NULL elements sorting last and equal to
        // each other, then by length.
        for (x, y) in zip(a, b) {
            switch (x.isNull, y.isNull) {
            case (true, true): continue
            case (true, false): return 1
            case (false, true): return -1
            case (false, false):
                guard let order = compare(x, y) else { return nil }
                if order != 0 { return order }
            }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }
}

// MARK: - Codable as plain JSON

/// Read and written through the house's `JSONValue`; a UUID is written as its lowercase text, and a
/// JSON object (which no policy value is) is refused.
extension PolicyValue: Codable {
    public init(from decoder: any Decoder) throws {
        func value(_ json: JSONValue) throws -> PolicyValue {
            switch json {
            case .null: return .null
            case .bool(let value): return .bool(value)
            case .int(let value): return .int(value)
            case .double(let value): return .double(value)
            case .string(let value): return .text(value)
            case .array(let values): return .array(try values.map(value))
            case .object:
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "a policy value is never an object"))
            }
        }
        self = try value(JSONValue(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        func json(_ value: PolicyValue) -> JSONValue {
            switch value {
            case .null: return .null
            case .bool(let value): return .bool(value)
            case .int(let value): return .int(value)
            case .double(let value): return .double(value)
            case .text(let value): return .string(value)
            case .uuid(let value): return .string(value.uuidString.lowercased())
            case .array(let values): return .array(values.map(json))
            }
        }
        try json(self).encode(to: encoder)
    }
}
