import Audit
import Foundation
import JSON
import Testing

/// AuditValue is a JSONValue without floats; the rule holds however a value is made.
@Suite("Audit details values")
struct AuditValueTests {
    @Test("a JSONValue holding a float anywhere is refused as a detail")
    func floatsRefusedAtConstruction() {
        let nested: JSONValue = ["a": [1, ["b": 0.5]]]
        let plain: JSONValue = ["a": [1, "x", nil, true]]
        #expect(AuditValue(JSONValue.double(1)) == nil)
        #expect(AuditValue(nested) == nil)
        #expect(AuditValue(JSONValue.double(.nan)) == nil)
        #expect(AuditValue(plain)?.json == plain)
    }

    @Test("decoding refuses a nested float and a number beyond Int64, and accepts the rest")
    func floatsRefusedWhenDecoded() throws {
        for text in [#"{"a": [1, 2.5]}"#, #"{"a": {"b": 2.5e-1}}"#, #"{"a": 9223372036854775808}"#] {
            #expect(throws: DecodingError.self, "\(text)") { try JSONDecoder().decode([String: AuditValue].self, from: Data(text.utf8)) }
        }
        let decoded = try JSONDecoder().decode([String: AuditValue].self, from: Data(#"{"a": [1, "2", null, {"b": false}]}"#.utf8))
        #expect(decoded == ["a": [1, "2", nil, ["b": false]]])
        // As before the move: an integral exponent form is read as the integer it is (jsonb prints it so).
        #expect(try JSONDecoder().decode([String: AuditValue].self, from: Data(#"{"n": 1e3}"#.utf8)) == ["n": 1000])
    }

    @Test("factories and literals build the same value as the JSONValue they wrap")
    func factories() {
        let built: AuditValue = .object(["n": .int(-5), "s": .string("x"), "l": .array([.bool(true), .null])])
        #expect(built == ["n": -5, "s": "x", "l": [true, nil]])
        #expect(built.json == ["n": -5, "s": "x", "l": [true, nil]])
        #expect(built.objectValue?["s"]?.stringValue == "x")
    }
}
