import Audit
import Foundation
import Keyring
import Postgres
import Sodium
import Synchronization
import TestSupport
import Testing

@testable import Secrets

/// A migrated database with one tenant, two registered users, and a store on the gateway's login.
struct SecretsFixture: Sendable {
    let owner: ConnectionPool
    let gateway: ConnectionPool
    let tenant: UUID
    let alice: UUID
    let bob: UUID
    let keyring: Keyring
    let store: SecretStore

    static func with(keptVersions: Int = 10, _ body: (SecretsFixture) async throws -> Void) async throws {
        try await TestDatabase.withMigratedDatabase { configuration in
            let owner = ConnectionPool(configuration: configuration, options: .init(maxConnections: 2))
            let gateway = ConnectionPool(configuration: TestDatabase.gateway(configuration), options: .init(maxConnections: 8))
            defer {
                owner.close()
                gateway.close()
            }
            let tenant: UUID = try await owner.query("INSERT INTO public.tenants (name) VALUES ('acme') RETURNING id").first!.decode("id")
            let alice = UUID(), bob = UUID()
            for user in [alice, bob] {
                try await owner.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant])
            }
            let keyring = try await Keyring.open(pool: gateway, root: .key(try SecureBytes(count: 32)))
            let keys = try AuditKeys(rootKey: keyring.serviceMaster)
            let store = SecretStore(
                pool: gateway, keyring: keyring, audit: AuditAppender(pool: gateway, keys: keys), auditKeys: keys,
                options: .init(keptVersions: keptVersions))
            try await body(
                SecretsFixture(owner: owner, gateway: gateway, tenant: tenant, alice: alice, bob: bob, keyring: keyring, store: store))
        }
    }

    func caller(_ user: UUID, role: SecretCaller.Role = .authenticated) -> SecretCaller {
        SecretCaller(tenant: tenant, role: role, subject: user, actor: "user:" + user.uuidString.lowercased(), requestID: "req-test")
    }

    func count(_ sql: String, _ binds: [any PostgresEncodable] = []) async throws -> Int {
        try await owner.query(sql, binds).first!.decode(at: 0)
    }
}

