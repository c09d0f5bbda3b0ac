import ArgumentParser
import Catalog
import Config
import Foundation
import Privacy
import Tenancy

/// `privacyctl processor add|list|remove`: a tenant's processors (data held outside Postgres,
/// called on every erasure). Over HTTP with `PRIVACY_ADDR`/`PRIVACY_TOKEN` (`/v1/admin/processors`),
/// else directly with the owner's URL and the root key (the secret is sealed under the tenant's key).
struct ProcessorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "processor",
        abstract: "Processors: where a tenant's data lives outside Postgres; each is called, signed, on every erasure.",
        subcommands: [Add.self, List.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Declare a processor; the signing secret is stored sealed and never shown again.",
            discussion: """
                The secret is read from --secret-file (at least 32 bytes), or made by the gateway and printed once.
                Example: privacyctl processor add --tenant <id> --name openai --data-kind "assistant threads" \\
                           --webhook-url https://erasure.example.com/pgw --timeout-seconds 604800
                """)
        @Option(help: "Tenant id.") var tenant: String
        @Option(help: "a-z, 0-9, '_', '.', '-' (unique in the tenant).") var name: String
        @Option(name: .customLong("data-kind"), help: "What the processor holds, e.g. \"assistant threads\".") var dataKind: String
        @Option(name: .customLong("webhook-url"), help: "https URL the gateway POSTs signed requests to.") var webhookURL: String
        @Option(name: .customLong("secret-file"), help: "A file holding the shared HMAC secret (default: the gateway makes one).")
        var secretFile: String?
        @Option(name: .customLong("timeout-seconds"), help: "Deadline for the processor's signed answer (default 604800, 7 days).")
        var timeoutSeconds: Int = 604_800
        @Flag(name: .customLong("optional"), help: "An erasure is complete without this processor's confirmation.") var optional = false
        @Flag(name: .customLong("export-required"), help: "Exports need its answer too.") var exportRequired = false
        @OptionGroup var privacy: PrivacyServiceOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            guard let tenantID = UUID(uuidString: tenant) else { throw ValidationError("--tenant must be a UUID") }
            let secret = try secretFile.map { path -> String in
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw ValidationError("cannot read --secret-file \(path)")
                }
                return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let printer = Output(json: output.json)
            struct Created: Codable { let processor: Processor; let secret: String? }
            try await printer.run {
                let created: Created
                if let http = try AdminHTTP.fromEnvironment() {
                    struct Body: Encodable {
                        let name: String, data_kind: String, webhook_url: String, secret: String?, timeout_seconds: Int
                        let erasure_required: Bool, export_required: Bool
                    }
                    created = try await http.send(
                        "POST", "/v1/admin/processors", query: ["tenant_id": tenantID.lowercasedString],
                        body: Body(
                            name: name, data_kind: dataKind, webhook_url: webhookURL, secret: secret, timeout_seconds: timeoutSeconds,
                            erasure_required: !optional, export_required: exportRequired))
                } else {
                    let (service, pool) = try await privacy.service(database, needsSigningKey: false)
                    defer { pool.close() }
                    let (processor, generated) = try await service.declareProcessor(
                        tenant: tenantID,
                        ProcessorDeclaration(
                            name: name, dataKind: dataKind, webhookURL: webhookURL, secret: secret, timeoutSeconds: timeoutSeconds,
                            erasureRequired: !optional, exportRequired: exportRequired),
                        actor: PrivacyActor("privacyctl"))
                    created = Created(processor: processor, secret: generated)
                }
                try printer.emit(created) {
                    "processor \(created.processor.name) \(created.processor.id)"
                        + (created.secret.map { "\nsecret (shown once; give it to the processor): \($0)" } ?? "")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's processors (never a secret).")
        @Option(help: "Tenant id.") var tenant: String
        @OptionGroup var privacy: PrivacyServiceOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            guard let tenantID = UUID(uuidString: tenant) else { throw ValidationError("--tenant must be a UUID") }
            let printer = Output(json: output.json)
            struct Listing: Codable { let processors: [Processor] }
            try await printer.run {
                let listing: Listing
                if let http = try AdminHTTP.fromEnvironment() {
                    listing = try await http.send("GET", "/v1/admin/processors", query: ["tenant_id": tenantID.lowercasedString])
                } else {
                    let (service, pool) = try await privacy.service(database, needsSigningKey: false)
                    defer { pool.close() }
                    listing = Listing(processors: try await service.processors(tenant: tenantID))
                }
                try printer.emit(listing) {
                    listing.processors.isEmpty
                        ? "no processors"
                        : listing.processors.map {
                            "\($0.id) \($0.name) (\($0.dataKind)) \($0.webhookURL) timeout \($0.timeoutSeconds)s\($0.erasureRequired ? " required" : " optional")"
                        }.joined(separator: "\n")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a processor; calls already made keep their record, unsent ones close as timed_out.")
        @Option(help: "Tenant id.") var tenant: String
        @Option(help: "Processor id.") var id: String
        @OptionGroup var privacy: PrivacyServiceOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            guard let tenantID = UUID(uuidString: tenant), let processorID = UUID(uuidString: id) else {
                throw ValidationError("--tenant and --id must be UUIDs")
            }
            let printer = Output(json: output.json)
            try await printer.run {
                if let http = try AdminHTTP.fromEnvironment() {
                    struct Removed: Decodable { let removed: String }
                    _ = try await http.send(
                        "DELETE", "/v1/admin/processors/\(processorID.lowercasedString)", query: ["tenant_id": tenantID.lowercasedString],
                        as: Removed.self)
                } else {
                    let (service, pool) = try await privacy.service(database, needsSigningKey: false)
                    defer { pool.close() }
                    try await service.removeProcessor(tenant: tenantID, id: processorID, actor: PrivacyActor("privacyctl"))
                }
                try printer.emit(["removed": processorID.lowercasedString]) { "removed processor \(processorID.lowercasedString)" }
            }
        }
    }
}
