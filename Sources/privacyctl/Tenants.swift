import ArgumentParser
import Audit
import Foundation
import Gateway
import Keyring
import Postgres
import Sodium

extension AdminAuditing {
    /// Operators' changes are recorded in the tenant's audit chain, in the same transaction.
    static func privacyctl(_ pool: ConnectionPool) -> AdminAuditing {
        AdminAuditing(appender: AuditAppender(pool: pool), actor: "privacyctl")
    }
}

struct RootKeyOptions: ParsableArguments {
    @Option(name: .customLong("root-key-file"), help: "Root key file (default: $PRIVACY_ROOT_KEY_FILE).")
    var rootKeyFile: String?
    @Option(
        name: .customLong("root-passphrase-file"),
        help: "Instead of a key file: a file holding the root passphrase (default: $PRIVACY_ROOT_PASSPHRASE_FILE).")
    var rootPassphraseFile: String?

    /// Opens the keyring with the root key; a wrong root key is refused before anything changes.
    func keyring(_ configuration: GatewayConfiguration, pool: ConnectionPool) async throws -> Keyring {
        let source = try KeyFile.rootKeySource(
            keyFile: rootKeyFile ?? configuration.rootKeyFile,
            passphraseFile: rootPassphraseFile ?? (rootKeyFile == nil ? configuration.rootPassphraseFile : nil))
        return try await Keyring.open(pool: pool, root: source)
    }
}

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant", abstract: "Create and list tenants; set how their users' JWTs are verified.",
        subcommands: [Create.self, List.self, SetJWT.self, SealSecrets.self])

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
                The gateway picks up the change within a minute (its key cache). With --audience or
                --issuer set, tokens whose aud (or none of whose aud values) or iss differ get 401;
                pass an empty value (--audience "") to stop checking.
                Examples:
                  privacyctl tenant set-jwt --tenant <id> --jwks auth-provider-jwks.json
                  privacyctl tenant set-jwt --tenant <id> --audience authenticated --issuer https://auth.example.com
                """)
        @Option(help: "Tenant id.") var tenant: String
        @Option(help: "New HS256 secret (at least 32 bytes).") var secret: String?
        @Option(help: "A JWKS file: {\"keys\": [...]} or a JSON array of JWKs.") var jwks: String?
        @Option(help: "The aud the tenant's tokens must carry (\"\" to stop checking).") var audience: String?
        @Option(help: "The iss the tenant's tokens must carry (\"\" to stop checking).") var issuer: String?
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var rootKey: RootKeyOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard UUID(uuidString: tenant) != nil else { throw ValidationError("--tenant must be a tenant id (a UUID), got \"\(tenant)\"") }
            guard secret != nil || jwks != nil || audience != nil || issuer != nil else {
                throw ValidationError("give --secret, --jwks, --audience or --issuer")
            }
        }

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                var keys: String?
                if let jwks {
                    guard let data = FileManager.default.contents(atPath: jwks) else {
                        throw GatewayError.invalidInput("cannot read JWKS file \(jwks)")
                    }
                    keys = String(decoding: data, as: UTF8.self)
                }
                let pool = try database.ownerPool()
                defer { pool.close() }
                let keyring = secret == nil ? nil : try await rootKey.keyring(try database.configuration(), pool: pool)
                let updated = try await TenantRegistry(pool: pool, auditing: .privacyctl(pool), keyring: keyring)
                    .setJWT(tenant: UUID(uuidString: tenant)!, secret: secret, jwks: keys, audience: audience, issuer: issuer)
                try out.emit(updated) { "updated JWT settings of tenant \(updated.name)" }
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
                let pool = try database.ownerPool()
                defer { pool.close() }
                let keyring = jwtSecret == nil ? nil : try await rootKey.keyring(try database.configuration(), pool: pool)
                let tenant = try await TenantRegistry(pool: pool, auditing: .privacyctl(pool), keyring: keyring)
                    .create(name: name, jwtSecret: jwtSecret)
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
                let pool = try database.ownerPool()
                defer { pool.close() }
                let tenants = try await TenantRegistry(pool: pool, auditing: .privacyctl(pool)).list()
                try out.emit(tenants) {
                    tenants.isEmpty ? "no tenants" : tenants.map { "\($0.id.lowercasedString)  \($0.name)" }.joined(separator: "\n")
                }
            }
        }
    }
}

struct ServiceKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "servicekey", abstract: "Create, list and revoke service keys.", subcommands: [Create.self, List.self, Revoke.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List service keys: id, name, scopes, created and revoked times — never a key (only its keyed hash is stored).",
            discussion: "Example: privacyctl servicekey list --tenant <id> --json")
        @Option(help: "Only this tenant's keys.") var tenant: String?
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if let tenant, UUID(uuidString: tenant) == nil { throw ValidationError("--tenant must be a tenant id (a UUID), got \"\(tenant)\"") }
        }

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                let pool = try database.ownerPool()
                defer { pool.close() }
                let keys = try await ServiceKeyRegistry.list(pool: pool, tenant: tenant.flatMap(UUID.init(uuidString:)))
                try out.emit(["service_keys": keys]) {
                    keys.isEmpty ? "no service keys" : keys.map { key in
                        let state = key.revokedAt.map { "revoked \($0.formatted(.iso8601))" } ?? "active"
                        return "\(key.id.lowercasedString)  \(key.tenantID.lowercasedString)  \(key.name ?? "-")  \(key.scopes.map(\.rawValue).joined(separator: ","))  \(state)"
                    }.joined(separator: "\n")
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
        @Option(help: "Tenant id.") var tenant: String
        @Option(help: "A scope to grant; repeat for several.") var scope: [String] = []
        @Option(help: "A label for the key, e.g. the calling service's name.") var name: String?
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var rootKey: RootKeyOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard UUID(uuidString: tenant) != nil else { throw ValidationError("--tenant must be a tenant id (a UUID), got \"\(tenant)\"") }
            guard !scope.isEmpty else { throw ValidationError("give at least one --scope (\(Scope.allCases.map(\.rawValue).joined(separator: ", ")))") }
            for value in scope where Scope(rawValue: value) == nil {
                throw ValidationError("unknown scope \"\(value)\"; valid scopes: \(Scope.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() async throws {
            let out = Output(json: output.json)
            try await out.run {
                let pool = try database.ownerPool()
                defer { pool.close() }
                let keyring = try await rootKey.keyring(try database.configuration(), pool: pool)
                let keys = try ServiceKeyRegistry(pool: pool, rootKey: keyring.serviceMaster, auditing: .privacyctl(pool))
                let (record, secret) = try await keys.create(
                    tenant: UUID(uuidString: tenant)!, scopes: try scope.map(Scope.parse), name: name)
                struct Created: Encodable {
                    let id: String, tenant_id: String, scopes: [Scope], key: String
                }
                let created = Created(
                    id: record.id.lowercasedString, tenant_id: record.tenantID.lowercasedString,
                    scopes: record.scopes, key: secret)
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
                let pool = try database.ownerPool()
                defer { pool.close() }
                let keyring = try await rootKey.keyring(try database.configuration(), pool: pool)
                let keys = try ServiceKeyRegistry(pool: pool, rootKey: keyring.serviceMaster, auditing: .privacyctl(pool))
                let record = try await keys.revoke(id: UUID(uuidString: id)!)
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
