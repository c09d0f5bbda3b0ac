/// The abstract syntax of a `using` / `with_check` expression: the RLS subset of DESIGN.md §4,
/// including the forms `pg_get_expr` prints back.
///
/// Parsing flattens `a AND b AND c` (however parenthesised) into one ``and(_:)``, so printing and
/// parsing again gives an equal value. Source positions are kept for error messages but are not
/// part of equality.
public indirect enum PolicyExpression: Sendable, Hashable {
    /// A column of the policy's table or, inside `EXISTS`, of a subquery's table: `user_id`, `p.id`.
    case column(ColumnReference)
    case literal(Literal)
    /// `expression::type`
    case cast(PolicyExpression, SQLType)
    /// `auth.uid()`, `auth.role()`, `auth.tenant_id()`
    case auth(AuthFunction)
    /// `auth.jwt() ->> 'claim'`
    case jwtClaim(String)
    /// `lhs = rhs`, `lhs <> rhs`, …
    case comparison(PolicyExpression, ComparisonOperator, PolicyExpression)
    case and([PolicyExpression])
    case or([PolicyExpression])
    case not(PolicyExpression)
    /// `expression IS [NOT] NULL`
    case isNull(PolicyExpression, negated: Bool)
    /// `expression IS [NOT] TRUE|FALSE`
    case isBoolean(PolicyExpression, Bool, negated: Bool)
    /// `expression [NOT] IN (a, b, …)`
    case inList(PolicyExpression, [PolicyExpression], negated: Bool)
    /// `lhs op ANY (array)` / `lhs op ALL (array)`
    case quantified(PolicyExpression, ComparisonOperator, Quantifier, PolicyExpression)
    /// `ARRAY[a, b, …]`
    case array([PolicyExpression])
    /// `EXISTS (SELECT 1 FROM other alias WHERE …)`
    case exists(Subquery)
}

extension PolicyExpression {
    /// A column reference, optionally qualified by a table name or alias.
    public struct ColumnReference: Sendable, Hashable {
        public var qualifier: String?
        public var name: String
        /// Offset of the reference in the expression text, for error messages.
        public var position: Int?

        public init(qualifier: String? = nil, name: String, position: Int? = nil) {
            self.qualifier = qualifier
            self.name = name
            self.position = position
        }

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.qualifier == rhs.qualifier && lhs.name == rhs.name
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(qualifier)
            hasher.combine(name)
        }
    }

    /// A constant. Numbers keep their source text so printing does not change them.
    public enum Literal: Sendable, Hashable {
        case null
        case bool(Bool)
        case integer(Int64)
        case decimal(String)
        case string(String)
    }

    public enum AuthFunction: String, Sendable, Hashable, CaseIterable {
        case uid
        case role
        case tenantID = "tenant_id"
    }

    public enum ComparisonOperator: String, Sendable, Hashable, CaseIterable {
        case equal = "="
        case notEqual = "<>"
        case less = "<"
        case lessOrEqual = "<="
        case greater = ">"
        case greaterOrEqual = ">="

        /// The operator with its operands swapped: `a < b` ≡ `b > a`.
        var swapped: ComparisonOperator {
            switch self {
            case .equal, .notEqual: return self
            case .less: return .greater
            case .lessOrEqual: return .greaterOrEqual
            case .greater: return .less
            case .greaterOrEqual: return .lessOrEqual
            }
        }

        func holds(_ order: Int) -> Bool {
            switch self {
            case .equal: return order == 0
            case .notEqual: return order != 0
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .greater: return order > 0
            case .greaterOrEqual: return order >= 0
            }
        }
    }

    public enum Quantifier: String, Sendable, Hashable {
        case any = "ANY"
        case all = "ALL"
    }

    /// The `SELECT 1 FROM table alias WHERE condition` of an `EXISTS`.
    public struct Subquery: Sendable, Hashable {
        /// Schema as written (`public`), or nil.
        public var schema: String?
        public var table: String
        public var alias: String?
        public var condition: PolicyExpression?
        /// Offset of the table name in the expression text, for error messages.
        public var position: Int?

        public init(
            schema: String? = nil, table: String, alias: String? = nil, condition: PolicyExpression?,
            position: Int? = nil
        ) {
            self.schema = schema
            self.table = table
            self.alias = alias
            self.condition = condition
            self.position = position
        }

        /// The name columns of this scope are qualified with.
        public var scopeName: String { alias ?? table }

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.schema == rhs.schema && lhs.table == rhs.table && lhs.alias == rhs.alias
                && lhs.condition == rhs.condition
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(schema)
            hasher.combine(table)
            hasher.combine(alias)
            hasher.combine(condition)
        }
    }
}

/// A type name as used in casts and in a table's `columns:` catalogue, e.g. `text`, `uuid[]`,
/// `varchar(255)`. ``canonical`` spells it as Postgres' `format_type` does
/// (`character varying(255)`, `timestamp with time zone`), so two spellings of one type compare equal.
public struct SQLType: Sendable, Hashable, CustomStringConvertible {
    /// As written, lower-cased and with single spaces.
    public let spelling: String
    /// As `format_type()` prints it.
    public let canonical: String

