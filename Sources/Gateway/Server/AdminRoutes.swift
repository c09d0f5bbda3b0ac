import Audit
import Config
import Foundation
import HTTPTypes
import Hummingbird
import JSON
import Keyring
import Logging
import Postgres
import Privacy
import Synchronization
import Tenancy

/// `/v1/admin` (DESIGN.md §5; issue 17): tenants, service keys and the data-subject request queue,
/// for service keys with the `admin` scope and no user JWT (an end user's session never administers).
///
/// Who reaches what — least privilege:
/// - A tenant's `admin` key is **tenant-local**: it shows its own tenant, creates, lists, revokes and
///   rotates its own tenant's keys, and lists and extends its own tenant's requests. Another tenant's
///   ids answer 404, exactly like ids that do not exist, so a tenant admin cannot even learn which
///   exist. It cannot list, create, disable or enable tenants (403).
/// - **Deployment operator** keys are the `admin` keys of the one tenant named by
///   `GATEWAY_OPERATOR_TENANT` (configuration, never the database: a database write alone cannot make
///   an operator). They also list, create, disable and enable tenants and reach every tenant's keys
///   and requests (to mint a new tenant's first key). Without the variable there are no operators:
///   tenants are created with `privacyctl` in direct-database mode. The operator tenant should hold
///   no application data, and an operator cannot disable its own tenant (409: it would lock itself out).
///
/// Audit: every action, reads included, is recorded **in the trail of the tenant it concerns** (the
/// target: a key's tenant, a new tenant's own chain), actor `service_key:<id>` (reads and refusals
/// also carry `details.actor_tenant`) — so a tenant's auditor sees what an operator did to it. Actions that concern no
/// single tenant (listing all tenants or every tenant's keys or requests) and refusals after
/// authentication (`admin.denied`: missing scope, not an operator, an unreachable id) go to the
/// **acting** key's tenant's trail. Writes and their entries commit in one transaction (``AdminAuditing``).
///
/// - `GET /v1/admin/tenants` · `POST /v1/admin/tenants` `{"name"}` — operator only.
/// - `GET /v1/admin/tenants/{id}` · `POST /v1/admin/tenants/{id}/disable|enable` (operator only).
/// - `PUT /v1/admin/tenants/{id}/jwt` `{"secret"?, "secret_overlap_seconds"?, "jwks"?, "jwks_url"?, "audience"?, "issuer"?}`
///   — as `privacyctl tenant set-jwt`; the replaced secret verifies for the overlap (default an hour).
/// - `POST /v1/admin/kek-rotation` `{"tenant_id"?}` (operator only) — 202; the gateway runs the rotation
///   (``Keyring/runKEKRotation(pool:batchSize:progress:rotated:)``), resumable; `GET /v1/admin/kek-rotation` its status.
///   `POST /v1/admin/tenants/{id}/kek/rotate` (operator only) — one tenant, synchronously.
///   `GET /v1/admin/tenants/{id}/kek` — its versions, the subject keys under each, and whether a rotation is unfinished.
/// - `GET /v1/admin/service-keys[?tenant_id=]` — records with scopes, expiry and last use; never a key or hash.
/// - `POST /v1/admin/service-keys` `{"tenant_id"?, "scopes": [...], "name"?, "expires_at"?}` — 201 with the key, shown once.
/// - `POST /v1/admin/service-keys/{id}/revoke` · `POST /v1/admin/service-keys/{id}/rotate` `{"overlap_seconds"?, "expires_at"?}`.
/// - `GET /v1/admin/requests[?tenant_id=&overdue=true]` · `GET /v1/admin/requests/overdue[?tenant_id=]`.
/// - `POST /v1/admin/requests/{export|deletion}/{id}/extend[?tenant_id=]` `{"months": 1|2, "reason"}`.
struct AdminRoutes: Sendable {
    let pool: ConnectionPool
    let authenticator: RequestAuthenticator
    let audit: AuditAppender
    let privacy: PrivacyService?
    /// The tenant whose `admin` keys are deployment operators (``GatewayConfiguration/operatorTenant``).
    let operatorTenant: UUID?
    /// Seals tenants' HS256 secrets (`PUT /v1/admin/tenants/{id}/jwt`); nil: a secret cannot be set here.
    var keyring: Keyring? = nil
    /// The KEK rotation runner's connections (it holds a session advisory lock); nil: ``pool``.
    var sessionPool: ConnectionPool? = nil
    /// Where a KEK rotation running after its answer reports a failure.
    var logger = Logger(label: "gateway.admin")

