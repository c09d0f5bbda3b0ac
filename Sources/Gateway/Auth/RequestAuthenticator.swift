import Foundation
import JSON
import Keyring
import Logging
import Policy
import Postgres
import Sodium
import Synchronization
import Tenancy
import Tracing

/// The database role a request runs as (`SET LOCAL ROLE`), from the JWT's `role` claim.
public enum RequestRole: String, Sendable, CaseIterable, Codable {
    case anon
    case authenticated
    case serviceRole = "service_role"
}

/// Who is calling: the service key (hence tenant and scopes) and the end user from the JWT.
public struct AuthenticatedRequest: Sendable {
    /// The service key's tenant. The JWT was verified with this tenant's keys.
    public let tenantID: UUID
    /// The service key the request presented (its id and scopes; never the key text).
    public let serviceKey: ServiceKey
    /// What the request runs as: the JWT's `role`, or `anon` without a token.
    public let role: RequestRole
    /// The JWT's `sub`; always set for ``RequestRole/authenticated``.
    public let userID: UUID?
    /// The verified JWT payload, with `role` filled in when the token had none (as PostgREST does).
    /// Without a token: `{"role": "anon"}`.
    public let claims: [String: JSONValue]

    /// `claims` as JSON text, for `set_config('request.jwt.claims', …, true)`.
    public var claimsJSON: String { JSONValue.object(claims).jsonText }

    /// The same identity as the policy engine takes it.
    public var authContext: AuthContext {
        AuthContext(role: role.rawValue, userID: userID, tenantID: tenantID, claims: claims.mapValues(\.policyValue))
    }

    /// Who acted, as every audit entry names them: `user:<sub>` when a user's JWT came with the
    /// key, else `service_key:<id>`. One spelling for every route, so a report counts one key as
    /// one actor (REST once wrote the role name instead).
    public var auditActor: String {
        userID.map { "user:" + $0.lowercasedString } ?? "service_key:" + serviceKey.id.lowercasedString
    }

    /// Whether the service key was granted `scope`.
    public func has(_ scope: Scope) -> Bool {
        serviceKey.scopes.contains(scope)
    }

    /// Throws 403 naming `scope` unless the service key has it. No scope implies another, `admin`
    /// included: keys get exactly what they were created with.
    public func require(_ scope: Scope) throws {
        guard has(scope) else { throw GatewayError.missingScope(scope) }
    }
}

