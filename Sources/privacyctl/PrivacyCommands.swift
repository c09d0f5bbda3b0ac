import ArgumentParser
import Audit
import Catalog
import Config
import Foundation
import Keyring
import Policy
import Postgres
import Privacy
import Sodium
import Tenancy

/// Options every data-subject command shares: who, and where the policies are.
struct SubjectOptions: ParsableArguments {
    @Option(help: "Tenant id.") var tenant: String
    @Option(help: "The data subject's user id.") var user: String

    func ids() throws -> (tenant: UUID, user: UUID) {
        guard let tenantID = UUID(uuidString: tenant) else { throw ValidationError("--tenant must be a UUID, got \"\(tenant)\"") }
        guard let userID = UUID(uuidString: user) else { throw ValidationError("--user must be a UUID, got \"\(user)\"") }
        return (tenantID, userID)
    }
}

/// Builds the Privacy service over the owner connection, as the operator commands use it.
/// `--kind --tenant --id`: one data-subject request, as `requests extend` and `requests retry` name it.
struct RequestOptions: ParsableArguments {
    @Option(help: "The request's kind.") var kind: RequestKind
    @Option(help: "Tenant id.") var tenant: String
    @Option(help: "Request id.") var id: String

    func parsed() throws -> (kind: RequestKind, tenant: UUID, id: UUID) {
        guard let tenantID = UUID(uuidString: tenant), let requestID = UUID(uuidString: id) else {
            throw ValidationError("--tenant and --id must be UUIDs")
        }
        return (kind, tenantID, requestID)
    }
}

/// `--kind` takes exactly the request kinds there are; completion scripts offer them.
extension RequestKind: ExpressibleByArgument {}

struct PrivacyServiceOptions: ParsableArguments {
    @Option(name: .customLong("policies-dir"), help: "Policy files (default: $PRIVACY_POLICIES_DIR or policies).")
    var policiesDirectory: String?
    @Option(name: .customLong("signing-key-file"), help: "Ed25519 seed signing deletion certificates (default: $PRIVACY_SIGNING_KEY_FILE).")
    var signingKeyFile: String?
    @Option(name: .customLong("batch-size"), help: "Rows per erasure batch (default 5000).")
    var batchSize: Int?

    func service(_ database: DatabaseOptions, needsSigningKey: Bool) async throws -> (PrivacyService, ConnectionPool) {
        let configuration = try database.configuration()
        let directory = policiesDirectory ?? configuration.policiesDirectory
        var signingKey: Ed25519.SigningKey?
        if let path = signingKeyFile ?? configuration.signingKeyFile {
            signingKey = try Ed25519.SigningKey(seed: try KeyFile.load(path, purpose: "signing key"))
        } else if needsSigningKey {
            throw ConfigurationError(
                "no signing key: set PRIVACY_SIGNING_KEY_FILE or pass --signing-key-file (deletion certificates are signed)",
                hint: "create one with: privacyctl keys generate --out signing.key")
        }
        let policies = try PolicySet.load(directory: directory)
        // The gateway's export directory: an erasure removes the subject's archives there.
        var settings = PrivacyConfiguration(
            policyVersion: try PrivacyConfiguration.policyVersion(directory: directory),
            exportDirectory: configuration.exportDirectory)
        settings.archiveTTLSeconds = configuration.exportTTLDays * 86_400
        settings.processorsAllowPrivateNetwork = configuration.processorsAllowPrivateNetwork
        // Retired signing keys: an erasure's checkpoint may extend their checkpoints (its proof is attached after it).
        settings.auditTrustedKeys = AuditCheckpoint.trustedKeys(configuration.auditPublicKeys)
        if let batchSize {
            guard (1...1_000_000).contains(batchSize) else { throw ValidationError("--batch-size must be from 1 to 1000000") }
            settings.batchSize = batchSize
        }
        // The root key: requests carry proofs keyed by it (the gateway's worker runs only requests
        // whose filing it can verify), and audit entries are keyed by it as the gateway keys them.
        let root = try KeyFile.rootKeySource(keyFile: configuration.rootKeyFile, passphraseFile: configuration.rootPassphraseFile)
        let pool = try database.ownerPool()
        do {
            let keyring = try await Keyring.open(pool: pool, root: root)
            let graph = try await SubjectGraph.load(policies: policies, pool: pool)
            let service = PrivacyService(
                pool: pool, graph: graph, audit: AuditAppender(pool: pool, keys: try AuditKeys(rootKey: keyring.serviceMaster)),
                signingKey: signingKey, tokenKey: try PrivacyService.tokenKey(serviceMaster: keyring.serviceMaster),
                keyring: keyring, configuration: settings)
            return (service, pool)
        } catch {
            pool.close()
            throw error
        }
    }
}