func secretsError(_ body: () async throws -> Void) async -> SecretsError? {
    do {
        try await body()
        return nil
    } catch let error as SecretsError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

@Suite("Secrets: values and versions")
struct SecretValueTests {
    @Test("a written value reads back; each write makes a version; past versions read back and are listed without values")
    func writeReadVersions() async throws {
        try await SecretsFixture.with { f in
            let alice = f.caller(f.alice)
            let first = try await f.store.write(alice, service: "github", value: "ghp_first")
            let second = try await f.store.write(alice, service: "github", value: "ghp_second")
            #expect(first.version == 1 && second.version == 2)
            #expect(try await f.store.read(alice, service: "github").value == "ghp_second")
            let past = try await f.store.read(alice, service: "github", version: 1)
            #expect(past.value == "ghp_first" && past.metadata.version == 1)
            let versions = try await f.store.versions(alice, service: "github")
            #expect(versions.map(\.version) == [2, 1])
            #expect(versions.map(\.current) == [true, false])
            let missing = await secretsError { _ = try await f.store.read(alice, service: "github", version: 7) }
            #expect(missing?.code == .notFound)
        }
    }

    @Test("check-and-set: a stale If-Match changes nothing; If-Match 0 only creates")
    func checkAndSet() async throws {
        try await SecretsFixture.with { f in
            let alice = f.caller(f.alice)
            _ = try await f.store.write(alice, service: "stripe", value: "sk_1", ifMatch: 0)
            let stale = await secretsError { _ = try await f.store.write(alice, service: "stripe", value: "sk_x", ifMatch: 0) }
            #expect(stale?.code == .versionConflict)
            let wrong = await secretsError { _ = try await f.store.write(alice, service: "stripe", value: "sk_x", ifMatch: 5) }
            #expect(wrong?.code == .versionConflict)
            let ok = try await f.store.write(alice, service: "stripe", value: "sk_2", ifMatch: 1)
            #expect(ok.version == 2)
            #expect(try await f.store.read(alice, service: "stripe").value == "sk_2")
        }
    }

    @Test("only the configured number of past versions is kept; older ones are destroyed")
    func keptVersions() async throws {
        try await SecretsFixture.with(keptVersions: 2) { f in
            let alice = f.caller(f.alice)
            for n in 1...5 { _ = try await f.store.write(alice, service: "aws", value: "v\(n)") }
            #expect(try await f.store.versions(alice, service: "aws").map(\.version) == [5, 4, 3])
            #expect(try await f.count("SELECT count(*) FROM public.user_secret_versions") == 2)
        }
    }

    @Test("soft delete hides the value until undeleted; destroy removes every version for good")
    func deleteUndeleteDestroy() async throws {
        try await SecretsFixture.with { f in
            let alice = f.caller(f.alice)
            _ = try await f.store.write(alice, service: "slack", value: "xoxb-1")
            _ = try await f.store.write(alice, service: "slack", value: "xoxb-2")
            let deleted = try await f.store.delete(alice, service: "slack")
            #expect(deleted.deletedAt != nil)
            let error1 = await secretsError { _ = try await f.store.read(alice, service: "slack") }
            #expect(error1?.code == .deleted)
            #expect(try await f.store.list(alice).secrets.isEmpty)
            #expect(try await f.store.list(alice, includeDeleted: true).secrets.map(\.serviceName) == ["slack"])
            _ = try await f.store.undelete(alice, service: "slack")
            #expect(try await f.store.read(alice, service: "slack").value == "xoxb-2")

            let current = await secretsError { _ = try await f.store.destroy(alice, service: "slack", version: 2) }
            #expect(current?.code == .invalidInput)
            #expect(try await f.store.destroy(alice, service: "slack", version: 1) == [1])
            let error2 = await secretsError { _ = try await f.store.read(alice, service: "slack", version: 1) }
            #expect(error2?.code == .notFound)
            #expect(try await f.store.destroy(alice, service: "slack") == [2])
            let error3 = await secretsError { _ = try await f.store.read(alice, service: "slack") }
            #expect(error3?.code == .notFound)
            #expect(try await f.count("SELECT count(*) FROM public.user_secrets") == 0)
        }
    }

    @Test("listing is paginated by service name and never carries values")
    func listing() async throws {
        try await SecretsFixture.with { f in
            let alice = f.caller(f.alice)
            for name in ["e", "a", "d", "c", "b"] { _ = try await f.store.write(alice, service: name, value: "secret-\(name)") }
            _ = try await f.store.write(f.caller(f.bob), service: "bobs", value: "x")
            let first = try await f.store.list(alice, limit: 2)
            #expect(first.secrets.map(\.serviceName) == ["a", "b"] && first.next == "b")
            let second = try await f.store.list(alice, limit: 2, after: first.next)
            #expect(second.secrets.map(\.serviceName) == ["c", "d"])
            let last = try await f.store.list(alice, limit: 2, after: second.next)
            #expect(last.secrets.map(\.serviceName) == ["e"] && last.next == nil)
            let json = String(decoding: try JSONEncoder().encode(first), as: UTF8.self)
            #expect(!json.contains("secret-"))
        }
    }

    @Test("bad service names and oversized values are refused before anything is written")
    func badInput() async throws {
        try await SecretsFixture.with { f in
            let alice = f.caller(f.alice)
            for name in ["", "   ", String(repeating: "x", count: 256), "tab\there"] {
                let error = await secretsError { _ = try await f.store.write(alice, service: name, value: "v") }
                #expect(error?.code == .invalidInput)
            }
            let big = String(repeating: "x", count: 65_537)
            let error4 = await secretsError { _ = try await f.store.write(alice, service: "big", value: big) }
            #expect(error4?.code == .invalidInput)
            let stored = try await f.count("SELECT count(*) FROM public.user_secrets")
            #expect(stored == 0)
        }
    }

    @Test(
        "versions past 32 bits, a negative If-Match and a NUL in a page cursor are invalid input before SQL; none is recorded as a store failure"
    )
    func outOfRange() async throws {
        try await SecretsFixture.with { f in
            let alice = f.caller(f.alice)
            _ = try await f.store.write(alice, service: "openai", value: "v")
            let tooLarge = Int(Int32.max) + 1
            let errors = [
                await secretsError { _ = try await f.store.read(alice, service: "openai", version: tooLarge) },
                await secretsError { _ = try await f.store.read(alice, service: "openai", version: 0) },
                await secretsError { _ = try await f.store.destroy(alice, service: "openai", version: tooLarge) },
                await secretsError { _ = try await f.store.write(alice, service: "openai", value: "w", ifMatch: -1) },
                await secretsError { _ = try await f.store.write(alice, service: "openai", value: "w", ifMatch: tooLarge) },
                await secretsError { _ = try await f.store.list(alice, after: "a\u{0}b") },
                // 255 characters as Swift counts them, 510 code points as the column's CHECK counts them.
                await secretsError { _ = try await f.store.write(alice, service: String(repeating: "e\u{301}", count: 255), value: "v") },
            ]
            #expect(errors.map { $0?.code } == Array(repeating: .invalidInput, count: errors.count))
            let unavailable = try await f.count(
                "SELECT count(*) FROM public.audit_events WHERE details->>'reason' = 'unavailable'")
            #expect(unavailable == 0)
        }
    }

    @Test("a data exception or NOT NULL/CHECK violation the database still raises is invalid input, not 'the store is unavailable'")
    func dataExceptionsAreInvalidInput() async throws {
        try await SecretsFixture.with { f in
            for sql in ["SELECT $1::int AS n", "SELECT $1::date AS n"] {
                do {
                    try await f.gateway.query(sql, ["2147483648"])
                    Issue.record("\(sql) did not fail")
                } catch let error as PostgresError {
                    #expect(error.isDataError)
                    #expect(SecretStore.mapped(error).code == .invalidInput)
                }
            }
            for value in ["NULL", "'   '"] {  // 23502 not-null, 23514 check
                do {
                    try await f.owner.query("INSERT INTO public.tenants (name) VALUES (\(value))")
                    Issue.record("the name \(value) was accepted")
                } catch let error as PostgresError {
                    #expect(error.isDataError)
                    #expect(SecretStore.mapped(error).code == .invalidInput)
                }
            }
            // A unique violation keeps its own meaning (a concurrent write), not invalid input.
            #expect(!PostgresError(.server, "duplicate", sqlState: "23505").isDataError)
            // A lost connection stays an outage.
            #expect(SecretStore.mapped(PostgresError(.connectionLost, "gone")).code == .unavailable)
        }
    }
}

@Suite("Secrets: binding and shredding")
struct SecretBindingTests {
    @Test("a ciphertext copied into another user's or another service's row does not open, and never yields the other value")
    func movedCiphertext() async throws {
        try await SecretsFixture.with { f in
            let alice = f.caller(f.alice), bob = f.caller(f.bob)
            _ = try await f.store.write(alice, service: "github", value: "alice-token")
            _ = try await f.store.write(alice, service: "gitlab", value: "alice-gitlab")
            _ = try await f.store.write(bob, service: "github", value: "bob-token")
            let copy = """
                UPDATE public.user_secrets t SET encrypted_value = s.encrypted_value, initialization_vector = s.initialization_vector
                FROM public.user_secrets s WHERE s.user_id = $1 AND s.service_name = 'github' AND t.user_id = $2 AND t.service_name = $3
                """
            try await f.owner.query(copy, [f.alice, f.bob, "github"])
            let crossUser = await secretsError { _ = try await f.store.read(bob, service: "github") }
            #expect(crossUser?.code == .cannotOpen)
            #expect(crossUser?.message.contains("alice-token") == false)
            try await f.owner.query(copy, [f.alice, f.alice, "gitlab"])
            let error5 = await secretsError { _ = try await f.store.read(alice, service: "gitlab") }
            #expect(error5?.code == .cannotOpen)
            #expect(try await f.store.read(alice, service: "github").value == "alice-token")
        }
    }

    @Test("destroying the subject key makes every secret of that user unopenable while the rows remain; others are untouched")
    func cryptoShredding() async throws {
        try await SecretsFixture.with { f in
            let alice = f.caller(f.alice), bob = f.caller(f.bob)
            _ = try await f.store.write(alice, service: "github", value: "alice-1")
            _ = try await f.store.write(alice, service: "github", value: "alice-2")
            _ = try await f.store.write(alice, service: "aws", value: "alice-aws")
            _ = try await f.store.write(bob, service: "github", value: "bob-1")
            let (tenant, user) = (f.tenant, f.alice)
            _ = try await f.gateway.transaction { try Keyring.shredSubjectKey(tenant, user: user, in: $0) }

            for (service, version) in [("github", nil), ("github", 1), ("aws", nil)] as [(String, Int?)] {
                let error6 = await secretsError { _ = try await f.store.read(alice, service: service, version: version) }
                #expect(error6?.code == .shredded)
            }
            let error7 = await secretsError { _ = try await f.store.write(alice, service: "new", value: "x") }
            #expect(error7?.code == .shredded)
            // The ciphertexts are still there; what is gone is the key.
            #expect(try await f.count("SELECT count(*) FROM public.user_secrets WHERE user_id = $1", [f.alice]) == 2)
            #expect(
                try await f.count("SELECT count(*) FROM keyring.subject_keys WHERE user_id = $1 AND wrapped_key IS NULL", [f.alice]) == 1)
            #expect(try await f.store.read(bob, service: "github").value == "bob-1")
        }
    }
}

