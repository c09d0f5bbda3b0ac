import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Keyring
import Logging
import Policy
import Postgres
import Privacy
import Sodium
import TestSupport
import Testing

@testable import Gateway

/// `/v1/privacy` through the real router, with the worker the gateway runs.
struct PrivacyRouteFixture {
    let auth: AuthFixture
    let client: any TestClientProtocol
    let acme: TestTenant
    let dataOnly: TestTenant
    let service: PrivacyService
    let signingKey: Ed25519.SigningKey
    let alice = UUID(), bob = UUID()

    /// `identity` and `notifier`: how subjects prove who they are (default: their JWT suffices).
    static func run(
        identity: IdentityPolicy = IdentityPolicy(), notifier: (any IdentityNotifier)? = nil,
        configure: @Sendable (inout PrivacyConfiguration) -> Void = { _ in }, pools: AuthFixture.Pools = .init(),
        _ body: @escaping @Sendable (PrivacyRouteFixture) async throws -> Void
    ) async throws {
        try await AuthFixture.run(pools: pools) { auth in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("privacy-routes-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let signingKey = try Ed25519.SigningKey.generate()
            var configuration = PrivacyConfiguration(
                policyVersion: try PrivacyConfiguration.policyVersion(directory: TestDatabase.repositoryPolicies.path),
                exportDirectory: directory.path)
            configuration.encryptionLimits = .testing
            configuration.identity = identity
            configure(&configuration)
            // The fixture's keyring: one root key per database.
            let keyring = auth.keyring
            // As the gateway runs it: its own login, as the privacy worker role.
            let service = PrivacyService(
                pool: auth.gateway, graph: try await SubjectGraph.load(policies: policies, pool: auth.gateway),
                audit: AuditAppender(pool: auth.gateway), signingKey: signingKey, tokenKey: try SecureBytes(count: 32),
                keyring: keyring, configuration: configuration, notifier: notifier)
            let services = GatewayServices(
                pool: auth.gateway, policies: policies, authenticator: auth.authenticator,
                readiness: try Readiness(pool: auth.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: AuditAppender(pool: auth.gateway), privacy: service)
            let acme = try await auth.tenant("acme", scopes: [.privacyExport, .privacyErase, .dataWrite])
            let dataOnly = try await auth.tenant("globex", scopes: [.dataRead])
            let app = Application(router: GatewayApplication.router(services: services))
            try await app.test(.router) { client in
                try await body(
                    PrivacyRouteFixture(
                        auth: auth, client: client, acme: acme, dataOnly: dataOnly, service: service, signingKey: signingKey))
            }
        }
    }

    @discardableResult
    func request(
        _ method: HTTPRequest.Method, _ uri: String, as tenant: TestTenant, _ user: UUID?, body: String? = nil
    ) async throws -> (status: HTTPResponse.Status, body: String, bytes: [UInt8]) {
        var headers: HTTPFields = [.apikey: tenant.apikey, .userAgent: "route-tests/1.0"]
        if let user {
            headers[.authorization] = "Bearer " + (try await Tokens.hs256(claims: Tokens.user(user), secret: tenant.secret!))
        }
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            (response.status, String(buffer: response.body), Array(response.body.readableBytesView))
        }
    }

    func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// A few rows of `user` (registered by a first request).
    func seed(_ user: UUID) async throws {
        try await request(.get, "/v1/privacy/settings", as: acme, user)
        try await auth.owner.query(
            "INSERT INTO public.projects (tenant_id, user_id, name, type) VALUES ($1, $2, 'site', 'website')", [acme.id, user])
        try await auth.owner.query("INSERT INTO public.chat_sessions (tenant_id, user_id) VALUES ($1, $2)", [acme.id, user])
    }
}

@Suite("/v1/privacy")
struct PrivacyRouteTests {
    @Test("settings: defaults, a change audited with user agent and old and new values, scopes and a subject required")
    func settings() async throws {
        try await PrivacyRouteFixture.run { f in
            let first = try await f.request(.get, "/v1/privacy/settings", as: f.acme, f.alice)
            #expect(first.status == .ok)
            #expect(try f.object(first.body)["data_retention_days"] as? Int == 730)
            let put = try await f.request(.put, "/v1/privacy/settings", as: f.acme, f.alice, body: #"{"analytics_consent": true}"#)
            #expect(put.status == .ok)
            #expect(try f.object(put.body)["analytics_consent"] as? Bool == true)
            let entries = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.settings_updated")
            #expect(entries.count == 1)
            #expect(entries.first?.userAgent == "route-tests/1.0")
            #expect(entries.first?.actor == "user:" + f.alice.uuidString.lowercased())
            #expect(entries.first?.details["changed"] == .object(["analytics_consent": ["from": false, "to": true]]))

            #expect(
                try await f.request(.put, "/v1/privacy/settings", as: f.acme, f.alice, body: #"{"data_retention_days": 0}"#).status
                    == .badRequest)
            #expect(
                try await f.request(.put, "/v1/privacy/settings", as: f.acme, f.alice, body: #"{"analytics_consent": "yes"}"#).status
                    == .badRequest)
            #expect(try await f.request(.get, "/v1/privacy/settings", as: f.acme, nil).status == .unauthorized)
            #expect(try await f.request(.get, "/v1/privacy/settings", as: f.dataOnly, f.alice).status == .forbidden)
        }
    }

    @Test(
        "a consent change gives the subject a signed receipt that verifies with the public key only and fails when edited; the history lists only their own changes"
    )
    func consentReceipts() async throws {
        try await PrivacyRouteFixture.run { f in
            let put = try await f.request(
                .put, "/v1/privacy/settings", as: f.acme, f.alice, body: #"{"marketing_consent": true, "data_retention_days": 90}"#)
            #expect(put.status == .ok)
            let body = try f.object(put.body)
            #expect(body["marketing_consent"] as? Bool == true)
            let receiptObject = try #require(body["receipt"] as? [String: Any])
            let receipt = try JSONDecoder().decode(ConsentReceipt.self, from: try JSONSerialization.data(withJSONObject: receiptObject))
            #expect(receipt.verify(publicKey: f.signingKey.publicKey))
            #expect(!receipt.verify(publicKey: try Ed25519.SigningKey.generate().publicKey))
            #expect(receipt.subject == f.alice.uuidString.lowercased() && receipt.tenant == f.acme.id.uuidString.lowercased())
            #expect(receipt.changed == ["data_retention_days", "marketing_consent"])
            #expect(
                receipt.previous.marketingConsent == false && receipt.settings.marketingConsent == true
                    && receipt.settings.dataRetentionDays == 90)
            #expect(
                receipt.collection.userAgent == "route-tests/1.0" && receipt.collection.actor == "user:" + f.alice.uuidString.lowercased())
            #expect(receipt.policyVersion.hasPrefix("sha256:"))
            // The receipt names the audit entry that recorded the change.
            let recorded = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.settings_updated")
            #expect(recorded.last?.seq == receipt.auditEntry.seq && recorded.last.map { Hex.encode($0.hash) } == receipt.auditEntry.hash)
            // Edited after signing: a withdrawn consent claimed as given no longer verifies.
            var edited = receiptObject
            var settings = try #require(edited["settings"] as? [String: Any])
            settings["marketing_consent"] = false
            edited["settings"] = settings
            let forged = try JSONDecoder().decode(ConsentReceipt.self, from: try JSONSerialization.data(withJSONObject: edited))
            #expect(!forged.verify(publicKey: f.signingKey.publicKey))

            // Nothing changed: no receipt (and no audit entry).
            let same = try await f.request(.put, "/v1/privacy/settings", as: f.acme, f.alice, body: #"{"marketing_consent": true}"#)
            let sameBody = try f.object(same.body)
            #expect(same.status == .ok && sameBody["receipt"] == nil)

            try await f.request(.put, "/v1/privacy/settings", as: f.acme, f.bob, body: #"{"analytics_consent": true}"#)
            try await f.request(.put, "/v1/privacy/settings", as: f.acme, f.alice, body: #"{"marketing_consent": false}"#)
            let history = try await f.request(.get, "/v1/privacy/settings/history", as: f.acme, f.alice)
            #expect(history.status == .ok)
            let changes = try #require(try f.object(history.body)["history"] as? [[String: Any]])
            #expect(changes.count == 2)
            #expect(
                changes.allSatisfy { ($0["changed"] as? [String: Any])?["analytics_consent"] == nil }, "bob's change is not alice's history"
            )
            #expect(((changes[1]["changed"] as? [String: Any])?["marketing_consent"] as? [String: Any])?["to"] as? Bool == false)
            #expect(changes[0]["user_agent"] as? String == "route-tests/1.0")
            let firstSeq = try #require(changes[0]["seq"] as? Int)
            let page = try f.object(
                try await f.request(.get, "/v1/privacy/settings/history?limit=1&after=\(firstSeq)", as: f.acme, f.alice).body)
            #expect((page["history"] as? [[String: Any]])?.map { $0["seq"] as? Int } == [changes[1]["seq"] as? Int])

            #expect(try await f.request(.get, "/v1/privacy/settings/history?limit=0", as: f.acme, f.alice).status == .badRequest)
            #expect(try await f.request(.get, "/v1/privacy/settings/history?after=-1", as: f.acme, f.alice).status == .badRequest)
            #expect(try await f.request(.get, "/v1/privacy/settings/history", as: f.acme, nil).status == .unauthorized)
            #expect(try await f.request(.get, "/v1/privacy/settings/history", as: f.dataOnly, f.alice).status == .forbidden)
        }
    }

    @Test(
        "retry through the route: a failed export back to pending, once; another subject, a narrower key, another kind or an unknown id reach nothing"
    )
    func retryRoute() async throws {
        try await PrivacyRouteFixture.run { f in
            try await f.seed(f.alice)
            let filed = try await f.request(.post, "/v1/privacy/exports", as: f.acme, f.alice)
            let id = try #require((try f.object(filed.body)["request"] as? [String: Any])?["id"] as? String)
            _ = try await f.service.claimNext(.export)
            try await f.service.fail(.export, tenant: f.acme.id, id: try #require(UUID(uuidString: id)), reason: "disk full")

            #expect(try await f.request(.post, "/v1/privacy/exports/\(id)/retry", as: f.acme, f.bob).status == .notFound)
            #expect(try await f.request(.post, "/v1/privacy/exports/\(id)/retry", as: f.dataOnly, f.alice).status == .forbidden)
            #expect(try await f.request(.post, "/v1/privacy/deletions/\(id)/retry", as: f.acme, f.alice).status == .notFound)
            #expect(try await f.request(.post, "/v1/privacy/exports/\(UUID())/retry", as: f.acme, f.alice).status == .notFound)
            #expect(try await f.request(.post, "/v1/privacy/exports/not-a-uuid/retry", as: f.acme, f.alice).status == .badRequest)
            #expect(try await f.service.request(.export, tenant: f.acme.id, id: try #require(UUID(uuidString: id))).status == "failed")

            let retried = try await f.request(.post, "/v1/privacy/exports/\(id)/retry", as: f.acme, f.alice)
            let retriedBody = try f.object(retried.body)
            #expect(retried.status == .ok && retriedBody["status"] as? String == "pending", "\(retried.body)")
            let again = try await f.request(.post, "/v1/privacy/exports/\(id)/retry", as: f.acme, f.alice)
            #expect(again.status == .ok)
            let entries = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.request_retried")
            #expect(entries.count == 1 && entries.first?.actor == "user:" + f.alice.uuidString.lowercased())
        }
    }

    @Test("the queue's gauges: open, overdue and stuck requests by kind, over every tenant, never one awaiting the subject")
    func queueGauges() async throws {
        try await PrivacyRouteFixture.run { f in
            let filed = try await f.request(.post, "/v1/privacy/exports", as: f.acme, f.alice)
            #expect(filed.status == .accepted, "\(filed.body)")
            let id = try #require((try f.object(filed.body)["request"] as? [String: Any])?["id"] as? String)
            var figures = try await f.service.queueFigures(stuckAfter: .seconds(3600))
            #expect(figures.first { $0.kind == .export } == QueueFigures(kind: .export, open: 1, overdue: 0, stuck: 0))
            // Past due and untouched for two hours: overdue and stuck (triggers off, or updated_at would be now).
            try await f.auth.owner.transaction { connection in
                try connection.query("SET LOCAL session_replication_role = replica")
                try connection.query(
                    "UPDATE public.data_export_requests SET due_at = now() - interval '1 day', updated_at = now() - interval '2 hours' WHERE id = $1::uuid",
                    [id])
            }
            figures = try await f.service.queueFigures(stuckAfter: .seconds(3600))
            #expect(figures.first { $0.kind == .export } == QueueFigures(kind: .export, open: 1, overdue: 1, stuck: 1))
            #expect(figures.first { $0.kind == .deletion } == QueueFigures(kind: .deletion, open: 0, overdue: 0, stuck: 0))
            let metrics = GatewayMetrics()
            metrics.privacyQueue(figures)
            let text = metrics.render(pool: f.auth.gateway.statistics)
            #expect(text.contains(#"privacy_gateway_privacy_requests{kind="export",state="stuck"} 1.0"#), "\(text)")
            #expect(text.contains(#"privacy_gateway_privacy_requests{kind="deletion",state="open"} 0.0"#))
        }
    }

    /// Files an export for `user` and lets the gateway's worker build it; the status document once completed.
    private func completedExport(_ f: PrivacyRouteFixture, _ user: UUID) async throws -> (id: String, document: [String: Any]) {
        let filed = try await f.request(.post, "/v1/privacy/exports", as: f.acme, user)
        #expect(filed.status == .accepted)
        let request = try #require(try f.object(filed.body)["request"] as? [String: Any])
        let id = try #require(request["id"] as? String)
        #expect(request["status"] as? String == "pending")
        let worker = Task {
            try await PrivacyWorkerService(privacy: f.service, pollInterval: .milliseconds(50), logger: Logger(label: "test")).run()
        }
        var document: [String: Any] = [:]
        for _ in 0..<400 {
            document = try f.object(try await f.request(.get, "/v1/privacy/exports/\(id)", as: f.acme, user).body)
            if (document["request"] as? [String: Any])?["status"] as? String == "completed" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        worker.cancel()
        _ = try? await worker.value
        return (id, document)
    }

    @Test("export: filed, built by the worker, downloaded once with the link, then gone; another subject cannot see it")
    func export() async throws {
        try await PrivacyRouteFixture.run { f in
            try await f.seed(f.alice)
            let (id, document) = try await completedExport(f, f.alice)
            #expect(document["archive_available"] as? Bool == true)
            let download = try #require(document["download"] as? [String: Any])
            let url = try #require(download["url"] as? String)
            let manifest = try #require(document["manifest"] as? [String: Any])
            #expect(manifest["subject"] as? String == f.alice.uuidString.lowercased())
            // At rest the archive is sealed under alice's key, not a tar anyone with the disk can read.
            let exportID = try #require(UUID(uuidString: id))
            let stored = try #require(FileManager.default.contents(atPath: f.service.archivePath(exportID)))
            #expect(Array(stored.prefix(8)) == Array("PGWARC01".utf8))

            #expect(try await f.request(.get, "/v1/privacy/exports/\(id)", as: f.acme, f.bob).status == .notFound)
            let archive = try await f.request(.get, url, as: f.acme, nil)
            #expect(archive.status == .ok)
            let names = try TarReader.entries(archive.bytes).map(\.name)
            #expect(names.contains("manifest.json") && names.contains("public.projects.csv") && names.contains("public.projects.json"))
            // Downloaded once: the archive is gone, the link is spent, no new link is offered.
            #expect(!FileManager.default.fileExists(atPath: f.service.archivePath(exportID)))
            #expect(try await f.request(.get, url, as: f.acme, nil).status == .forbidden)
            let after = try f.object(try await f.request(.get, "/v1/privacy/exports/\(id)", as: f.acme, f.alice).body)
            #expect(after["archive_available"] as? Bool == false)
            #expect(after["download"] == nil || after["download"] is NSNull)

            // A second export, encrypted on the way out with the caller's passphrase.
            let (secondID, second) = try await completedExport(f, f.alice)
            #expect(secondID != id)
            let secondURL = try #require((second["download"] as? [String: Any])?["url"] as? String)
            let encrypted = try await f.client.execute(uri: secondURL, method: .get, headers: [.exportPassphrase: "open sesame"]) {
                response in
                (response.status, Array(response.body.readableBytesView))
            }
            #expect(encrypted.0 == .ok)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dl-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            try Data(encrypted.1).write(to: directory.appendingPathComponent("a.enc"))
            #expect(throws: PrivacyError.self) {
                try ArchiveEncryption.decrypt(
                    source: directory.appendingPathComponent("a.enc").path, destination: directory.appendingPathComponent("x.tar").path,
                    passphrase: "wrong")
            }
            try ArchiveEncryption.decrypt(
                source: directory.appendingPathComponent("a.enc").path, destination: directory.appendingPathComponent("a.tar").path,
                passphrase: "open sesame")
            let decrypted = try [UInt8](Data(contentsOf: directory.appendingPathComponent("a.tar")))
            #expect(try TarReader.entries(decrypted).map(\.name) == names)
            #expect(try await f.client.execute(uri: secondURL, method: .get) { $0.status } == .forbidden)
            let actions = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.export").map(\.action)
            #expect(
                actions == [
                    "privacy.export_requested", "privacy.export_completed", "privacy.export_downloaded",
                    "privacy.export_requested", "privacy.export_completed", "privacy.export_downloaded",
                ])

            // Extension: once, with a reason.
            let filedAgain = try await f.request(.post, "/v1/privacy/exports", as: f.acme, f.bob)
            let bobExport = try #require((try f.object(filedAgain.body)["request"] as? [String: Any])?["id"] as? String)
            let extended = try await f.request(
                .post, "/v1/privacy/exports/\(bobExport)/extend", as: f.acme, nil, body: #"{"months": 2, "reason": "many systems"}"#)
            #expect(extended.status == .ok)
            #expect(try f.object(extended.body)["extension_reason"] as? String == "many systems")
            #expect(
                try await f.request(
                    .post, "/v1/privacy/exports/\(bobExport)/extend", as: f.acme, nil, body: #"{"months": 1, "reason": "again"}"#
                ).status == .conflict)
        }
    }

    @Test("the gateway's worker never runs a request row written outside the privacy service: refused, failed, audited, nothing erased")
    func workerRefusesInsertedRequests() async throws {
        try await PrivacyRouteFixture.run { f in
            try await f.seed(f.alice)
            let forged: UUID = try await f.auth.owner.query(
                """
                INSERT INTO public.data_deletion_requests (tenant_id, user_id, status, result)
                VALUES ($1, $2, 'pending', '{"tables": {"public.projects": 999999}}') RETURNING id
                """, [f.acme.id, f.alice]
            ).first!.decode("id")
            let worker = Task {
                try await PrivacyWorkerService(privacy: f.service, pollInterval: .milliseconds(50), logger: Logger(label: "test")).run()
            }
            var status = ""
            for _ in 0..<200 {
                status = try await f.auth.owner.query("SELECT status FROM public.data_deletion_requests WHERE id = $1", [forged]).first!
                    .decode("status")
                if status != "pending" && status != "processing" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            worker.cancel()
            _ = try? await worker.value
            #expect(status == "failed")
            let projects = try await f.auth.owner.query("SELECT count(*) AS n FROM public.projects WHERE user_id = $1", [f.alice]).first!
                .decode("n", as: Int.self)
            #expect(projects == 1)
            let key = try await f.auth.owner.query(
                "SELECT count(*) AS n FROM keyring.subject_keys WHERE tenant_id = $1 AND user_id = $2 AND destroyed_at IS NOT NULL",
                [f.acme.id, f.alice])
            #expect(try key.first!.decode("n", as: Int.self) == 0)
            let refused = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.request_refused")
            #expect(refused.map(\.target) == [forged.uuidString.lowercased()])
            let shown = try f.object(
                try await f.request(.get, "/v1/privacy/deletions/\(forged.uuidString.lowercased())", as: f.acme, nil).body)
            #expect((shown["request"] as? [String: Any])?["status"] as? String == "failed")
            #expect(shown["certificate"] == nil || shown["certificate"] is NSNull)
        }
    }

    @Test("deletion: plan, cancel, plan again, confirm, erased by the worker; the certificate verifies; cancel after processing is refused")
    func deletion() async throws {
        try await PrivacyRouteFixture.run { f in
            try await f.seed(f.alice)
            try await f.seed(f.bob)
            let planned = try await f.request(.post, "/v1/privacy/deletions", as: f.acme, f.alice)
            #expect(planned.status == .created)
            let first = try f.object(planned.body)
            let firstID = try #require((first["request"] as? [String: Any])?["id"] as? String)
            let plan = try #require(first["plan"] as? [String: Any])
            let projects = try #require((plan["tables"] as? [[String: Any]])?.first { $0["table"] as? String == "public.projects" })
            #expect(projects["rows"] as? Int == 1 && projects["strategy"] as? String == "delete")
            #expect(try await f.request(.post, "/v1/privacy/deletions/\(firstID)/cancel", as: f.acme, f.alice).status == .ok)
            #expect(try await f.request(.post, "/v1/privacy/deletions/\(firstID)/confirm", as: f.acme, f.alice).status == .conflict)

            let second = try f.object(try await f.request(.post, "/v1/privacy/deletions", as: f.acme, f.alice).body)
            let id = try #require((second["request"] as? [String: Any])?["id"] as? String)
            #expect(id != firstID)
            #expect(try await f.request(.post, "/v1/privacy/deletions/\(id)/confirm", as: f.acme, f.bob).status == .notFound)
            let confirmed = try await f.request(.post, "/v1/privacy/deletions/\(id)/confirm", as: f.acme, f.alice)
            #expect(confirmed.status == .accepted)
            let claimed = try #require(try await f.service.claimNext(.deletion))
            #expect(try await f.request(.post, "/v1/privacy/deletions/\(id)/cancel", as: f.acme, nil).status == .conflict)
            try await f.service.processDeletion(tenant: claimed.tenant, id: claimed.id)

            let done = try await f.request(.get, "/v1/privacy/deletions/\(id)", as: f.acme, nil)
            #expect(done.status == .ok)
            let document = try f.object(done.body)
            #expect((document["request"] as? [String: Any])?["status"] as? String == "completed")
            let certificateJSON = try JSONSerialization.data(withJSONObject: try #require(document["certificate"]))
            let certificate = try DeletionCertificate.decode(json: String(decoding: certificateJSON, as: UTF8.self))
            #expect(certificate.verify(publicKey: f.signingKey.publicKey))
            #expect(certificate.verification.passed)
            // As served, it proves its own erasure was recorded, offline with the public key alone (issue 16);
            // another subject of the tenant does not get it.
            #expect(try certificate.verifyOffline(publicKeys: [f.signingKey.publicKey]).hasPrefix("OK: deletion certificate \(id)"))
            #expect(try await f.request(.get, "/v1/privacy/deletions/\(id)", as: f.acme, f.bob).status == .notFound)
            let left = try await f.auth.owner.query("SELECT count(*) AS n FROM public.projects WHERE user_id = $1", [f.alice]).first!
                .decode("n", as: Int.self)
            let bobs = try await f.auth.owner.query("SELECT count(*) AS n FROM public.projects WHERE user_id = $1", [f.bob]).first!.decode(
                "n", as: Int.self)
            #expect(left == 0 && bobs == 1)
            // A new subject record, nothing left.
            #expect(try await f.request(.post, "/v1/privacy/deletions", as: f.acme, f.alice, body: nil).status == .created)
            #expect(try await f.request(.post, "/v1/privacy/deletions", as: f.dataOnly, f.alice).status == .forbidden)
            #expect(try await f.request(.get, "/v1/privacy/deletions/not-a-uuid", as: f.acme, nil).status == .badRequest)
        }
    }
}
