import Foundation
import HTTPTypes
import Policy
import Postgres

/// How a read's rows become the answer, beyond plain JSON: CSV (`Accept: text/csv`), JSON with
/// nulls stripped (`Accept: application/vnd.pgrst.array+json;nulls=stripped`), and the totals of
/// `Prefer: count=exact|planned|estimated`. All of it is built in SQL, in the read's own statement
/// or the one after it, so it costs no extra round trip.
enum RESTRepresentation {
    /// `count=estimated` counts exactly up to this many rows and takes the planner's estimate
    /// beyond (PostgREST uses `db-max-rows` as the threshold; the gateway has no such setting).
    static let estimatedCountThreshold = 1000

    // MARK: Bodies

    /// The aggregate over `_pgw_row` that yields `body` for a read.
    ///
    /// - CSV: a header of the output names, then one line per row, RFC 4180 quoting (a value is
    ///   quoted when it holds `"`, `,`, CR or LF, or is empty; NULL is an empty field), as
    ///   PostgREST renders `text/csv` (header + rows, built by Postgres).
    /// - JSON: an array (`singular`: the first element), each row with its nulls stripped when asked.
    static func body(format: RESTQuery.ResponseFormat, names: [String], stripNulls: Bool) -> String {
        if format == .csv {
            let header = "'" + names.joined(separator: ",").replacingOccurrences(of: "'", with: "''") + "'"
            let fields = names.map { name -> String in
                let value = "(_pgw_row.\(SQLText.quoted(name)))::text"
                return "CASE WHEN \(value) IS NULL THEN '' WHEN \(value) = '' OR \(value) ~ '[\",\\r\\n]' "
                    + "THEN '\"' || replace(\(value), '\"', '\"\"') || '\"' ELSE \(value) END"
            }
            let line = fields.isEmpty ? "''" : "concat_ws(',', " + fields.joined(separator: ", ") + ")"
            return "\(header) || coalesce(E'\\n' || string_agg(\(line), E'\\n'), '')"
        }
        let row = stripNulls ? "json_strip_nulls(to_json(_pgw_row))" : "_pgw_row"
        return format == .singleObject ? "json_agg(\(row)) -> 0" : "coalesce(json_agg(\(row)), '[]'::json)"
    }

    /// The keys a select list answers with, in order (`*` is the relation's served columns).
    static func outputNames(_ items: [RESTQuery.SelectItem], relation: TablePolicy) -> [String] {
        items.flatMap { item -> [String] in
            switch item {
            case .all: return relation.restColumns.map(\.name)
            case .column(let column): return [column.outputName]
            // A function's rows embed nothing (tables use RESTStatementBuilder.outputNames).
            case .embed(let embed): return [embed.name]
            }
        }
    }

    /// Whether `Accept` asks for JSON with nulls stripped (PostgREST's
    /// `application/vnd.pgrst.array+json;nulls=stripped`, or the object form).
    static func stripsNulls(_ accept: String?) -> Bool {
        guard let accept else { return false }
        return accept.lowercased().split(separator: ",").contains { range in
            let parts = range.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let type = parts.first, type.hasPrefix("application/vnd.pgrst.") else { return false }
            return parts.dropFirst().contains { $0.replacingOccurrences(of: " ", with: "") == "nulls=stripped" }
        }
    }

    static func contentType(_ format: RESTQuery.ResponseFormat, stripNulls: Bool) -> String {
        switch format {
        case .csv: return "text/csv; charset=utf-8"
        case .singleObject: return "application/vnd.pgrst.object+json" + (stripNulls ? ";nulls=stripped" : "") + "; charset=utf-8"
        case .json: return stripNulls ? "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8" : "application/json; charset=utf-8"
        }
    }

    // MARK: Counts

    /// The statements after a read that give its total, for `count=`: `from` and `condition` are
    /// the read's FROM item and WHERE (without order or paging), `binds` their parameters.
    /// - exact: `count(*)`.
    /// - planned: the planner's row estimate (`EXPLAIN (FORMAT JSON)`), no rows read.
    /// - estimated: the exact count up to ``estimatedCountThreshold``, else the estimate.
    static func countStatements(_ count: RESTQuery.Preferences.Count?, from: String, condition: String, binds: [PostgresBind]) -> [Statement] {
        let filtered = "FROM \(from)" + (condition.isEmpty ? "" : " WHERE \(condition)")
        switch count {
        case nil: return []
        case .exact?: return [Statement("SELECT count(*) AS total \(filtered)", binds)]
        case .planned?: return [Statement("EXPLAIN (FORMAT JSON) SELECT 1 \(filtered)", binds)]
        case .estimated?:
            return [
                Statement("SELECT count(*) AS total FROM (SELECT 1 \(filtered) LIMIT \(estimatedCountThreshold + 1)) _pgw_capped", binds),
                Statement("EXPLAIN (FORMAT JSON) SELECT 1 \(filtered)", binds),
            ]
        }
    }

    /// The total from ``countStatements(_:from:condition:binds:)``'s results.
    static func total(_ results: ArraySlice<QueryResult>, count: RESTQuery.Preferences.Count?) throws -> Int? {
        switch count {
        case nil: return nil
        case .exact?: return try results.first?.first?.decode("total", as: Int.self)
        case .planned?: return try results.first.flatMap(planRows)
        case .estimated?:
            guard let exact = try results.first?.first?.decode("total", as: Int.self) else { return nil }
            guard exact > estimatedCountThreshold else { return exact }
            return try results.dropFirst().first.flatMap(planRows) ?? exact
        }
    }

    /// `Plan Rows` of the top plan node of an `EXPLAIN (FORMAT JSON)` result.
    private static func planRows(_ result: QueryResult) throws -> Int? {
        guard let text = try result.first?.decodeIfPresent("QUERY PLAN", as: String.self),
              let plans = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]],
              let plan = plans.first?["Plan"] as? [String: Any],
              let rows = plan["Plan Rows"] as? NSNumber
        else { return nil }
        return rows.intValue
    }

    // MARK: Time zone

    /// `Prefer: timezone=<IANA name>`: the zone timestamps are rendered in for this request
    /// (`SET LOCAL timezone`). An unknown zone is ignored and not listed as applied, as PostgREST does.
    static func timeZone(_ preferences: RESTQuery.Preferences) -> String? {
        guard let token = preferences.ignored.first(where: { $0.hasPrefix("timezone=") }) else { return nil }
        let name = String(token.dropFirst("timezone=".count))
        guard !name.isEmpty, name.utf8.count <= 64, !name.utf8.contains(0), TimeZone(identifier: name) != nil else { return nil }
        return name
    }

    static func timeZoneStatement(_ zone: String) -> Statement {
        Statement("SELECT set_config('timezone', $1, true)", [zone])
    }

    /// `Preference-Applied` with `timezone=` added when it was honoured.
    static func addTimeZone(_ zone: String?, to headers: inout HTTPFields) {
        guard let zone else { return }
        let applied = headers[.preferenceApplied].map { $0 + ", " } ?? ""
        headers[.preferenceApplied] = applied + "timezone=\(zone)"
    }
}
