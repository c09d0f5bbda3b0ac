import Audit
import Foundation
import Postgres
import Sodium

/// Who asks, for the audit trail: `user:<uuid>`, `service_key:<uuid>`, `privacyctl`, `privacy-worker`.
public struct PrivacyActor: Sendable {
    public var actor: String
    public var ip: String?
    public var userAgent: String?
    public var requestID: String?
    /// An authorized agent the actor (a service key: the controller's back office) files for, as
    /// it named them; recorded in every audit entry of the actor as `agent`.
    public var agent: String?

    public init(_ actor: String, ip: String? = nil, userAgent: String? = nil, requestID: String? = nil, agent: String? = nil) {
        self.actor = actor
        self.ip = ip
        self.userAgent = userAgent
        self.requestID = requestID
        self.agent = agent
    }

    func event(_ action: String, target: String?, details: [String: AuditValue]) -> AuditEvent {
        var details = details
        if let agent { details["agent"] = .string(agent) }
        return AuditEvent(
            actor: actor, action: action, target: target, outcome: .success, requestID: requestID,
            ip: ip, userAgent: userAgent, details: details)
    }
}

public enum RequestKind: String, Sendable, Codable, CaseIterable {
    case export, deletion

    var table: String { self == .export ? "public.data_export_requests" : "public.data_deletion_requests" }
}

/// One data-subject request as listed and returned by the API.
public struct PrivacyRequest: Codable, Sendable {
    public let kind: RequestKind
    public let id: String
    public let tenant: String
    public let subject: String
    public let status: String
    public let requestedAt: String
    public let dueAt: String
    public let extendedDueAt: String?
    public let extensionReason: String?
    public let completedAt: String?
    public let statusReason: String?
    public let overdue: Bool
    /// The open request this one duplicated (filed within ``PrivacyConfiguration/duplicateWindow``):
    /// it was recorded, linked and closed, never run.
    public let duplicateOf: String?

    enum CodingKeys: String, CodingKey {
        case kind, id, tenant, subject, status, overdue
        case requestedAt = "requested_at"
        case dueAt = "due_at"
        case extendedDueAt = "extended_due_at"
        case extensionReason = "extension_reason"
        case completedAt = "completed_at"
        case statusReason = "status_reason"
        case duplicateOf = "duplicate_of"
    }

    static let terminal = ["completed", "partially_completed", "denied", "canceled", "failed"]
    static let openStatuses =
        "('received', 'identity_verified', 'pending', 'on_hold', 'awaiting_confirmation', 'processing', 'requires_input')"

    /// Columns every query of a request selects, as text in UTC.
    static func columns(_ kind: RequestKind) -> String {
        """
        '\(kind.rawValue)' AS kind, id::text AS id, tenant_id::text AS tenant, user_id::text AS subject, status,
        \(timestamp("requested_at")), \(timestamp("due_at")), \(timestamp("extended_due_at")), extension_reason,
        \(timestamp("completed_at")), status_reason, duplicate_of::text AS duplicate_of,
        (status NOT IN ('completed', 'partially_completed', 'denied', 'canceled', 'failed')
            AND coalesce(extended_due_at, due_at) < now()) AS overdue
        """
    }

    static func timestamp(_ column: String) -> String {
        "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS \(column)"
    }

    init(_ row: PostgresRow) throws {
        kind = RequestKind(rawValue: try row.decode("kind"))!
        id = try row.decode("id")
        tenant = try row.decode("tenant")
        subject = try row.decode("subject")
        status = try row.decode("status")
        requestedAt = try row.decode("requested_at")
        dueAt = try row.decode("due_at")
        extendedDueAt = try row.decodeIfPresent("extended_due_at")
        extensionReason = try row.decodeIfPresent("extension_reason")
        completedAt = try row.decodeIfPresent("completed_at")
        statusReason = try row.decodeIfPresent("status_reason")
        overdue = try row.decode("overdue")
        duplicateOf = try row.decodeIfPresent("duplicate_of")
    }
}

extension PrivacyService {
    // MARK: - Reading

