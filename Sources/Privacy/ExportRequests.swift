import Audit
import Foundation
import Postgres
import Sodium

/// An export request with its manifest once done.
public struct ExportStatus: Codable, Sendable {
    public let request: PrivacyRequest
    public let manifest: ExportManifest?
}

extension PrivacyService {
    /// Files an export request (`pending`, for a worker or ``processExport``). An open export of
    /// the subject is returned instead of a second one.
    public func requestExport(tenant: UUID, subject: UUID, actor: PrivacyActor) async throws -> ExportStatus {
        let audit = self.audit
        let id: UUID = try await run { connection in
            try connection.transaction { connection in
                _ = try connection.query("SELECT 1 FROM auth.users WHERE tenant_id = $1 AND id = $2 FOR UPDATE", [tenant, subject])
                if let open = try self.openRequest(.export, connection, tenant: tenant, subject: subject) { return open.id }
                let id: UUID = try connection.query(
                    "INSERT INTO public.data_export_requests (tenant_id, user_id, status, identity_verified_at) VALUES ($1, $2, 'pending', now()) RETURNING id",
                    [tenant, subject]).first!.decode("id")
                _ = try audit.append(in: connection, tenant: tenant, actor.event(
                    "privacy.export_requested", target: id.lowercasedString,
                    details: ["request_id": .string(id.lowercasedString), "user_id": .string(subject.lowercasedString)]))
                return id
            }
        }
        return try await exportStatus(tenant: tenant, id: id)
    }

    public func exportStatus(tenant: UUID, id: UUID, subject: UUID? = nil) async throws -> ExportStatus {
        let request = try await self.request(.export, tenant: tenant, id: id, subject: subject)
        let row = try await pool.query(
            "SELECT manifest::text AS manifest FROM public.data_export_requests WHERE tenant_id = $1 AND id = $2", [tenant, id]).first!
        let manifest = try row.decodeIfPresent("manifest", as: String.self).map {
            try JSONDecoder().decode(ExportManifest.self, from: Data($0.utf8))
        }
        return ExportStatus(request: request, manifest: manifest)
    }

    /// Where the gateway keeps the archive of an export request.
    public func archivePath(_ id: UUID) -> String {
        URL(fileURLWithPath: configuration.exportDirectory).appendingPathComponent("\(id.lowercasedString).tar").path
    }

    /// Runs a pending (or interrupted) export: writes the archive (to `path`, default
    /// ``archivePath(_:)``), then marks the request completed with its manifest, audited.
    /// Re-running after a crash writes the archive again from a fresh snapshot.
    @discardableResult
    public func processExport(
        tenant: UUID, id: UUID, to path: String? = nil, passphrase: String? = nil,
        progress: (@Sendable (PrivacyProgress) -> Void)? = nil
    ) async throws -> ExportManifest {
        let (subject, _) = try await run { try self.begin(.export, $0, tenant: tenant, id: id) }
        let destination = path ?? archivePath(id)
        if path == nil {
            try FileManager.default.createDirectory(atPath: configuration.exportDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        let manifest = try await writeArchive(tenant: tenant, subject: subject, to: destination, passphrase: passphrase,
                                              requestID: id, progress: progress)
        let audit = self.audit
        let manifestJSON = PostgresJSON(String(decoding: try Self.canonicalJSON(manifest), as: UTF8.self))
        try await run { connection in
            try connection.transaction { connection in
                let updated = try connection.query(
                    "UPDATE public.data_export_requests SET status = 'completed', completed_at = now(), manifest = $2, download_url = $3 "
                        + "WHERE id = $1 AND status = 'processing' RETURNING id",
                    [id, manifestJSON, "/v1/privacy/exports/\(id.lowercasedString)/download"])
                guard updated.affectedRows == 1 else { return }
                _ = try audit.append(in: connection, tenant: tenant, AuditEvent(
                    actor: "privacy-export", action: "privacy.export_completed", target: id.lowercasedString,
                    details: ["request_id": .string(id.lowercasedString), "user_id": .string(subject.lowercasedString),
                              "files": .int(Int64(manifest.files.count)),
                              "rows": .int(Int64(manifest.rowsByTable.values.reduce(0, +)))]))
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

    /// Issues a fresh single-use download token for a completed export (replacing any earlier
    /// one); only its keyed hash is stored. Returns the token and when it expires.
    public func issueDownloadToken(tenant: UUID, id: UUID, subject: UUID? = nil) async throws -> (token: String, expiresAt: String) {
        let token = Hex.encode(Random.bytes(Self.downloadTokenBytes))
        let row = try await pool.query("""
            UPDATE public.data_export_requests
            SET download_token_hash = $4, download_expires_at = now() + make_interval(secs => $5)
            WHERE tenant_id = $1 AND id = $2 AND ($3::uuid IS NULL OR user_id = $3::uuid) AND status = 'completed'
            RETURNING \(PrivacyRequest.timestamp("download_expires_at"))
            """, [tenant, id, subject.map { $0.lowercasedString } as String?, tokenHash(token), configuration.downloadTTLSeconds]).first
        guard let row else { throw PrivacyError(.invalidState, "export \(id.lowercasedString) is not completed") }
        return (token, try row.decode("download_expires_at"))
    }

    /// Redeems a download token: valid once, before it expires. The token alone is the
    /// credential (a link a browser can follow), so the request is found by id and the token's
    /// keyed hash. Returns the archive path and the tenant; the download is audited before
    /// anything is sent (fail closed).
    public func redeemDownloadToken(id: UUID, token: String, actor: PrivacyActor) async throws -> (path: String, tenant: UUID) {
        let hash = tokenHash(token)
        let audit = self.audit
        let tenant: UUID? = try await run { connection in
            try connection.transaction { connection in
                guard let row = try connection.query("""
                    UPDATE public.data_export_requests SET download_token_hash = NULL, download_expires_at = NULL
                    WHERE id = $1 AND download_token_hash = $2 AND download_expires_at > now() AND status = 'completed'
                    RETURNING tenant_id, user_id::text AS subject
                    """, [id, hash]).first
                else { return nil }
                let tenant: UUID = try row.decode("tenant_id")
                _ = try audit.append(in: connection, tenant: tenant, actor.event(
                    "privacy.export_downloaded", target: id.lowercasedString,
                    details: ["request_id": .string(id.lowercasedString), "user_id": .string(try row.decode("subject"))]))
                return tenant
            }
        }
        guard let tenant else { throw PrivacyError(.tokenRejected, "the download link is invalid, used or expired") }
        return (archivePath(id), tenant)
    }
}
