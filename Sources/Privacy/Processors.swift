import AsyncHTTPClient
import Audit
import Foundation
import JSON
import Keyring
import NIOCore
import Outbound
import Postgres
import Sodium

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A processor: where a tenant's apps keep personal data outside Postgres (OpenAI threads, a CRM,
/// an LLM provider's logs), declared per tenant (migration 0026). On an erasure the gateway calls
/// each with a signed request and waits (`requires_input`) for its signed answer; the deletion
/// certificate lists every processor with its outcome.
public struct Processor: Codable, Sendable, Equatable {
    public let id: String
    public let tenant: String
    public let name: String
    public let dataKind: String
    public let webhookURL: String
    public let timeoutSeconds: Int
    public let erasureRequired: Bool
    public let exportRequired: Bool
    public let createdAt: String

    enum CodingKeys: String, CodingKey {
        case id, tenant, name
        case dataKind = "data_kind"
        case webhookURL = "webhook_url"
        case timeoutSeconds = "timeout_seconds"
        case erasureRequired = "erasure_required"
        case exportRequired = "export_required"
        case createdAt = "created_at"
    }

    static let columns = """
        id::text AS id, tenant_id::text AS tenant, name, data_kind, webhook_url, timeout_seconds, erasure_required, export_required,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at
        """

    init(_ row: PostgresRow) throws {
        id = try row.decode("id")
        tenant = try row.decode("tenant")
        name = try row.decode("name")
        dataKind = try row.decode("data_kind")
        webhookURL = try row.decode("webhook_url")
        timeoutSeconds = try row.decode("timeout_seconds")
        erasureRequired = try row.decode("erasure_required")
        exportRequired = try row.decode("export_required")
        createdAt = try row.decode("created_at")
    }
}

/// What a tenant declares (`POST /v1/admin/processors`, `privacyctl processor add`).
public struct ProcessorDeclaration: Sendable {
    public var name: String
    public var dataKind: String
    public var webhookURL: String
    /// The HMAC key both sides share (at least 32 characters); nil: the gateway makes one and shows it once.
    public var secret: String?
    public var timeoutSeconds: Int
    public var erasureRequired: Bool
    public var exportRequired: Bool

    public init(
        name: String, dataKind: String, webhookURL: String, secret: String?, timeoutSeconds: Int = 7 * 86_400,
        erasureRequired: Bool = true, exportRequired: Bool = false
    ) {
        self.name = name
        self.dataKind = dataKind
        self.webhookURL = webhookURL
        self.secret = secret
        self.timeoutSeconds = timeoutSeconds
        self.erasureRequired = erasureRequired
        self.exportRequired = exportRequired
    }
}

/// One processor's part in one request, as recorded (and as the certificate lists it).
public struct ProcessorOutcome: Codable, Sendable, Equatable {
    public let processorID: String
    public let name: String
    public let dataKind: String
    /// Whether the erasure is complete only with this processor's confirmation.
    public let required: Bool
    /// confirmed | refused | timed_out (nil while waiting)
    public let outcome: String?
    /// When the answer was recorded (or the deadline passed).
    public let answeredAt: String?
    /// The processor's own words (a refusal's reason), or why the call failed.
    public let detail: String?
    public let attempts: Int
    public let deadline: String
    /// What the processor returned with its answer to point at the data it holds (an opaque
    /// reference, or an https link for the subject): recorded and listed as given, never fetched.
    public let reference: String?

    enum CodingKeys: String, CodingKey {
        case name, required, outcome, detail, attempts, deadline, reference
        case processorID = "processor_id"
        case dataKind = "data_kind"
        case answeredAt = "answered_at"
    }

    static let columns = """
        processor_id::text AS processor_id, processor_name, data_kind, required, outcome, detail, attempts, reference,
        to_char(answered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS answered_at,
        to_char(deadline_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS deadline
        """

    init(_ row: PostgresRow) throws {
        processorID = try row.decode("processor_id")
        name = try row.decode("processor_name")
        dataKind = try row.decode("data_kind")
        required = try row.decode("required")
        outcome = try row.decodeIfPresent("outcome")
        answeredAt = try row.decodeIfPresent("answered_at")
        detail = try row.decodeIfPresent("detail")
        attempts = try row.decode("attempts")
        deadline = try row.decode("deadline")
        reference = try row.decodeIfPresent("reference")
    }
}