    /// A rotation's default overlap: an hour for callers to switch to the new key.
    static let defaultOverlapSeconds = 3600

    /// An authenticated admin caller.
    struct Caller {
        let auth: AuthenticatedRequest
        let isOperator: Bool
        let actor: String
        let requestID: String?
        let ip: String?

        var tenant: UUID { auth.tenantID }
        func reaches(_ tenant: UUID) -> Bool { isOperator || tenant == auth.tenantID }

        func event(_ action: String, target: String?, details: [String: AuditValue] = [:], outcome: AuditOutcome = .success) -> AuditEvent {
            var details = details
            details["actor_tenant"] = .string(auth.tenantID.lowercasedString)
            return AuditEvent(
                actor: actor, action: action, target: target, outcome: outcome, requestID: requestID, ip: ip, details: details)
        }
    }

    func add(to router: Router<GatewayRequestContext>) {
        // Every route needs the admin scope (checked and, when missing, recorded as admin.denied with the
        // route's action by the middleware); a user's JWT and operator-only actions are refused, and
        // recorded, by ``authorize(_:_:action:operatorOnly:)``.
        func route(_ action: String) -> RouterGroup<GatewayRequestContext> {
            router.group().add(
                middleware: AuthenticationMiddleware(
                    authenticator: authenticator, scope: .always(.admin),
                    recordRefusal: { auth, scope, _, context in
                        let caller = Caller(
                            auth: auth, isOperator: false, actor: auth.auditActor, requestID: context.facts.requestID,
                            ip: context.facts.clientAddress)
                        try await record(
                            auth.tenantID,
                            caller.event(
                                "admin.denied", target: nil,
                                details: [
                                    "action": .string(action), "reason": .string(GatewayError.missingScope(scope).message),
                                ], outcome: .denied))
                    }))
        }
        // MARK: Tenants
        route("admin.tenants.list").get("/v1/admin/tenants") { request, context in
            let caller = try await authorize(request, context, action: "admin.tenants.list", operatorOnly: true)
            let tenants = try await registry(caller).list()
            try await record(
                caller.tenant, caller.event("admin.tenants_listed", target: nil, details: ["count": .int(Int64(tenants.count))]))
            return try GatewayApplication.jsonResponse(.ok, ["tenants": tenants])
        }
        route("admin.tenants.create").post("/v1/admin/tenants") { request, context in
            let caller = try await authorize(request, context, action: "admin.tenants.create", operatorOnly: true)
            struct Input: Decodable { let name: String }
            let input: Input = try await Self.body(request, fields: ["name"], expected: "{\"name\": \"…\"}")
            // Audited in the new tenant's own chain (its first entry), by the registry.
            let tenant = try await registry(caller).create(name: input.name, jwtSecret: nil)
            return try GatewayApplication.jsonResponse(.created, tenant)
        }
        route("admin.tenants.show").get("/v1/admin/tenants/:id") { request, context in
            let caller = try await authorize(request, context, action: "admin.tenants.show", operatorOnly: false)
            let id = try await reachable(caller, try Self.uuid(context, "id", what: "tenant id"), action: "admin.tenants.show")
            guard let tenant = (try await registry(caller).find(id)) else { throw Self.noTenant(id) }
            try await record(id, caller.event("admin.tenant_shown", target: "tenant:" + id.lowercasedString))
            return try GatewayApplication.jsonResponse(.ok, tenant)
        }
        for (verb, disabled) in [("disable", true), ("enable", false)] {
            route("admin.tenants.\(verb)").post("/v1/admin/tenants/:id/\(verb)") { request, context in
                let caller = try await authorize(request, context, action: "admin.tenants.\(verb)", operatorOnly: true)
                let id = try Self.uuid(context, "id", what: "tenant id")
                if disabled, id == caller.tenant {
                    throw GatewayError(
                        .conflict, code: "PGW409", "an operator cannot disable its own tenant: its keys would stop working",
                        hint: "disable it from another operator tenant, or with privacyctl in direct-database mode")
                }
                let tenant = try await registry(caller).setDisabled(id, disabled)
                // Every process checks the tenant's state per request; this drops this process's cached JWT keys too
                // (others drop theirs from the invalidation log, migration 0016/0025).
                authenticator.invalidateServiceKeys(of: id)
                authenticator.invalidateTenant(id)
                return try GatewayApplication.jsonResponse(.ok, tenant)
            }
        }

        route("admin.tenants.jwt").put("/v1/admin/tenants/:id/jwt") { request, context in
            let caller = try await authorize(request, context, action: "admin.tenants.jwt", operatorOnly: false)
            let id = try await reachable(caller, try Self.uuid(context, "id", what: "tenant id"), action: "admin.tenants.jwt")
            struct Input: Decodable {
                let secret: String?, jwks: JSONValue?, audience: String?, issuer: String?
                let jwks_url: String?, secret_overlap_seconds: Int?
            }
            let input: Input = try await Self.body(
                request, fields: ["secret", "jwks", "audience", "issuer", "jwks_url", "secret_overlap_seconds"],
                expected:
                    "{\"secret\"?, \"secret_overlap_seconds\"?, \"jwks\"?: a JWK Set, \"jwks_url\"?, \"audience\"?, \"issuer\"?} (\"\" removes a pin or the URL)"
            )
            guard
                input.secret != nil || input.jwks != nil || input.audience != nil || input.issuer != nil || input.jwks_url != nil
                    || input.secret_overlap_seconds != nil
            else {
                throw GatewayError.invalidInput("give secret, jwks, jwks_url, audience or issuer")
            }
            // Audited as tenant.jwt_updated in the tenant's chain (never the secret), by the registry.
            let tenant = try await TenantRegistry(pool: pool, auditing: auditing(caller), keyring: keyring)
                .setJWT(
                    tenant: id, secret: input.secret, jwks: input.jwks?.jsonText, audience: input.audience, issuer: input.issuer,
                    secretOverlapSeconds: input.secret_overlap_seconds, jwksURL: input.jwks_url)
            // Other processes drop theirs from the invalidation log (0016) within ~250 ms.
            authenticator.invalidateTenant(id)
            return try GatewayApplication.jsonResponse(.ok, tenant)
        }

        // KEK rotation is a deployment operator's: it rewraps every subject key of a tenant (or of
        // all), a load on the shared database that one tenant's admin should not be able to cause.
        route("admin.tenants.kek_rotate").post("/v1/admin/tenants/:id/kek/rotate") { request, context in
            let caller = try await authorize(request, context, action: "admin.tenants.kek_rotate", operatorOnly: true)
            let id = try Self.uuid(context, "id", what: "tenant id")
            let keyring = try requireKeyring()
            // Synchronous, for one tenant: as POST /v1/admin/kek-rotation {"tenant_id"} then waiting for it.
            _ = try await Keyring.beginKEKRotation(tenant: id, by: caller.actor, pool: pool)
            let reports = Mutex<[RotationReport]>([])
            try await keyring.runKEKRotation(
                pool: sessionPool ?? pool,
                rotated: { report in
                    reports.withLock { $0.append(report) }
                    try await record(
                        report.tenant,
                        caller.event(
                            "keys.rotated", target: "tenant:" + report.tenant.lowercasedString,
                            details: Self.rotationDetails(report)))
                })
            guard let report = reports.withLock({ $0.last }) else {
                throw GatewayError(
                    .conflict, code: "PGW409", "the tenant's key was already rotated by the unfinished rotation just resumed")
            }
            return try GatewayApplication.jsonResponse(.ok, report)
        }
        route("admin.kek_rotation.start").post("/v1/admin/kek-rotation") { request, context in
            let caller = try await authorize(request, context, action: "admin.kek_rotation.start", operatorOnly: true)
            struct Input: Decodable { let tenant_id: String? }
            let input: Input? = try await Self.body(
                request, fields: ["tenant_id"], expected: "{\"tenant_id\"?: a tenant id; absent: every tenant}", emptyAllowed: true)
            let tenant = try input?.tenant_id.map { try Self.uuid($0, what: "tenant_id") }
            let keyring = try requireKeyring()
            let (status, resumed) = try await Keyring.beginKEKRotation(tenant: tenant, by: caller.actor, pool: pool)
            try await record(
                caller.tenant,
                caller.event(
                    resumed ? "keys.rotation_resumed" : "keys.rotation_started", target: "kek_rotation:" + status.id.lowercasedString,
                    details: ["scope": tenant.map { .string($0.lowercasedString) } ?? .string("all")]))
            if status.state != .running {
                // Runs on in this process after the answer; killed, the next start resumes it.
                let routes = self
                Task.detached {
                    do {
                        try await keyring.runKEKRotation(
                            pool: routes.sessionPool ?? routes.pool,
                            rotated: { report in
                                try await routes.record(
                                    report.tenant,
                                    caller.event(
                                        "keys.rotated", target: "tenant:" + report.tenant.lowercasedString,
                                        details: Self.rotationDetails(report)))
                            })
                    } catch {
                        routes.logger.error(
                            "KEK rotation stopped; POST /v1/admin/kek-rotation resumes it",
                            metadata: ["rotation": "\(status.id.lowercasedString)", "error": "\(error)"])
                    }
                }
            }
            struct Started: Encodable { let rotation: KEKRotationStatus, resumed: Bool }
            return try GatewayApplication.jsonResponse(.accepted, Started(rotation: status, resumed: resumed))
        }
        route("admin.kek_rotation.status").get("/v1/admin/kek-rotation") { request, context in
            let caller = try await authorize(request, context, action: "admin.kek_rotation.status", operatorOnly: true)
            guard let status = (try await Keyring.kekRotationStatus(pool: pool)) else {
                throw GatewayError.notFound("no KEK rotation has been started (POST /v1/admin/kek-rotation starts one)")
            }
            try await record(caller.tenant, caller.event("admin.kek_rotation_read", target: "kek_rotation:" + status.id.lowercasedString))
            return try GatewayApplication.jsonResponse(.ok, status)
        }
        route("admin.tenants.kek_status").get("/v1/admin/tenants/:id/kek") { request, context in
            let caller = try await authorize(request, context, action: "admin.tenants.kek_status", operatorOnly: false)
            let id = try await reachable(caller, try Self.uuid(context, "id", what: "tenant id"), action: "admin.tenants.kek_status")
            struct Version: Encodable { let version: Int, created_at: Date, retired_at: Date?, subject_keys: Int }
            struct Status: Encodable { let tenant_id: String, versions: [Version], rotation_unfinished: Bool }
            let versions = try await pool.query(
                """
                SELECT k.version, k.created_at, k.retired_at,
                       (SELECT count(*)::int FROM keyring.subject_keys s
                        WHERE s.tenant_id = k.tenant_id AND s.kek_version = k.version AND s.destroyed_at IS NULL) AS subject_keys
                FROM keyring.tenant_keys k WHERE k.tenant_id = $1 ORDER BY k.version
                """, [id]
            ).rows.map {
                Version(
                    version: try $0.decode("version"), created_at: try $0.decode("created_at"),
                    retired_at: try $0.decodeIfPresent("retired_at"), subject_keys: try $0.decode("subject_keys"))
            }
            guard (try await registry(caller).find(id)) != nil else { throw Self.noTenant(id) }
            try await record(id, caller.event("admin.kek_status_read", target: "tenant:" + id.lowercasedString))
            return try GatewayApplication.jsonResponse(
                .ok,
                Status(
                    tenant_id: id.lowercasedString, versions: versions,
                    rotation_unfinished: versions.filter { $0.retired_at == nil }.count > 1))
        }

        // MARK: Service keys
        route("admin.service_keys.list").get("/v1/admin/service-keys") { request, context in
            let caller = try await authorize(request, context, action: "admin.service_keys.list", operatorOnly: false)
            let tenant = try await scopeTenant(caller, request, action: "admin.service_keys.list")
            let keys = try await ServiceKeyRegistry.list(pool: pool, tenant: tenant)
            try await record(
                tenant ?? caller.tenant,
                caller.event(
                    "admin.service_keys_listed", target: tenant.map { "tenant:" + $0.lowercasedString },
                    details: ["count": .int(Int64(keys.count))]))
            return try GatewayApplication.jsonResponse(.ok, ["service_keys": keys])
        }
        route("admin.service_keys.create").post("/v1/admin/service-keys") { request, context in
            let caller = try await authorize(request, context, action: "admin.service_keys.create", operatorOnly: false)
            struct Input: Decodable { let tenant_id: String?, scopes: [String], name: String?, expires_at: String? }
            let input: Input = try await Self.body(
                request, fields: ["tenant_id", "scopes", "name", "expires_at"],
                expected: "{\"scopes\": [\"data:read\", …], \"tenant_id\"?, \"name\"?, \"expires_at\"? (RFC 3339)}")
            let tenant = try await reachable(
                caller, try input.tenant_id.map { try Self.uuid($0, what: "tenant_id") } ?? caller.tenant,
                action: "admin.service_keys.create")
            let scopes = try input.scopes.map(Scope.parse)
            let name = try input.name.map(Self.keyName)
            let expires = try input.expires_at.map { try Self.timestamp($0, name: "expires_at") }
            let (key, secret) = try await authenticator.serviceKeys(auditing: auditing(caller)).create(
                tenant: tenant, scopes: scopes, name: name, expiresAt: expires)
            struct Created: Encodable { let service_key: ServiceKey, key: String }
            var response = try GatewayApplication.jsonResponse(.created, Created(service_key: key, key: secret))
            response.headers[.cacheControl] = "no-store"
            return response
        }
        route("admin.service_keys.revoke").post("/v1/admin/service-keys/:id/revoke") { request, context in
            let caller = try await authorize(request, context, action: "admin.service_keys.revoke", operatorOnly: false)
            let id = try await reachableKey(
                caller, try Self.uuid(context, "id", what: "service key id"), action: "admin.service_keys.revoke")
            let key = try await authenticator.serviceKeys(auditing: auditing(caller)).revoke(id: id)
            authenticator.invalidateServiceKeys(of: key.tenantID)
            return try GatewayApplication.jsonResponse(.ok, key)
        }
        route("admin.service_keys.rotate").post("/v1/admin/service-keys/:id/rotate") { request, context in
            let caller = try await authorize(request, context, action: "admin.service_keys.rotate", operatorOnly: false)
            let id = try await reachableKey(
                caller, try Self.uuid(context, "id", what: "service key id"), action: "admin.service_keys.rotate")
            struct Input: Decodable { let overlap_seconds: Int?, expires_at: String? }
            let input: Input =
                try await Self.body(
                    request, fields: ["overlap_seconds", "expires_at"],
                    expected: "{\"overlap_seconds\"?: seconds, \"expires_at\"?: RFC 3339}",
                    emptyAllowed: true) ?? Input(overlap_seconds: nil, expires_at: nil)
            let overlap = input.overlap_seconds ?? Self.defaultOverlapSeconds
            let maximum = Int(ServiceKeyRegistry.maximumOverlap.components.seconds)
            guard (0...maximum).contains(overlap) else {
                throw GatewayError.invalidInput("overlap_seconds must be from 0 to \(maximum), got \(overlap)")
            }
            let expires = try input.expires_at.map { try Self.timestamp($0, name: "expires_at") }
            let (old, new, secret) = try await authenticator.serviceKeys(auditing: auditing(caller)).rotate(
                id: id, overlap: .seconds(overlap), expiresAt: expires)
            authenticator.invalidateServiceKeys(of: old.tenantID)
            struct Rotated: Encodable { let previous: ServiceKey, service_key: ServiceKey, key: String }
            var response = try GatewayApplication.jsonResponse(.created, Rotated(previous: old, service_key: new, key: secret))
            response.headers[.cacheControl] = "no-store"
            return response
        }

        // MARK: Data-subject requests
        for path in ["/v1/admin/requests", "/v1/admin/requests/overdue"] {
            route("admin.requests.list").get("\(path)") { request, context in
                let caller = try await authorize(request, context, action: "admin.requests.list", operatorOnly: false)
                let tenant = try await scopeTenant(caller, request, action: "admin.requests.list")
                let overdueParameter = try GatewayApplication.queryBoolean(
                    request.uri.queryParameters["overdue"].map(String.init), name: "overdue")
                let overdue = path.hasSuffix("/overdue") || overdueParameter == true
                guard let privacy else { throw PrivacyRoutes.unavailable }
                let requests = try await privacy.listRequests(tenant: tenant, overdueOnly: overdue)
                try await record(
                    tenant ?? caller.tenant,
                    caller.event(
                        "admin.requests_listed", target: tenant.map { "tenant:" + $0.lowercasedString },
                        details: ["count": .int(Int64(requests.count)), "overdue_only": .bool(overdue)]))
                return try GatewayApplication.jsonResponse(.ok, ["requests": requests])
            }
        }
        route("admin.requests.extend").post("/v1/admin/requests/:kind/:id/extend") { request, context in
            let caller = try await authorize(request, context, action: "admin.requests.extend", operatorOnly: false)
            guard let kindText = context.parameters.get("kind"), let kind = RequestKind(rawValue: kindText) else {
                throw GatewayError.invalidInput("the request kind must be export or deletion")
            }
            let id = try Self.uuid(context, "id", what: "request id")
            let tenant = try await scopeTenant(caller, request, action: "admin.requests.extend") ?? caller.tenant
            struct Extension: Decodable { let months: Int, reason: String }
            let body: Extension = try await Self.body(
                request, fields: ["months", "reason"], expected: "{\"months\": 1 or 2, \"reason\": \"…\"}")
            guard let privacy else { throw PrivacyRoutes.unavailable }
            // Audited by the privacy service as privacy.request_extended in the request's tenant's chain.
            let updated = try await privacy.extend(
                kind, tenant: tenant, id: id, months: body.months, reason: body.reason,
                actor: PrivacyActor(
                    caller.actor, ip: caller.ip, userAgent: request.headers[.userAgent], requestID: caller.requestID))
            return try GatewayApplication.jsonResponse(.ok, updated)
        }

        // MARK: Processors (data held outside Postgres; issue 18)
        route("admin.processors.list").get("/v1/admin/processors") { request, context in
            let caller = try await authorize(request, context, action: "admin.processors.list", operatorOnly: false)
            let tenant = try await scopeTenant(caller, request, action: "admin.processors.list") ?? caller.tenant
            guard let privacy else { throw PrivacyRoutes.unavailable }
            let processors = try await privacy.processors(tenant: tenant)
            try await record(
                tenant,
                caller.event(
                    "admin.processors_listed", target: "tenant:" + tenant.lowercasedString,
                    details: ["count": .int(Int64(processors.count))]))
            return try GatewayApplication.jsonResponse(.ok, ["processors": processors])
        }
        route("admin.processors.declare").post("/v1/admin/processors") { request, context in
            let caller = try await authorize(request, context, action: "admin.processors.declare", operatorOnly: false)
            let tenant = try await scopeTenant(caller, request, action: "admin.processors.declare") ?? caller.tenant
            struct Input: Decodable {
                let name: String, data_kind: String, webhook_url: String, secret: String?, timeout_seconds: Int?
                let erasure_required: Bool?, export_required: Bool?
            }
            let input: Input = try await Self.body(
                request, fields: ["name", "data_kind", "webhook_url", "secret", "timeout_seconds", "erasure_required", "export_required"],
                expected:
                    "{\"name\", \"data_kind\", \"webhook_url\" (https), \"secret\"? (≥ 32 bytes; made for you if absent), \"timeout_seconds\"?, \"erasure_required\"?, \"export_required\"?}"
            )
            guard let privacy else { throw PrivacyRoutes.unavailable }
            // Audited by the privacy service as privacy.processor_declared in the tenant's chain (never the secret).
            let (processor, generated) = try await privacy.declareProcessor(
                tenant: tenant,
                ProcessorDeclaration(
                    name: input.name, dataKind: input.data_kind, webhookURL: input.webhook_url, secret: input.secret,
                    timeoutSeconds: input.timeout_seconds ?? 7 * 86_400, erasureRequired: input.erasure_required ?? true,
                    exportRequired: input.export_required ?? false),
                actor: PrivacyActor(caller.actor, ip: caller.ip, userAgent: request.headers[.userAgent], requestID: caller.requestID))
            struct Created: Encodable {
                let processor: Processor
                /// The secret the gateway made, shown this once; absent when the caller gave one.
                let secret: String?
            }
            return try GatewayApplication.jsonResponse(.created, Created(processor: processor, secret: generated))
        }
        route("admin.processors.remove").delete("/v1/admin/processors/:id") { request, context in
            let caller = try await authorize(request, context, action: "admin.processors.remove", operatorOnly: false)
            let tenant = try await scopeTenant(caller, request, action: "admin.processors.remove") ?? caller.tenant
            let id = try Self.uuid(context, "id", what: "processor id")
            guard let privacy else { throw PrivacyRoutes.unavailable }
            try await privacy.removeProcessor(
                tenant: tenant, id: id,
                actor: PrivacyActor(
                    caller.actor, ip: caller.ip, userAgent: request.headers[.userAgent], requestID: caller.requestID))
            return try GatewayApplication.jsonResponse(.ok, ["removed": id.lowercasedString])
        }
    }

