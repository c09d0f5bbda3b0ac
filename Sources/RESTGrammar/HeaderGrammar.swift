/// `Accept`, `Accept-Profile`/`Content-Profile` and `Range` (with `limit=`/`offset=`, which
/// combine with it): the parts of a request that shape its answer rather than select rows.
enum HeaderGrammar {
    /// The only schema the gateway serves.
    static let schema = "public"

    // MARK: - Accept

    /// The first media range of `Accept` (by `q`, then by specificity, as Warp's
    /// `parseHttpAccept` orders them) that the gateway can produce. None → `406 PGRST107`.
    static func format(accept: String?) throws(RESTGrammarError) -> RESTQuery.ResponseFormat {
        try negotiate(accept: accept).format
    }

    /// ``format(accept:)``, and the plan an `application/vnd.pgrst.plan…` range asks for. A plan
    /// range with an unknown option or `for=` is not one the gateway can produce.
    static func negotiate(accept: String?) throws(RESTGrammarError) -> (format: RESTQuery.ResponseFormat, plan: RESTQuery.PlanRequest?) {
        guard let accept, !GrammarScanner.trimmed(accept).isEmpty else { return (.json, nil) }
        var ranges: [(mediaType: String, quality: Double, specificity: Int, parameters: [String: String])] = []
        for entry in accept.split(separator: ",") {
            let parts = entry.split(separator: ";", omittingEmptySubsequences: false)
            let mediaType = GrammarScanner.trimmed(parts[0]).lowercased()
            if mediaType.isEmpty { continue }
            var quality = 1.0
            var parameters: [String: String] = [:]
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1)
                let name = GrammarScanner.trimmed(pair.first ?? "").lowercased()
                let value = pair.count > 1 ? GrammarScanner.trimmed(pair[1]) : ""
                if name == "q" {
                    // An unreadable weight counts as 1 rather than failing the request.
                    quality = Double(value).map { min(max($0, 0), 1) } ?? 1
                } else if !name.isEmpty {
                    parameters[name] = value.lowercased()
                }
            }
            let stars = mediaType.unicodeScalars.filter { $0 == "*" }.count
            ranges.append((mediaType, quality, parameters.count - stars, parameters))
        }
        // A stable sort keeps header order among equals, as Warp does.
        let ordered = ranges.enumerated().sorted { lhs, rhs in
            if lhs.element.quality != rhs.element.quality { return lhs.element.quality > rhs.element.quality }
            if lhs.element.specificity != rhs.element.specificity { return lhs.element.specificity > rhs.element.specificity }
            return lhs.offset < rhs.offset
        }.map(\.element)
        for range in ordered where range.quality > 0 {
            // `nulls=stripped` on PostgREST's own JSON types (RESTRepresentation strips them);
            // any other `nulls=` asks for output this gateway does not produce.
            if let nulls = range.parameters["nulls"],
                nulls != "stripped" || !range.mediaType.hasPrefix("application/vnd.pgrst.")
            {
                continue
            }
            switch range.mediaType {
            case "*/*", "application/*", "application/json", "application/vnd.pgrst.array+json", "application/vnd.pgrst.array":
                return (.json, nil)
            case "application/vnd.pgrst.object+json", "application/vnd.pgrst.object":
                return (.singleObject, nil)
            case "text/csv":
                return (.csv, nil)
            case "application/vnd.pgrst.plan", "application/vnd.pgrst.plan+text", "application/vnd.pgrst.plan+json":
                guard let plan = planRange(range.mediaType, range.parameters) else { continue }
                return plan
            default:
                continue
            }
        }
        throw RESTGrammarError(
            .notAcceptable, code: "PGRST107",
            "None of these media types are available: "
                + GrammarScanner.shortened(ranges.map(\.mediaType).joined(separator: ", "), limit: 200))
    }

    /// A plan media range: its output, `options=a|b` and `for="<media type>"` (JSON by default).
    private static func planRange(
        _ mediaType: String, _ parameters: [String: String]
    ) -> (format: RESTQuery.ResponseFormat, plan: RESTQuery.PlanRequest)? {
        var options: Set<RESTQuery.PlanRequest.Option> = []
        for name in (parameters["options"] ?? "").split(separator: "|") {
            guard let option = RESTQuery.PlanRequest.Option(rawValue: GrammarScanner.trimmed(name)) else { return nil }
            options.insert(option)
        }
        let target = (parameters["for"] ?? "application/json").trimmingQuotes
        let format: RESTQuery.ResponseFormat
        switch target {
        case "application/json", "application/vnd.pgrst.array+json": format = .json
        case "application/vnd.pgrst.object+json": format = .singleObject
        case "text/csv": format = .csv
        default: return nil
        }
        return (format, RESTQuery.PlanRequest(output: mediaType.hasSuffix("+json") ? .json : .text, options: options))
    }

    // MARK: - Profiles

    /// PostgREST reads `Accept-Profile` for GET and HEAD and `Content-Profile` for writes; a
    /// schema other than `public` is `406 PGRST106`. No header means `public`.
    static func checkProfile(readOnly: Bool, acceptProfile: String?, contentProfile: String?) throws(RESTGrammarError) {
        guard let requested = readOnly ? acceptProfile : contentProfile else { return }
        if GrammarScanner.trimmed(requested) != schema {
            throw RESTGrammarError(.notAcceptable, code: "PGRST106", "The schema must be one of the following: \(schema)")
        }
    }

    // MARK: - Range, limit and offset

    /// `Range: first-[last]` (items, inclusive), PostgREST's `^([0-9]+)-([0-9]*)$`. Anything
    /// else is ignored, as PostgREST ignores it. Returns `nil` for no usable header.
    static func headerRange(_ value: String?) -> (lower: Int, upper: Int?)? {
        guard let value else { return nil }
        let text = GrammarScanner.trimmed(value)
        let halves = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard halves.count == 2, isDigits(halves[0]), halves[1].isEmpty || isDigits(halves[1]) else { return nil }
        // Saturate: a bound past Int.max is as good as infinite.
        let lower = Int(halves[0]) ?? Int.max
        let upper = halves[1].isEmpty ? nil : (Int(halves[1]) ?? Int.max)
        return (lower, upper)
    }

    static func isDigits(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy { ("0"..."9").contains($0) }
    }

    /// `limit=` / `offset=`: a non-negative decimal integer. PostgREST silently ignores a value
    /// it cannot read; this gateway refuses it (`PGRST100`) so a typo never means "all rows".
    /// A negative limit is PostgREST's `416 PGRST103`.
    static func count(_ text: String, parameter: String) throws(RESTGrammarError) -> Int {
        var scanner = GrammarScanner(text, subject: "\(parameter) parameter")
        if isDigits(text) {
            if let value = Int(text) { return value }
            throw scanner.failure(details: "\(parameter) is too large")
        }
        if parameter == "limit", text.hasPrefix("-"), isDigits(text.dropFirst()) {
            throw rangeError(details: "Limit should be greater than or equal to zero.")
        }
        while let scalar = scanner.peek(), ("0"..."9").contains(scalar) { scanner.advance() }
        throw scanner.unexpected(expecting: "a non-negative integer")
    }

    /// Intersects the query's `offset`/`limit` with the `Range` header as PostgREST does
    /// (both are inclusive item ranges). An empty result is `416 PGRST103` — except
    /// `limit=0`, which PostgREST allows and which asks for no rows.
    static func window(
        limit: Int?, offset: Int?, header: (lower: Int, upper: Int?)?
    ) throws(RESTGrammarError) -> (limit: Int?, offset: Int) {
        let queryLower = offset ?? 0
        if limit == 0 { return (0, queryLower) }
        let queryUpper = limit.map { saturatingAdd(queryLower, $0) - 1 }
        var lower = queryLower
        var upper = queryUpper
        if let header {
            if let headerUpper = header.upper, headerUpper < header.lower {
                throw rangeError(
                    details: "The lower boundary must be lower than or equal to the upper boundary in the Range header.")
            }
            lower = max(lower, header.lower)
            if let headerUpper = header.upper { upper = upper.map { min($0, headerUpper) } ?? headerUpper }
        }
        guard let upper else { return (nil, lower) }
        // PostgREST reports any other empty intersection with the negative-limit text.
        guard upper >= lower else { throw rangeError(details: "Limit should be greater than or equal to zero.") }
        return (saturatingAdd(upper - lower, 1), lower)
    }

    private static func saturatingAdd(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : sum
    }

    static func rangeError(details: String) -> RESTGrammarError {
        RESTGrammarError(.rangeNotSatisfiable, code: "PGRST103", "Requested range not satisfiable", details: details)
    }
}

extension String {
    /// The text without one pair of surrounding double quotes (`for="application/json"`).
    fileprivate var trimmingQuotes: String {
        count >= 2 && hasPrefix("\"") && hasSuffix("\"") ? String(dropFirst().dropLast()) : self
    }
}
