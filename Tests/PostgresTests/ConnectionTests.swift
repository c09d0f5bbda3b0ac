import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Connections and queries")
struct ConnectionTests {
    @Test("a malformed connection string is refused with libpq's reason")
    func malformedConnectionString() throws {
        let error = #expect(throws: PostgresError.self) { try PostgresConfiguration("postgresql://user@host:notaport/db") }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("invalid database connection string") == true)
        #expect(throws: PostgresError.self) { try PostgresConfiguration("   ") }
        #expect(throws: PostgresError.self) { try PostgresConfiguration("postgresql://u@h/db?no_such_option=1") }
        #expect(throws: PostgresError.self) { try PostgresConfiguration("host=localhost port") }
        // libpq quotes the token it cannot parse; a password must not come back in the error.
        for text in ["postgresql://u:s3cr%zzet@h/db", "host=h password=s3cr%zzet dbname", "host=h password='s3cr%zzet"] {
            let refused = #expect(throws: PostgresError.self) { try PostgresConfiguration(text) }
            #expect(refused.map { !"\($0)".contains("s3cr") } == true, "\(String(describing: refused))")
        }
    }

    @Test("a connection string's password never appears in its redacted form")
    func redactsPassword() throws {
        let configuration = try PostgresConfiguration("postgresql://alice:hunter2@db.example:6543/app")
        #expect(configuration.redacted == "alice@db.example:6543/app")
        #expect(!configuration.redacted.contains("hunter2"))
    }

    @Test("a server that is down gives one clear connection error")
    func serverDown() async throws {
        let pool = ConnectionPool(configuration: try PostgresConfiguration("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"))
        defer { pool.close() }
        let error = await #expect(throws: PostgresError.self) { try await pool.ping() }
        #expect(error?.code == .connectionFailed)
        #expect(error?.message.contains("cannot connect to nobody@127.0.0.1:1/none") == true)
        #expect(pool.statistics.open == 0)
    }

