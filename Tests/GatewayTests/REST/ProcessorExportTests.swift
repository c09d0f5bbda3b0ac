import Audit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Postgres
import Privacy
import Sodium
import TestSupport
import Testing

@testable import Gateway

private let vaultSecret = "vault-secret-0123456789abcdefghijklmnopqrstuvwxyz"
private let crmSecret = "crm-secret-0123456789abcdefghijklmnopqrstuvwxyz"

extension PrivacyRouteFixture {
    /// Declares a processor with `export_required` set through the admin API; its id.
    func declareForExport(_ name: String, url: String, secret: String, key: String, exportRequired: Bool = true) async throws -> UUID {
        let answer = try await admin(
            .post, "/v1/admin/processors", key: key,
            body: """
                {"name": "\(name)", "data_kind": "\(name) records", "webhook_url": "\(url)", "secret": "\(secret)",
                 "timeout_seconds": 3600, "export_required": \(exportRequired)}
                """)
        #expect(answer.status == .created, "\(answer.body)")
        let processor = try #require(try object(answer.body)["processor"] as? [String: Any])
        let id = try #require(processor["id"] as? String)
        return try #require(UUID(uuidString: id))
    }

    /// Files alice's export through the route and runs it as the worker does until it waits for
    /// its processors; its id.
    func exportWaitingForProcessors(_ user: UUID) async throws -> UUID {
        try await seed(user)
        let filed = try await request(.post, "/v1/privacy/exports", as: acme, user)
        #expect(filed.status == .accepted)
        let claimed = try #require(try await service.claimNext(.export))
        do {
            _ = try await service.processExport(tenant: claimed.tenant, id: claimed.id)
            Issue.record("the export did not wait for its processors")
        } catch let error as PrivacyError {
            #expect(error.code == .awaitingInput, "\(error)")
        }
        #expect(try await service.request(.export, tenant: acme.id, id: claimed.id).status == "requires_input")
        return claimed.id
    }

    /// The worker's resumption of a waiting export, then the archive's files through the download link.
    func resumeAndDownload(_ id: UUID, as user: UUID) async throws -> (status: [String: Any], files: [String: [UInt8]]) {
        let claimed = try #require(try await service.claimNext(.export))
        #expect(claimed.id == id)
        _ = try await service.processExport(tenant: claimed.tenant, id: claimed.id)
        let document = try object(try await request(.get, "/v1/privacy/exports/\(id.lowercasedString)", as: acme, user).body)
        #expect(document["archive_available"] as? Bool == true)
        let url = try #require((document["download"] as? [String: Any])?["url"] as? String)
        let archive = try await request(.get, url, as: acme, nil)
        #expect(archive.status == .ok)
        var files: [String: [UInt8]] = [:]
        for entry in try TarReader.entries(archive.bytes) { files[entry.name] = entry.content }
        return (document, files)
    }
}

