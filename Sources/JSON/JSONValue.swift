import Foundation

/// A JSON value: the one the gateway passes around (JWT claims, audit details, request bodies
/// read as values, certificates of unknown shape).
///
/// Integers are kept apart from other numbers so that `exp`, `iat`, a row count or an audit
/// `seq` is written back exactly as it came (`1700000000`, not `1.7e9`). A number that fits
/// neither `Int64` nor `Double` exactly loses precision (nothing here needs more).
///
/// ``jsonText``/``canonicalBytes`` write the one canonical form (``JSONWriter``). `Policy` keeps
/// its own `PolicyValue`, which compares as Postgres does; the audit keeps `AuditValue`, a
/// wrapper over this type that refuses floats when it is built.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The string, if this is a JSON string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number as seconds, if this is a JSON number (integer or not).
    public var numberValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// The members, if this is a JSON object.
    public var objectValue: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// The elements, if this is a JSON array.
    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Whether a floating-point number occurs anywhere in the value.
    public var containsDouble: Bool {
        switch self {
        case .null, .bool, .int, .string: false
        case .double: true
        case .array(let elements): elements.contains(where: \.containsDouble)
        case .object(let members): members.values.contains(where: \.containsDouble)
        }
    }

    /// Whether any string (key or value) contains NUL, which neither Postgres text nor jsonb can store.
    public var containsNUL: Bool {
        switch self {
        case .null, .bool, .int, .double: false
        case .string(let text): text.utf8.contains(0)
        case .array(let elements): elements.contains(where: \.containsNUL)
        case .object(let members): members.contains { $0.key.utf8.contains(0) || $0.value.containsNUL }
        }
    }

    /// Compact JSON text, keys sorted: the same value always gives the same text (``JSONWriter``).
    public var jsonText: String { JSONWriter.string(self) }

    /// The same as UTF-8 bytes.
    public var canonicalBytes: [UInt8] { JSONWriter.bytes(self) }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
        case .object(let members): try container.encode(members)
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { $1 }))
    }
}
