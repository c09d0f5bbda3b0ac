import Crypto
import Foundation

/// The streaming verifier's hot path (``AuditStream``, ``AuditVerifier/consume(row:)``):
/// an entry's canonical encoding is written straight from the bytes of its binary `COPY` row into
/// one reused buffer, and hashes are held inline, so verifying an entry allocates (almost)
/// nothing. The general path (an ``AuditEntry`` with Strings and a details dictionary,
/// ``AuditEntry/canonicalEncoding()``) measured 3.22 µs of verifier CPU per entry at 1,000,000
/// entries (benchmarks/audit-verify); it stays the reference, and rows the fast path declines
/// (non-ASCII text, details it does not read exactly as the reference does) take it.

/// A SHA-256 value held inline.
struct Hash32: Equatable, Sendable {
    private var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    init(_ digest: Crypto.SHA256.Digest) {
        self = digest.withUnsafeBytes { $0.loadUnaligned(as: Hash32.self) }
    }

    /// Nil unless `bytes` is 32 bytes.
    init?(_ bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self = bytes.withUnsafeBytes { $0.loadUnaligned(as: Hash32.self) }
    }

    var bytes: [UInt8] { withUnsafeBytes(of: self) { Array($0) } }

    /// Whether `raw` is these 32 bytes.
    func equals(_ raw: UnsafeRawBufferPointer) -> Bool {
        raw.count == 32 && raw.loadUnaligned(as: Hash32.self) == self
    }

    static func sha256(_ bytes: UnsafeRawBufferPointer) -> Hash32 {
        var hasher = Crypto.SHA256()
        hasher.update(bufferPointer: bytes)
        return Hash32(hasher.finalize())
    }

    /// RFC 9162 leaf hash: SHA-256(0x00 ‖ entry hash).
    static func leaf(_ entryHash: Hash32) -> Hash32 {
        withUnsafeTemporaryAllocation(byteCount: 33, alignment: 8) { buffer in
            buffer.storeBytes(of: 0, as: UInt8.self)
            buffer.storeBytes(of: entryHash, toByteOffset: 1, as: Hash32.self)
            return sha256(UnsafeRawBufferPointer(buffer))
        }
    }

    /// RFC 9162 node hash: SHA-256(0x01 ‖ left ‖ right).
    static func node(_ left: Hash32, _ right: Hash32) -> Hash32 {
        withUnsafeTemporaryAllocation(byteCount: 65, alignment: 8) { buffer in
            buffer.storeBytes(of: 1, as: UInt8.self)
            buffer.storeBytes(of: left, toByteOffset: 1, as: Hash32.self)
            buffer.storeBytes(of: right, toByteOffset: 33, as: Hash32.self)
            return sha256(UnsafeRawBufferPointer(buffer))
        }
    }
}

/// ``CompactRange`` over inline hashes: the verifier's running tree.
struct InlineRange: Sendable {
    private(set) var size: Int64 = 0
    private var hashes: [Hash32] = []

    init() {}

    init(_ range: CompactRange) {
        size = range.size
        hashes = range.hashes.map { Hash32($0)! }
    }

    mutating func append(_ leafHash: Hash32) {
        var hash = leafHash
        var remaining = size
        while remaining & 1 == 1 {
            hash = .node(hashes.removeLast(), hash)
            remaining >>= 1
        }
        hashes.append(hash)
        size += 1
    }

    var root: [UInt8] {
        guard var hash = hashes.last else { return MerkleTree.emptyRoot }
        for left in hashes.dropLast().reversed() { hash = .node(left, hash) }
        return hash.bytes
    }
}

/// One row of ``AuditStream/columns`` in binary `COPY` form, valid only during the callback that
/// receives it: tenant (uuid), seq (int8), at (timestamptz: µs since 2000-01-01 UTC), text
/// columns, ip (inet) and its `host()` text for IPv6 only, details (`jsonb` printed as text),
/// prev_hash and hash (bytea).
struct StreamedEntry {
    let fields: [UnsafeRawBufferPointer?]

    enum Column {
        static let tenant = 0, seq = 1, at = 2, actor = 3, action = 4, target = 5, outcome = 6, requestID = 7
        static let ip = 8, ip6 = 9, userAgent = 10, details = 11, prevHash = 12, hash = 13
        static let count = 14
    }

