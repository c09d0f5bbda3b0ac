import ArgumentParser
import Foundation
import JSON
import Postgres
import Tenancy

/// Where the tenant and service-key commands act, decided once per command: the gateway's
/// `/v1/admin` over HTTP (`PRIVACY_ADDR`, `PRIVACY_TOKEN`: ``AdminHTTP``), or the database directly
/// as its owner (the bootstrap mode). Each action is written once per mode here, so a command says
/// what it does and not how to reach it; both modes audit the change in the tenant's trail (the
/// gateway as the admin key, the registries as `privacyctl`).
enum AdminTarget {
    case http(AdminHTTP)
    case direct(DatabaseOptions, RootKeyOptions?)

    /// HTTP when the environment names a gateway, else the database; `rootKey` for the actions
    /// that seal or hash with the root key in direct mode.
    static func resolve(_ database: DatabaseOptions, rootKey: RootKeyOptions? = nil) throws -> AdminTarget {
        try AdminHTTP.fromEnvironment().map(AdminTarget.http) ?? .direct(database, rootKey)
    }

    // MARK: Tenants

    func tenant(_ id: UUID) async throws -> Tenant {
        switch self {
        case .http(let http):
            return try await http.send("GET", "/v1/admin/tenants/\(id.lowercasedString)")
        case .direct(let database, _):
            return try await database.withOwnerPool { pool in
                guard let found = try await TenantRegistry(pool: pool, auditing: .privacyctl(pool)).find(id) else {
                    throw CommandError("tenant \(id.lowercasedString) does not exist")
                }
                return found
            }
        }
    }

    func tenants() async throws -> [Tenant] {
        switch self {
        case .http(let http):
            struct Listing: Decodable { let tenants: [Tenant] }
            return try await http.send("GET", "/v1/admin/tenants", as: Listing.self).tenants
        case .direct(let database, _):
            return try await database.withOwnerPool { pool in try await TenantRegistry(pool: pool, auditing: .privacyctl(pool)).list() }
        }
    }

    func createTenant(name: String, jwtSecret: String?) async throws -> Tenant {
        switch self {
        case .http(let http):
            if jwtSecret != nil { throw AdminHTTP.directOnly("--jwt-secret") }
            return try await http.send("POST", "/v1/admin/tenants", body: ["name": name])
        case .direct(let database, let rootKey):
            return try await database.withOwnerPool { pool in
                let keyring = jwtSecret == nil ? nil : try await rootKey?.keyring(try database.configuration(), pool: pool)
                return try await TenantRegistry(pool: pool, auditing: .privacyctl(pool), keyring: keyring).create(
                    name: name, jwtSecret: jwtSecret)
            }
        }
    }

    func setDisabled(_ id: UUID, _ disabled: Bool) async throws -> Tenant {
        switch self {
        case .http(let http):
            return try await http.send("POST", "/v1/admin/tenants/\(id.lowercasedString)/\(disabled ? "disable" : "enable")")
        case .direct(let database, _):
            return try await database.withOwnerPool { pool in
                try await TenantRegistry(pool: pool, auditing: .privacyctl(pool)).setDisabled(id, disabled)
            }
        }
    }

    /// The tenant's JWT settings; `jwks` is the JWKS document's text.
    func setJWT(
        _ id: UUID, secret: String?, jwks: String?, audience: String?, issuer: String?, secretOverlapSeconds: Int?, jwksURL: String?
    ) async throws -> Tenant {
        switch self {
        case .http(let http):
            struct Body: Encodable {
                let secret: String?, jwks: JSONValue?, audience: String?, issuer: String?
                let jwks_url: String?, secret_overlap_seconds: Int?
            }
            var set: JSONValue?
            if let jwks {
                guard let parsed = try? JSONDecoder().decode(JSONValue.self, from: Data(jwks.utf8)) else {
                    throw CommandError("the JWKS file is not JSON")
                }
                set = parsed
            }
            return try await http.send(
                "PUT", "/v1/admin/tenants/\(id.lowercasedString)/jwt",
                body: Body(
                    secret: secret, jwks: set, audience: audience, issuer: issuer, jwks_url: jwksURL,
                    secret_overlap_seconds: secretOverlapSeconds))
        case .direct(let database, let rootKey):
            return try await database.withOwnerPool { pool in
                let keyring = secret == nil ? nil : try await rootKey?.keyring(try database.configuration(), pool: pool)
                return try await TenantRegistry(pool: pool, auditing: .privacyctl(pool), keyring: keyring).setJWT(
                    tenant: id, secret: secret, jwks: jwks, audience: audience, issuer: issuer,
                    secretOverlapSeconds: secretOverlapSeconds, jwksURL: jwksURL)
            }
        }
    }