/// The signature both directions carry: `X-PGW-Signature: v2=<hex>`, HMAC-SHA-256 under the
/// processor's secret of `<processor id>.<X-PGW-Timestamp>.<X-PGW-Request-Id>.<body>` (libsodium,
/// Sodium module). The processor id (lowercase, as in the callback's path) is signed so that one
/// processor's callback cannot be replayed as another's — two declarations sharing a secret (one
/// vendor declared twice) made `v1` (the same without the id) verify at either's callback route.
/// `v1` is not accepted any more: a processor still signing it is refused (401) and its call
/// closes `timed_out` at its deadline, which the certificate or archive then says — failing closed
/// rather than keeping the replay open.
public enum ProcessorSignature {
    /// How far a callback's timestamp may be from the gateway's clock, either way.
    public static let window: Int = 300

    public static func sign(body: [UInt8], processorID: String, timestamp: Int, requestID: String, secret: SecureBytes) -> String {
        "v2="
            + Hex.encode(
                HMACSHA256.authenticate(
                    message(body: body, processorID: processorID, timestamp: timestamp, requestID: requestID), key: secret))
    }

    static func message(body: [UInt8], processorID: String, timestamp: Int, requestID: String) -> [UInt8] {
        Array("\(processorID).\(timestamp).\(requestID).".utf8) + body
    }

    /// Whether `header` is this body's signature for this processor under `secret` (compared in constant time).
    static func isValid(_ header: String, body: [UInt8], processorID: String, timestamp: Int, requestID: String, secret: SecureBytes)
        -> Bool
    {
        guard header.hasPrefix("v2="), let mac = Hex.decode(String(header.dropFirst(3))), mac.count == HMACSHA256.macLength else {
            return false
        }
        return HMACSHA256.isValid(
            mac, for: message(body: body, processorID: processorID, timestamp: timestamp, requestID: requestID), key: secret)
    }
}

extension PrivacyService {
    static func processorPurpose(_ id: UUID) -> String { "processor_secret:" + id.lowercasedString }

    // MARK: - Declaring