/// A progress line on a terminal, rewritten in place.
@Sendable func showProgress(_ verb: String) -> @Sendable (PrivacyProgress) -> Void {
    { progress in
        guard isatty(STDERR_FILENO) == 1 else { return }
        let width = 30
        let filled = progress.tableCount == 0 ? width : width * progress.tableIndex / progress.tableCount
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(
            Data("\r\u{1B}[K\(verb) [\(bar)] \(progress.tableIndex)/\(progress.tableCount) \(progress.table) \(progress.rows) rows".utf8))
    }
}

func endProgress() {
    if isatty(STDERR_FILENO) == 1 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
}

func subjectIsRegistered(_ pool: ConnectionPool, tenant: UUID, user: UUID) async throws -> Bool {
    try await pool.query("SELECT count(*) AS n FROM auth.users WHERE tenant_id = $1 AND id = $2", [tenant, user]).first!.decode(
        "n", as: Int.self) > 0
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export every row of a data subject (Art. 15/20) into one archive.",
        discussion: """
            The archive is a tar with a CSV and a JSON file per table and manifest.json (row counts,
            SHA-256 per file, policy version). Secrets are listed by service name, never decrypted.
            With --passphrase-file the archive is encrypted (Argon2id + secretstream).
            Re-running after an interruption finishes the same request. When the tenant has processors
            marked --export-required, they are called first and the command ends with status
            requires_input (exit 0); run it again once they answered or their deadline passed.
            Example: privacyctl export --tenant <id> --user <id> --out subject.tar --json
            """)
    @OptionGroup var subject: SubjectOptions
    @Option(help: "Where to write the archive.") var out: String
    @Option(name: .customLong("passphrase-file"), help: "Encrypt with the passphrase in this file (first line).")
    var passphraseFile: String?
    @OptionGroup var privacy: PrivacyServiceOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let printer = Output(json: output.json)
        let (tenant, user) = try subject.ids()
        try await printer.run {
            var passphrase: String?
            if let passphraseFile {
                passphrase = try String(contentsOfFile: passphraseFile, encoding: .utf8).split(separator: "\n").first.map(String.init)
                guard passphrase?.isEmpty == false else { throw ConfigurationError("the passphrase file is empty") }
            }
            let (service, pool) = try await privacy.service(database, needsSigningKey: false)
            defer { pool.close() }
            guard try await subjectIsRegistered(pool, tenant: tenant, user: user) else {
                throw CommandError("no subject \(user.lowercasedString) in tenant \(tenant.lowercasedString)")
            }
            let request = try await service.requestExport(
                tenant: tenant, subject: user, actor: PrivacyActor("privacyctl"), resumingOpen: true)
            let id = UUID(uuidString: request.request.id)!
            let manifest: ExportManifest
            do {
                manifest = try await service.processExport(
                    tenant: tenant, id: id, to: out, passphrase: passphrase, progress: showProgress("exporting"))
            } catch let error as PrivacyError where error.code == .awaitingInput {
                // Its export_required processors were called; this command, run again once they
                // answered or their deadline passed, writes the archive (unless the gateway's worker
                // resumed it first: then it is served as a download at GET /v1/privacy/exports/{id}).
                endProgress()
                try printer.emit(["request_id": id.lowercasedString, "status": "requires_input", "message": error.message]) {
                    "\(error.message): run this command again once they answered or their deadline passed"
                }
                return
            }
            endProgress()
            struct Result: Encodable { let request_id: String, path: String, manifest: ExportManifest }
            try printer.emit(Result(request_id: id.lowercasedString, path: out, manifest: manifest)) {
                let rows = manifest.rowsByTable.values.reduce(0, +)
                return "exported \(rows) rows from \(manifest.rowsByTable.count) tables to \(out) (request \(id.lowercasedString))"
            }
        }
    }
}

struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Erase a data subject (Art. 17): plan, confirm, run, and print the signed deletion certificate.",
        discussion: """
            --dry-run prints the plan (per table: strategy, rows, retained ground) and changes nothing.
            Without --yes, a terminal asks for confirmation; scripts must pass --yes.
            Children are erased before parents, in batches; the subject's key is crypto-shredded; a
            verification pass checks nothing is left outside retained tables (exit 3 if it fails).
            Re-running after an interruption resumes the same request.
            Example: privacyctl delete --tenant <id> --user <id> --yes --json
            """)
    @OptionGroup var subject: SubjectOptions
    @Flag(name: .customLong("dry-run"), help: "Print the plan only.") var dryRun = false
    @Flag(help: "Do not ask for confirmation.") var yes = false
    @Flag(help: "Print batch statistics (count, longest batch) on stderr, for benchmarks.") var stats = false
    @OptionGroup var privacy: PrivacyServiceOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let printer = Output(json: output.json)
        let (tenant, user) = try subject.ids()
        if !dryRun && !yes && (output.json || isatty(STDIN_FILENO) != 1) {
            throw ValidationError("erasure cannot be undone: pass --yes (or --dry-run to see the plan)")
        }
        var failedVerification = false
        try await printer.run {
            let (service, pool) = try await privacy.service(database, needsSigningKey: !dryRun)
            defer { pool.close() }
            if dryRun {
                let plan = try await service.plan(tenant: tenant, subject: user)
                try printer.emit(plan) { Self.describe(plan) }
                return
            }
            let actor = PrivacyActor("privacyctl")
            let registered = try await subjectIsRegistered(pool, tenant: tenant, user: user)
            let open = try await pool.query(
                "SELECT count(*) AS n FROM public.data_deletion_requests WHERE tenant_id = $1 AND user_id = $2 AND status IN ('awaiting_confirmation', 'pending', 'processing')",
                [tenant, user]
            ).first!.decode("n", as: Int.self)
            if !registered && open == 0 {
                // After a completed erasure (or one waiting for its processors) the subject is gone: print its certificate again.
                guard
                    let row = try await pool.query(
                        "SELECT id FROM public.data_deletion_requests WHERE tenant_id = $1 AND user_id = $2 AND status IN ('completed', 'partially_completed', 'requires_input') ORDER BY status = 'requires_input' DESC, completed_at DESC LIMIT 1",
                        [tenant, user]
                    ).first
                else {
                    throw CommandError("no subject \(user.lowercasedString) in tenant \(tenant.lowercasedString)")
                }
                // Through the erasure again: a certificate whose audit proof was not attached yet
                // (the process died after the erasure committed) gets it now; the same one otherwise.
                let erasure: UUID = try row.decode("id")
                guard
                    let certificate = try await awaitingProcessors(
                        printer, erasure, { try await service.processDeletion(tenant: tenant, id: erasure) })?.certificate
                else { return }
                try emit(printer, certificate)
                failedVerification = !certificate.verification.passed
                return
            }
            let requested = try await service.requestDeletion(tenant: tenant, subject: user, actor: actor, resumingOpen: true)
            let id = UUID(uuidString: requested.request.id)!
            if requested.request.status == "awaiting_confirmation" {
                if !yes {
                    FileHandle.standardError.write(Data((Self.describe(requested.plan!) + "\nType \"erase\" to erase this subject: ").utf8))
                    guard readLine()?.trimmingCharacters(in: .whitespaces) == "erase" else {
                        _ = try await service.cancelDeletion(tenant: tenant, id: id, actor: actor)
                        FileHandle.standardError.write(Data("canceled\n".utf8))
                        throw ExitCode.failure
                    }
                }
                _ = try await service.confirmDeletion(tenant: tenant, id: id, actor: actor)
            }
            let progress = showProgress("erasing")
            guard
                let run = try await awaitingProcessors(
                    printer, id, { try await service.processDeletion(tenant: tenant, id: id, progress: progress) })
            else { return }
            endProgress()
            if stats {
                let longest = Double(run.longestBatch.components.seconds) * 1000 + Double(run.longestBatch.components.attoseconds) / 1e15
                FileHandle.standardError.write(Data(String(format: "batches %d longest_batch_ms %.1f\n", run.batches, longest).utf8))
            }
            try emit(printer, run.certificate)
            failedVerification = !run.certificate.verification.passed
        }
        if failedVerification { throw ExitCode(3) }
    }

    /// The erasure's run, or nil after saying that it waits for its processors (requires_input): the
    /// gateway's worker calls them and issues the certificate; `privacyctl delete` again prints it.
    private func awaitingProcessors(_ printer: Output, _ id: UUID, _ erase: () async throws -> ErasureRun) async throws -> ErasureRun? {
        do {
            return try await erase()
        } catch let error as PrivacyError where error.code == .awaitingInput {
            endProgress()
            try printer.emit(["request_id": id.lowercasedString, "status": "requires_input", "message": error.message]) {
                "\(error.message): the gateway's worker calls them and issues the certificate once they answered or their deadline passed"
            }
            return nil
        }
    }

    private func emit(_ printer: Output, _ certificate: DeletionCertificate) throws {
        try printer.emit(certificate) {
            let rows = certificate.tables.filter { $0.strategy != "retain" }.reduce(0) { $0 + $1.rows }
            return "erased subject \(certificate.subject): \(rows) rows in \(certificate.tables.count) tables; "
                + "verification \(certificate.verification.passed ? "passed" : "FAILED"); subject key \(certificate.verification.subjectKey); "
                + "certificate of request \(certificate.requestID) signed by key \(certificate.keyID)"
        }
    }

    static func describe(_ plan: DeletionPlan) -> String {
        let width = plan.tables.map(\.table.count).max() ?? 10
        return plan.tables.map { entry in
            entry.table.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + entry.strategy.padding(toLength: 9, withPad: " ", startingAt: 0) + "  \(entry.rows) rows"
                + (entry.ground.map { "  (\($0))" } ?? "")
        }.joined(separator: "\n")
    }
}