    // MARK: Service keys

    /// A new key: its record and the key itself, shown once.
    func createKey(tenant: UUID?, scopes: [Scope], name: String?, expiresAt: String?) async throws -> (ServiceKey, String) {
        switch self {
        case .http(let http):
            struct Body: Encodable { let tenant_id: String?, scopes: [Scope], name: String?, expires_at: String? }
            let created: ServiceKeyCommand.Created = try await http.send(
                "POST", "/v1/admin/service-keys",
                body: Body(tenant_id: tenant?.lowercasedString, scopes: scopes, name: name, expires_at: expiresAt))
            return (created.service_key, created.key)
        case .direct(let database, let rootKey):
            guard let tenant else { throw ValidationError("--tenant is required in direct-database mode") }
            return try await database.withServiceKeys(rootKey) { keys in
                let made = try await keys.create(
                    tenant: tenant, scopes: scopes, name: name, expiresAt: try ServiceKeyCommand.expiry(expiresAt))
                return (made.key, made.secret)
            }
        }
    }

    func keys(tenant: UUID?) async throws -> [ServiceKey] {
        switch self {
        case .http(let http):
            struct Listing: Decodable { let service_keys: [ServiceKey] }
            return try await http.send(
                "GET", "/v1/admin/service-keys", query: ["tenant_id": tenant?.lowercasedString], as: Listing.self
            ).service_keys
        case .direct(let database, _):
            return try await database.withOwnerPool { pool in try await ServiceKeyRegistry.list(pool: pool, tenant: tenant) }
        }
    }

    func revokeKey(_ id: UUID) async throws -> ServiceKey {
        switch self {
        case .http(let http):
            return try await http.send("POST", "/v1/admin/service-keys/\(id.lowercasedString)/revoke")
        case .direct(let database, let rootKey):
            return try await database.withServiceKeys(rootKey) { keys in try await keys.revoke(id: id) }
        }
    }

    /// The new key that replaces `id` (which keeps working for `overlapSeconds`), shown once.
    func rotateKey(_ id: UUID, overlapSeconds: Int, expiresAt: String?) async throws -> (ServiceKey, String) {
        switch self {
        case .http(let http):
            struct Body: Encodable { let overlap_seconds: Int, expires_at: String? }
            let created: ServiceKeyCommand.Created = try await http.send(
                "POST", "/v1/admin/service-keys/\(id.lowercasedString)/rotate",
                body: Body(overlap_seconds: overlapSeconds, expires_at: expiresAt))
            return (created.service_key, created.key)
        case .direct(let database, let rootKey):
            return try await database.withServiceKeys(rootKey) { keys in
                let (_, new, secret) = try await keys.rotate(
                    id: id, overlap: .seconds(overlapSeconds), expiresAt: try ServiceKeyCommand.expiry(expiresAt))
                return (new, secret)
            }
        }
    }
}

extension DatabaseOptions {
    /// `body` with a pool as the database's owner, closed after it.
    func withOwnerPool<T>(_ body: (ConnectionPool) async throws -> T) async throws -> T {
        let pool = try ownerPool()
        defer { pool.close() }
        return try await body(pool)
    }

    /// `body` with the service-key registry (its keyed hash needs the root key), changes audited as `privacyctl`.
    func withServiceKeys<T>(_ rootKey: RootKeyOptions?, _ body: (ServiceKeyRegistry) async throws -> T) async throws -> T {
        try await withOwnerPool { pool in
            let keyring = try await (rootKey ?? RootKeyOptions()).keyring(try configuration(), pool: pool)
            return try await body(try ServiceKeyRegistry(pool: pool, rootKey: keyring.serviceMaster, auditing: .privacyctl(pool)))
        }
    }
}