@Suite("Secrets: auditing")
struct SecretAuditTests {
    @Test("every access and failed attempt is audited with the service's HMAC, never the name or the value")
    func entries() async throws {
        try await SecretsFixture.with { f in
            let alice = f.caller(f.alice)
            _ = try await f.store.write(alice, service: "github", value: "plaintext-value-123")
            _ = try await f.store.read(alice, service: "github")
            _ = try await f.store.list(alice)
            _ = try await f.store.versions(alice, service: "github")
            _ = await secretsError { _ = try await f.store.read(alice, service: "nope") }
            _ = await secretsError { _ = try await f.store.write(alice, service: "github", value: "x", ifMatch: 9) }
            try await f.store.recordDenied(f.caller(f.bob), action: "secret.read", service: "github", reason: "not your secret")
            _ = try await f.store.delete(alice, service: "github")

            let rows = try await f.owner.query(
                "SELECT action, outcome, target, details::text AS details, row_to_json(e)::text AS raw FROM public.audit_events e ORDER BY seq"
            ).rows
            let actions = try rows.map { "\(try $0.decode("action", as: String.self))/\(try $0.decode("outcome", as: String.self))" }
            #expect(
                actions == [
                    "secret.write/success", "secret.read/success", "secret.list/success", "secret.versions/success",
                    "secret.read/failure", "secret.write/failure", "secret.read/denied", "secret.delete/success",
                ])
            for row in rows {
                let raw: String = try row.decode("raw")
                #expect(!raw.contains("plaintext-value-123") && !raw.contains("github"))
            }
            let keys = try AuditKeys(rootKey: f.keyring.serviceMaster)
            #expect(try rows[1].decode("target", as: String.self) == (try keys.pseudonym("github", tenant: f.tenant)))
            #expect(try rows[1].decode("details", as: String.self).contains(f.alice.uuidString.lowercased()))
        }
    }

    @Test("fail closed: when the audit trail refuses the entry, no value is returned and no write happens")
    func failClosed() async throws {
        try await SecretsFixture.with { f in
            let alice = f.caller(f.alice)
            _ = try await f.store.write(alice, service: "github", value: "v1")
            try await f.owner.query("REVOKE INSERT ON public.audit_events FROM privacy_gateway")
            let error8 = await secretsError { _ = try await f.store.read(alice, service: "github") }
            #expect(error8?.code == .auditUnavailable)
            let error9 = await secretsError { _ = try await f.store.write(alice, service: "github", value: "v2") }
            #expect(error9?.code == .auditUnavailable)
            try await f.owner.query("GRANT INSERT ON public.audit_events TO privacy_gateway")
            let value = try await f.store.read(alice, service: "github")
            #expect(value.value == "v1" && value.metadata.version == 1)
        }
    }
}