struct RequestsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requests",
        abstract: "Data-subject requests: list them, extend a deadline, retry a failed one.",
        subcommands: [List.self, Extend.self, Retry.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List export and deletion requests with their due dates.",
            discussion: """
                Examples:
                  privacyctl requests list --overdue --json
                  privacyctl requests list --stuck                  # open, unchanged for an hour, not waiting for the subject
                  privacyctl requests list --stuck --stuck-after 600
                """)
        @Option(help: "Only this tenant.") var tenant: String?
        @Flag(help: "Only open requests past their (extended) due date.") var overdue = false
        @Flag(help: "Only open requests that made no progress for --stuck-after seconds (not those awaiting the subject's confirmation).")
        var stuck = false
        @Option(help: "Seconds without progress that make a request stuck (default 3600).") var stuckAfter: Int = 3600
        @OptionGroup var privacy: PrivacyServiceOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let printer = Output(json: output.json)
            let tenantID = try tenant.map { text in
                guard let id = UUID(uuidString: text) else { throw ValidationError("--tenant must be a UUID, got \"\(text)\"") }
                return id
            }
            guard (1...31_536_000).contains(stuckAfter) else { throw ValidationError("--stuck-after must be 1 to 31536000 seconds") }
            try await printer.run {
                let requests: [PrivacyRequest]
                if let http = try AdminHTTP.fromEnvironment() {
                    if stuck { throw AdminHTTP.directOnly("--stuck") }
                    struct Listing: Decodable { let requests: [PrivacyRequest] }
                    requests = try await http.send(
                        "GET", "/v1/admin/requests", query: ["tenant_id": tenantID?.lowercasedString, "overdue": overdue ? "true" : nil],
                        as: Listing.self
                    ).requests
                } else {
                    let (service, pool) = try await privacy.service(database, needsSigningKey: false)
                    defer { pool.close() }
                    requests = try await service.listRequests(
                        tenant: tenantID, overdueOnly: overdue, stuckAfter: stuck ? .seconds(stuckAfter) : nil)
                }
                try printer.emit(["requests": requests]) {
                    requests.isEmpty
                        ? "no requests"
                        : requests.map {
                            "\($0.kind.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \($0.id) \($0.status.padding(toLength: 21, withPad: " ", startingAt: 0)) due \($0.extendedDueAt ?? $0.dueAt)\($0.overdue ? "  OVERDUE" : "")"
                        }.joined(separator: "\n")
                }
            }
        }
    }

    struct Extend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Extend a request's deadline once, by 1 or 2 months, with a reason (Art. 12(3)).",
            discussion: "Example: privacyctl requests extend --kind export --tenant <id> --id <id> --months 2 --reason \"complex\"")
        @OptionGroup var request: RequestOptions
        @Option(help: "1 or 2.") var months: Int
        @Option(help: "Why the request needs longer.") var reason: String
        @OptionGroup var privacy: PrivacyServiceOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let (kind, tenantID, requestID) = try request.parsed()
            let printer = Output(json: output.json)
            try await printer.run {
                let updated: PrivacyRequest
                if let http = try AdminHTTP.fromEnvironment() {
                    struct Body: Encodable { let months: Int, reason: String }
                    updated = try await http.send(
                        "POST", "/v1/admin/requests/\(kind.rawValue)/\(requestID.lowercasedString)/extend",
                        query: ["tenant_id": tenantID.lowercasedString], body: Body(months: months, reason: reason))
                } else {
                    let (service, pool) = try await privacy.service(database, needsSigningKey: false)
                    defer { pool.close() }
                    updated = try await service.extend(
                        kind, tenant: tenantID, id: requestID, months: months, reason: reason, actor: PrivacyActor("privacyctl"))
                }
                try printer.emit(updated) { "\(updated.kind.rawValue) \(updated.id) now due \(updated.extendedDueAt ?? updated.dueAt)" }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a failed request back to pending; the gateway's worker runs it again (an erasure resumes where it stopped).",
            discussion: """
                Idempotent: a request already pending or processing is left as it is. A request the worker refused
                (not filed through the privacy service) cannot be retried.
                Example: privacyctl requests retry --kind deletion --tenant <id> --id <id>
                """)
        @OptionGroup var request: RequestOptions
        @OptionGroup var privacy: PrivacyServiceOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let (kind, tenantID, requestID) = try request.parsed()
            let printer = Output(json: output.json)
            try await printer.run {
                let (service, pool) = try await privacy.service(database, needsSigningKey: false)
                defer { pool.close() }
                let updated = try await service.retry(
                    kind, tenant: tenantID, id: requestID, subject: nil, actor: PrivacyActor("privacyctl"))
                try printer.emit(updated) { "\(updated.kind.rawValue) \(updated.id) is \(updated.status)" }
            }
        }
    }
}

