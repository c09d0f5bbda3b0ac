import Foundation
import Postgres
import Sodium
import TestSupport
import Testing

@testable import Audit

/// The verification stream (binary COPY) and its fast `details` reader read exactly what the
/// row-by-row reader reads.
@Suite("Verification stream")
struct StreamTests {
    @Test("the fast details reader declines what it might read differently, and agrees with JSONDecoder on the rest")
    func detailsReader() throws {
        // Declined: the general path decides (floats, exponents, \u escapes, overflow, repeated keys, not an object, junk).
        for text in [
            #"{"a": 1.5}"#, #"{"a": 1e3}"#, #"{"a": "\u00e9"}"#, #"{"a": 9223372036854775808}"#, #"{"a": 1, "a": 2}"#,
            #"[1]"#, #"{"a": 01}"#, #"{"a": tru}"#, #"{"a": 1} x"#, #"{"a": "x"#, "{\"a\": \"\u{01}\"}", "",
        ] {
            #expect(DetailsParser.parse(text) == nil, "\(text)")
        }
        for text in [
            #"{}"#, #"{"n": 5}"#, #"{"n": -9223372036854775808, "m": 9223372036854775807}"#,
            #"{"a": [], "b": {}, "c": [1, "x", null, true, false]}"#,
            #"{"s": "quote \" backslash \\ slash \/ tab \t nl \n cr \r bs \b ff \f"}"#,
            #"{"é": "ünïcode ✓", "nested": {"deep": [{"x": [0]}]}}"#,
            #"{"changed": {"marketing_consent": {"to": true, "from": false}}, "user_id": "4f1c"}"#,
        ] {
            let fast = try #require(DetailsParser.parse(text), "\(text)")
            #expect(fast == (try JSONDecoder().decode([String: AuditValue].self, from: Data(text.utf8))), "\(text)")
            #expect(AuditSQL.details(text) == fast)
        }
        // A float in a hand-edited row stays readable as "unreadable", so that entry fails its hash.
        #expect(AuditSQL.details(#"{"a": 1.5}"#) == ["$unreadable": .string(#"{"a": 1.5}"#)])
    }

