import Foundation
import JSON
import Postgres

/// Streams a tenant's entries out of the database for verification: one `COPY … TO STDOUT
/// (FORMAT binary)` in seq order, consumed row by row in constant memory while the server keeps
/// producing (keyset pages would leave it idle while each page is checked, and text rows would
/// need hex-decoding of both hashes). Measured with benchmarks/audit-verify.
enum AuditStream {
    /// The columns streamed, in ``StreamedEntry/Column`` order. `at` and `ip` travel in binary and
    /// are printed by the client (``StreamedEntry``): the server's `to_char` and `host()` for every
    /// row cost more than the rest of the row; only an IPv6 address is printed by the server
    /// (its `host()` text is the canonical form, ENCODING.md §2).
    static let columns = """
        tenant_id, seq, at, actor, action, target, outcome, request_id, ip,
        CASE WHEN family(ip) = 6 THEN host(ip) END AS ip6, user_agent, details::text AS details, prev_hash, hash
        """

    /// Feeds the entries `from…through` (to the end when nil) to `body` in seq order and returns
    /// how many rows were read. Must run inside the caller's transaction (the bounds travel as
    /// transaction-local settings: COPY takes no bind parameters).
    static func entries(
        _ tenant: UUID, from: Int64, through: Int64?, connection: borrowing Connection, _ body: (AuditEntry) throws -> Void
    ) throws -> Int {
        try rows(tenant, from: from, through: through, connection: connection) { try body(try $0.entry()) }
    }

    /// As ``entries(_:from:through:connection:_:)``, each row as its raw fields (valid only
    /// during the call): the verifier hashes them without building an ``AuditEntry``.
    static func rows(
        _ tenant: UUID, from: Int64, through: Int64?, connection: borrowing Connection, _ body: (StreamedEntry) throws -> Void
    ) throws -> Int {
        _ = try connection.pipeline([
            Statement(
                """
                SELECT set_config('privacy_audit.stream_tenant', $1, true), set_config('privacy_audit.stream_from', $2, true),
                       set_config('privacy_audit.stream_through', $3, true)
                """,
                [tenant.lowercasedString, String(from), String(through ?? Int64.max)])
        ])
        var parser = BinaryCopyParser(columns: StreamedEntry.Column.count)
        var rows = 0
        try connection.copyOut(
            """
            COPY (SELECT \(columns) FROM public.audit_events
                  WHERE tenant_id = current_setting('privacy_audit.stream_tenant')::uuid
                    AND seq >= current_setting('privacy_audit.stream_from')::bigint
                    AND seq <= current_setting('privacy_audit.stream_through')::bigint
                  ORDER BY seq) TO STDOUT (FORMAT binary)
            """
        ) { message in
            try parser.feed(message) { fields in
                try body(StreamedEntry(fields: fields))
                rows += 1
            }
        }
        guard parser.finished else { throw AuditError(.chainCorrupt, "the entries' COPY stream ended in the middle of a row") }
        return rows
    }
}

/// PostgreSQL's binary COPY format (the `COPY` reference, "Binary Format"): an 11-byte signature,
/// flags, a header extension, then per row a 16-bit field count and per field a 32-bit length
/// (-1 for NULL) and the bytes, then a field count of -1. Fed CopyData messages in any
/// chunking; a row split across messages is carried over.
struct BinaryCopyParser {
    static let signature: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00]

    let columns: Int
    private var headerRead = false
    private(set) var finished = false
    private var carry: [UInt8] = []

    init(columns: Int) { self.columns = columns }

    /// Parses every complete row in `message` (after what was carried over) and calls `row`
    /// with its fields, valid only during the call.
    mutating func feed(_ message: UnsafeRawBufferPointer, _ row: ([UnsafeRawBufferPointer?]) throws -> Void) throws {
        if carry.isEmpty {
            let used = try parse(message, row)
            if used < message.count { carry.append(contentsOf: message[used...]) }
        } else {
            carry.append(contentsOf: message)
            let pending = carry
            let used = try pending.withUnsafeBytes { try parse($0, row) }
            carry.removeFirst(used)
        }
    }

    private mutating func parse(_ bytes: UnsafeRawBufferPointer, _ row: ([UnsafeRawBufferPointer?]) throws -> Void) throws -> Int {
        var position = 0
        func int16(_ at: Int) -> Int16 { Int16(bitPattern: UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])) }
        func int32(_ at: Int) -> Int32 {
            Int32(bitPattern: UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3]))
        }
        if !headerRead {
            guard bytes.count >= 19 else { return 0 }
            guard bytes.prefix(11).elementsEqual(Self.signature) else {
                throw AuditError(.chainCorrupt, "the COPY stream is not in binary format")
            }
            let extensionLength = Int(int32(15))
            guard extensionLength >= 0 else { throw AuditError(.chainCorrupt, "the COPY stream's header is malformed") }
            guard bytes.count >= 19 + extensionLength else { return 0 }
            position = 19 + extensionLength
            headerRead = true
        }
        var fields = [UnsafeRawBufferPointer?](repeating: nil, count: columns)
        while position + 2 <= bytes.count, !finished {
            let count = int16(position)
            if count == -1 {
                finished = true
                return position + 2
            }
            guard Int(count) == columns else { throw AuditError(.chainCorrupt, "a COPY row has \(count) fields, not \(columns)") }
            var cursor = position + 2
            var complete = true
            for index in 0..<columns {
                guard cursor + 4 <= bytes.count else { complete = false; break }
                let length = Int(int32(cursor))
                cursor += 4
                if length < 0 {
                    fields[index] = nil
                    continue
                }
                guard cursor + length <= bytes.count else { complete = false; break }
                fields[index] = UnsafeRawBufferPointer(rebasing: bytes[cursor..<cursor + length])
                cursor += length
            }
            if !complete { return position }
            try row(fields)
            position = cursor
        }
        return position
    }
}

