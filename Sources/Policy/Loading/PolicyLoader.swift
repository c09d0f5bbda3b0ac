import Foundation
import Yams

/// The text of one policy file and the name errors should show for it.
public struct PolicySource: Sendable {
    public var file: String
    public var text: String

    public init(file: String, text: String) {
        self.file = file
        self.text = text
    }
}

extension PolicySet {
    /// Loads every `*.yaml` file of `directory` (DESIGN.md §4), one governed table per file.
    ///
    /// Reading the files is the module's only I/O. Errors name the file as `directory/name.yaml`.
    public static func load(directory: String) throws -> PolicySet {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw PolicyError(
                .unreadableFile, "cannot read the policy directory '\(directory)'", help: "expected a directory of <table>.yaml files")
        }
        var sources: [PolicySource] = []
        for name in names.sorted() where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw PolicyError(
                    .unreadableFile, "cannot read '\(path)' as UTF-8 text", location: SourceLocation(file: path, line: 1, column: 1))
            }
            sources.append(PolicySource(file: path, text: text))
        }
        return try load(sources: sources)
    }

    /// Loads policy files given as text. Names and types are checked across all of them (an
    /// `EXISTS` may reach another file's table), so they load together.
    public static func load(sources: [PolicySource]) throws -> PolicySet {
        var drafts: [TableDraft] = []
        var seen: [String: SourceLocation] = [:]
        for source in sources {
            let draft = try TableDraft(source: source)
            if let earlier = seen[draft.table.name] {
                throw PolicyError(
                    .duplicate, "table \(draft.table.qualifiedName) is already governed by \(earlier.file)",
                    help: "expected one file per table", location: draft.tableLocation)
            }
            seen[draft.table.name] = draft.tableLocation
            drafts.append(draft)
        }
        let set = PolicySet(tables: drafts.map(\.table))
        try set.checkRoutines()
        for draft in drafts {
            try draft.checkExpressions(catalogue: set)
        }
        try set.checkSubqueryCycles(locations: Dictionary(uniqueKeysWithValues: drafts.map { ($0.table.name, $0.tableLocation) }))
        return PolicySet(checked: drafts.map(\.table))
    }

    /// Function and view names are unique across files and never a table's; `setof` names a
    /// governed table.
    fileprivate func checkRoutines() throws {
        var seen: [String: SourceLocation?] = [:]
        for table in tables {
            for (name, location) in table.functions.map({ ($0.name, $0.location) }) + table.views.map({ ($0.name, $0.location) }) {
                if let earlier = seen[name] {
                    throw PolicyError(
                        .duplicate, "'\(name)' is declared twice", help: "first declared at \(earlier.map { "\($0)" } ?? "?")",
                        location: location)
                }
                if self.table(named: name) != nil {
                    throw PolicyError(.duplicate, "'\(name)' is a governed table's name", location: location)
                }
                seen[name] = location
            }
            for function in table.functions {
                if case .setOf(let target) = function.returns, self.table(named: target) == nil {
                    throw PolicyError(
                        .unknownTable, "function \(function.name) returns setof \(target), which is not governed",
                        help: PolicyError.expectedOneOf(governedTableNames), location: function.location)
                }
            }
        }
    }

    /// Postgres applies a subquery table's own SELECT policies inside EXISTS; tables whose SELECT
    /// policies reach each other that way would recurse forever ("infinite recursion detected in policy").
    fileprivate func checkSubqueryCycles(locations: [String: SourceLocation]) throws {
        var state: [String: Int] = [:]  // 1 = on the current path, 2 = done
        func visit(_ name: String, path: [String]) throws {
            if state[name] == 2 { return }
            if state[name] == 1 {
                let cycle = path.drop(while: { $0 != name }) + [name]
                throw PolicyError(
                    .invalidValue, "SELECT policies reach each other through EXISTS: " + cycle.joined(separator: " → "),
                    help: "Postgres would stop with 'infinite recursion detected in policy'; break the cycle",
                    location: locations[name])
            }
            state[name] = 1
            if let table = table(named: name) {
                for rule in table.policies where rule.command.covers(.select) {
                    for next in rule.using.map(Binder.referencedTables) ?? [] {
                        try visit(next, path: path + [name])
                    }
                }
            }
            state[name] = 2
        }
        for table in tables { try visit(table.name, path: []) }
    }
}

/// One file read and checked on its own; expressions are checked once every table is known.
private struct TableDraft {
    let table: TablePolicy
    let tableLocation: SourceLocation
    let expressionNodes: [(node: Node, expression: PolicyExpression)]
    let map: SourceMap

    static let topKeys = [
        "table", "tenant_column", "subject", "columns", "indexes", "policies", "denied_commands", "privacy", "rest",
        "rest_hidden", "managed_by", "functions", "views",
    ]
    static let functionKeys = ["name", "arguments", "optional", "returns", "columns", "volatility", "security", "justification", "roles"]
    static let viewKeys = ["name", "tenant_column", "columns", "roles"]
    static let policyKeys = ["name", "command", "roles", "using", "with_check", "as"]
    static let subjectKeys = ["column", "via", "references"]
    static let privacyKeys = ["export", "erasure", "anonymize", "retain", "retention_days"]
    static let retainKeys = ["basis", "until"]

