import Audit
import Foundation
import Postgres
import Sodium

/// How a subject who files a request themselves proves who they are (Art. 12(6): the controller
/// may ask for what it needs to confirm the identity).
///
/// Either the caller's JWT shows a recent sign-in (`auth_time` at most ``maxAuthAge`` old: the app
/// has just authenticated the person), or the request waits in `received` for a one-time code sent
/// through the configured ``IdentityNotifier``: six digits from libsodium's CSPRNG, valid for
/// ``codeTTL``, at most ``maxAttempts`` wrong entries over all the request's codes (then the
/// request is denied), compared in constant time, stored only as a keyed hash
/// (migrations/0023_identity_challenges.sql) and never written to the audit trail or a log.
public struct IdentityPolicy: Sendable {
    /// A JWT whose `auth_time` is at most this old verifies the caller at once. nil: any valid JWT
    /// of the subject does (the app vouches for every session; codes are never asked for).
    public var maxAuthAge: Duration?
    public var codeTTL: Duration = .seconds(600)
    public var maxAttempts = 5
    /// Codes one request may be sent: the first and the re-sends (filing the same request again).
    public var maxCodes = 3

    public init(maxAuthAge: Duration? = nil) {
        self.maxAuthAge = maxAuthAge
    }

    /// Whether a JWT with this `auth_time` (seconds since 1970) proves a recent sign-in at `now`.
    public func isFresh(authTime: Double?, now: Date = Date()) -> Bool {
        guard let maxAuthAge else { return true }
        guard let authTime else { return false }
        let age = now.timeIntervalSince1970 - authTime
        // A sign-in from the future (beyond a minute of clock skew) is not a sign-in.
        return age >= -60 && age <= Double(maxAuthAge.components.seconds)
    }
}

/// A one-time code on its way to the subject. `code` is the secret: notifiers send it to the
/// subject and nowhere else (no log line, no error message).
public struct IdentityCode: Sendable {
    public let tenant: UUID
    public let subject: UUID
    public let kind: RequestKind
    public let requestID: UUID
    public let code: String
    public let expiresAt: String

    public init(tenant: UUID, subject: UUID, kind: RequestKind, requestID: UUID, code: String, expiresAt: String) {
        self.tenant = tenant
        self.subject = subject
        self.kind = kind
        self.requestID = requestID
        self.code = code
        self.expiresAt = expiresAt
    }
}

/// Delivers one-time codes (``WebhookNotifier``, ``FileNotifier``).
public protocol IdentityNotifier: Sendable {
    func deliver(_ code: IdentityCode) async throws
}

/// What a request filed for verification says about the pending code (never the code).
public struct IdentityChallenge: Codable, Sendable {
    public let method: String
    public let expiresAt: String
    public let attemptsLeft: Int

    enum CodingKeys: String, CodingKey {
        case method
        case expiresAt = "expires_at"
        case attemptsLeft = "attempts_left"
    }
}

/// A request filed by its subject, and the code it waits for, if any.
public struct FiledRequest: Codable, Sendable {
    public let request: PrivacyRequest
    public let verification: IdentityChallenge?
}