    func required(_ index: Int) throws -> UnsafeRawBufferPointer {
        guard let field = fields[index] else { throw AuditError(.chainCorrupt, "an audit entry has NULL in column \(index + 1)") }
        return field
    }

    func seq() throws -> Int64 {
        let bytes = try required(Column.seq)
        guard bytes.count == 8 else { throw AuditError(.chainCorrupt, "an audit entry's seq is malformed") }
        return Int64(bigEndian: bytes.loadUnaligned(as: Int64.self))
    }

    func tenantBytes() throws -> UnsafeRawBufferPointer {
        let bytes = try required(Column.tenant)
        guard bytes.count == 16 else { throw AuditError(.chainCorrupt, "an audit entry's tenant is malformed") }
        return bytes
    }

    func tenant() throws -> UUID {
        let b = try tenantBytes()
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    /// `at` as the canonical text (what `to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` prints).
    func atText() throws -> [UInt8] {
        var out: [UInt8] = []
        try Self.appendTime(try required(Column.at), to: &out)
        return out
    }

    /// The address as `host(ip)` prints it: dotted quad from the binary inet of an IPv4 address,
    /// the server's text for IPv6.
    func ipText() throws -> [UInt8]? {
        guard let inet = fields[Column.ip] else { return nil }
        if let text = fields[Column.ip6] { return Array(text) }
        // inet binary: family (2 = IPv4), bits, is_cidr, address length, address.
        guard inet.count == 8, inet[0] == 2, inet[3] == 4 else { throw AuditError(.chainCorrupt, "an audit entry's ip is malformed") }
        var out: [UInt8] = []
        for index in 4..<8 {
            if index > 4 { out.append(UInt8(ascii: ".")) }
            Self.appendDecimal(UInt64(inet[index]), to: &out)
        }
        return out
    }

    /// The entry with every field as the general path reads it.
    func entry() throws -> AuditEntry {
        func text(_ index: Int) -> String? { fields[index].map { String(decoding: $0, as: UTF8.self) } }
        return AuditEntry(
            tenantID: try tenant(), seq: try seq(), at: String(decoding: try atText(), as: UTF8.self),
            actor: text(Column.actor), action: String(decoding: try required(Column.action), as: UTF8.self), target: text(Column.target),
            outcome: String(decoding: try required(Column.outcome), as: UTF8.self), requestID: text(Column.requestID),
            ip: try ipText().map { String(decoding: $0, as: UTF8.self) }, userAgent: text(Column.userAgent),
            details: AuditSQL.details(String(decoding: try required(Column.details), as: UTF8.self)),
            prevHash: Array(try required(Column.prevHash)), hash: Array(try required(Column.hash)))
    }

    // MARK: - Formatting

    static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        if value >= 10 { appendDecimal(value / 10, to: &out) }
        out.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    private static func appendPadded(_ value: Int64, width: Int, to out: inout [UInt8]) {
        var digits = 1
        var limit: Int64 = 10
        while value >= limit, digits < 19 {
            digits += 1
            limit = limit &* 10
        }
        for _ in digits..<max(width, digits) { out.append(UInt8(ascii: "0")) }
        appendDecimal(UInt64(value), to: &out)
    }

    /// A binary timestamptz as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC (proleptic Gregorian, as
    /// PostgreSQL). `infinity` prints as to_char does not (it returns NULL, which the general
    /// path refused): the same error.
    static func appendTime(_ field: UnsafeRawBufferPointer, to out: inout [UInt8]) throws {
        guard field.count == 8 else { throw AuditError(.chainCorrupt, "an audit entry's at is malformed") }
        let micros = Int64(bigEndian: field.loadUnaligned(as: Int64.self))
        guard micros != .max, micros != .min else { throw AuditError(.chainCorrupt, "an audit entry has NULL in column 3") }
        let perDay: Int64 = 86_400_000_000
        var days = micros / perDay
        var rest = micros % perDay
        if rest < 0 {
            days -= 1
            rest += perDay
        }
        // Days since 1970-01-01 (2000-01-01 is day 10957) to a civil date (H. Hinnant's algorithm).
        let z = days + 10957 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        // to_char's YYYY of a year BC is the BC year number; it never verifies (the appender
        // stamps the database clock), but prints as to_char would.
        appendPadded(year > 0 ? year : 1 - year, width: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        appendPadded(month, width: 2, to: &out)
        out.append(UInt8(ascii: "-"))
        appendPadded(day, width: 2, to: &out)
        out.append(UInt8(ascii: "T"))
        let seconds = rest / 1_000_000
        appendPadded(seconds / 3600, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendPadded(seconds / 60 % 60, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendPadded(seconds % 60, width: 2, to: &out)
        out.append(UInt8(ascii: "."))
        appendPadded(rest % 1_000_000, width: 6, to: &out)
        out.append(UInt8(ascii: "Z"))
    }
}

/// Writes entries' canonical encodings (ENCODING.md §2) from ``StreamedEntry`` rows into one
/// reused buffer. Declines (returns false) a row with any non-ASCII text byte, whose text the
/// general path reads through `String(decoding:)`, and details that ``DetailsParser`` would not
/// read: then the caller takes the general path, so the bytes hashed never differ from it.
struct EntryEncoder: Sendable {
    private(set) var out: [UInt8] = []
    private var members: [Member] = []
    private var scratch: [UInt8] = []
    private let tenantBytes: [UInt8]
    private let tenantText: [UInt8]

    private struct Member: Sendable {
        var keyStart: Int
        var keyEnd: Int
        var outStart: Int
        var outEnd: Int
    }

    init(tenant: UUID) {
        tenantBytes = withUnsafeBytes(of: tenant.uuid) { Array($0) }
        tenantText = Array(tenant.lowercasedString.utf8)
        out.reserveCapacity(1024)
    }

    /// Whether the row's tenant is the one this encoder was made for.
    func isTenant(_ row: StreamedEntry) throws -> Bool {
        try row.tenantBytes().elementsEqual(tenantBytes)
    }

    /// The row's canonical encoding in ``out``; false when the row needs the general path.
    /// The row's tenant must be this encoder's (``isTenant(_:)``).
    mutating func encode(_ row: StreamedEntry, seq: Int64) throws -> Bool {
        typealias C = StreamedEntry.Column
        guard seq >= 0 else { return false }
        for index in Self.textColumns {
            if let field = row.fields[index], !Self.isASCII(field) { return false }
        }
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: CanonicalEncoding.entryDomain)
        field(Self.version)
        field(tenantText)
        let seqStart = beginField()
        StreamedEntry.appendDecimal(UInt64(seq), to: &out)
        endField(seqStart)
        let atStart = beginField()
        try StreamedEntry.appendTime(try row.required(C.at), to: &out)
        endField(atStart)
        field(row.fields[C.actor])
        field(try row.required(C.action))
        field(row.fields[C.target])
        field(try row.required(C.outcome))
        field(row.fields[C.requestID])
        if let ip = try row.ipText() { field(ip) } else { field(nil as UnsafeRawBufferPointer?) }
        field(row.fields[C.userAgent])
        let detailsStart = beginField()
        var position = 0
        guard details(try row.required(C.details), &position) else { return false }
        endField(detailsStart)
        field(try row.required(C.prevHash))
        return true
    }

    private static let version = Array("v1".utf8)
    private static let textColumns: [Int] = {
        typealias C = StreamedEntry.Column
        return [C.actor, C.action, C.target, C.outcome, C.requestID, C.ip6, C.userAgent, C.details]
    }()

    private static func typed(_ raw: UnsafeRawBufferPointer) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: UInt8.self), count: raw.count)
    }