struct RetentionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "Retention sweeps.",
        subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sweep rows past their table's retention_days and their subject's data_retention_days, in batches, audited.",
            discussion: "Example: privacyctl retention run --json")
        @Option(help: "Only this tenant.") var tenant: String?
        @OptionGroup var privacy: PrivacyServiceOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let tenantID = try tenant.map { text in
                guard let id = UUID(uuidString: text) else { throw ValidationError("--tenant must be a UUID, got \"\(text)\"") }
                return id
            }
            let printer = Output(json: output.json)
            try await printer.run {
                let (service, pool) = try await privacy.service(database, needsSigningKey: false)
                defer { pool.close() }
                let sweeps = try await service.sweepRetention(tenant: tenantID, actor: PrivacyActor("privacyctl"))
                try printer.emit(["sweeps": sweeps]) {
                    sweeps.isEmpty
                        ? "nothing past its retention"
                        : sweeps.map {
                            "\($0.tenant) \($0.table): \($0.rows) rows (\($0.basis) retention, \($0.strategy))"
                        }.joined(separator: "\n")
                }
            }
        }
    }
}

struct ExportDecryptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-decrypt",
        abstract: "Decrypt a passphrase-encrypted export archive (from export --passphrase-file or a download with X-Export-Passphrase).",
        discussion: """
            The archive is an age file: the standard `age -d export.tar.age > export.tar` opens it as well (it asks
            for the passphrase). Archives from earlier versions (PGWEXP01) still decrypt here.
            Example: privacyctl export-decrypt --in export.tar.age --out export.tar --passphrase-file pass.txt
            """)
    @Option(name: .customLong("in"), help: "The encrypted archive.") var input: String
    @Option(help: "Where to write the tar.") var out: String
    @Option(name: .customLong("passphrase-file"), help: "The passphrase (first line).") var passphraseFile: String
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let printer = Output(json: output.json)
        try await printer.run {
            guard
                let passphrase = try String(contentsOfFile: passphraseFile, encoding: .utf8).split(separator: "\n").first.map(String.init),
                !passphrase.isEmpty
            else { throw ConfigurationError("the passphrase file is empty") }
            try ArchiveEncryption.decrypt(source: input, destination: out, passphrase: passphrase)
            try printer.emit(["path": out]) { "decrypted to \(out)" }
        }
    }
}
