import HTTPTypes

extension RESTQuery {
    /// The request headers the grammar reads. Build it from Hummingbird's `request.headers`
    /// with ``init(_:)``, or directly in tests.
    public struct Headers: Sendable, Hashable {
        /// Every `Prefer` line, in order.
        public var prefer: [String]
        /// `Accept`, all lines joined.
        public var accept: String?
        /// `Accept-Profile`: the schema a read asks for.
        public var acceptProfile: String?
        /// `Content-Profile`: the schema a write asks for.
        public var contentProfile: String?
        /// `Range: 0-9` (items). `Range-Unit` is not needed: PostgREST ignores it too.
        public var range: String?

        /// Header values as given (`nil` when absent).
        public init(
            prefer: [String] = [], accept: String? = nil, acceptProfile: String? = nil,
            contentProfile: String? = nil, range: String? = nil
        ) {
            self.prefer = prefer
            self.accept = accept
            self.acceptProfile = acceptProfile
            self.contentProfile = contentProfile
            self.range = range
        }

        /// Repeated lines of one header are joined with `, ` (RFC 9110 §5.3), except `Prefer`,
        /// whose lines are kept apart, and `Range`, where the first line counts.
        public init(_ fields: HTTPFields) {
            self.init(
                prefer: fields[values: Self.preferName],
                accept: fields[.accept],
                acceptProfile: fields[Self.acceptProfileName],
                contentProfile: fields[Self.contentProfileName],
                range: fields[values: .range].first)
        }

        static let preferName = HTTPField.Name("Prefer")!
        static let acceptProfileName = HTTPField.Name("Accept-Profile")!
        static let contentProfileName = HTTPField.Name("Content-Profile")!
    }

    /// `or`/`and` groups nested deeper than this are refused with `400 PGRST100`.
    public static let maximumLogicDepth = FilterGrammar.maximumLogicDepth