    @Test("a binary COPY row split at any byte across messages parses to the same fields")
    func splitMessages() throws {
        // Header, one row of two fields ("ab", NULL), trailer.
        let stream: [UInt8] =
            BinaryCopyParser.signature + [0, 0, 0, 0, 0, 0, 0, 0]
            + [0, 2, 0, 0, 0, 2, UInt8(ascii: "a"), UInt8(ascii: "b"), 0xFF, 0xFF, 0xFF, 0xFF] + [0xFF, 0xFF]
        for split in 0...stream.count {
            var parser = BinaryCopyParser(columns: 2)
            var rows: [[String?]] = []
            for part in [Array(stream[..<split]), Array(stream[split...])] {
                try part.withUnsafeBytes { bytes in
                    try parser.feed(bytes) { fields in rows.append(fields.map { $0.map { String(decoding: $0, as: UTF8.self) } }) }
                }
            }
            #expect(rows == [["ab", nil]], "split at \(split)")
            #expect(parser.finished)
        }
        var wrong = BinaryCopyParser(columns: 3)
        #expect(throws: AuditError.self) {
            try stream.withUnsafeBytes { try wrong.feed($0) { _ in } }
        }
    }

    @Test("the stream reads every column as the row reader does, NULLs and odd details included, in seq order within its bounds")
    func streamMatchesRows() async throws {
        try await AuditFixture.with { fixture in
            _ = try await fixture.appender.append(tenant: fixture.tenant, AuditEvent(action: "secret.list"))
            try await fixture.appendSequentially(5)
            _ = try await fixture.appender.append(
                tenant: fixture.tenant,
                AuditEvent(
                    actor: "a\tb\\c", action: "privacy.settings_updated", target: "t\n", outcome: .denied, ip: "2001:db8::1",
                    details: ["s": "é \u{01} \"q\"", "l": [1, -2, nil, true], "o": ["k": ["x": 9_223_372_036_854_775_807]]]))
            try await fixture.tamper(
                "UPDATE public.audit_events SET details = '{\"f\": 1.5}' WHERE tenant_id = $1 AND seq = 3", [fixture.tenant])
            let rows = try await AuditReader.entries(pool: fixture.gateway, tenant: fixture.tenant, limit: 100)
            let tenant = fixture.tenant
            let streamed = try await fixture.gateway.transaction(isolation: .repeatableRead) { connection in
                var entries: [AuditEntry] = []
                let count = try AuditStream.entries(tenant, from: 1, through: nil, connection: connection) { entries.append($0) }
                #expect(count == entries.count)
                return entries
            }
            #expect(streamed == rows && rows.count == 7)
            #expect(streamed[2].details == ["$unreadable": .string(#"{"f": 1.5}"#)])
            let middle = try await fixture.gateway.transaction(isolation: .repeatableRead) { connection in
                var seqs: [Int64] = []
                _ = try AuditStream.entries(tenant, from: 2, through: 4, connection: connection) { seqs.append($0.seq) }
                return seqs
            }
            #expect(middle == [2, 3, 4])
        }
    }

    @Test("stamps printed from binary timestamptz are to_char's text, leap days, the epoch and year edges included")
    func stampsMatchToChar() async throws {
        try await AuditFixture.with { fixture in
            let stamps = [
                "2000-01-01 00:00:00+00", "1999-12-31 23:59:59.999999+00", "1970-01-01 00:00:00+00", "2024-02-29 12:34:56.000001+00",
                "2100-03-01 00:00:00+00", "1900-02-28 23:59:59+00", "2400-02-29 06:07:08.09+00", "0001-01-01 00:00:00+00",
                "9999-12-31 23:59:59.999999+00", "1582-10-10 10:10:10+00", "2026-12-06 11:00:00.5+03", "1969-12-31 23:59:59.999999+00",
            ]
            let pairs = try await fixture.gateway.transaction { connection in
                var parser = BinaryCopyParser(columns: 2)
                var pairs: [(String, String)] = []
                let list = stamps.map { "'\($0)'::timestamptz" }.joined(separator: ", ")
                _ = try connection.copyOut(
                    "COPY (SELECT t, to_char(t AT TIME ZONE 'UTC', \(AuditSQL.canonicalTimeFormat)) FROM unnest(ARRAY[\(list)]) AS t) TO STDOUT (FORMAT binary)"
                ) { message in
                    try parser.feed(message) { fields in
                        var printed: [UInt8] = []
                        try StreamedEntry.appendTime(fields[0]!, to: &printed)
                        pairs.append((String(decoding: printed, as: UTF8.self), String(decoding: fields[1]!, as: UTF8.self)))
                    }
                }
                return pairs.map { [$0.0, $0.1] }
            }
            #expect(pairs.count == stamps.count)
            for pair in pairs { #expect(pair[0] == pair[1]) }
        }
    }

    @Test(
        "the streamed verifier hashes the bytes the general path hashes, declines what it might read differently, and reaches the same verdicts on tampered rows"
    )
    func fastEncodingMatchesGeneral() async throws {
        try await AuditFixture.with { fixture in
            let events: [AuditEvent] = [
                AuditEvent(action: "secret.list"),
                AuditEvent(
                    actor: "a\tb\\c", action: "x.y", target: "t\n", outcome: .denied, requestID: "r", ip: "2001:db8::1", userAgent: "ua",
                    details: [
                        "s": "q \"x\" \t\n\r\u{08}\u{0C} \u{7f} \\ /", "l": [1, -2, nil, true, false, [], [:]],
                        "o": ["k": ["x": 9_223_372_036_854_775_807]],
                    ]),
                // jsonb orders keys shorter first; canonical JSON by bytes: reordered at every depth.
                AuditEvent(
                    action: "x.y", ip: "10.1.2.3",
                    details: [
                        "zz": 1, "a": ["bbb": 1, "cc": 2, "d": [["yy": -9_223_372_036_854_775_808, "x": 0]]], "b": "", "aaa": nil,
                        "Z": true,
                    ]),
                AuditEvent(action: "x.y", ip: "::ffff:10.0.0.1", details: ["é": "ünïcode"]),  // not ASCII: the general path
                AuditEvent(actor: "ünï", action: "x.y", ip: "fe80::1"),
                AuditEvent(action: "x.y", ip: "255.255.255.255", details: ["ab": 1, "b": 2, "a": 3]),
            ]
            for event in events { _ = try await fixture.appender.append(tenant: fixture.tenant, event) }
            try await fixture.appendSequentially(4)
            _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            try await fixture.appendSequentially(4)
            let tenant = fixture.tenant
            func compare() async throws -> (fast: Int, general: Int) {
                try await fixture.gateway.transaction(isolation: .repeatableRead) { connection in
                    var encoder = EntryEncoder(tenant: tenant)
                    var counts = (fast: 0, general: 0)
                    _ = try AuditStream.rows(tenant, from: 1, through: nil, connection: connection) { row in
                        let seq = try row.seq()
                        if try encoder.encode(row, seq: seq) {
                            let general = try row.entry().canonicalEncoding()
                            #expect(encoder.out == general, "seq \(seq)")
                            counts.fast += 1
                        } else {
                            counts.general += 1
                        }
                    }
                    return counts
                }
            }
            let counts = try await compare()
            #expect(counts.general == 2 && counts.fast == 12)
            #expect(try await fixture.verifyLive().isValid)

            // Hand-edited rows: the streamed verification names the same failures as the general path.
            for (seq, details) in [
                (2, #"{"f": 1.5}"#), (3, #"{"a": -0}"#), (6, #"{"b": 2, "a": 3, "ab": 1}"#), (7, #"{"x": "\u0001"}"#),
                (8, #"{"n": 1e3}"#), (9, #"{"k": [1, {"z": 1, "y": 2}]}"#), (12, #"{"big": 92233720368547758070}"#),
            ] {
                try await fixture.tamper(
                    "UPDATE public.audit_events SET details = $2::jsonb WHERE tenant_id = $1 AND seq = $3", [tenant, details, Int64(seq)])
            }
            try await fixture.tamper(
                "UPDATE public.audit_events SET at = at + interval '1 microsecond', ip = '10.0.0.9' WHERE tenant_id = $1 AND seq = 10",
                [tenant])
            _ = try await compare()
            let fast = try await fixture.verifyLive()
            let general = try await fixture.gateway.transaction(isolation: .repeatableRead) { connection in
                let checkpoints = try connection.query(
                    "SELECT \(AuditSQL.checkpointColumns) FROM public.audit_checkpoints WHERE tenant_id = $1 ORDER BY seq", [tenant]
                ).rows.map(AuditSQL.checkpoint)
                let head = try connection.query("SELECT seq, hash FROM public.audit_heads WHERE tenant_id = $1", [tenant]).first!
                var entries: [AuditEntry] = []
                _ = try AuditStream.entries(tenant, from: 1, through: nil, connection: connection) { entries.append($0) }
                return AuditVerifier.verify(
                    tenant: tenant, entries: entries, checkpoints: checkpoints, trustedKeys: fixture.trustedKeys,
                    expectedHead: (try head.decode("seq", as: Int64.self), try head.decode("hash", as: [UInt8].self)))
            }
            #expect(fast.failures == general.failures)
            #expect(Set(fast.failures.filter { $0.kind == .hashMismatch }.compactMap(\.seq)) == [2, 3, 7, 8, 9, 10, 12])
            #expect(fast.entriesChecked == 14 && general.entriesChecked == 14)
        }
    }

    @Test("a bundle read a few bytes at a time verifies as when read whole, and names the same faults")
    func chunkedBundle() async throws {
        try await AuditFixture.with { fixture in
            try await fixture.appendSequentially(12)
            _ = try await fixture.checkpointer.checkpoint(tenant: fixture.tenant)
            try await fixture.appendSequentially(3)
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            _ = try await AuditBundle.export(pool: fixture.gateway, tenant: fixture.tenant, to: directory)
            for chunk in [1, 7, 300, 1 << 20] {
                let report = try AuditBundle.verify(
                    directory: directory, trustedKeys: fixture.trustedKeys, witnesses: WitnessPolicy(), chunkSize: chunk)
                #expect(report.isValid && report.entriesChecked == 15 && report.lastVerifiedCheckpoint == 12, "chunk \(chunk)")
            }
            // A line replaced by junk, and the trailing newline dropped: the same failures in the same order at any chunk size.
            let url = directory.appendingPathComponent(AuditBundle.entriesFile)
            var lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
            lines[4] = "not json"
            try Data(lines.joined(separator: "\n").utf8).write(to: url)
            let whole = try AuditBundle.verify(directory: directory, trustedKeys: fixture.trustedKeys)
            #expect(whole.failures.first?.detail == "entries.jsonl does not match its SHA-256 in the manifest")
            #expect(whole.failures.contains { $0.detail == "entries.jsonl line 5 is not an entry" } && whole.has(.gap, at: 6))
            for chunk in [1, 5, 64] {
                let report = try AuditBundle.verify(
                    directory: directory, trustedKeys: fixture.trustedKeys, witnesses: WitnessPolicy(), chunkSize: chunk)
                #expect(report.failures == whole.failures && report.entriesChecked == 14, "chunk \(chunk)")
            }
        }
    }
}