/// Authenticates a request from its `apikey` and `Authorization` headers.
///
/// 1. `apikey` → service key → tenant and scopes (401 `PGW401` when missing, unknown or revoked).
/// 2. `Authorization: Bearer <JWT>` → verified with *that tenant's* keys only (HS256 secret or
///    RS256/ES256 JWKs), so another tenant's token fails its signature check (401 `PGRST301`);
///    time and role/sub claims checked (401 `PGRST303`). No header, or `Bearer <the apikey>` as
///    Supabase clients send it before sign-in (compared in constant time) → role `anon`, no user.
///    A bearer shaped like a service key but not this request's key is refused (401 `PGRST301`).
/// 3. The JWT's `sub` is registered in `auth.users` under the key's tenant (``SubjectRegistry``);
///    subjects are per tenant, so the same uuid in another tenant is another subject.
///
/// Caches, all in memory, bounded, per process:
/// - service keys, positive results only, for ``Options/serviceKeyTTL`` (30 s), keyed by the
///   key's keyed HMAC — never the key text. A new key works at once (misses are not cached).
///   A cached key is still checked against the database on every request, so a revoked key is
///   refused from the next request on, by every gateway process: by a primary-key lookup, or —
///   for `/rest/v1`, with ``authenticate(apikey:authorization:checksRevocation:)`` off — inside
///   the request's own pipeline (``AuthenticatedRequest/requestSettings``), at no extra round trip.
/// - each tenant's parsed keys for ``Options/tenantKeysTTL`` (60 s): a secret or key rotation
///   takes effect within that time (``invalidateTenant(_:)`` makes it immediate; in a serving
///   gateway ``CacheInvalidationService`` calls it within ~250 ms of a change made by any process).
public final class RequestAuthenticator: Sendable {
    /// Cache lifetimes and sizes.
    public struct Options: Sendable {
        /// How long a successfully looked-up service key is trusted without asking the database:
        /// the longest a revoked key keeps working in another process.
        public var serviceKeyTTL: Duration
        /// How long a tenant's parsed JWT keys are used before the tenants row is read again: the
        /// longest a rotated secret or removed public key keeps verifying tokens.
        public var tenantKeysTTL: Duration
        /// Most service keys remembered at once.
        public var serviceKeyCapacity: Int
        /// Most tenants whose keys are remembered at once.
        public var tenantCapacity: Int
        /// Register JWT subjects in `auth.users` during ``RequestAuthenticator/authenticate(apikey:authorization:)``.
        public var registersSubjects: Bool
        /// Options of the ``SubjectRegistry`` the authenticator creates.
        public var subjects: SubjectRegistry.Options
        /// Clock skew allowed on a JWT's `exp`, `nbf` and `iat`, in seconds (0 to 30; default 30).
        public var jwtLeewaySeconds: Int = 30
        /// Refuse JWTs without `exp` (default). Off only when configured explicitly
        /// (`GATEWAY_JWT_ALLOW_MISSING_EXP=true`).
        public var requiresJWTExpiry = true
        /// How tenants' JWKS URLs are fetched and cached (``JWKSCache``).
        public var jwksRefreshAfter: Duration = .seconds(300)
        /// How long a JWKS's keys serve after its last successful fetch when it cannot be fetched again.
        public var jwksExpireAfter: Duration = .seconds(3600)
        /// The least time between two fetches of one JWKS URL for tokens with an unknown `kid`.
        public var jwksMinimumRefreshInterval: Duration = .seconds(30)
        /// Fetch `http://` JWKS URLs on a loopback address (development and tests only).
        public var jwksAllowsInsecureLoopback = false
        /// The time the caches (service keys, tenant keys, verified tokens, JWKS) read: tests move
        /// it forward instead of sleeping.
        var clock: @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
        /// The date tokens' `exp`, `nbf` and `iat` are checked against (tests fix it).
        var wallClock: @Sendable () -> Date = { Date() }

        public init(
            serviceKeyTTL: Duration = .seconds(30), tenantKeysTTL: Duration = .seconds(60),
            serviceKeyCapacity: Int = 10_000, tenantCapacity: Int = 10_000, registersSubjects: Bool = true,
            subjects: SubjectRegistry.Options = SubjectRegistry.Options()
        ) {
            self.serviceKeyTTL = serviceKeyTTL
            self.tenantKeysTTL = tenantKeysTTL
            self.serviceKeyCapacity = serviceKeyCapacity
            self.tenantCapacity = tenantCapacity
            self.registersSubjects = registersSubjects
            self.subjects = subjects
        }
    }

    private struct Cached<Value: Sendable>: Sendable {
        let value: Value
        let expires: ContinuousClock.Instant
    }

    /// The registry this authenticator registers subjects with.
    public let subjects: SubjectRegistry
    private let pool: ConnectionPool
    private let serviceKeys: ServiceKeyRegistry
    /// Opens tenants' sealed HS256 secrets; without one HS256 tokens are refused (public keys still work).
    private let keyring: Keyring?
    private let options: Options
    private let logger: Logger
    private let serviceKeyCache: Mutex<BoundedCache<[UInt8], Cached<ServiceKey>>>
    private let tenantCache: Mutex<BoundedCache<UUID, Cached<TenantKeys>>>
    /// Verified tokens per tenant, until the earlier of their `exp` and the tenant-keys TTL:
    /// clients send the same JWT for many requests, and decoding and checking it again was the
    /// largest cost of a request after logging (perf). Keyed by the whole token, compared exactly.
    private let tokenCache: Mutex<BoundedCache<VerifiedTokenKey, Cached<[String: JSONValue]>>>
    /// Tenants' JWKS URLs, fetched and cached per URL.
    let jwks: JWKSCache

