import Foundation
import Postgres
import Sodium
import Synchronization
import TestSupport
import Testing

@testable import Keyring

/// A migrated database with one tenant and pools as the owner and as the gateway's login
/// (the keyring must work with the gateway's grants alone).
struct KeyringFixture: Sendable {
    let owner: ConnectionPool
    let gateway: ConnectionPool
    let tenant: UUID

    static func with(_ body: (KeyringFixture) async throws -> Void) async throws {
        try await TestDatabase.withMigratedDatabase { configuration in
            let owner = ConnectionPool(configuration: configuration, options: .init(maxConnections: 2))
            let gateway = ConnectionPool(configuration: TestDatabase.gateway(configuration), options: .init(maxConnections: 6))
            defer {
                owner.close()
                gateway.close()
            }
            let tenant: UUID = try await owner.query(
                "INSERT INTO public.tenants (name) VALUES ('keyring-test') RETURNING id"
            ).first!.decode("id")
            try await body(KeyringFixture(owner: owner, gateway: gateway, tenant: tenant))
        }
    }

    func count(_ sql: String, _ binds: [any PostgresEncodable] = []) async throws -> Int {
        try await owner.query(sql, binds).first!.decode(at: 0)
    }

    /// The subject's DEK bytes, read back through the keyring (nil if none).
    func subjectKey(_ keyring: Keyring, _ user: UUID, create: Bool = false) async throws -> [UInt8]? {
        let tenant = self.tenant
        return try await gateway.transaction { connection in
            try keyring.subjectKey(tenant, user: user, create: create, in: connection)?.withUnsafeBytes { Array($0) }
        }
    }
}

@Suite("Keyring: root key")
struct RootKeyTests {
    @Test("the first start registers the root key; the same key opens again; another key is refused and changes nothing")
    func wrongRootKeyRefused() async throws {
        try await KeyringFixture.with { fixture in
            let root = try SecureBytes(count: 32)
            let first = try await Keyring.open(pool: fixture.gateway, root: .key(root))
            let again = try await Keyring.open(pool: fixture.gateway, root: .key(root))
            #expect(first.rootVersion == 1 && again.rootVersion == 1)
            #expect(first.serviceMaster.isEqual(to: again.serviceMaster))

            let wrong = await #expect(throws: KeyringError.self) {
                _ = try await Keyring.open(pool: fixture.gateway, root: .key(try SecureBytes(count: 32)))
            }
            #expect(wrong?.code == .wrongRootKey)
            #expect(try await fixture.count("SELECT count(*) FROM keyring.root_keys") == 1)
        }
    }

    @Test("a database set up before the keyring adopts its root key as the service master, so derived keys stay valid")
    func serviceMasterAdoptsRoot() async throws {
        try await KeyringFixture.with { fixture in
            let root = try SecureBytes(count: 32)
            let keyring = try await Keyring.open(pool: fixture.gateway, root: .key(root))
            #expect(keyring.serviceMaster.isEqual(to: root))
        }
    }

    @Test("a passphrase gives the same root key on every start; a wrong or short passphrase is refused")
    func passphrase() async throws {
        try await KeyringFixture.with { fixture in
            let first = try await Keyring.open(pool: fixture.gateway, root: .passphrase("correct horse battery staple"))
            let again = try await Keyring.open(pool: fixture.gateway, root: .passphrase("correct horse battery staple"))
            #expect(first.serviceMaster.isEqual(to: again.serviceMaster))
            let wrong = await #expect(throws: KeyringError.self) {
                _ = try await Keyring.open(pool: fixture.gateway, root: .passphrase("incorrect horse battery staple"))
            }
            #expect(wrong?.code == .wrongRootKey)
            let short = await #expect(throws: KeyringError.self) {
                _ = try await Keyring.open(pool: fixture.gateway, root: .passphrase("short"))
            }
            #expect(short?.code == .invalidInput)
        }
    }

    @Test("root rotation rewraps every tenant key: subjects' keys open unchanged under the new root; the old root is refused")
    func rootRotation() async throws {
        try await KeyringFixture.with { fixture in
            let oldRoot = try SecureBytes(count: 32), newRoot = try SecureBytes(count: 32)
            let keyring = try await Keyring.open(pool: fixture.gateway, root: .key(oldRoot))
            let users = (0..<5).map { _ in UUID() }
            var before: [[UInt8]] = []
            for user in users { before.append(try await fixture.subjectKey(keyring, user, create: true)!) }

            let (version, rewrapped) = try await keyring.rotateRoot(to: newRoot, pool: fixture.owner, batchSize: 2)
            #expect(version == 2 && rewrapped == 1)

            let retired = await #expect(throws: KeyringError.self) {
                _ = try await Keyring.open(pool: fixture.gateway, root: .key(oldRoot))
            }
            #expect(retired?.code == .retiredRootKey)
            let reopened = try await Keyring.open(pool: fixture.gateway, root: .key(newRoot))
            #expect(reopened.serviceMaster.isEqual(to: keyring.serviceMaster))
            for (user, key) in zip(users, before) {
                #expect(try await fixture.subjectKey(reopened, user) == key)
            }
        }
    }
}

