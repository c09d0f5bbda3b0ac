/// One `/rest/v1/{table}` request, parsed from its query string and headers with
/// PostgREST's grammar (DESIGN.md §5) but not yet checked against anything.
///
/// Identifiers (columns, aliases, casts) are plain `String`s that only passed the syntax
/// check `[A-Za-z_][A-Za-z0-9_]*`; the caller still validates them against the policy
/// catalogue. Values are the caller's text, untyped: they are meant to be bound as
/// parameters once the column type is known, never spliced into SQL.
///
/// Build one with ``parse(method:query:headers:)``.
public struct RESTQuery: Sendable, Hashable {
    /// The `select=` list. Absent means `[.all]`; `select=` with nothing selects no
    /// columns at all (PostgREST 12 then answers `{}` per row).
    public var select: [SelectItem]
    /// Every filter of the request AND-ed together, in query-string order; `nil` when
    /// the request has none.
    public var filter: FilterTree?
    /// The `order=` terms, in order of precedence.
    public var order: [OrderTerm]
    /// From `limit=`, `offset=` and the `Range` header together; `nil` means no limit.
    public var limit: Int?
    /// Rows to skip; 0 when neither `offset=` nor `Range` says otherwise.
    public var offset: Int
    /// `on_conflict=` columns; empty when the parameter is absent.
    public var onConflict: [String]
    /// `columns=` (which keys of an insert/update payload to use); `nil` when absent.
    public var columns: [String]?
    /// The `Prefer` header.
    public var preferences: Preferences
    /// The representation negotiated from `Accept`.
    public var format: ResponseFormat
    /// Filters, order and window of embedded resources (`rel.col=eq.x`, `rel.order=…`,
    /// `rel.limit=…`), keyed by the resource's path of names: `["sitemaps"]`,
    /// `["sitemaps", "wireframes"]`. A name is the embed's alias, else its relation.
    public var embedded: [[String]: EmbeddedOptions] = [:]
    /// `Accept: application/vnd.pgrst.plan[+json|+text]`: the request's execution plan instead of
    /// its rows (``format`` is then the `for=` representation, JSON by default). Whether the
    /// gateway answers it is its configuration's decision (PostgREST's `db-plan-enabled`).
    public var plan: PlanRequest?

    /// `Accept: application/vnd.pgrst.object+json`: the answer must be exactly one row.
    public var singular: Bool { format == .singleObject }

    /// A query as given; ``parse(method:query:headers:)`` builds one from a request.
    public init(
        select: [SelectItem] = [.all],
        filter: FilterTree? = nil,
        order: [OrderTerm] = [],
        limit: Int? = nil,
        offset: Int = 0,
        onConflict: [String] = [],
        columns: [String]? = nil,
        preferences: Preferences = Preferences(),
        format: ResponseFormat = .json
    ) {
        self.select = select
        self.filter = filter
        self.order = order
        self.limit = limit
        self.offset = offset
        self.onConflict = onConflict
        self.columns = columns
        self.preferences = preferences
        self.format = format
    }
}

// MARK: - Columns and JSON paths

extension RESTQuery {
    /// A column, optionally followed by a JSON path: `data->items->0->>name`.
    public struct Field: Sendable, Hashable, CustomStringConvertible {
        /// The column name, syntax-checked only.
        public var column: String
        /// The `->`/`->>` steps after the column; empty for a plain column.
        public var jsonPath: [JSONStep]

        /// A column with an optional JSON path.
        public init(_ column: String, jsonPath: [JSONStep] = []) {
            self.column = column
            self.jsonPath = jsonPath
        }

        /// The field as PostgREST spells it, e.g. `data->items->>0`.
        public var description: String {
            column + jsonPath.map(\.description).joined()
        }
    }