    private struct VerifiedTokenKey: Hashable, Sendable {
        let tenant: UUID
        let token: String
    }

    /// `pool` logs in as the gateway role; service keys were hashed under the keyring's service master.
    public convenience init(
        pool: ConnectionPool, keyring: Keyring, options: Options = Options(), logger: Logger = Logger(label: "gateway.auth")
    ) throws {
        try self.init(pool: pool, rootKey: keyring.serviceMaster, keyring: keyring, options: options, logger: logger)
    }

    /// `rootKey`: the key service keys were hashed under (the keyring's service master). Without
    /// a `keyring`, tenants' sealed JWT secrets cannot be opened (tests of other parts only).
    public init(
        pool: ConnectionPool, rootKey: SecureBytes, keyring: Keyring? = nil, options: Options = Options(),
        logger: Logger = Logger(label: "gateway.auth")
    ) throws {
        self.pool = pool
        self.keyring = keyring
        self.serviceKeys = try ServiceKeyRegistry(pool: pool, rootKey: rootKey)
        self.subjects = SubjectRegistry(pool: pool, options: options.subjects)
        self.options = options
        self.logger = logger
        self.serviceKeyCache = Mutex(BoundedCache(capacity: options.serviceKeyCapacity))
        self.tenantCache = Mutex(BoundedCache(capacity: options.tenantCapacity))
        self.tokenCache = Mutex(BoundedCache(capacity: options.serviceKeyCapacity))
        var jwksOptions = JWKSCache.Options()
        jwksOptions.refreshAfter = options.jwksRefreshAfter
        jwksOptions.expireAfter = max(options.jwksExpireAfter, options.jwksRefreshAfter)
        jwksOptions.minimumRefreshInterval = options.jwksMinimumRefreshInterval
        jwksOptions.allowsInsecureLoopback = options.jwksAllowsInsecureLoopback
        jwksOptions.capacity = options.tenantCapacity
        jwksOptions.clock = options.clock
        self.jwks = JWKSCache(options: jwksOptions, logger: logger)
    }

    /// Authenticates one request from its `apikey` and `Authorization` header values (nil when
    /// absent). Throws ``GatewayError`` (401/403) for the caller, or a database error.
    ///
    /// - Parameter checksRevocation: whether a cached service key is checked against the database
    ///   now (one primary-key lookup). Pass false only when the request's own statements start
    ///   with ``AuthenticatedRequest/requestSettings``, which makes the same check in its pipeline.
    public func authenticate(apikey: String?, authorization: String?, checksRevocation: Bool = true) async throws -> AuthenticatedRequest {
        let span = startSpan("authenticate")  // a child of the request's span (RequestTracingMiddleware)
        defer { span.end() }
        let serviceKey = try await serviceKey(apikey, checksRevocation: checksRevocation)
        let tenant = serviceKey.tenantID
        guard let authorization else {
            return AuthenticatedRequest(
                tenantID: tenant, serviceKey: serviceKey, role: .anon, userID: nil, claims: ["role": .string("anon")])
        }
        let token = try Self.bearerToken(authorization)
        if Self.isRequestKey(token, apikey: apikey) {
            // Supabase clients (supabase-js, supabase-py) send the key they were created with as
            // both `apikey` and `Authorization: Bearer` until a user signs in: no user JWT.
            return AuthenticatedRequest(
                tenantID: tenant, serviceKey: serviceKey, role: .anon, userID: nil, claims: ["role": .string("anon")])
        }
        if ServiceKeyRegistry.keyID(of: String(token)) != nil {
            // Shaped like a service key but not the one in `apikey` (another tenant's, a second
            // key of this tenant, a revoked one): never taken as "no user", never looked up.
            throw GatewayError.bearerIsOtherKey
        }
        guard let keys = try await tenantKeys(tenant) else {
            // The tenant was deleted after its key was cached; its keys went with it.
            throw GatewayError.invalidAPIKey
        }
        var claims = try await verifiedClaims(token, tenant: tenant, keys: keys)
        let (role, userID) = try Self.identity(claims)
        claims["role"] = .string(role.rawValue)
        if options.registersSubjects, let userID {
            try await subjects.register(userID, tenant: tenant)
        }
        return AuthenticatedRequest(tenantID: tenant, serviceKey: serviceKey, role: role, userID: userID, claims: claims)
    }

