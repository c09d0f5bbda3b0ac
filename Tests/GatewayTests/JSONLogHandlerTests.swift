import Foundation
import Logging
import Testing

@testable import Gateway

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

    @Test("a line is one JSON object: the handler's metadata with the event's on top, control characters escaped")
    func line() throws {
        let event = LogEvent(
            level: .info, message: "request \"x\"\n",
            metadata: ["route": "/rest/v1/{table}", "request_id": "override", "n": .array(["a", .dictionary(["b": "c"])])],
            source: nil, file: #fileID, function: #function, line: #line)
        var bytes: [UInt8] = []
        JSONLogHandler.format(
            event: event, label: "privacy-gateway", metadata: ["request_id": "abc", "trace_id": "0af7651916cd43dd8448eb211c80319c"],
            into: &bytes)
        #expect(bytes.last == UInt8(ascii: "\n") && bytes.dropLast().allSatisfy { $0 != UInt8(ascii: "\n") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["msg"] as? String == "request \"x\"\n")
        #expect(object["level"] as? String == "info")
        #expect(object["logger"] as? String == "privacy-gateway")
        #expect(object["request_id"] as? String == "override")
        #expect(object["trace_id"] as? String == "0af7651916cd43dd8448eb211c80319c")
        #expect(object["route"] as? String == "/rest/v1/{table}")
        #expect((object["ts"] as? String)?.count == 24)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix(#"{"ts":""#))
        #expect(text.contains(#""msg":"request \"x\"\n","n":["a",{"b":"c"}],"request_id":"override","route""#), "\(text)")
    }

    @Test("timestamps are RFC 3339 UTC with milliseconds")
    func timestamp() {
        let text = JSONLogHandler.timestamp()
        #expect(text.count == 24)
        #expect(text.hasSuffix("Z"))
        #expect(ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withFullDate]).prefix(4) == text.prefix(4))
    }
}