/// A fast reader for the `details::text` PostgreSQL prints for a jsonb object, for the
/// verification hot path (Foundation's JSONDecoder costs several microseconds an entry).
/// Returns nil for anything but plain objects of strings without `\u` escapes, integers within
/// Int64, booleans, null, arrays and objects without repeated keys: the caller then takes the
/// JSONDecoder path, so the value read never differs from it.
enum DetailsParser {
    static func parse(_ text: String) -> [String: AuditValue]? {
        var text = text
        return text.withUTF8 { buffer -> [String: AuditValue]? in
            var parser = Parser(bytes: buffer)
            guard case .object(let members)? = parser.value(depth: 0) else { return nil }
            parser.skipSpace()
            // Built as JSONValue and wrapped once: the parser reads no floats (number() declines them).
            return parser.position == buffer.count ? members.mapValues(AuditValue.init(unchecked:)) : nil
        }
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        mutating func skipSpace() {
            while position < bytes.count,
                bytes[position] == 0x20 || bytes[position] == 0x0A || bytes[position] == 0x09 || bytes[position] == 0x0D
            {
                position += 1
            }
        }

        mutating func value(depth: Int) -> JSONValue? {
            guard depth < 64 else { return nil }
            skipSpace()
            guard position < bytes.count else { return nil }
            switch bytes[position] {
            case UInt8(ascii: "{"):
                position += 1
                var members: [String: JSONValue] = [:]
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .object(members)
                }
                while true {
                    skipSpace()
                    guard let key = string() else { return nil }
                    skipSpace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { return nil }
                    position += 1
                    guard let member = value(depth: depth + 1), members.updateValue(member, forKey: key) == nil else { return nil }
                    skipSpace()
                    guard position < bytes.count else { return nil }
                    if bytes[position] == UInt8(ascii: ",") {
                        position += 1
                    } else if bytes[position] == UInt8(ascii: "}") {
                        position += 1
                        return .object(members)
                    } else {
                        return nil
                    }
                }
            case UInt8(ascii: "["):
                position += 1
                var elements: [JSONValue] = []
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(elements)
                }
                while true {
                    guard let element = value(depth: depth + 1) else { return nil }
                    elements.append(element)
                    skipSpace()
                    guard position < bytes.count else { return nil }
                    if bytes[position] == UInt8(ascii: ",") {
                        position += 1
                    } else if bytes[position] == UInt8(ascii: "]") {
                        position += 1
                        return .array(elements)
                    } else {
                        return nil
                    }
                }
            case UInt8(ascii: "\""):
                return string().map(JSONValue.string)
            case UInt8(ascii: "t"):
                return literal("true") ? .bool(true) : nil
            case UInt8(ascii: "f"):
                return literal("false") ? .bool(false) : nil
            case UInt8(ascii: "n"):
                return literal("null") ? JSONValue.null : nil
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return number()
            default:
                return nil
            }
        }

        private mutating func literal(_ word: StaticString) -> Bool {
            let count = word.utf8CodeUnitCount
            guard position + count <= bytes.count else { return false }
            for index in 0..<count where bytes[position + index] != word.utf8Start[index] { return false }
            position += count
            return true
        }

        /// An integer in plain decimal; nil for fractions, exponents, leading zeros or overflow.
        private mutating func number() -> JSONValue? {
            let negative = bytes[position] == UInt8(ascii: "-")
            if negative { position += 1 }
            let start = position
            var magnitude: UInt64 = 0
            while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
                let (times, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times.addingReportingOverflow(UInt64(bytes[position] - UInt8(ascii: "0")))
                if overflow1 || overflow2 { return nil }
                magnitude = sum
                position += 1
            }
            let digits = position - start
            guard digits > 0, digits == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
            if position < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[position]) { return nil }
            if negative {
                guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
                return .int(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude))
            }
            guard magnitude <= UInt64(Int64.max) else { return nil }
            return .int(Int64(magnitude))
        }

        /// A string at `position` (its opening quote); nil for `\u` escapes or raw control characters.
        private mutating func string() -> String? {
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { return nil }
            position += 1
            let start = position
            var escaped: [UInt8]?
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    let text =
                        escaped.map { String(decoding: $0, as: UTF8.self) }
                        ?? String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                    position += 1
                    return text
                }
                if byte < 0x20 { return nil }
                if byte == UInt8(ascii: "\\") {
                    if escaped == nil { escaped = Array(bytes[start..<position]) }
                    guard position + 1 < bytes.count else { return nil }
                    let replacement: UInt8
                    switch bytes[position + 1] {
                    case UInt8(ascii: "\""): replacement = UInt8(ascii: "\"")
                    case UInt8(ascii: "\\"): replacement = UInt8(ascii: "\\")
                    case UInt8(ascii: "/"): replacement = UInt8(ascii: "/")
                    case UInt8(ascii: "b"): replacement = 0x08
                    case UInt8(ascii: "f"): replacement = 0x0C
                    case UInt8(ascii: "n"): replacement = 0x0A
                    case UInt8(ascii: "r"): replacement = 0x0D
                    case UInt8(ascii: "t"): replacement = 0x09
                    default: return nil
                    }
                    escaped!.append(replacement)
                    position += 2
                    continue
                }
                escaped?.append(byte)
                position += 1
            }
            return nil
        }
    }
}
