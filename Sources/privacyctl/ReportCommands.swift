import ArgumentParser
import Audit
import Catalog
import Config
import Foundation
import Policy
import Reports
import Sodium
import Tenancy

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a tenant's compliance report: requests, erasures, secrets, policy, audit integrity, consents.",
        discussion: """
            Formats: json (schema: Sources/Reports/SCHEMA.md), md (for a ticket), html (one self-contained
            file that prints to PDF). With $PRIVACY_ROOT_KEY_FILE, service pseudonyms in the audit trail are
            resolved to names. Dates are YYYY-MM-DD (a bare --until includes that day) or RFC 3339 times.
            A deletion certificate counts as signed only when its signature verifies with --certificate-public-key
            (or the public half of $PRIVACY_SIGNING_KEY_FILE); without either, signatures show as "unchecked".
            Exit 3 when the audit chain fails verification (the report is still written, with the failure at the top).
            Checkpoints verify only against pinned keys (--trusted-key, $PRIVACY_AUDIT_PUBLIC_KEYS, the public half of
            $PRIVACY_SIGNING_KEY_FILE), never against keys read from the database.
            Examples:
              privacyctl report --tenant <id> --format html --out report.html
              privacyctl report --tenant <id> --since 2026-01-01 --until 2026-06-30 --format md
              privacyctl report --tenant <id> --format json --certificate-public-key signing.pub
            """)
    @OptionGroup var tenant: AuditCommand.TenantOption
    @Option(help: "Start of the period (default: the tenant's first record).") var since: String?
    @Option(help: "End of the period (default: now).") var until: String?
    @Option(help: "The report's form.") var format: ReportFormat
    @Option(help: "Write to this file instead of stdout.") var out: String?
    @Option(help: "Policy files directory (default: $PRIVACY_POLICIES_DIR or policies).") var policiesDir: String?
    @Option(
        name: .customLong("trusted-key"),
        help:
            "A trusted checkpoint public key (64 hex characters); repeat for old keys. Added to $PRIVACY_AUDIT_PUBLIC_KEYS and the public half of $PRIVACY_SIGNING_KEY_FILE."
    )
    var trustedKeys: [String] = []
    @Option(
        name: .customLong("certificate-public-key"),
        help:
            "A file holding the Ed25519 public key (64 hex characters) deletion certificates must verify with; repeat for old keys (default: the public half of $PRIVACY_SIGNING_KEY_FILE)."
    )
    var certificatePublicKeyFiles: [String] = []
    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        _ = try tenant.id()
        if let since, ReportDate.parse(since) == nil {
            throw ValidationError("--since must be a date (YYYY-MM-DD) or an RFC 3339 time from 1970-01-01 to 9999-12-31, got \"\(since)\"")
        }
        if let until, ReportDate.parse(until, asEnd: true) == nil {
            throw ValidationError("--until must be a date (YYYY-MM-DD) or an RFC 3339 time from 1970-01-01 to 9999-12-31, got \"\(until)\"")
        }
        if let start = since.flatMap({ ReportDate.parse($0) }), let end = until.flatMap({ ReportDate.parse($0, asEnd: true) }), start >= end
        {
            throw ValidationError("--since must be before --until")
        }
        try PinnedKeyFlags.validate(trustedKeys, flag: "--trusted-key")
    }

    func run() async throws {
        let printer = Output(json: false)
        var attention = false
        try await printer.run {
            let configuration = try database.configuration()
            let policies = try PolicySet.loadForGateway(directory: policiesDir ?? configuration.policiesDirectory)
            let keys = try configuration.rootKeyFile.map { try AuditKeys(rootKey: try KeyFile.load($0, purpose: "root key")) }
            // Pinned keys only: the database's own copy of a key proves nothing about who signed.
            let trusted = try configuration.pinnedAuditKeys().merging(
                AuditCheckpoint.trustedKeys(trustedKeys.compactMap(Hex.decode))
            ) { first, _ in first }
            let certificateKeys = try certificatePublicKeys(signingKeyFile: configuration.signingKeyFile)
            let pool = try database.ownerPool()
            defer { pool.close() }
            Output.progress("reading tenant \(try tenant.id().lowercasedString) …")
            let live = try await LiveSchema.read(from: pool)
            let report: ComplianceReport
            do {
                report = try await ReportCollector(pool: pool, keys: keys, trustedKeys: trusted, certificateKeys: certificateKeys).report(
                    tenant: try tenant.id(), since: since.flatMap { ReportDate.parse($0) },
                    until: until.flatMap { ReportDate.parse($0, asEnd: true) },
                    policy: PolicyStatus(policies: policies, livePolicies: live.policies, liveTables: live.tables))
            } catch let error as ReportError {
                throw CommandError(error.description)
            }
            let text = ReportRenderer.render(report, as: format)
            if let out {
                try Data(text.utf8).write(to: URL(fileURLWithPath: out))
                Output.progress("wrote \(out)")
            } else {
                print(text, terminator: "")
            }
            attention = !report.integrity.valid
        }
        if attention { throw ExitCode(3) }
    }

    /// The keys given with --certificate-public-key, else the signing key's public half.
    private func certificatePublicKeys(signingKeyFile: String?) throws -> [[UInt8]] {
        if certificatePublicKeyFiles.isEmpty {
            guard let signingKeyFile else { return [] }
            return [try Ed25519.SigningKey(seed: try KeyFile.load(signingKeyFile, purpose: "signing key")).publicKey]
        }
        return try certificatePublicKeyFiles.map { path in
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConfigurationError("certificate public key file \(path) cannot be read")
            }
            guard let key = Hex.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)), key.count == Ed25519.publicKeyLength else {
                throw ConfigurationError(
                    "certificate public key file \(path) must hold a 32-byte Ed25519 public key in hex (64 characters)")
            }
            return key
        }
    }
}

/// `--format` takes exactly the report forms there are; completion scripts offer them.
extension ReportFormat: ExpressibleByArgument {}