    private func requireKeyring() throws -> Keyring {
        guard let keyring else {
            throw GatewayError(.serviceUnavailable, code: "PGW503", "this gateway has no keyring", hint: "use privacyctl keys rotate")
        }
        return keyring
    }

    static func rotationDetails(_ report: RotationReport) -> [String: AuditValue] {
        [
            "from_version": .string(report.fromVersions.map(String.init).joined(separator: ",")),
            "to_version": .int(Int64(report.toVersion)), "rewrapped": .int(Int64(report.rewrappedSubjectKeys)),
            "resumed": .bool(report.resumed),
        ]
    }

    // MARK: - Authorization

    /// Refuses a user JWT (403) and, for operator
    /// actions, a key that is not an operator's (403). Refusals of an authenticated key are
    /// recorded in its tenant's trail before they are answered.
    private func authorize(_ request: Request, _ context: GatewayRequestContext, action: String, operatorOnly: Bool) async throws -> Caller
    {
        let auth = try context.authenticated()
        // The admin scope was checked by the group's middleware.
        let isOperator = operatorTenant == auth.tenantID
        let caller = Caller(
            auth: auth, isOperator: isOperator, actor: auth.auditActor,
            requestID: context.facts.requestID, ip: context.facts.clientAddress)
        var refusal: GatewayError?
        if auth.role != .anon {
            refusal = GatewayError(
                .forbidden, code: "PGW403", "the admin API takes a service key alone, not a user's JWT",
                hint: "send only the apikey header (or Authorization: Bearer with the same key)")
        } else if operatorOnly && !isOperator {
            refusal = GatewayError(
                .forbidden, code: "PGW403", "this is a deployment operator's action; a tenant's admin key manages its own tenant only",
                hint: "use an admin key of the operator tenant (GATEWAY_OPERATOR_TENANT), or privacyctl in direct-database mode")
        }
        if let refusal {
            try await record(
                auth.tenantID,
                caller.event(
                    "admin.denied", target: nil,
                    details: [
                        "action": .string(action), "reason": .string(refusal.message),
                    ], outcome: .denied))
            throw refusal
        }
        return caller
    }