    /// Whether every byte is below 0x80, eight at a time.
    static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        var any: UInt64 = 0
        while index + 8 <= bytes.count {
            any |= bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < bytes.count {
            any |= UInt64(bytes[index])
            index += 1
        }
        return any & 0x8080_8080_8080_8080 == 0
    }

    // MARK: - Fields

    private mutating func appendLength(_ length: UInt32) {
        out.append(UInt8(length >> 24))
        out.append(UInt8(length >> 16 & 0xFF))
        out.append(UInt8(length >> 8 & 0xFF))
        out.append(UInt8(length & 0xFF))
    }

    private mutating func field(_ bytes: [UInt8]) {
        appendLength(UInt32(bytes.count))
        out.append(contentsOf: bytes)
    }

    private mutating func field(_ bytes: UnsafeRawBufferPointer?) {
        guard let bytes else {
            appendLength(CanonicalEncoding.nullLength)
            return
        }
        appendLength(UInt32(bytes.count))
        out.append(contentsOf: Self.typed(bytes))
    }

    /// Reserves the length of a field written next; ``endField(_:)`` fills it in.
    private mutating func beginField() -> Int {
        appendLength(0)
        return out.count
    }

    private mutating func endField(_ start: Int) {
        let length = UInt32(out.count - start)
        out[start - 4] = UInt8(length >> 24)
        out[start - 3] = UInt8(length >> 16 & 0xFF)
        out[start - 2] = UInt8(length >> 8 & 0xFF)
        out[start - 1] = UInt8(length & 0xFF)
    }