    init(source: PolicySource) throws {
        let map = SourceMap(file: source.file, text: source.text)
        self.map = map
        let reader = NodeReader(map: map)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: source.text) else {
                throw PolicyError(
                    .missingKey, "the policy file is empty", help: "expected keys: " + TableDraft.topKeys.joined(separator: ", "),
                    location: map.location(of: nil))
            }
            root = node
        } catch let error as PolicyError {
            throw error
        } catch let error as YamlError {
            throw reader.yamlError(error)
        }
        let top = try reader.mapping(root, allowed: TableDraft.topKeys, what: "a policy file")

        // table: public.projects
        let tableNode = try top.require("table", help: "expected table: public.<name>")
        let qualified = try reader.string(tableNode)
        let parts = qualified.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard (parts.count == 1 || parts.count == 2), parts.allSatisfy({ !$0.isEmpty }) else {
            throw PolicyError(
                .invalidValue, "'\(qualified)' is not a table name", help: "expected schema.table, e.g. public.projects",
                location: map.location(of: tableNode))
        }
        let schema = parts.count == 2 ? parts[0] : "public"
        let name = parts[parts.count - 1]
        let fileStem = ((source.file as NSString).lastPathComponent as NSString).deletingPathExtension
        guard fileStem == name else {
            throw PolicyError(
                .invalidValue, "table '\(qualified)' does not match the file name '\(fileStem)'",
                help: "expected policies/\(name).yaml to govern \(schema).\(name)", location: map.location(of: tableNode))
        }
        tableLocation = map.location(of: tableNode)

        // columns: { name: type }
        let columnsNode = try top.require("columns", help: "expected columns: { id: uuid, tenant_id: uuid, … } mirroring the migrations")
        var columns: [TableColumn] = []
        var columnNames: Set<String> = []
        for (key, value) in try reader.pairs(columnsNode, what: "columns") {
            let column = try reader.string(key)
            let typeText = try reader.string(value)
            guard let type = SQLType(typeText) else {
                throw PolicyError(
                    .invalidValue, "unknown column type '\(typeText)'",
                    help: "expected a Postgres type such as uuid, text, integer, bigint, boolean, jsonb, timestamptz, varchar(255), text[]",
                    location: map.location(of: value))
            }
            guard columnNames.insert(column).inserted else {
                throw PolicyError(.duplicate, "column '\(column)' is listed twice", location: map.location(of: key))
            }
            columns.append(TableColumn(name: column, type: type))
        }
        let columnList = columns.map(\.name).joined(separator: ", ")
        func requireColumn(_ node: Node) throws -> String {
            let column = try reader.string(node)
            guard columnNames.contains(column) else {
                throw PolicyError(
                    .unknownColumn, "column '\(column)' does not exist in \(schema).\(name)",
                    help: "available columns: " + columnList, location: map.location(of: node))
            }
            return column
        }

        // tenant_column: tenant_id
        let tenantNode = try top.require("tenant_column", help: "expected tenant_column: tenant_id")
        let tenantColumn = try requireColumn(tenantNode)
        if let type = columns.first(where: { $0.name == tenantColumn })?.type, type.kind != .uuid {
            throw PolicyError(
                .typeMismatch, "tenant column '\(tenantColumn)' is \(type.spelling)", help: "expected a uuid column",
                location: map.location(of: tenantNode))
        }

        // subject: { column: x } | { via: x, references: table.column }
        var subject: SubjectReference?
        if let subjectNode = top["subject"] {
            let fields = try reader.mapping(subjectNode, allowed: TableDraft.subjectKeys, what: "subject")
            if let columnNode = fields["column"] {
                if let extra = fields["via"] ?? fields["references"] {
                    throw PolicyError(
                        .invalidValue, "subject names both a column and a parent",
                        help: "expected either { column: … } or { via: …, references: table.column }", location: map.location(of: extra))
                }
                subject = .column(try requireColumn(columnNode))
            } else {
                let via = try fields.require("via", help: "expected { column: user_id } or { via: parent_id, references: parents.id }")
                let referencesNode = try fields.require("references", help: "expected references: table.column")
                let references = try reader.string(referencesNode)
                let target = references.split(separator: ".").map(String.init)
                guard target.count == 2, target.allSatisfy({ !$0.isEmpty }) else {
                    throw PolicyError(
                        .invalidValue, "'\(references)' is not table.column", help: "expected references: projects.id",
                        location: map.location(of: referencesNode))
                }
                subject = .via(column: try requireColumn(via), table: target[0], referencedColumn: target[1])
            }
        }

        // indexes: [[tenant_id, user_id], …]
        var indexes: [[String]] = []
        if let indexesNode = top["indexes"] {
            for entry in try reader.sequence(indexesNode, what: "indexes") {
                let columns = try reader.sequence(entry, what: "an index (a list of columns)").map(requireColumn)
                guard !columns.isEmpty else {
                    throw PolicyError(
                        .invalidValue, "an index needs at least one column", help: "expected [column, …]", location: map.location(of: entry)
                    )
                }
                indexes.append(columns)
            }
        }

        // policies
        var rules: [PolicyRule] = []
        var nodes: [(Node, PolicyExpression)] = []
        var policyNames: Set<String> = []
        let policiesNode = try top.require("policies", help: "expected policies: [ … ] (may be empty)")
        for entry in try reader.sequence(policiesNode, what: "policies") {
            let fields = try reader.mapping(entry, allowed: TableDraft.policyKeys, what: "a policy")
            let nameNode = try fields.require("name", help: "every policy needs a name")
            let policyName = try reader.string(nameNode)
            guard !policyName.isEmpty, policyName.utf8.count <= 63 else {
                throw PolicyError(
                    .invalidValue, "policy name must be 1 to 63 bytes", help: "Postgres truncates longer names",
                    location: map.location(of: nameNode))
            }
            guard policyName != PolicySet.tenantPolicyName else {
                throw PolicyError(
                    .invalidValue, "'\(PolicySet.tenantPolicyName)' is implied by tenant_column", help: "remove this entry",
                    location: map.location(of: nameNode))
            }
            guard policyName != PolicySet.privacyWorkerPolicyName else {
                throw PolicyError(
                    .invalidValue, "'\(PolicySet.privacyWorkerPolicyName)' is implied by subject", help: "remove this entry",
                    location: map.location(of: nameNode))
            }
            guard policyNames.insert(policyName).inserted else {
                throw PolicyError(
                    .duplicate, "policy '\(policyName)' is declared twice in \(schema).\(name)",
                    help: "expected unique policy names per table", location: map.location(of: nameNode))
            }

            let commandNode = try fields.require("command", help: PolicyError.expectedOneOf(PolicyCommand.allCases.map(\.rawValue)))
            let commandText = try reader.string(commandNode)
            guard let command = PolicyCommand(rawValue: commandText.lowercased()) else {
                throw PolicyError(
                    .unknownCommand, "unknown command '\(commandText)'",
                    help: PolicyError.expectedOneOf(PolicyCommand.allCases.map(\.rawValue)), location: map.location(of: commandNode))
            }

            let rolesNode = try fields.require("roles", help: "expected roles: [authenticated] (or [public] for every role)")
            var roles: [String] = []
            let roleNodes = rolesNode.scalar != nil ? [rolesNode] : try reader.sequence(rolesNode, what: "roles")
            for roleNode in roleNodes {
                let role = try reader.string(roleNode)
                guard PolicySet.knownRoles.contains(role) else {
                    throw PolicyError(
                        .unknownRole, "unknown role '\(role)'", help: PolicyError.expectedOneOf(PolicySet.knownRoles),
                        location: map.location(of: roleNode))
                }
                if !roles.contains(role) { roles.append(role) }
            }
            guard !roles.isEmpty else {
                throw PolicyError(
                    .invalidValue, "a policy needs at least one role", help: "expected roles: [authenticated] (or [public] for every role)",
                    location: map.location(of: rolesNode))
            }

            var kind = PolicyKind.permissive
            if let asNode = fields["as"] {
                let text = try reader.string(asNode)
                guard let parsed = PolicyKind(rawValue: text.lowercased()) else {
                    throw PolicyError(
                        .invalidValue, "unknown policy kind '\(text)'", help: "expected one of: permissive, restrictive",
                        location: map.location(of: asNode))
                }
                kind = parsed
            }

            func expression(_ key: String) throws -> PolicyExpression? {
                guard let node = fields[key] else { return nil }
                let text = try reader.string(node)
                do {
                    let parsed = try PolicyExpression.parse(text)
                    nodes.append((node, parsed))
                    return parsed
                } catch var error as PolicyError {
                    error.location = map.location(ofOffset: error.expressionOffset ?? 0, in: node)
                    throw error
                }
            }
            let using = try expression("using")
            let withCheck = try expression("with_check")
            switch command {
            case .select, .delete:
                if let node = fields.node(forKey: "with_check") {
                    throw PolicyError(
                        .invalidValue, "a \(command.rawValue) policy cannot have with_check",
                        help: "Postgres applies only USING to SELECT and DELETE; use using", location: map.location(of: node))
                }
                if using == nil {
                    throw PolicyError(
                        .missingKey, "a \(command.rawValue) policy needs using", help: "expected using: <condition>",
                        location: map.location(of: entry))
                }
            case .insert:
                if let node = fields.node(forKey: "using") {
                    throw PolicyError(
                        .invalidValue, "an insert policy cannot have using",
                        help: "Postgres applies only WITH CHECK to INSERT; use with_check", location: map.location(of: node))
                }
                if withCheck == nil {
                    throw PolicyError(
                        .missingKey, "an insert policy needs with_check", help: "expected with_check: <condition>",
                        location: map.location(of: entry))
                }
            case .update, .all:
                if using == nil {
                    throw PolicyError(
                        .missingKey, "an \(command.rawValue) policy needs using",
                        help: "expected using: <condition> (and with_check: <condition> for the new row)", location: map.location(of: entry)
                    )
                }
            }
            rules.append(
                PolicyRule(
                    name: policyName, command: command, roles: roles, kind: kind, using: using, withCheck: withCheck,
                    location: map.location(of: entry)))
        }

        // denied_commands: { update: reason }
        var denied: [PolicyCommand: String] = [:]
        if let deniedNode = top["denied_commands"] {
            for (key, value) in try reader.pairs(deniedNode, what: "denied_commands") {
                let text = try reader.string(key)
                guard let command = PolicyCommand(rawValue: text), command != .all else {
                    throw PolicyError(
                        .unknownCommand, "unknown command '\(text)'",
                        help: PolicyError.expectedOneOf(PolicyCommand.requestCommands.map(\.rawValue)), location: map.location(of: key))
                }
                let reason = try reader.string(value)
                guard !reason.isEmpty else {
                    throw PolicyError(
                        .invalidValue, "denied command '\(text)' needs a reason", help: "expected \(text): <why no role may \(text)>",
                        location: map.location(of: value))
                }
                denied[command] = reason
            }
        }

        // privacy
        var privacy: PrivacyRules?
        if let privacyNode = top["privacy"] {
            let fields = try reader.mapping(privacyNode, allowed: TableDraft.privacyKeys, what: "privacy")
            let exportNode = try fields.require("export", help: "expected export: true|false")
            guard let export = exportNode.scalar.flatMap({ _ in exportNode.bool }) else {
                throw PolicyError(
                    .invalidValue, "export must be true or false", help: "expected export: true|false",
                    location: map.location(of: exportNode))
            }
            let erasureNode = try fields.require("erasure", help: "expected erasure: delete|anonymize|retain")
            let erasureText = try reader.string(erasureNode)
            let erasure: ErasureStrategy
            switch erasureText {
            case "delete":
                erasure = .delete
            case "anonymize":
                let anonymizeNode = try fields.require("anonymize", help: "expected anonymize: { column: null|hmac|redact|…, … }")
                var entries: [(column: String, method: Anonymization)] = []
                for (key, value) in try reader.pairs(anonymizeNode, what: "anonymize") {
                    let column = try requireColumn(key)
                    let type = columns.first(where: { $0.name == column })!.type
                    let method = try TableDraft.anonymization(value, column: column, type: type, reader: reader, map: map)
                    // Rows must not move to another tenant or subject: those columns are only ever nulled (the subject's) or kept.
                    if column == tenantColumn {
                        throw PolicyError(
                            .invalidValue, "the tenant column '\(column)' cannot be anonymized",
                            help: "remove it: rows stay in their tenant", location: map.location(of: key))
                    }
                    if case .column(let subjectColumn)? = subject, column == subjectColumn, method != .null {
                        throw PolicyError(
                            .invalidValue,
                            "the subject column '\(column)' can only be set to null (\(method.name) would keep the rows tied to a person or hand them to another)",
                            help: "write \(column): null", location: map.location(of: value))
                    }
                    entries.append((column, method))
                }
                guard !entries.isEmpty else {
                    throw PolicyError(
                        .invalidValue, "anonymize lists no columns", help: "expected anonymize: { column: null|hmac|redact|…, … }",
                        location: map.location(of: anonymizeNode))
                }
                erasure = .anonymize(entries)
            case "retain":
                let retainNode = try fields.require("retain", help: "expected retain: { basis: \"Art. 17(3)(…)\", until: \"7 years\" }")
                let retain = try reader.mapping(retainNode, allowed: TableDraft.retainKeys, what: "retain")
                let basisNode = try retain.require("basis", help: "expected the legal ground, e.g. basis: \"Art. 17(3)(b) tax records\"")
                let basis = try reader.string(basisNode)
                guard !basis.isEmpty else {
                    throw PolicyError(
                        .invalidValue, "retain.basis is empty", help: "expected the legal ground for keeping the rows",
                        location: map.location(of: basisNode))
                }
                let untilNode = try retain.require("until", help: "expected until: \"<n> days|months|years\"")
                let untilText = try reader.string(untilNode)
                guard let until = RetentionPeriod(untilText) else {
                    throw PolicyError(
                        .invalidValue, "'\(untilText)' is not a period", help: "expected <n> days|months|years, e.g. 7 years",
                        location: map.location(of: untilNode))
                }
                erasure = .retain(basis: basis, until: until)
            default:
                throw PolicyError(
                    .invalidValue, "unknown erasure '\(erasureText)'", help: "expected one of: delete, anonymize, retain",
                    location: map.location(of: erasureNode))
            }
            if erasureText != "anonymize", let node = fields.node(forKey: "anonymize") {
                throw PolicyError(
                    .invalidValue, "anonymize is only used with erasure: anonymize", help: "remove it or set erasure: anonymize",
                    location: map.location(of: node))
            }
            if erasureText != "retain", let node = fields.node(forKey: "retain") {
                throw PolicyError(
                    .invalidValue, "retain is only used with erasure: retain", help: "remove it or set erasure: retain",
                    location: map.location(of: node))
            }
            var retentionDays: Int?
            if let daysNode = fields["retention_days"] {
                guard let days = daysNode.scalar.flatMap({ _ in daysNode.int }), days > 0 else {
                    throw PolicyError(
                        .invalidValue, "retention_days must be a positive whole number", help: "expected retention_days: 730",
                        location: map.location(of: daysNode))
                }
                retentionDays = days
            }
            privacy = PrivacyRules(export: export, erasure: erasure, retentionDays: retentionDays)
        }

        // rest: none | read | read_write (absent: none), rest_hidden: [column, …], managed_by: secrets | privacy
        var rest = RESTExposure.none
        if let restNode = top["rest"] {
            let text = try reader.string(restNode)
            guard let parsed = RESTExposure(rawValue: text) else {
                throw PolicyError(
                    .invalidValue, "unknown rest exposure '\(text)'",
                    help: PolicyError.expectedOneOf(RESTExposure.allCases.map(\.rawValue)), location: map.location(of: restNode))
            }
            rest = parsed
        }
        var managedBy: ManagedBy?
        if let managedNode = top["managed_by"] {
            let text = try reader.string(managedNode)
            guard let parsed = ManagedBy(rawValue: text) else {
                throw PolicyError(
                    .invalidValue, "unknown managed_by '\(text)'",
                    help: PolicyError.expectedOneOf(ManagedBy.allCases.map(\.rawValue)), location: map.location(of: managedNode))
            }
            if rest == .readWrite, let restNode = top["rest"] {
                throw PolicyError(
                    .invalidValue, "\(schema).\(name) is managed by /v1/\(parsed.rawValue) and cannot be REST-writable",
                    help: "expected rest: read or rest: none; its writes go through /v1/\(parsed.rawValue), audited",
                    location: map.location(of: restNode))
            }
            managedBy = parsed
        }
        var restHidden: Set<String> = []
        if let hiddenNode = top["rest_hidden"] {
            for entry in try reader.sequence(hiddenNode, what: "rest_hidden") {
                restHidden.insert(try requireColumn(entry))
            }
            if restHidden.count == columns.count {
                throw PolicyError(
                    .invalidValue, "rest_hidden hides every column", help: "use rest: none instead", location: map.location(of: hiddenNode))
            }
        }

        // functions: [ … ], views: [ … ] (Routines.swift)
        func typedList(_ node: Node, what: String) throws -> [TableColumn] {
            var list: [TableColumn] = []
            for (key, value) in try reader.pairs(node, what: what) {
                let column = try reader.string(key)
                let typeText = try reader.string(value)
                guard let type = SQLType(typeText) else {
                    throw PolicyError(
                        .invalidValue, "unknown type '\(typeText)'", help: "expected a Postgres type such as uuid, integer, text, jsonb",
                        location: map.location(of: value))
                }
                guard SQLText.isPlainIdentifier(column) else {
                    throw PolicyError(
                        .invalidValue, "'\(column)' is not a plain identifier", help: "expected lower-case letters, digits and _",
                        location: map.location(of: key))
                }
                list.append(TableColumn(name: column, type: type))
            }
            return list
        }
        func requestRoles(_ fields: NodeReader.Fields) throws -> [String] {
            let rolesNode = try fields.require("roles", help: "expected roles: [authenticated, service_role] (request roles only)")
            var roles: [String] = []
            let roleNodes = rolesNode.scalar != nil ? [rolesNode] : try reader.sequence(rolesNode, what: "roles")
            for roleNode in roleNodes {
                let role = try reader.string(roleNode)
                guard PolicySet.requestRoles.contains(role) else {
                    throw PolicyError(
                        .unknownRole, "role '\(role)' cannot call through /rest/v1",
                        help: PolicyError.expectedOneOf(PolicySet.requestRoles), location: map.location(of: roleNode))
                }
                if !roles.contains(role) { roles.append(role) }
            }
            return roles
        }
        var functions: [FunctionDeclaration] = []
        if let functionsNode = top["functions"] {
            for entry in try reader.sequence(functionsNode, what: "functions") {
                let fields = try reader.mapping(entry, allowed: TableDraft.functionKeys, what: "a function")
                let nameNode = try fields.require("name", help: "expected name: <function>")
                let functionName = try reader.string(nameNode)
                guard SQLText.isPlainIdentifier(functionName), !functions.contains(where: { $0.name == functionName }) else {
                    throw PolicyError(
                        .invalidValue, "'\(functionName)' is not a plain, new function name", help: "expected one entry per function",
                        location: map.location(of: nameNode))
                }
                let arguments = try fields["arguments"].map { try typedList($0, what: "arguments") } ?? []
                var optional: Set<String> = []
                if let optionalNode = fields["optional"] {
                    for node in try reader.sequence(optionalNode, what: "optional") {
                        let argument = try reader.string(node)
                        guard arguments.contains(where: { $0.name == argument }) else {
                            throw PolicyError(
                                .unknownColumn, "optional names '\(argument)', which is not an argument",
                                help: "expected one of: " + arguments.map(\.name).joined(separator: ", "), location: map.location(of: node))
                        }
                        optional.insert(argument)
                    }
                }
                let returnsNode = try fields.require("returns", help: "expected returns: setof <table> | table | <type>")
                let returnsText = try reader.string(returnsNode).lowercased()
                let returns: FunctionDeclaration.Returns
                if returnsText.hasPrefix("setof ") {
                    returns = .setOf(
                        table: String(returnsText.dropFirst(6)).trimmingCharacters(in: .whitespaces).replacingOccurrences(
                            of: "public.", with: ""))
                } else if returnsText == "table" {
                    let columnsNode = try fields.require("columns", help: "returns: table needs columns: { name: type, … }")
                    returns = .table(try typedList(columnsNode, what: "columns"))
                } else if let type = SQLType(returnsText) {
                    returns = .scalar(type)
                } else {
                    throw PolicyError(
                        .invalidValue, "unknown return type '\(returnsText)'",
                        help: "expected setof <governed table>, table (with columns:) or a Postgres type",
                        location: map.location(of: returnsNode))
                }
                if returnsText != "table", let node = fields.node(forKey: "columns") {
                    throw PolicyError(.invalidValue, "columns is only used with returns: table", location: map.location(of: node))
                }
                let volatilityNode = try fields.require(
                    "volatility", help: PolicyError.expectedOneOf(FunctionDeclaration.Volatility.allCases.map(\.rawValue)))
                guard let volatility = FunctionDeclaration.Volatility(rawValue: try reader.string(volatilityNode).lowercased()) else {
                    throw PolicyError(
                        .invalidValue, "unknown volatility",
                        help: PolicyError.expectedOneOf(FunctionDeclaration.Volatility.allCases.map(\.rawValue)),
                        location: map.location(of: volatilityNode))
                }
                var security = FunctionDeclaration.Security.invoker
                if let securityNode = fields["security"] {
                    guard let parsed = FunctionDeclaration.Security(rawValue: try reader.string(securityNode).lowercased()) else {
                        throw PolicyError(
                            .invalidValue, "unknown security", help: "expected invoker or definer", location: map.location(of: securityNode)
                        )
                    }
                    security = parsed
                }
                let justification = try fields["justification"].map { try reader.string($0) }
                if security == .definer, (justification ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
                    throw PolicyError(
                        .missingKey, "function \(functionName) is security definer without a justification",
                        help:
                            "a definer function runs as its owner, outside the caller's RLS; say why in justification: \"…\", or make it security invoker",
                        location: map.location(of: entry))
                }
                functions.append(
                    FunctionDeclaration(
                        schema: "public", name: functionName, arguments: arguments, optional: optional, returns: returns,
                        volatility: volatility, security: security, justification: justification, roles: try requestRoles(fields),
                        declaredWith: name, location: map.location(of: entry)))
            }
        }
        var views: [ViewDeclaration] = []
        if let viewsNode = top["views"] {
            for entry in try reader.sequence(viewsNode, what: "views") {
                let fields = try reader.mapping(entry, allowed: TableDraft.viewKeys, what: "a view")
                let nameNode = try fields.require("name", help: "expected name: <view>")
                let viewName = try reader.string(nameNode)
                guard SQLText.isPlainIdentifier(viewName), viewName != name, !views.contains(where: { $0.name == viewName }) else {
                    throw PolicyError(.invalidValue, "'\(viewName)' is not a plain, new view name", location: map.location(of: nameNode))
                }
                let viewColumns = try typedList(try fields.require("columns", help: "expected columns: { name: type, … }"), what: "columns")
                var viewTenant: String?
                if let tenantNode = fields["tenant_column"] {
                    let column = try reader.string(tenantNode)
                    guard viewColumns.contains(where: { $0.name == column && $0.type.kind == .uuid }) else {
                        throw PolicyError(
                            .unknownColumn, "tenant_column '\(column)' is not a uuid column of the view",
                            location: map.location(of: tenantNode))
                    }
                    viewTenant = column
                }
                views.append(
                    ViewDeclaration(
                        schema: "public", name: viewName, tenantColumn: viewTenant, columns: viewColumns, roles: try requestRoles(fields),
                        declaredWith: name, location: map.location(of: entry)))
            }
        }

        table = TablePolicy(
            schema: schema, name: name, tenantColumn: tenantColumn, subject: subject, columns: columns,
            indexes: indexes, policies: rules, deniedCommands: denied, privacy: privacy, rest: rest,
            restHidden: restHidden, managedBy: managedBy, file: source.file, functions: functions, views: views)
        expressionNodes = nodes
    }

    func checkExpressions(catalogue: some TableCatalogue) throws {
        for (node, expression) in expressionNodes {
            do {
                try Binder.check(expression, table: table, catalogue: catalogue)
            } catch var error as PolicyError {
                error.location = map.location(ofOffset: error.expressionOffset ?? 0, in: node)
                throw error
            }
        }
    }
}

