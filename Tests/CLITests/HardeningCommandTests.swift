import Foundation
import Postgres
import TestSupport
import Testing

/// Issue 12, items 8–10 from the operator's side: pinned audit keys, sealing legacy secrets,
/// JWT audience/issuer pins, and what a revocation promises.
@Suite("privacyctl: pinned audit keys, sealed secrets, JWT pins, revocation")
struct HardeningCommandTests {
    @Test("audit verify --live fails a checkpoint whose key is only in the database; set-jwt pins aud/iss; revoke says what it guarantees")
    func operatorView() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let signingKey = directory.appendingPathComponent("signing.key").path
        let attackerKey = directory.appendingPathComponent("attacker.key").path
        let rootKey = directory.appendingPathComponent("root.key").path
        for path in [signingKey, attackerKey, rootKey] {
            #expect(try privacyctl(["keys", "generate", "--out", path]).status == 0)
        }
        try await TestDatabase.withMigratedDatabase { owner in
            let environment = [
                "DATABASE_URL": TestDatabase.url(owner), "PRIVACY_SIGNING_KEY_FILE": signingKey, "PRIVACY_ROOT_KEY_FILE": rootKey,
            ]
            let created = try privacyctl(["tenant", "create", "--name", "pinned", "--json"], environment: environment)
            let tenant = try #require(try json(created.stdout)["id"] as? String)
            #expect(try privacyctl(["audit", "checkpoint", "--tenant", tenant], environment: environment).status == 0)
            #expect(try privacyctl(["audit", "verify", "--live", "--tenant", tenant], environment: environment).status == 0)

            // Pins (not secret, so the audit trail records them), then a checkpoint signed with another
            // key: stored in the database with its public key, as a forger would.
            let pinned = try privacyctl(
                ["tenant", "set-jwt", "--tenant", tenant, "--audience", "api", "--issuer", "https://issuer.test"], environment: environment)
            #expect(pinned.status == 0, "\(pinned.stderr)")
            let admin = ConnectionPool(configuration: owner, options: .init(maxConnections: 1))
            defer { admin.close() }
            let row = try await admin.query("SELECT jwt_audience, jwt_issuer FROM tenants WHERE id = $1", [UUID(uuidString: tenant)!])
                .first!
            #expect(
                try row.decode("jwt_audience", as: String.self) == "api"
                    && row.decode("jwt_issuer", as: String.self) == "https://issuer.test")
            var forger = environment
            forger["PRIVACY_SIGNING_KEY_FILE"] = attackerKey
            // A key that does not trust the last checkpoint's signer never extends it.
            let refused = try privacyctl(["audit", "checkpoint", "--tenant", tenant], environment: forger)
            #expect(refused.status != 0 && refused.stderr.contains("not signed by a trusted key"), "\(refused.stderr)")
            // A forger who pins the real key (it is public) extends the chain with its own signature.
            let realKey: String = try await admin.query(
                "SELECT encode(public_key, 'hex') AS key FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq LIMIT 1",
                [UUID(uuidString: tenant)!]
            ).first!.decode("key")
            forger["PRIVACY_AUDIT_PUBLIC_KEYS"] = realKey
            let forged = try privacyctl(["audit", "checkpoint", "--tenant", tenant], environment: forger)
            #expect(forged.status == 0, "\(forged.stderr)")

            let live = try privacyctl(["audit", "verify", "--live", "--tenant", tenant, "--json"], environment: environment)
            #expect(live.status == 3, "\(live.stdout)\(live.stderr)")
            #expect(live.stdout.contains("unknown_key"))
            // The forger's own key is trusted only where it is pinned.
            var forgerOnly = forger
            forgerOnly["PRIVACY_AUDIT_PUBLIC_KEYS"] = nil
            #expect(try privacyctl(["audit", "verify", "--live", "--tenant", tenant], environment: forgerOnly).status == 3)

            let key = try privacyctl(
                ["servicekey", "create", "--tenant", tenant, "--scope", "data:read", "--json"], environment: environment)
            let keyID = try #require(try json(key.stdout)["id"] as? String)
            let revoked = try privacyctl(["servicekey", "revoke", keyID], environment: environment)
            #expect(revoked.status == 0)
            #expect(revoked.stdout.contains("every gateway refuses it from its next request"))

            // On a current database there is nothing left to seal.
            let sealed = try privacyctl(["tenant", "seal-secrets", "--json"], environment: environment)
            #expect(sealed.status == 0, "\(sealed.stderr)")
            #expect(try json(sealed.stdout)["sealed"] as? Int == 0)
        }
    }
}