@Suite("Secrets: rotation under load")
struct SecretRotationTests {
    @Test("a KEK rotation during concurrent reads and writes loses nothing: every read succeeds and every last write reads back")
    func rotationUnderLoad() async throws {
        try await SecretsFixture.with { f in
            let users = (0..<40).map { _ in UUID() }
            for user in users {
                try await f.owner.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, f.tenant])
                _ = try await f.store.write(f.caller(user), service: "svc", value: "\(user)-0")
            }
            let failures = Shared<[String]>([])
            let lastWritten = Shared<[UUID: String]>(Dictionary(uniqueKeysWithValues: users.map { ($0, "\($0)-0") }))
            let done = Shared(false)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var round = 0
                        // Until the rotation is over, and at least 20 operations each, so the
                        // test always exercises reads and writes whatever the scheduling.
                        while !done.withLock({ $0 }) || round < 20 {
                            round += 1
                            let user = users[(worker * 13 + round) % users.count]
                            do {
                                if round % 3 == 0 && worker % 2 == 0 {
                                    // Writers own disjoint users, so the expected last value is known.
                                    guard users.firstIndex(of: user)! % 2 == worker / 2 else { continue }
                                    let value = "\(user)-\(worker)-\(round)"
                                    _ = try await f.store.write(f.caller(user), service: "svc", value: value)
                                    lastWritten.withLock { $0[user] = value }
                                } else {
                                    _ = try await f.store.read(f.caller(user), service: "svc")
                                }
                            } catch {
                                failures.withLock { $0.append("\(error)") }
                            }
                        }
                    }
                }
                group.addTask {
                    defer { done.withLock { $0 = true } }
                    for _ in 0..<2 {
                        _ = try await f.keyring.rotateTenantKey(f.tenant, pool: f.gateway, batchSize: 3)
                    }
                }
                try await group.waitForAll()
            }
            #expect(failures.withLock { $0 }.isEmpty)
            for user in users {
                let expected = lastWritten.withLock { $0[user] }
                #expect(try await f.store.read(f.caller(user), service: "svc").value == expected)
            }
            #expect(try await f.count("SELECT count(*) FROM keyring.tenant_keys WHERE retired_at IS NULL") == 1)
            #expect(try await f.count("SELECT count(DISTINCT kek_version) FROM keyring.subject_keys") == 1)
        }
    }
}

