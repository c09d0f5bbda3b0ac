import Audit
import Foundation
import Keyring
import Policy
import Postgres
import Privacy
import Sodium
import TestSupport
import Testing

@Suite("Data-subject requests")
struct DataSubjectRequestTests {
    @Test(
        "export: every row of the subject in every table, as CSV and JSON, nothing of another user or tenant; the manifest's hashes match")
    func export() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let other = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant)
            let neighbour = try await fixture.subject(in: tenant)
            let stranger = try await fixture.subject(in: other)
            let truth = try await fixture.rows(of: user, in: tenant)
            for node in fixture.service.graph.nodes {
                #expect(!(truth[node.qualifiedName] ?? []).isEmpty, "seed has no \(node.qualifiedName) row")
            }

            let status = try await fixture.service.requestExport(tenant: tenant, subject: user, actor: operatorActor)
            let id = try #require(UUID(uuidString: status.request.id))
            #expect(status.request.status == "pending")
            let manifest = try await fixture.service.processExport(tenant: tenant, id: id)
            // At rest the archive is sealed (under the subject's key), never a readable tar.
            let head = try #require(try FileHandle(forReadingAtPath: fixture.service.archivePath(id))?.read(upToCount: 8))
            #expect(String(decoding: head, as: UTF8.self) == "PGWARC01")
            let files = try readArchive(try await fixture.decryptedArchive(id, tenant: tenant, subject: user))

            let manifestBytes = try #require(files["manifest.json"])
            let stored = try JSONDecoder().decode(ExportManifest.self, from: Data(manifestBytes))
            #expect(stored == manifest)
            // index.html: the page a person opens first lists every table with its rows and links every file.
            let index = String(decoding: try #require(files["index.html"]), as: UTF8.self)
            for file in manifest.files { #expect(index.contains("href=\"\(file.name)\""), "\(file.name)") }
            for (table, rows) in manifest.rowsByTable {
                #expect(index.contains("<td>\(table)</td><td class=\"n\">\(rows)</td>"), "\(table)")
            }
            #expect(!index.contains("<script") && !index.contains("http:") && !index.contains("https:"))
            #expect(manifest.subject == user.uuidString.lowercased())
            #expect(manifest.tenant == tenant.uuidString.lowercased())
            #expect(manifest.policyVersion.hasPrefix("sha256:"))
            for file in manifest.files {
                let content = try #require(files[file.name])
                #expect(Hex.encode(SHA256.hash(content)) == file.sha256)
                #expect(Int64(content.count) == file.bytes)
            }
            for node in fixture.service.graph.nodes where node.exported && node.name != "data_export_requests" {
                let expected = truth[node.qualifiedName]!
                let json = try #require(files[node.qualifiedName + ".json"])
                let rows = try #require(try JSONSerialization.jsonObject(with: Data(json)) as? [[String: Any]])
                #expect(rows.count == expected.count, "\(node.qualifiedName)")
                #expect(manifest.rowsByTable[node.qualifiedName] == expected.count)
                let truthRows = try expected.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
                // Every value the subject has appears, column by column (bytea withheld).
                for column in node.table.columns where column.type.canonical != "bytea" {
                    let exported = Set(rows.map { "\($0[column.name] ?? "<missing>")" })
                    let original = Set(truthRows.map { "\($0[column.name] ?? "<missing>")" })
                    if column.type.canonical == "timestamp with time zone" || column.type.canonical.hasPrefix("numeric") {
                        #expect(exported.count == original.count, "\(node.qualifiedName).\(column.name)")
                    } else {
                        #expect(exported == original, "\(node.qualifiedName).\(column.name)")
                    }
                }
                let csv = String(decoding: try #require(files[node.qualifiedName + ".csv"]), as: UTF8.self)
                #expect(csv.hasPrefix(node.table.columns.filter { $0.type.canonical != "bytea" }.map(\.name).joined(separator: ",") + "\n"))
            }
            // The export request itself is part of the subject's data (it was filed after the ground truth was read).
            #expect(manifest.rowsByTable["public.data_export_requests"] == truth["public.data_export_requests"]!.count + 1)
            // The audit entries about the subject (Art. 15(1)(c)): this request's filing among them, each with its chain hash.
            let trailBytes = try #require(files["audit_trail.json"])
            let trail = try #require(try JSONSerialization.jsonObject(with: Data(trailBytes)) as? [[String: Any]])
            #expect(
                trail.contains {
                    $0["action"] as? String == "privacy.export_requested" && $0["target"] as? String == id.uuidString.lowercased()
                })
            #expect(trail.allSatisfy { ($0["hash"] as? String)?.count == 64 })
            // Every entry about the subject up to the export's snapshot (its completion is recorded after it).
            let recorded = try await AuditReader.entries(pool: fixture.pool, tenant: tenant, limit: 10_000)
                .filter { $0.details["user_id"] == .string(user.uuidString.lowercased()) && $0.action != "privacy.export_completed" }.map(
                    \.seq)
            #expect(trail.compactMap { ($0["seq"] as? NSNumber)?.int64Value } == recorded)
            #expect(manifest.rowsByTable[PrivacyService.auditTrailFile] == recorded.count)
            // Secrets by name only.
            let secrets = String(decoding: files["public.user_secrets.json"]!, as: UTF8.self)
            #expect(secrets.contains("svc-r0-"))
            #expect(!secrets.contains("encrypted_value"))
            #expect(manifest.withheldColumns["public.user_secrets"] == ["encrypted_value", "initialization_vector"])
            // Nothing of anybody else.
            let everything = files.values.map { String(decoding: $0, as: UTF8.self) }.joined()
            for foreign in [neighbour, stranger, other] { #expect(!everything.contains(foreign.uuidString.lowercased())) }
            let done = try await fixture.service.exportStatus(tenant: tenant, id: id)
            #expect(done.request.status == "completed")
            #expect(done.manifest == manifest)
            let actions = try await AuditReader.entries(pool: fixture.pool, tenant: tenant, afterSeq: 0, limit: 100).map(\.action)
            #expect(actions.contains("privacy.export_requested") && actions.contains("privacy.export_completed"))
        }
    }

    @Test("an export whose subject was erased while it waited is refused as gone: no archive, no new key for the erased subject")
    func exportOfErasedSubject() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            // One export into the export directory (sealed under the subject's key: the gateway's worker), one to a
            // path (privacyctl export --out).
            for path in [nil, fixture.directory.appendingPathComponent("erased.tar").path] {
                let user = try await fixture.subject(in: tenant, rounds: 1)
                let status = try await fixture.service.requestExport(tenant: tenant, subject: user, actor: operatorActor)
                let id = try #require(UUID(uuidString: status.request.id))
                // The erasure's shred, as it happens while an export waits for its processors or in the queue.
                _ = try await fixture.pool.transaction { try Keyring.shredSubjectKey(tenant, user: user, in: $0) }
                do {
                    try await fixture.service.processExport(tenant: tenant, id: id, to: path)
                    Issue.record("an export of an erased subject was written (to \(path ?? "the export directory"))")
                } catch let error as PrivacyError {
                    #expect(error.code == .gone && error.message.contains("erased"), "\(error)")
                }
                #expect(!FileManager.default.fileExists(atPath: path ?? fixture.service.archivePath(id)))
                let keys = try await fixture.pool.query(
                    "SELECT count(*) AS n, bool_and(destroyed_at IS NOT NULL) AS destroyed FROM keyring.subject_keys WHERE tenant_id = $1 AND user_id = $2",
                    [tenant, user])
                #expect(try keys.first?.decode("n", as: Int64.self) == 1 && keys.first?.decode("destroyed", as: Bool.self) == true)
            }
        }
    }

    @Test("an export encrypted with a passphrase opens with it and with nothing else")
    func encryptedExport() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 1)
            let path = fixture.directory.appendingPathComponent("a.tar.enc").path
            let manifest = try await fixture.service.writeArchive(tenant: tenant, subject: user, to: path, passphrase: "correct horse")
            #expect(manifest.encrypted)
            #expect(ArchiveEncryption.isEncrypted(path: path))
            let plain = fixture.directory.appendingPathComponent("a.tar").path
            #expect(throws: PrivacyError.self) {
                try ArchiveEncryption.decrypt(source: path, destination: plain, passphrase: "wrong horse")
            }
            #expect(!FileManager.default.fileExists(atPath: plain))
            try ArchiveEncryption.decrypt(source: path, destination: plain, passphrase: "correct horse")
            let files = try readArchive(plain)
            #expect(files["manifest.json"] != nil)
            #expect(files["public.projects.json"] != nil)
            // Truncation is detected.
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes.removeLast(10)
            try bytes.write(to: URL(fileURLWithPath: path))
            #expect(throws: PrivacyError.self) {
                try ArchiveEncryption.decrypt(source: path, destination: plain, passphrase: "correct horse")
            }
        }
    }

    @Test(
        "erasure: plan, confirm, run; only retained rows are left, the key is shredded, the certificate verifies, others are byte-for-byte untouched"
    )
    func erasure() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let other = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant)
            let neighbour = try await fixture.subject(in: tenant)
            _ = try await fixture.subject(in: other)
            let truth = try await fixture.rows(of: user, in: tenant)
            let neighbourBefore = try await fixture.snapshot(subject: neighbour, tenant: tenant)
            let otherBefore = try await fixture.snapshot(tenant: other)

            // First the subject's export: every row of every table is in it.
            let export = try await fixture.service.requestExport(tenant: tenant, subject: user, actor: operatorActor)
            let manifest = try await fixture.service.processExport(tenant: tenant, id: try #require(UUID(uuidString: export.request.id)))
            for node in fixture.service.graph.nodes where node.name != "data_export_requests" {
                #expect(manifest.rowsByTable[node.qualifiedName] == truth[node.qualifiedName]!.count, "\(node.qualifiedName)")
            }
            let neighbourAfterExport = try await fixture.snapshot(subject: neighbour, tenant: tenant)
            #expect(neighbourAfterExport == neighbourBefore)

            let requested = try await fixture.service.requestDeletion(tenant: tenant, subject: user, actor: operatorActor)
            #expect(requested.request.status == "awaiting_confirmation")
            let plan = try #require(requested.plan)
            #expect(plan.tables.map(\.table) == fixture.service.graph.nodes.map(\.qualifiedName))
            for entry in plan.tables where entry.table != "public.data_deletion_requests" {
                let expected = truth[entry.table]!.count + (entry.table == "public.data_export_requests" ? 1 : 0)
                #expect(entry.rows == Int64(expected), "\(entry.table)")
            }
            #expect(plan.tables.first { $0.table == "public.analytics" }?.strategy == "anonymize")
            #expect(plan.tables.first { $0.table == "public.data_deletion_requests" }?.ground?.contains("Art. 17(3)(e)") == true)
            // Filing again returns the same open request.
            let again = try await fixture.service.requestDeletion(tenant: tenant, subject: user, actor: operatorActor)
            #expect(again.request.id == requested.request.id)

            let id = try #require(UUID(uuidString: requested.request.id))
            let confirmed = try await fixture.service.confirmDeletion(tenant: tenant, id: id, actor: operatorActor)
            #expect(confirmed.request.status == "pending")
            let run = try await fixture.service.processDeletion(tenant: tenant, id: id)
            let certificate = run.certificate

            let after = try await fixture.rows(of: user, in: tenant)
            for node in fixture.service.graph.nodes {
                if case .retain = node.rules?.erasure {
                    #expect(!(after[node.qualifiedName] ?? []).isEmpty)
                } else {
                    #expect(after[node.qualifiedName] == [], "\(node.qualifiedName) still holds subject rows")
                }
            }
            let anonymised = try await fixture.pool.query(
                "SELECT count(*) AS n FROM public.analytics WHERE tenant_id = $1 AND user_id IS NULL AND event_data = '{}'::jsonb", [tenant]
            ).first!.decode("n", as: Int.self)
            #expect(anonymised == truth["public.analytics"]!.count)
            let key = try await fixture.pool.query(
                "SELECT wrapped_key IS NULL AND nonce IS NULL AND destroyed_at IS NOT NULL AS shredded FROM keyring.subject_keys WHERE tenant_id = $1 AND user_id = $2",
                [tenant, user]
            ).first!.decode("shredded", as: Bool.self)
            #expect(key)
            let registered = try await fixture.pool.query("SELECT count(*) AS n FROM auth.users WHERE id = $1", [user]).first!.decode(
                "n", as: Int.self)
            #expect(registered == 0)

            #expect(certificate.verification.passed)
            #expect(certificate.verification.subjectKey == "destroyed")
            #expect(certificate.verify(publicKey: fixture.signingKey.publicKey))
            for entry in certificate.tables where entry.strategy != "retain" {
                let expected = truth[entry.table]!.count + (entry.table == "public.data_export_requests" ? 1 : 0)
                #expect(entry.rows == Int64(expected), "\(entry.table)")
            }
            var forged = certificate
            forged = try DeletionCertificate.decode(
                json: String(decoding: try JSONEncoder().encode(forged), as: UTF8.self)
                    .replacingOccurrences(of: "\"passed\":true", with: "\"passed\":false"))
            #expect(!forged.verify(publicKey: fixture.signingKey.publicKey))
            #expect(!certificate.verify(publicKey: try Ed25519.SigningKey.generate().publicKey))

            let stored = try await fixture.service.deletionStatus(tenant: tenant, id: id)
            #expect(stored.request.status == "completed")
            #expect(stored.certificate == certificate)
            #expect(try #require(stored.certificate).verify(publicKey: fixture.signingKey.publicKey))
            let head = try await fixture.pool.query(
                "SELECT seq, encode(hash, 'hex') AS hash FROM public.audit_events WHERE tenant_id = $1 AND action = 'privacy.deletion_completed'",
                [tenant]
            ).first!
            #expect(certificate.auditHead.seq == (try head.decode("seq", as: Int64.self)))
            #expect(certificate.auditHead.hash == (try head.decode("hash", as: String.self)))

            // Running it again changes nothing and returns the same certificate.
            let rerun = try await fixture.service.processDeletion(tenant: tenant, id: id)
            #expect(rerun.certificate == certificate)

            #expect(try await fixture.snapshot(subject: neighbour, tenant: tenant) == neighbourBefore)
            #expect(try await fixture.snapshot(tenant: other) == otherBefore)
            let actions = try await AuditReader.entries(pool: fixture.pool, tenant: tenant, afterSeq: 0, limit: 100).map(\.action)
            for action in [
                "privacy.deletion_requested", "privacy.deletion_confirmed", "keys.subject_shredded", "privacy.deletion_completed",
            ] {
                #expect(actions.contains(action), "\(action)")
            }
            // The erasure checkpointed the log to prove its entry (signed by the signing key).
            #expect(certificate.auditProof != nil)
            let verified = try await AuditBundle.verifyLive(
                pool: fixture.pool, tenant: tenant, trustedKeys: AuditCheckpoint.trustedKeys([fixture.signingKey.publicKey]))
            #expect(verified.isValid)
        }
    }

    @Test("an interrupted erasure resumes from its committed batches to the same end state and counts")
    func resume() async throws {
        try await PrivacyFixture.with(batchSize: 1) { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 3)
            let truth = try await fixture.rows(of: user, in: tenant)
            let requested = try await fixture.service.requestDeletion(tenant: tenant, subject: user, actor: operatorActor)
            let id = try #require(UUID(uuidString: requested.request.id))
            _ = try await fixture.service.confirmDeletion(tenant: tenant, id: id, actor: operatorActor)
            // Simulate a crash: a run that dies after some batches, leaving `processing` and partial counts.
            try await fixture.pool.query(
                "UPDATE public.data_deletion_requests SET status = 'processing', started_at = now(), result = '{\"tables\": {}}' WHERE id = $1",
                [id])
            let first = try #require(fixture.service.graph.nodes.first { $0.rules?.erasure == .delete })
            let predicate = try fixture.service.graph.predicate(first.table, tenant: "$1", subject: "$2")
            let deleted = try await fixture.pool.transaction { connection in
                let n = try connection.query(
                    "DELETE FROM \(first.table.quotedName) WHERE ctid = ANY(ARRAY(SELECT t0.ctid FROM \(first.table.quotedName) t0 WHERE \(predicate) LIMIT 2))",
                    [tenant, user]
                ).affectedRows
                try connection.query(
                    "UPDATE public.data_deletion_requests SET result = jsonb_set(result, ARRAY['tables', $2], to_jsonb($3::int)) WHERE id = $1",
                    [id, first.qualifiedName, n])
                return n
            }
            #expect(deleted == 2)
            let run = try await fixture.service.processDeletion(tenant: tenant, id: id)
            #expect(run.certificate.verification.passed)
            for entry in run.certificate.tables where entry.strategy != "retain" {
                #expect(entry.rows == Int64(truth[entry.table]!.count), "\(entry.table)")
            }
        }
    }

    @Test("cancel works until processing starts, then is refused")
    func cancel() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 1)
            let first = try await fixture.service.requestDeletion(tenant: tenant, subject: user, actor: operatorActor)
            let id = try #require(UUID(uuidString: first.request.id))
            let canceled = try await fixture.service.cancelDeletion(tenant: tenant, id: id, actor: operatorActor)
            #expect(canceled.request.status == "canceled")
            await #expect(throws: PrivacyError.self) {
                try await fixture.service.confirmDeletion(tenant: tenant, id: id, actor: operatorActor)
            }
            await #expect(throws: PrivacyError.self) { try await fixture.service.processDeletion(tenant: tenant, id: id) }
            #expect(try await fixture.rows(of: user, in: tenant)["public.projects"]?.count == 1)

            let second = try await fixture.service.requestDeletion(tenant: tenant, subject: user, actor: operatorActor)
            let secondID = try #require(UUID(uuidString: second.request.id))
            #expect(secondID != id)
            _ = try await fixture.service.confirmDeletion(tenant: tenant, id: secondID, actor: operatorActor)
            let claimed = try await fixture.service.claimNext(.deletion)
            #expect(claimed?.id == secondID)
            let error = await #expect(throws: PrivacyError.self) {
                try await fixture.service.cancelDeletion(tenant: tenant, id: secondID, actor: operatorActor)
            }
            #expect(error?.code == .invalidState)
            #expect(try await fixture.service.claimNext(.deletion) == nil)
        }
    }

    @Test("due in one calendar month; one extension of at most two months with a reason; overdue requests are listed")
    func lifecycle() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 1)
            let status = try await fixture.service.requestExport(tenant: tenant, subject: user, actor: operatorActor)
            let id = try #require(UUID(uuidString: status.request.id))
            let due = try await fixture.pool.query(
                "SELECT due_at = requested_at + interval '1 month' AS ok FROM public.data_export_requests WHERE id = $1", [id]
            ).first!.decode("ok", as: Bool.self)
            #expect(due)
            await #expect(throws: PrivacyError.self) {
                try await fixture.service.extend(.export, tenant: tenant, id: id, months: 3, reason: "x", actor: operatorActor)
            }
            await #expect(throws: PrivacyError.self) {
                try await fixture.service.extend(.export, tenant: tenant, id: id, months: 1, reason: "  ", actor: operatorActor)
            }
            let extended = try await fixture.service.extend(
                .export, tenant: tenant, id: id, months: 2, reason: "complex request", actor: operatorActor)
            #expect(extended.extendedDueAt != nil)
            #expect(extended.extensionReason == "complex request")
            let twice = await #expect(throws: PrivacyError.self) {
                try await fixture.service.extend(.export, tenant: tenant, id: id, months: 1, reason: "again", actor: operatorActor)
            }
            #expect(twice?.code == .invalidState)
            #expect(try await fixture.service.listRequests(tenant: tenant, overdueOnly: true).isEmpty)
            try await fixture.pool.query(
                "UPDATE public.data_export_requests SET requested_at = requested_at - interval '4 months', due_at = due_at - interval '4 months', extended_due_at = extended_due_at - interval '4 months' WHERE id = $1",
                [id])
            let overdue = try await fixture.service.listRequests(tenant: tenant, overdueOnly: true)
            #expect(overdue.map(\.id) == [id.uuidString.lowercased()])
            #expect(try await fixture.service.listRequests(tenant: tenant).count == 3)  // plus the seeded completed and canceled ones
            let entry = try await AuditReader.entries(
                pool: fixture.pool, tenant: tenant, afterSeq: 0, limit: 100, actionPrefix: "privacy.request_extended")
            #expect(entry.count == 1)
            #expect(entry.first?.details["kind"] == .string("export"))
        }
    }

    @Test("consent changes are audited with ip and user agent and the old and new values; an unchanged update writes nothing")
    func settings() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = UUID()
            try await fixture.pool.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant])
            #expect(try await fixture.service.settings(tenant: tenant, subject: user) == .defaults)
            let actor = PrivacyActor("user:\(user.uuidString.lowercased())", ip: "203.0.113.9", userAgent: "tests/1.0")
            let updated = try await fixture.service.updateSettings(
                tenant: tenant, subject: user, PrivacySettingsUpdate(marketingConsent: true, dataRetentionDays: 365), actor: actor
            ).settings
            #expect(updated.marketingConsent && updated.dataRetentionDays == 365 && !updated.analyticsConsent)
            _ = try await fixture.service.updateSettings(
                tenant: tenant, subject: user, PrivacySettingsUpdate(marketingConsent: true), actor: actor)
            await #expect(throws: PrivacyError.self) {
                try await fixture.service.updateSettings(
                    tenant: tenant, subject: user, PrivacySettingsUpdate(dataRetentionDays: 0), actor: actor)
            }
            let entries = try await AuditReader.entries(
                pool: fixture.pool, tenant: tenant, afterSeq: 0, limit: 10, actionPrefix: "privacy.settings_updated")
            #expect(entries.count == 1)
            let entry = try #require(entries.first)
            #expect(entry.ip == "203.0.113.9")
            #expect(entry.userAgent == "tests/1.0")
            #expect(
                entry.details["changed"]
                    == .object([
                        "marketing_consent": ["from": false, "to": true],
                        "data_retention_days": ["from": 730, "to": 365],
                    ]))
        }
    }

    @Test("retention sweeps rows past the table's retention_days and the subject's data_retention_days, audited; other rows stay")
    func retention() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 2)
            let keeper = try await fixture.subject(in: tenant, rounds: 1)
            try await fixture.pool.query(
                "UPDATE public.user_privacy_settings SET data_retention_days = 30 WHERE tenant_id = $1 AND user_id = $2", [tenant, user])
            // One old chat message and one old support ticket of the user; an ancient analytics event of the keeper.
            try await fixture.pool.query(
                "UPDATE public.chat_messages SET created_at = now() - interval '40 days' WHERE id = (SELECT id FROM public.chat_messages WHERE tenant_id = $1 AND user_id = $2 ORDER BY id LIMIT 1)",
                [tenant, user])
            try await fixture.pool.query(
                "UPDATE public.chat_messages SET created_at = now() - interval '40 days' WHERE tenant_id = $1 AND user_id = $2",
                [tenant, keeper])
            try await fixture.pool.query(
                "UPDATE public.analytics SET created_at = now() - interval '800 days' WHERE tenant_id = $1 AND user_id = $2",
                [tenant, keeper])
            // Proof of erasure is kept for 3 years, then swept; a younger one stays.
            try await fixture.pool.query(
                "UPDATE public.data_deletion_requests SET created_at = now() - interval '3 years 1 day' WHERE tenant_id = $1 AND user_id = $2",
                [tenant, user])
            let sweeps = try await fixture.service.sweepRetention(actor: PrivacyActor("privacyctl"))
            #expect(
                sweeps.contains(
                    RetentionSweep(
                        tenant: tenant.uuidString.lowercased(), table: "public.data_deletion_requests", basis: "retain_until",
                        strategy: "delete", rows: 1)))
            #expect(try await fixture.rows(of: keeper, in: tenant)["public.data_deletion_requests"]?.count == 1)
            #expect(
                sweeps.contains(
                    RetentionSweep(
                        tenant: tenant.uuidString.lowercased(), table: "public.chat_messages", basis: "subject", strategy: "delete", rows: 1
                    )))
            #expect(
                sweeps.contains(
                    RetentionSweep(
                        tenant: tenant.uuidString.lowercased(), table: "public.analytics", basis: "table", strategy: "delete", rows: 1)))
            #expect(try await fixture.rows(of: user, in: tenant)["public.chat_messages"]?.count == 1)
            #expect(try await fixture.rows(of: keeper, in: tenant)["public.chat_messages"]?.count == 1)  // 730 days by default
            #expect(try await fixture.rows(of: keeper, in: tenant)["public.analytics"]?.count == 0)
            let audited = try await AuditReader.entries(
                pool: fixture.pool, tenant: tenant, afterSeq: 0, limit: 100, actionPrefix: "privacy.retention_swept")
            #expect(audited.count == 3)
            #expect(try await fixture.service.sweepRetention(actor: PrivacyActor("privacyctl")).isEmpty)
        }
    }

    @Test("a download token works once and before it expires; a wrong one never; the archive is gone after its download")
    func downloadToken() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 1)
            let status = try await fixture.service.requestExport(tenant: tenant, subject: user, actor: operatorActor)
            let id = try #require(UUID(uuidString: status.request.id))
            await #expect(throws: PrivacyError.self) { try await fixture.service.issueDownloadToken(tenant: tenant, id: id) }
            try await fixture.service.processExport(tenant: tenant, id: id)
            let (expiring, _) = try await fixture.service.issueDownloadToken(tenant: tenant, id: id)
            try await fixture.pool.query(
                "UPDATE public.data_export_requests SET download_expires_at = now() - interval '1 second' WHERE id = $1", [id])
            await #expect(throws: PrivacyError.self) {
                try await fixture.service.redeemDownloadToken(id: id, token: expiring, actor: operatorActor)
            }
            let (token, _) = try await fixture.service.issueDownloadToken(tenant: tenant, id: id)
            let stored = try await fixture.pool.query(
                "SELECT encode(download_token_hash, 'hex') AS h FROM public.data_export_requests WHERE id = $1", [id]
            ).first!.decode("h", as: String.self)
            #expect(stored != token)  // stored as a keyed hash, never the token
            let wrong = await #expect(throws: PrivacyError.self) {
                try await fixture.service.redeemDownloadToken(id: id, token: "x" + token, actor: operatorActor)
            }
            #expect(wrong?.code == .tokenRejected)
            #expect(FileManager.default.fileExists(atPath: fixture.service.archivePath(id)))

            let download = try await fixture.service.redeemDownloadToken(id: id, token: token, actor: operatorActor)
            #expect(download.tenant == tenant)
            // Removed from the export directory as the download starts; the open file still streams, decrypted.
            #expect(!FileManager.default.fileExists(atPath: fixture.service.archivePath(id)))
            let plain = fixture.directory.appendingPathComponent("downloaded.tar").path
            try download.reader.decrypt(to: plain)
            download.reader.close()
            #expect(try readArchive(plain)["manifest.json"] != nil)

            let reused = await #expect(throws: PrivacyError.self) {
                try await fixture.service.redeemDownloadToken(id: id, token: token, actor: operatorActor)
            }
            #expect(reused?.code == .tokenRejected)
            // No second download: no new link for an archive that is gone.
            #expect(try await fixture.service.exportStatus(tenant: tenant, id: id).archiveAvailable == false)
            await #expect(throws: PrivacyError.self) { try await fixture.service.issueDownloadToken(tenant: tenant, id: id) }
            let downloaded = try await AuditReader.entries(pool: fixture.pool, tenant: tenant, actionPrefix: "privacy.export_downloaded")
            #expect(downloaded.count == 1 && downloaded.first?.details["archive_removed"] == .bool(true))
        }
    }
}
