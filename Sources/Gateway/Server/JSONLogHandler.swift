import Foundation
import JSON
import Logging
import Synchronization

/// One JSON object per line on standard error: `ts`, `level`, `logger`, `msg` and the metadata
/// (request id, trace id, tenant, route, status, latency…), keys after `msg` in sorted order.
/// Callers put no secrets in metadata; this handler cannot tell them apart, so the rule is
/// enforced where log lines are written.
///
/// Written by hand rather than through JSONSerialization and ISO8601DateFormatter: on the request
/// path those two cost more CPU than the rest of a request together (measured with perf). The
/// line is built as bytes and written with one write(2): no `Data`, no `FileHandle`, and the
/// timestamp's date and time are formatted once per second, only the milliseconds per line.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    /// One line at a time, so concurrent lines never interleave (a pipe guarantees that only up to PIPE_BUF).
    private static let output = Mutex<Void>(())

    public init(label: String, level: Logger.Level = .info) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line: [UInt8] = []
        line.reserveCapacity(320)
        Self.format(event: event, label: label, metadata: metadata, into: &line)
        Self.output.withLock { _ in
            line.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        return  // stderr closed or full: a log line is not worth blocking or crashing for
                    }
                }
            }
        }
    }

    /// The line, newline included: the handler's metadata with the event's on top.
    static func format(event: LogEvent, label: String, metadata: Logger.Metadata, into line: inout [UInt8]) {
        line.append(contentsOf: #"{"ts":""#.utf8)
        appendTimestamp(to: &line)
        line.append(contentsOf: #"","level":""#.utf8)
        line.append(contentsOf: event.level.rawValue.utf8)
        line.append(contentsOf: #"","logger":"#.utf8)
        appendString(label, to: &line)
        line.append(contentsOf: #","msg":"#.utf8)
        appendString(event.message.description, to: &line)
        let extra = event.metadata ?? [:]
        var keys = Array(metadata.keys)
        for key in extra.keys where metadata[key] == nil { keys.append(key) }
        keys.sort()
        for key in keys {
            line.append(UInt8(ascii: ","))
            appendString(key, to: &line)
            line.append(UInt8(ascii: ":"))
            append(extra[key] ?? metadata[key]!, to: &line)
        }
        line.append(contentsOf: "}\n".utf8)
    }

    // MARK: - Timestamp

    /// The formatted `YYYY-MM-DDTHH:MM:SS.` of the current second, reused within it.
    private static let second = Mutex<(seconds: Int, prefix: [UInt8])>((-1, []))

    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        var bytes: [UInt8] = []
        appendTimestamp(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func appendTimestamp(to line: inout [UInt8]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let seconds = Int(now.tv_sec)
        second.withLock { cached in
            if cached.seconds != seconds {
                var time = now.tv_sec
                var parts = tm()
                gmtime_r(&time, &parts)
                var prefix: [UInt8] = []
                prefix.reserveCapacity(20)
                appendDigits(Int(parts.tm_year) + 1900, width: 4, to: &prefix)
                prefix.append(UInt8(ascii: "-"))
                appendDigits(Int(parts.tm_mon) + 1, width: 2, to: &prefix)
                prefix.append(UInt8(ascii: "-"))
                appendDigits(Int(parts.tm_mday), width: 2, to: &prefix)
                prefix.append(UInt8(ascii: "T"))
                appendDigits(Int(parts.tm_hour), width: 2, to: &prefix)
                prefix.append(UInt8(ascii: ":"))
                appendDigits(Int(parts.tm_min), width: 2, to: &prefix)
                prefix.append(UInt8(ascii: ":"))
                appendDigits(Int(parts.tm_sec), width: 2, to: &prefix)
                prefix.append(UInt8(ascii: "."))
                cached = (seconds, prefix)
            }
            line.append(contentsOf: cached.prefix)
        }
        appendDigits(Int(now.tv_nsec / 1_000_000), width: 3, to: &line)
        line.append(UInt8(ascii: "Z"))
    }

    /// `value` (≥ 0) in decimal, zero-padded to `width`.
    private static func appendDigits(_ value: Int, width: Int, to line: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = max(0, value)
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0 && count < 8
            for _ in count..<max(count, width) { line.append(UInt8(ascii: "0")) }
            for index in stride(from: count - 1, through: 0, by: -1) { line.append(buffer[index]) }
        }
    }

    // MARK: - JSON values

    private static func append(_ value: Logger.Metadata.Value, to line: inout [UInt8]) {
        switch value {
        case .string(let string): appendString(string, to: &line)
        case .stringConvertible(let convertible): appendString(convertible.description, to: &line)
        case .array(let array):
            line.append(UInt8(ascii: "["))
            for (index, element) in array.enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                append(element, to: &line)
            }
            line.append(UInt8(ascii: "]"))
        case .dictionary(let dictionary):
            line.append(UInt8(ascii: "{"))
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                appendString(key, to: &line)
                line.append(UInt8(ascii: ":"))
                append(dictionary[key]!, to: &line)
            }
            line.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string literal, as bytes (the house escaper).
    static func appendString(_ string: String, to line: inout [UInt8]) {
        JSONEscaper.appendQuoted(string, to: &line)
    }

    /// The same literal appended to a String (tests).
    static func appendString(_ string: String, to line: inout String) {
        var bytes: [UInt8] = []
        appendString(string, to: &bytes)
        line += String(decoding: bytes, as: UTF8.self)
    }
}
