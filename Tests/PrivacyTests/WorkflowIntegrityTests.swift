import Audit
import Foundation
import Keyring
import Postgres
import Privacy
import Sodium
import TestSupport
import Testing

/// Issue 12, item 3: only requests the privacy service filed (and, for an erasure, whose plan was
/// confirmed) ever run, and what a certificate states comes from what the eraser did.
@Suite("The DSR workflow cannot be forged")
struct ForgedRequestTests {
    /// The subject's rows, whether their key is live, whether they are registered.
    private func state(_ fixture: PrivacyFixture, _ user: UUID, _ tenant: UUID) async throws -> ([String: [String]], String) {
        let key = try await fixture.pool.query(
            "SELECT destroyed_at IS NULL AS live FROM keyring.subject_keys WHERE tenant_id = $1 AND user_id = $2", [tenant, user]
        ).first
        let registered = try await fixture.pool.query(
            "SELECT count(*) AS n FROM auth.users WHERE tenant_id = $1 AND id = $2", [tenant, user]
        ).first!.decode("n", as: Int.self)
        // The request tables are where the forgery is written; every other row of the subject must stay.
        let rows = try await fixture.rows(of: user, in: tenant).filter { !$0.key.hasSuffix("_requests") }
        let live = try key?.decode("live", as: Bool.self) ?? false
        return (rows, "key live: \(live), registered: \(registered)")
    }

    private func refusal(_ fixture: PrivacyFixture, tenant: UUID, id: UUID) async throws -> AuditEntry? {
        try await AuditReader.entries(pool: fixture.pool, tenant: tenant, actionPrefix: "privacy.request_refused")
            .first { $0.target == id.uuidString.lowercased() }
    }