    public init?(_ text: String) {
        let words = text.lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
        var spelling = words.joined(separator: " ")
        spelling = spelling.replacingOccurrences(of: " (", with: "(").replacingOccurrences(of: " [", with: "[")
        spelling = spelling.replacingOccurrences(of: ", ", with: ",")
        guard !spelling.isEmpty, let canonical = SQLType.canonicalise(spelling) else { return nil }
        self.spelling = spelling
        self.canonical = canonical
    }

    public var description: String { spelling }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.canonical == rhs.canonical }
    public func hash(into hasher: inout Hasher) { hasher.combine(canonical) }

    /// Element type of an array type, or nil.
    var elementType: SQLType? {
        guard canonical.hasSuffix("[]") else { return nil }
        return SQLType(String(canonical.dropLast(2)))
    }

    /// The base name without modifiers or array brackets, canonical (`character varying`).
    var baseName: String {
        var name = canonical
        while name.hasSuffix("[]") { name.removeLast(2) }
        if let paren = name.firstIndex(of: "(") {
            // `timestamp(3) with time zone` keeps its words after the modifier.
            let close = name[paren...].firstIndex(of: ")") ?? name.endIndex
            let after = close < name.endIndex ? String(name[name.index(after: close)...]) : ""
            name = String(name[..<paren]) + after
        }
        return name
    }

    enum Kind { case text, uuid, integer, numeric, boolean, other }

    var kind: Kind {
        if canonical.hasSuffix("[]") { return .other }
        switch baseName {
        case "text", "character varying", "character", "name", "citext": return .text
        case "uuid": return .uuid
        case "integer", "bigint", "smallint": return .integer
        case "numeric", "real", "double precision": return .numeric
        case "boolean": return .boolean
        default: return .other
        }
    }

    /// Aliases Postgres accepts → the names `format_type` prints.
    private static let aliases: [String: String] = [
        "int": "integer", "int4": "integer", "integer": "integer",
        "int8": "bigint", "bigint": "bigint", "int2": "smallint", "smallint": "smallint",
        "bool": "boolean", "boolean": "boolean",
        "varchar": "character varying", "character varying": "character varying",
        "char": "character", "character": "character", "bpchar": "character",
        "text": "text", "uuid": "uuid", "name": "name", "citext": "citext",
        "json": "json", "jsonb": "jsonb", "bytea": "bytea", "inet": "inet", "cidr": "cidr",
        "date": "date", "interval": "interval",
        "timestamptz": "timestamp with time zone",
        "timestamp with time zone": "timestamp with time zone",
        "timestamp": "timestamp without time zone",
        "timestamp without time zone": "timestamp without time zone",
        "time": "time without time zone", "time without time zone": "time without time zone",
        "timetz": "time with time zone", "time with time zone": "time with time zone",
        "numeric": "numeric", "decimal": "numeric",
        "real": "real", "float4": "real",
        "double precision": "double precision", "float8": "double precision", "float": "double precision",
        "regclass": "regclass", "oid": "oid",
        // Range types and tsvector: declarable so /rest/v1 can filter them (sl sr nxr nxl adj, fts).
        "int4range": "int4range", "int8range": "int8range", "numrange": "numrange",
        "tsrange": "tsrange", "tstzrange": "tstzrange", "daterange": "daterange", "tsvector": "tsvector",
    ]

    /// `schema.name`, both plain lower-case identifiers, outside the system schemas.
    private static func isUserTypeName(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !["pg_catalog", "information_schema"].contains(String(parts[0])) else { return false }
        return parts.allSatisfy { part in
            guard let first = part.unicodeScalars.first, first == "_" || ("a"..."z").contains(first) else { return false }
            return part.unicodeScalars.allSatisfy { $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) } && part.count <= 63
        }
    }

    private static func canonicalise(_ spelling: String) -> String? {
        var base = spelling
        var arraySuffix = ""
        while base.hasSuffix("[]") {
            base.removeLast(2)
            arraySuffix += "[]"
        }
        var modifier = ""
        if let open = base.firstIndex(of: "(") {
            guard base.hasSuffix(")") else { return nil }
            modifier = String(base[open...])
            base = String(base[..<open])
            let inner = modifier.dropFirst().dropLast()
            guard !inner.isEmpty, inner.allSatisfy({ $0.isNumber || $0 == "," }) else { return nil }
        }
        guard let name = aliases[base] else {
            // A type of the database's own (an enum, a domain) names its schema, so a misspelt
            // built-in (`intger`) stays an error: `public.project_status`, `public.mood[]`.
            guard modifier.isEmpty, isUserTypeName(base) else { return nil }
            return base + arraySuffix
        }
        if name.hasPrefix("timestamp ") || name.hasPrefix("time ") {
            // format_type writes the precision after the first word: timestamp(3) with time zone.
            let words = name.split(separator: " ", maxSplits: 1)
            return String(words[0]) + modifier + (words.count > 1 ? " " + words[1] : "") + arraySuffix
        }
        return name + modifier + arraySuffix
    }
}