    /// Parses a `/rest/v1/{table}` request.
    ///
    /// - Parameters:
    ///   - method: decides which profile header counts (`Accept-Profile` for GET/HEAD,
    ///     `Content-Profile` otherwise) and whether `Range` applies (GET/HEAD only).
    ///   - query: the raw, still percent-encoded query string (with or without a leading `?`).
    /// - Throws: ``RESTGrammarError`` as PostgREST answers: `406 PGRST106` for a schema other
    ///   than `public`; `400 PGRST100` for any parameter that does not parse (including names
    ///   outside `[A-Za-z_][A-Za-z0-9_]*`, embedded resources and unsupported operators);
    ///   `400 PGRST122` for unknown preferences with `handling=strict`; `416 PGRST103` for an
    ///   empty range; `406 PGRST107` for an `Accept` the gateway cannot produce.
    ///
    /// Query keys `select`, `order`, `limit`, `offset`, `on_conflict` and `columns` may appear
    /// once; `or`, `and`, `not.or`, `not.and` and filters may repeat, and everything is AND-ed.
    /// Every other key is a filter on a column.
    /// `limits` bounds the filters' size (``Limits/check(_:)``, 400 `PGRST100`).
    public static func parse(
        method: HTTPRequest.Method, query: String, headers: Headers = Headers(), limits: Limits = Limits()
    ) throws(RESTGrammarError) -> RESTQuery {
        let readOnly = method == .get || method == .head
        try HeaderGrammar.checkProfile(
            readOnly: readOnly, acceptProfile: headers.acceptProfile, contentProfile: headers.contentProfile)

        var result = RESTQuery()
        var filters: [FilterTree] = []
        // Embedded resources' filters, one per parameter, for the same size limits as the table's.
        var embeddedFilters: [FilterTree] = []
        var limit: Int?
        var offset: Int?
        var seen: Set<String> = []
        for parameter in try QueryStringGrammar.parse(query) {
            let key = parameter.key
            // A bare key (`?id`) reads as an empty value: PostgREST drops it, which would
            // silently widen the query; here it fails like any empty parameter.
            let value = parameter.value ?? ""
            if singleKeys.contains(key) {
                guard seen.insert(key).inserted else {
                    throw RESTGrammarError(
                        .malformed, code: "PGRST100", "failed to parse query string",
                        details: "parameter \"\(key)\" appears more than once")
                }
            }
            switch key {
            case "select":
                result.select = try SelectGrammar.parseSelect(value)
            case "order":
                result.order = try SelectGrammar.parseOrder(value)
            case "limit":
                limit = try HeaderGrammar.count(value, parameter: "limit")
            case "offset":
                offset = try HeaderGrammar.count(value, parameter: "offset")
            case "on_conflict":
                result.onConflict = try SelectGrammar.parseColumns(value, subject: "on_conflict parameter")
            case "columns":
                result.columns = try SelectGrammar.parseColumns(value, subject: "columns parameter")
            case "or", "and", "not.or", "not.and":
                filters.append(try FilterGrammar.parseLogic(key: key, value: value))
            default:
                var (path, field) = try FilterGrammar.parseTreePath(key)
                guard !path.isEmpty else {
                    filters.append(try FilterGrammar.parseFilter(field: field, value: value))
                    continue
                }
                // `rel.order=`, `rel.limit=`, `rel.or=(…)`, `rel.not.and=(…)`, `rel.col=op.value`.
                var negatedLogic = false
                if path.count > 1, path.last == "not", field.jsonPath.isEmpty, field.column == "or" || field.column == "and" {
                    path.removeLast()
                    negatedLogic = true
                }
                let name = field.jsonPath.isEmpty ? field.column : ""
                if ["order", "limit", "offset"].contains(name) || negatedLogic || name == "or" || name == "and" {
                    guard seen.insert(key).inserted || name == "or" || name == "and" else {
                        throw RESTGrammarError(
                            .malformed, code: "PGRST100", "failed to parse query string",
                            details: "parameter \"\(key)\" appears more than once")
                    }
                }
                var options = result.embedded[path] ?? EmbeddedOptions()
                switch name {
                case "order": options.order = try SelectGrammar.parseOrder(value)
                case "limit": options.limit = try HeaderGrammar.count(value, parameter: key)
                case "offset": options.offset = try HeaderGrammar.count(value, parameter: key)
                case "or", "and":
                    let tree = try FilterGrammar.parseLogic(key: (negatedLogic ? "not." : "") + name, value: value)
                    embeddedFilters.append(tree)
                    options.filter = Self.and(options.filter, tree)
                default:
                    let tree = try FilterGrammar.parseFilter(field: field, value: value)
                    embeddedFilters.append(tree)
                    options.filter = Self.and(options.filter, tree)
                }
                result.embedded[path] = options
            }
        }
        try limits.check(filters + embeddedFilters)
        result.filter =
            switch filters.count {
            case 0: nil
            case 1: filters[0]
            default: .and(filters)
            }

        result.preferences = try Preferences.parse(headers.prefer)
        // RFC 9110: Range applies to GET (and so HEAD); PostgREST ignores it on writes too.
        let window = try HeaderGrammar.window(
            limit: limit, offset: offset, header: readOnly ? HeaderGrammar.headerRange(headers.range) : nil)
        result.limit = window.limit
        result.offset = window.offset
        (result.format, result.plan) = try HeaderGrammar.negotiate(accept: headers.accept)
        return result
    }

    /// `existing AND next`, flat.
    private static func and(_ existing: FilterTree?, _ next: FilterTree) -> FilterTree {
        switch existing {
        case nil: next
        case .and(let terms)?: .and(terms + [next])
        case let other?: .and([other, next])
        }
    }

    /// Keys whose second occurrence is an error rather than a guess at which one counts.
    private static let singleKeys: Set<String> = ["select", "order", "limit", "offset", "on_conflict", "columns"]
}
