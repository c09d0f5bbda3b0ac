/// Where in a policy file something is: file, 1-based line and column (columns count Unicode scalars,
/// as libyaml does).
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// The one error type of the `Policy` module.
///
/// Callers switch on ``code``, never on message text. A load error names the file, line and column
/// (``location``) and says what would have been valid (``help``), e.g.
/// `policies/projects.yaml:14:5: unknown key 'usingg' — expected one of: name, command, roles, using, with_check, as`.
public struct PolicyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is; extensible without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case unreadableFile
            case invalidYAML
            case missingKey
            case unknownKey
            case invalidValue
            case duplicate
            case unknownCommand
            case unknownRole
            case unknownTable
            case unknownColumn
            case syntax
            case functionNotAllowed
            case typeMismatch
            case invalidRequest
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A policy file or directory could not be read.
        public static let unreadableFile = Code(.unreadableFile)
        /// The file is not well-formed YAML.
        public static let invalidYAML = Code(.invalidYAML)
        /// A required key is absent.
        public static let missingKey = Code(.missingKey)
        /// A key the format does not define (never silently ignored).
        public static let unknownKey = Code(.unknownKey)
        /// A value has the wrong shape or is out of range.
        public static let invalidValue = Code(.invalidValue)
        /// A table, policy name or column is declared twice.
        public static let duplicate = Code(.duplicate)
        /// A command other than select, insert, update, delete or all.
        public static let unknownCommand = Code(.unknownCommand)
        /// A role that is not a request role (anon, authenticated, service_role) or `public`.
        public static let unknownRole = Code(.unknownRole)
        /// A table that is not governed by the policy set.
        public static let unknownTable = Code(.unknownTable)
        /// A column that is not in the table's `columns:` catalogue.
        public static let unknownColumn = Code(.unknownColumn)
        /// An expression does not follow the grammar (DESIGN.md §4).
        public static let syntax = Code(.syntax)
        /// A function other than the `auth.*()` helpers.
        public static let functionNotAllowed = Code(.functionNotAllowed)
        /// An expression has the wrong type, e.g. a non-boolean `using`, or a literal that does not fit its column.
        public static let typeMismatch = Code(.typeMismatch)
        /// A decision or compilation was asked for something that cannot be answered (e.g. an UPDATE without the old row).
        public static let invalidRequest = Code(.invalidRequest)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// What is wrong, e.g. `unknown key 'usingg'`.
    public var message: String
    /// What would be valid, e.g. `expected one of: name, command, roles, using, with_check, as`.
    public var help: String?
    /// Where in a policy file, when the error comes from one.
    public var location: SourceLocation?
    /// Offset (in Unicode scalars) into the expression text, when the error is inside an expression.
    public var expressionOffset: Int?

    public init(
        _ code: Code, _ message: String, help: String? = nil,
        location: SourceLocation? = nil, expressionOffset: Int? = nil
    ) {
        self.code = code
        self.message = message
        self.help = help
        self.location = location
        self.expressionOffset = expressionOffset
    }

    public var description: String {
        var text = ""
        if let location {
            text += "\(location): "
        } else if let expressionOffset {
            text += "at offset \(expressionOffset): "
        }
        text += message
        if let help, !help.isEmpty { text += " — \(help)" }
        return text
    }
}

extension PolicyError {
    static func expectedOneOf<S: Sequence<String>>(_ options: S) -> String {
        "expected one of: " + options.joined(separator: ", ")
    }
}