    // MARK: - details: jsonb text to canonical JSON

    /// The canonical JSON of the `details::text` PostgreSQL printed (an object), appended to
    /// ``out``. Declines exactly what ``DetailsParser`` declines, and also `\/` and `\u` escapes,
    /// `-0`, raw control characters and repeated keys. Keys are reordered from jsonb's order
    /// (shorter first) to byte order; strings and integers are copied as printed, which for
    /// what is accepted is their canonical form (PostgreSQL escapes `"` `\` and control
    /// characters exactly as ENCODING.md §3 does).
    private mutating func details(_ input: UnsafeRawBufferPointer, _ position: inout Int) -> Bool {
        skipSpace(input, &position)
        guard position < input.count, input[position] == UInt8(ascii: "{"), value(input, &position, depth: 0) else { return false }
        skipSpace(input, &position)
        return position == input.count
    }

    private func skipSpace(_ input: UnsafeRawBufferPointer, _ position: inout Int) {
        while position < input.count {
            let byte = input[position]
            guard byte == 0x20 || byte == 0x0A || byte == 0x09 || byte == 0x0D else { return }
            position += 1
        }
    }

    private mutating func value(_ input: UnsafeRawBufferPointer, _ position: inout Int, depth: Int) -> Bool {
        guard depth < 64 else { return false }
        skipSpace(input, &position)
        guard position < input.count else { return false }
        switch input[position] {
        case UInt8(ascii: "{"):
            return object(input, &position, depth: depth)
        case UInt8(ascii: "["):
            position += 1
            out.append(UInt8(ascii: "["))
            skipSpace(input, &position)
            if position < input.count, input[position] == UInt8(ascii: "]") {
                position += 1
                out.append(UInt8(ascii: "]"))
                return true
            }
            while true {
                guard value(input, &position, depth: depth + 1) else { return false }
                skipSpace(input, &position)
                guard position < input.count else { return false }
                if input[position] == UInt8(ascii: ",") {
                    position += 1
                    out.append(UInt8(ascii: ","))
                } else if input[position] == UInt8(ascii: "]") {
                    position += 1
                    out.append(UInt8(ascii: "]"))
                    return true
                } else {
                    return false
                }
            }
        case UInt8(ascii: "\""):
            guard let end = stringEnd(input, position, key: false) else { return false }
            out.append(contentsOf: Self.typed(UnsafeRawBufferPointer(rebasing: input[position...end])))
            position = end + 1
            return true
        case UInt8(ascii: "t"):
            return literal("true", input, &position)
        case UInt8(ascii: "f"):
            return literal("false", input, &position)
        case UInt8(ascii: "n"):
            return literal("null", input, &position)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return number(input, &position)
        default:
            return false
        }
    }