    @Test("a text parameter holding NUL is refused before anything is sent, never cut short at it")
    func nulInTextParameter() async throws {
        let pool = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { pool.close() }
        let error = await #expect(throws: PostgresError.self) {
            try await pool.pipeline([Statement("SELECT $1::text = 'abc' AS same", ["abc\u{0}x"])])
        }
        #expect(error?.sqlState == "22021")
        // The connection is untouched and still serves.
        #expect(try await pool.query("SELECT $1::text AS t", ["abc"]).rows[0].decode("t", as: String.self) == "abc")
    }

    @Test("typed values round-trip through bind parameters")
    func typedRoundTrip() async throws {
        let pool = ConnectionPool(configuration: try TestDatabase.ownerConfiguration())
        defer { pool.close() }
        let id = UUID()
        let now = Date(timeIntervalSince1970: 1_790_000_000.123456)
        let bytes: [UInt8] = [0, 1, 2, 0xfe, 0xff]
        let row = try #require(
            try await pool.query(
                """
                SELECT $1::text AS t, $2::int AS i, $3::bigint AS b, $4::bool AS f, $5::numeric AS n,
                       $6::uuid AS u, $7::timestamptz AS ts, $8::jsonb AS j, $9::bytea AS by,
                       $10::text[] AS arr, $11::text AS nothing
                """,
                [
                    "héllo, 'world'", 42, Int64(9_007_199_254_740_993), true, Decimal(string: "12345.678901")!,
                    id, now, PostgresJSON(#"{"a": [1, 2]}"#), bytes, PostgresTextArray(["a", "b c", "\"q\"", nil, "NULL"]),
                    String?.none,
                ]
            ).first)
        #expect(try row.decode("t", as: String.self) == "héllo, 'world'")
        #expect(try row.decode("i", as: Int.self) == 42)
        #expect(try row.decode("b", as: Int64.self) == 9_007_199_254_740_993)
        #expect(try row.decode("f", as: Bool.self) == true)
        #expect(try row.decode("n", as: Decimal.self) == Decimal(string: "12345.678901")!)
        #expect(try row.decode("u", as: UUID.self) == id)
        #expect(abs(try row.decode("ts", as: Date.self).timeIntervalSince(now)) < 0.000_001)
        #expect(try row.decode("j", as: PostgresJSON.self).text == #"{"a": [1, 2]}"#)
        #expect(try row.decode("by", as: [UInt8].self) == bytes)
        #expect(try row.decode("arr", as: PostgresTextArray.self).elements == ["a", "b c", "\"q\"", nil, "NULL"])
        #expect(try row.decodeIfPresent("nothing", as: String.self) == nil)
        #expect(throws: PostgresError.self) { try row.decode("nothing", as: String.self) }
        #expect(throws: PostgresError.self) { try row.decode("t", as: Int.self) }
    }

    @Test("timestamps in other zones and before 1970 decode exactly")
    func timestampEdgeCases() async throws {
        let pool = ConnectionPool(configuration: try TestDatabase.ownerConfiguration())
        defer { pool.close() }
        let row = try #require(
            try await pool.query(
                """
                SELECT '1969-07-20 20:17:40.5+00'::timestamptz AS moon, '2024-02-29 23:59:59-05:30'::timestamptz AS leap
                """
            ).first)
        #expect(try row.decode("moon", as: Date.self).timeIntervalSince1970 == -14_182_939.5)
        #expect(try row.decode("leap", as: Date.self).timeIntervalSince1970 == 1_709_270_999)
    }

    @Test("SQL in a value stays a value")
    func injectionIsInert() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            let pool = ConnectionPool(configuration: configuration)
            defer { pool.close() }
            try await pool.query("CREATE TABLE notes (body text)")
            let hostile = "x'); DROP TABLE notes; --"
            try await pool.query("INSERT INTO notes (body) VALUES ($1)", [hostile])
            let rows = try await pool.query("SELECT body FROM notes").rows
            #expect(rows.count == 1)
            #expect(try rows[0].decode("body", as: String.self) == hostile)
        }
    }

    @Test("server errors carry SQLSTATE, detail and position")
    func serverErrors() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            let pool = ConnectionPool(configuration: configuration)
            defer { pool.close() }
            try await pool.query("CREATE TABLE people (email text PRIMARY KEY)")
            try await pool.query("INSERT INTO people VALUES ($1)", ["a@example.com"])
            let duplicate = await #expect(throws: PostgresError.self) {
                try await pool.query("INSERT INTO people VALUES ($1)", ["a@example.com"])
            }
            #expect(duplicate?.sqlState == "23505")
            #expect(duplicate?.code == .server)
            #expect(duplicate?.detail?.contains("already exists") == true)

            let syntax = await #expect(throws: PostgresError.self) { try await pool.query("SELEKT 1") }
            #expect(syntax?.sqlState == "42601")
            #expect(syntax?.position == 1)

            // The connection is still usable after errors.
            #expect(try await pool.query("SELECT count(*) AS n FROM people").first?.decode("n", as: Int.self) == 1)
        }
    }

    @Test("a pipeline is one implicit transaction: a failure undoes the statements before it")
    func pipelineAtomicity() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            let pool = ConnectionPool(configuration: configuration, options: .init(maxConnections: 1))
            defer { pool.close() }
            try await pool.query("CREATE TABLE items (id int PRIMARY KEY)")
            let results = try await pool.withConnection { connection in
                try await connection.pipeline([
                    Statement("INSERT INTO items VALUES ($1)", [1]),
                    Statement("INSERT INTO items VALUES ($1)", [2]),
                    Statement("SELECT count(*) AS n FROM items"),
                ])
            }
            #expect(results.count == 3)
            #expect(results[0].affectedRows == 1)
            #expect(try results[2].first?.decode("n", as: Int.self) == 2)

            let error = await #expect(throws: PostgresError.self) {
                try await pool.withConnection { connection in
                    try await connection.pipeline([
                        Statement("INSERT INTO items VALUES ($1)", [3]),
                        Statement("INSERT INTO items VALUES ($1)", [1]),  // duplicate
                        Statement("INSERT INTO items VALUES ($1)", [4]),
                    ])
                }
            }
            #expect(error?.sqlState == "23505")
            let ids = try await pool.query("SELECT id FROM items ORDER BY id").rows.map { try $0.decode("id", as: Int.self) }
            #expect(ids == [1, 2])
        }
    }

    @Test("a statement that fails to prepare is not cached, so a later fix works")
    func failedPrepareNotCached() async throws {
        try await TestDatabase.withFreshDatabase { configuration in
            let pool = ConnectionPool(configuration: configuration, options: .init(maxConnections: 1))
            defer { pool.close() }
            await #expect(throws: PostgresError.self) { try await pool.query("SELECT * FROM later") }
            try await pool.query("CREATE TABLE later (x int)")
            #expect(try await pool.query("SELECT * FROM later").rows.isEmpty)
        }
    }

    @Test("a failed transaction rolls back and the connection is reused cleanly")
    func transactionRollback() async throws {
        struct Abort: Error {}
        try await TestDatabase.withFreshDatabase { configuration in
            let pool = ConnectionPool(configuration: configuration, options: .init(maxConnections: 1))
            defer { pool.close() }
            try await pool.query("CREATE TABLE ledger (amount int)")
            await #expect(throws: Abort.self) {
                try await pool.transaction { connection in
                    try connection.query("INSERT INTO ledger VALUES ($1)", [100])
                    throw Abort()
                }
            }
            let isolation = try await pool.transaction(isolation: .serializable) { connection in
                try connection.query("SELECT current_setting('transaction_isolation') AS level").first!.decode("level", as: String.self)
            }
            #expect(isolation == "serializable")
            #expect(try await pool.query("SELECT count(*) AS n FROM ledger").first?.decode("n", as: Int.self) == 0)
        }
    }

    @Test("a statement timeout cancels only the statements it was given for")
    func statementTimeout() async throws {
        let pool = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { pool.close() }
        let error = await #expect(throws: PostgresError.self) {
            try await pool.withConnection { try await $0.pipeline([Statement("SELECT pg_sleep(5)")], timeout: .milliseconds(100)) }
        }
        #expect(error?.sqlState == "57014")
        let setting = try await pool.query("SELECT current_setting('statement_timeout') AS t").first?.decode("t", as: String.self)
        #expect(setting == "0")
        // Inside an explicit transaction the timeout does not outlive its statements either.
        let inside = try await pool.transaction { connection -> String in
            _ = try connection.pipeline([Statement("SELECT 1")], timeout: .seconds(3))
            return try connection.query("SELECT current_setting('statement_timeout') AS t").first!.decode("t")
        }
        #expect(inside == "0")
    }

    @Test("COPY TO STDOUT streams every row and a consumer can stop it")
    func copyOut() async throws {
        let pool = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { pool.close() }
        let (rows, bytes) = try await pool.withConnection { connection in
            try await connection.run { connection -> (Int, Int) in
                var bytes = 0
                let rows = try connection.copyOut("COPY (SELECT g, md5(g::text) FROM generate_series(1, 20000) g) TO STDOUT") { chunk in
                    bytes += chunk.count
                }
                return (rows, bytes)
            }
        }
        #expect(rows == 20000)
        #expect(bytes > 20000 * 34)

        struct Enough: Error {}
        await #expect(throws: Enough.self) {
            try await pool.withConnection { connection in
                try await connection.run { connection in
                    var seen = 0
                    try connection.copyOut("COPY (SELECT g FROM generate_series(1, 10000000) g) TO STDOUT") { _ in
                        seen += 1
                        if seen == 10 { throw Enough() }
                    }
                }
            }
        }
        #expect(try await pool.query("SELECT 7 AS n").first?.decode("n", as: Int.self) == 7)
    }

    @Test("COPY is scoped by a bound setting, not by values in its text")
    func copyScopedBySetting() async throws {
        let pool = ConnectionPool(configuration: try TestDatabase.ownerConfiguration(), options: .init(maxConnections: 1))
        defer { pool.close() }
        let text = try await pool.transaction { connection -> String in
            try connection.query("SELECT set_config('export.subject', $1, true)", ["O'Brien"])
            var out = ""
            try connection.copyOut("COPY (SELECT current_setting('export.subject') AS who) TO STDOUT") { chunk in
                out += String(decoding: chunk, as: UTF8.self)
            }
            return out
        }
        #expect(text == "O'Brien\n")
    }
}
