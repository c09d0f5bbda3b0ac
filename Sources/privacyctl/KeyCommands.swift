import ArgumentParser
import Audit
import Catalog
import Config
import Foundation
import Keyring
import Tenancy

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create key files; rotate tenant keys and the root key.",
        subcommands: [Generate.self, Rotate.self])

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new random 32-byte key (base64, one line, mode 0600).",
            discussion: """
                Used for the root key (PRIVACY_ROOT_KEY_FILE) and the Ed25519 signing seed
                (PRIVACY_SIGNING_KEY_FILE). Never overwrites an existing file.
                Example: privacyctl keys generate --out /etc/privacy-gateway/root.key
                """)
        @Option(help: "File to create.")
        var out: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let printer = Output(json: output.json)
            try await printer.run {
                try KeyFile.generate(at: out)
                try printer.emit(["file": out]) { "wrote \(out) (mode 0600)" }
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rotate tenant KEKs (rewrapping every subject key), or the root key with --root.",
            discussion: """
                A tenant rotation adds a KEK version, rewraps the subject keys under it in batches
                (no secret is decrypted) and retires the old version. Secrets keep opening
                throughout. Interrupted (even killed), the next run resumes where it stopped: done
                tenants are not rotated again. Progress goes to stderr on a terminal.
                  privacyctl keys rotate                       # every tenant
                  privacyctl keys rotate --tenant <id> --json
                With PRIVACY_ADDR and PRIVACY_TOKEN (an operator's admin key), the gateway runs it
                (POST /v1/admin/kek-rotation) and this waits, showing progress, until it finishes;
                --json prints the final status.
                Root rotation rewraps every tenant KEK under a new root key file; restart the
                gateways with the new file afterwards (the old one is refused from then on):
                  privacyctl keys generate --out root-2.key
                  privacyctl keys rotate --root --new-root-key-file root-2.key
                """)
        @Option(help: "Rotate this tenant only (default: every tenant).") var tenant: String?
        @Flag(help: "Rotate the root key instead of tenant keys.") var root = false
        @Option(help: "With --root: the new root key file.") var newRootKeyFile: String?
        @Option(help: "Subject keys rewrapped per transaction.") var batchSize = 500
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var rootKey: RootKeyOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if let tenant, UUID(uuidString: tenant) == nil {
                throw ValidationError("--tenant must be a tenant id (a UUID), got \"\(tenant)\"")
            }
            guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be from 1 to 10000") }
            if root {
                guard newRootKeyFile != nil else {
                    throw ValidationError("--root needs --new-root-key-file FILE (make one with: privacyctl keys generate --out FILE)")
                }
                guard tenant == nil else { throw ValidationError("--root rotates the key of every tenant; drop --tenant") }
            } else if newRootKeyFile != nil {
                throw ValidationError("--new-root-key-file is only used with --root")
            }
        }

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                if let http = try AdminHTTP.fromEnvironment() {
                    if root { throw AdminHTTP.directOnly("--root") }
                    let status = try await Self.rotateOverHTTP(http, tenant: tenant)
                    try out.emit(status) { Self.describe(status) }
                    return
                }
                let pool = try database.ownerPool()
                defer { pool.close() }
                let keyring = try await rootKey.keyring(try database.configuration(), pool: pool)
                let appender = AuditAppender(pool: pool)
                var tenants: [UUID] = tenant.map { [UUID(uuidString: $0)!] } ?? []
                if tenant == nil {
                    tenants = try await pool.query("SELECT id FROM public.tenants ORDER BY created_at, id").rows.map { try $0.decode("id") }
                }
                if root {
                    let newRoot = try KeyFile.load(newRootKeyFile!, purpose: "new root key")
                    let (version, rewrapped) = try await keyring.rotateRoot(to: newRoot, pool: pool, batchSize: batchSize)
                    for tenant in tenants {
                        _ = try await appender.append(
                            tenant: tenant,
                            AuditEvent(
                                actor: "privacyctl", action: "keys.root_rotated", target: "root",
                                details: ["from_version": .int(Int64(keyring.rootVersion)), "to_version": .int(Int64(version))]))
                    }
                    struct Rotated: Encodable { let root_version: Int; let rewrapped_tenant_keys: Int }
                    try out.emit(Rotated(root_version: version, rewrapped_tenant_keys: rewrapped)) {
                        "root key is now version \(version); \(rewrapped) tenant keys rewrapped. Restart gateways with the new root key file."
                    }
                    return
                }
                // Recorded in keyring.kek_rotations: killed, the next run resumes it (done tenants are skipped).
                let (started, resumed) = try await Keyring.beginKEKRotation(
                    tenant: tenant.map { UUID(uuidString: $0)! }, by: "privacyctl", pool: pool)
                if resumed {
                    Output.progress(
                        "resuming the KEK rotation started \(started.startedAt.formatted(.iso8601)) by \(started.startedBy): "
                            + "\(started.tenantsDone)/\(started.tenantsTotal) tenants done")
                }
                var reports: [RotationReport] = []
                try await keyring.runKEKRotation(
                    pool: pool, batchSize: batchSize,
                    progress: { progress in
                        Output.progress(
                            "tenant \(progress.tenant.lowercasedString): \(progress.rewrapped) subject keys rewrapped, \(progress.remaining) to go"
                        )
                    }
                ) { report in
                    _ = try await appender.append(
                        tenant: report.tenant,
                        AuditEvent(
                            actor: "privacyctl", action: "keys.rotated", target: "tenant:" + report.tenant.lowercasedString,
                            details: [
                                "from_version": .string(report.fromVersions.map(String.init).joined(separator: ",")),
                                "to_version": .int(Int64(report.toVersion)), "rewrapped": .int(Int64(report.rewrappedSubjectKeys)),
                                "resumed": .bool(report.resumed),
                            ]))
                    reports.append(report)
                }
                try out.emit(reports) {
                    reports.isEmpty
                        ? "no tenants"
                        : reports.map {
                            "tenant \($0.tenant.lowercasedString): key version \($0.toVersion)\($0.resumed ? " (resumed)" : ""), "
                                + "\($0.rewrappedSubjectKeys) subject keys rewrapped, retired \($0.retiredVersions.isEmpty ? "none" : $0.retiredVersions.map(String.init).joined(separator: ", "))"
                        }.joined(separator: "\n")
                }
            }
        }

        /// POST /v1/admin/kek-rotation, then GET it every second until it is finished (progress
        /// on stderr); an interrupted rotation with an error is this command's failure.
        static func rotateOverHTTP(_ http: AdminHTTP, tenant: String?) async throws -> KEKRotationStatus {
            struct Body: Encodable { let tenant_id: String? }
            struct Started: Decodable { let rotation: KEKRotationStatus, resumed: Bool }
            let started: Started = try await http.send(
                "POST", "/v1/admin/kek-rotation", body: Body(tenant_id: tenant.map { UUID(uuidString: $0)!.lowercasedString }))
            if started.resumed { Output.progress("resuming the KEK rotation started \(started.rotation.startedAt.formatted(.iso8601))") }
            var status = started.rotation
            var interruptedPolls = 0
            while status.state != .finished {
                Output.progress(describe(status))
                try await Task.sleep(for: .seconds(1))
                status = try await http.send("GET", "/v1/admin/kek-rotation")
                if status.state == .interrupted {
                    // The gateway that ran it stopped (or failed): say why, and how to resume.
                    interruptedPolls += 1
                    if status.lastError != nil || interruptedPolls >= 5 {
                        throw CommandError(
                            "the KEK rotation stopped: \(status.lastError ?? "the gateway running it is gone")",
                            hint: "run privacyctl keys rotate again to resume it")
                    }
                }
            }
            return status
        }

        static func describe(_ status: KEKRotationStatus) -> String {
            "KEK rotation \(status.id.lowercasedString) \(status.state.rawValue): \(status.tenantsDone)/\(status.tenantsTotal) tenants, "
                + "\(status.rowsDone)/\(status.rowsTotal) subject keys"
                + (status.finishedAt.map { ", finished \($0.formatted(.iso8601))" } ?? "")
        }
    }
}
