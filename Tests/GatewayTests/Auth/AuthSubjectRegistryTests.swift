import Foundation
import Postgres
import TestSupport
import Testing

@testable import Gateway

@Suite("Auth: subject registration in auth.users")
struct AuthSubjectRegistryTests {
    /// The row's xmin changes with every write to it, so an unchanged xmin proves no write.
    private func row(_ f: AuthFixture, _ subject: UUID, in tenant: UUID) async throws -> (lastSeen: Date?, xmin: String)? {
        guard
            let row = try await f.owner.query(
                "SELECT last_seen_at, xmin::text AS xmin FROM auth.users WHERE tenant_id = $1 AND id = $2", [tenant, subject]
            ).first
        else { return nil }
        return (try row.decodeIfPresent("last_seen_at"), try row.decode("xmin"))
    }

    @Test("a subject is inserted on first sight and not written again on the next requests")
    func firstSight() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let user = UUID()
            #expect(try await row(f, user, in: acme.id) == nil)
            let token = try await Tokens.hs256(claims: Tokens.user(user), secret: acme.secret!)
            _ = try await f.authenticate(acme, token)
            let first = try #require(try await row(f, user, in: acme.id))
            #expect(first.lastSeen != nil)
            #expect(f.authenticator.subjects.databaseVisits == 1)

            for _ in 0..<5 { _ = try await f.authenticate(acme, token) }
            #expect(f.authenticator.subjects.databaseVisits == 1)
            let again = try #require(try await row(f, user, in: acme.id))
            #expect(again.xmin == first.xmin)
            #expect(again.lastSeen == first.lastSeen)

            // No subject, no registration.
            _ = try await f.authenticate(acme, nil)
            #expect(f.authenticator.subjects.databaseVisits == 1)
            #expect(try await f.owner.query("SELECT count(*) AS n FROM auth.users").first!.decode("n", as: Int.self) == 1)
        }
    }

    @Test("the same uuid in two tenants is two subjects, and registering it answers alike whether or not it exists elsewhere")
    func subjectsPerTenant() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let globex = try await f.tenant("globex")
            let user = UUID(), stranger = UUID()
            _ = try await f.authenticate(acme, try await Tokens.hs256(claims: Tokens.user(user), secret: acme.secret!))

            // globex signs a token naming a uuid acme registered: a globex subject of its own.
            let token = try await Tokens.hs256(claims: Tokens.user(user), secret: globex.secret!)
            let caller = try await f.authenticate(globex, token)
            #expect(caller.userID == user)
            #expect(caller.tenantID == globex.id)
            #expect(try await row(f, user, in: acme.id) != nil)
            #expect(try await row(f, user, in: globex.id) != nil)

            // A registry that has seen neither (another gateway process) does the same work for
            // an id that exists in another tenant as for one that exists nowhere.
            let fresh = SubjectRegistry(pool: f.gateway)
            let third = try await f.tenant("initech")
            try await fresh.register(user, tenant: third.id)
            try await fresh.register(stranger, tenant: third.id)
            #expect(fresh.databaseVisits == 2)
            #expect(try await row(f, user, in: third.id) != nil)
            #expect(try await row(f, stranger, in: third.id) != nil)
            // Remembered per tenant: acme's subject is not taken for initech's, nor the reverse.
            try await fresh.register(user, tenant: acme.id)
            #expect(fresh.databaseVisits == 3)
            try await fresh.register(user, tenant: third.id)
            #expect(fresh.databaseVisits == 3)

            // Erasing one tenant's subject leaves the other's untouched.
            try await f.owner.query("DELETE FROM auth.users WHERE tenant_id = $1 AND id = $2", [acme.id, user])
            #expect(try await row(f, user, in: acme.id) == nil)
            #expect(try await row(f, user, in: globex.id) != nil)
        }
    }

    @Test("first sightings of one subject racing from several processes, in two tenants, all succeed and register it once per tenant")
    func racingFirstSight() async throws {
        try await AuthFixture.run { f in
            let acme = try await f.tenant("acme")
            let globex = try await f.tenant("globex")
            let subjects = (0..<40).map { _ in UUID() }
            // One registry per racer: like separate gateway processes, none can answer from memory.
            let registries = (0..<4).map { _ in SubjectRegistry(pool: f.gateway) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for subject in subjects {
                    for registry in registries {
                        for tenant in [acme.id, globex.id] {
                            group.addTask { try await registry.register(subject, tenant: tenant) }
                        }
                    }
                }
                try await group.waitForAll()
            }
            for tenant in [acme.id, globex.id] {
                let registered = try await f.owner.query(
                    "SELECT count(*) AS n FROM auth.users WHERE tenant_id = $1", [tenant]
                ).first!.decode("n", as: Int.self)
                #expect(registered == subjects.count)
            }
        }
    }

    @Test("last_seen_at moves on at most once per touch interval")
    func touch() async throws {
        try await AuthFixture.run { f in
            let tenant = try await f.tenant("acme")
            let user = UUID()
            // The interval is generous and the two registrations are back to back, so a loaded
            // machine (CI) cannot stretch the gap between them past the interval.
            let eager = SubjectRegistry(pool: f.gateway, options: .init(touchInterval: .seconds(4)))
            try await eager.register(user, tenant: tenant.id)
            try await eager.register(user, tenant: tenant.id)
            #expect(eager.databaseVisits == 1)
            let first = try #require(try await row(f, user, in: tenant.id))
            try await Task.sleep(for: .milliseconds(4_300))
            try await eager.register(user, tenant: tenant.id)
            #expect(eager.databaseVisits == 2)
            let touched = try #require(try await row(f, user, in: tenant.id))
            #expect(touched.lastSeen! > first.lastSeen!)
            #expect(touched.xmin != first.xmin)

            // Another process that has just seen the subject does not write again.
            let other = SubjectRegistry(pool: f.gateway, options: .init(touchInterval: .seconds(300)))
            try await other.register(user, tenant: tenant.id)
            #expect(other.databaseVisits == 1)
            #expect(try await row(f, user, in: tenant.id)?.xmin == touched.xmin)
        }
    }

    @Test("an erased subject is registered again once forgotten")
    func forget() async throws {
        try await AuthFixture.run { f in
            let tenant = try await f.tenant("acme")
            let user = UUID()
            let registry = SubjectRegistry(pool: f.gateway)
            try await registry.register(user, tenant: tenant.id)
            try await f.owner.query("DELETE FROM auth.users WHERE tenant_id = $1 AND id = $2", [tenant.id, user])
            registry.forget(user, tenant: tenant.id)
            try await registry.register(user, tenant: tenant.id)
            #expect(try await row(f, user, in: tenant.id) != nil)
            #expect(registry.databaseVisits == 2)
        }
    }

    @Test("the memory is bounded")
    func bounded() async throws {
        var cache = BoundedCache<Int, Int>(capacity: 100)
        for index in 0..<10_000 { cache.insert(index, for: index) }
        #expect(cache.count <= 100)
        #expect(cache.value(for: 9_999) == 9_999)
        #expect(cache.value(for: 0) == nil)
        // A recently read entry survives a generation turnover.
        var lru = BoundedCache<Int, Int>(capacity: 4)
        lru.insert(1, for: 1)
        lru.insert(2, for: 2)  // young full: {1,2} becomes old
        #expect(lru.value(for: 1) == 1)  // promoted
        lru.insert(3, for: 3)  // {1,3} becomes old, {2} dropped
        #expect(lru.value(for: 1) == 1)
        #expect(lru.value(for: 2) == nil)
    }
}