    /// One `->` or `->>` step of a JSON path.
    public struct JSONStep: Sendable, Hashable, CustomStringConvertible {
        /// Which arrow a step uses; the raw value is its spelling.
        public enum Arrow: String, Sendable, Hashable {
            /// `->`: the result stays `json`/`jsonb`.
            case json = "->"
            /// `->>`: the result is `text`.
            case text = "->>"
        }

        /// Whether the step yields JSON or text.
        public var arrow: Arrow
        /// The key or index the step reads.
        public var operand: JSONOperand

        /// One step of a JSON path.
        public init(_ arrow: Arrow, _ operand: JSONOperand) {
            self.arrow = arrow
            self.operand = operand
        }

        /// The step as PostgREST spells it, e.g. `->>name`.
        public var description: String {
            switch operand {
            case .key(let key): arrow.rawValue + key
            case .index(let index): arrow.rawValue + String(index)
            }
        }
    }

    /// What a JSON step reads: an object key (a value to bind, any text) or an array index.
    public enum JSONOperand: Sendable, Hashable {
        case key(String)
        case index(Int)
    }
}

// MARK: - select=

extension RESTQuery {
    /// One item of `select=`.
    public enum SelectItem: Sendable, Hashable {
        /// `*`
        case all
        case column(SelectColumn)
        /// `alias:relation!hint!inner(…)` or `...relation(…)`: a related table's rows.
        indirect case embed(Embed)
    }

    /// An embedded resource: rows of a table related by a foreign key, nested in each row.
    public struct Embed: Sendable, Hashable {
        /// The related table's name, syntax-checked only.
        public var relation: String
        /// `alias:` before the relation: the key in the answer.
        public var alias: String?
        /// `!name`: a foreign key (constraint or column name) picking one of several relationships.
        public var hint: String?
        /// `!inner` / `!left`; `nil` is PostgREST's default (left).
        public var join: JoinType?
        /// `...relation(…)`: the related row's columns are spread into the parent row.
        public var spread: Bool
        /// The related table's `select=` list; may be empty (`rel()`, for filtering with `!inner`).
        public var select: [SelectItem]

        public init(
            _ relation: String, alias: String? = nil, hint: String? = nil, join: JoinType? = nil, spread: Bool = false,
            select: [SelectItem] = [.all]
        ) {
            self.relation = relation
            self.alias = alias
            self.hint = hint
            self.join = join
            self.spread = spread
            self.select = select
        }

        /// The key in the answer and the name in `rel.col=` paths.
        public var name: String { alias ?? relation }
    }

    /// How an embedded resource joins: `inner` drops the parent rows without a related row.
    public enum JoinType: String, Sendable, Hashable {
        case inner, left
    }

    /// What `rel.…=` parameters say about one embedded resource.
    public struct EmbeddedOptions: Sendable, Hashable {
        /// The resource's filters AND-ed, applied to the related rows (not the parents, unless `!inner`).
        public var filter: FilterTree?
        public var order: [OrderTerm]
        public var limit: Int?
        public var offset: Int

        public init(filter: FilterTree? = nil, order: [OrderTerm] = [], limit: Int? = nil, offset: Int = 0) {
            self.filter = filter
            self.order = order
            self.limit = limit
            self.offset = offset
        }
    }

    /// `alias:column->path::cast`
    public struct SelectColumn: Sendable, Hashable {
        /// The column (and JSON path) read.
        public var field: Field
        /// `alias:` before the column: the key in the answer; syntax-checked only.
        public var alias: String?
        /// A type name, syntax-checked only; the caller must allow-list it.
        public var cast: String?

        /// A selected column with an optional alias and cast.
        public init(_ field: Field, alias: String? = nil, cast: String? = nil) {
            self.field = field
            self.alias = alias
            self.cast = cast
        }

        /// The key this item gets in the JSON answer, as PostgREST names it: the alias;
        /// else, with a JSON path, the last key of the path (the column when the path has
        /// only indexes); else the column.
        public var outputName: String {
            if let alias { return alias }
            for step in field.jsonPath.reversed() {
                if case .key(let key) = step.operand { return key }
            }
            return field.column
        }
    }
}