extension TableDraft {
    static let anonymizationKeys = ["replace", "truncate", "truncate_ip"]

    /// One `anonymize:` entry, checked against its column's type: a method that cannot fit the
    /// column (a date truncation of a text column, a keyed hash in a `varchar(20)`) is refused here,
    /// at the entry's file:line:column, rather than in the middle of an erasure.
    static func anonymization(_ value: Node, column: String, type: SQLType, reader: NodeReader, map: SourceMap) throws -> Anonymization {
        func refuse(_ message: String, _ help: String, at node: Node? = nil) -> PolicyError {
            PolicyError(
                .typeMismatch, "\(message) (column '\(column)' is \(type.spelling))", help: help, location: map.location(of: node ?? value))
        }
        let isArray = type.canonical.hasSuffix("[]")
        let method: Anonymization
        if let scalar = value.scalar {
            switch scalar.string {
            case "", "~", "null", "NULL", "Null": method = .null
            // `hash` was an unkeyed SHA-256 (a dictionary could reverse it); it now means the keyed `hmac`.
            case "hmac", "hash": method = .hmac
            case "redact": method = .redact
            case "truncate_ip": method = .truncateIP(ipv4: 24, ipv6: 48)
            default:
                throw PolicyError(
                    .invalidValue, "unknown anonymization '\(scalar.string)'", help: PolicyError.expectedOneOf(Anonymization.keywords),
                    location: map.location(of: value))
            }
        } else {
            let fields = try reader.mapping(value, allowed: anonymizationKeys, what: "anonymize.\(column)")
            guard fields.pairs.count == 1, let (key, keyNode, node) = fields.pairs.first.map({ ($0.key, $0.keyNode, $0.value) }) else {
                throw PolicyError(
                    .invalidValue, "anonymize.\(column) takes one method", help: PolicyError.expectedOneOf(Anonymization.keywords),
                    location: map.location(of: value))
            }
            _ = keyNode
            switch key {
            case "replace":
                method = .replace(try reader.string(node))
            case "truncate":
                let text = try reader.string(node)
                guard let unit = RetentionPeriod.Unit(rawValue: text) else {
                    throw PolicyError(
                        .invalidValue, "unknown truncation '\(text)'", help: "expected one of: day, month, year",
                        location: map.location(of: node))
                }
                method = .truncateDate(unit)
            default:  // truncate_ip
                let bits = try reader.mapping(node, allowed: ["ipv4", "ipv6"], what: "truncate_ip")
                func prefix(_ key: String, _ range: ClosedRange<Int>, default fallback: Int) throws -> Int {
                    guard let node = bits[key] else { return fallback }
                    guard let n = node.scalar.flatMap({ _ in node.int }), range.contains(n) else {
                        throw PolicyError(
                            .invalidValue, "truncate_ip.\(key) must be a prefix length in \(range.lowerBound)...\(range.upperBound)",
                            help: "e.g. { ipv4: 24, ipv6: 48 }", location: map.location(of: node))
                    }
                    return n
                }
                method = .truncateIP(ipv4: try prefix("ipv4", 0...32, default: 24), ipv6: try prefix("ipv6", 0...128, default: 48))
            }
        }

        // Does it fit the column?
        let base = type.baseName
        switch method {
        case .null, .redact:
            break
        case .hmac:
            // 64 hex characters: a text column, or a varchar/char wide enough.
            guard type.kind == .text, !isArray else {
                throw refuse("hmac writes 64 hex characters and needs a text column", "use null, redact or a fitting method for this type")
            }
            if let length = Self.declaredLength(type), length < 64 {
                throw refuse(
                    "hmac writes 64 hex characters, more than \(length) fit",
                    "widen the column to at least varchar(64), or use null or redact")
            }
        case .replace(let text):
            if let problem = Self.replacementProblem(text, type: type) {
                throw refuse("replace value '\(text)' \(problem)", "give a value of the column's type")
            }
        case .truncateDate:
            guard !isArray, ["date", "timestamp with time zone", "timestamp without time zone"].contains(base) else {
                throw refuse(
                    "truncate needs a date or timestamp column", "use null or redact for this column, or truncate a date/timestamp column")
            }
        case .truncateIP:
            guard !isArray, base == "inet" || base == "cidr" else {
                throw refuse(
                    "truncate_ip needs an inet or cidr column", "store addresses as inet to truncate them, or use null, hmac or redact")
            }
        }
        return method
    }

