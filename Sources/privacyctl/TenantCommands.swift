import ArgumentParser
import Audit
import Catalog
import Config
import Foundation
import JSON
import Keyring
import Postgres
import Sodium
import Tenancy

extension AdminAuditing {
    /// Operators' changes are recorded in the tenant's audit chain, in the same transaction.
    static func privacyctl(_ pool: ConnectionPool) -> AdminAuditing {
        AdminAuditing(appender: AuditAppender(pool: pool), actor: "privacyctl")
    }
}

/// `--scope` takes exactly the scopes there are; completion scripts offer them.
extension Scope: ExpressibleByArgument {}

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant",
        abstract: "Create, list, show, disable and enable tenants; set how their users' JWTs are verified.",
        discussion: "Over HTTP (PRIVACY_ADDR, PRIVACY_TOKEN) create, list, disable and enable need a deployment operator's admin key.",
        subcommands: [Create.self, List.self, Show.self, Disable.self, Enable.self, SetJWT.self, SealSecrets.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one tenant (never its JWT secret).")
        @OptionGroup var tenant: TenantIDArgument
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                let found = try await AdminTarget.resolve(database).tenant(tenant.uuid)
                try out.emit(found) { TenantCommand.describe(found) }
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disable a tenant: every gateway refuses its service keys from their next request.",
            discussion: "Its data, keys and audit trail stay; data-subject requests already filed still run. Undo with tenant enable.")
        @OptionGroup var tenant: TenantIDArgument
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await TenantCommand.setDisabled(tenant.uuid, true, database: database, output: output)
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled tenant: its service keys work again.")
        @OptionGroup var tenant: TenantIDArgument
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await TenantCommand.setDisabled(tenant.uuid, false, database: database, output: output)
        }
    }

    /// A tenant id as the command's argument, checked before anything runs.
    struct TenantIDArgument: ParsableArguments {
        @Argument(help: "Tenant id.") var id: String
        var uuid: UUID { UUID(uuidString: id)! }

        func validate() throws {
            guard UUID(uuidString: id) != nil else { throw ValidationError("the tenant id must be a UUID, got \"\(id)\"") }
        }
    }

    static func setDisabled(_ id: UUID, _ disabled: Bool, database: DatabaseOptions, output: OutputOptions) async throws {
        let out = Output(json: output.json)
        try await out.run {
            let tenant = try await AdminTarget.resolve(database).setDisabled(id, disabled)
            try out.emit(tenant) { (disabled ? "disabled " : "enabled ") + TenantCommand.describe(tenant) }
        }
    }

    static func describe(_ tenant: Tenant) -> String {
        "\(tenant.id.lowercasedString)  \(tenant.name)" + (tenant.disabledAt.map { "  DISABLED since \($0.formatted(.iso8601))" } ?? "")
    }

    struct SealSecrets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "seal-secrets",
            abstract: "Seal every tenant's plaintext HS256 secret under its tenant key (needed before migration 0014).",
            discussion: """
                Databases created before migration 0009 may keep JWT secrets in the plaintext column
                tenants.jwt_secret. Migration 0014 drops that column and refuses to run while any secret
                is left in it (a migration has no root key to seal with). Run this with the root key,
                then privacyctl migrate. Safe to run twice; does nothing once the column is gone.
                Example: privacyctl tenant seal-secrets --json
                """)
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var rootKey: RootKeyOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                let pool = try database.ownerPool()
                defer { pool.close() }
                let keyring = try await rootKey.keyring(try database.configuration(), pool: pool)
                let sealed = try await TenantRegistry(pool: pool, auditing: .privacyctl(pool), keyring: keyring).sealPlaintextSecrets()
                struct Result: Encodable { let sealed: Int }
                try out.emit(Result(sealed: sealed)) {
                    sealed == 0 ? "no plaintext JWT secret left" : "sealed the JWT secrets of \(sealed) tenant(s)"
                }
            }
        }
    }

    struct SetJWT: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-jwt",
            abstract: "Set a tenant's HS256 secret, its RS256/ES256 public keys (a JWKS file), and the aud/iss its tokens must carry.",
            discussion: """
                Every gateway picks up the change within a second (its invalidation log). A new
                --secret does not log users out: the old secret keeps verifying for
                --secret-overlap-seconds (default 3600; 0 replaces it at once, e.g. after a leak).
                With --audience or --issuer set, tokens whose aud (or none of whose aud values) or
                iss differ get 401; pass an empty value (--audience "") to stop checking.
                Examples:
                  privacyctl tenant set-jwt --tenant <id> --secret "$(openssl rand -base64 48)" --secret-overlap-seconds 86400
                  privacyctl tenant set-jwt --tenant <id> --jwks auth-provider-jwks.json
                  privacyctl tenant set-jwt --tenant <id> --jwks-url https://auth.example.com/.well-known/jwks.json
                  privacyctl tenant set-jwt --tenant <id> --audience authenticated --issuer https://auth.example.com
                """)
        @Option(help: "Tenant id.") var tenant: String
        @Option(help: "New HS256 secret (at least 32 bytes; one beginning with \"-\" as --secret=VALUE).") var secret: String?
        @Option(help: "Seconds the replaced secret keeps verifying tokens (0 to 2592000; default 3600).")
        var secretOverlapSeconds: Int?
        @Option(help: "A JWKS file: {\"keys\": [...]} or a JSON array of JWKs.") var jwks: String?
        @Option(help: "An https URL the gateway fetches the tenant's RS256/ES256 keys from (\"\" to remove).") var jwksUrl: String?
        @Option(help: "The aud the tenant's tokens must carry (\"\" to stop checking).") var audience: String?
        @Option(help: "The iss the tenant's tokens must carry (\"\" to stop checking).") var issuer: String?
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var rootKey: RootKeyOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard UUID(uuidString: tenant) != nil else { throw ValidationError("--tenant must be a tenant id (a UUID), got \"\(tenant)\"") }
            guard secret != nil || jwks != nil || audience != nil || issuer != nil || jwksUrl != nil else {
                throw ValidationError("give --secret, --jwks, --jwks-url, --audience or --issuer")
            }
            if secretOverlapSeconds != nil && secret == nil {
                throw ValidationError("--secret-overlap-seconds applies to a new --secret only")
            }
        }

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                var keys: String?
                if let jwks {
                    guard let data = FileManager.default.contents(atPath: jwks) else {
                        throw CommandError("cannot read JWKS file \(jwks)")
                    }
                    keys = String(decoding: data, as: UTF8.self)
                }
                let updated = try await AdminTarget.resolve(database, rootKey: rootKey).setJWT(
                    UUID(uuidString: tenant)!, secret: secret, jwks: keys, audience: audience, issuer: issuer,
                    secretOverlapSeconds: secretOverlapSeconds, jwksURL: jwksUrl)
                try out.emit(updated) {
                    "updated JWT settings of tenant \(updated.name)"
                        + (updated.previousJWTSecretExpiresAt.map { "; the previous secret verifies until \($0.formatted(.iso8601))" } ?? "")
                }
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a tenant.",
            discussion: "Example: privacyctl tenant create --name acme --jwt-secret \"$(openssl rand -base64 48)\" --json")
        @Option(help: "Unique tenant name.") var name: String
        @Option(help: "HS256 secret that verifies this tenant's user JWTs (at least 32 bytes); stored sealed under the tenant's key.")
        var jwtSecret: String?
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var rootKey: RootKeyOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                let tenant = try await AdminTarget.resolve(database, rootKey: rootKey).createTenant(name: name, jwtSecret: jwtSecret)
                try out.emit(tenant) { "created tenant \(tenant.name) with id \(tenant.id.lowercasedString)" }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants.")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                let tenants = try await AdminTarget.resolve(database).tenants()
                try out.emit(tenants) {
                    tenants.isEmpty ? "no tenants" : tenants.map(TenantCommand.describe).joined(separator: "\n")
                }
            }
        }
    }
}