    private mutating func object(_ input: UnsafeRawBufferPointer, _ position: inout Int, depth: Int) -> Bool {
        position += 1
        out.append(UInt8(ascii: "{"))
        let objectStart = out.count
        skipSpace(input, &position)
        if position < input.count, input[position] == UInt8(ascii: "}") {
            position += 1
            out.append(UInt8(ascii: "}"))
            return true
        }
        let base = members.count
        defer { members.removeSubrange(base...) }
        while true {
            skipSpace(input, &position)
            guard position < input.count, input[position] == UInt8(ascii: "\""),
                let keyEnd = stringEnd(input, position, key: true)
            else { return false }
            if members.count > base { out.append(UInt8(ascii: ",")) }
            let outStart = out.count
            out.append(contentsOf: Self.typed(UnsafeRawBufferPointer(rebasing: input[position...keyEnd])))
            let keyStart = position + 1
            position = keyEnd + 1
            skipSpace(input, &position)
            guard position < input.count, input[position] == UInt8(ascii: ":") else { return false }
            position += 1
            out.append(UInt8(ascii: ":"))
            guard value(input, &position, depth: depth + 1) else { return false }
            members.append(Member(keyStart: keyStart, keyEnd: keyEnd, outStart: outStart, outEnd: out.count))
            skipSpace(input, &position)
            guard position < input.count else { return false }
            if input[position] == UInt8(ascii: ",") {
                position += 1
            } else if input[position] == UInt8(ascii: "}") {
                position += 1
                break
            } else {
                return false
            }
        }
        func key(_ member: Member) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: input[member.keyStart..<member.keyEnd]) }
        func less(_ a: Member, _ b: Member) -> Bool { key(a).lexicographicallyPrecedes(key(b)) }
        var sorted = true
        for index in (base + 1)..<max(base + 1, members.count) where !less(members[index - 1], members[index]) {
            sorted = false
            break
        }
        if !sorted {
            members[base...].sort(by: less)
            for index in (base + 1)..<members.count where key(members[index - 1]).elementsEqual(key(members[index])) {
                return false  // a repeated key
            }
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: out[objectStart...])
            out.removeSubrange(objectStart...)
            for (index, member) in members[base...].enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: scratch[(member.outStart - objectStart)..<(member.outEnd - objectStart)])
            }
        }
        out.append(UInt8(ascii: "}"))
        return true
    }

    /// The index of the closing quote of the string opening at `start`; nil for a string the
    /// fast path declines (raw control characters; `\/`, `\u` escapes; any escape in a key).
    private func stringEnd(_ input: UnsafeRawBufferPointer, _ start: Int, key: Bool) -> Int? {
        var index = start + 1
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "\"") { return index }
            if byte < 0x20 { return nil }
            if byte == UInt8(ascii: "\\") {
                guard !key, index + 1 < input.count else { return nil }
                switch input[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                    UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                    continue
                default:
                    return nil
                }
            }
            index += 1
        }
        return nil
    }

    private mutating func literal(_ word: StaticString, _ input: UnsafeRawBufferPointer, _ position: inout Int) -> Bool {
        let count = word.utf8CodeUnitCount
        guard position + count <= input.count else { return false }
        for index in 0..<count where input[position + index] != word.utf8Start[index] { return false }
        out.append(contentsOf: UnsafeBufferPointer(start: word.utf8Start, count: count))
        position += count
        return true
    }

    /// An integer within Int64 in plain decimal, copied; nil for fractions, exponents, leading
    /// zeros, `-0` and overflow.
    private mutating func number(_ input: UnsafeRawBufferPointer, _ position: inout Int) -> Bool {
        let start = position
        let negative = input[position] == UInt8(ascii: "-")
        if negative { position += 1 }
        let digitsStart = position
        while position < input.count, input[position] >= UInt8(ascii: "0"), input[position] <= UInt8(ascii: "9") { position += 1 }
        let digits = UnsafeRawBufferPointer(rebasing: input[digitsStart..<position])
        guard digits.count > 0, digits.count == 1 || digits[0] != UInt8(ascii: "0") else { return false }
        if negative, digits.count == 1, digits[0] == UInt8(ascii: "0") { return false }
        if position < input.count,
            input[position] == UInt8(ascii: ".") || input[position] == UInt8(ascii: "e") || input[position] == UInt8(ascii: "E")
        {
            return false
        }
        if digits.count > 19 { return false }
        if digits.count == 19 {
            let limit = negative ? Self.int64MinDigits : Self.int64MaxDigits
            if limit.lexicographicallyPrecedes(digits) { return false }
        }
        out.append(contentsOf: Self.typed(UnsafeRawBufferPointer(rebasing: input[start..<position])))
        return true
    }

    private static let int64MaxDigits = Array("9223372036854775807".utf8)
    private static let int64MinDigits = Array("9223372036854775808".utf8)
}