    /// `tenant` if the caller reaches it; otherwise a 404 worded as for a tenant that does not
    /// exist (a tenant admin learns nothing about other tenants), the attempt recorded.
    private func reachable(_ caller: Caller, _ tenant: UUID, action: String) async throws -> UUID {
        guard caller.reaches(tenant) else {
            try await deny(caller, action: action, target: "tenant:" + tenant.lowercasedString)
            throw Self.noTenant(tenant)
        }
        return tenant
    }

    /// Key `id` if it exists and the caller reaches its tenant; a 404 otherwise (the same for both).
    private func reachableKey(_ caller: Caller, _ id: UUID, action: String) async throws -> UUID {
        let key = try await ServiceKeyRegistry.find(pool: pool, id: id)
        guard let key, caller.reaches(key.tenantID) else {
            if key != nil { try await deny(caller, action: action, target: "service_key:" + id.lowercasedString) }
            throw GatewayError.notFound("service key \(id.lowercasedString) does not exist")
        }
        return id
    }

    /// The `tenant_id` query parameter: for a tenant admin, its own tenant (absent or equal) or a
    /// 404; for an operator, the tenant named or nil (every tenant).
    private func scopeTenant(_ caller: Caller, _ request: Request, action: String) async throws -> UUID? {
        guard let text = request.uri.queryParameters["tenant_id"].map(String.init) else {
            return caller.isOperator ? nil : caller.tenant
        }
        return try await reachable(caller, try Self.uuid(text, what: "tenant_id"), action: action)
    }

