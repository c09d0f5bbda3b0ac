import Foundation
import JSON
import Testing

@Suite("JSON escaper")
struct JSONEscaperTests {
    /// What RFC 8259 allows, with the one choice PostgreSQL's escape_json and the audit's
    /// canonical form (ENCODING.md §3) make per character.
    static func expected(_ byte: UInt8) -> String {
        switch byte {
        case 0x08: #"\b"#
        case 0x09: #"\t"#
        case 0x0A: #"\n"#
        case 0x0C: #"\f"#
        case 0x0D: #"\r"#
        default: String(format: #"\u%04x"#, byte)
        }
    }

    @Test("every control character U+0000…U+001F has exactly one escape, and it decodes back")
    func everyControlCharacter() throws {
        for byte in UInt8(0)..<0x20 {
            let text = String(UnicodeScalar(byte))
            let quoted = JSONEscaper.quoted(text)
            #expect(quoted == "\"" + Self.expected(byte) + "\"", "U+\(String(byte, radix: 16))")
            #expect(try JSONDecoder().decode(String.self, from: Data(quoted.utf8)) == text, "U+\(String(byte, radix: 16))")
        }
    }

    @Test("quote and backslash are escaped; slash, DEL and non-ASCII are copied as they are")
    func quoteBackslashAndTheRest() throws {
        #expect(JSONEscaper.quoted(#"a"b\c"#) == #""a\"b\\c""#)
        #expect(JSONEscaper.quoted("/x/\u{7F}é€😀") == "\"/x/\u{7F}é€😀\"")
        #expect(JSONEscaper.quoted("") == #""""#)
    }

    @Test("U+2028 and U+2029 are valid JSON as they are: copied raw, and they decode back")
    func lineAndParagraphSeparators() throws {
        let text = "a\u{2028}b\u{2029}c"
        var bytes: [UInt8] = []
        JSONEscaper.appendQuoted(text, to: &bytes)
        #expect(bytes == [0x22, 0x61, 0xE2, 0x80, 0xA8, 0x62, 0xE2, 0x80, 0xA9, 0x63, 0x22])
        #expect(try JSONDecoder().decode(String.self, from: Data(bytes)) == text)
    }

    @Test("ill-formed UTF-8 (a lone surrogate's bytes) never reaches the output: a String holds U+FFFD instead")
    func illFormedInputBecomesReplacementCharacters() throws {
        // ED A0 80 would be U+D800, which UTF-8 forbids; Swift decodes it as three U+FFFD.
        let text = String(decoding: [0x61, 0xED, 0xA0, 0x80, 0x62], as: UTF8.self)
        #expect(text == "a\u{FFFD}\u{FFFD}\u{FFFD}b")
        let quoted = JSONEscaper.quoted(text)
        #expect(String(validatingUTF8: quoted) != nil)
        #expect(try JSONDecoder().decode(String.self, from: Data(quoted.utf8)) == text)
    }

    @Test("a JSON text with an escaped lone surrogate is refused, so none is ever written back")
    func escapedLoneSurrogate() throws {
        for text in [#""\ud800""#, #""\udc00x""#, #""\ud800\u0041""#, #"{"\udfff": 1}"#] {
            #expect(throws: (any Error).self, "\(text)") { try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }
        }
        // A well-formed pair is one character, written as its four UTF-8 bytes.
        let pair = try JSONDecoder().decode(JSONValue.self, from: Data(#""\ud83d\ude00""#.utf8))
        #expect(pair == .string("😀"))
        #expect(pair.canonicalBytes == Array("\"😀\"".utf8))
    }

    @Test("the byte form and the String form agree for every byte value of a UTF-8 text")
    func bytesAndStringsAgree() {
        let text = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self) + "é\u{2028}😀"
        var fromBytes: [UInt8] = []
        JSONEscaper.appendQuoted(Array(text.utf8), to: &fromBytes)
        #expect(String(decoding: fromBytes, as: UTF8.self) == JSONEscaper.quoted(text))
    }
}
