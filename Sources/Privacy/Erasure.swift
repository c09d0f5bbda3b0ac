import Audit
import Foundation
import Keyring
import Policy
import Postgres
import Sodium

/// The dry run of an erasure: what each table will do with the subject's rows.
public struct DeletionPlan: Codable, Sendable, Equatable {
    public struct Table: Codable, Sendable, Equatable {
        public let table: String
        public let strategy: String
        public let rows: Int64
        public let ground: String?
    }
    public let policyVersion: String
    /// Children before parents: the order erasure runs in.
    public let tables: [Table]

    enum CodingKeys: String, CodingKey {
        case tables
        case policyVersion = "policy_version"
    }
}

/// A deletion request with its plan and, once done, its certificate.
public struct DeletionStatus: Codable, Sendable {
    public let request: PrivacyRequest
    public let plan: DeletionPlan?
    public let certificate: DeletionCertificate?
    /// This filing, when it duplicated the open ``request`` (linked to it and closed, never run).
    public var duplicate: PrivacyRequest? = nil
    /// The processors' part (absent when the tenant has none): who was called, who answered what, and when.
    public var processors: [ProcessorOutcome]? = nil
}

/// What one erasure run did (for progress and the benchmark).
public struct ErasureRun: Sendable {
    public let certificate: DeletionCertificate
    /// The slowest batch of this run.
    public let longestBatch: Duration
    public let batches: Int
}

extension PrivacyService {
    static func strategyName(_ strategy: ErasureStrategy) -> String {
        switch strategy {
        case .delete: return "delete"
        case .anonymize: return "anonymize"
        case .retain: return "retain"
        }
    }

    static func ground(_ strategy: ErasureStrategy) -> String? {
        if case .retain(let basis, let until) = strategy { return "\(basis) (until \(until))" }
        return nil
    }

    /// Counts the subject's rows per table, children first, in one snapshot.
    public func plan(tenant: UUID, subject: UUID) async throws -> DeletionPlan {
        try await run(tenant: tenant) { connection in
            try connection.transaction(isolation: .repeatableRead) { try self.plan($0, tenant: tenant, subject: subject) }
        }
    }

    func plan(_ connection: borrowing Connection, tenant: UUID, subject: UUID) throws -> DeletionPlan {
        var tables: [DeletionPlan.Table] = []
        for node in graph.nodes {
            let strategy = node.rules?.erasure ?? .delete
            let count = try connection.query(
                "SELECT count(*) AS n FROM \(node.table.quotedName) t0 WHERE \(try graph.predicate(node.table, tenant: "$1", subject: "$2"))",
                [tenant, subject]
            ).first!.decode("n", as: Int64.self)
            tables.append(
                .init(table: node.qualifiedName, strategy: Self.strategyName(strategy), rows: count, ground: Self.ground(strategy)))
        }
        return DeletionPlan(policyVersion: configuration.policyVersion, tables: tables)
    }