    private func deny(_ caller: Caller, action: String, target: String) async throws {
        try await record(
            caller.tenant,
            caller.event(
                "admin.denied", target: target,
                details: [
                    "action": .string(action), "reason": .string("not reachable by this key"),
                ], outcome: .denied))
    }

    private func record(_ tenant: UUID, _ event: AuditEvent) async throws {
        _ = try await audit.append(tenant: tenant, event)
    }

    private func auditing(_ caller: Caller) -> AdminAuditing {
        AdminAuditing(appender: audit, actor: caller.actor)
    }

    private func registry(_ caller: Caller) -> TenantRegistry {
        TenantRegistry(pool: pool, auditing: auditing(caller))
    }

    // MARK: - Input

    static func noTenant(_ id: UUID) -> GatewayError {
        GatewayError.notFound("tenant \(id.lowercasedString) does not exist")
    }

    private static func uuid(_ context: GatewayRequestContext, _ parameter: String, what: String) throws -> UUID {
        try uuid(context.parameters.get(parameter) ?? "", what: what)
    }

    private static func uuid(_ text: String, what: String) throws -> UUID {
        guard let id = UUID(canonical: text) else {
            throw GatewayError.invalidInput("the \(what) must be a UUID, got \"\(GatewayApplication.quoted(text))\"")
        }
        return id
    }

