import Config
import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import Privacy
import Sodium
import Tenancy

/// `/v1/privacy` (DESIGN.md §5, §9): consents, exports and erasure of the caller's subject.
///
/// The subject is the JWT's `sub`; the service key needs `privacy:export` (settings, exports) or
/// `privacy:erase` (deletions). Without a JWT, a service key reads and moves any request of its
/// tenant by id (the controller's back office) and files only for an authorized agent it names.
///
/// - `GET|PUT /v1/privacy/settings` — consents and `data_retention_days`; changes audited with ip and user agent,
///   and answered with a signed consent receipt (``ConsentReceipt``).
/// - `GET /v1/privacy/settings/history?after=&limit=` — the subject's consent changes, from the audit trail.
/// - `POST /v1/privacy/exports` — files an export (202); a worker builds the archive.
/// - `GET /v1/privacy/exports/{id}` — status and manifest; once completed, a fresh single-use download link.
/// - `GET /v1/privacy/exports/{id}/download?token=…` — the archive, once, before the link expires
///   (then it is removed; 410 afterwards); with an `X-Export-Passphrase` header it is encrypted on
///   the way out as an age file (``AgeEncryption``), which the standard `age -d` opens.
/// - `POST /v1/privacy/deletions` — the dry-run plan (`awaiting_confirmation`).
/// - Both filings, with the service key alone: `{"subject": uuid, "agent": "…"}` — an authorized agent's
///   request, checked by the controller; the audit entries name the key and the agent.
/// - `POST /v1/privacy/deletions/{id}/confirm|cancel`, `GET /v1/privacy/deletions/{id}`.
/// - `POST /v1/privacy/{exports|deletions}/{id}/extend` — `{"months": 1|2, "reason": "…"}`, once.
/// - `POST /v1/privacy/{exports|deletions}/{id}/retry` — a failed request back to `pending` (idempotent).
/// - `POST /v1/privacy/{exports|deletions}/{id}/verify` — `{"code": "123456"}`: the one-time code sent when the
///   request was filed without a recent sign-in (``IdentityPolicy``; the filing answers 202 with `verification`).
/// The settings with, when they changed and a signing key is configured, the subject's signed
/// consent receipt under `receipt`.
struct SettingsResponse: Encodable {
    let settings: PrivacySettings
    let receipt: ConsentReceipt?

    enum Key: String, CodingKey { case receipt }

    func encode(to encoder: any Encoder) throws {
        try settings.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encodeIfPresent(receipt, forKey: .receipt)
    }
}

/// A downloaded archive's plaintext chunks, as tar or re-packed as ZIP.
struct ArchiveChunks {
    let reader: ArchiveEncryption.AtRestReader
    var zip: TarToZip?
    var done = false

    /// The next chunk; nil at the end (for ZIP, after the central directory).
    mutating func next() throws -> [UInt8]? {
        guard !done else { return nil }
        if let chunk = try reader.next() { return try zip?.write(chunk) ?? chunk }
        done = true
        return try zip?.finish()
    }
}

struct PrivacyRoutes: Sendable {
    let privacy: PrivacyService?
    let authenticator: RequestAuthenticator