// MARK: - Filters

extension RESTQuery {
    /// Filters as a tree: query-string filters, `or=(…)`, `and=(…)` and `not.` all end up here.
    public indirect enum FilterTree: Sendable, Hashable {
        case condition(Condition)
        case and([FilterTree])
        case or([FilterTree])
        /// `not.` before an operator (`col=not.eq.5`) or a group (`not.or=(…)`).
        case not(FilterTree)
    }

    /// `column=op.value`
    public struct Condition: Sendable, Hashable {
        /// The column (and JSON path) the condition tests.
        public var field: Field
        /// The operator and its operand.
        public var operation: FilterOperation
        /// Inside `or=(…)`/`and=(…)`: the embedded resources the field belongs to
        /// (`or=(name.eq.x,sitemaps.title.eq.y)` → `["sitemaps"]`); empty for the table's own
        /// column. Such a condition holds when a related row the caller can see passes it.
        public var path: [String]

        /// A condition on one field.
        public init(_ field: Field, _ operation: FilterOperation, path: [String] = []) {
            self.field = field
            self.operation = operation
            self.path = path
        }
    }

    /// An operator with its operand; values are text to bind once the column type is known.
    public enum FilterOperation: Sendable, Hashable {
        /// `eq neq gt gte lt lte` with the value as sent.
        case compare(ComparisonOperator, String)
        /// `like ilike`; the pattern already has PostgREST's `*` → `%` applied.
        case pattern(PatternOperator, String)
        /// `is.null`, `is.not_null`, `is.true`, `is.false`, `is.unknown`
        case `is`(IsValue)
        /// `in.(a,b,"c,d")`, elements unquoted; `in.()` is the empty list (matches no row).
        case `in`([String])
        /// `cs cd ov` with the literal as sent (`{a,b}`, a JSON document or a range).
        case array(ArrayOperator, String)
        /// `isdistinct.value`: `IS DISTINCT FROM`, so NULL compares as a value.
        case distinct(String)
        /// `sl sr nxr nxl adj` with the range literal as sent (`[1,10)`).
        case range(RangeOperator, String)
        /// `fts plfts phfts wfts`, optionally with a text search configuration
        /// (`fts(english).cat`), and the query text as sent.
        case textSearch(TextSearchOperator, language: String?, String)
        /// `eq(any).{a,b}`, `like(all).{a*,b*}`: the operator against each element of the
        /// `{…}` array literal, as sent (with `*` → `%` for the pattern operators).
        case quantified(QuantifiedOperator, Quantifier, String)

        /// The operator as PostgREST spells it in a URL.
        public var operatorName: String {
            switch self {
            case .compare(let op, _): op.rawValue
            case .pattern(let op, _): op.rawValue
            case .is: "is"
            case .in: "in"
            case .array(let op, _): op.rawValue
            case .distinct: "isdistinct"
            case .range(let op, _): op.rawValue
            case .textSearch(let op, _, _): op.rawValue
            case .quantified(let op, _, _): op.rawValue
            }
        }
    }

    /// Comparison operators; the raw value is the PostgREST name.
    public enum ComparisonOperator: String, Sendable, Hashable, CaseIterable {
        case eq, neq, gt, gte, lt, lte
    }

    /// Pattern operators; the raw value is the PostgREST name. `match`/`imatch` are POSIX
    /// regular expressions (`~`, `~*`).
    public enum PatternOperator: String, Sendable, Hashable, CaseIterable {
        case like, ilike, match, imatch
    }

    /// Range operators; the raw value is the PostgREST name.
    public enum RangeOperator: String, Sendable, Hashable, CaseIterable {
        /// `sl`: strictly left of (`<<`)
        case sl
        /// `sr`: strictly right of (`>>`)
        case sr
        /// `nxr`: does not extend to the right of (`&<`)
        case nxr
        /// `nxl`: does not extend to the left of (`&>`)
        case nxl
        /// `adj`: adjacent to (`-|-`)
        case adj
    }