@Suite("Keyring: subject keys")
struct SubjectKeyTests {
    @Test("a subject key is made once and opens to the same bytes; none exists until asked for")
    func createOnce() async throws {
        try await KeyringFixture.with { fixture in
            let keyring = try await Keyring.open(pool: fixture.gateway, root: .key(try SecureBytes(count: 32)))
            let user = UUID()
            #expect(try await fixture.subjectKey(keyring, user) == nil)
            let made = try await fixture.subjectKey(keyring, user, create: true)
            let again = try await fixture.subjectKey(keyring, user, create: true)
            #expect(made != nil && made == again)
            #expect(made?.count == 32)
            #expect(try await fixture.count("SELECT count(*) FROM keyring.subject_keys") == 1)
        }
    }

    @Test("a wrapped key copied into another subject's row does not open, and the error names no key")
    func movedKeyDoesNotOpen() async throws {
        try await KeyringFixture.with { fixture in
            let keyring = try await Keyring.open(pool: fixture.gateway, root: .key(try SecureBytes(count: 32)))
            let alice = UUID(), bob = UUID()
            _ = try await fixture.subjectKey(keyring, alice, create: true)
            _ = try await fixture.subjectKey(keyring, bob, create: true)
            try await fixture.owner.query(
                """
                UPDATE keyring.subject_keys b SET nonce = a.nonce, wrapped_key = a.wrapped_key
                FROM keyring.subject_keys a WHERE a.user_id = $1 AND b.user_id = $2
                """, [alice, bob])
            let error = await #expect(throws: KeyringError.self) { _ = try await fixture.subjectKey(keyring, bob) }
            #expect(error?.code == .unwrapFailed)
            #expect(error?.message.contains(bob.uuidString.lowercased()) == true)
        }
    }

    @Test("shredding destroys the key in the row itself; the subject's key can never be opened or made again")
    func shredding() async throws {
        try await KeyringFixture.with { fixture in
            let keyring = try await Keyring.open(pool: fixture.gateway, root: .key(try SecureBytes(count: 32)))
            let user = UUID(), never = UUID()
            _ = try await fixture.subjectKey(keyring, user, create: true)
            let tenant = fixture.tenant
            let first = try await fixture.gateway.transaction { try Keyring.shredSubjectKey(tenant, user: user, in: $0) }
            let second = try await fixture.gateway.transaction { try Keyring.shredSubjectKey(tenant, user: user, in: $0) }
            #expect(first && !second)
            let raw = try await fixture.owner.query(
                "SELECT nonce IS NULL AND wrapped_key IS NULL AND destroyed_at IS NOT NULL AS gone FROM keyring.subject_keys WHERE user_id = $1",
                [user])
            #expect(try raw.first!.decode("gone", as: Bool.self))
            for create in [false, true] {
                let error = await #expect(throws: KeyringError.self) { _ = try await fixture.subjectKey(keyring, user, create: create) }
                #expect(error?.code == .subjectKeyDestroyed)
            }
            // A subject who never had a key gets a marker, so none is made for them later.
            _ = try await fixture.gateway.transaction { try Keyring.shredSubjectKey(tenant, user: never, in: $0) }
            let error = await #expect(throws: KeyringError.self) { _ = try await fixture.subjectKey(keyring, never, create: true) }
            #expect(error?.code == .subjectKeyDestroyed)
        }
    }
}

