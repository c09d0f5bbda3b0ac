import Config
import Foundation
import HTTPTypes
import Policy
import Postgres

/// How a read's rows become the answer, beyond plain JSON: CSV (`Accept: text/csv`), JSON with
/// nulls stripped (`Accept: application/vnd.pgrst.array+json;nulls=stripped`), and the totals of
/// `Prefer: count=exact|planned|estimated`. All of it is built in SQL, in the read's own statement
/// or the one after it, so it costs no extra round trip (that SQL: Render/RESTRepresentation+SQL.swift).
enum RESTRepresentation {
    /// `count=planned` and `count=estimated` count the caller's rows exactly up to this many, and
    /// answer the total as unknown (`*`) beyond. PostgREST answers them with the planner's
    /// estimate; here that would disclose other tenants' data: the planner's statistics cover
    /// every tenant's rows, and an estimate for `label=eq.X` says how common X is among rows the
    /// caller cannot see (an attack review measured 200 for another tenant's value, 1 for an
    /// unused one), a prefix filter at a time.
    static let estimatedCountThreshold = 1000

    // MARK: Bodies

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

    /// The total from ``countStatements(_:from:condition:binds:)``'s results.
    static func total(_ results: ArraySlice<QueryResult>, count: RESTQuery.Preferences.Count?) throws -> Int? {
        switch count {
        case nil: return nil
        case .exact?: return try results.first?.first?.decode("total", as: Int.self)
        case .planned?, .estimated?:
            guard let exact = try results.first?.first?.decode("total", as: Int.self) else { return nil }
            return exact > estimatedCountThreshold ? nil : exact
        }
    }

    // MARK: Plans

    /// Whether `caller` may have `plan` answered under `access`; nil when yes, else the refusal:
    /// 406 PGRST107 (as PostgREST answers a plan `Accept` with `db-plan-enabled` off) when the
    /// gateway does not serve plans to this caller, 403 for `analyze` (and `buffers`/`wal`, which
    /// need it): EXPLAIN ANALYZE runs the statement — a write would be written — and its row
    /// counts ("Rows Removed by Filter") count the rows the policies filter out, other tenants'
    /// among them. A plain plan reads no row; its estimates are the planner's, as `count=planned`.
    static func planRefusal(
        _ plan: RESTQuery.PlanRequest, access: GatewayLimits.PlanAccess, role: RequestRole, accept: String?
    ) -> GatewayError? {
        let served =
            switch access {
            case .off: false
            case .signedIn: role != .anon
            case .all: true
            }
        guard served else {
            return GatewayError(
                .notAcceptable, code: "PGRST107",
                "None of these media types are available: " + String((accept ?? "").prefix(200)))
        }
        let executing: Set<RESTQuery.PlanRequest.Option> = [.analyze, .buffers, .wal]
        guard plan.options.isDisjoint(with: executing) else {
            return GatewayError(
                .forbidden, code: "42501", "EXPLAIN ANALYZE is not available through /rest/v1",
                details: "it runs the statement, and its row counts include rows the policies filter out, other tenants' among them",
                hint: "ask for the plan without analyze, buffers or wal")
        }
        return nil
    }

    /// The plan's body (EXPLAIN's JSON document, or its text lines) and content type, as PostgREST
    /// answers `application/vnd.pgrst.plan+json; for="…"`.
    static func planBody(_ result: QueryResult, _ plan: RESTQuery.PlanRequest, format: RESTQuery.ResponseFormat) throws -> (
        body: String, contentType: String
    ) {
        let lines = try result.rows.map { try $0.decode("QUERY PLAN", as: String.self) }
        let target =
            switch format {
            case .json: "application/json"
            case .singleObject: "application/vnd.pgrst.object+json"
            case .csv: "text/csv"
            }
        let type = plan.output == .json ? "application/vnd.pgrst.plan+json" : "application/vnd.pgrst.plan+text"
        return (lines.joined(separator: "\n"), "\(type); for=\"\(target)\"; charset=utf-8")
    }

    // MARK: Time zone

    /// `Prefer: timezone=<IANA name>`: the zone timestamps are rendered in for this request
    /// (`SET LOCAL timezone`). An unknown zone is ignored and not listed as applied, as PostgREST
    /// does; with `handling=strict` it is refused (400 PGRST122) like any preference not honoured.
    static func timeZone(_ preferences: RESTQuery.Preferences) throws -> String? {
        guard let name = preferences.timeZone else { return nil }
        guard name.utf8.count <= 64, !name.utf8.contains(0), TimeZone(identifier: name) != nil else {
            guard preferences.handling != .strict else {
                throw GatewayError(
                    .badRequest, code: "PGRST122", "Invalid preferences given with handling=strict",
                    details: "Invalid preferences: timezone=" + String(name.prefix(64)))
            }
            return nil
        }
        return name
    }

    /// `Preference-Applied` with `timezone=` added when it was honoured.
    static func addTimeZone(_ zone: String?, to headers: inout HTTPFields) {
        guard let zone else { return }
        let applied = headers[.preferenceApplied].map { $0 + ", " } ?? ""
        headers[.preferenceApplied] = applied + "timezone=\(zone)"
    }
}
