import Audit
import Foundation
import Keyring
import Postgres
import Privacy
import Secrets
import Sodium
import TestSupport
import Testing

@Suite("Erasure crypto-shreds the subject's secrets")
struct ShreddingTests {
    @Test(
        "after erasure the user's secrets do not open, not even from a copy of their rows taken before (a backup); a neighbour's still do")
    func backupsDoNotOpen() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = UUID()
            try await fixture.pool.query("INSERT INTO public.tenants (id, name) VALUES ($1, 'shred')", [tenant])
            let keyring = try await Keyring.open(pool: fixture.pool, root: .key(fixture.rootKey))
            let keys = try AuditKeys(rootKey: keyring.serviceMaster)
            let store = SecretStore(
                pool: fixture.pool, keyring: keyring, audit: AuditAppender(pool: fixture.pool, keys: keys), auditKeys: keys)
            let user = UUID(), neighbour = UUID()
            for subject in [user, neighbour] {
                try await fixture.pool.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [subject, tenant])
            }
            func caller(_ subject: UUID) -> SecretCaller {
                SecretCaller(tenant: tenant, role: .authenticated, subject: subject, actor: "user:" + subject.uuidString.lowercased())
            }
            _ = try await store.write(caller(user), service: "github", value: "ghp_user_v1")
            _ = try await store.write(caller(user), service: "github", value: "ghp_user_v2")
            _ = try await store.write(caller(neighbour), service: "github", value: "ghp_neighbour")

            // The "backup": the user's sealed rows and their wrapped key, as a dump taken now would hold them.
            try await fixture.pool.query("CREATE TABLE backup_secrets AS SELECT * FROM public.user_secrets WHERE user_id = $1", [user])
            try await fixture.pool.query(
                "CREATE TABLE backup_versions AS SELECT * FROM public.user_secret_versions WHERE user_id = $1", [user])

            let requested = try await fixture.service.requestDeletion(tenant: tenant, subject: user, actor: operatorActor)
            let id = try #require(UUID(uuidString: requested.request.id))
            _ = try await fixture.service.confirmDeletion(tenant: tenant, id: id, actor: operatorActor)
            let run = try await fixture.service.processDeletion(tenant: tenant, id: id)
            #expect(run.certificate.verification.passed)
            #expect(run.certificate.verification.subjectKey == "destroyed")
            let gone = try await fixture.pool.query("SELECT count(*) AS n FROM public.user_secrets WHERE user_id = $1", [user])
            #expect(try gone.first!.decode("n", as: Int.self) == 0)

            // Restore the backup: the rows are back, the key is not, so nothing opens.
            try await fixture.pool.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant])
            try await fixture.pool.query("INSERT INTO public.user_secrets SELECT * FROM backup_secrets")
            try await fixture.pool.query("INSERT INTO public.user_secret_versions SELECT * FROM backup_versions")
            for version in [nil, 1] as [Int?] {
                do {
                    _ = try await store.read(caller(user), service: "github", version: version)
                    Issue.record("a shredded user's secret opened")
                } catch let error as SecretsError {
                    #expect(error.code == .shredded)
                }
            }
            #expect(try await store.read(caller(neighbour), service: "github").value == "ghp_neighbour")
        }
    }
}
