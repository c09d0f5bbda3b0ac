import Audit
import Foundation
import JSON
import Keyring
import Postgres
import Sodium

/// A tenant: one customer's isolated slice of every governed table.
public struct Tenant: Sendable, Codable, Equatable {
    public let id: UUID
    public let name: String
    public let createdAt: Date
    /// Whether an HS256 secret is configured (the secret itself is never returned).
    public let hasJWTSecret: Bool
    /// Since when the tenant's service keys are refused (nil: active). Migration 0025.
    public var disabledAt: Date? = nil
    /// Until when the HS256 secret a rotation replaced still verifies tokens (nil: none). Migration 0027.
    public var previousJWTSecretExpiresAt: Date? = nil
    /// Where the tenant's RS256/ES256 keys are fetched from (nil: none). Migration 0027.
    public var jwksURL: String? = nil

    enum CodingKeys: String, CodingKey {
        case id, name
        case createdAt = "created_at"
        case hasJWTSecret = "has_jwt_secret"
        case disabledAt = "disabled_at"
        case previousJWTSecretExpiresAt = "previous_jwt_secret_expires_at"
        case jwksURL = "jwks_url"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.lowercasedString, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(hasJWTSecret, forKey: .hasJWTSecret)
        try container.encode(disabledAt, forKey: .disabledAt)
        try container.encode(previousJWTSecretExpiresAt, forKey: .previousJWTSecretExpiresAt)
        try container.encode(jwksURL, forKey: .jwksURL)
    }
}

/// The tenants table. Needs the owner role: request roles never see it.
///
/// HS256 secrets are only ever stored sealed under the tenant's KEK (DESIGN.md §7), so setting
/// one needs the keyring (the root key). Migration 0014 dropped the plaintext column of 0001.
public struct TenantRegistry: Sendable {
    private let pool: ConnectionPool
    private let auditing: AdminAuditing
    private let keyring: Keyring?

    /// HS256 secrets shorter than this are refused (RFC 7518 §3.2: at least the hash size).
    public static let minimumJWTSecretLength = 32

    /// `auditing` records every change in the tenant's audit chain, in the same transaction.
    public init(pool: ConnectionPool, auditing: AdminAuditing, keyring: Keyring? = nil) {
        self.pool = pool
        self.auditing = auditing
        self.keyring = keyring
    }

    package static let columns = """
        id, name, created_at, (jwt_secret_sealed IS NOT NULL) AS has_secret, disabled_at, jwt_jwks_url,
        CASE WHEN jwt_previous_secret_expires_at > now() THEN jwt_previous_secret_expires_at END AS previous_secret_expires_at
        """

    /// A rotated-out HS256 secret keeps verifying for this long unless told otherwise (as a rotated service key).
    public static let defaultSecretOverlapSeconds = 3600
    /// The longest overlap window: 30 days.
    public static let maximumSecretOverlapSeconds = 30 * 86_400

    /// The longest audience or issuer a tenant may pin.
    public static let maximumClaimLength = 1000

    /// Stores `secret` for `tenant`, sealed under its KEK, returning the tenant's row.
    private static func storeSecret(_ secret: String, tenant: UUID, keyring: Keyring?, in connection: borrowing Connection) throws
        -> QueryResult
    {
        guard let keyring else { throw noKeyring }
        let sealed = try keyring.sealTenantSecret(
            Array(secret.utf8), tenant: tenant, purpose: TenantSecretPurpose.jwtSecret, in: connection)
        return try connection.query(
            """
            UPDATE public.tenants SET jwt_secret_sealed = $2, jwt_secret_nonce = $3, jwt_secret_kek_version = $4
            WHERE id = $1 RETURNING \(columns)
            """, [tenant, sealed.ciphertext, sealed.nonce, sealed.kekVersion])
    }

    private static let noKeyring = TenancyError(
        .unconfigured,
        "a JWT secret is stored sealed under the tenant's key, which needs the root key",
        hint: "set PRIVACY_ROOT_KEY_FILE (or pass --root-key-file)")