    /// `n` of `varchar(n)` / `char(n)`; nil when unbounded.
    static func declaredLength(_ type: SQLType) -> Int? {
        guard let open = type.canonical.firstIndex(of: "("), let close = type.canonical.firstIndex(of: ")") else { return nil }
        return Int(type.canonical[type.canonical.index(after: open)..<close])
    }

    /// Why `text` cannot be stored in a column of `type`, or nil when it can.
    static func replacementProblem(_ text: String, type: SQLType) -> String? {
        if type.canonical.hasSuffix("[]") { return "cannot replace an array column" }
        switch type.kind {
        case .text:
            if let length = declaredLength(type), text.count > length { return "is longer than \(length) characters" }
            return nil
        case .integer:
            return Int64(text) == nil ? "is not a whole number" : nil
        case .numeric:
            return Double(text) == nil || text.lowercased().contains("n") ? "is not a number" : nil
        case .boolean:
            return ["true", "false"].contains(text) ? nil : "is not true or false"
        case .uuid:
            return UUID(uuidString: text) == nil ? "is not a uuid" : nil
        case .other:
            switch type.baseName {
            case "json", "jsonb":
                return (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) == nil ? "is not JSON" : nil
            case "date":
                return text.wholeMatch(of: /[0-9]{4}-[0-9]{2}-[0-9]{2}/) == nil ? "is not a date (YYYY-MM-DD)" : nil
            case "timestamp with time zone", "timestamp without time zone":
                return text.wholeMatch(of: /[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?/)
                    == nil
                    ? "is not a timestamp (YYYY-MM-DD[THH:MM[:SS][Z]])" : nil
            default:
                return "cannot be checked: replace supports text, number, boolean, uuid, json, date and timestamp columns"
            }
        }
    }
}

/// Reads Yams nodes into values, turning every surprise into a located ``PolicyError``.
private struct NodeReader {
    let map: SourceMap

