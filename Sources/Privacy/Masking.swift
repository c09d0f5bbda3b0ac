import Foundation
import Policy
import Postgres
import Sodium

/// How one table's rows of a subject are erased, one batch at a time (``PrivacyService/batchStatement(_:strategy:graph:)``).
struct ErasureStatement: Sendable {
    /// The statement: `$1` tenant, `$2` subject, `$3` batch size, then ``Masking/values``.
    let sql: String
    /// Whether the statement makes its rows stop matching the subject, so it runs until it changes none.
    let batched: Bool
    /// The column rewrites of an anonymisation.
    let masking: Masking?
    /// The rows one batch takes (same parameters as `sql`), for the keyed path of ``Masking``.
    let filter: String
}

/// The column rewrites of an `anonymize:` rule: SQL assignments whose every value is a bound
/// parameter, and the `hmac` columns, whose keyed hashes are computed here (the key never reaches
/// the database; only the finished hashes do).
struct Masking: Sendable {
    let table: TablePolicy
    /// `column = expression` for every method but hmac, with `{}` where the first value's parameter number goes.
    private let plain: [(assignment: @Sendable (Int) -> String, values: Int)]
    /// The quoted `hmac` columns.
    let keyed: [String]
    /// Bound values of the plain assignments, in order (text, cast in SQL to what the column takes).
    let values: [String]

    init(_ table: TablePolicy, columns: [(column: String, method: Anonymization)]) throws {
        self.table = table
        var plain: [(assignment: @Sendable (Int) -> String, values: Int)] = []
        var keyed: [String] = []
        var values: [String] = []
        for (column, method) in columns {
            let quoted = try table.quotedColumn(column)
            guard let type = table.column(named: column)?.type.canonical else {
                throw PrivacyError(.graph, "\(table.qualifiedName) has no column \(column)")
            }
            switch method {
            case .null:
                plain.append(({ _ in "\(quoted) = NULL" }, 0))
            case .redact:
                if type == "json" || type == "jsonb" {
                    plain.append(({ _ in "\(quoted) = '{}'" }, 0))
                } else if type == "text" || type.hasPrefix("character") {
                    plain.append(({ _ in "\(quoted) = '[redacted]'" }, 0))
                } else {
                    plain.append(({ _ in "\(quoted) = NULL" }, 0))
                }
            case .hmac:
                keyed.append(quoted)
            case .replace(let text):
                // The loader checked the value against the type; the cast makes Postgres parse it as such.
                plain.append(({ "\(quoted) = $\($0)::\(type)" }, 1))
                values.append(text)
            case .truncateDate(let unit):
                // timestamptz is cut in UTC whatever the session's time zone.
                switch type {
                case "date": plain.append(({ "\(quoted) = date_trunc($\($0)::text, \(quoted)::timestamp)::date" }, 1))
                case _ where type.hasSuffix("with time zone"):
                    plain.append(({ "\(quoted) = date_trunc($\($0)::text, \(quoted), 'UTC')" }, 1))
                default: plain.append(({ "\(quoted) = date_trunc($\($0)::text, \(quoted))" }, 1))
                }
                values.append(unit.rawValue)
            case .truncateIP(let ipv4, let ipv6):
                // Never widen a prefix the row already has (least); network() zeroes the host bits.
                let prefix: @Sendable (Int) -> String = {
                    "least(masklen(\(quoted)), CASE family(\(quoted)) WHEN 4 THEN $\($0)::int ELSE $\($0 + 1)::int END)"
                }
                if type == "cidr" {
                    plain.append(({ "\(quoted) = set_masklen(\(quoted), \(prefix($0)))" }, 2))
                } else {
                    plain.append(({ "\(quoted) = network(set_masklen(\(quoted), \(prefix($0))))::inet" }, 2))
                }
                values += [String(ipv4), String(ipv6)]
            }
        }
        self.plain = plain
        self.keyed = keyed
        self.values = values
    }

    /// ``values`` as bind parameters.
    var parameters: [any PostgresEncodable] { values.map { $0 as any PostgresEncodable } }

    /// The plain assignments, their values bound from `$firstParameter` on.
    func assignments(firstParameter: Int) -> String {
        var next = firstParameter
        return plain.map { entry in
            defer { next += entry.values }
            return entry.assignment(next)
        }.joined(separator: ", ")
    }

    /// Anonymises the rows `filter` picks (bound with `binds`), hmac columns included: selects
    /// them under a row lock, hashes each value under its subject's key, and writes every column
    /// in one UPDATE of exactly those rows. `subject` is the SQL expression of a row's subject
    /// (retention: many subjects), or nil with `fixedSubject` (erasure: one). A row whose subject
    /// is unknown gets NULL rather than a value hashed under no key.
    func runKeyed(
        _ connection: borrowing Connection, filter: String, binds: [any PostgresEncodable], subject: String?, fixedSubject: UUID?,
        timeout: Duration, key: (UUID) throws -> SecureBytes
    ) throws -> Int {
        let selected = keyed.enumerated().map { ", t0.\($0.element)::text AS pgw_k\($0.offset)" }.joined()
        let rows = try connection.pipeline(
            [
                Statement(
                    "SELECT t0.ctid::text AS pgw_ctid\(subject.map { ", (\($0))::text AS pgw_subject" } ?? "")\(selected) "
                        + "FROM \(table.quotedName) t0 WHERE \(filter) FOR UPDATE", binds)
            ], timeout: timeout)[0].rows
        guard !rows.isEmpty else { return 0 }
        var keys: [UUID: SecureBytes] = [:]
        var updates: [[String: String?]] = []
        let context = Array("\(table.qualifiedName)\u{0}".utf8)
        for row in rows {
            var update: [String: String?] = ["pgw_ctid": try row.decode("pgw_ctid", as: String.self)]
            let owner = try fixedSubject ?? row.decodeIfPresent("pgw_subject", as: String.self).flatMap(UUID.init(uuidString:))
            for index in keyed.indices {
                guard let value = try row.decodeIfPresent("pgw_k\(index)", as: String.self), let owner else {
                    update["pgw_k\(index)"] = .some(nil)
                    continue
                }
                let mac: SecureBytes
                if let cached = keys[owner] {
                    mac = cached
                } else {
                    mac = try key(owner)
                    keys[owner] = mac
                }
                // Per table, as before: equal values of a subject stay joinable within one table.
                update["pgw_k\(index)"] = Hex.encode(HMACSHA256.authenticate(context + Array(value.utf8), key: mac))
            }
            updates.append(update)
        }
        let record = (["pgw_ctid tid"] + keyed.indices.map { "pgw_k\($0) text" }).joined(separator: ", ")
        let assignments =
            (plain.isEmpty ? [] : [assignments(firstParameter: 2)])
            + keyed.enumerated().map { "\($0.element) = v.pgw_k\($0.offset)" }
        let binds: [any PostgresEncodable] = [try PostgresJSON(encoding: updates)] + parameters
        return try connection.pipeline(
            [
                Statement(
                    "UPDATE \(table.quotedName) AS pgw_t SET \(assignments.joined(separator: ", ")) "
                        + "FROM jsonb_to_recordset($1::jsonb) AS v(\(record)) WHERE pgw_t.ctid = v.pgw_ctid", binds)
            ], timeout: timeout)[0].affectedRows
    }
}