    /// One request of the tenant; `subject` narrows it to a caller's own requests.
    public func request(_ kind: RequestKind, tenant: UUID, id: UUID, subject: UUID? = nil) async throws -> PrivacyRequest {
        try await run(tenant: tenant) { connection in
            guard
                let row = try connection.query(
                    "SELECT \(PrivacyRequest.columns(kind)) FROM \(kind.table) WHERE tenant_id = $1 AND id = $2 AND ($3::uuid IS NULL OR user_id = $3::uuid)",
                    [tenant, id, subject.map { $0.lowercasedString } as String?]
                ).first
            else { throw PrivacyError(.notFound, "no \(kind.rawValue) request \(id.lowercasedString) in this tenant") }
            return try PrivacyRequest(row)
        }
    }

    /// Every request (of one tenant, when given), oldest first; `overdueOnly` keeps open requests
    /// past their due date. Read one tenant at a time, each under its own tenant policy.
    /// Requests of every kind, oldest first. `overdueOnly`: open ones past their (extended) due date;
    /// `stuckAfter`: open ones whose row has not changed for that long (waiting for nobody: not the
    /// subject's confirmation), e.g. a worker that keeps failing to claim them.
    public func listRequests(tenant: UUID? = nil, overdueOnly: Bool = false, stuckAfter: Duration? = nil) async throws -> [PrivacyRequest] {
        let sql = RequestKind.allCases.map { kind in
            "SELECT \(PrivacyRequest.columns(kind)), requested_at AS sort_key, updated_at FROM \(kind.table) WHERE tenant_id = $1"
        }.joined(separator: " UNION ALL ")
        let tenants: [UUID]
        if let tenant {
            tenants = [tenant]
        } else {
            tenants = try await run(tenant: nil) { connection in
                try connection.query("SELECT id FROM public.tenants ORDER BY id").rows.map { try $0.decode("id") }
            }
        }
        var listed: [(sortKey: Date, id: String, request: PrivacyRequest)] = []
        for tenant in tenants {
            listed += try await run(tenant: tenant) { connection in
                try connection.query(
                    """
                    SELECT * FROM (\(sql)) r WHERE (NOT $2::boolean OR r.overdue)
                      AND ($3::bigint IS NULL OR (r.status IN \(PrivacyRequest.openStatuses) AND r.status <> 'awaiting_confirmation'
                                                  AND r.updated_at < now() - make_interval(secs => $3::bigint)))
                    """, [tenant, overdueOnly, stuckAfter.map { $0.components.seconds }]
                ).rows.map {
                    (try $0.decode("sort_key", as: Date.self), try $0.decode("id", as: String.self), try PrivacyRequest($0))
                }
            }
        }
        return listed.sorted { ($0.sortKey, $0.id) < ($1.sortKey, $1.id) }.map(\.request)
    }

    /// Open, overdue and stuck requests of each kind over every tenant: the queue's gauges
    /// (``listRequests(tenant:overdueOnly:stuckAfter:)`` says which requests they are).
    public func queueFigures(stuckAfter: Duration) async throws -> [QueueFigures] {
        let tenants = try await run(tenant: nil) { connection in
            try connection.query("SELECT id FROM public.tenants ORDER BY id").rows.map { try $0.decode("id", as: UUID.self) }
        }
        var totals: [RequestKind: QueueFigures] = [:]
        for kind in RequestKind.allCases { totals[kind] = QueueFigures(kind: kind) }
        for tenant in tenants {
            let rows = try await run(tenant: tenant) { connection in
                try RequestKind.allCases.map { kind in
                    let row = try connection.query(
                        """
                        SELECT count(*) FILTER (WHERE status IN \(PrivacyRequest.openStatuses)) AS open,
                               count(*) FILTER (WHERE status IN \(PrivacyRequest.openStatuses) AND coalesce(extended_due_at, due_at) < now()) AS overdue,
                               count(*) FILTER (WHERE status IN \(PrivacyRequest.openStatuses) AND status <> 'awaiting_confirmation'
                                                  AND updated_at < now() - make_interval(secs => $2::bigint)) AS stuck
                        FROM \(kind.table) WHERE tenant_id = $1
                        """, [tenant, stuckAfter.components.seconds]
                    ).first!
                    return (
                        kind, try row.decode("open", as: Int.self), try row.decode("overdue", as: Int.self),
                        try row.decode("stuck", as: Int.self)
                    )
                }
            }
            for (kind, open, overdue, stuck) in rows {
                totals[kind]!.open += open
                totals[kind]!.overdue += overdue
                totals[kind]!.stuck += stuck
            }
        }
        return RequestKind.allCases.map { totals[$0]! }
    }