    public func create(name: String, jwtSecret: String?) async throws -> Tenant {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, name.count <= 200 else {
            throw TenancyError.invalidInput("tenant name must be 1 to 200 characters")
        }
        if let jwtSecret, jwtSecret.utf8.count < Self.minimumJWTSecretLength {
            throw TenancyError.invalidInput(
                "the JWT secret is \(jwtSecret.utf8.count) bytes; HS256 needs at least \(Self.minimumJWTSecretLength)",
                hint: "generate one with: openssl rand -base64 48")
        }
        if jwtSecret != nil, keyring == nil { throw Self.noKeyring }
        do {
            let actor = auditing.actor
            let keyring = self.keyring
            let row = try await auditing.write(
                pool,
                { connection in
                    let inserted = try connection.query("INSERT INTO public.tenants (name) VALUES ($1) RETURNING \(Self.columns)", [name])
                    guard let jwtSecret else { return inserted }
                    return try Self.storeSecret(jwtSecret, tenant: try inserted.first!.decode("id"), keyring: keyring, in: connection)
                }
            ) { row in
                let tenant = try Self.tenant(row)
                return (
                    tenant.id,
                    AuditEvent(
                        actor: actor, action: "tenant.created", target: "tenant:" + tenant.id.lowercasedString,
                        details: ["name": .string(tenant.name), "has_jwt_secret": .bool(tenant.hasJWTSecret)])
                )
            }
            return try Self.tenant(row.first!)
        } catch let error as PostgresError where error.sqlState == "23505" {
            throw TenancyError(.conflict, code: "23505", "a tenant named \"\(name)\" already exists")
        }
    }

    /// One tenant, or nil.
    public func find(_ id: UUID) async throws -> Tenant? {
        try await pool.query("SELECT \(Self.columns) FROM public.tenants WHERE id = $1", [id]).first.map(Self.tenant)
    }

    /// Disables a tenant (every gateway refuses its service keys from their next request: each
    /// key check asks the database) or enables it again. Audited as `tenant.disabled` /
    /// `tenant.enabled` in the tenant's own chain; doing it twice changes and records nothing more.
    @discardableResult
    public func setDisabled(_ id: UUID, _ disabled: Bool) async throws -> Tenant {
        let actor = auditing.actor
        let result = try await auditing.write(
            pool,
            Statement(
                """
                UPDATE public.tenants SET disabled_at = CASE WHEN $2 THEN now() ELSE NULL END
                WHERE id = $1 AND (disabled_at IS NULL) = $2 RETURNING \(Self.columns)
                """, [id, disabled])
        ) { row in
            let tenant = try Self.tenant(row)
            return (
                tenant.id,
                AuditEvent(
                    actor: actor, action: disabled ? "tenant.disabled" : "tenant.enabled", target: "tenant:" + tenant.id.lowercasedString)
            )
        }
        if let row = result.first { return try Self.tenant(row) }
        guard let tenant = try await find(id) else { throw TenancyError.notFound("tenant \(id.lowercasedString) does not exist") }
        return tenant
    }

    public func list() async throws -> [Tenant] {
        try await pool.query(
            "SELECT \(Self.columns) FROM public.tenants ORDER BY created_at, name"
        ).rows.map(Self.tenant)
    }