    struct Fields {
        let pairs: [(key: String, keyNode: Node, value: Node)]
        let owner: Node
        let what: String
        let map: SourceMap

        subscript(key: String) -> Node? {
            guard let value = pairs.first(where: { $0.key == key })?.value else { return nil }
            // An explicit `key: null` / `key:` counts as absent.
            if let scalar = value.scalar, scalar.style == .plain, ["", "~", "null"].contains(scalar.string) {
                return nil
            }
            return value
        }

        /// The key's own node, for errors that point at the key rather than its value.
        func node(forKey key: String) -> Node? {
            pairs.first(where: { $0.key == key })?.keyNode
        }

        func require(_ key: String, help: String) throws -> Node {
            guard let value = self[key] else {
                throw PolicyError(.missingKey, "missing key '\(key)' in \(what)", help: help, location: map.location(of: owner))
            }
            return value
        }
    }

    func mapping(_ node: Node, allowed: [String], what: String) throws -> Fields {
        let pairs = try self.pairs(node, what: what)
        var seen: Set<String> = []
        var fields: [(String, Node, Node)] = []
        for (keyNode, value) in pairs {
            let key = try string(keyNode)
            guard allowed.contains(key) else {
                throw PolicyError(
                    .unknownKey, "unknown key '\(key)'", help: PolicyError.expectedOneOf(allowed), location: map.location(of: keyNode))
            }
            guard seen.insert(key).inserted else {
                throw PolicyError(.duplicate, "key '\(key)' appears twice in \(what)", location: map.location(of: keyNode))
            }
            fields.append((key, keyNode, value))
        }
        return Fields(pairs: fields, owner: node, what: what, map: map)
    }