    // MARK: - Lifecycle

    /// One extension of up to two calendar months past `due_at`, with a reason (Art. 12(3)).
    public func extend(
        _ kind: RequestKind, tenant: UUID, id: UUID, months: Int, reason: String, actor: PrivacyActor
    ) async throws -> PrivacyRequest {
        guard (1...2).contains(months) else { throw PrivacyError(.invalidInput, "an extension is 1 or 2 months") }
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        // Line breaks and tabs are fine; other control characters (NUL cannot be stored) are not.
        guard !reason.isEmpty, reason.unicodeScalars.count <= 1000,
            !reason.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && !"\n\r\t".unicodeScalars.contains($0) })
        else { throw PrivacyError(.invalidInput, "an extension needs a reason (up to 1000 characters, no control characters)") }
        let audit = self.audit
        try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                guard
                    let row = try connection.query(
                        "SELECT status, extended_due_at IS NOT NULL AS extended FROM \(kind.table) WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                        [tenant, id]
                    ).first
                else { throw PrivacyError(.notFound, "no \(kind.rawValue) request \(id.lowercasedString) in this tenant") }
                guard !PrivacyRequest.terminal.contains(try row.decode("status", as: String.self)) else {
                    throw PrivacyError(.invalidState, "the request is already closed")
                }
                guard !(try row.decode("extended", as: Bool.self)) else {
                    throw PrivacyError(.invalidState, "the request was already extended once")
                }
                let updated = try connection.query(
                    "UPDATE \(kind.table) SET extended_due_at = due_at + make_interval(months => $3), extension_reason = $4, extended_at = now() "
                        + "WHERE tenant_id = $1 AND id = $2 RETURNING \(PrivacyRequest.timestamp("extended_due_at")), user_id::text AS subject",
                    [tenant, id, months, reason]
                ).first!
                _ = try audit.append(
                    in: connection, tenant: tenant,
                    actor.event(
                        "privacy.request_extended", target: id.lowercasedString,
                        details: [
                            "request_id": .string(id.lowercasedString), "kind": .string(kind.rawValue), "reason": .string(reason),
                            "extended_due_at": .string(try updated.decode("extended_due_at")),
                            "user_id": .string(try updated.decode("subject")),
                        ]))
            }
        }
        return try await request(kind, tenant: tenant, id: id)
    }

    /// Takes a `failed` request back to `pending` (``RequestLifecycle``), so a worker runs it again: an
    /// export is built afresh, an erasure resumes from its committed batches and its certificate
    /// counts every batch. Idempotent: a request already `pending` or `processing` is returned as it is.
    /// A request the worker refused (not filed through the privacy service) or closed any other way
    /// is ``PrivacyError/Code/invalidState``. `subject`, when given, must own the request.
    public func retry(_ kind: RequestKind, tenant: UUID, id: UUID, subject: UUID?, actor: PrivacyActor) async throws -> PrivacyRequest {
        let audit = self.audit
        try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                guard
                    let row = try connection.query(
                        "SELECT status, coalesce(status_reason, '') AS reason, user_id::text AS subject FROM \(kind.table) "
                            + "WHERE tenant_id = $1 AND id = $2 AND ($3::uuid IS NULL OR user_id = $3::uuid) FOR UPDATE",
                        [tenant, id, subject]
                    ).first
                else { throw PrivacyError(.notFound, "no \(kind.rawValue) request \(id.lowercasedString) in this tenant") }
                let status: String = try row.decode("status")
                if status == RequestStatus.pending.rawValue || status == RequestStatus.processing.rawValue { return }
                guard status == RequestStatus.failed.rawValue else {
                    throw PrivacyError(.invalidState, "a \(status) request cannot be retried; only a failed one can")
                }
                guard !(try row.decode("reason", as: String.self)).hasPrefix("refused:") else {
                    throw PrivacyError(
                        .invalidState,
                        "the request was refused (not filed through the privacy service) and cannot be retried; file a new one")
                }
                try connection.query("UPDATE \(kind.table) SET status = 'pending', status_reason = NULL WHERE id = $1", [id])
                _ = try audit.append(
                    in: connection, tenant: tenant,
                    actor.event(
                        "privacy.request_retried", target: id.lowercasedString,
                        details: [
                            "request_id": .string(id.lowercasedString), "kind": .string(kind.rawValue),
                            "user_id": .string(try row.decode("subject")),
                        ]))
            }
        }
        return try await request(kind, tenant: tenant, id: id)
    }

    /// Claims one runnable request of `kind` — `pending`, or `processing` but abandoned (not
    /// touched for the lease) — with `SELECT … FOR UPDATE SKIP LOCKED`, so several workers share
    /// the queue; marks it `processing`. A candidate the privacy service did not file and confirm
    /// (``start(_:_:tenant:id:)``) is marked `failed`, audited, and skipped. Nil when there is
    /// nothing to do.
    public func claimNext(_ kind: RequestKind) async throws -> (tenant: UUID, id: UUID)? {
        let lease = configuration.leaseSeconds
        while true {
            // The one cross-tenant read: ids of runnable requests (privacy.runnable_requests, a
            // SECURITY DEFINER function that returns nothing else). Each is then locked and checked
            // under RLS with its own tenant set.
            let candidates: [(tenant: UUID, id: UUID)] = try await run(tenant: nil) { connection in
                try connection.query("SELECT tenant_id, id FROM privacy.runnable_requests($1, $2, 16)", [kind.rawValue, lease]).rows.map {
                    (try $0.decode("tenant_id"), try $0.decode("id"))
                }
            }
            guard !candidates.isEmpty else { return nil }
            var refusedAny = false
            for candidate in candidates {
                let outcome: Bool? = try await run(tenant: candidate.tenant) { connection in
                    try connection.transaction { connection in
                        guard
                            try connection.query(
                                """
                                SELECT id FROM \(kind.table)
                                WHERE tenant_id = $1 AND id = $2
                                  AND (status = 'pending' OR (status = 'processing' AND updated_at < now() - make_interval(secs => $3))
                                       OR (status = 'requires_input' AND NOT EXISTS (
                                           SELECT 1 FROM privacy.tenant_processor_calls c
                                           WHERE c.request_id = $2 AND c.outcome IS NULL AND c.deadline_at > now())))
                                FOR UPDATE SKIP LOCKED
                                """, [candidate.tenant, candidate.id, lease]
                            ).first != nil
                        else { return nil }  // taken by another worker meanwhile
                        if case .refused = try self.start(kind, connection, tenant: candidate.tenant, id: candidate.id) { return false }
                        return true
                    }
                }
                if outcome == true { return candidate }
                if outcome == false { refusedAny = true }
            }
            // Every candidate was taken by another worker: nothing left for this one now.
            if !refusedAny { return nil }
        }
    }

    /// Marks the request `processing` for this run, from `pending` or from a `processing` left by a
    /// killed process (re-running it is safe: every step is idempotent). Returns the subject and
    /// the request time.
    ///
    /// - Throws: ``PrivacyError/Code/refused`` (after marking the request `failed`, audited) when
    ///   the privacy service did not file and confirm it.
    func begin(_ kind: RequestKind, _ connection: borrowing Connection, tenant: UUID, id: UUID) throws -> (
        subject: UUID, requestedAt: String
    ) {
        let outcome = try connection.transaction { connection in
            guard
                try connection.query(
                    "SELECT status FROM \(kind.table) WHERE tenant_id = $1 AND id = $2 FOR UPDATE", [tenant, id]
                ).first != nil
            else { throw PrivacyError(.notFound, "no \(kind.rawValue) request \(id.lowercasedString) in this tenant") }
            return try self.start(kind, connection, tenant: tenant, id: id)
        }
        switch outcome {
        case .started(let subject, let requestedAt): return (subject, requestedAt)
        case .refused(let reason): throw PrivacyError(.refused, reason)
        }
    }

    enum StartOutcome {
        case started(subject: UUID, requestedAt: String)
        case refused(reason: String)
    }

    /// The audit entries that prove the privacy service filed a request of `kind` (and, for an
    /// erasure, that the subject confirmed its plan), and those that forbid running it.
    static func provenance(_ kind: RequestKind) -> (required: [String], forbidden: [String]) {
        switch kind {
        case .export:
            return (["privacy.export_requested"], ["privacy.export_completed"])
        case .deletion:
            return (
                ["privacy.deletion_requested", "privacy.deletion_confirmed"],
                ["privacy.deletion_canceled", "privacy.deletion_completed"]
            )
        }
    }

    /// Starts the locked request `id` (inside the caller's transaction): checks that the tenant's
    /// audit chain holds the entries only the privacy service writes for this request id and
    /// subject (``provenance(_:)``) — a row written any other way, e.g. inserted or re-queued
    /// through `/rest/v1`, has none — then marks it `processing`. An erasure starting from
    /// `pending` gets an empty `result`: counts come only from what this eraser does, never from
    /// what the row held before. A request that fails the check is marked `failed` with a reason
    /// and the refusal audited; it is never run.
    func start(_ kind: RequestKind, _ connection: borrowing Connection, tenant: UUID, id: UUID) throws -> StartOutcome {
        let row = try connection.query(
            "SELECT status, user_id FROM \(kind.table) WHERE tenant_id = $1 AND id = $2", [tenant, id]
        ).first!
        let status: String = try row.decode("status")
        let subject: UUID = try row.decode("user_id")
        // requires_input: an erasure resumed after its processors answered (or their deadline passed).
        guard status == "pending" || status == "processing" || status == "requires_input" else {
            throw PrivacyError(.invalidState, "the request is \(status), not pending")
        }
        let (required, forbidden) = Self.provenance(kind)
        // A required entry counts only with its proof: an HMAC under a key derived from the root
        // key, which never enters the database. Whoever can write audit rows (the gateway's login)
        // can chain well-formed entries, but not these.
        var found = Set<String>()
        for row in try connection.query(
            """
            SELECT action, details->>'proof' AS proof FROM public.audit_events
            WHERE tenant_id = $1 AND action = ANY(string_to_array($2, ',')) AND outcome = 'success'
              AND target = $3 AND details->>'request_id' = $3 AND details->>'user_id' = $4
            """, [tenant, (required + forbidden).joined(separator: ","), id.lowercasedString, subject.lowercasedString]
        ).rows {
            let action: String = try row.decode("action")
            if forbidden.contains(action) {
                found.insert(action)
            } else if let proof = try row.decodeIfPresent("proof", as: String.self),
                ConstantTime.equals(Array(proof.utf8), Array(provenanceProof(action, tenant: tenant, id: id, subject: subject).utf8))
            {
                found.insert(action)
            }
        }
        var reason: String?
        if let missing = required.first(where: { !found.contains($0) }) {
            reason = "refused: the request was not filed and confirmed through the privacy service (no \(missing) audit entry)"
        } else if let closed = forbidden.first(where: { found.contains($0) }) {
            reason = "refused: the request was already closed (\(closed) audit entry)"
        }
        if let reason {
            try connection.query(
                "UPDATE \(kind.table) SET status = 'failed', status_reason = $2 WHERE id = $1", [id, reason])
            _ = try audit.append(
                in: connection, tenant: tenant,
                AuditEvent(
                    actor: "privacy-worker", action: "privacy.request_refused", target: id.lowercasedString, outcome: .denied,
                    details: [
                        "request_id": .string(id.lowercasedString), "kind": .string(kind.rawValue),
                        "user_id": .string(subject.lowercasedString), "reason": .string(reason),
                    ]))
            return .refused(reason: reason)
        }
        // A first run starts counting from nothing; a resumed or retried one (started before) keeps its batches' counts.
        let reset =
            kind == .deletion
            ? ", result = CASE WHEN status = 'pending' AND started_at IS NULL THEN '{\"tables\": {}}'::jsonb ELSE coalesce(result, '{\"tables\": {}}'::jsonb) END"
            : ""
        let updated = try connection.query(
            "UPDATE \(kind.table) SET status = 'processing', started_at = coalesce(started_at, now())\(reset) "
                + "WHERE id = $1 RETURNING \(PrivacyRequest.timestamp("requested_at"))", [id]
        ).first!
        return .started(subject: subject, requestedAt: try updated.decode("requested_at"))
    }

    /// The proof a provenance entry (``provenance(_:)``) carries: HMAC-SHA-256, under the service's
    /// token key (derived from the root key), of the action, tenant, request and subject.
    func provenanceProof(_ action: String, tenant: UUID, id: UUID, subject: UUID) -> String {
        let message =
            "pgw.dsr-provenance.v1\u{0}\(action)\u{0}\(tenant.lowercasedString)\u{0}\(id.lowercasedString)\u{0}\(subject.lowercasedString)"
        return Hex.encode(HMACSHA256.authenticate(Array(message.utf8), key: tokenKey))
    }

    /// Records a failure (status `failed`, with a reason that carries no personal data).
    public func fail(_ kind: RequestKind, tenant: UUID, id: UUID, reason: String) async throws {
        let reason = String(reason.prefix(500))
        try await run(tenant: tenant) { connection in
            _ = try connection.query(
                "UPDATE \(kind.table) SET status = 'failed', status_reason = $3 WHERE tenant_id = $1 AND id = $2 AND status = 'processing'",
                [tenant, id, reason])
        }
    }

    /// The open request of `kind` for the subject, if any (the newest); with `within`, only one filed that recently.
    func openRequest(_ kind: RequestKind, _ connection: borrowing Connection, tenant: UUID, subject: UUID, within: Duration? = nil) throws
        -> (id: UUID, status: String)?
    {
        guard
            let row = try connection.query(
                "SELECT id, status FROM \(kind.table) WHERE tenant_id = $1 AND user_id = $2 AND status IN \(PrivacyRequest.openStatuses) "
                    + "AND ($3::bigint IS NULL OR requested_at > now() - make_interval(secs => $3::bigint)) AND duplicate_of IS NULL "
                    + "ORDER BY requested_at DESC LIMIT 1",
                [tenant, subject, within.map { $0.components.seconds }]
            ).first
        else { return nil }
        return (try row.decode("id"), try row.decode("status"))
    }

    /// Inside the filing's transaction: when an open request of `kind` for the subject was filed
    /// within ``PrivacyConfiguration/duplicateWindow``, records this filing as a duplicate linked
    /// to it (`duplicate_of`), closed at once (`canceled`, so it is never run: the original is) and
    /// audited `privacy.request_duplicate`. Returns the original and the duplicate's id, or nil
    /// (no open request that recent: file a new one). Never across tenants: both rows are the
    /// tenant's, under its policy.
    func linkDuplicate(_ kind: RequestKind, _ connection: borrowing Connection, tenant: UUID, subject: UUID, actor: PrivacyActor) throws
        -> (original: UUID, duplicate: UUID)?
    {
        guard let open = try openRequest(kind, connection, tenant: tenant, subject: subject, within: configuration.duplicateWindow) else {
            return nil
        }
        let duplicate: UUID = try connection.query(
            "INSERT INTO \(kind.table) (tenant_id, user_id, status, duplicate_of) VALUES ($1, $2, 'received', $3) RETURNING id",
            [tenant, subject, open.id]
        ).first!.decode("id")
        try connection.query(
            "UPDATE \(kind.table) SET status = 'canceled', status_reason = $2 WHERE id = $1",
            [duplicate, "duplicate of \(open.id.lowercasedString) (filed within the duplicate window; that request runs)"])
        _ = try audit.append(
            in: connection, tenant: tenant,
            actor.event(
                "privacy.request_duplicate", target: duplicate.lowercasedString,
                details: [
                    "request_id": .string(duplicate.lowercasedString), "duplicate_of": .string(open.id.lowercasedString),
                    "kind": .string(kind.rawValue), "user_id": .string(subject.lowercasedString),
                ]))
        return (open.id, duplicate)
    }
}

/// One kind's queue, for the gateway's gauges: open requests, open ones past their due date, and
/// open ones that made no progress for the stuck threshold (not those awaiting the subject).
public struct QueueFigures: Sendable, Equatable {
    public let kind: RequestKind
    public var open: Int
    public var overdue: Int
    public var stuck: Int

    public init(kind: RequestKind, open: Int = 0, overdue: Int = 0, stuck: Int = 0) {
        self.kind = kind
        self.open = open
        self.overdue = overdue
        self.stuck = stuck
    }
}
