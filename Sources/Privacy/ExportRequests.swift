import Audit
import Foundation
import Keyring
import Postgres
import Sodium

/// An export request with its manifest once done.
public struct ExportStatus: Codable, Sendable {
    public let request: PrivacyRequest
    public let manifest: ExportManifest?
    /// The archive is still in the export directory, waiting for its one download.
    public let archiveAvailable: Bool
    /// This filing, when it duplicated the open ``request`` (linked to it and closed, never run).
    public var duplicate: PrivacyRequest? = nil
    /// The `export_required` processors' part (nil when none was called): each with its outcome.
    public var processors: [ProcessorOutcome]? = nil

    enum CodingKeys: String, CodingKey {
        case request, manifest, duplicate, processors
        case archiveAvailable = "archive_available"
    }
}

/// A redeemed download: the archive, opened and already removed from the export directory
/// (the open file is all that is left of it), decrypted chunk by chunk as it is read.
public struct ExportDownload: Sendable {
    public let tenant: UUID
    public let reader: ArchiveEncryption.AtRestReader
}

extension PrivacyService {
    /// Files an export request (`pending`, for a worker or ``processExport``). An open export of
    /// the subject filed within the duplicate window is returned instead, with this filing linked
    /// to it as a closed duplicate (``linkDuplicate(_:_:tenant:subject:actor:)``). `resumingOpen`
    /// (privacyctl run again after an interruption): any open export of the subject is returned as
    /// it is, nothing recorded — the operator resumes it, the subject did not file again.
    public func requestExport(tenant: UUID, subject: UUID, actor: PrivacyActor, resumingOpen: Bool = false) async throws -> ExportStatus {
        let audit = self.audit
        let (id, duplicate): (UUID, UUID?) = try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                _ = try connection.query("SELECT 1 FROM auth.users WHERE tenant_id = $1 AND id = $2 FOR UPDATE", [tenant, subject])
                if resumingOpen, let open = try self.openRequest(.export, connection, tenant: tenant, subject: subject) {
                    return (open.id, nil)
                }
                if let linked = try self.linkDuplicate(.export, connection, tenant: tenant, subject: subject, actor: actor) {
                    return (linked.original, linked.duplicate)
                }
                let id: UUID = try connection.query(
                    "INSERT INTO public.data_export_requests (tenant_id, user_id, status, identity_verified_at) VALUES ($1, $2, 'pending', now()) RETURNING id",
                    [tenant, subject]
                ).first!.decode("id")
                _ = try audit.append(
                    in: connection, tenant: tenant,
                    actor.event(
                        "privacy.export_requested", target: id.lowercasedString,
                        details: [
                            "request_id": .string(id.lowercasedString), "user_id": .string(subject.lowercasedString),
                            "proof": .string(self.provenanceProof("privacy.export_requested", tenant: tenant, id: id, subject: subject)),
                        ]))
                return (id, nil)
            }
        }
        var status = try await exportStatus(tenant: tenant, id: id)
        if let duplicate { status.duplicate = try await request(.export, tenant: tenant, id: duplicate) }
        return status
    }

    public func exportStatus(tenant: UUID, id: UUID, subject: UUID? = nil) async throws -> ExportStatus {
        let request = try await self.request(.export, tenant: tenant, id: id, subject: subject)
        let row = try await run(tenant: tenant) { connection in
            try connection.query(
                "SELECT manifest::text AS manifest, download_url IS NOT NULL AS available FROM public.data_export_requests WHERE tenant_id = $1 AND id = $2",
                [tenant, id]
            ).first!
        }
        let manifest = try row.decodeIfPresent("manifest", as: String.self).map {
            try JSONDecoder().decode(ExportManifest.self, from: Data($0.utf8))
        }
        let available: Bool = try row.decode("available")
        var status = ExportStatus(
            request: request, manifest: manifest,
            archiveAvailable: ["completed", "partially_completed"].contains(request.status) && available)
        let processors = try await processorOutcomes(tenant: tenant, id: id)
        status.processors = processors.isEmpty ? nil : processors
        return status
    }

    /// Where the gateway keeps the archive of an export request (sealed at rest, ``ArchiveEncryption``).
    public func archivePath(_ id: UUID) -> String {
        URL(fileURLWithPath: configuration.exportDirectory).appendingPathComponent("\(id.lowercasedString).tar").path
    }

    /// Runs a pending (or interrupted, or resumed from `requires_input`) export: first calls the
    /// tenant's `export_required` processors — while any is unanswered before its deadline the
    /// request waits in `requires_input` and this throws ``PrivacyError/Code/awaitingInput`` —,
    /// then writes the archive (to `path`; by default into the
    /// export directory at ``archivePath(_:)``, sealed under a key derived from the subject's data
    /// key), listing each processor's answer, then marks the request completed (or
    /// `partially_completed` when a required processor did not confirm) with its manifest, audited. Re-running after a crash
    /// writes the archive again from a fresh snapshot.
    @discardableResult
    public func processExport(
        tenant: UUID, id: UUID, to path: String? = nil, passphrase: String? = nil,
        progress: (@Sendable (PrivacyProgress) -> Void)? = nil
    ) async throws -> ExportManifest {
        if path == nil && keyring == nil {
            throw PrivacyError(.invalidState, "no keyring: archives in the export directory are sealed under the subject's key")
        }
        var sealKey: SecureBytes?
        let (subject, _) = try await run(tenant: tenant) { try self.begin(.export, $0, tenant: tenant, id: id) }
        let audit = self.audit
        // Processors declared export_required (data held elsewhere) are called first, as on an
        // erasure (dispatchProcessorCalls: signed, retried, answered at the callback route); the
        // request waits in requires_input and a worker resumes it once each answered or passed its
        // deadline, so the archive lists every answer.
        let (waiting, processors): (Int, [ProcessorOutcome]) = try await run(tenant: tenant) { connection in
            try connection.transaction { connection -> (Int, [ProcessorOutcome]) in
                let open = try self.registerProcessorCalls(connection, tenant: tenant, kind: .export, id: id, subject: subject)
                guard open == 0 else {
                    try connection.query(
                        "UPDATE public.data_export_requests SET status = 'requires_input', status_reason = $2 WHERE id = $1 AND status = 'processing'",
                        [id, "waiting for \(open) processor(s) to answer"])
                    return (open, [])
                }
                return (0, try self.closeProcessorCalls(connection, tenant: tenant, id: id, audit: audit))
            }
        }
        if waiting > 0 {
            throw PrivacyError(.awaitingInput, "the export waits for \(waiting) processor(s) to answer (requires_input)")
        }
        // An erasure that ran while this export waited (in the queue, or for its processors) shredded
        // the subject's key: there is nothing left to export, and no new key may be made for them.
        let erased = try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                try Self.asLogin(connection) {
                    try connection.pipeline([Keyring.subjectKeyStatement(tenant: tenant, user: subject)])[0].first?
                        .decode("destroyed", as: Bool.self) ?? false
                }
            }
        }
        if erased {
            throw PrivacyError(.gone, "subject \(subject.lowercasedString) was erased while the export waited: there is nothing to export")
        }
        let unconfirmed = processors.filter { $0.required && $0.outcome != "confirmed" }.map(\.name)
        let destination = path ?? archivePath(id)
        if path == nil, let keyring {
            try FileManager.default.createDirectory(
                atPath: configuration.exportDirectory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            let subjectKey = try await run(tenant: tenant) { connection in
                try connection.transaction { connection in
                    try Self.asLogin(connection) { try keyring.subjectKey(tenant, user: subject, create: true, in: connection)! }
                }
            }
            sealKey = try ArchiveEncryption.atRestKey(subjectKey: subjectKey)
        }
        let manifest = try await writeArchive(
            tenant: tenant, subject: subject, to: destination, passphrase: passphrase,
            sealedAtRestWith: sealKey, requestID: id, processors: processors, progress: progress)
        let status = unconfirmed.isEmpty ? "completed" : "partially_completed"
        let reason =
            unconfirmed.isEmpty ? nil : "required processor(s) did not confirm by the deadline: " + unconfirmed.joined(separator: ", ")
        let manifestJSON = PostgresJSON(String(decoding: try Self.canonicalJSON(manifest), as: UTF8.self))
        try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                // download_url marks an archive waiting in the export directory (not one written elsewhere by privacyctl).
                let updated = try connection.query(
                    "UPDATE public.data_export_requests SET status = $4, status_reason = $5, completed_at = now(), manifest = $2, download_url = $3 "
                        + "WHERE id = $1 AND status = 'processing' RETURNING id",
                    [
                        id, manifestJSON, path == nil ? "/v1/privacy/exports/\(id.lowercasedString)/download" : nil as String?, status,
                        reason,
                    ])
                guard updated.affectedRows == 1 else { return }
                var details: [String: AuditValue] = [
                    "request_id": .string(id.lowercasedString), "user_id": .string(subject.lowercasedString),
                    "files": .int(Int64(manifest.files.count)),
                    "rows": .int(Int64(manifest.rowsByTable.values.reduce(0, +))),
                ]
                if !processors.isEmpty {
                    details["processors"] = .object(
                        Dictionary(uniqueKeysWithValues: processors.map { ($0.name, AuditValue.string($0.outcome ?? "open")) }))
                    details["status"] = .string(status)
                }
                _ = try audit.append(
                    in: connection, tenant: tenant,
                    AuditEvent(
                        actor: "privacy-export", action: "privacy.export_completed", target: id.lowercasedString, details: details))
            }
        }
        return manifest
    }

    // MARK: - Download links

    /// Random bytes in a download token (sent as lowercase hex).
    public static let downloadTokenBytes = 32

    func tokenHash(_ token: String) -> [UInt8] {
        HMACSHA256.authenticate(Array(token.utf8), key: tokenKey)
    }

    /// Issues a fresh single-use download token for a completed export whose archive is still
    /// there (replacing any earlier token); only its keyed hash is stored. Returns the token and
    /// when it expires.
    public func issueDownloadToken(tenant: UUID, id: UUID, subject: UUID? = nil) async throws -> (token: String, expiresAt: String) {
        let token = Hex.encode(Random.bytes(Self.downloadTokenBytes))
        let binds: [any PostgresEncodable] = [
            tenant, id, subject.map { $0.lowercasedString } as String?, tokenHash(token), configuration.downloadTTLSeconds,
        ]
        let row = try await run(tenant: tenant) { connection in
            try connection.query(
                """
                UPDATE public.data_export_requests
                SET download_token_hash = $4, download_expires_at = now() + make_interval(secs => $5)
                WHERE tenant_id = $1 AND id = $2 AND ($3::uuid IS NULL OR user_id = $3::uuid) AND status IN ('completed', 'partially_completed')
                  AND download_url IS NOT NULL
                RETURNING \(PrivacyRequest.timestamp("download_expires_at"))
                """, binds
            ).first
        }
        guard let row else { throw PrivacyError(.invalidState, "export \(id.lowercasedString) has no archive to download") }
        return (token, try row.decode("download_expires_at"))
    }

    /// Redeems a download token: valid once, before it expires. The token alone is the
    /// credential (a link a browser can follow), so the request is found by id and the token's
    /// keyed hash. The download is audited and the archive marked gone before anything is sent
    /// (fail closed); the file is opened, unlinked (an archive is downloaded once) and returned
    /// as a reader that decrypts it on the way out.
    ///
    /// - Throws: ``PrivacyError/Code/tokenRejected`` for a bad, used or expired token;
    ///   ``PrivacyError/Code/gone`` when the archive file is missing or does not open.
    public func redeemDownloadToken(id: UUID, token: String, actor: PrivacyActor) async throws -> ExportDownload {
        let hash = tokenHash(token)
        let audit = self.audit
        // The link names no tenant: privacy.export_tenant (SECURITY DEFINER) says whose export the id
        // is, and the token is then checked under that tenant's RLS.
        let owner: UUID? = try await run(tenant: nil) { connection in
            try connection.query("SELECT privacy.export_tenant($1) AS tenant", [id]).first?.decodeIfPresent("tenant")
        }
        guard let owner else { throw PrivacyError(.tokenRejected, "the download link is invalid, used or expired") }
        let redeemed: (tenant: UUID, subject: UUID)? = try await run(tenant: owner) { connection in
            try connection.transaction { connection in
                guard
                    let row = try connection.query(
                        """
                        UPDATE public.data_export_requests SET download_token_hash = NULL, download_expires_at = NULL, download_url = NULL
                        WHERE id = $1 AND download_token_hash = $2 AND download_expires_at > now() AND status IN ('completed', 'partially_completed')
                          AND download_url IS NOT NULL
                        RETURNING tenant_id, user_id
                        """, [id, hash]
                    ).first
                else { return nil }
                let tenant: UUID = try row.decode("tenant_id")
                let subject: UUID = try row.decode("user_id")
                _ = try audit.append(
                    in: connection, tenant: tenant,
                    actor.event(
                        "privacy.export_downloaded", target: id.lowercasedString,
                        details: [
                            "request_id": .string(id.lowercasedString), "user_id": .string(subject.lowercasedString),
                            "archive_removed": .bool(true),
                        ]))
                return (tenant, subject)
            }
        }
        guard let redeemed else { throw PrivacyError(.tokenRejected, "the download link is invalid, used or expired") }
        let path = archivePath(id)
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PrivacyError(.gone, "the archive is no longer available")
        }
        unlink(path)
        do {
            guard let keyring else { throw PrivacyError(.gone, "no keyring to open the archive") }
            let subjectKey = try await run(tenant: redeemed.tenant) { connection in
                try connection.transaction { connection in
                    try Self.asLogin(connection) {
                        try keyring.subjectKey(redeemed.tenant, user: redeemed.subject, create: false, in: connection)
                    }
                }
            }
            guard let subjectKey else { throw PrivacyError(.gone, "the subject's key is gone") }
            return ExportDownload(
                tenant: redeemed.tenant,
                reader: try ArchiveEncryption.AtRestReader(handle: handle, key: try ArchiveEncryption.atRestKey(subjectKey: subjectKey)))
        } catch {
            try? handle.close()
            if let error = error as? PrivacyError, error.code == .gone { throw error }
            throw PrivacyError(.gone, "the archive is no longer available (it does not open)")
        }
    }

    // MARK: - Archive lifecycle

    /// Removes every export archive of the subject (at the start of an erasure, before their
    /// request rows go) and records the request ids in the erasure's `result`, for its certificate.
    func removeArchives(_ connection: borrowing Connection, tenant: UUID, subject: UUID, erasure id: UUID) throws {
        try connection.transaction { connection in
            // Archives in the store (download_url set) and those an export still being written may leave.
            let rows = try connection.query(
                """
                WITH victims AS (
                    SELECT id, download_url IS NOT NULL AS held FROM public.data_export_requests
                    WHERE tenant_id = $1 AND user_id = $2 AND (download_url IS NOT NULL OR status = 'processing') FOR UPDATE)
                UPDATE public.data_export_requests r SET download_url = NULL, download_token_hash = NULL, download_expires_at = NULL
                FROM victims WHERE r.id = victims.id
                RETURNING r.id, victims.held
                """, [tenant, subject]
            ).rows
            var removed: [String] = []
            for row in rows {
                let request: UUID = try row.decode("id")
                let held: Bool = try row.decode("held")
                if unlink(archivePath(request)) == 0 || held { removed.append(request.lowercasedString) }
                // What an export still being written (or killed while writing) has on disk.
                for suffix in Self.partialSuffixes { unlink(archivePath(request) + suffix) }
            }
            guard !removed.isEmpty else { return }
            try connection.query(
                """
                UPDATE public.data_deletion_requests
                SET result = jsonb_set(result, '{archives_removed}', (
                    SELECT to_jsonb(array_agg(DISTINCT a ORDER BY a)) FROM (
                        SELECT jsonb_array_elements_text(coalesce(result->'archives_removed', '[]'::jsonb)) AS a
                        UNION SELECT unnest(string_to_array($2, ','))) s))
                WHERE id = $1
                """, [id, removed.joined(separator: ",")])
        }
    }

    /// Removes archives nobody downloaded within ``PrivacyConfiguration/archiveTTLSeconds`` of
    /// their export's completion (audited, `privacy.export_archive_removed`), and any file in the
    /// export directory older than that which no request claims. Returns how many archives went.
    @discardableResult
    public func removeExpiredArchives() async throws -> Int {
        let ttl = configuration.archiveTTLSeconds
        let audit = self.audit
        let tenants: [UUID] = try await run(tenant: nil) { connection in
            try connection.query("SELECT id FROM public.tenants ORDER BY id").rows.map { try $0.decode("id") }
        }
        var expired: [UUID] = []
        for tenant in tenants {
            expired += try await run(tenant: tenant) { connection in
                try connection.transaction { connection in
                    let rows = try connection.query(
                        """
                        UPDATE public.data_export_requests SET download_url = NULL, download_token_hash = NULL, download_expires_at = NULL
                        WHERE tenant_id = $2 AND download_url IS NOT NULL AND completed_at < now() - make_interval(secs => $1)
                        RETURNING id, user_id
                        """, [ttl, tenant]
                    ).rows
                    var ids: [UUID] = []
                    for row in rows {
                        let id: UUID = try row.decode("id")
                        let subject: UUID = try row.decode("user_id")
                        _ = try audit.append(
                            in: connection, tenant: tenant,
                            AuditEvent(
                                actor: "privacy-worker", action: "privacy.export_archive_removed", target: id.lowercasedString,
                                details: [
                                    "request_id": .string(id.lowercasedString), "user_id": .string(subject.lowercasedString),
                                    "reason": .string("expired"),
                                ]))
                        ids.append(id)
                    }
                    return ids
                }
            }
        }
        for id in expired { unlink(archivePath(id)) }
        // Leftovers (a crash between a download's commit and its unlink, files of erased subjects
        // written by a concurrent export): archives older than the TTL go, and the partial files
        // of an export killed while writing (plaintext until sealed) after an hour.
        let directory = URL(fileURLWithPath: configuration.exportDirectory)
        let now = Date()
        if let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) {
            for name in names {
                let age: TimeInterval
                if name.hasSuffix(".tar") {
                    age = Double(ttl)
                } else if Self.partialSuffixes.contains(where: name.hasSuffix) {
                    age = 3600
                } else {
                    continue
                }
                let path = directory.appendingPathComponent(name).path
                if let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                    modified < now.addingTimeInterval(-age)
                {
                    unlink(path)
                }
            }
        }
        return expired.count
    }

    /// Files ``writeArchive(tenant:subject:to:passphrase:sealedAtRestWith:requestID:progress:)`` writes beside an archive while it works.
    static let partialSuffixes = [".partial", ".plain.partial", ".plain.partial.json", ".partial.json"]
}