    /// The service-key registry this authenticator checks keys with (same hashing key), its writes
    /// audited by `auditing`: keys minted through `/v1/admin` authenticate here by construction.
    func serviceKeys(auditing: AdminAuditing) -> ServiceKeyRegistry {
        serviceKeys.withAuditing(auditing)
    }

    /// Drops every cached service key (e.g. after revoking one in this process).
    public func invalidateServiceKeys() {
        serviceKeyCache.withLock { $0.removeAll() }
    }

    /// Drops the cached service keys of one tenant (``CacheInvalidationService``: one of them
    /// changed in some process).
    public func invalidateServiceKeys(of tenant: UUID) {
        serviceKeyCache.withLock { cache in cache.removeAll { cached in cached.value.tenantID == tenant } }
    }

    /// The SQLSTATE `public.assert_service_key_active` raises for a revoked or deleted key.
    public static let revokedKeySQLState = "PGW41"

    /// After a pipeline failed with ``revokedKeySQLState``: forgets the key and returns the 401
    /// to answer (the same as for any invalid key).
    public func revoked(_ key: ServiceKey) -> GatewayError {
        serviceKeyCache.withLock { cache in cache.removeAll { cached in cached.value.id == key.id } }
        return GatewayError.invalidAPIKey
    }

    /// Drops one tenant's cached keys (e.g. after changing its JWT settings in this process).
    public func invalidateTenant(_ tenant: UUID) {
        tenantCache.withLock { $0.removeValue(for: tenant) }
        tokenCache.withLock { $0.removeAll() }
    }

    private func verifiedClaims(_ token: Substring, tenant: UUID, keys: TenantKeys) async throws -> [String: JSONValue] {
        let key = VerifiedTokenKey(tenant: tenant, token: String(token))
        let now = options.clock()
        if let cached = tokenCache.withLock({ $0.value(for: key) }), cached.expires > now {
            return cached.value
        }
        let wallClock = options.wallClock()
        let rules = JWTVerifier.Rules(leeway: Double(options.jwtLeewaySeconds), requiresExpiry: options.requiresJWTExpiry)
        let claims: [String: JSONValue]
        if let url = keys.jwksURL {
            claims = try await verifiedWithJWKS(token, keys: keys, url: url, now: wallClock, rules: rules)
        } else {
            claims = try JWTVerifier.verify(token, with: keys, now: wallClock, rules: rules)
        }
        var expires = now + options.tenantKeysTTL
        if let until = keys.previousSecretExpires {
            // A token the previous secret verified must not outlive the overlap window in this cache.
            expires = min(expires, now + .milliseconds(Int64(max(0, until.timeIntervalSince(wallClock)) * 1000)))
        }
        if let exp = claims["exp"]?.numberValue {
            let remaining = exp - wallClock.timeIntervalSince1970
            guard remaining > 0 else { return claims }
            expires = min(expires, now + .milliseconds(Int64(remaining * 1000)))
        }
        tokenCache.withLock { $0.insert(Cached(value: claims, expires: expires), for: key) }
        return claims
    }