    @Test(
        "an insider with the gateway's login who chains well-formed filing and confirmation entries still cannot get an erasure run: the entries carry no proof"
    )
    func forgedAuditEntriesAreRefused() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 1)
            let before = try await state(fixture, user, tenant)
            let forged: UUID = try await fixture.pool.query(
                "INSERT INTO public.data_deletion_requests (tenant_id, user_id, status) VALUES ($1, $2, 'pending') RETURNING id",
                [tenant, user]
            ).first!.decode("id")
            // What the gateway's login can do: append correctly chained entries through the appender,
            // naming the request and subject, even with a made-up proof.
            let insider = AuditAppender(pool: fixture.pool)
            for action in ["privacy.deletion_requested", "privacy.deletion_confirmed"] {
                _ = try await insider.append(
                    tenant: tenant,
                    AuditEvent(
                        actor: "privacy-api", action: action, target: forged.uuidString.lowercased(),
                        details: [
                            "request_id": .string(forged.uuidString.lowercased()), "user_id": .string(user.uuidString.lowercased()),
                            "proof": .string(String(repeating: "0", count: 64)),
                        ]))
            }
            #expect(try await fixture.service.claimNext(.deletion) == nil)
            let row = try await fixture.pool.query("SELECT status FROM public.data_deletion_requests WHERE id = $1", [forged]).first!
            #expect(try row.decode("status", as: String.self) == "failed")
            #expect(try await refusal(fixture, tenant: tenant, id: forged) != nil)
            let after = try await state(fixture, user, tenant)
            #expect(after.0 == before.0)
            #expect(after.1 == before.1)

            // The real thing, filed and confirmed by the service, still runs.
            let filed = try await fixture.service.requestDeletion(tenant: tenant, subject: user, actor: operatorActor)
            let id = try #require(UUID(uuidString: filed.request.id))
            _ = try await fixture.service.confirmDeletion(tenant: tenant, id: id, actor: operatorActor)
            let claimed = try #require(try await fixture.service.claimNext(.deletion))
            #expect(claimed.id == id)
        }
    }

    @Test(
        "an erasure request inserted straight into the table (as a forged REST insert would) is never run: refused, marked failed, audited; rows and key intact"
    )
    func insertedErasureIsRefused() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 1)
            let before = try await state(fixture, user, tenant)
            let forged: UUID = try await fixture.pool.query(
                """
                INSERT INTO public.data_deletion_requests (tenant_id, user_id, status, result)
                VALUES ($1, $2, 'pending', '{"tables": {"public.projects": 999999}}') RETURNING id
                """, [tenant, user]
            ).first!.decode("id")

            // The worker's claim skips it (after refusing it); nothing is left to run.
            #expect(try await fixture.service.claimNext(.deletion) == nil)
            let row = try await fixture.pool.query(
                "SELECT status, status_reason, certificate IS NULL AS unsigned FROM public.data_deletion_requests WHERE id = $1", [forged]
            ).first!
            #expect(try row.decode("status", as: String.self) == "failed")
            #expect(try row.decode("status_reason", as: String.self).contains("privacy.deletion_requested"))
            #expect(try row.decode("unsigned", as: Bool.self))
            let entry = try #require(try await refusal(fixture, tenant: tenant, id: forged))
            #expect(entry.outcome == "denied")
            #expect(entry.details["user_id"] == .string(user.uuidString.lowercased()))
            let after = try await state(fixture, user, tenant)
            #expect(after.0 == before.0)
            #expect(after.1 == before.1)

            // Run directly (as privacyctl or a second worker would): refused the same way.
            let direct: UUID = try await fixture.pool.query(
                "INSERT INTO public.data_deletion_requests (tenant_id, user_id, status) VALUES ($1, $2, 'processing') RETURNING id",
                [tenant, user]
            ).first!.decode("id")
            let error = await #expect(throws: PrivacyError.self) { try await fixture.service.processDeletion(tenant: tenant, id: direct) }
            #expect(error?.code == .refused)
            #expect(
                try await fixture.pool.query("SELECT status FROM public.data_deletion_requests WHERE id = $1", [direct]).first!
                    .decode("status", as: String.self) == "failed")
            #expect(try await refusal(fixture, tenant: tenant, id: direct) != nil)
            let final = try await state(fixture, user, tenant)
            #expect(final.0 == before.0 && final.1 == before.1)
        }
    }

    @Test("a filed erasure whose confirmation is forged (status set to pending without the subject's confirm) is refused")
    func forgedConfirmationIsRefused() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 1)
            let before = try await state(fixture, user, tenant)
            let filed = try await fixture.service.requestDeletion(tenant: tenant, subject: user, actor: operatorActor)
            let id = try #require(UUID(uuidString: filed.request.id))
            try await fixture.pool.query(
                "UPDATE public.data_deletion_requests SET status = 'pending', confirmed_at = now() WHERE id = $1", [id])
            #expect(try await fixture.service.claimNext(.deletion) == nil)
            let status = try await fixture.service.deletionStatus(tenant: tenant, id: id)
            #expect(status.request.status == "failed")
            #expect(status.request.statusReason?.contains("privacy.deletion_confirmed") == true)
            #expect(status.certificate == nil)
            #expect(try await refusal(fixture, tenant: tenant, id: id) != nil)
            let after = try await state(fixture, user, tenant)
            #expect(after.0 == before.0 && after.1 == before.1)
        }
    }

    @Test("an export request inserted straight into the table is never run: refused, failed, audited, no archive")
    func insertedExportIsRefused() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 1)
            let forged: UUID = try await fixture.pool.query(
                "INSERT INTO public.data_export_requests (tenant_id, user_id, status) VALUES ($1, $2, 'pending') RETURNING id",
                [tenant, user]
            ).first!.decode("id")
            #expect(try await fixture.service.claimNext(.export) == nil)
            let status = try await fixture.service.exportStatus(tenant: tenant, id: forged)
            #expect(status.request.status == "failed")
            #expect(status.request.statusReason?.contains("privacy.export_requested") == true)
            #expect(status.manifest == nil && !status.archiveAvailable)
            #expect(!FileManager.default.fileExists(atPath: fixture.service.archivePath(forged)))
            #expect(try await refusal(fixture, tenant: tenant, id: forged) != nil)
            let error = await #expect(throws: PrivacyError.self) { try await fixture.service.processExport(tenant: tenant, id: forged) }
            #expect(error?.code == .invalidState)  // failed is final

            // An export the service filed still runs (the check lets the real thing through).
            let filed = try await fixture.service.requestExport(tenant: tenant, subject: user, actor: operatorActor)
            let claimed = try #require(try await fixture.service.claimNext(.export))
            #expect(claimed.id.uuidString.lowercased() == filed.request.id)
            try await fixture.service.processExport(tenant: claimed.tenant, id: claimed.id)
            #expect(try await fixture.service.exportStatus(tenant: tenant, id: claimed.id).archiveAvailable)
        }
    }

    @Test("forged counts in result (or plan) never reach the signed certificate: it states what the eraser did")
    func forgedCountsNeverReachTheCertificate() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 2)
            let truth = try await fixture.rows(of: user, in: tenant)
            let filed = try await fixture.service.requestDeletion(tenant: tenant, subject: user, actor: operatorActor)
            let id = try #require(UUID(uuidString: filed.request.id))
            _ = try await fixture.service.confirmDeletion(tenant: tenant, id: id, actor: operatorActor)
            // What a REST PATCH on the confirmed request would have written.
            try await fixture.pool.query(
                """
                UPDATE public.data_deletion_requests
                SET result = '{"tables": {"public.projects": 999999, "public.leads": 777}}',
                    plan = jsonb_set(plan, '{tables,0,rows}', '555555')
                WHERE id = $1
                """, [id])
            let claimed = try #require(try await fixture.service.claimNext(.deletion))
            let run = try await fixture.service.processDeletion(tenant: claimed.tenant, id: claimed.id)
            #expect(run.certificate.verify(publicKey: fixture.signingKey.publicKey))
            for entry in run.certificate.tables where entry.strategy != "retain" {
                let expected = truth[entry.table]!.count
                #expect(entry.rows == Int64(expected), "\(entry.table)")
            }
            let stored = try await fixture.pool.query(
                "SELECT result::text AS r, certificate::text AS c FROM public.data_deletion_requests WHERE id = $1", [id]
            ).first!
            // Compared as numbers: "777" can turn up inside any uuid, digest or signature by chance.
            let forged: Set<Int64> = [999_999, 777, 555_555]
            let result = try #require(
                try JSONSerialization.jsonObject(with: Data(try stored.decode("r", as: String.self).utf8)) as? [String: Any])
            let counts = try #require(result["tables"] as? [String: Any])
            for (table, value) in counts {
                let count = try #require((value as? NSNumber)?.int64Value)
                #expect(!forged.contains(count) || Int64(truth[table]?.count ?? -1) == count, "\(table): \(count)")
            }
            for entry in run.certificate.tables {
                #expect(!forged.contains(entry.rows) || Int64(truth[entry.table]?.count ?? -1) == entry.rows, "\(entry.table)")
            }
        }
    }
}