@Suite(
    "Processors on exports: export_required processors called signed, their answers listed in the archive; callbacks bound to their processor"
)
struct ProcessorExportTests {
    @Test(
        "a forged reference (script URL, credentials, markup, too long) is refused 400 and records nothing; a v1 signature or one made for another processor sharing the secret is 401"
    )
    func forgedAnswersRefused() async throws {
        try await PrivacyRouteFixture.withProcessor { f, _, port in
            let key = try await f.adminKey(f.acme)
            // One vendor declared twice with the same secret: each route takes only its own processor's signature.
            let vault = try await f.declareForExport("vault", url: "http://127.0.0.1:\(port)/vault", secret: vaultSecret, key: key)
            let mirror = try await f.declareForExport("mirror", url: "http://127.0.0.1:\(port)/mirror", secret: vaultSecret, key: key)
            let id = try await f.exportWaitingForProcessors(f.alice)
            let request = id.lowercasedString
            for reference in [
                "javascript:alert(1)", "https://user:pw@vault.example/x", "<script>x</script>", "a b",
                "http://vault.example/x", String(repeating: "r", count: 501), "\"onmouseover=x",
            ] {
                let answer = try await f.callback(
                    vault, request: request, outcome: "confirmed", secret: vaultSecret, reference: reference)
                #expect(answer.status == .badRequest, "\(reference): \(answer.body)")
            }
            // mirror's signature (same secret) replayed at vault's route, and vault's at mirror's.
            #expect(
                try await f.callback(vault, request: request, outcome: "confirmed", secret: vaultSecret, signedAs: mirror).status
                    == .unauthorized)
            #expect(
                try await f.callback(mirror, request: request, outcome: "refused", secret: vaultSecret, signedAs: vault).status
                    == .unauthorized)
            // The former v1 scheme (no processor id signed) is no longer accepted.
            let now = Int(Date().timeIntervalSince1970)
            let body = #"{"request_id": "\#(request)", "outcome": "confirmed"}"#
            let v1 =
                "v1="
                + Hex.encode(
                    HMACSHA256.authenticate(
                        Array("\(now).\(request).".utf8) + Array(body.utf8),
                        key: try SecureBytes(copying: Array(vaultSecret.utf8))))
            #expect(
                try await f.callback(vault, request: request, outcome: "confirmed", secret: vaultSecret, timestamp: now, signature: v1)
                    .status == .unauthorized)
            let recorded = try await f.outcomes(id)
            #expect(recorded["vault"]?.outcome == nil && recorded["mirror"]?.outcome == nil)
            #expect(
                try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "privacy.processor_answered").isEmpty
            )
            // Each signed for its own id is recorded.
            #expect(try await f.callback(vault, request: request, outcome: "confirmed", secret: vaultSecret).status == .ok)
            #expect(try await f.callback(mirror, request: request, outcome: "confirmed", secret: vaultSecret).status == .ok)
        }
    }

    @Test(
        "an export waits in requires_input for its export_required processors only, calls each signed as type export, and lists each answer with its reference in the manifest and index.html"
    )
    func exportWithProcessors() async throws {
        try await PrivacyRouteFixture.withProcessor { f, processor, port in
            let key = try await f.adminKey(f.acme)
            await processor.fail("/vault", times: 1)
            let vault = try await f.declareForExport("vault", url: "http://127.0.0.1:\(port)/vault", secret: vaultSecret, key: key)
            // Declared for erasures only (export_required defaults to false): never asked on an export.
            _ = try await f.declare("crm", url: "http://127.0.0.1:\(port)/crm", secret: crmSecret, key: key)
            let id = try await f.exportWaitingForProcessors(f.alice)
            // Waiting: nothing written, the worker finds nothing to run.
            #expect(!FileManager.default.fileExists(atPath: f.service.archivePath(id)))
            #expect(try await f.service.claimNext(.export) == nil)
            // Retried after a 500 as an erasure's calls are.
            #expect(try await f.service.dispatchProcessorCalls() == 1)
            #expect(try await f.service.dispatchProcessorCalls() == 1)
            #expect(try await f.service.dispatchProcessorCalls() == 0)
            #expect(await processor.calls(to: "/crm").isEmpty)
            let calls = await processor.calls(to: "/vault")
            #expect(calls.count == 2)
            for call in calls {
                let header = try #require(call.timestamp)
                let timestamp = try #require(Int(header))
                #expect(
                    call.signature
                        == ProcessorSignature.sign(
                            body: call.body, processorID: vault.lowercasedString, timestamp: timestamp, requestID: id.lowercasedString,
                            secret: try SecureBytes(copying: Array(vaultSecret.utf8))))
                let body = try f.object(String(decoding: call.body, as: UTF8.self))
                #expect(body["type"] as? String == "export" && body["user_id"] as? String == f.alice.uuidString.lowercased())
                #expect(body["callback"] as? String == "/v1/privacy/processors/\(vault.lowercasedString)/callback")
            }
            let link = "https://vault.example/exports/7f3a?sig=abc"
            #expect(
                try await f.callback(vault, request: id.lowercasedString, outcome: "confirmed", secret: vaultSecret, reference: link)
                    .status == .ok)

            let (document, files) = try await f.resumeAndDownload(id, as: f.alice)
            #expect((document["request"] as? [String: Any])?["status"] as? String == "completed")
            let manifest = try JSONDecoder().decode(ExportManifest.self, from: Data(try #require(files["manifest.json"])))
            let listed = try #require(manifest.processors)
            #expect(listed.map(\.name) == ["vault"])
            #expect(listed.first?.outcome == "confirmed" && listed.first?.reference == link && listed.first?.answeredAt != nil)
            #expect(listed.first?.required == true)
            let index = String(decoding: try #require(files["index.html"]), as: UTF8.self)
            #expect(index.contains("Data held by other services") && index.contains(">vault<"))
            #expect(index.contains("href=\"https://vault.example/exports/7f3a?sig=abc\""))
            #expect(index.contains("vault records"))
            // The trail records the call and the answer; the completion names the processors.
            for action in ["privacy.processor_called", "privacy.processor_answered", "privacy.export_completed"] {
                #expect(
                    try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: action).count >= 1, "\(action)")
            }
            #expect(try await PlaintextAtRestTests.scan(f.auth.owner, for: vaultSecret).hits == [])
        }
    }

    @Test(
        "an export_required processor that refuses, or does not answer by its deadline, makes the export partially_completed; the archive still downloads and says so"
    )
    func requiredProcessorNotConfirmed() async throws {
        try await PrivacyRouteFixture.withProcessor { f, _, port in
            let key = try await f.adminKey(f.acme)
            let vault = try await f.declareForExport("vault", url: "http://127.0.0.1:\(port)/vault", secret: vaultSecret, key: key)
            let logs = try await f.declareForExport("logs", url: "http://127.0.0.1:\(port)/logs", secret: crmSecret, key: key)
            let id = try await f.exportWaitingForProcessors(f.alice)
            try await f.service.dispatchProcessorCalls()
            #expect(
                try await f.callback(
                    vault, request: id.lowercasedString, outcome: "refused", secret: vaultSecret, detail: "account closed"
                ).status == .ok)
            try await f.expire(logs)
            #expect(
                try await f.callback(logs, request: id.lowercasedString, outcome: "confirmed", secret: crmSecret).status == .conflict)
            let (document, files) = try await f.resumeAndDownload(id, as: f.alice)
            let request = try #require(document["request"] as? [String: Any])
            #expect(request["status"] as? String == "partially_completed")
            #expect((request["status_reason"] as? String)?.contains("logs, vault") == true)
            let manifest = try JSONDecoder().decode(ExportManifest.self, from: Data(try #require(files["manifest.json"])))
            let listed = Dictionary(uniqueKeysWithValues: (manifest.processors ?? []).map { ($0.name, $0) })
            #expect(listed["vault"]?.outcome == "refused" && listed["vault"]?.detail == "account closed")
            #expect(listed["logs"]?.outcome == "timed_out")
            let index = String(decoding: try #require(files["index.html"]), as: UTF8.self)
            #expect(index.contains("refused (account closed)") && index.contains("did not answer by its deadline"))
            // The database part is all there.
            #expect(files["public.projects.csv"] != nil)
        }
    }

    @Test(
        "side door: another subject cannot see a waiting export or its processors' part, and an export without export_required processors runs at once"
    )
    func sideDoors() async throws {
        try await PrivacyRouteFixture.withProcessor { f, _, port in
            let key = try await f.adminKey(f.acme)
            _ = try await f.declare("crm", url: "http://127.0.0.1:\(port)/crm", secret: crmSecret, key: key)
            // Only an erasure processor: bob's export is not held up.
            try await f.seed(f.bob)
            _ = try await f.request(.post, "/v1/privacy/exports", as: f.acme, f.bob)
            let bobs = try #require(try await f.service.claimNext(.export))
            _ = try await f.service.processExport(tenant: bobs.tenant, id: bobs.id)
            #expect(try await f.service.request(.export, tenant: f.acme.id, id: bobs.id).status == "completed")
            #expect(try await f.service.processorOutcomes(tenant: f.acme.id, id: bobs.id).isEmpty)

            _ = try await f.declareForExport("vault", url: "http://127.0.0.1:\(port)/vault", secret: vaultSecret, key: key)
            let id = try await f.exportWaitingForProcessors(f.alice)
            #expect(try await f.request(.get, "/v1/privacy/exports/\(id.lowercasedString)", as: f.acme, f.bob).status == .notFound)
            // Alice sees her export waiting, with the processor's part (never its secret or URL).
            let waiting = try await f.request(.get, "/v1/privacy/exports/\(id.lowercasedString)", as: f.acme, f.alice)
            #expect((try f.object(waiting.body)["processors"] as? [[String: Any]])?.first?["name"] as? String == "vault")
            #expect(!waiting.body.contains(vaultSecret) && !waiting.body.contains("127.0.0.1"))
            // A request role cannot move it out of requires_input through /rest/v1 (the trigger's table of moves).
            let moved = try await f.request(
                .patch, "/rest/v1/data_export_requests?id=eq.\(id.lowercasedString)", as: f.acme, f.alice,
                body: #"{"status": "completed"}"#)
            #expect(moved.status.code < 500, "\(moved.status) \(moved.body)")
            #expect(try await f.service.request(.export, tenant: f.acme.id, id: id).status == "requires_input")
        }
    }
}