    /// Files an erasure request for the subject and returns it with its dry-run plan
    /// (`awaiting_confirmation`). An open request of the subject filed within the duplicate window
    /// is returned instead, with this filing linked to it as a closed duplicate. `resumingOpen`: any
    /// open erasure of the subject is returned as it is (privacyctl resuming an interrupted run).
    public func requestDeletion(tenant: UUID, subject: UUID, actor: PrivacyActor, resumingOpen: Bool = false) async throws -> DeletionStatus
    {
        let audit = self.audit
        let (id, duplicate): (UUID, UUID?) = try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                // Serialise filers on the subject's registry row.
                _ = try connection.query("SELECT 1 FROM auth.users WHERE tenant_id = $1 AND id = $2 FOR UPDATE", [tenant, subject])
                if resumingOpen, let open = try self.openRequest(.deletion, connection, tenant: tenant, subject: subject) {
                    return (open.id, nil)
                }
                if let linked = try self.linkDuplicate(.deletion, connection, tenant: tenant, subject: subject, actor: actor) {
                    return (linked.original, linked.duplicate)
                }
                let plan = try self.plan(connection, tenant: tenant, subject: subject)
                let row = try connection.query(
                    "INSERT INTO public.data_deletion_requests (tenant_id, user_id, status, identity_verified_at, plan) "
                        + "VALUES ($1, $2, 'awaiting_confirmation', now(), $3) RETURNING id",
                    [tenant, subject, try PostgresJSON(encoding: plan)]
                ).first!
                let id: UUID = try row.decode("id")
                _ = try audit.append(
                    in: connection, tenant: tenant,
                    actor.event(
                        "privacy.deletion_requested", target: id.lowercasedString,
                        details: [
                            "request_id": .string(id.lowercasedString), "user_id": .string(subject.lowercasedString),
                            "tables": .int(Int64(plan.tables.count)), "rows": .int(plan.tables.reduce(0) { $0 + $1.rows }),
                            "proof": .string(self.provenanceProof("privacy.deletion_requested", tenant: tenant, id: id, subject: subject)),
                        ]))
                return (id, nil)
            }
        }
        var status = try await deletionStatus(tenant: tenant, id: id)
        if let duplicate { status.duplicate = try await request(.deletion, tenant: tenant, id: duplicate) }
        return status
    }

    public func deletionStatus(tenant: UUID, id: UUID, subject: UUID? = nil) async throws -> DeletionStatus {
        let request = try await self.request(.deletion, tenant: tenant, id: id, subject: subject)
        let row = try await run(tenant: tenant) { connection in
            try connection.query(
                "SELECT plan::text AS plan, certificate::text AS certificate FROM public.data_deletion_requests WHERE tenant_id = $1 AND id = $2",
                [tenant, id]
            ).first!
        }
        let plan = try row.decodeIfPresent("plan", as: String.self).map { try JSONDecoder().decode(DeletionPlan.self, from: Data($0.utf8)) }
        let certificate = try row.decodeIfPresent("certificate", as: String.self).map(DeletionCertificate.decode(json:))
        let processors = try await processorOutcomes(tenant: tenant, id: id)
        return DeletionStatus(request: request, plan: plan, certificate: certificate, processors: processors.isEmpty ? nil : processors)
    }

    /// Confirms the plan: the request becomes `pending` for a worker (or ``processDeletion``).
    /// Confirming again is a no-op.
    public func confirmDeletion(tenant: UUID, id: UUID, subject: UUID? = nil, actor: PrivacyActor) async throws -> DeletionStatus {
        let audit = self.audit
        let proof = { @Sendable (owner: UUID) in self.provenanceProof("privacy.deletion_confirmed", tenant: tenant, id: id, subject: owner)
        }
        try await transition(
            .deletion, tenant: tenant, id: id, subject: subject, from: ["awaiting_confirmation"],
            alreadyDone: ["pending", "processing", "completed", "partially_completed"],
            set: "status = 'pending', confirmed_at = now()"
        ) { connection, owner in
            _ = try audit.append(
                in: connection, tenant: tenant,
                actor.event(
                    "privacy.deletion_confirmed", target: id.lowercasedString,
                    details: [
                        "request_id": .string(id.lowercasedString), "user_id": .string(owner.lowercasedString),
                        "proof": .string(proof(owner)),
                    ]))
        }
        return try await deletionStatus(tenant: tenant, id: id)
    }

    /// Cancels the request while processing has not started.
    public func cancelDeletion(tenant: UUID, id: UUID, subject: UUID? = nil, actor: PrivacyActor) async throws -> DeletionStatus {
        let audit = self.audit
        try await transition(
            .deletion, tenant: tenant, id: id, subject: subject,
            from: ["received", "identity_verified", "pending", "on_hold", "awaiting_confirmation"],
            alreadyDone: ["canceled"], set: "status = 'canceled', canceled_at = now()"
        ) { connection, owner in
            _ = try audit.append(
                in: connection, tenant: tenant,
                actor.event(
                    "privacy.deletion_canceled", target: id.lowercasedString,
                    details: ["request_id": .string(id.lowercasedString), "user_id": .string(owner.lowercasedString)]))
        }
        return try await deletionStatus(tenant: tenant, id: id)
    }

    /// Moves a request between states under a row lock, auditing in the same transaction.
    func transition(
        _ kind: RequestKind, tenant: UUID, id: UUID, subject: UUID?, from: [String], alreadyDone: [String], set: String,
        audit: @escaping @Sendable (borrowing Connection, UUID) throws -> Void
    ) async throws {
        try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                guard
                    let row = try connection.query(
                        "SELECT status, user_id FROM \(kind.table) WHERE tenant_id = $1 AND id = $2 AND ($3::uuid IS NULL OR user_id = $3::uuid) FOR UPDATE",
                        [tenant, id, subject.map { $0.lowercasedString } as String?]
                    ).first
                else { throw PrivacyError(.notFound, "no \(kind.rawValue) request \(id.lowercasedString) in this tenant") }
                let status: String = try row.decode("status")
                if alreadyDone.contains(status) { return }
                guard from.contains(status) else { throw PrivacyError(.invalidState, "the request is \(status)") }
                try connection.query("UPDATE \(kind.table) SET \(set) WHERE id = $1", [id])
                try audit(connection, try row.decode("user_id"))
            }
        }
    }

    // MARK: - Running an erasure

    /// Runs a confirmed (or interrupted) erasure to the end and returns its certificate:
    /// children before parents, in batches under the statement timeout, each batch committed with
    /// its count; then, in one transaction, the subject key is shredded, the subject's registry
    /// row removed, the verification pass run, the completion audited and the signed certificate
    /// stored. Then the certificate gets the inclusion proof of its erasure entry in a signed
    /// checkpoint (``attachErasureProof(tenant:id:certificate:signingKey:)``). Killed at any point,
    /// running it again finishes with the same end state and counts, and the same certificate.
    @discardableResult
    public func processDeletion(
        tenant: UUID, id: UUID, progress: (@Sendable (PrivacyProgress) -> Void)? = nil
    ) async throws -> ErasureRun {
        guard let signingKey else {
            throw PrivacyError(.invalidState, "no signing key: erasure needs PRIVACY_SIGNING_KEY_FILE to sign its certificate")
        }
        let erased = try await erase(tenant: tenant, id: id, signingKey: signingKey, progress: progress)
        let certificate = try await attachErasureProof(tenant: tenant, id: id, certificate: erased.certificate, signingKey: signingKey)
        return ErasureRun(certificate: certificate, longestBatch: erased.longestBatch, batches: erased.batches)
    }

    /// The erasure up to its committed, signed certificate (without its audit proof): what a
    /// process killed before ``attachErasureProof(tenant:id:certificate:signingKey:)`` leaves.
    func erase(
        tenant: UUID, id: UUID, signingKey: Ed25519.SigningKey, progress: (@Sendable (PrivacyProgress) -> Void)? = nil
    ) async throws -> ErasureRun {
        let graph = self.graph
        let configuration = self.configuration
        let audit = self.audit
        return try await run(tenant: tenant) { connection in
            if let existing = try Self.storedCertificate(connection, tenant: tenant, id: id) {
                return ErasureRun(certificate: existing, longestBatch: .zero, batches: 0)
            }
            let (subject, requestedAt) = try self.begin(.deletion, connection, tenant: tenant, id: id)
            // An erasure resumed after waiting for its processors did its tables already: they are not run
            // again (an anonymisation that keeps the subject column would hash its hmac columns twice).
            let progressRow = try connection.query(
                "SELECT coalesce((result->>'tables_done')::boolean, false) AS done, coalesce(result->'once', '{}')::text AS once "
                    + "FROM public.data_deletion_requests WHERE id = $1", [id]
            ).first!
            let tablesDone: Bool = try progressRow.decode("done")
            // Tables whose one-shot statement (an anonymisation that keeps the subject column: its rows keep
            // matching, so it runs once) committed in an earlier, interrupted run: running it again would
            // hash its hmac columns a second time (a hash of the hash), so a resumed erasure skips them.
            let onceJSON: String = try progressRow.decode("once")
            let doneOnce = Set(((try? JSONSerialization.jsonObject(with: Data(onceJSON.utf8))) as? [String: Any] ?? [:]).keys)
            // First the subject's export archives: their request rows go with the subject's other rows.
            if !tablesDone { try self.removeArchives(connection, tenant: tenant, subject: subject, erasure: id) }
            let clock = ContinuousClock()
            var longest = Duration.zero
            var batches = 0
            for (index, node) in graph.nodes.enumerated() where !tablesDone {
                let strategy = node.rules?.erasure ?? .delete
                guard let statement = try Self.batchStatement(node.table, strategy: strategy, graph: graph) else { continue }
                if !statement.batched && doneOnce.contains(node.qualifiedName) { continue }
                var done = 0
                while true {
                    let started = clock.now
                    let changed = try connection.transaction { connection -> Int in
                        let affected = try Self.runBatch(
                            connection, statement, tenant: tenant, subject: subject, batchSize: configuration.batchSize,
                            timeout: configuration.statementTimeout
                        ) { try Self.maskingKey(connection, keyring: self.keyring, tenant: tenant, subject: $0) }
                        if affected > 0 {
                            try connection.query(
                                """
                                UPDATE public.data_deletion_requests
                                SET result = jsonb_set(result, ARRAY['tables', $2], to_jsonb(coalesce((result #>> ARRAY['tables', $2])::bigint, 0) + $3))
                                WHERE id = $1
                                """, [id, node.qualifiedName, affected])
                        }
                        if !statement.batched {
                            // In the batch's own transaction: either both the rows and this mark commit, or neither.
                            try connection.query(
                                "UPDATE public.data_deletion_requests SET result = jsonb_set(result, '{once}', coalesce(result->'once', '{}') || jsonb_build_object($2::text, true)) WHERE id = $1",
                                [id, node.qualifiedName])
                        }
                        return affected
                    }
                    longest = max(longest, clock.now - started)
                    batches += 1
                    done += changed
                    progress?(PrivacyProgress(table: node.qualifiedName, tableIndex: index, tableCount: graph.nodes.count, rows: done))
                    if changed == 0 || !statement.batched { break }
                }
            }
            // Processors (data held elsewhere): each is called once; while any is still open the
            // subject's key and registration go now, and the certificate waits (requires_input).
            let waiting = try connection.transaction { connection -> Int in
                let open = try self.registerProcessorCalls(connection, tenant: tenant, kind: .deletion, id: id, subject: subject)
                guard open > 0 else { return 0 }
                let shredded = try self.forgetSubject(connection, tenant: tenant, id: id, subject: subject, audit: audit)
                try connection.query(
                    """
                    UPDATE public.data_deletion_requests
                    SET status = 'requires_input', status_reason = $2,
                        result = jsonb_set(jsonb_set(result, '{tables_done}', 'true'), '{subject_key_shredded}',
                                           to_jsonb(coalesce((result->>'subject_key_shredded')::boolean, false) OR $3::boolean))
                    WHERE id = $1
                    """, [id, "waiting for \(open) processor(s) to answer", shredded])
                return open
            }
            if waiting > 0 {
                throw PrivacyError(.awaitingInput, "the erasure waits for \(waiting) processor(s) to answer (requires_input)")
            }
            let certificate = try connection.transaction { connection in
                try self.finish(
                    connection, tenant: tenant, id: id, subject: subject, requestedAt: requestedAt,
                    signingKey: signingKey, audit: audit)
            }
            return ErasureRun(certificate: certificate, longestBatch: longest, batches: batches)
        }
    }

    /// Makes the certificate prove that its erasure was recorded: after the erasure committed,
    /// checkpoints the tenant's log unless a signed checkpoint already covers the erasure entry,
    /// then stores the inclusion proof of that entry in the first signed checkpoint covering it.
    ///
    /// Idempotent and resumable: a certificate that has its proof is returned as stored; the
    /// checkpoint chosen is always the first covering one (checkpoints are append-only), so a
    /// process killed between any two steps attaches the same proof when run again; concurrent
    /// runs store it once (the update only fills an empty `audit_proof`). The certificate's
    /// signature does not cover the proof, so it is unchanged. A proof that does not verify with
    /// the signing key (or a trusted earlier key) is never stored.
    func attachErasureProof(
        tenant: UUID, id: UUID, certificate: DeletionCertificate, signingKey: Ed25519.SigningKey
    ) async throws -> DeletionCertificate {
        if certificate.auditProof != nil { return certificate }
        let seq = certificate.auditHead.seq
        var proof = try await AuditProofs.inclusionInFirstCovering(pool: pool, tenant: tenant, seq: seq)
        if proof == nil {
            // On the pool's own login (outside ``run``): checkpoints are the gateway's, not the worker's.
            let checkpointer = AuditCheckpointer(pool: pool, signingKey: signingKey, trustedKeys: configuration.auditTrustedKeys)
            // A concurrent checkpointer may have signed a head before the entry; its checkpoint
            // stands and the next round covers the entry.
            for _ in 0..<3 where proof == nil {
                _ = try await checkpointer.checkpoint(tenant: tenant)
                proof = try await AuditProofs.inclusionInFirstCovering(pool: pool, tenant: tenant, seq: seq)
            }
        }
        guard let proof else {
            throw PrivacyError(
                .invalidState,
                "no signed checkpoint covers the erasure's audit entry \(seq) yet; run the deletion again to attach its proof")
        }
        var attached = certificate
        attached.auditProof = proof
        do {
            try attached.verifyOffline(publicKeys: [signingKey.publicKey] + configuration.auditTrustedKeys.values)
        } catch let error as PrivacyError {
            throw PrivacyError(.verificationFailed, "the erasure's audit proof was not attached: \(error.message)")
        }
        let json = String(decoding: try Self.canonicalJSON(attached), as: UTF8.self)
        return try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                try connection.query(
                    """
                    UPDATE public.data_deletion_requests SET certificate = $3
                    WHERE tenant_id = $1 AND id = $2 AND certificate IS NOT NULL AND certificate->'audit_proof' IS NULL
                    """, [tenant, id, PostgresJSON(json)])
                guard let stored = try Self.storedCertificate(connection, tenant: tenant, id: id) else {
                    throw PrivacyError(.invalidState, "the deletion request \(id.lowercasedString) has no certificate")
                }
                return stored
            }
        }
    }

    /// Attaches the audit proof to completed erasures' certificates that lack it (a process that
    /// died after the erasure committed, or a certificate issued before proofs were attached), up
    /// to `limit` per tenant; one that fails (no checkpoint can be signed yet) is left for the next
    /// round and does not stop the others. For the worker's periodic sweep. Returns how many were
    /// attached and how many failed.
    public func attachMissingErasureProofs(limit: Int = 20) async throws -> (attached: Int, failed: Int) {
        guard let signingKey else { return (0, 0) }
        let tenants: [UUID] = try await run(tenant: nil) { connection in
            try connection.query("SELECT id FROM public.tenants ORDER BY id").rows.map { try $0.decode("id") }
        }
        var attached = 0
        var failed = 0
        for tenant in tenants {
            let pending: [DeletionCertificate] = try await run(tenant: tenant) { connection in
                try connection.query(
                    """
                    SELECT certificate::text AS c FROM public.data_deletion_requests
                    WHERE tenant_id = $1 AND status IN ('completed', 'partially_completed')
                      AND certificate IS NOT NULL AND certificate->'audit_proof' IS NULL
                    ORDER BY completed_at LIMIT $2
                    """, [tenant, limit]
                ).rows.map { try DeletionCertificate.decode(json: try $0.decode("c", as: String.self)) }
            }
            for certificate in pending {
                guard let id = UUID(uuidString: certificate.requestID) else { failed += 1; continue }
                do {
                    _ = try await attachErasureProof(tenant: tenant, id: id, certificate: certificate, signingKey: signingKey)
                    attached += 1
                } catch {
                    failed += 1
                }
            }
        }
        return (attached, failed)
    }

    static func storedCertificate(_ connection: borrowing Connection, tenant: UUID, id: UUID) throws -> DeletionCertificate? {
        guard
            let row = try connection.query(
                "SELECT certificate::text AS c FROM public.data_deletion_requests WHERE tenant_id = $1 AND id = $2", [tenant, id]
            ).first
        else { throw PrivacyError(.notFound, "no deletion request \(id.lowercasedString) in this tenant") }
        return try row.decodeIfPresent("c", as: String.self).map(DeletionCertificate.decode(json:))
    }

    /// The statement that erases one batch (`$1` tenant, `$2` subject, `$3` batch size, then the
    /// masking's `values`), or nil for a retained table. `batched` is false when the statement does
    /// not make its rows stop matching the subject (an anonymisation that keeps the subject column),
    /// so it runs once. With `hmac` columns (`masking.keyed`), run it with ``runBatch(_:_:tenant:subject:batchSize:timeout:key:)``:
    /// the rows are selected, their keyed hashes computed here, and written back as bound values.
    static func batchStatement(_ table: TablePolicy, strategy: ErasureStrategy, graph: SubjectGraph) throws -> ErasureStatement? {
        let predicate = try graph.predicate(table, tenant: "$1", subject: "$2")
        switch strategy {
        case .retain:
            return nil
        case .delete:
            let victims = "ctid = ANY(ARRAY(SELECT t0.ctid FROM \(table.quotedName) t0 WHERE \(predicate) LIMIT $3))"
            return ErasureStatement(sql: "DELETE FROM \(table.quotedName) WHERE \(victims)", batched: true, masking: nil, filter: predicate)
        case .anonymize(let columns):
            let masking = try Masking(table, columns: columns)
            var clearsSubject = false
            if case .column(let subjectColumn)? = table.subject {
                clearsSubject = columns.contains { $0.column == subjectColumn && $0.method == .null }
            }
            let rows =
                clearsSubject
                ? "ctid = ANY(ARRAY(SELECT t0.ctid FROM \(table.quotedName) t0 WHERE \(predicate) LIMIT $3))"
                : "ctid = ANY(ARRAY(SELECT t0.ctid FROM \(table.quotedName) t0 WHERE \(predicate) AND $3::int > 0))"
            return ErasureStatement(
                sql: "UPDATE \(table.quotedName) SET \(masking.assignments(firstParameter: 4)) WHERE \(rows)",
                batched: clearsSubject, masking: masking,
                filter: clearsSubject ? "\(predicate) LIMIT $3" : "\(predicate) AND $3::int > 0")
        }
    }

    /// Runs one batch of `statement` for the subject inside the caller's transaction; returns the rows changed.
    /// `key` gives the `hmac` key of a subject (called only when the table has `hmac` columns).
    static func runBatch(
        _ connection: borrowing Connection, _ statement: ErasureStatement, tenant: UUID, subject: UUID, batchSize: Int,
        timeout: Duration, key: (UUID) throws -> SecureBytes
    ) throws -> Int {
        guard let masking = statement.masking, !masking.keyed.isEmpty else {
            let binds: [any PostgresEncodable] = [tenant, subject, batchSize] + (statement.masking?.parameters ?? [])
            return try connection.pipeline([Statement(statement.sql, binds)], timeout: timeout)[0].affectedRows
        }
        return try masking.runKeyed(
            connection, filter: statement.filter, binds: [tenant, subject, batchSize], subject: nil,
            fixedSubject: subject, timeout: timeout, key: key)
    }

    /// The `hmac` key of one subject. Derived from the subject's data key (the keyring's DEK,
    /// made on first use), not the tenant's: erasure shreds exactly that key, so afterwards nobody
    /// — not the tenant, not an operator holding the root key — can recompute a value's hash
    /// and test a guess against the anonymised rows. A tenant key would stay alive and keep every
    /// hash open to a dictionary attack by whoever holds it. The key only ever lives here: the
    /// database sees the finished hashes, never the key.
    static func maskingKey(_ connection: borrowing Connection, keyring: Keyring?, tenant: UUID, subject: UUID) throws -> SecureBytes {
        guard let keyring else {
            throw PrivacyError(.invalidState, "hmac masking needs the keyring (the subject's data key keys the hash)")
        }
        let dek = try asLogin(connection) { try keyring.subjectKey(tenant, user: subject, create: true, in: connection)! }
        return try KeyDerivation.subkey(from: dek, id: 1, context: "maskhmac")
    }

    /// The last transaction of an erasure.
    func finish(
        _ connection: borrowing Connection, tenant: UUID, id: UUID, subject: UUID, requestedAt: String,
        signingKey: Ed25519.SigningKey, audit: AuditAppender
    ) throws -> DeletionCertificate {
        let locked = try connection.query(
            "SELECT status, result::text AS result FROM public.data_deletion_requests WHERE id = $1 FOR UPDATE", [id]
        ).first!
        if let stored = try Self.storedCertificate(connection, tenant: tenant, id: id) { return stored }
        // Done already, and recorded in `result`, when the erasure waited for its processors.
        let shreddedBefore = try connection.query(
            "SELECT coalesce((result->>'subject_key_shredded')::boolean, false) AS s FROM public.data_deletion_requests WHERE id = $1", [id]
        ).first!.decode("s", as: Bool.self)
        let shredded = try forgetSubject(connection, tenant: tenant, id: id, subject: subject, audit: audit) || shreddedBefore
        let processors = try closeProcessorCalls(connection, tenant: tenant, id: id, audit: audit)
        let unconfirmed = processors.filter { $0.required && $0.outcome != "confirmed" }.map(\.name)

        // Verification: nothing of the subject outside retained tables, the key unusable, the subject unregistered.
        var remaining: [String: Int64] = [:]
        var tables: [DeletionCertificate.Table] = []
        // `result` holds only what this erasure did: ``start(_:_:tenant:id:)`` empties it when the run begins.
        let done = try JSONSerialization.jsonObject(with: Data(try locked.decode("result", as: String.self).utf8)) as? [String: Any]
        let counts = (done?["tables"] as? [String: Any]) ?? [:]
        let archives = ((done?["archives_removed"] as? [String]) ?? []).sorted()
        for node in graph.nodes {
            let strategy = node.rules?.erasure ?? .delete
            let left = try connection.query(
                "SELECT count(*) AS n FROM \(node.table.quotedName) t0 WHERE \(try graph.predicate(node.table, tenant: "$1", subject: "$2"))",
                [tenant, subject]
            ).first!.decode("n", as: Int64.self)
            if case .retain = strategy {
                tables.append(.init(table: node.qualifiedName, strategy: "retain", rows: left, ground: Self.ground(strategy)))
            } else {
                if left > 0 { remaining[node.qualifiedName] = left }
                let changed = (counts[node.qualifiedName] as? NSNumber)?.int64Value ?? 0
                tables.append(.init(table: node.qualifiedName, strategy: Self.strategyName(strategy), rows: changed, ground: nil))
            }
        }
        let key = try Self.asLogin(connection) {
            try connection.query(
                "SELECT destroyed_at IS NOT NULL AS destroyed FROM keyring.subject_keys WHERE tenant_id = $1 AND user_id = $2",
                [tenant, subject]
            ).first
        }
        let keyState = try key.map { try $0.decode("destroyed", as: Bool.self) ? "destroyed" : "present" } ?? "absent"
        let registered =
            try connection.query(
                "SELECT count(*) AS n FROM auth.users WHERE tenant_id = $1 AND id = $2", [tenant, subject]
            ).first!.decode("n", as: Int64.self) > 0
        let passed = remaining.isEmpty && keyState != "present" && !registered
        let verification = DeletionCertificate.Verification(
            passed: passed, remaining: remaining, subjectKey: keyState, subjectRegistered: registered)

        var details: [String: AuditValue] = [
            "request_id": .string(id.lowercasedString), "user_id": .string(subject.lowercasedString), "verified": .bool(passed),
            "subject_key_shredded": .bool(shredded),
        ]
        details["tables"] = .object(Dictionary(uniqueKeysWithValues: tables.map { ($0.table, AuditValue.int($0.rows)) }))
        details["archives_removed"] = .int(Int64(archives.count))
        if !processors.isEmpty {
            details["processors"] = .object(
                Dictionary(uniqueKeysWithValues: processors.map { ($0.name, AuditValue.string($0.outcome ?? "open")) }))
        }
        let complete = passed && unconfirmed.isEmpty
        let receipt = try audit.append(
            in: connection, tenant: tenant,
            AuditEvent(
                actor: "privacy-erasure", action: "privacy.deletion_completed", target: id.lowercasedString,
                outcome: passed ? .success : .failure, details: details))
        let completedAt = try connection.query(
            "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS t"
        ).first!.decode("t", as: String.self)
        let certificate = try DeletionCertificate(
            requestID: id.lowercasedString, tenant: tenant.lowercasedString, subject: subject.lowercasedString,
            policyVersion: configuration.policyVersion, requestedAt: requestedAt, completedAt: completedAt,
            tables: tables, verification: verification,
            auditHead: .init(seq: receipt.seq, hash: Hex.encode(receipt.hash)),
            keyID: Hex.encode(SHA256.hash(signingKey.publicKey)), publicKey: Hex.encode(signingKey.publicKey),
            archivesRemoved: archives, processors: processors.isEmpty ? nil : processors,
            outcome: complete ? "completed" : "partially_completed", signature: nil
        ).signed(with: signingKey)
        try connection.query(
            """
            UPDATE public.data_deletion_requests
            SET status = $2, completed_at = now(), certificate = $3, certificate_signature = $4,
                result = jsonb_set(result, '{verification}', $5::jsonb), status_reason = $6
            WHERE id = $1
            """,
            [
                id, complete ? "completed" : "partially_completed",
                PostgresJSON(String(decoding: try Self.canonicalJSON(certificate), as: UTF8.self)),
                Hex.decode(certificate.signature!)!, PostgresJSON(String(decoding: try Self.canonicalJSON(verification), as: UTF8.self)),
                !passed
                    ? "verification found subject rows left"
                    : unconfirmed.isEmpty
                        ? nil as String?
                        : "required processor(s) did not confirm by the deadline: " + unconfirmed.joined(separator: ", "),
            ])
        return certificate
    }

    /// Shreds the subject's key and removes their registration (audited `keys.subject_shredded`
    /// when a key was destroyed); idempotent. Returns whether this call destroyed a key.
    func forgetSubject(_ connection: borrowing Connection, tenant: UUID, id: UUID, subject: UUID, audit: AuditAppender) throws -> Bool {
        // The keyring is the login's: the privacy worker never touches wrapped keys.
        let shredded = try Self.asLogin(connection) { try Keyring.shredSubjectKey(tenant, user: subject, in: connection) }
        try connection.query("DELETE FROM auth.users WHERE tenant_id = $1 AND id = $2", [tenant, subject])
        if shredded {
            _ = try audit.append(
                in: connection, tenant: tenant,
                AuditEvent(
                    actor: "privacy-erasure", action: "keys.subject_shredded", target: id.lowercasedString,
                    details: ["user_id": .string(subject.lowercasedString)]))
        }
        return shredded
    }
}
