/// Splits and decodes a raw query string the way PostgREST (http-types'
/// `parseQueryReplacePlus True`) does, with one deliberate difference noted below.
enum QueryStringGrammar {
    struct Parameter: Sendable, Hashable {
        var key: String
        /// `nil` for a bare key without `=`.
        var value: String?
    }

    /// `a=1&b=x%20y+z&c` → `[("a","1"), ("b","x y z"), ("c",nil)]`.
    ///
    /// - `+` is a space, as in PostgREST (clients encode a literal plus as `%2B`).
    /// - `%HH` is a byte; a `%` not followed by two hex digits stays a literal `%`, as in http-types.
    /// - Only `&` separates parameters. http-types also splits on `;`; this parser does not
    ///   (WHATWG URL rules), so a `;` stays in its value, where it is harmless text or a parse error.
    /// - Empty pieces (`a=1&&b=2`) are skipped; a leading `?` is ignored.
    /// - Decoded bytes must be UTF-8, or the request is refused with `PGRST100`.
    static func parse(_ raw: String) throws(RESTGrammarError) -> [Parameter] {
        var bytes = Array(raw.utf8)
        if bytes.first == UInt8(ascii: "?") { bytes.removeFirst() }
        var parameters: [Parameter] = []
        for piece in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let key: ArraySlice<UInt8>
            let value: ArraySlice<UInt8>?
            if let equals = piece.firstIndex(of: UInt8(ascii: "=")) {
                key = piece[piece.startIndex..<equals]
                value = piece[(equals + 1)...]
            } else {
                key = piece
                value = nil
            }
            let index = parameters.count
            var decodedValue: String?
            if let value { decodedValue = try decode(value, index: index) }
            parameters.append(Parameter(key: try decode(key, index: index), value: decodedValue))
        }
        return parameters
    }

    private static func decode(_ encoded: ArraySlice<UInt8>, index: Int) throws(RESTGrammarError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(encoded.count)
        var position = encoded.startIndex
        while position < encoded.endIndex {
            let byte = encoded[position]
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), position + 2 < encoded.endIndex,
                let high = hexValue(encoded[position + 1]), let low = hexValue(encoded[position + 2])
            {
                bytes.append(high << 4 | low)
                position += 2
            } else {
                bytes.append(byte)
            }
            position += 1
        }
        let text = String(decoding: bytes, as: UTF8.self)
        // Decoding replaces invalid sequences with U+FFFD; a changed byte count or content means invalid input.
        guard text.utf8.elementsEqual(bytes) else {
            throw RESTGrammarError(
                .malformed, code: "PGRST100", "failed to parse query string",
                details: "query parameter \(index + 1) is not valid UTF-8 after percent-decoding")
        }
        return text
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