    /// Replaces a tenant's JWT verification settings. `secret` (HS256, at least 32 bytes) is
    /// changed only when given; `jwks` — a JWK Set `{"keys": […]}` or a bare array of JWKs
    /// (RSA for RS256, EC P-256 for ES256) — replaces the public keys when given. Keys that
    /// cannot be used are refused with the reason, so a typo never silently locks users out.
    /// `audience` and `issuer`, when given, pin the `aud` and `iss` the tenant's tokens must carry;
    /// an empty string removes the pin.
    ///
    /// A new `secret` does not log signed-in users out: the current one keeps verifying tokens for
    /// `secretOverlapSeconds` (default ``defaultSecretOverlapSeconds``; 0 replaces it at once, e.g.
    /// after a leak), sealed like the current one, then is dropped. One previous secret is kept:
    /// a second rotation within the window ends the first one's overlap.
    /// `jwksURL` (https; "" removes it) makes the gateway fetch the tenant's public keys from its
    /// identity provider (``JWKSCache``).
    @discardableResult
    public func setJWT(
        tenant id: UUID, secret: String?, jwks: String?, audience: String? = nil, issuer: String? = nil,
        secretOverlapSeconds: Int? = nil, jwksURL: String? = nil
    ) async throws -> Tenant {
        if let secret, secret.utf8.count < Self.minimumJWTSecretLength {
            throw TenancyError.invalidInput(
                "the JWT secret is \(secret.utf8.count) bytes; HS256 needs at least \(Self.minimumJWTSecretLength)")
        }
        if let secretOverlapSeconds {
            guard secret != nil else { throw TenancyError.invalidInput("an overlap applies to a new secret only: give the secret too") }
            guard (0...Self.maximumSecretOverlapSeconds).contains(secretOverlapSeconds) else {
                throw TenancyError.invalidInput(
                    "the secret overlap must be 0 to \(Self.maximumSecretOverlapSeconds) seconds, got \(secretOverlapSeconds)")
            }
        }
        let overlap = secretOverlapSeconds ?? Self.defaultSecretOverlapSeconds
        if let jwksURL, !jwksURL.isEmpty { try Self.validateJWKSURL(jwksURL) }
        if secret != nil, keyring == nil { throw Self.noKeyring }
        for (name, value) in [("audience", audience), ("issuer", issuer)] {
            guard let value, !value.isEmpty else { continue }
            guard value.trimmingCharacters(in: .whitespaces) == value, value.count <= Self.maximumClaimLength,
                !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else {
                throw TenancyError.invalidInput(
                    "the \(name) must be 1 to \(Self.maximumClaimLength) characters without surrounding spaces or control characters")
            }
        }
        var keysJSON: String?
        if let jwks {
            let keys: [JSONValue]
            switch try? JSONDecoder().decode(JSONValue.self, from: Data(jwks.utf8)) {
            case .array(let array)?: keys = array
            case .object(let set)?:
                guard case .array(let array)? = set["keys"] else { fallthrough }
                keys = array
            default:
                throw TenancyError.invalidInput("the JWKS must be a JSON array of JWKs or an object {\"keys\": [...]}")
            }
            let parsed = await TenantKeys.parse(jwtSecret: nil, publicKeys: JSONValue.array(keys).jsonText)
            guard parsed.problems.isEmpty else {
                throw TenancyError.invalidInput("unusable public key: " + parsed.problems.joined(separator: "; "))
            }
            keysJSON = JSONValue.array(keys).jsonText
        }
        let actor = auditing.actor
        let secretChanged = secret != nil, keysChanged = keysJSON != nil
        let keyring = self.keyring, publicKeys = keysJSON
        var details: [String: AuditValue] = ["secret_changed": .bool(secretChanged), "public_keys_changed": .bool(keysChanged)]
        // Audience, issuer and the JWKS URL are not secret: the audit trail records their new values.
        if let audience { details["audience"] = audience.isEmpty ? .null : .string(audience) }
        if let issuer { details["issuer"] = issuer.isEmpty ? .null : .string(issuer) }
        if let jwksURL { details["jwks_url"] = jwksURL.isEmpty ? .null : .string(jwksURL) }
        if secretChanged { details["secret_overlap_seconds"] = .int(Int64(overlap)) }
        let changes = details
        let result = try await auditing.write(
            pool,
            { connection in
                let updated = try connection.query(
                    """
                    UPDATE public.tenants SET jwt_public_keys = coalesce($2::jsonb, jwt_public_keys),
                        jwt_audience = CASE WHEN $3::text IS NULL THEN jwt_audience ELSE nullif($3::text, '') END,
                        jwt_issuer = CASE WHEN $4::text IS NULL THEN jwt_issuer ELSE nullif($4::text, '') END,
                        jwt_jwks_url = CASE WHEN $5::text IS NULL THEN jwt_jwks_url ELSE nullif($5::text, '') END
                    WHERE id = $1 RETURNING \(Self.columns)
                    """,
                    [id, publicKeys, audience, issuer, jwksURL])
                guard let secret, !updated.rows.isEmpty else { return updated }
                // The current secret (if any) becomes the previous one, still sealed as it was, until
                // the window ends; with no overlap (or no current secret) any previous one is dropped.
                try connection.query(
                    """
                    UPDATE public.tenants SET
                        jwt_previous_secret_sealed = CASE WHEN $2::int > 0 THEN jwt_secret_sealed END,
                        jwt_previous_secret_nonce = CASE WHEN $2::int > 0 THEN jwt_secret_nonce END,
                        jwt_previous_secret_kek_version = CASE WHEN $2::int > 0 THEN jwt_secret_kek_version END,
                        jwt_previous_secret_expires_at = CASE WHEN $2::int > 0 AND jwt_secret_sealed IS NOT NULL
                                                              THEN now() + make_interval(secs => $2::int) END
                    WHERE id = $1
                    """, [id, overlap])
                return try Self.storeSecret(secret, tenant: id, keyring: keyring, in: connection)
            }
        ) { row in
            let tenant = try Self.tenant(row)
            return (
                tenant.id,
                AuditEvent(
                    actor: actor, action: "tenant.jwt_updated", target: "tenant:" + tenant.id.lowercasedString, details: changes)
            )
        }
        guard let row = result.first else {
            throw TenancyError.notFound("tenant \(id.lowercasedString) does not exist")
        }
        return try Self.tenant(row)
    }