    /// Verifies with the tenant's own keys plus its JWKS's. A token whose `kid` no key has makes
    /// the cache refetch the JWKS once (rate-limited); a JWKS never fetched, or whose keys expired
    /// while it is down, fails closed with 401.
    private func verifiedWithJWKS(
        _ token: Substring, keys: TenantKeys, url: String, now: Date, rules: JWTVerifier.Rules
    ) async throws(GatewayError) -> [String: JSONValue] {
        let remote = await jwks.keys(for: url)
        do {
            return try JWTVerifier.verify(token, with: keys.adding(remote ?? []), now: now, rules: rules)
        } catch let error where error.code == GatewayError.jwtNoKey.code && error.message == GatewayError.jwtNoKey.message {
            // Not found among the cached keys: the provider may have rotated.
            if let refreshed = await jwks.refresh(url, unknownKeyID: JWTVerifier.keyID(token)) {
                return try JWTVerifier.verify(token, with: keys.adding(refreshed), now: now, rules: rules)
            }
            if remote == nil, keys.keys.isEmpty { throw GatewayError.jwksUnavailable }
            throw error
        }
    }

    // MARK: - Service key

    private func serviceKey(_ apikey: String?, checksRevocation: Bool) async throws -> ServiceKey {
        guard let apikey, !apikey.isEmpty else { throw GatewayError.missingAPIKey }
        // Malformed keys are refused without hashing or a query.
        guard ServiceKeyRegistry.keyID(of: apikey) != nil else { throw GatewayError.invalidAPIKey }
        // The cache is keyed by the keyed HMAC, so the key text is never held, and the lookup's
        // timing depends only on a value an attacker cannot compute.
        let digest = serviceKeys.hash(apikey)
        let now = options.clock()
        if let cached = serviceKeyCache.withLock({ $0.value(for: digest) }), cached.expires > now {
            guard checksRevocation else { return cached.value }
            if try await serviceKeys.isActive(cached.value.id) { return cached.value }
            serviceKeyCache.withLock { $0.removeValue(for: digest) }
            throw GatewayError.invalidAPIKey
        }
        guard let key = try await serviceKeys.authenticate(apikey) else {
            serviceKeyCache.withLock { $0.removeValue(for: digest) }
            throw GatewayError.invalidAPIKey
        }
        serviceKeyCache.withLock { $0.insert(Cached(value: key, expires: now + options.serviceKeyTTL), for: digest) }
        return key
    }

    // MARK: - Tenant keys

