import Foundation
@testable import Gateway
import Testing

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test("strings are escaped so a log line is always one valid JSON object")
    func escaping() throws {
        var line = ""
        JSONLogHandler.appendString("a\"b\\c\nd\u{01}é", to: &line)
        #expect(line == #""a\"b\\c\nd\u0001é""#)
        let decoded = try JSONSerialization.jsonObject(with: Data("[\(line)]".utf8)) as? [String]
        #expect(decoded == ["a\"b\\c\nd\u{01}é"])
    }

    @Test("timestamps are RFC 3339 UTC with milliseconds")
    func timestamp() {
        let text = JSONLogHandler.timestamp()
        #expect(text.count == 24)
        #expect(text.hasSuffix("Z"))
        #expect(ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withFullDate]).prefix(4) == text.prefix(4))
    }
}
