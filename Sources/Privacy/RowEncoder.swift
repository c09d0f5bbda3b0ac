import JSON
import Policy

/// Turns one row of `COPY … TO STDOUT` (text format: tab-separated, `\N` for NULL, backslash
/// escapes) into a CSV line and a JSON object, byte by byte — one pass over the data for both files.
struct RowEncoder {
    enum Kind {
        case string, number, boolean, json
    }

    let names: [[UInt8]]
    let kinds: [Kind]
    private var field: [UInt8] = []

    init(columns: [(name: String, kind: Kind)]) {
        names = columns.map {
            var name: [UInt8] = []
            JSONEscaper.appendQuoted($0.name, to: &name)
            return name
        }
        kinds = columns.map(\.kind)
        field.reserveCapacity(4096)
    }

    static func kind(of type: SQLType) -> Kind {
        let canonical = type.canonical
        if canonical.hasSuffix("[]") || canonical == "json" || canonical == "jsonb" { return .json }
        if canonical == "boolean" { return .boolean }
        if ["smallint", "integer", "bigint", "real", "double precision"].contains(canonical) || canonical.hasPrefix("numeric") {
            return .number
        }
        return .string
    }

    /// Appends the row's CSV line (with `\n`) to `csv` and its JSON object (no separator) to `json`.
    mutating func encode(_ row: UnsafeRawBufferPointer, csv: inout [UInt8], json: inout [UInt8]) {
        var end = row.count
        if end > 0 && row[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        json.append(UInt8(ascii: "{"))
        var column = 0
        var start = 0
        while column < kinds.count {
            var stop = start
            while stop < end && row[stop] != 0x09 { stop += 1 }
            if column > 0 {
                csv.append(UInt8(ascii: ","))
                json.append(UInt8(ascii: ","))
            }
            json.append(contentsOf: names[column])
            json.append(UInt8(ascii: ":"))
            if stop - start == 2 && row[start] == 0x5C && row[start + 1] == UInt8(ascii: "N") {
                json.append(contentsOf: Self.null)
            } else if let plain = Self.plainSlice(row, start, stop) {
                // Fast path, the common case: nothing to unescape, quote or escape — copy the bytes as they are.
                csv.append(contentsOf: plain.bytes)
                switch kinds[column] {
                case .string:
                    if plain.jsonSafe {
                        json.append(UInt8(ascii: "\""))
                        json.append(contentsOf: plain.bytes)
                        json.append(UInt8(ascii: "\""))
                    } else {
                        field.removeAll(keepingCapacity: true)
                        field.append(contentsOf: plain.bytes)
                        writeJSON(&json, kind: .string)
                    }
                case .json:
                    json.append(contentsOf: plain.bytes)
                default:
                    field.removeAll(keepingCapacity: true)
                    field.append(contentsOf: plain.bytes)
                    writeJSON(&json, kind: kinds[column])
                }
            } else {
                if Self.hasBackslash(row, start, stop) {
                    unescape(row, start, stop)
                } else {
                    field.removeAll(keepingCapacity: true)
                    field.append(contentsOf: UnsafeRawBufferPointer(rebasing: row[start..<stop]))
                }
                writeCSV(&csv)
                writeJSON(&json, kind: kinds[column])
            }
            column += 1
            start = stop + 1
        }
        csv.append(UInt8(ascii: "\n"))
        json.append(UInt8(ascii: "}"))
    }

    static let null = Array("null".utf8)

    @inline(__always)
    static func hasBackslash(_ row: UnsafeRawBufferPointer, _ start: Int, _ stop: Int) -> Bool {
        var index = start
        while index < stop {
            if row[index] == 0x5C { return true }
            index += 1
        }
        return false
    }

    /// The field's bytes when they need no unescaping and no CSV quoting (no backslash, comma,
    /// quote; never empty), with whether they are also safe inside a JSON string as they are.
    @inline(__always)
    static func plainSlice(_ row: UnsafeRawBufferPointer, _ start: Int, _ stop: Int) -> (bytes: UnsafeRawBufferPointer, jsonSafe: Bool)? {
        guard stop > start else { return nil }
        var jsonSafe = true
        var index = start
        while index < stop {
            let byte = row[index]
            if byte == 0x5C || byte == UInt8(ascii: ",") || byte == UInt8(ascii: "\"") { return nil }
            if byte < 0x20 { jsonSafe = false }
            index += 1
        }
        return (UnsafeRawBufferPointer(rebasing: row[start..<stop]), jsonSafe)
    }

    private mutating func unescape(_ row: UnsafeRawBufferPointer, _ start: Int, _ stop: Int) {
        field.removeAll(keepingCapacity: true)
        var index = start
        while index < stop {
            let byte = row[index]
            if byte == 0x5C && index + 1 < stop {
                index += 1
                switch row[index] {
                case UInt8(ascii: "n"): field.append(0x0A)
                case UInt8(ascii: "r"): field.append(0x0D)
                case UInt8(ascii: "t"): field.append(0x09)
                case UInt8(ascii: "b"): field.append(0x08)
                case UInt8(ascii: "f"): field.append(0x0C)
                case UInt8(ascii: "v"): field.append(0x0B)
                default: field.append(row[index])
                }
            } else {
                field.append(byte)
            }
            index += 1
        }
    }

    private func writeCSV(_ out: inout [UInt8]) {
        let needsQuotes =
            field.isEmpty || field.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D }
        guard needsQuotes else {
            out.append(contentsOf: field)
            return
        }
        out.append(UInt8(ascii: "\""))
        for byte in field {
            if byte == UInt8(ascii: "\"") { out.append(byte) }
            out.append(byte)
        }
        out.append(UInt8(ascii: "\""))
    }

    private func writeJSON(_ out: inout [UInt8], kind: Kind) {
        switch kind {
        case .json:
            out.append(contentsOf: field)
        case .boolean:
            out.append(contentsOf: field.first == UInt8(ascii: "t") ? Array("true".utf8) : Array("false".utf8))
        case .number:
            // NaN and Infinity are not JSON numbers.
            if field.contains(where: {
                ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z"))
            }) {
                JSONEscaper.appendQuoted(field, to: &out)
            } else {
                out.append(contentsOf: field)
            }
        case .string:
            JSONEscaper.appendQuoted(field, to: &out)
        }
    }
}
