import Foundation
import JSON
import Testing

@Suite("JSON value and canonical writer")
struct JSONWriterTests {
    @Test("object keys are sorted by their UTF-8 bytes: upper case before lower, a prefix first, non-ASCII last")
    func canonicalOrdering() {
        let value: JSONValue = ["b": 1, "a": 2, "ab": 3, "é": 4, "Z": 5, "_": 6, "": 7, "a\u{1}": 8, "😀": 9, "\u{FF61}": 10]
        #expect(value.jsonText == #"{"":7,"Z":5,"_":6,"a":2,"a\u0001":8,"ab":3,"b":1,"é":4,"｡":10,"😀":9}"#)
    }

    @Test("the audit's details example has the canonical text ENCODING.md §3 describes")
    func auditExample() {
        let details: JSONValue = ["z": 1, "a": [true, nil, "x\"y\n/é"], "ab": ["b": -5, "a": "\u{01}"], "é": "ü"]
        #expect(details.jsonText == #"{"a":[true,null,"x\"y\n/é"],"ab":{"a":"\u0001","b":-5},"z":1,"é":"ü"}"#)
        #expect(details.canonicalBytes == Array(details.jsonText.utf8))
    }

    @Test("integers are kept apart from doubles and written exactly; non-finite doubles become null")
    func numbers() throws {
        #expect(JSONValue.int(1_700_000_000).jsonText == "1700000000")
        #expect(JSONValue.int(.min).jsonText == "-9223372036854775808")
        #expect(JSONValue.int(.max).jsonText == "9223372036854775807")
        #expect(JSONValue.double(1.5).jsonText == "1.5")
        #expect(JSONValue.double(1_700_000_000).jsonText == "1700000000.0")
        #expect(JSONValue.double(.nan).jsonText == "null")
        #expect(JSONValue.double(.infinity).jsonText == "null")
        let decoded = try JSONDecoder().decode(JSONValue.self, from: Data(#"[1700000000, 1.5, -0, true, 9223372036854775807]"#.utf8))
        #expect(decoded == [.int(1_700_000_000), .double(1.5), .int(0), .bool(true), .int(.max)])
    }

    @Test("no whitespace; empty containers; nesting")
    func compact() {
        let value: JSONValue = ["list": [[], [:], [1, [2, ["k": nil]]]], "s": ""]
        #expect(value.jsonText == #"{"list":[[],{},[1,[2,{"k":null}]]],"s":""}"#)
    }

    @Test("a value survives writing and reading back, including every control character and U+2028")
    func roundTrips() throws {
        let controls = String(String.UnicodeScalarView((0..<0x20).map { UnicodeScalar(UInt8($0)) }))
        let values: [JSONValue] = [
            nil, true, false, 0, -1, .int(.min), 0.25, -1e-7, 6.02e23, "", .string(controls + "\u{2028}\u{2029}\"\\/é😀"),
            ["a": ["b": [1, "2", 3.5, nil]], "c": [:], "d": []],
        ]
        for value in values {
            let back = try JSONDecoder().decode(JSONValue.self, from: Data(value.canonicalBytes))
            #expect(back == value, "\(value.jsonText)")
            // Writing is a fixed point: the same value always has the same text.
            #expect(back.jsonText == value.jsonText)
        }
    }

    @Test("the same members in any insertion order give the same bytes")
    func orderIndependent() {
        var first: [String: JSONValue] = [:]
        var second: [String: JSONValue] = [:]
        let keys = (0..<200).map { "k\($0 * 7919 % 1000)" }
        for key in keys { first[key] = .string(key) }
        for key in keys.reversed() { second[key] = .string(key) }
        #expect(JSONValue.object(first).canonicalBytes == JSONValue.object(second).canonicalBytes)
    }

    @Test("doubles and NUL are found wherever they are nested")
    func containsDoubleAndNUL() {
        #expect(!(["a": [1, "x", nil, ["b": true]]] as JSONValue).containsDouble)
        #expect((["a": [1, ["b": 0.5]]] as JSONValue).containsDouble)
        #expect(!(["a": "b"] as JSONValue).containsNUL)
        #expect((["a": ["x\u{0}"]] as JSONValue).containsNUL)
        #expect((["a\u{0}": 1] as JSONValue).containsNUL)
    }

    @Test("malformed JSON text is refused (reading is Foundation's JSONDecoder, which also tolerates a trailing comma)")
    func malformed() {
        for text in ["", "{", #"{"a":}"#, "nul", #"{"a" 1}"#, "'x'", #"{"a":1}x"#, "[1e400]"] {
            #expect(throws: (any Error).self, "\(text)") { try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }
        }
    }
}

@Suite("House JSON encoder")
struct JSONCodingTests {
    struct Sample: Codable {
        let zeta: String
        let alpha: Int
        let at: Date
        let path: String
    }

    @Test("compact: keys sorted, slashes as they are, dates ISO 8601")
    func compactEncoder() throws {
        let sample = Sample(zeta: "z", alpha: 1, at: Date(timeIntervalSince1970: 1_767_323_045), path: "/v1/a/b")
        let text = String(decoding: try JSONCoding.encode(sample), as: UTF8.self)
        #expect(text == #"{"alpha":1,"at":"2026-01-02T03:04:05Z","path":"/v1/a/b","zeta":"z"}"#)
    }

    @Test("pretty: the same document indented (for files people read)")
    func prettyEncoder() throws {
        let text = String(decoding: try JSONCoding.encoder(pretty: true).encode(["b": "/x", "a": "y"]), as: UTF8.self)
        #expect(text == "{\n  \"a\" : \"y\",\n  \"b\" : \"/x\"\n}")
    }

    @Test("a JSONValue encoded by the house encoder reads back as the same value")
    func valueThroughEncoder() throws {
        let value: JSONValue = ["n": 1, "d": 2.5, "s": "a/b\u{1}", "l": [true, nil]]
        let data = try JSONCoding.encoder().encode(value)
        #expect(try JSONDecoder().decode(JSONValue.self, from: data) == value)
    }
}
