import ArgumentParser
import Catalog
import Config
import Foundation
import Policy
import Postgres
import Privacy
import Tenancy

struct PolicyFilesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Lint, generate, check and explain the policy files.",
        discussion: """
            The files in policies/ (one per governed table) are the single source of truth: the gateway
            evaluates them and `policy sql` generates the database's RLS from them.
            """,
        subcommands: [Lint.self, SQL.self, Check.self, Explain.self])

    struct PolicyOptions: ParsableArguments {
        @Option(help: "Policy files directory (default: $PRIVACY_POLICIES_DIR or policies).")
        var policiesDir: String?

        func load(_ configuration: GatewayConfiguration) throws -> PolicySet {
            try PolicySet.loadForGateway(directory: policiesDir ?? configuration.policiesDirectory)
        }
    }

    struct Lint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find risky or incomplete policies; exit 3 when an error-level finding exists.",
            discussion: """
                Checks: RLS off (with --live), a command with no policy, UPDATE without WITH CHECK,
                USING (true) on writes, auth.uid() IS NULL OR …, policy columns without an index,
                subject tables without a privacy section, subject.via pointing nowhere.
                Example: privacyctl policy lint --live --json
                """)
        @OptionGroup var policy: PolicyOptions
        @Flag(help: "Also check the live database ($DATABASE_URL), e.g. for tables with RLS off.")
        var live = false
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let out = Output(json: output.json)
            var failed = false
            try await out.run {
                let configuration = try database.configuration()
                let policies = try policy.load(configuration)
                var liveTables: [LiveTable]?
                var uniqueIndexes: [LiveUniqueIndex] = []
                if live {
                    let pool = try database.ownerPool()
                    defer { pool.close() }
                    liveTables = try await LiveSchema.read(from: pool).tables
                    // Masking that gives rows equal values on a unique column (the files do not say which are unique).
                    uniqueIndexes = try await pool.withConnection { try await $0.run { try SubjectGraph.loadUniqueIndexes($0) } }
                }
                let findings = policies.lint(liveTables: liveTables) + policies.maskingFindings(uniqueIndexes: uniqueIndexes)
                failed = findings.contains { $0.severity == .error }
                try out.emit(findings) {
                    findings.isEmpty
                        ? "no findings in \(policies.tables.count) policy files" : findings.map(\.description).joined(separator: "\n")
                }
            }
            if failed { throw ExitCode(3) }
        }
    }

    struct SQL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print the DDL the policy files define: RLS (tenant policy, one CREATE POLICY each) and the grants of rest: / managed_by:.",
            discussion: "Example: privacyctl policy sql --table projects > migrations/0042_projects_rls.sql")
        @OptionGroup var policy: PolicyOptions
        @Option(help: "Only this table.") var table: String?
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            try await Output(json: false).run {
                let policies = try policy.load(try database.configuration())
                if let table {
                    do {
                        print(
                            (try policies.rowLevelSecurityStatements(for: table) + policies.grantStatements(for: table)).joined(
                                separator: "\n"))
                    } catch let error as PolicyError {
                        throw CommandError("\(error)")
                    }
                } else {
                    print(policies.rowLevelSecurityScript(), terminator: "")
                }
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare the policy files with the live database's RLS and grants; exit 3 on drift.",
            discussion: """
                Compares meaning (normalised expressions), not names or text. Reports, per table: policies
                missing from the database, extra ones, ones that differ, tables with RLS off, and request
                roles (or the secrets role) whose grants differ from rest: / rest_hidden: / managed_by: —
                including any table or view without a policy file that a request role can reach.
                Example: DATABASE_URL=postgresql://owner@db/app privacyctl policy check --json
                """)
        @OptionGroup var policy: PolicyOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let out = Output(json: output.json)
            var drifted = false
            try await out.run {
                let configuration = try database.configuration()
                let policies = try policy.load(configuration)
                let pool = try database.ownerPool()
                defer { pool.close() }
                let report = try await LiveSchema.read(from: pool).drift(of: policies)
                drifted = !report.isClean
                try out.emit(report) {
                    report.isClean ? "no drift: \(policies.tables.count) tables match their policy files" : report.description
                }
            }
            if drifted { throw ExitCode(3) }
        }
    }

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Explain a decision: which policies applied and which clause allowed or denied.",
            discussion: """
                Example: privacyctl policy explain --table projects --as 5d0c…-uuid --command update \\
                           --row '{"user_id": "9b1e…", "is_public": false}' --new-row '{"user_id": "5d0c…"}'
                """)
        @OptionGroup var policy: PolicyOptions
        @Option(help: "Governed table.") var table: String
        @Option(name: .customLong("as"), help: "The user's id (JWT sub); omit for an anonymous caller.") var user: String?
        @Option(help: "Role: anon, authenticated or service_role (default: authenticated with --as, else anon).") var role: String?
        @Option(help: "Tenant id (default: the row's tenant_id).") var tenant: String?
        @Option(help: "select, insert, update or delete.") var command: String
        @Option(help: "The stored row as JSON (select, update, delete).") var row: String?
        @Option(help: "The row as written, as JSON (insert, update).") var newRow: String?
        @Option(help: "Extra JWT claims as a JSON object, e.g. '{\"session_id\": \"abc\"}'.") var claims: String?
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard Self.requestCommand(command) != nil else {
                throw ValidationError("--command must be select, insert, update or delete, got \"\(command)\"")
            }
            if let user, UUID(uuidString: user) == nil { throw ValidationError("--as must be a user id (a UUID), got \"\(user)\"") }
            if let tenant, UUID(uuidString: tenant) == nil { throw ValidationError("--tenant must be a UUID, got \"\(tenant)\"") }
        }

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                let policies = try policy.load(try database.configuration())
                let existing = try row.map { try Self.row($0, option: "--row") }
                let new = try newRow.map { try Self.row($0, option: "--new-row") }
                let extra = try claims.map { try Self.row($0, option: "--claims") } ?? [:]
                let userID = user.flatMap(UUID.init(uuidString:))
                var tenantID = tenant.flatMap(UUID.init(uuidString:))
                if tenantID == nil, case .text(let text)? = (existing ?? new)?["tenant_id"] { tenantID = UUID(uuidString: text) }
                let auth = AuthContext(
                    role: role ?? (userID == nil ? "anon" : "authenticated"), userID: userID, tenantID: tenantID, claims: extra)
                let explanation: Explanation
                do {
                    explanation = try policies.explain(Self.requestCommand(command)!, on: table, auth: auth, existing: existing, new: new)
                } catch let error as PolicyError {
                    throw CommandError("\(error)")
                }
                try out.emit(explanation) { explanation.description }
            }
        }

        /// select, insert, update or delete, in any case; `all` is not a request's command.
        private static func requestCommand(_ text: String) -> PolicyCommand? {
            PolicyCommand(rawValue: text.lowercased()).flatMap { PolicyCommand.requestCommands.contains($0) ? $0 : nil }
        }

        private static func row(_ json: String, option: String) throws -> PolicyRow {
            do {
                return try JSONDecoder().decode(PolicyRow.self, from: Data(json.utf8))
            } catch {
                throw CommandError("\(option) must be a JSON object of column values, e.g. '{\"user_id\": \"…\"}'")
            }
        }
    }
}