extension PrivacyService {
    /// Files a request of the subject that waits (`received`) for the one-time code this sends
    /// them; ``verifyIdentity(_:tenant:id:subject:code:actor:)`` moves it on. Filing again while it
    /// waits sends a new code (up to ``IdentityPolicy/maxCodes``; wrong entries keep counting). An
    /// open request that is past verification is returned as it is.
    ///
    /// - Throws: ``PrivacyError/Code/invalidState`` without a notifier or when no more codes may be
    ///   sent; ``PrivacyError/Code/notifierFailed`` when the code could not be delivered (the request
    ///   waits; filing again re-sends).
    public func fileUnverified(_ kind: RequestKind, tenant: UUID, subject: UUID, actor: PrivacyActor) async throws -> FiledRequest {
        guard let notifier else {
            throw PrivacyError(.invalidState, "identity codes are not configured on this gateway (no notifier): sign in again and retry")
        }
        let policy = configuration.identity
        let audit = self.audit
        let number = String(Random.uniform(1_000_000))
        let code = String(repeating: "0", count: 6 - number.count) + number
        let filed: (id: UUID, challenge: IdentityChallenge?) = try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                // One open request of a kind per subject: serialise filers on the subject's registry row.
                _ = try connection.query("SELECT 1 FROM auth.users WHERE tenant_id = $1 AND id = $2 FOR UPDATE", [tenant, subject])
                let id: UUID
                if let open = try self.openRequest(kind, connection, tenant: tenant, subject: subject) {
                    guard open.status == RequestStatus.received.rawValue else { return (open.id, nil) }
                    id = open.id
                    guard
                        let issued = try connection.query(
                            "SELECT issued, attempts FROM privacy.tenant_identity_challenges WHERE tenant_id = $1 AND request_id = $2 FOR UPDATE",
                            [tenant, id]
                        ).first
                    else { throw PrivacyError(.invalidState, "the request waits for its subject's identity but has no code; it expires") }
                    guard try issued.decode("issued", as: Int.self) < policy.maxCodes else {
                        throw PrivacyError(.invalidState, "no more codes can be sent for this request; it expires unverified")
                    }
                    try connection.query(
                        """
                        UPDATE privacy.tenant_identity_challenges SET code_hash = $3, issued = issued + 1,
                            expires_at = now() + make_interval(secs => $4)
                        WHERE tenant_id = $1 AND request_id = $2
                        """, [tenant, id, self.codeHash(code, tenant: tenant, id: id), Int(policy.codeTTL.components.seconds)])
                } else {
                    id = UUID()
                    var details: [String: AuditValue] = [
                        "request_id": .string(id.lowercasedString), "user_id": .string(subject.lowercasedString),
                        "identity": .string("unverified"),
                    ]
                    switch kind {
                    case .export:
                        try connection.query(
                            "INSERT INTO public.data_export_requests (id, tenant_id, user_id, status) VALUES ($1, $2, $3, 'received')",
                            [id, tenant, subject])
                    case .deletion:
                        let plan = try self.plan(connection, tenant: tenant, subject: subject)
                        try connection.query(
                            "INSERT INTO public.data_deletion_requests (id, tenant_id, user_id, status, plan) VALUES ($1, $2, $3, 'received', $4)",
                            [id, tenant, subject, try PostgresJSON(encoding: plan)])
                        details["tables"] = .int(Int64(plan.tables.count))
                        details["rows"] = .int(plan.tables.reduce(0) { $0 + $1.rows })
                    }
                    let action = "privacy.\(kind.rawValue)_requested"
                    details["proof"] = .string(self.provenanceProof(action, tenant: tenant, id: id, subject: subject))
                    _ = try audit.append(in: connection, tenant: tenant, actor.event(action, target: id.lowercasedString, details: details))
                    try connection.query(
                        """
                        INSERT INTO privacy.tenant_identity_challenges (tenant_id, request_kind, request_id, user_id, code_hash, expires_at)
                        VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
                        """,
                        [
                            tenant, kind.rawValue, id, subject, self.codeHash(code, tenant: tenant, id: id),
                            Int(policy.codeTTL.components.seconds),
                        ])
                }
                let row = try connection.query(
                    """
                    SELECT \(PrivacyRequest.timestamp("expires_at")), attempts, issued FROM privacy.tenant_identity_challenges
                    WHERE tenant_id = $1 AND request_id = $2
                    """, [tenant, id]
                ).first!
                let challenge = IdentityChallenge(
                    method: "code", expiresAt: try row.decode("expires_at"),
                    attemptsLeft: max(0, policy.maxAttempts - (try row.decode("attempts", as: Int.self))))
                // What was sent, when and until when; never the code.
                _ = try audit.append(
                    in: connection, tenant: tenant,
                    actor.event(
                        "privacy.identity_code_sent", target: id.lowercasedString,
                        details: [
                            "request_id": .string(id.lowercasedString), "kind": .string(kind.rawValue),
                            "user_id": .string(subject.lowercasedString), "expires_at": .string(challenge.expiresAt),
                            "issued": .int(Int64(try row.decode("issued", as: Int.self))),
                        ]))
                return (id, challenge)
            }
        }
        let request = try await self.request(kind, tenant: tenant, id: filed.id)
        guard let challenge = filed.challenge else { return FiledRequest(request: request, verification: nil) }
        do {
            try await notifier.deliver(
                IdentityCode(
                    tenant: tenant, subject: subject, kind: kind, requestID: filed.id, code: code, expiresAt: challenge.expiresAt))
        } catch {
            // The error may quote what was sent: only its type is kept.
            throw PrivacyError(
                .notifierFailed, "the code could not be delivered (\(type(of: error))); file the request again to re-send it")
        }
        return FiledRequest(request: request, verification: challenge)
    }

    /// Checks the code the subject entered for their request `id`. Right: an export becomes
    /// `pending`, an erasure `awaiting_confirmation` with a fresh plan; the code is spent. Wrong:
    /// counted (audited, without the code); the last allowed wrong entry denies the request.
    ///
    /// - Throws: ``PrivacyError/Code/notFound`` for a request that is not the subject's in this
    ///   tenant; ``PrivacyError/Code/invalidState`` when it does not wait for a code (verified
    ///   already: a replayed code, or closed); ``PrivacyError/Code/gone`` for an expired code;
    ///   ``PrivacyError/Code/tokenRejected`` for a wrong one; ``PrivacyError/Code/invalidInput``
    ///   unless `code` is six digits (not counted as an attempt).
    public func verifyIdentity(
        _ kind: RequestKind, tenant: UUID, id: UUID, subject: UUID, code: String, actor: PrivacyActor
    ) async throws -> PrivacyRequest {
        guard code.utf8.count == 6, code.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
            throw PrivacyError(.invalidInput, "the code is six digits")
        }
        let policy = configuration.identity
        let audit = self.audit
        enum Outcome: Sendable { case verified, expired, wrong(left: Int), denied }
        let outcome: Outcome = try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                guard
                    let request = try connection.query(
                        "SELECT status FROM \(kind.table) WHERE tenant_id = $1 AND id = $2 AND user_id = $3 FOR UPDATE",
                        [tenant, id, subject]
                    ).first
                else { throw PrivacyError(.notFound, "no \(kind.rawValue) request \(id.lowercasedString) of this subject in this tenant") }
                let status: String = try request.decode("status")
                guard status == RequestStatus.received.rawValue else {
                    throw PrivacyError(.invalidState, "the request is \(status): it does not wait for a code")
                }
                guard
                    let challenge = try connection.query(
                        """
                        SELECT code_hash, attempts, expires_at <= now() AS expired FROM privacy.tenant_identity_challenges
                        WHERE tenant_id = $1 AND request_id = $2 AND request_kind = $3 FOR UPDATE
                        """, [tenant, id, kind.rawValue]
                    ).first
                else { throw PrivacyError(.invalidState, "the request has no code outstanding") }
                if try challenge.decode("expired", as: Bool.self) { return .expired }
                let stored: [UInt8] = try challenge.decode("code_hash")
                let event = { (action: String, outcome: AuditOutcome, extra: [String: AuditValue]) in
                    AuditEvent(
                        actor: actor.actor, action: action, target: id.lowercasedString, outcome: outcome, requestID: actor.requestID,
                        ip: actor.ip, userAgent: actor.userAgent,
                        details: [
                            "request_id": .string(id.lowercasedString), "kind": .string(kind.rawValue),
                            "user_id": .string(subject.lowercasedString),
                        ].merging(extra) { $1 })
                }
                guard ConstantTime.equals(stored, self.codeHash(code, tenant: tenant, id: id)) else {
                    let attempts = try challenge.decode("attempts", as: Int.self) + 1
                    _ = try audit.append(
                        in: connection, tenant: tenant,
                        event("privacy.identity_code_rejected", .denied, ["attempts": .int(Int64(attempts))]))
                    guard attempts >= policy.maxAttempts else {
                        try connection.query(
                            "UPDATE privacy.tenant_identity_challenges SET attempts = $3 WHERE tenant_id = $1 AND request_id = $2",
                            [tenant, id, attempts])
                        return .wrong(left: policy.maxAttempts - attempts)
                    }
                    try connection.query(
                        "DELETE FROM privacy.tenant_identity_challenges WHERE tenant_id = $1 AND request_id = $2", [tenant, id])
                    try connection.query(
                        "UPDATE \(kind.table) SET status = 'denied', status_reason = 'identity_unverified: too many wrong codes' WHERE id = $1",
                        [id])
                    return .denied
                }
                try self.markVerified(connection, kind, tenant: tenant, id: id, subject: subject)
                _ = try audit.append(
                    in: connection, tenant: tenant, event("privacy.identity_verified", .success, ["method": .string("code")]))
                return .verified
            }
        }
        switch outcome {
        case .verified: return try await request(kind, tenant: tenant, id: id)
        case .expired: throw PrivacyError(.gone, "the code expired: file the request again for a new one")
        case .wrong(let left): throw PrivacyError(.tokenRejected, "wrong code; \(left) attempt\(left == 1 ? "" : "s") left")
        case .denied: throw PrivacyError(.tokenRejected, "wrong code; no attempts left: the request was denied")
        }
    }

    /// Verifies a request that waits for a code by the caller's recent sign-in instead (a JWT with
    /// a fresh `auth_time`, checked by the caller against ``IdentityPolicy/isFresh(authTime:now:)``):
    /// the code is dropped and the request moves on as with a right code. A request past
    /// verification is returned as it is.
    public func verifyBySignIn(_ kind: RequestKind, tenant: UUID, id: UUID, subject: UUID, actor: PrivacyActor) async throws
        -> PrivacyRequest
    {
        let audit = self.audit
        try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                guard
                    let request = try connection.query(
                        "SELECT status FROM \(kind.table) WHERE tenant_id = $1 AND id = $2 AND user_id = $3 FOR UPDATE",
                        [tenant, id, subject]
                    ).first
                else { throw PrivacyError(.notFound, "no \(kind.rawValue) request \(id.lowercasedString) of this subject in this tenant") }
                guard try request.decode("status", as: String.self) == RequestStatus.received.rawValue else { return }
                try self.markVerified(connection, kind, tenant: tenant, id: id, subject: subject)
                _ = try audit.append(
                    in: connection, tenant: tenant,
                    actor.event(
                        "privacy.identity_verified", target: id.lowercasedString,
                        details: [
                            "request_id": .string(id.lowercasedString), "kind": .string(kind.rawValue),
                            "user_id": .string(subject.lowercasedString), "method": .string("recent_sign_in"),
                        ]))
            }
        }
        return try await request(kind, tenant: tenant, id: id)
    }

    /// Moves a `received` request past verification (locked by the caller) and drops its code: an
    /// export to `pending`, an erasure to `awaiting_confirmation` with its plan counted now.
    func markVerified(_ connection: borrowing Connection, _ kind: RequestKind, tenant: UUID, id: UUID, subject: UUID) throws {
        try connection.query("DELETE FROM privacy.tenant_identity_challenges WHERE tenant_id = $1 AND request_id = $2", [tenant, id])
        switch kind {
        case .export:
            try connection.query(
                "UPDATE public.data_export_requests SET status = 'pending', identity_verified_at = now() WHERE id = $1", [id])
        case .deletion:
            let plan = try self.plan(connection, tenant: tenant, subject: subject)
            try connection.query(
                "UPDATE public.data_deletion_requests SET status = 'awaiting_confirmation', identity_verified_at = now(), plan = $2 WHERE id = $1",
                [id, try PostgresJSON(encoding: plan)])
        }
    }

    /// Whether `subject` is registered in the tenant (an authorized agent names the subject; a
    /// JWT's subject is registered by its first request).
    public func isRegistered(tenant: UUID, subject: UUID) async throws -> Bool {
        try await run(tenant: tenant) { connection in
            try connection.query("SELECT 1 FROM auth.users WHERE tenant_id = $1 AND id = $2", [tenant, subject]).first != nil
        }
    }

    /// Denies every request whose code expired before it was entered (`identity_unverified`), and
    /// drops its code. Returns how many were denied. The worker runs it on each pass.
    @discardableResult
    public func expireUnverified() async throws -> Int {
        let audit = self.audit
        var denied = 0
        while true {
            // Ids only, across tenants (privacy.unverified_requests); each is then handled under its own tenant's RLS.
            let candidates: [(tenant: UUID, kind: String, id: UUID)] = try await run(tenant: nil) { connection in
                try connection.query("SELECT tenant_id, kind, id FROM privacy.unverified_requests(100)").rows.map {
                    (try $0.decode("tenant_id"), try $0.decode("kind"), try $0.decode("id"))
                }
            }
            if candidates.isEmpty { return denied }
            for candidate in candidates {
                guard let kind = RequestKind(rawValue: candidate.kind) else { continue }
                denied += try await run(tenant: candidate.tenant) { connection in
                    try connection.transaction { connection -> Int in
                        // Entered meanwhile, or taken by another worker: nothing to do.
                        guard
                            try connection.query(
                                "DELETE FROM privacy.tenant_identity_challenges WHERE tenant_id = $1 AND request_id = $2 AND expires_at < now() RETURNING 1",
                                [candidate.tenant, candidate.id]
                            ).first != nil
                        else { return 0 }
                        guard
                            let row = try connection.query(
                                "UPDATE \(kind.table) SET status = 'denied', status_reason = 'identity_unverified: the code expired before it was entered' "
                                    + "WHERE tenant_id = $1 AND id = $2 AND status = 'received' RETURNING user_id::text AS subject",
                                [candidate.tenant, candidate.id]
                            ).first
                        else { return 0 }
                        _ = try audit.append(
                            in: connection, tenant: candidate.tenant,
                            AuditEvent(
                                actor: "privacy-worker", action: "privacy.request_expired", target: candidate.id.lowercasedString,
                                outcome: .denied,
                                details: [
                                    "request_id": .string(candidate.id.lowercasedString), "kind": .string(kind.rawValue),
                                    "user_id": .string(try row.decode("subject")), "reason": .string("identity_unverified"),
                                ]))
                        return 1
                    }
                }
            }
        }
    }

    /// The stored form of a code: HMAC-SHA-256 under the token key of the tenant, request and code,
    /// so a leaked row neither shows the code nor lets six digits be tried without the key.
    func codeHash(_ code: String, tenant: UUID, id: UUID) -> [UInt8] {
        HMACSHA256.authenticate(
            Array("pgw.identity-code.v1\u{0}\(tenant.lowercasedString)\u{0}\(id.lowercasedString)\u{0}\(code)".utf8), key: tokenKey)
    }
}