    /// Declares a processor of the tenant; its secret is stored only sealed under the tenant's KEK.
    /// Audited (`privacy.processor_declared`, never the secret). Returns it and, when the gateway
    /// made the secret, that secret (shown once).
    public func declareProcessor(
        tenant: UUID, _ declaration: ProcessorDeclaration, actor: PrivacyActor
    ) async throws -> (processor: Processor, generatedSecret: String?) {
        guard let keyring else {
            throw PrivacyError(.invalidState, "no keyring: a processor's secret is stored sealed under the tenant's key")
        }
        let name = declaration.name
        guard name.range(of: "^[a-z0-9][a-z0-9_.-]{0,62}$", options: .regularExpression) != nil else {
            throw PrivacyError(.invalidInput, "name must be 1 to 63 characters: a-z, 0-9, '_', '.', '-', starting with a letter or digit")
        }
        let dataKind = declaration.dataKind.trimmingCharacters(in: .whitespaces)
        guard (1...200).contains(dataKind.unicodeScalars.count),
            !dataKind.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw PrivacyError(.invalidInput, "data_kind must say what the processor holds: 1 to 200 characters without control characters")
        }
        try Self.checkWebhookURL(
            declaration.webhookURL, allowLoopbackHTTP: configuration.processorsAllowLoopbackHTTP,
            allowPrivateNetwork: configuration.processorsAllowPrivateNetwork)
        guard (1...2_592_000).contains(declaration.timeoutSeconds) else {
            throw PrivacyError(.invalidInput, "timeout_seconds must be 1 to 2592000 (30 days)")
        }
        var generated: String?
        let secret: String
        if let given = declaration.secret {
            guard given.utf8.count >= 32, given.utf8.count <= 512,
                !given.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else {
                throw PrivacyError(
                    .invalidInput, "secret must be 32 to 512 bytes without control characters (or left out: the gateway makes one)")
            }
            secret = given
        } else {
            secret = Hex.encode(Random.bytes(32))
            generated = secret
        }
        let audit = self.audit
        let wasGenerated = generated != nil
        let maxProcessors = configuration.maxProcessorsPerTenant
        let processor: Processor = try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                // Declarations of one tenant one at a time, so two at once cannot both pass the bound.
                try connection.query("SELECT pg_advisory_xact_lock(hashtextextended('privacy.processors:' || $1::text, 0))", [tenant])
                let count: Int = try connection.query(
                    "SELECT count(*) AS n FROM privacy.tenant_processors WHERE tenant_id = $1", [tenant]
                ).first!.decode("n")
                guard count < maxProcessors else {
                    throw PrivacyError(
                        .invalidState,
                        "the tenant has \(count) processors, the most it may declare (every erasure calls each); remove one first")
                }
                let id = UUID()
                let sealed = try Self.asLogin(connection) {
                    try keyring.sealTenantSecret(Array(secret.utf8), tenant: tenant, purpose: Self.processorPurpose(id), in: connection)
                }
                let row: PostgresRow
                do {
                    row = try connection.query(
                        """
                        INSERT INTO privacy.tenant_processors (id, tenant_id, name, data_kind, webhook_url, secret_sealed, secret_nonce,
                            secret_kek_version, timeout_seconds, erasure_required, export_required)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING \(Processor.columns)
                        """,
                        [
                            id, tenant, name, dataKind, declaration.webhookURL, sealed.ciphertext, sealed.nonce, sealed.kekVersion,
                            declaration.timeoutSeconds, declaration.erasureRequired, declaration.exportRequired,
                        ]
                    ).first!
                } catch let error as PostgresError where error.sqlState == "23505" {
                    throw PrivacyError(.invalidState, "the tenant already has a processor named \(name)")
                }
                let processor = try Processor(row)
                _ = try audit.append(
                    in: connection, tenant: tenant,
                    actor.event(
                        "privacy.processor_declared", target: "processor:" + processor.id,
                        details: [
                            "processor_id": .string(processor.id), "name": .string(name), "data_kind": .string(dataKind),
                            "webhook_url": .string(declaration.webhookURL), "timeout_seconds": .int(Int64(declaration.timeoutSeconds)),
                            "erasure_required": .bool(declaration.erasureRequired), "export_required": .bool(declaration.exportRequired),
                            "secret_generated": .bool(wasGenerated),
                        ]))
                return processor
            }
        }
        return (processor, generated)
    }

    /// The tenant's processors, by name; never a secret.
    public func processors(tenant: UUID) async throws -> [Processor] {
        try await run(tenant: tenant) { connection in
            try connection.query("SELECT \(Processor.columns) FROM privacy.tenant_processors WHERE tenant_id = $1 ORDER BY name", [tenant])
                .rows.map(Processor.init)
        }
    }

    /// Removes a processor of the tenant (audited). Calls already made keep their record and their
    /// certificates name it; calls not yet sent close as `timed_out` ("processor removed").
    public func removeProcessor(tenant: UUID, id: UUID, actor: PrivacyActor) async throws {
        let audit = self.audit
        try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                guard
                    let row = try connection.query(
                        "DELETE FROM privacy.tenant_processors WHERE tenant_id = $1 AND id = $2 RETURNING name", [tenant, id]
                    ).first
                else { throw PrivacyError(.notFound, "no processor \(id.lowercasedString) in this tenant") }
                // Its open calls can never be answered now (the secret that verifies an answer is gone):
                // they close at once instead of holding their erasures in requires_input until the deadline.
                try connection.query(
                    """
                    UPDATE privacy.tenant_processor_calls SET outcome = 'timed_out', answered_at = now(),
                        detail = 'processor removed before it answered'
                    WHERE tenant_id = $1 AND processor_id = $2 AND outcome IS NULL
                    """, [tenant, id])
                _ = try audit.append(
                    in: connection, tenant: tenant,
                    actor.event(
                        "privacy.processor_removed", target: "processor:" + id.lowercasedString,
                        details: ["processor_id": .string(id.lowercasedString), "name": .string(try row.decode("name"))]))
            }
        }
    }

    /// https only (plain http only to this machine, and only when the configuration allows it: tests
    /// and development); no credentials or query in the URL, which is stored in plaintext — they
    /// belong in the sealed secret.
    /// Internal addresses (loopback, private, link-local — the cloud metadata service at
    /// 169.254.169.254 —, CGNAT, ULA, multicast, unspecified, and IPv4 written as one number or in
    /// octal/hex, which the resolver reads as such) only with `allowPrivateNetwork`; loopback also
    /// with `allowLoopbackHTTP` (tests, development). A host name is not resolved here (it may not
    /// resolve yet when declared): it is resolved before each send, and the call goes to an address just checked (``PinnedHTTP``).
    static func checkWebhookURL(_ text: String, allowLoopbackHTTP: Bool, allowPrivateNetwork: Bool = false) throws {
        guard text.utf8.count <= 2048, let url = URL(string: text), let components = URLComponents(string: text),
            let host = url.host, !host.isEmpty
        else { throw PrivacyError(.invalidInput, "webhook_url must be an absolute https URL") }
        let target = OutboundHost.classify(host)
        guard target != .invalid else { throw PrivacyError(.invalidInput, "webhook_url has no valid host") }
        let loopback = target == .loopback
        guard url.scheme == "https" || (url.scheme == "http" && loopback && allowLoopbackHTTP) else {
            throw PrivacyError(.invalidInput, "webhook_url must be https")
        }
        guard target == .public || allowPrivateNetwork || (loopback && allowLoopbackHTTP) else {
            throw PrivacyError(
                .invalidInput,
                "webhook_url must not name a loopback, private or link-local address (PRIVACY_PROCESSORS_ALLOW_PRIVATE_NETWORK=true allows it)"
            )
        }
        guard components.user == nil, components.password == nil, components.query == nil, components.fragment == nil else {
            throw PrivacyError(
                .invalidInput, "webhook_url must carry no credentials, query or fragment (it is stored in plaintext; the secret is sealed)")
        }
    }

    // MARK: - Calls

    /// Inside the erasure's (or export's) transaction: one call per processor of the tenant — for an
    /// export only those declared `export_required` (the default is false: an export never waits up
    /// to the deadline of a processor that holds nothing to export) — made once (a resumed request
    /// adds none), then how many are still open (unanswered, before their deadline).
    func registerProcessorCalls(_ connection: borrowing Connection, tenant: UUID, kind: RequestKind, id: UUID, subject: UUID) throws -> Int
    {
        try connection.query(
            """
            INSERT INTO privacy.tenant_processor_calls (tenant_id, request_kind, request_id, processor_id, processor_name, data_kind,
                required, user_id, deadline_at)
            SELECT tenant_id, $2, $3, id, name, data_kind, CASE WHEN $2 = 'export' THEN export_required ELSE erasure_required END, $4,
                   now() + make_interval(secs => timeout_seconds)
            FROM privacy.tenant_processors p WHERE tenant_id = $1 AND ($2 <> 'export' OR export_required)
              AND NOT EXISTS (SELECT 1 FROM privacy.tenant_processor_calls c WHERE c.request_id = $3 AND c.processor_id = p.id)
            """, [tenant, kind.rawValue, id, subject])
        return try connection.query(
            "SELECT count(*) AS n FROM privacy.tenant_processor_calls WHERE tenant_id = $1 AND request_id = $2 AND outcome IS NULL AND deadline_at > now()",
            [tenant, id]
        ).first!.decode("n", as: Int.self)
    }

    /// Closes the request's calls still unanswered at their deadline (`timed_out`), audited; then
    /// every call of the request, by processor name.
    func closeProcessorCalls(_ connection: borrowing Connection, tenant: UUID, id: UUID, audit: AuditAppender) throws -> [ProcessorOutcome]
    {
        for row in try connection.query(
            """
            UPDATE privacy.tenant_processor_calls SET outcome = 'timed_out', answered_at = now(),
                detail = coalesce(detail, CASE WHEN delivered_at IS NULL THEN 'not delivered by the deadline' ELSE 'no answer by the deadline' END)
            WHERE tenant_id = $1 AND request_id = $2 AND outcome IS NULL AND deadline_at <= now()
            RETURNING processor_id::text AS processor_id, processor_name
            """, [tenant, id]
        ).rows {
            _ = try audit.append(
                in: connection, tenant: tenant,
                AuditEvent(
                    actor: "privacy-worker", action: "privacy.processor_timed_out", target: id.lowercasedString, outcome: .failure,
                    details: [
                        "request_id": .string(id.lowercasedString), "processor_id": .string(try row.decode("processor_id")),
                        "name": .string(try row.decode("processor_name")),
                    ]))
        }
        return try processorOutcomes(connection, tenant: tenant, id: id)
    }

    func processorOutcomes(_ connection: borrowing Connection, tenant: UUID, id: UUID) throws -> [ProcessorOutcome] {
        try connection.query(
            "SELECT \(ProcessorOutcome.columns) FROM privacy.tenant_processor_calls WHERE tenant_id = $1 AND request_id = $2 ORDER BY processor_name, processor_id",
            [tenant, id]
        ).rows.map(ProcessorOutcome.init)
    }

    /// The processors' part in one request of the tenant (empty when it has none).
    public func processorOutcomes(tenant: UUID, id: UUID) async throws -> [ProcessorOutcome] {
        try await run(tenant: tenant) { try self.processorOutcomes($0, tenant: tenant, id: id) }
    }

    /// Sends due calls (never answered, not delivered, their backoff over) and closes those past
    /// their deadline, up to `limit`, several at once: each HTTP attempt is bounded by
    /// ``PrivacyConfiguration/processorAttemptTimeout`` and the call's deadline, so one slow or dead
    /// processor holds up neither the others nor the request queue. Returns how many were handled.
    @discardableResult
    public func dispatchProcessorCalls(limit: Int = 32) async throws -> Int {
        let candidates: [(tenant: UUID, request: UUID, processor: UUID)] = try await run(tenant: nil) { connection in
            try connection.query("SELECT tenant_id, request_id, processor_id FROM privacy.due_processor_calls($1)", [100]).rows.map {
                (try $0.decode("tenant_id"), try $0.decode("request_id"), try $0.decode("processor_id"))
            }
        }
        // Round robin over tenants (oldest first within each) among the 100 most due, so one tenant's
        // many due calls (a processor that hangs on every erasure) do not fill a round while another's wait.
        var byTenant: [UUID: [(tenant: UUID, request: UUID, processor: UUID)]] = [:]
        var order: [UUID] = []
        for call in candidates {
            if byTenant[call.tenant] == nil { order.append(call.tenant) }
            byTenant[call.tenant, default: []].append(call)
        }
        var due: [(tenant: UUID, request: UUID, processor: UUID)] = []
        var round = 0
        while due.count < min(limit, candidates.count) {
            for tenant in order where due.count < limit {
                if let calls = byTenant[tenant], round < calls.count { due.append(calls[round]) }
            }
            round += 1
        }
        guard !due.isEmpty else { return 0 }
        let width = 8
        await withTaskGroup(of: Void.self) { group in
            var index = 0
            for call in due {
                if index >= width { await group.next() }
                index += 1
                group.addTask { try? await self.sendCall(tenant: call.tenant, request: call.request, processor: call.processor) }
            }
        }
        return due.count
    }

    /// One attempt of one call: claims it (moving its next attempt past this one, so no other
    /// worker sends it meanwhile), sends it signed, and records the delivery or the backoff.
    func sendCall(tenant: UUID, request id: UUID, processor: UUID) async throws {
        guard let keyring else { return }
        let audit = self.audit
        let attemptTimeout = configuration.processorAttemptTimeout.components.seconds
        struct Claimed: Sendable { let url: URL; let body: [UInt8]; let secret: SecureBytes; let timeout: Int64 }
        let claimed: Claimed? = try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                guard
                    let row = try connection.query(
                        """
                        SELECT c.request_kind, c.user_id::text AS user_id, c.data_kind, c.attempts,
                               to_char(c.deadline_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS deadline,
                               greatest(1, least($4, ceil(extract(epoch FROM c.deadline_at - now()))::bigint)) AS timeout,
                               c.deadline_at <= now() AS expired, c.delivered_at IS NOT NULL AS delivered,
                               p.webhook_url, p.secret_sealed, p.secret_nonce, p.secret_kek_version
                        FROM privacy.tenant_processor_calls c LEFT JOIN privacy.tenant_processors p ON p.id = c.processor_id
                        WHERE c.tenant_id = $1 AND c.request_id = $2 AND c.processor_id = $3 AND c.outcome IS NULL
                        FOR UPDATE OF c SKIP LOCKED
                        """, [tenant, id, processor, attemptTimeout]
                    ).first
                else { return nil }
                if try row.decode("expired", as: Bool.self) {
                    _ = try self.closeProcessorCalls(connection, tenant: tenant, id: id, audit: audit)
                    return nil
                }
                if try row.decode("delivered", as: Bool.self) { return nil }  // waiting for its callback
                guard let url = try row.decodeIfPresent("webhook_url", as: String.self).flatMap(URL.init(string:)) else {
                    try connection.query(
                        """
                        UPDATE privacy.tenant_processor_calls SET outcome = 'timed_out', answered_at = now(), detail = 'processor removed before it was called'
                        WHERE tenant_id = $1 AND request_id = $2 AND processor_id = $3
                        """, [tenant, id, processor])
                    return nil
                }
                let timeout: Int64 = try row.decode("timeout")
                // Nobody else sends it until this attempt had its time (and then some).
                try connection.query(
                    """
                    UPDATE privacy.tenant_processor_calls SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $4)
                    WHERE tenant_id = $1 AND request_id = $2 AND processor_id = $3
                    """, [tenant, id, processor, timeout + 30])
                let secret = try Self.asLogin(connection) {
                    try keyring.openTenantSecret(
                        Keyring.SealedValue(
                            ciphertext: try row.decode("secret_sealed"), nonce: try row.decode("secret_nonce"),
                            kekVersion: try row.decode("secret_kek_version")),
                        tenant: tenant, purpose: Self.processorPurpose(processor), in: connection)
                }
                let kind: String = try row.decode("request_kind")
                let payload: [String: String] = [
                    "type": kind == "export" ? "export" : "erasure", "request_id": id.lowercasedString,
                    "tenant_id": tenant.lowercasedString, "user_id": try row.decode("user_id"),
                    "processor_id": processor.lowercasedString, "data_kind": try row.decode("data_kind"),
                    "deadline": try row.decode("deadline"),
                    "callback": "/v1/privacy/processors/\(processor.lowercasedString)/callback",
                ]
                return Claimed(url: url, body: try JSONCoding.encode(payload), secret: try SecureBytes(copying: secret), timeout: timeout)
            }
        }
        guard let claimed else { return }
        let timestamp = Int(Date().timeIntervalSince1970)
        var request = HTTPClientRequest(url: claimed.url.absoluteString)
        request.method = .POST
        request.body = .bytes(ByteBuffer(bytes: claimed.body))
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-PGW-Timestamp", value: String(timestamp))
        request.headers.add(name: "X-PGW-Request-Id", value: id.lowercasedString)
        request.headers.add(name: "Idempotency-Key", value: id.lowercasedString)
        request.headers.add(
            name: "X-PGW-Signature",
            value: ProcessorSignature.sign(
                body: claimed.body, processorID: processor.lowercasedString, timestamp: timestamp,
                requestID: id.lowercasedString, secret: claimed.secret))
        // Checked again at each send: a row declared before the check (or written around it) is not
        // called. The host name is resolved now and the call goes to an address just checked.
        let failure: String?
        do {
            try Self.checkWebhookURL(
                claimed.url.absoluteString, allowLoopbackHTTP: configuration.processorsAllowLoopbackHTTP,
                allowPrivateNetwork: configuration.processorsAllowPrivateNetwork)
            let host = claimed.url.host ?? ""
            let reach = PinnedHTTP.Reach(
                loopback: configuration.processorsAllowLoopbackHTTP, privateNetwork: configuration.processorsAllowPrivateNetwork)
            switch await PinnedHTTP.check(host, reach: reach) {
            case .failure(.unresolved): failure = "webhook_url's host did not resolve"
            case .failure(.internalAddress): failure = "webhook_url refused: its host resolves to an internal address"
            case .success(let target): failure = await Self.post(request, to: target, timeout: claimed.timeout)
            }
        } catch {
            failure = "webhook_url refused: not https, or an internal address"
        }
        let base = configuration.processorRetryBase.components.seconds
        let outcome = failure
        try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                if let failure = outcome {
                    // Exponential backoff from the attempt count, at most an hour apart.
                    try connection.query(
                        """
                        UPDATE privacy.tenant_processor_calls
                        SET next_attempt_at = now() + make_interval(secs => least(3600, $4 * power(2, greatest(attempts - 1, 0)))), last_error = $5
                        WHERE tenant_id = $1 AND request_id = $2 AND processor_id = $3 AND outcome IS NULL
                        """, [tenant, id, processor, base, failure])
                } else {
                    let updated = try connection.query(
                        """
                        UPDATE privacy.tenant_processor_calls SET delivered_at = now(), last_error = NULL
                        WHERE tenant_id = $1 AND request_id = $2 AND processor_id = $3 AND delivered_at IS NULL RETURNING attempts
                        """, [tenant, id, processor]
                    ).first
                    if let updated {
                        _ = try audit.append(
                            in: connection, tenant: tenant,
                            AuditEvent(
                                actor: "privacy-worker", action: "privacy.processor_called", target: id.lowercasedString,
                                details: [
                                    "request_id": .string(id.lowercasedString), "processor_id": .string(processor.lowercasedString),
                                    "attempts": .int(Int64(try updated.decode("attempts", as: Int.self))),
                                ]))
                    }
                }
            }
        }
    }

    /// Sends one call to the checked `target`; nil when the processor answered 2xx, else why not.
    /// Only the status is read: no redirect is followed (it would carry the signed call, signature
    /// and all, to wherever its Location says) and no body is read (the connection is closed at the
    /// status), so a processor that answers gigabytes costs nothing. The attempt ends after
    /// `timeout` seconds, so a hanging processor holds up nothing: the call is retried after its backoff.
    static func post(_ request: HTTPClientRequest, to target: PinnedHTTP.Target, timeout: Int64) async -> String? {
        do {
            let status = try await PinnedHTTP.execute(request, to: target, deadline: .now() + .seconds(timeout)) { $0.status.code }
            return (200..<300).contains(status) ? nil : "the processor answered HTTP \(status)"
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return "the processor could not be reached (no answer within \(timeout) s)"
        } catch {
            return "the processor could not be reached (\(type(of: error)))"
        }
    }

    // MARK: - Answers

    /// A processor's `reference`: 1 to 500 visible ASCII characters (no space, quote or angle
    /// bracket, so it is inert in the archive's HTML and CSV); when it has a scheme, only https
    /// without credentials. It is recorded and shown, never fetched by the gateway.
    static func isValidReference(_ text: String) -> Bool {
        guard (1...500).contains(text.utf8.count),
            text.utf8.allSatisfy({ (0x21...0x7e).contains($0) && !"\"'<>`\\".utf8.contains($0) })
        else { return false }
        guard text.contains(":") else { return true }
        guard let components = URLComponents(string: text), components.scheme?.lowercased() == "https",
            components.host?.isEmpty == false, components.user == nil, components.password == nil
        else { return false }
        return true
    }

    /// Whether a recorded reference is a link (https) the archive's index may show as one.
    static func isLink(_ reference: String) -> Bool { reference.lowercased().hasPrefix("https://") }

    /// Records a processor's signed answer (`POST /v1/privacy/processors/{id}/callback`): body
    /// `{"request_id", "outcome": "confirmed"|"refused", "detail"?}` with `X-PGW-Timestamp`,
    /// `X-PGW-Request-Id` and `X-PGW-Signature` as the gateway's own calls carry them.
    ///
    /// - Throws: ``PrivacyError/Code/signatureRejected`` for an unknown processor, a missing or wrong
    ///   signature, or a timestamp more than ``ProcessorSignature/window`` seconds off (a replayed old
    ///   callback) — all alike, so nothing tells which processors exist; ``PrivacyError/Code/notFound``
    ///   when the processor was not called for that request (another tenant's, or none);
    ///   ``PrivacyError/Code/invalidState`` for a call already closed with another outcome. The same
    ///   answer again is a no-op.
    public func recordProcessorAnswer(
        processor: UUID, timestamp: String?, requestID: String?, signature: String?, body: [UInt8], now: Date = Date()
    ) async throws -> ProcessorOutcome {
        let rejected = PrivacyError(
            .signatureRejected, "the callback is not signed by this processor, or its timestamp is outside the window")
        guard let keyring, let timestamp, let seconds = Int(timestamp), let requestID, let signature,
            let id = UUID(uuidString: requestID), id.lowercasedString == requestID
        else { throw rejected }
        // Bounded first, so the difference cannot overflow whatever number the header holds.
        guard (0..<(1 << 40)).contains(seconds), abs(seconds - Int(now.timeIntervalSince1970)) <= ProcessorSignature.window else {
            throw rejected
        }
        let owner: UUID? = try await run(tenant: nil) { connection in
            try connection.query("SELECT privacy.processor_tenant($1) AS tenant", [processor]).first?.decodeIfPresent("tenant")
        }
        guard let tenant = owner else { throw rejected }
        let secret: SecureBytes? = try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                guard
                    let row = try connection.query(
                        "SELECT secret_sealed, secret_nonce, secret_kek_version FROM privacy.tenant_processors WHERE tenant_id = $1 AND id = $2",
                        [tenant, processor]
                    ).first
                else { return nil }
                let plaintext = try Self.asLogin(connection) {
                    try keyring.openTenantSecret(
                        Keyring.SealedValue(
                            ciphertext: try row.decode("secret_sealed"), nonce: try row.decode("secret_nonce"),
                            kekVersion: try row.decode("secret_kek_version")),
                        tenant: tenant, purpose: Self.processorPurpose(processor), in: connection)
                }
                return try SecureBytes(copying: plaintext)
            }
        }
        guard let secret,
            ProcessorSignature.isValid(
                signature, body: body, processorID: processor.lowercasedString, timestamp: seconds,
                requestID: requestID, secret: secret)
        else {
            throw rejected
        }
        struct Answer: Decodable { let request_id: String; let outcome: String; let detail: String?; let reference: String? }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            Set(object.keys).isSubset(of: ["request_id", "outcome", "detail", "reference"]),
            let answer = try? JSONDecoder().decode(Answer.self, from: Data(body))
        else {
            throw PrivacyError(
                .invalidInput, "the body must be {\"request_id\", \"outcome\": \"confirmed\" or \"refused\", \"detail\"?, \"reference\"?}")
        }
        guard answer.request_id == requestID else { throw PrivacyError(.invalidInput, "the body's request_id is not X-PGW-Request-Id") }
        guard ["confirmed", "refused"].contains(answer.outcome) else {
            throw PrivacyError(.invalidInput, "outcome must be confirmed or refused")
        }
        let detail = answer.detail.map {
            String($0.unicodeScalars.filter { $0.properties.generalCategory != .control }.prefix(500).map(Character.init))
        }
        if let reference = answer.reference {
            guard Self.isValidReference(reference) else {
                throw PrivacyError(
                    .invalidInput,
                    "reference must be 1 to 500 printable characters without spaces: an opaque reference, or an https URL without credentials"
                )
            }
        }
        let reference = answer.reference
        let audit = self.audit
        return try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                guard
                    let row = try connection.query(
                        """
                        SELECT outcome, deadline_at <= now() AS expired FROM privacy.tenant_processor_calls
                        WHERE tenant_id = $1 AND request_id = $2 AND processor_id = $3 FOR UPDATE
                        """, [tenant, id, processor]
                    ).first
                else { throw PrivacyError(.notFound, "this processor was not called for request \(requestID)") }
                if let recorded = try row.decodeIfPresent("outcome", as: String.self) {
                    guard recorded == answer.outcome else {
                        throw PrivacyError(.invalidState, "the call is already closed as \(recorded)")
                    }
                } else if try row.decode("expired", as: Bool.self) {
                    // The worker closes it as timed_out (closeProcessorCalls) on its next round.
                    throw PrivacyError(.invalidState, "the call's deadline passed; it closes as timed_out")
                } else {
                    try connection.query(
                        """
                        UPDATE privacy.tenant_processor_calls SET outcome = $4, answered_at = now(), detail = $5, delivered_at = coalesce(delivered_at, now()),
                            reference = $6
                        WHERE tenant_id = $1 AND request_id = $2 AND processor_id = $3
                        """, [tenant, id, processor, answer.outcome, detail, reference])
                    _ = try audit.append(
                        in: connection, tenant: tenant,
                        AuditEvent(
                            actor: "processor:" + processor.lowercasedString, action: "privacy.processor_answered",
                            target: id.lowercasedString,
                            outcome: answer.outcome == "confirmed" ? .success : .denied,
                            details: [
                                "request_id": .string(id.lowercasedString), "processor_id": .string(processor.lowercasedString),
                                "outcome": .string(answer.outcome),
                            ]))
                }
                return try self.processorOutcomes(connection, tenant: tenant, id: id).first {
                    $0.processorID == processor.lowercasedString
                }!
            }
        }
    }
}