struct ServiceKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "servicekey", abstract: "Create, list, revoke and rotate service keys.",
        discussion:
            "Over HTTP (PRIVACY_ADDR, PRIVACY_TOKEN) a tenant's admin key reaches its own tenant's keys; an operator's, every tenant's.",
        subcommands: [Create.self, List.self, Revoke.self, Rotate.self])

    static func describe(_ key: ServiceKey) -> String {
        var state = key.revokedAt.map { "revoked \($0.formatted(.iso8601))" } ?? "active"
        if key.revokedAt == nil, let expires = key.expiresAt { state += " until \(expires.formatted(.iso8601))" }
        let used = key.lastUsedAt.map { "used \($0.formatted(.iso8601))" } ?? "never used"
        return
            "\(key.id.lowercasedString)  \(key.tenantID.lowercasedString)  \(key.name ?? "-")  \(key.scopes.map(\.rawValue).joined(separator: ","))  \(state)  \(used)"
    }

    /// `--expires-at`: an RFC 3339 time.
    static func expiry(_ text: String?) throws -> Date? {
        guard let text else { return nil }
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = plain.date(from: text) ?? fractional.date(from: text) else {
            throw ValidationError("--expires-at must be an RFC 3339 time such as 2027-01-31T00:00:00Z, got \"\(text)\"")
        }
        return date
    }

    /// What create and rotate print: the record and the key, shown once.
    struct Created: Codable {
        let service_key: ServiceKey
        let key: String
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a key by a new one with the same tenant, name and scopes; the old one keeps working for --overlap-seconds.",
            discussion: "Example: privacyctl servicekey rotate <key id> --overlap-seconds 86400 --json")
        @Argument(help: "Service key id.") var id: String
        @Option(help: "How long the old key keeps working, in seconds (0 to 2592000; default 3600).") var overlapSeconds: Int = 3600
        @Option(help: "When the new key expires (RFC 3339); default never.") var expiresAt: String?
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var rootKey: RootKeyOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard UUID(uuidString: id) != nil else { throw ValidationError("the service key id must be a UUID, got \"\(id)\"") }
            guard (0...Int(ServiceKeyRegistry.maximumOverlap.components.seconds)).contains(overlapSeconds) else {
                throw ValidationError("--overlap-seconds must be from 0 to \(ServiceKeyRegistry.maximumOverlap.components.seconds)")
            }
            _ = try ServiceKeyCommand.expiry(expiresAt)
        }

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                let id = UUID(uuidString: id)!
                let (record, key) = try await AdminTarget.resolve(database, rootKey: rootKey).rotateKey(
                    id, overlapSeconds: overlapSeconds, expiresAt: expiresAt)
                let created = Created(service_key: record, key: key)
                try out.emit(created) {
                    """
                    rotated service key \(id.lowercasedString): the old key works for \(overlapSeconds) more seconds
                    new key \(created.service_key.id.lowercasedString) (shown once, store it now): \(created.key)
                    """
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "List service keys: id, name, scopes, created, revoked and expiry times, last use — never a key (only its keyed hash is stored).",
            discussion: "Example: privacyctl servicekey list --tenant <id> --json")
        @Option(help: "Only this tenant's keys.") var tenant: String?
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if let tenant, UUID(uuidString: tenant) == nil {
                throw ValidationError("--tenant must be a tenant id (a UUID), got \"\(tenant)\"")
            }
        }

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                let tenant = tenant.flatMap(UUID.init(uuidString:))
                let keys = try await AdminTarget.resolve(database).keys(tenant: tenant)
                try out.emit(["service_keys": keys]) {
                    keys.isEmpty ? "no service keys" : keys.map(ServiceKeyCommand.describe).joined(separator: "\n")
                }
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a service key; the key is printed once and only its keyed hash is stored.",
            discussion: """
                Scopes: \(Scope.allCases.map(\.rawValue).joined(separator: ", ")).
                Example: privacyctl servicekey create --tenant <id> --scope data:read --scope data:write --json
                """)
        @Option(help: "Tenant id (over HTTP: default the admin key's own tenant).") var tenant: String?
        @Option(help: "A scope to grant; repeat for several.") var scope: [Scope] = []
        @Option(help: "A label for the key, e.g. the calling service's name.") var name: String?
        @Option(help: "When the key stops working (RFC 3339, in the future); default never.") var expiresAt: String?
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var rootKey: RootKeyOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if let tenant, UUID(uuidString: tenant) == nil {
                throw ValidationError("--tenant must be a tenant id (a UUID), got \"\(tenant)\"")
            }
            guard !scope.isEmpty else {
                throw ValidationError("give at least one --scope (\(Scope.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            _ = try ServiceKeyCommand.expiry(expiresAt)
        }

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                let tenantID = tenant.flatMap(UUID.init(uuidString:))
                let (record, secret) = try await AdminTarget.resolve(database, rootKey: rootKey).createKey(
                    tenant: tenantID, scopes: scope, name: name, expiresAt: expiresAt)
                struct Created: Encodable {
                    let id: String, tenant_id: String, scopes: [Scope], expires_at: Date?, key: String
                }
                let created = Created(
                    id: record.id.lowercasedString, tenant_id: record.tenantID.lowercasedString,
                    scopes: record.scopes, expires_at: record.expiresAt, key: secret)
                try out.emit(created) {
                    """
                    created service key \(record.id.lowercasedString) (\(record.scopes.map(\.rawValue).joined(separator: ", ")))
                    key (shown once, store it now): \(secret)
                    """
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a service key: every gateway refuses it from its next request.",
            discussion: """
                Gateways check a key against the database on every request (a cached key included), so
                once this command returns, any request checked after it gets 401 on every gateway
                process. A request already past its check when the command ran may still complete.
                Example: privacyctl servicekey revoke <key id>
                """)
        @Argument(help: "Service key id.") var id: String
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var rootKey: RootKeyOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard UUID(uuidString: id) != nil else { throw ValidationError("the service key id must be a UUID, got \"\(id)\"") }
        }

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                let record = try await AdminTarget.resolve(database, rootKey: rootKey).revokeKey(UUID(uuidString: id)!)
                try out.emit(record) {
                    """
                    revoked service key \(record.id.lowercasedString)
                    every gateway refuses it from its next request; requests already past their key check may still complete
                    """
                }
            }
        }
    }
}
