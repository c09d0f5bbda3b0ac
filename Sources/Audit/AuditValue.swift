import Foundation
import JSON

/// A JSON value in an entry's `details`: a ``JSONValue`` that holds no floating-point number.
///
/// Deliberately without floats: a float has several textual forms (and jsonb rewrites some of
/// them), which would make the canonical encoding ambiguous. Integers, strings, booleans, null,
/// arrays and objects round-trip through jsonb exactly. The rule is kept where a value is built:
/// the factories below take no float, ``init(_:)`` refuses a ``JSONValue`` holding one, and
/// decoding refuses one — so ``JSONWriter``'s canonical form of the details is the one
/// ENCODING.md §3 specifies.
public struct AuditValue: Sendable, Hashable {
    /// The value; never contains `.double`.
    public let json: JSONValue

    init(unchecked json: JSONValue) { self.json = json }

    /// `json` as a detail; nil when it holds a floating-point number anywhere.
    public init?(_ json: JSONValue) {
        guard !json.containsDouble else { return nil }
        self.json = json
    }

    /// JSON `null`.
    public static let null = AuditValue(unchecked: .null)
    public static func bool(_ value: Bool) -> AuditValue { AuditValue(unchecked: .bool(value)) }
    public static func int(_ value: Int64) -> AuditValue { AuditValue(unchecked: .int(value)) }
    public static func string(_ value: String) -> AuditValue { AuditValue(unchecked: .string(value)) }
    public static func array(_ values: [AuditValue]) -> AuditValue { AuditValue(unchecked: .array(values.map(\.json))) }
    public static func object(_ members: [String: AuditValue]) -> AuditValue {
        AuditValue(unchecked: .object(members.mapValues(\.json)))
    }

    /// The string, if this is a JSON string.
    public var stringValue: String? { json.stringValue }

    /// The members, if this is a JSON object.
    public var objectValue: [String: AuditValue]? { json.objectValue?.mapValues(AuditValue.init(unchecked:)) }
}

extension AuditValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self.init(unchecked: .string(value)) }
    public init(integerLiteral value: Int64) { self.init(unchecked: .int(value)) }
    public init(booleanLiteral value: Bool) { self.init(unchecked: .bool(value)) }
    public init(arrayLiteral elements: AuditValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, AuditValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self.init(unchecked: .null) }
}

extension AuditValue: Codable {
    public init(from decoder: any Decoder) throws {
        guard let value = AuditValue(try JSONValue(from: decoder)) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "audit details hold only null, booleans, integers, strings, arrays and objects"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws { try json.encode(to: encoder) }
}

/// Canonical JSON (ENCODING.md §3) of an entry's details: ``JSONWriter``'s form, which is that
/// section's (keys by UTF-8 bytes, no whitespace, one escape per character, plain integers).
enum CanonicalJSON {
    static func encode(_ object: [String: AuditValue]) -> [UInt8] {
        var out: [UInt8] = []
        JSONWriter.appendObject(object, to: &out, value: \.json)
        return out
    }

    static func string(_ object: [String: AuditValue]) -> String {
        String(decoding: encode(object), as: UTF8.self)
    }

    /// Whether any string (key or value) contains NUL, which neither text nor jsonb can store.
    static func containsNUL(_ value: AuditValue) -> Bool { value.json.containsNUL }
}