    func add(to router: Router<GatewayRequestContext>) {
        // The subject's settings and exports need privacy:export, erasures privacy:erase; the
        // download (its single-use token) and a processor's callback (its signature) need no key.
        let exports = router.group().add(middleware: AuthenticationMiddleware(authenticator: authenticator, scope: .always(.privacyExport)))
        let erasures = router.group().add(middleware: AuthenticationMiddleware(authenticator: authenticator, scope: .always(.privacyErase)))
        exports.get("/v1/privacy/settings") { request, context in
            let (service, caller, subject) = try authorize(context, needsSubject: true)
            _ = caller
            return try GatewayApplication.jsonResponse(.ok, try await service.settings(tenant: caller.tenantID, subject: subject!))
        }
        exports.put("/v1/privacy/settings") { request, context in
            let (service, caller, subject) = try authorize(context, needsSubject: true)
            let update: PrivacySettingsUpdate = try await Self.body(
                request, fields: PrivacySettingsUpdate.fields, expected: "an object of consents (booleans) and data_retention_days (days)")
            let (settings, receipt) = try await service.updateSettings(
                tenant: caller.tenantID, subject: subject!, update, actor: actor(caller, request, context))
            return try GatewayApplication.jsonResponse(.ok, SettingsResponse(settings: settings, receipt: receipt))
        }
        exports.get("/v1/privacy/settings/history") { request, context in
            let (service, caller, subject) = try authorize(context, needsSubject: true)
            let query = request.uri.queryParameters
            let after = try GatewayApplication.queryInteger(query["after"].map(String.init), name: "after", in: 0...Int(Int64.max)) ?? 0
            let limit = try GatewayApplication.queryInteger(query["limit"].map(String.init), name: "limit", in: 1...1000) ?? 100
            let history = try await service.settingsHistory(
                tenant: caller.tenantID, subject: subject!, afterSeq: Int64(after), limit: limit)
            struct Body: Encodable { let history: [ConsentChange] }
            return try GatewayApplication.jsonResponse(.ok, Body(history: history))
        }
        exports.post("/v1/privacy/exports") { request, context in
            let (service, caller, _) = try authorize(context, needsSubject: false)
            return try await file(
                .export, answering: .accepted, service, caller, request, context,
                submit: { try await service.requestExport(tenant: caller.tenantID, subject: $0, actor: $1) },
                status: { try await service.exportStatus(tenant: caller.tenantID, id: $0) })
        }
        exports.get("/v1/privacy/exports/:id") { request, context in
            let (service, caller, subject) = try authorize(context, needsSubject: false)
            let id = try Self.id(context)
            struct Body: Encodable {
                let request: PrivacyRequest
                let manifest: ExportManifest?
                /// False once the archive was downloaded, expired or removed by an erasure.
                let archive_available: Bool
                let download: Download?
                /// The export_required processors' answers (absent when none was called).
                let processors: [ProcessorOutcome]?
            }
            struct Download: Encodable { let url: String, expires_at: String }
            let status = try await service.exportStatus(tenant: caller.tenantID, id: id, subject: subject)
            var download: Download?
            if status.archiveAvailable {
                let (token, expires) = try await service.issueDownloadToken(tenant: caller.tenantID, id: id, subject: subject)
                download = Download(url: "/v1/privacy/exports/\(id.lowercasedString)/download?token=\(token)", expires_at: expires)
            }
            return try GatewayApplication.jsonResponse(
                .ok,
                Body(
                    request: status.request, manifest: status.manifest, archive_available: status.archiveAvailable, download: download,
                    processors: status.processors))
        }
        router.get("/v1/privacy/exports/:id/download") { request, context in
            guard let service = privacy else { throw Self.unavailable }
            let id = try Self.id(context)
            guard let token = request.uri.queryParameters["token"].map(String.init), !token.isEmpty else {
                throw GatewayError.invalidInput("the download link has no token")
            }
            guard Hex.decode(token)?.count == PrivacyService.downloadTokenBytes else {
                throw GatewayError.invalidInput("the download token is \(2 * PrivacyService.downloadTokenBytes) hexadecimal characters")
            }
            // Checked before the single-use token is redeemed, so a refused passphrase or format does not spend it.
            let passphrase = try Self.passphrase(request.headers[.exportPassphrase])
            let zip: Bool
            switch request.uri.queryParameters["format"].map(String.init) {
            case nil, "tar": zip = false
            case "zip": zip = true
            case let other?: throw GatewayError.invalidInput("format must be tar or zip, got \"\(other.prefix(40))\"")
            }
            let actor = PrivacyActor(
                "download_token", ip: context.facts.clientAddress, userAgent: request.headers[.userAgent],
                requestID: context.facts.requestID)
            let download = try await service.redeemDownloadToken(id: id, token: token, actor: actor)
            context.facts.tenantID = download.tenant
            // The archive is sealed at rest under the subject's key and already unlinked: it is
            // decrypted chunk by chunk on the way out, and this is its only download.
            // Re-packed as ZIP on the way out when asked (stored entries, streamed; ``TarToZip``).
            let reader = download.reader
            let container = zip ? "zip" : "tar"
            var headers = HTTPFields()
            headers[.contentDisposition] =
                "attachment; filename=\"export-\(id.lowercasedString).\(container)\(passphrase == nil ? "" : ".age")\""
            if let passphrase {
                // Encrypted for the subject on the way out, as an age file: `age -d` opens it (as does
                // `privacyctl export-decrypt`).
                headers[.contentType] = "application/octet-stream"
                let logN = service.configuration.encryptionLimits.scryptLogN
                return Response(
                    status: .ok, headers: headers,
                    body: ResponseBody { writer in
                        defer { reader.close() }
                        var sealer = try AgeEncryption.Sealer(passphrase: passphrase, logN: logN)
                        var chunks = ArchiveChunks(reader: reader, zip: zip ? TarToZip() : nil)
                        try await writer.write(ByteBuffer(bytes: sealer.prefix))
                        while let chunk = try chunks.next() {
                            let sealed = sealer.write(chunk)
                            if !sealed.isEmpty { try await writer.write(ByteBuffer(bytes: sealed)) }
                        }
                        try await writer.write(ByteBuffer(bytes: sealer.finish()))
                        try await writer.finish(nil)
                    })
            }
            headers[.contentType] = zip ? "application/zip" : "application/x-tar"
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    defer { reader.close() }
                    var chunks = ArchiveChunks(reader: reader, zip: zip ? TarToZip() : nil)
                    while let chunk = try chunks.next() {
                        if !chunk.isEmpty { try await writer.write(ByteBuffer(bytes: chunk)) }
                    }
                    try await writer.finish(nil)
                })
        }
        erasures.post("/v1/privacy/deletions") { request, context in
            let (service, caller, _) = try authorize(context, needsSubject: false)
            return try await file(
                .deletion, answering: .created, service, caller, request, context,
                submit: { try await service.requestDeletion(tenant: caller.tenantID, subject: $0, actor: $1) },
                status: { try await service.deletionStatus(tenant: caller.tenantID, id: $0) })
        }
        erasures.get("/v1/privacy/deletions/:id") { request, context in
            let (service, caller, subject) = try authorize(context, needsSubject: false)
            let id = try Self.id(context)
            let status = try await service.deletionStatus(tenant: caller.tenantID, id: id, subject: subject)
            return try GatewayApplication.jsonResponse(.ok, status)
        }
        erasures.post("/v1/privacy/deletions/:id/confirm") { request, context in
            let (service, caller, subject) = try authorize(context, needsSubject: false)
            let id = try Self.id(context)
            let status = try await service.confirmDeletion(
                tenant: caller.tenantID, id: id, subject: subject, actor: actor(caller, request, context))
            return try GatewayApplication.jsonResponse(.accepted, status)
        }
        erasures.post("/v1/privacy/deletions/:id/cancel") { request, context in
            let (service, caller, subject) = try authorize(context, needsSubject: false)
            let id = try Self.id(context)
            let status = try await service.cancelDeletion(
                tenant: caller.tenantID, id: id, subject: subject, actor: actor(caller, request, context))
            return try GatewayApplication.jsonResponse(.ok, status)
        }
        // A processor's signed answer: no service key (the processor holds none), the HMAC under its
        // sealed secret is the credential (PrivacyService.recordProcessorAnswer).
        router.post("/v1/privacy/processors/:id/callback") { request, context in
            guard let service = privacy else { throw Self.unavailable }
            guard let text = context.parameters.get("id"), let processor = UUID(canonical: text) else {
                throw GatewayError(
                    .unauthorized, code: "PGW401", "the callback is not signed by this processor, or its timestamp is outside the window")
            }
            // Bounded before anything is read or unsealed: per client address and per processor id.
            if let wait = service.callbackLimiter.admit(
                processor: processor.lowercasedString, address: Self.limiterAddress(context.facts.clientAddress))
            {
                var error = GatewayError(
                    .tooManyRequests, code: "PGW429", "too many callbacks; retry after \(wait) s",
                    hint: "at most \(service.callbackLimiter.limit) a minute per address and per processor")
                error.retryAfter = wait
                throw error
            }
            let body = try await RESTHandler.readBody(request, limit: 64 * 1024, rest: false)
            let recorded = try await service.recordProcessorAnswer(
                processor: processor, timestamp: request.headers[.pgwTimestamp], requestID: request.headers[.pgwRequestID],
                signature: request.headers[.pgwSignature], body: body)
            return try GatewayApplication.jsonResponse(.ok, recorded)
        }
        for kind in RequestKind.allCases {
            let path = kind == .export ? "exports" : "deletions"
            (kind == .export ? exports : erasures).post("/v1/privacy/\(path)/:id/extend") { request, context in
                let (service, caller, subject) = try authorize(context, needsSubject: false)
                let id = try Self.id(context)
                struct Extension: Decodable { let months: Int, reason: String }
                let body: Extension = try await Self.body(
                    request, fields: ["months", "reason"], expected: "{\"months\": 1 or 2, \"reason\": \"…\"}")
                _ = try await service.request(kind, tenant: caller.tenantID, id: id, subject: subject)
                let updated = try await service.extend(
                    kind, tenant: caller.tenantID, id: id, months: body.months, reason: body.reason,
                    actor: actor(caller, request, context))
                return try GatewayApplication.jsonResponse(.ok, updated)
            }
            (kind == .export ? exports : erasures).post("/v1/privacy/\(path)/:id/verify") { request, context in
                let (service, caller, subject) = try authorize(context, needsSubject: true)
                let id = try Self.id(context)
                struct Code: Decodable { let code: String }
                let body: Code = try await Self.body(request, fields: ["code"], expected: "{\"code\": \"123456\"}")
                let verified = try await service.verifyIdentity(
                    kind, tenant: caller.tenantID, id: id, subject: subject!, code: body.code, actor: actor(caller, request, context))
                return try GatewayApplication.jsonResponse(.ok, verified)
            }
            (kind == .export ? exports : erasures).post("/v1/privacy/\(path)/:id/retry") { request, context in
                let (service, caller, subject) = try authorize(context, needsSubject: false)
                let id = try Self.id(context)
                let retried = try await service.retry(
                    kind, tenant: caller.tenantID, id: id, subject: subject, actor: actor(caller, request, context))
                return try GatewayApplication.jsonResponse(.ok, retried)
            }
        }
    }

    // MARK: - Helpers

    static let unavailable = GatewayError(
        .serviceUnavailable, code: "PGW503", "data-subject requests are not configured on this gateway",
        hint: "this gateway was built without a privacy service")

    /// The caller from the context (its scope checked by the group's ``AuthenticationMiddleware``),
    /// the privacy service, and the subject: the JWT's, required where the route acts for one.
    private func authorize(_ context: GatewayRequestContext, needsSubject: Bool) throws -> (PrivacyService, AuthenticatedRequest, UUID?) {
        let caller = try context.authenticated()
        guard let service = privacy else { throw Self.unavailable }
        if needsSubject && caller.userID == nil {
            throw GatewayError(.unauthorized, code: "PGRST301", "this endpoint acts for a data subject: send the subject's JWT")
        }
        return (service, caller, caller.userID)
    }

    /// Files an export or an erasure for the filer's subject (``filer(_:_:_:_:)``): waiting for a
    /// one-time code when the sign-in is not recent enough (202, whatever the kind); otherwise
    /// `submit`ted and answered `answering` with the filing. A filing that found an open request
    /// waiting for a code (still `received`) verifies it by this sign-in and answers its `status`.
    private func file<Filed: FiledPrivacyRequest>(
        _ kind: RequestKind, answering: HTTPResponse.Status, _ service: PrivacyService, _ caller: AuthenticatedRequest,
        _ request: Request, _ context: GatewayRequestContext,
        submit: (UUID, PrivacyActor) async throws -> Filed, status: (UUID) async throws -> Filed
    ) async throws -> Response {
        let (subject, filer) = try await self.filer(service, caller, request, context)
        if let waiting = try await fileUnverified(kind, service, caller, request, context) {
            return try GatewayApplication.jsonResponse(.accepted, waiting)
        }
        let filed = try await submit(subject, filer)
        guard filed.request.status == RequestStatus.received.rawValue, let id = UUID(uuidString: filed.request.id) else {
            return try GatewayApplication.jsonResponse(answering, filed)
        }
        // An open request that waited for a code: this recent sign-in (or the agent's filing) verifies it.
        _ = try await service.verifyBySignIn(kind, tenant: caller.tenantID, id: id, subject: subject, actor: filer)
        return try GatewayApplication.jsonResponse(answering, try await status(id))
    }

    /// With ``IdentityPolicy/maxAuthAge`` set and a JWT whose `auth_time` is missing or older: files
    /// the request to wait for a one-time code (sent to the subject) and returns it; nil when the
    /// JWT itself verifies the caller.
    private func fileUnverified(
        _ kind: RequestKind, _ service: PrivacyService, _ caller: AuthenticatedRequest, _ request: Request, _ context: GatewayRequestContext
    ) async throws -> FiledRequest? {
        let authTime: Double? =
            switch caller.claims["auth_time"] {
            case .int(let seconds)?: Double(seconds)
            case .double(let seconds)?: seconds
            default: nil
            }
        guard let subject = caller.userID, !service.configuration.identity.isFresh(authTime: authTime) else { return nil }
        return try await service.fileUnverified(kind, tenant: caller.tenantID, subject: subject, actor: actor(caller, request, context))
    }

    /// Who a new request is for and who files it: the JWT's subject for themselves; without a JWT,
    /// the service key (the controller's back office) for `{"subject": uuid, "agent": "…"}`, an
    /// authorized agent it has checked, recorded as `agent` in the audit entries.
    private func filer(
        _ service: PrivacyService, _ caller: AuthenticatedRequest, _ request: Request, _ context: GatewayRequestContext
    ) async throws -> (UUID, PrivacyActor) {
        if let subject = caller.userID { return (subject, actor(caller, request, context)) }
        let bytes = try await RESTHandler.readBody(request, limit: GatewayLimits().maximumBodyBytes, rest: false)
        guard !bytes.isEmpty else {
            throw GatewayError(
                .unauthorized, code: "PGRST301",
                "this endpoint acts for a data subject: send the subject's JWT, or {\"subject\", \"agent\"} for an authorized agent")
        }
        struct Agent: Decodable { let subject: String, agent: String }
        let body: Agent = try GatewayApplication.jsonBody(
            bytes, fields: ["subject", "agent"], expected: "{\"subject\": \"<uuid>\", \"agent\": \"<who acts for the subject>\"}")
        guard let subject = UUID(canonical: body.subject) else { throw GatewayError.invalidInput("subject must be a UUID") }
        let agent = body.agent.trimmingCharacters(in: .whitespaces)
        guard (1...200).contains(agent.unicodeScalars.count),
            !agent.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw GatewayError.invalidInput("agent must name who acts for the subject: 1 to 200 characters without control characters")
        }
        guard (try await service.isRegistered(tenant: caller.tenantID, subject: subject)) else {
            throw GatewayError.notFound("no subject \(subject.lowercasedString) in this tenant")
        }
        var filer = actor(caller, request, context)
        filer.agent = agent
        return (subject, filer)
    }

    private func actor(_ caller: AuthenticatedRequest, _ request: Request, _ context: GatewayRequestContext) -> PrivacyActor {
        return PrivacyActor(
            caller.auditActor, ip: context.facts.clientAddress, userAgent: request.headers[.userAgent], requestID: context.facts.requestID)
    }

    private static func id(_ context: GatewayRequestContext) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(canonical: text) else {
            throw GatewayError.invalidInput("the request id must be a UUID")
        }
        return id
    }

    private static func body<T: Decodable>(_ request: Request, fields: Set<String>, expected: String) async throws -> T {
        try GatewayApplication.jsonBody(
            try await RESTHandler.readBody(request, limit: GatewayLimits().maximumBodyBytes, rest: false), fields: fields,
            expected: expected)
    }

    /// The address the callback limiter counts: an IPv6 client by its /64 (one subscriber holds a
    /// whole /64 and could name a fresh address per attempt), IPv4 (and IPv4-mapped) as it is.
    static func limiterAddress(_ address: String?) -> String? {
        guard let address, let bytes = IPNetwork.bytes(address) else { return address }
        guard bytes.count == 16 else { return IPNetwork.text(bytes) }
        return IPNetwork.text(Array(bytes.prefix(8)) + [UInt8](repeating: 0, count: 8)) + "/64"
    }

    /// `X-Export-Passphrase`: 8 to 1024 characters, no control characters; nil when absent or empty.
    static func passphrase(_ header: String?) throws -> String? {
        guard let header, !header.isEmpty else { return nil }
        guard (8...1024).contains(header.unicodeScalars.count),
            !header.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw GatewayError.invalidInput("X-Export-Passphrase must be 8 to 1024 characters without control characters")
        }
        return header
    }
}

extension HTTPField.Name {
    /// Encrypts a downloaded export with this passphrase.
    static let exportPassphrase = HTTPField.Name("X-Export-Passphrase")!
    /// A processor's callback: Unix seconds, the request it answers, and `v2=<HMAC-SHA-256 hex>`.
    static let pgwTimestamp = HTTPField.Name("X-PGW-Timestamp")!
    static let pgwRequestID = HTTPField.Name("X-PGW-Request-Id")!
    static let pgwSignature = HTTPField.Name("X-PGW-Signature")!
}

/// What filing an export or an erasure answers: the request, and what belongs to its kind.
protocol FiledPrivacyRequest: Encodable {
    var request: PrivacyRequest { get }
}

extension ExportStatus: FiledPrivacyRequest {}
extension DeletionStatus: FiledPrivacyRequest {}
