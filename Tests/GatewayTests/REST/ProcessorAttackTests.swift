import Audit
import Config
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Keyring
import Postgres
import Privacy
import Sodium
import Tenancy
import TestSupport
import Testing

@testable import Gateway

private let crmSecret = "attack-crm-secret-0123456789abcdefghijklmnopqrstuvwxyz"
private let logsSecret = "attack-logs-secret-0123456789abcdefghijklmnopqrstuvwxyz"

/// The processors change (issue 18, item 3) and duplicate linking, attacked through the real
/// router and a real Postgres: each test is one attacker's attempt, and what must hold.
@Suite("Processors attacked: callbacks, admin routes, webhook targets, the worker's HTTP client, duplicates")
struct ProcessorAttackTests {
    @Test(
        "webhook targets inside the network are refused — metadata, link-local, private, loopback over https, CGNAT, ULA, IPv4 as one number or hex, mapped IPv6 — unless the private-network opt-in is set"
    )
    func internalTargetsRefused() async throws {
        // The gateway's own configuration: no loopback http (that is the tests' and development's opt-in).
        try await PrivacyRouteFixture.run { f in
            let key = try await f.adminKey(f.acme)
            let refused = [
                "https://169.254.169.254/latest/meta-data", "https://[fe80::1]/hook", "https://10.0.0.5/hook", "https://192.168.1.1/hook",
                "https://172.16.0.1/hook", "https://100.64.0.1/hook", "https://127.0.0.1/hook", "https://localhost/hook",
                "https://api.localhost/hook", "https://[::1]/hook", "https://[::ffff:169.254.169.254]/hook", "https://[fd00::1]/hook",
                "https://2852039166/hook", "https://0xa9fea9fe/hook", "https://0177.0.0.1/hook", "https://127.1/hook",
                "https://0.0.0.0/hook",
                "https://[::]/hook", "https://metadata.google.internal/computeMetadata/v1", "https://169.254.169.254./hook",
                "http://10.0.0.5/hook", "https://[fe80::1%25eth0]/hook",
                "https://a.example/" + String(repeating: "a", count: 2100),
            ]
            for (index, url) in refused.enumerated() {
                let answer = try await f.admin(
                    .post, "/v1/admin/processors", key: key,
                    body: """
                        {"name": "p\(index)", "data_kind": "x", "webhook_url": "\(url)"}
                        """)
                #expect(answer.status == .badRequest, "\(url) → \(answer.status) \(answer.body)")
            }
            #expect(try await f.service.processors(tenant: f.acme.id).isEmpty)
            // Public addresses and names pass.
            for (index, url) in ["https://93.184.215.14/hook", "https://[2606:4700::1111]/hook", "https://crm.example.com:8443/pgw"]
                .enumerated()
            {
                let answer = try await f.admin(
                    .post, "/v1/admin/processors", key: key,
                    body: """
                        {"name": "ok\(index)", "data_kind": "x", "webhook_url": "\(url)"}
                        """)
                #expect(answer.status == .created, "\(url) → \(answer.status) \(answer.body)")
            }
            // A row written around the check (here by the owner) is refused again when its call is sent: never called.
            let planted = try await f.declareThroughService("planted", dataKind: "x", url: "https://crm.example.com/pgw", secret: crmSecret)
            try await f.auth.owner.query(
                "UPDATE privacy.processors SET webhook_url = 'https://169.254.169.254/latest' WHERE id = $1::uuid", [planted])
            try await f.auth.owner.query(
                """
                INSERT INTO privacy.processor_calls (tenant_id, request_kind, request_id, processor_id, processor_name, data_kind, required, user_id, deadline_at)
                VALUES ($1, 'deletion', gen_random_uuid(), $2::uuid, 'planted', 'x', true, gen_random_uuid(), now() + interval '1 hour')
                """, [f.acme.id, planted])
            #expect(try await f.service.dispatchProcessorCalls() == 1)
            let call = try #require(
                try await f.auth.owner.query(
                    "SELECT last_error, delivered_at IS NULL AS waiting FROM privacy.processor_calls WHERE processor_id = $1::uuid",
                    [planted]
                ).first)
            #expect(try call.decode("waiting", as: Bool.self))
            #expect(try call.decodeIfPresent("last_error", as: String.self) == "webhook_url refused: not https, or an internal address")
        }
        // The documented opt-in (PRIVACY_PROCESSORS_ALLOW_PRIVATE_NETWORK) lets a processor inside the network be declared; still https.
        try await PrivacyRouteFixture.run(configure: { $0.processorsAllowPrivateNetwork = true }) { f in
            let key = try await f.adminKey(f.acme)
            #expect(
                try await f.admin(
                    .post, "/v1/admin/processors", key: key,
                    body: """
                        {"name": "inside", "data_kind": "x", "webhook_url": "https://10.0.0.5/hook"}
                        """
                ).status == .created)
            #expect(
                try await f.admin(
                    .post, "/v1/admin/processors", key: key,
                    body: """
                        {"name": "plain", "data_kind": "x", "webhook_url": "http://10.0.0.5/hook"}
                        """
                ).status == .badRequest)
        }
        #expect(
            try GatewayConfiguration.fromEnvironment(["PRIVACY_PROCESSORS_ALLOW_PRIVATE_NETWORK": "true"]).processorsAllowPrivateNetwork)
        #expect(try !GatewayConfiguration.fromEnvironment([:]).processorsAllowPrivateNetwork)
        #expect(throws: ConfigurationError.self) {
            try GatewayConfiguration.fromEnvironment(["PRIVACY_PROCESSORS_ALLOW_PRIVATE_NETWORK": "maybe"])
        }
    }

    @Test(
        "the admin routes refuse narrower scopes and a user's JWT with an admin key; the secret is in no answer, error or audit row; a tenant's processors are bounded"
    )
    func adminRoutesSideDoors() async throws {
        try await PrivacyRouteFixture.run(configure: {
            ProcessorRouteTests.loopback(&$0); $0.maxProcessorsPerTenant = 2
        }) { f in
            let admin = try await f.adminKey(f.acme)
            let registry = try ServiceKeyRegistry(pool: f.auth.owner, rootKey: f.auth.rootKey)
            let secrets = try await registry.create(tenant: f.acme.id, scopes: [.secretsRead, .secretsWrite], name: nil).1
            let reader = try await registry.create(tenant: f.acme.id, scopes: [.dataRead, .privacyErase, .auditRead], name: nil).1
            let body = #"{"name": "crm", "data_kind": "x", "webhook_url": "https://crm.example/pgw", "secret": "\#(crmSecret)"}"#
            for key in [secrets, reader] {
                #expect(try await f.admin(.get, "/v1/admin/processors", key: key).status == .forbidden)
                #expect(try await f.admin(.post, "/v1/admin/processors", key: key, body: body).status == .forbidden)
                #expect(try await f.admin(.delete, "/v1/admin/processors/\(UUID().uuidString.lowercased())", key: key).status == .forbidden)
            }
            // A user's JWT next to an admin key: the admin API takes a key alone.
            let jwt = try await Tokens.hs256(claims: Tokens.user(f.alice), secret: f.acme.secret!)
            let withUser = try await f.client.execute(
                uri: "/v1/admin/processors", method: .post,
                headers: [.apikey: admin, .authorization: "Bearer " + jwt, .contentType: "application/json"],
                body: ByteBuffer(string: body)
            ) { $0.status }
            #expect(withUser == .forbidden)
            #expect(try await f.service.processors(tenant: f.acme.id).isEmpty)

            // The secret given comes back in no answer: created, conflict, bad input.
            let created = try await f.admin(.post, "/v1/admin/processors", key: admin, body: body)
            #expect(created.status == .created && !created.body.contains(crmSecret))
            let conflict = try await f.admin(.post, "/v1/admin/processors", key: admin, body: body)
            #expect(conflict.status == .conflict && !conflict.body.contains(crmSecret))
            for bad in [
                #"{"name": "x1", "data_kind": "x", "webhook_url": "https://169.254.169.254/", "secret": "\#(crmSecret)"}"#,
                #"{"name": "x2", "data_kind": "x", "webhook_url": "https://a.example/", "secret": "\#(crmSecret)", "timeout_seconds": "soon"}"#,
                #"{"name": "x3", "data_kind": "x", "webhook_url": "https://a.example/", "secret": ["\#(crmSecret)"]}"#,
                #"{"name": "x4", "data_kind": "x", "webhook_url": "https://a.example/", "secret": "\#(crmSecret)\u0001"}"#,
            ] {
                let answer = try await f.admin(.post, "/v1/admin/processors", key: admin, body: bad)
                #expect(answer.status == .badRequest && !answer.body.contains(crmSecret), "\(answer.status) \(answer.body)")
            }
            #expect(!(try await f.admin(.get, "/v1/admin/processors", key: admin).body.contains(crmSecret)))
            #expect(try await PlaintextAtRestTests.scan(f.auth.owner, for: crmSecret).hits == [])

            // At most maxProcessorsPerTenant: the third is refused, nothing written; another tenant has its own bound.
            #expect(
                try await f.admin(
                    .post, "/v1/admin/processors", key: admin,
                    body: """
                        {"name": "logs", "data_kind": "x", "webhook_url": "https://logs.example/pgw"}
                        """
                ).status == .created)
            let third = try await f.admin(
                .post, "/v1/admin/processors", key: admin,
                body: """
                    {"name": "third", "data_kind": "x", "webhook_url": "https://third.example/pgw"}
                    """)
            #expect(third.status == .conflict, "\(third.body)")
            #expect(try await f.service.processors(tenant: f.acme.id).count == 2)
            let initech = try await f.auth.tenant("initech", scopes: [.admin])
            #expect(
                try await f.admin(
                    .post, "/v1/admin/processors", key: initech.apikey,
                    body: """
                        {"name": "third", "data_kind": "x", "webhook_url": "https://third.example/pgw"}
                        """
                ).status == .created)
        }
    }

    @Test(
        "callbacks: a body over 64 KiB, a malformed timestamp, a request id not canonical, a request never called, a call already closed, and a processor removed meanwhile are refused and record nothing"
    )
    func callbackEdges() async throws {
        try await PrivacyRouteFixture.withProcessor { f, _, port in
            let (key, crm, logs, id) = try await f.erasureAwaitingCRMAndLogs(port: port, crmSecret: crmSecret, logsSecret: logsSecret)
            let request = id.lowercasedString
            try await f.service.dispatchProcessorCalls()

            // Over the body limit: 413, nothing recorded (checked before any signature work).
            let detail = String(repeating: "d", count: 70_000)
            #expect(
                try await f.callback(crm, request: request, outcome: "confirmed", secret: crmSecret, detail: detail).status
                    == .contentTooLarge)
            // Timestamps that are not plain seconds, and a request id not in canonical form.
            let now = Int(Date().timeIntervalSince1970)
            let valid = try await f.callback(crm, request: request, outcome: "confirmed", secret: crmSecret, timestamp: now + 400)
            #expect(valid.status == .unauthorized)
            #expect(
                try await f.callback(
                    crm, request: request, outcome: "confirmed", secret: crmSecret, headerRequestID: request.uppercased()
                ).status != .ok)
            // A request this processor was never called for (an id of nothing): 404, not a new record.
            let stranger = UUID().uuidString.lowercased()
            #expect(try await f.callback(crm, request: stranger, outcome: "confirmed", secret: crmSecret).status == .notFound)
            #expect(try await f.outcomes(id)["crm"]?.outcome == nil)
            #expect(
                try await f.auth.owner.query("SELECT count(*) AS n FROM privacy.processor_calls").first!.decode("n", as: Int.self) == 2)

            // A callback cannot move the request: it stays requires_input while logs is open.
            #expect(try await f.callback(crm, request: request, outcome: "confirmed", secret: crmSecret).status == .ok)
            #expect(try await f.service.request(.deletion, tenant: f.acme.id, id: id).status == "requires_input")
            #expect(try await f.service.claimNext(.deletion) == nil)

            // logs is removed while its call is open: its answer can no longer be verified (401) and
            // its call closes at once, so the erasure finishes now — partially, logs being required.
            #expect(try await f.admin(.delete, "/v1/admin/processors/\(logs.lowercasedString)", key: key).status == .ok)
            #expect(try await f.callback(logs, request: request, outcome: "confirmed", secret: logsSecret).status == .unauthorized)
            let closed = try await f.outcomes(id)["logs"]
            #expect(closed?.outcome == "timed_out" && closed?.detail == "processor removed before it answered")
            let claimed = try #require(try await f.service.claimNext(.deletion))
            let certificate = try await f.service.processDeletion(tenant: claimed.tenant, id: claimed.id).certificate
            #expect(certificate.outcome == "partially_completed")
            // After the certificate: a flipped answer is a conflict, the same one a no-op; nothing changes.
            #expect(try await f.callback(crm, request: request, outcome: "refused", secret: crmSecret).status == .conflict)
            #expect(try await f.callback(crm, request: request, outcome: "confirmed", secret: crmSecret).status == .ok)
            #expect(try await f.service.deletionStatus(tenant: f.acme.id, id: id).certificate?.signature == certificate.signature)

            // partially_completed is closed: neither the privacy worker's role nor a request role can make it completed.
            await #expect(throws: PostgresError.self) {
                _ = try await f.asPrivacyWorker("UPDATE public.data_deletion_requests SET status = 'completed' WHERE id = $1", [id])
            }
            let patched = try await f.client.execute(
                uri: "/rest/v1/data_deletion_requests?id=eq.\(request)", method: .patch,
                headers: [.apikey: f.acme.apikey, .contentType: "application/json"],
                body: ByteBuffer(string: #"{"status": "completed"}"#)
            ) { $0.status }
            #expect(patched.code < 500)
            #expect(try await f.service.request(.deletion, tenant: f.acme.id, id: id).status == "partially_completed")
        }
    }

    @Test(
        "the worker's HTTP client follows no redirect (the signed call never reaches the Location), reads no body (1 GiB answered costs nothing), and a 200 with garbage is only a delivery"
    )
    func workerClient() async throws {
        try await PrivacyRouteFixture.withProcessor { f, processor, port in
            let key = try await f.adminKey(f.acme)
            await processor.redirect("/redirecting", to: "http://localhost:\(port)/sink")
            await processor.huge("/huge")
            _ = try await f.declare("redirecting", url: "http://127.0.0.1:\(port)/redirecting", secret: crmSecret, key: key)
            _ = try await f.declare("huge", url: "http://127.0.0.1:\(port)/huge", secret: logsSecret, key: key)
            let id = try await f.erasureWaitingForProcessors(f.alice)
            #expect(try await f.service.dispatchProcessorCalls() == 2)
            #expect(await processor.calls(to: "/sink").isEmpty)
            let rows = try await f.deliveries(id)
            #expect(try rows.map { try $0.decode("processor_name", as: String.self) } == ["huge", "redirecting"])
            // The 202 with a huge body is a delivery; the server never finished writing it.
            #expect(try rows[0].decode("delivered", as: Bool.self) == true)
            #expect(await !processor.hugeBodyFinished)
            // The redirect is a failed attempt, retried later, never followed.
            #expect(try rows[1].decode("delivered", as: Bool.self) == false)
            #expect(try rows[1].decodeIfPresent("last_error", as: String.self) == "the processor answered HTTP 307")
            // Delivered is not answered: the erasure still waits.
            #expect(try await f.outcomes(id)["huge"]?.outcome == nil)
            #expect(try await f.service.request(.deletion, tenant: f.acme.id, id: id).status == "requires_input")
        }
    }

    @Test("one tenant's many due calls do not fill a dispatch round: another tenant's call is sent in the same round")
    func dispatchFairAcrossTenants() async throws {
        try await PrivacyRouteFixture.withProcessor { f, processor, port in
            let initech = try await f.auth.tenant("initech", scopes: [.admin])
            let mine = try await f.declareThroughService("busy", dataKind: "x", url: "http://127.0.0.1:\(port)/busy", secret: crmSecret)
            let theirs = try await f.declareThroughService(
                "quiet", dataKind: "x", url: "http://127.0.0.1:\(port)/quiet", secret: logsSecret, tenant: initech.id)
            // acme: three calls due first; initech: one due after them.
            for (tenant, processor, name, age) in [
                (f.acme.id, mine, "busy", 40), (f.acme.id, mine, "busy", 30), (f.acme.id, mine, "busy", 20),
                (initech.id, theirs, "quiet", 10),
            ] {
                try await f.auth.owner.query(
                    """
                    INSERT INTO privacy.processor_calls (tenant_id, request_kind, request_id, processor_id, processor_name, data_kind, required, user_id, deadline_at, next_attempt_at)
                    VALUES ($1, 'deletion', gen_random_uuid(), $2::uuid, $3, 'x', true, gen_random_uuid(), now() + interval '1 hour', now() - make_interval(secs => $4))
                    """, [tenant, processor, name, age])
            }
            #expect(try await f.service.dispatchProcessorCalls(limit: 2) == 2)
            #expect(await processor.calls(to: "/quiet").count == 1)
            #expect(await processor.calls(to: "/busy").count == 1)
        }
    }

    @Test(
        "duplicates: another subject's filing is never linked to alice's request, and a duplicate opens no door to the original's archive")
    func duplicateSideDoors() async throws {
        try await PrivacyRouteFixture.run { f in
            try await f.seed(f.alice)
            try await f.seed(f.bob)
            let first = try f.object(try await f.request(.post, "/v1/privacy/exports", as: f.acme, f.alice).body)
            let original = try #require((first["request"] as? [String: Any])?["id"] as? String)
            // bob files in the window: his own request, not linked to alice's.
            let bobs = try f.object(try await f.request(.post, "/v1/privacy/exports", as: f.acme, f.bob).body)
            #expect(bobs["duplicate"] == nil && (bobs["request"] as? [String: Any])?["id"] as? String != original)
            // alice files again: linked. The original runs; its archive waits for its one download.
            let again = try f.object(try await f.request(.post, "/v1/privacy/exports", as: f.acme, f.alice).body)
            let duplicate = try #require((again["duplicate"] as? [String: Any])?["id"] as? String)
            while let claimed = try await f.service.claimNext(.export) {
                _ = try await f.service.processExport(tenant: claimed.tenant, id: claimed.id)
            }
            // bob reaches neither alice's original nor her duplicate.
            #expect(try await f.request(.get, "/v1/privacy/exports/\(original)", as: f.acme, f.bob).status == .notFound)
            #expect(try await f.request(.get, "/v1/privacy/exports/\(duplicate)", as: f.acme, f.bob).status == .notFound)
            // alice's duplicate shows no archive and no link; the original's link names the original only.
            let viaDuplicate = try f.object(try await f.request(.get, "/v1/privacy/exports/\(duplicate)", as: f.acme, f.alice).body)
            #expect(viaDuplicate["download"] == nil && viaDuplicate["archive_available"] as? Bool == false)
            let viaOriginal = try f.object(try await f.request(.get, "/v1/privacy/exports/\(original)", as: f.acme, f.alice).body)
            let url = try #require((viaOriginal["download"] as? [String: Any])?["url"] as? String)
            // The original's token presented under the duplicate's id: refused, and the token is not spent.
            let token = try #require(url.split(separator: "=").last.map(String.init))
            #expect(
                try await f.request(.get, "/v1/privacy/exports/\(duplicate)/download?token=\(token)", as: f.acme, nil).status.code >= 400)
            #expect(try await f.request(.get, url, as: f.acme, nil).status == .ok)
        }
    }
}