    /// The longest JWKS URL accepted.
    public static let maximumJWKSURLLength = 2000

    /// A JWKS URL: https with a host, no credentials or fragment; `http://` only to a loopback
    /// address (a development identity provider; the gateway still refuses it unless
    /// `GATEWAY_JWKS_ALLOW_INSECURE_LOOPBACK` is set).
    public static func validateJWKSURL(_ url: String) throws {
        let problem: String?
        if url.utf8.count > maximumJWKSURLLength {
            problem = "longer than \(maximumJWKSURLLength) bytes"
        } else if url.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control }) {
            problem = "it contains spaces or control characters"
        } else if URLComponents(string: url)?.fragment != nil {
            problem = "a fragment (#…) is refused"
        } else {
            problem = TenantKeys.jwksURLProblem(url, allowsInsecureLoopback: true)
        }
        if let problem {
            throw TenancyError.invalidInput(
                "the JWKS URL is not usable: \(problem)", hint: "an https:// URL such as https://auth.example.com/.well-known/jwks.json")
        }
    }

    /// Seals every plaintext HS256 secret left in the legacy `tenants.jwt_secret` column (before
    /// migration 0014, which drops the column and refuses to run while any is left), one tenant
    /// per transaction, each audited as `tenant.jwt_sealed`. Returns how many were sealed; 0 once
    /// the column is gone. Run by `privacyctl tenant seal-secrets`.
    public func sealPlaintextSecrets() async throws -> Int {
        guard let keyring else { throw Self.noKeyring }
        let hasColumn =
            try await pool.query(
                """
                SELECT 1 FROM information_schema.columns
                WHERE table_schema = 'public' AND table_name = 'tenants' AND column_name = 'jwt_secret'
                """
            ).first != nil
        guard hasColumn else { return 0 }
        let tenants: [UUID] = try await pool.query(
            "SELECT id FROM public.tenants WHERE jwt_secret IS NOT NULL ORDER BY id"
        ).rows.map { try $0.decode("id") }
        let actor = auditing.actor
        var sealed = 0
        for tenant in tenants {
            let result = try await auditing.write(
                pool,
                { connection in
                    guard
                        let row = try connection.query(
                            "SELECT jwt_secret FROM public.tenants WHERE id = $1 AND jwt_secret IS NOT NULL FOR UPDATE", [tenant]
                        ).first
                    else { return try connection.query("SELECT NULL::uuid AS id WHERE false") }  // sealed meanwhile: nothing to record
                    let secret: String = try row.decode("jwt_secret")
                    let value = try keyring.sealTenantSecret(
                        Array(secret.utf8), tenant: tenant, purpose: TenantSecretPurpose.jwtSecret, in: connection)
                    return try connection.query(
                        """
                        UPDATE public.tenants SET jwt_secret = NULL, jwt_secret_sealed = $2, jwt_secret_nonce = $3, jwt_secret_kek_version = $4
                        WHERE id = $1 RETURNING id
                        """, [tenant, value.ciphertext, value.nonce, value.kekVersion])
                }
            ) { row in
                let id: UUID = try row.decode("id")
                return (id, AuditEvent(actor: actor, action: "tenant.jwt_sealed", target: "tenant:" + id.lowercasedString))
            }
            sealed += result.rows.count
        }
        return sealed
    }

    private static func tenant(_ row: PostgresRow) throws -> Tenant {
        Tenant(
            id: try row.decode("id"), name: try row.decode("name"), createdAt: try row.decode("created_at"),
            hasJWTSecret: try row.decode("has_secret"), disabledAt: try row.decodeIfPresent("disabled_at"),
            previousJWTSecretExpiresAt: try row.decodeIfPresent("previous_secret_expires_at"),
            jwksURL: try row.decodeIfPresent("jwt_jwks_url"))
    }
}