    private func tenantKeys(_ tenant: UUID) async throws -> TenantKeys? {
        let now = options.clock()
        if let cached = tenantCache.withLock({ $0.value(for: tenant) }), cached.expires > now {
            return cached.value
        }
        let keyring = self.keyring
        // One round trip (a second only to fetch a KEK this process has not unwrapped yet).
        let loaded = try await pool.withConnection { pooled in
            try await pooled.run {
                connection -> LoadedTenantKeys? in
                guard
                    let row = try connection.query(
                        """
                        SELECT jwt_secret_sealed, jwt_secret_nonce, jwt_secret_kek_version, jwt_public_keys::text AS jwks,
                               jwt_audience, jwt_issuer, jwt_jwks_url,
                               jwt_previous_secret_sealed, jwt_previous_secret_nonce, jwt_previous_secret_kek_version,
                               jwt_previous_secret_expires_at, jwt_previous_secret_expires_at > now() AS previous_live
                        FROM public.tenants WHERE id = $1
                        """, [tenant]
                    ).first
                else { return nil }
                var loaded = LoadedTenantKeys(
                    jwks: try row.decode("jwks"), audience: try row.decodeIfPresent("jwt_audience"),
                    issuer: try row.decodeIfPresent("jwt_issuer"), jwksURL: try row.decodeIfPresent("jwt_jwks_url"))
                // The connection is a parameter, not a capture: Swift 6.3 crashes capturing a borrowed
                // noncopyable value in a local function.
                func open(_ prefix: String, _ label: String, _ connection: borrowing Connection) throws -> String? {
                    guard let version = try row.decodeIfPresent("\(prefix)_kek_version", as: Int.self) else { return nil }
                    guard let keyring else {
                        loaded.problems.append("the \(label) is sealed and this process has no keyring")
                        return nil
                    }
                    do {
                        let sealed = Keyring.SealedValue(
                            ciphertext: try row.decode("\(prefix)_sealed"), nonce: try row.decode("\(prefix)_nonce"), kekVersion: version)
                        let secret = try keyring.openTenantSecret(
                            sealed, tenant: tenant, purpose: TenantSecretPurpose.jwtSecret, in: connection)
                        return String(decoding: secret, as: UTF8.self)
                    } catch let error as KeyringError {
                        loaded.problems.append("the \(label) cannot be opened: \(error.message)")
                        return nil
                    }
                }
                loaded.secret = try open("jwt_secret", "HS256 secret", connection)
                if try row.decodeIfPresent("previous_live", as: Bool.self) == true {
                    loaded.previousSecret = try open("jwt_previous_secret", "previous HS256 secret", connection)
                    loaded.previousExpires = try row.decodeIfPresent("jwt_previous_secret_expires_at")
                } else if try row.decodeIfPresent("previous_live", as: Bool.self) == false {
                    // The overlap window is over: the previous secret is dropped, not just ignored.
                    try connection.query(
                        """
                        UPDATE public.tenants SET jwt_previous_secret_sealed = NULL, jwt_previous_secret_nonce = NULL,
                            jwt_previous_secret_kek_version = NULL, jwt_previous_secret_expires_at = NULL
                        WHERE id = $1 AND jwt_previous_secret_expires_at <= now()
                        """, [tenant])
                }
                return loaded
            }
        }
        guard let loaded else {
            tenantCache.withLock { $0.removeValue(for: tenant) }
            return nil
        }
        var keys = await TenantKeys.parse(jwtSecret: loaded.secret, previousSecret: loaded.previousSecret, publicKeys: loaded.jwks)
        keys.problems += loaded.problems
        keys.audience = loaded.audience
        keys.issuer = loaded.issuer
        keys.jwksURL = loaded.jwksURL
        keys.previousSecretExpires = loaded.previousExpires
        for problem in keys.problems {
            logger.warning("tenant JWT key skipped", metadata: ["tenant": "\(tenant.lowercasedString)", "problem": "\(problem)"])
        }
        var expires = now + options.tenantKeysTTL
        if let until = loaded.previousExpires {
            // Read again when the previous secret's window ends, so it stops verifying on time.
            expires = min(expires, now + .milliseconds(Int64(max(0, until.timeIntervalSinceNow) * 1000)))
        }
        tenantCache.withLock { $0.insert(Cached(value: keys, expires: expires), for: tenant) }
        return keys
    }

    /// A tenants row's JWT settings, the sealed secrets opened.
    private struct LoadedTenantKeys: Sendable {
        var secret: String?
        var previousSecret: String?
        var previousExpires: Date?
        let jwks: String
        let audience: String?
        let issuer: String?
        let jwksURL: String?
        var problems: [String] = []

        init(jwks: String, audience: String?, issuer: String?, jwksURL: String?) {
            self.jwks = jwks
            self.audience = audience
            self.issuer = issuer
            self.jwksURL = jwksURL
        }
    }

    // MARK: - Token and claims

    /// Whether the bearer token is the request's own `apikey`, compared in constant time: a
    /// comparison that stopped at the first difference would let a caller who holds one key learn
    /// another byte by byte. (The apikey itself was already authenticated.)
    static func isRequestKey(_ token: Substring, apikey: String?) -> Bool {
        guard let apikey else { return false }
        return ConstantTime.equals(Array(token.utf8), Array(apikey.utf8))
    }

