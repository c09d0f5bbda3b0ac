import Config
import Foundation
import Keyring
import Postgres
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// `/v1/admin` across real gateway processes, and `privacyctl` over HTTP (issue 17, items 1 and 2).
@Suite("Admin API across processes; privacyctl over HTTP", .serialized)
struct AdminProcessTests {
    /// Polls `gateway` until `path` with `key` answers 401, with a generous bound (30 s) and no
    /// threshold asserted; returns the time it took (printed as a measurement), nil if never.
    static func untilRefused(_ gateway: GatewayProcess, _ path: String, key: String) async throws -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(30) {
            if gateway.request("GET", path, headers: ["apikey": key]).status == 401 { return ContinuousClock.now - start }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    @Test(
        "a key revoked and a tenant disabled through one gateway's /v1/admin are refused by another process; privacyctl over HTTP creates a tenant and a key with no database URL or root key; a wrong token exits 4"
    )
    func adminAcrossProcesses() async throws {
        try await GatewayProcessFixture.run("admin-processes") { f in
            // Bootstrap, as privacyctl's direct-database mode does it: the operators' tenant and its admin key.
            let ops = try await f.tenants.create(name: "ops", jwtSecret: nil)
            let (_, operatorKey) = try await f.keys.create(tenant: ops.id, scopes: [.admin], name: "operator")
            let acme = try await f.tenants.create(name: "acme", jwtSecret: nil)
            let (doomed, doomedKey) = try await f.keys.create(tenant: acme.id, scopes: [.dataRead], name: "doomed")
            let (_, acmeKey) = try await f.keys.create(tenant: acme.id, scopes: [.dataRead, .admin], name: "acme")

            let gateways = try await f.startGateways(2, poolSize: 4, operatorTenant: ops.id)
            defer { for gateway in gateways { _ = gateway.stop() } }
            let (a, b) = (gateways[0], gateways[1])
            let rest = "/rest/v1/projects?select=id"

            // 1. Revoked through A: B (which has the key cached) refuses it.
            #expect(b.request("GET", rest, headers: ["apikey": doomedKey]).status == 200)
            let revoked = a.request("POST", "/v1/admin/service-keys/\(doomed.id.lowercasedString)/revoke", headers: ["apikey": acmeKey])
            #expect(revoked.status == 200, "\(revoked.body)")
            let revokedAfter = try await Self.untilRefused(b, rest, key: doomedKey)
            #expect(revokedAfter != nil, "the second gateway still accepts a key revoked through the first")

            // 2. Disabled through A (an operator's key): every key of the tenant refused by B, on REST and /v1.
            #expect(b.request("GET", rest, headers: ["apikey": acmeKey]).status == 200)
            #expect(b.request("GET", "/v1/admin/service-keys", headers: ["apikey": acmeKey]).status == 200)
            // A tenant admin may not disable tenants, its own included.
            #expect(a.request("POST", "/v1/admin/tenants/\(acme.id.lowercasedString)/disable", headers: ["apikey": acmeKey]).status == 403)
            let disabled = a.request("POST", "/v1/admin/tenants/\(acme.id.lowercasedString)/disable", headers: ["apikey": operatorKey])
            #expect(disabled.status == 200, "\(disabled.body)")
            let disabledAfter = try await Self.untilRefused(b, rest, key: acmeKey)
            #expect(disabledAfter != nil, "the second gateway still accepts a disabled tenant's key")
            #expect(b.request("GET", "/v1/admin/service-keys", headers: ["apikey": acmeKey]).status == 401)
            print(
                "AdminProcessTests: refused by the second gateway after revoke \(revokedAfter.map { "\($0)" } ?? "-"), disable \(disabledAfter.map { "\($0)" } ?? "-") (measured, not asserted)"
            )

            // 3. privacyctl over HTTP: no DATABASE_URL, no root key in its environment.
            let http = ["PRIVACY_ADDR": "127.0.0.1:\(a.port)", "PRIVACY_TOKEN": operatorKey]
            let created = try Subprocess.runProduct("privacyctl", ["tenant", "create", "--name", "initech", "--json"], environment: http)
            #expect(created.status == 0, "\(created.stderr)")
            let initech = try #require(jsonObject(created.stdout)["id"] as? String)
            let key = try Subprocess.runProduct(
                "privacyctl",
                ["servicekey", "create", "--tenant", initech, "--scope", "admin", "--scope", "data:read", "--name", "first", "--json"],
                environment: http)
            #expect(key.status == 0, "\(key.stderr)")
            let initechKey = try #require(jsonObject(key.stdout)["key"] as? String)
            #expect(jsonObject(key.stdout)["scopes"] as? [String] == ["data:read", "admin"])
            // The new key works on the other gateway, and only for its own tenant.
            #expect(b.request("GET", "/v1/admin/tenants/\(initech)", headers: ["apikey": initechKey]).status == 200)
            #expect(b.request("GET", "/v1/admin/tenants/\(ops.id.lowercasedString)", headers: ["apikey": initechKey]).status == 404)
            let listed = try Subprocess.runProduct("privacyctl", ["servicekey", "list", "--tenant", initech, "--json"], environment: http)
            #expect(listed.status == 0 && listed.stdout.contains("\"first\"") && !listed.stdout.contains(initechKey), "\(listed.stderr)")
            let shown = try Subprocess.runProduct("privacyctl", ["tenant", "show", acme.id.lowercasedString], environment: http)
            #expect(shown.status == 0 && shown.stdout.contains("DISABLED"), "\(shown.stdout) \(shown.stderr)")
            let tenantList = try Subprocess.runProduct("privacyctl", ["tenant", "list"], environment: http)
            #expect(tenantList.status == 0 && tenantList.stdout.contains("initech") && tenantList.stdout.contains("acme"))
            let requests = try Subprocess.runProduct("privacyctl", ["requests", "list", "--overdue", "--json"], environment: http)
            #expect(requests.status == 0, "\(requests.stderr)")
            // The new tenant's own admin key, over HTTP: its own keys yes, tenants no.
            let local = ["PRIVACY_ADDR": "http://127.0.0.1:\(b.port)/", "PRIVACY_TOKEN": initechKey]
            #expect(try Subprocess.runProduct("privacyctl", ["servicekey", "list"], environment: local).status == 0)
            let pinned = try Subprocess.runProduct(
                "privacyctl", ["tenant", "set-jwt", "--tenant", initech, "--audience", "authenticated", "--json"], environment: local)
            #expect(pinned.status == 0, "\(pinned.stderr)")
            let notOperator = try Subprocess.runProduct("privacyctl", ["tenant", "list"], environment: local)
            #expect(notOperator.status == 4 && notOperator.stderr.contains("may not"), "\(notOperator.status) \(notOperator.stderr)")
            // It rotates itself with no overlap: the old key is expired for the other gateway's /rest/v1 pipeline
            // (public.assert_service_key_active, 0025) from the next request; the new one works there.
            #expect(b.request("GET", rest, headers: ["apikey": initechKey]).status == 200)
            let initechKeyID = try #require(jsonObject(key.stdout)["id"] as? String)
            let rotated = try Subprocess.runProduct(
                "privacyctl", ["servicekey", "rotate", initechKeyID, "--overlap-seconds", "0", "--json"], environment: local)
            #expect(rotated.status == 0, "\(rotated.stderr)")
            let rotatedKey = try #require(jsonObject(rotated.stdout)["key"] as? String)
            #expect(b.request("GET", rest, headers: ["apikey": initechKey]).status == 401)
            #expect(b.request("GET", rest, headers: ["apikey": rotatedKey]).status == 200)

            // A wrong token: one clear line, exit code 4, nothing created.
            let fake = "pgw_" + String(repeating: "0", count: 32) + "_" + String(repeating: "A", count: 43)
            let wrong = try Subprocess.runProduct(
                "privacyctl", ["tenant", "create", "--name", "evil"],
                environment: ["PRIVACY_ADDR": "127.0.0.1:\(a.port)", "PRIVACY_TOKEN": fake])
            #expect(wrong.status == 4, "\(wrong.status) \(wrong.stderr)")
            #expect(wrong.stderrLines.count == 1 && wrong.stderr.contains("refused PRIVACY_TOKEN"), "\(wrong.stderr)")
            #expect(!wrong.stderr.contains(fake))
            let revokedToken = try Subprocess.runProduct(
                "privacyctl", ["servicekey", "list"], environment: ["PRIVACY_ADDR": "127.0.0.1:\(a.port)", "PRIVACY_TOKEN": doomedKey])
            #expect(revokedToken.status == 4)
            let noToken = try Subprocess.runProduct("privacyctl", ["tenant", "list"], environment: ["PRIVACY_ADDR": "127.0.0.1:\(a.port)"])
            #expect(noToken.status == 1 && noToken.stderr.contains("PRIVACY_TOKEN"), "\(noToken.stderr)")
            let unreachable = try Subprocess.runProduct(
                "privacyctl", ["tenant", "list"], environment: ["PRIVACY_ADDR": "127.0.0.1:1", "PRIVACY_TOKEN": operatorKey])
            #expect(unreachable.status == 1 && unreachable.stderr.contains("cannot reach"), "\(unreachable.stderr)")
            #expect(try await f.tenants.list().map(\.name).sorted() == ["acme", "initech", "ops"])
        }
    }

    @Test("--version prints the one version on both executables; completion scripts offer the enumerated values")
    func versionAndCompletion() throws {
        let ctl = try Subprocess.runProduct("privacyctl", ["--version"], environment: [:])
        let gateway = try Subprocess.runProduct("privacy-gateway", ["--version"], environment: [:])
        #expect(ctl.status == 0 && gateway.status == 0)
        #expect(ctl.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == PrivacyGatewayVersion.string)
        #expect(gateway.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == PrivacyGatewayVersion.string)
        for shell in ["bash", "zsh", "fish"] {
            let script = try Subprocess.runProduct("privacyctl", ["--generate-completion-script", shell], environment: [:])
            #expect(script.status == 0)
            for value in ["secrets:write", "audit:read", "deletion", "html"] {
                #expect(script.stdout.contains(value), "\(shell) completion lacks \(value)")
            }
        }
    }
}
