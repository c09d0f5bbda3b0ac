import Foundation
import Policy
import Postgres

/// The SQL of ``RESTRepresentation``: answer bodies built by Postgres (JSON, CSV), the count
/// statements, EXPLAIN and the time zone setting. Rendered here, beside ``RESTRenderer``, so
/// `/rest/v1` SQL is written in one place (Render/).
extension RESTRepresentation {
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

    /// The statements after a read that give its total, for `count=`: `from` and `condition` are
    /// the read's FROM item and WHERE (without order or paging), `binds` their parameters.
    /// - exact: `count(*)`.
    /// - planned and estimated: the caller's rows counted exactly up to ``estimatedCountThreshold``
    ///   rows, unknown beyond (see ``RESTRepresentation/estimatedCountThreshold`` for why never the
    ///   planner's estimate).
    static func countStatements(_ count: RESTQuery.Preferences.Count?, from: String, condition: String, binds: [PostgresBind])
        -> [Statement]
    {
        let filtered = "FROM \(from)" + (condition.isEmpty ? "" : " WHERE \(condition)")
        switch count {
        case nil: return []
        case .exact?: return [Statement("SELECT count(*) AS total \(filtered)", binds)]
        case .planned?, .estimated?:
            return [
                Statement("SELECT count(*) AS total FROM (SELECT 1 \(filtered) LIMIT \(estimatedCountThreshold + 1)) _pgw_capped", binds)
            ]
        }
    }

    /// The request's main statement under `EXPLAIN`, in the plan's output format.
    static func planStatement(_ main: Statement, _ plan: RESTQuery.PlanRequest) -> Statement {
        var options = ["FORMAT " + (plan.output == .json ? "JSON" : "TEXT")]
        if plan.options.contains(.verbose) { options.append("VERBOSE") }
        if plan.options.contains(.settings) { options.append("SETTINGS") }
        var explained = main
        explained.sql = "EXPLAIN (\(options.joined(separator: ", "))) " + main.sql
        return explained
    }

    static func timeZoneStatement(_ zone: String) -> Statement {
        Statement("SELECT set_config('timezone', $1, true)", [zone])
    }
}