    /// A key's label: 1 to 200 characters, no control characters.
    static func keyName(_ text: String) throws -> String {
        let name = text.trimmingCharacters(in: .whitespaces)
        guard (1...200).contains(name.unicodeScalars.count),
            !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { throw GatewayError.invalidInput("name must be 1 to 200 characters without control characters") }
        return name
    }

    /// An RFC 3339 timestamp (fractional seconds optional).
    static func timestamp(_ text: String, name: String) throws -> Date {
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = plain.date(from: text) ?? fractional.date(from: text) else {
            throw GatewayError.invalidInput(
                "\(name) must be an RFC 3339 time such as 2027-01-31T00:00:00Z, got \"\(GatewayApplication.quoted(text))\"")
        }
        return date
    }

    private static func body<T: Decodable>(_ request: Request, fields: Set<String>, expected: String) async throws -> T {
        try GatewayApplication.jsonBody(
            try await RESTHandler.readBody(request, limit: 64 * 1024, rest: false), fields: fields, expected: expected)
    }

    /// Like ``body(_:fields:expected:)``; nil for an empty body.
    private static func body<T: Decodable>(_ request: Request, fields: Set<String>, expected: String, emptyAllowed: Bool) async throws -> T?
    {
        let bytes = try await RESTHandler.readBody(request, limit: 64 * 1024, rest: false)
        if bytes.isEmpty { return nil }
        return try GatewayApplication.jsonBody(bytes, fields: fields, expected: expected)
    }
}