@Suite("Secrets: subjects are per tenant")
struct SecretTenantSubjectTests {
    @Test("the same uuid in two tenants has its own secrets and its own subject key in each")
    func sameUUIDTwoTenants() async throws {
        try await SecretsFixture.with { f in
            let globex: UUID = try await f.owner.query("INSERT INTO public.tenants (name) VALUES ('globex') RETURNING id").first!.decode(
                "id")
            try await f.owner.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [f.alice, globex])
            var elsewhere = f.caller(f.alice)
            elsewhere.tenant = globex
            _ = try await f.store.write(f.caller(f.alice), service: "openai", value: "sk-acme")
            _ = try await f.store.write(elsewhere, service: "openai", value: "sk-globex")
            #expect(try await f.store.read(f.caller(f.alice), service: "openai").value == "sk-acme")
            #expect(try await f.store.read(elsewhere, service: "openai").value == "sk-globex")
            #expect(
                try await f.count(
                    "SELECT count(DISTINCT wrapped_key) FROM keyring.subject_keys WHERE user_id = $1", [f.alice]) == 2)

            // Erasing globex's alice (rows and key) leaves acme's alice readable.
            try await f.owner.query("DELETE FROM auth.users WHERE tenant_id = $1 AND id = $2", [globex, f.alice])
            #expect(try await f.store.read(f.caller(f.alice), service: "openai").value == "sk-acme")
        }
    }
}

/// State shared by concurrent test tasks.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}
