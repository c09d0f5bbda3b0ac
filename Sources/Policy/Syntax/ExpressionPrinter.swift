extension PolicyExpression: CustomStringConvertible {
    /// The expression as SQL, with identifiers quoted only where needed.
    /// Parsing the text again gives an equal expression.
    public var description: String {
        var printer = ExpressionPrinter(quoteAll: false)
        printer.print(self, minimum: .or)
        return printer.output
    }

    /// The expression as SQL with every identifier quoted (`"user_id"`, `"p"."id"`), for DDL.
    public var quotedSQL: String {
        var printer = ExpressionPrinter(quoteAll: true)
        printer.print(self, minimum: .or)
        return printer.output
    }
}

/// Binding strength, loosest first, following Postgres' grammar (`gram.y` precedence table).
enum Precedence: Int, Comparable {
    case or = 1, and, not, isTest, comparison, inList, jsonOperator, unaryMinus, cast, primary

    static func < (lhs: Precedence, rhs: Precedence) -> Bool { lhs.rawValue < rhs.rawValue }
    var next: Precedence { Precedence(rawValue: rawValue + 1) ?? .primary }
}

struct ExpressionPrinter {
    let quoteAll: Bool
    var output = ""

    init(quoteAll: Bool) { self.quoteAll = quoteAll }

    static func precedence(of expression: PolicyExpression) -> Precedence {
        switch expression {
        case .or: return .or
        case .and: return .and
        case .not: return .not
        case .isNull, .isBoolean: return .isTest
        case .comparison, .quantified: return .comparison
        case .inList: return .inList
        case .jwtClaim: return .jsonOperator
        case .literal(.integer(let value)) where value < 0: return .unaryMinus
        case .literal(.decimal(let text)) where text.hasPrefix("-"): return .unaryMinus
        case .cast: return .cast
        case .column, .literal, .auth, .array, .exists: return .primary
        }
    }

    mutating func print(_ expression: PolicyExpression, minimum: Precedence) {
        let own = ExpressionPrinter.precedence(of: expression)
        if own < minimum {
            output += "("
            print(expression, minimum: .or)
            output += ")"
            return
        }
        switch expression {
        case .column(let reference):
            if let qualifier = reference.qualifier {
                output += identifier(qualifier) + "."
            }
            output += identifier(reference.name)
        case .literal(let literal):
            output += ExpressionPrinter.literal(literal)
        case .cast(let inner, let type):
            print(inner, minimum: .cast)
            output += "::" + type.spelling
        case .auth(let function):
            output += "auth.\(function.rawValue)()"
        case .jwtClaim(let claim):
            output += "auth.jwt() ->> " + ExpressionPrinter.stringLiteral(claim)
        case .comparison(let lhs, let op, let rhs):
            print(lhs, minimum: .comparison.next)
            output += " \(op.rawValue) "
            print(rhs, minimum: .comparison.next)
        case .and(let terms):
            join(terms, with: " AND ", minimum: .and.next)
        case .or(let terms):
            join(terms, with: " OR ", minimum: .or.next)
        case .not(let inner):
            output += "NOT "
            print(inner, minimum: .not)
        case .isNull(let inner, let negated):
            print(inner, minimum: .isTest.next)
            output += negated ? " IS NOT NULL" : " IS NULL"
        case .isBoolean(let inner, let value, let negated):
            print(inner, minimum: .isTest.next)
            output += (negated ? " IS NOT " : " IS ") + (value ? "TRUE" : "FALSE")
        case .inList(let inner, let items, let negated):
            print(inner, minimum: .inList.next)
            output += negated ? " NOT IN (" : " IN ("
            join(items, with: ", ", minimum: .or)
            output += ")"
        case .quantified(let lhs, let op, let quantifier, let array):
            print(lhs, minimum: .comparison.next)
            output += " \(op.rawValue) \(quantifier.rawValue) ("
            print(array, minimum: .or)
            output += ")"
        case .array(let items):
            output += "ARRAY["
            join(items, with: ", ", minimum: .or)
            output += "]"
        case .exists(let subquery):
            output += "EXISTS (SELECT 1 FROM "
            if let schema = subquery.schema {
                output += identifier(schema) + "."
            }
            output += identifier(subquery.table)
            if let alias = subquery.alias {
                output += " " + identifier(alias)
            }
            if let condition = subquery.condition {
                output += " WHERE "
                print(condition, minimum: .or)
            }
            output += ")"
        }
    }

    private mutating func join(_ items: [PolicyExpression], with separator: String, minimum: Precedence) {
        for (index, item) in items.enumerated() {
            if index > 0 { output += separator }
            print(item, minimum: minimum)
        }
    }

    func identifier(_ name: String) -> String {
        quoteAll ? SQLText.quoted(name) : SQLText.identifier(name)
    }

    static func literal(_ literal: PolicyExpression.Literal) -> String {
        switch literal {
        case .null: return "NULL"
        case .bool(let value): return value ? "true" : "false"
        case .integer(let value): return String(value)
        case .decimal(let text): return text
        case .string(let text): return stringLiteral(text)
        }
    }

    static func stringLiteral(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }
}

/// Identifier quoting, the one place SQL identifiers are written.
/// How SQL text spells identifiers and literals; the one place names are quoted.
public enum SQLText {
    /// Words the expression grammar reserves; an identifier spelled like one is quoted.
    static let reservedWords: Set<String> = [
        "and", "or", "not", "is", "null", "true", "false", "in", "any", "all", "some", "exists", "select",
        "from", "where", "array", "as", "unknown", "distinct", "case", "when", "then", "else", "end",
        "between", "like", "ilike", "similar", "cast", "user", "current_user", "session_user", "table",
        "to", "for", "on", "using", "with", "check", "group", "order", "limit", "having", "union",
    ]

    /// `"name"` with embedded quotes doubled: always safe, whatever the name.
    public static func quoted(_ name: String) -> String {
        // Catalogue names are plain identifiers; the escape is for completeness, off the hot path.
        guard name.utf8.contains(UInt8(ascii: "\"")) else { return "\"" + name + "\"" }
        return "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// The name bare when Postgres would read it back unchanged, quoted otherwise.
    static func identifier(_ name: String) -> String {
        isPlainIdentifier(name) && !reservedWords.contains(name) ? name : quoted(name)
    }

    static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || ("a"..."z").contains(first) else {
            return false
        }
        return name.unicodeScalars.allSatisfy { $0 == "_" || $0 == "$" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
    }
}