@Suite("Keyring: KEK rotation")
struct RotationTests {
    @Test("rotation rewraps every subject key in batches and retires the old version; every key opens to the same bytes")
    func rotation() async throws {
        try await KeyringFixture.with { fixture in
            let keyring = try await Keyring.open(pool: fixture.gateway, root: .key(try SecureBytes(count: 32)))
            let users = (0..<23).map { _ in UUID() }
            var before: [UUID: [UInt8]] = [:]
            for user in users { before[user] = try await fixture.subjectKey(keyring, user, create: true) }
            let shredded = users[0]
            let tenant = fixture.tenant
            _ = try await fixture.gateway.transaction { try Keyring.shredSubjectKey(tenant, user: shredded, in: $0) }

            let batches = Counter()
            let report = try await keyring.rotateTenantKey(fixture.tenant, pool: fixture.gateway, batchSize: 5) { _ in batches.add() }
            #expect(report.fromVersions == [1] && report.toVersion == 2 && !report.resumed)
            #expect(report.rewrappedSubjectKeys == 22 && report.retiredVersions == [1])
            #expect(batches.value == 5)
            #expect(try await fixture.count("SELECT count(*) FROM keyring.subject_keys WHERE kek_version <> 2") == 0)
            let fresh = try await Keyring.open(pool: fixture.gateway, root: .key(keyring.root.key))
            for user in users.dropFirst() {
                #expect(try await fixture.subjectKey(fresh, user) == before[user])
            }
        }
    }

    @Test("a rotation interrupted after adding its version is resumed, not started again")
    func resume() async throws {
        try await KeyringFixture.with { fixture in
            let keyring = try await Keyring.open(pool: fixture.gateway, root: .key(try SecureBytes(count: 32)))
            let users = (0..<4).map { _ in UUID() }
            for user in users { _ = try await fixture.subjectKey(keyring, user, create: true) }
            let tenant = fixture.tenant
            // The state a crash right after the first step leaves: version 2 exists, nothing rewrapped.
            _ = try await fixture.gateway.transaction { try keyring.createTenantKey(tenant, version: 2, in: $0) }
            let report = try await keyring.rotateTenantKey(fixture.tenant, pool: fixture.gateway)
            #expect(report.resumed && report.toVersion == 2 && report.fromVersions == [1])
            #expect(report.rewrappedSubjectKeys == 4 && report.retiredVersions == [1])
            let next = try await keyring.rotateTenantKey(fixture.tenant, pool: fixture.gateway)
            #expect(!next.resumed && next.toVersion == 3)
            let unknown = await #expect(throws: KeyringError.self) {
                _ = try await keyring.rotateTenantKey(UUID(), pool: fixture.gateway)
            }
            #expect(unknown?.message.contains("does not exist") == true)
        }
    }

    @Test("rotation reseals a tenant's sealed JWT secret under the new version")
    func tenantSecrets() async throws {
        try await KeyringFixture.with { fixture in
            let keyring = try await Keyring.open(pool: fixture.gateway, root: .key(try SecureBytes(count: 32)))
            let secret = String(repeating: "s", count: 40)
            let tenant = fixture.tenant
            // Sealing creates the tenant's key version 1; a rotation moves the secret to version 2.
            _ = try await fixture.gateway.transaction { connection in
                let sealed = try keyring.sealTenantSecret(
                    Array(secret.utf8), tenant: tenant, purpose: TenantSecretPurpose.jwtSecret, in: connection)
                return try connection.query(
                    "UPDATE public.tenants SET jwt_secret_sealed = $2, jwt_secret_nonce = $3, jwt_secret_kek_version = $4 WHERE id = $1",
                    [tenant, sealed.ciphertext, sealed.nonce, sealed.kekVersion])
            }
            let second = try await keyring.rotateTenantKey(fixture.tenant, pool: fixture.gateway)
            #expect(second.fromVersions == [1] && second.toVersion == 2 && second.retiredVersions == [1])
            #expect(second.rewrappedTenantSecrets == 1)
            let row = try await fixture.owner.query(
                "SELECT jwt_secret_sealed, jwt_secret_nonce, jwt_secret_kek_version FROM public.tenants WHERE id = $1",
                [fixture.tenant]
            ).first!
            #expect(try row.decode("jwt_secret_kek_version", as: Int.self) == 2)
            let sealed = Keyring.SealedValue(
                ciphertext: try row.decode("jwt_secret_sealed"), nonce: try row.decode("jwt_secret_nonce"), kekVersion: 2)
            let opened = try await fixture.gateway.transaction {
                try keyring.openTenantSecret(sealed, tenant: tenant, purpose: TenantSecretPurpose.jwtSecret, in: $0)
            }
            #expect(String(decoding: opened, as: UTF8.self) == secret)
            #expect(try await fixture.count("SELECT count(*) FROM keyring.tenant_keys WHERE retired_at IS NULL") == 1)
        }
    }
}

final class Counter: Sendable {
    private let storage = Mutex(0)
    func add() { storage.withLock { $0 += 1 } }
    var value: Int { storage.withLock { $0 } }
}