    func pairs(_ node: Node, what: String) throws -> [(Node, Node)] {
        guard let mapping = node.mapping else {
            throw PolicyError(
                .invalidValue, "\(what) must be a mapping of key: value", help: "expected key: value lines",
                location: map.location(of: node))
        }
        var seen: Set<String> = []
        var pairs: [(Node, Node)] = []
        for (key, value) in mapping {
            let name = try string(key)
            guard seen.insert(name).inserted else {
                throw PolicyError(.duplicate, "key '\(name)' appears twice in \(what)", location: map.location(of: key))
            }
            pairs.append((key, value))
        }
        return pairs
    }

    func sequence(_ node: Node, what: String) throws -> [Node] {
        guard let sequence = node.sequence else {
            throw PolicyError(
                .invalidValue, "\(what) must be a list", help: "expected [a, b] or '- a' lines", location: map.location(of: node))
        }
        return Array(sequence)
    }

    func string(_ node: Node) throws -> String {
        guard let scalar = node.scalar else {
            throw PolicyError(
                .invalidValue, "expected a single value here, not a \(node.mapping != nil ? "mapping" : "list")",
                location: map.location(of: node))
        }
        return scalar.string
    }

    func yamlError(_ error: YamlError) -> PolicyError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { "\($0.text) " } ?? ""
            return PolicyError(
                .invalidYAML, "invalid YAML: \(detail)\(problem)", help: "expected well-formed YAML", location: map.location(of: mark))
        case .duplicatedKeysInMapping(let duplicates, let context):
            return PolicyError(
                .duplicate, "keys appear twice: " + duplicates.joined(separator: ", "), location: map.location(of: context.mark))
        default:
            return PolicyError(.invalidYAML, "invalid YAML: \(error)", location: map.location(of: nil))
        }
    }
}