    /// Full-text search operators; the raw value is the PostgREST name. Each names the
    /// function that turns the query text into a `tsquery`.
    public enum TextSearchOperator: String, Sendable, Hashable, CaseIterable {
        /// `to_tsquery`
        case fts
        /// `plainto_tsquery`
        case plfts
        /// `phraseto_tsquery`
        case phfts
        /// `websearch_to_tsquery`
        case wfts
    }

    /// The operators that take an `(any)`/`(all)` modifier, as PostgREST lists them.
    public enum QuantifiedOperator: String, Sendable, Hashable, CaseIterable {
        case eq, neq, gt, gte, lt, lte, like, ilike, match, imatch
    }

    /// `(any)` or `(all)`.
    public enum Quantifier: String, Sendable, Hashable, CaseIterable {
        case any, all
    }

    /// Containment and overlap operators; the raw value is the PostgREST name.
    public enum ArrayOperator: String, Sendable, Hashable, CaseIterable {
        /// `cs`: contains
        case cs
        /// `cd`: contained by
        case cd
        /// `ov`: overlaps
        case ov
    }

    /// The right-hand side of `is.`; matched case-insensitively as PostgREST does.
    public enum IsValue: String, Sendable, Hashable, CaseIterable {
        case null
        case notNull = "not_null"
        case `true`
        case `false`
        case unknown
    }
}

// MARK: - order=

extension RESTQuery {
    /// `column.desc.nullslast`; direction and nulls are `nil` when not given, so the
    /// database default applies exactly as with PostgREST.
    public struct OrderTerm: Sendable, Hashable {
        /// The column (and JSON path) to sort by.
        public var field: Field
        /// `.asc` / `.desc`, or `nil` for the database default (ascending).
        public var direction: OrderDirection?
        /// `.nullsfirst` / `.nullslast`, or `nil` for the database default.
        public var nulls: NullsOrder?
        /// `order=relation(column)`: the column of a to-one embedded resource (its name or alias).
        public var relation: String?

        /// One sort key.
        public init(_ field: Field, direction: OrderDirection? = nil, nulls: NullsOrder? = nil, relation: String? = nil) {
            self.field = field
            self.direction = direction
            self.nulls = nulls
            self.relation = relation
        }
    }

    /// Sort direction; the raw value is the PostgREST keyword.
    public enum OrderDirection: String, Sendable, Hashable {
        case asc, desc
    }

    /// Where nulls sort; the raw value is the PostgREST keyword.
    public enum NullsOrder: String, Sendable, Hashable {
        case first = "nullsfirst"
        case last = "nullslast"
    }
}

// MARK: - Accept

extension RESTQuery {
    /// What the `Accept` header asked for.
    /// `application/vnd.pgrst.plan…; for="…"; options=analyze|verbose|…`.
    public struct PlanRequest: Sendable, Hashable {
        /// `plan+json` (EXPLAIN's JSON) or `plan`/`plan+text`.
        public enum Output: String, Sendable, Hashable {
            case json, text
        }

        /// EXPLAIN options PostgREST passes on.
        public enum Option: String, Sendable, Hashable, CaseIterable {
            case analyze, verbose, settings, buffers, wal
        }

        public var output: Output
        public var options: Set<Option>

        public init(output: Output, options: Set<Option> = []) {
            self.output = output
            self.options = options
        }
    }

    public enum ResponseFormat: Sendable, Hashable {
        /// `application/json`, `application/vnd.pgrst.array+json`, `application/*`, `*/*` or no header.
        case json
        /// `application/vnd.pgrst.object+json`: one JSON object; zero or several rows are an error.
        case singleObject
        /// `text/csv`
        case csv
    }
}