/// Issue 12, item 4: an export archive lives until its one download, its expiry or the
/// subject's erasure, sealed under a key erasure destroys.
@Suite("Export archives have a lifecycle")
struct ArchiveLifecycleTests {
    private func export(_ fixture: PrivacyFixture, tenant: UUID, user: UUID) async throws -> UUID {
        let filed = try await fixture.service.requestExport(tenant: tenant, subject: user, actor: operatorActor)
        let id = try #require(UUID(uuidString: filed.request.id))
        try await fixture.service.processExport(tenant: tenant, id: id)
        #expect(FileManager.default.fileExists(atPath: fixture.service.archivePath(id)))
        return id
    }

    @Test("an archive nobody downloads is removed once it expires (audited); a fresh one stays")
    func expiry() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 1)
            let neighbour = try await fixture.subject(in: tenant, rounds: 1)
            let old = try await export(fixture, tenant: tenant, user: user)
            let fresh = try await export(fixture, tenant: tenant, user: neighbour)
            #expect(try await fixture.service.removeExpiredArchives() == 0)
            // Completed eight days ago: past the default seven.
            try await fixture.pool.query(
                "UPDATE public.data_export_requests SET completed_at = now() - interval '8 days' WHERE id = $1", [old])
            #expect(try await fixture.service.removeExpiredArchives() == 1)
            #expect(!FileManager.default.fileExists(atPath: fixture.service.archivePath(old)))
            #expect(try await fixture.service.exportStatus(tenant: tenant, id: old).archiveAvailable == false)
            await #expect(throws: PrivacyError.self) { try await fixture.service.issueDownloadToken(tenant: tenant, id: old) }
            #expect(FileManager.default.fileExists(atPath: fixture.service.archivePath(fresh)))
            #expect(try await fixture.service.exportStatus(tenant: tenant, id: fresh).archiveAvailable)
            let removed = try await AuditReader.entries(pool: fixture.pool, tenant: tenant, actionPrefix: "privacy.export_archive_removed")
            #expect(removed.map(\.target) == [old.uuidString.lowercased()])
            #expect(removed.first?.details["reason"] == .string("expired"))
        }
    }

    @Test("erasure removes the subject's archives and lists them in the certificate; a copy taken before does not open afterwards")
    func erasureRemovesAndShredsArchives() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 1)
            let neighbour = try await fixture.subject(in: tenant, rounds: 1)
            let id = try await export(fixture, tenant: tenant, user: user)
            let theirs = try await export(fixture, tenant: tenant, user: neighbour)
            // The copy an attacker (or a backup) takes: it opens now, with the subject's key.
            let copy = fixture.directory.appendingPathComponent("copied.tar").path
            try FileManager.default.copyItem(atPath: fixture.service.archivePath(id), toPath: copy)
            #expect(
                try readArchive(try await fixture.decryptedArchive(id, tenant: tenant, subject: user, from: copy))["manifest.json"] != nil)

            // What an export killed while writing leaves (plaintext until sealed).
            let leftover = fixture.service.archivePath(id) + ".plain.partial"
            #expect(FileManager.default.createFile(atPath: leftover, contents: Data("plain rows".utf8)))

            let filed = try await fixture.service.requestDeletion(tenant: tenant, subject: user, actor: operatorActor)
            let deletion = try #require(UUID(uuidString: filed.request.id))
            _ = try await fixture.service.confirmDeletion(tenant: tenant, id: deletion, actor: operatorActor)
            let run = try await fixture.service.processDeletion(tenant: tenant, id: deletion)
            #expect(run.certificate.verification.passed)
            #expect(run.certificate.archivesRemoved == [id.uuidString.lowercased()])
            #expect(run.certificate.verify(publicKey: fixture.signingKey.publicKey))
            #expect(!FileManager.default.fileExists(atPath: fixture.service.archivePath(id)))
            #expect(!FileManager.default.fileExists(atPath: leftover))
            #expect(FileManager.default.fileExists(atPath: fixture.service.archivePath(theirs)))

            // The copy no longer opens: the key it was sealed under was derived from the shredded data key,
            // and no key can be made for the subject again.
            let keyring = fixture.keyring
            for create in [false, true] {
                await #expect(throws: KeyringError.self) {
                    _ = try await fixture.pool.transaction { try keyring.subjectKey(tenant, user: user, create: create, in: $0) }
                }
            }
            let reopened = try await Keyring.open(pool: fixture.pool, root: .key(fixture.rootKey))
            await #expect(throws: KeyringError.self) {
                _ = try await fixture.pool.transaction { try reopened.subjectKey(tenant, user: user, create: false, in: $0) }
            }
            // Nor with any other key there is (the neighbour's, a random one).
            let neighbourKey = try #require(
                try await fixture.pool.transaction { try keyring.subjectKey(tenant, user: neighbour, create: false, in: $0) })
            for key in [neighbourKey, try SecureBytes(count: 32)] {
                let handle = try #require(FileHandle(forReadingAtPath: copy))
                #expect(throws: PrivacyError.self) {
                    let reader = try ArchiveEncryption.AtRestReader(handle: handle, key: try ArchiveEncryption.atRestKey(subjectKey: key))
                    defer { reader.close() }
                    try reader.decrypt(to: fixture.directory.appendingPathComponent("nope.tar").path)
                }
            }
            #expect(!FileManager.default.fileExists(atPath: fixture.directory.appendingPathComponent("nope.tar").path))
        }
    }
}