    /// `Bearer <token>`, the scheme case-insensitive (RFC 7235).
    static func bearerToken(_ header: String) throws(GatewayError) -> Substring {
        // Trimmed by hand: Foundation's trimmingCharacters(in:) was 5% of a request's CPU (perf).
        var value = Substring(header)
        while let first = value.first, first == " " || first == "\t" { value.removeFirst() }
        while let last = value.last, last == " " || last == "\t" { value.removeLast() }
        guard !value.isEmpty else { throw .emptyJWT }
        let scheme = value.prefix { $0 != " " }
        guard scheme.lowercased() == "bearer" else { throw .notBearer }
        let token = value.dropFirst(scheme.count).drop { $0 == " " }
        guard !token.isEmpty else { throw .emptyJWT }
        return token
    }

    /// The role and user a verified token names.
    ///
    /// No `role` claim means `anon`, as in PostgREST. A role outside anon/authenticated/
    /// service_role is refused here, before any SQL: PostgREST would fail `SET ROLE` and answer 401
    /// for a role that does not exist; the gateway answers 401 `PGRST303` (a claims error) for
    /// every role it does not run requests as. `sub`, when present, must be a UUID (`auth.uid()`
    /// casts it), and role `authenticated` requires it.
    static func identity(_ claims: [String: JSONValue]) throws(GatewayError) -> (RequestRole, UUID?) {
        let role: RequestRole
        switch claims["role"] {
        case nil, .null?:
            role = .anon
        case .string(let name)? where RequestRole(rawValue: name) != nil:
            role = RequestRole(rawValue: name)!
        default:
            throw .jwtClaims(
                "The JWT 'role' claim is not a permitted role",
                hint: "permitted roles: \(RequestRole.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let userID: UUID?
        switch claims["sub"] {
        case nil, .null?:
            userID = nil
        case .string(let sub)? where UUID(canonical: sub) != nil:
            userID = UUID(canonical: sub)
        default:
            throw .jwtClaims("The JWT 'sub' claim must be a UUID")
        }
        if role == .authenticated, userID == nil {
            throw .jwtClaims("The JWT 'sub' claim must be a UUID", details: "role authenticated needs the user's id in sub")
        }
        return (role, userID)
    }
}

extension AuthenticatedRequest {
    /// What PostgREST does per request — `role`, `request.jwt.claims`, `request.tenant_id` as
    /// transaction-local settings — plus the service key's revocation check, in one statement that
    /// starts the request's pipeline. A key revoked since it was cached makes the statement fail
    /// with SQLSTATE ``RequestAuthenticator/revokedKeySQLState``, which aborts the pipeline's
    /// implicit transaction before the request's own statements run (migration 0014).
    public var requestSettings: Statement {
        requestSettings(statementTimeoutMilliseconds: 0)
    }

    /// ``requestSettings`` plus, when `statementTimeoutMilliseconds` > 0, a transaction-local
    /// `statement_timeout` in the same statement: it binds the statements after it in the pipeline
    /// (Postgres re-arms the timer per Execute, with the setting of the moment), at no round trip.
    public func requestSettings(statementTimeoutMilliseconds: Int) -> Statement {
        guard statementTimeoutMilliseconds > 0 else { return settingsOnly }
        return Statement(
            """
            SELECT public.assert_service_key_active($4), set_config('role', $1, true),
                   set_config('request.jwt.claims', $2, true), set_config('request.tenant_id', $3, true),
                   set_config('statement_timeout', $5, true)
            """,
            [role.rawValue, claimsJSON, tenantID.lowercasedString, serviceKey.id, String(statementTimeoutMilliseconds)])
    }

    private var settingsOnly: Statement {
        Statement(
            """
            SELECT public.assert_service_key_active($4), set_config('role', $1, true),
                   set_config('request.jwt.claims', $2, true), set_config('request.tenant_id', $3, true)
            """,
            [role.rawValue, claimsJSON, tenantID.lowercasedString, serviceKey.id])
    }
}
