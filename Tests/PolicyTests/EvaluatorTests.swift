import Foundation
import Policy
import Testing

@Suite("Evaluator: Postgres RLS semantics")
struct EvaluatorTests {
    let policies: PolicySet
    let tenant = People.tenant
    let alice = People.alice
    let bob = People.bob

    init() throws {
        policies = try repositoryPolicies.get()
    }

    func project(owner: UUID, isPublic: Bool, id: UUID = UUID(), tenant: UUID = People.tenant) -> PolicyRow {
        [
            "id": .uuid(id), "tenant_id": .uuid(tenant), "user_id": .uuid(owner), "name": "site", "type": "website",
            "is_public": .bool(isPublic),
        ]
    }

    @Test("owner-only: a user sees their own row, not another user's")
    func ownerOnly() throws {
        let preferences: PolicyRow = ["tenant_id": .uuid(tenant), "user_id": .uuid(alice), "theme": "dark"]
        #expect(try policies.decide(.select, on: "user_preferences", auth: People.user(alice), existing: preferences) == .allowed)
        #expect(try policies.decide(.select, on: "user_preferences", auth: People.user(bob), existing: preferences) == .rowHidden)
        // The sealed secrets' owner-only policies bind the secret store's role, never a request role.
        let secret: PolicyRow = ["tenant_id": .uuid(tenant), "user_id": .uuid(alice), "service_name": "openai"]
        #expect(try policies.decide(.select, on: "user_secrets", auth: People.user(alice), existing: secret) == .rowHidden)
        let store = AuthContext(role: PolicySet.secretsRole, userID: alice, tenantID: tenant)
        #expect(try policies.decide(.select, on: "user_secrets", auth: store, existing: secret) == .allowed)
    }

    @Test("a uuid given as text in the row compares as a uuid")
    func textUUIDs() throws {
        let preferences: PolicyRow = ["tenant_id": .text(tenant.uuidString.lowercased()), "user_id": .text(alice.uuidString.uppercased())]
        #expect(try policies.decide(.select, on: "user_preferences", auth: People.user(alice), existing: preferences) == .allowed)
    }

    @Test("anonymous callers have no auth.uid(): NULL = user_id is not true, so owner-only policies deny")
    func anonymousIsNotOwner() throws {
        let privateProject = project(owner: alice, isPublic: false)
        #expect(try policies.decide(.select, on: "projects", auth: People.anonymous(), existing: privateProject) == .rowHidden)
        // Even a row whose owner column is NULL: NULL = NULL is unknown, not true.
        let orphan: PolicyRow = ["tenant_id": .uuid(tenant), "user_id": .null, "is_public": false]
        #expect(try policies.decide(.select, on: "projects", auth: People.anonymous(), existing: orphan) == .rowHidden)
    }

    @Test("permissive policies are OR-ed: owner-or-public projects")
    func ownerOrPublic() throws {
        let publicProject = project(owner: alice, isPublic: true)
        let privateProject = project(owner: alice, isPublic: false)
        #expect(try policies.decide(.select, on: "projects", auth: People.anonymous(), existing: publicProject) == .allowed)
        #expect(try policies.decide(.select, on: "projects", auth: People.user(bob), existing: publicProject) == .allowed)
        #expect(try policies.decide(.select, on: "projects", auth: People.user(bob), existing: privateProject) == .rowHidden)
        #expect(try policies.decide(.select, on: "projects", auth: People.user(alice), existing: privateProject) == .allowed)
    }

    @Test("the restrictive tenant policy is AND-ed: another tenant's row is hidden even from its owner")
    func tenantIsolation() throws {
        let elsewhere = project(owner: alice, isPublic: true, tenant: People.otherTenant)
        #expect(try policies.decide(.select, on: "projects", auth: People.user(alice), existing: elsewhere) == .rowHidden)
        #expect(
            try policies.decide(.select, on: "projects", auth: People.user(alice, tenant: People.otherTenant), existing: elsewhere)
                == .allowed)
        let noTenant = AuthContext(role: "authenticated", userID: alice, tenantID: nil)
        #expect(try policies.decide(.select, on: "projects", auth: noTenant, existing: project(owner: alice, isPublic: true)) == .rowHidden)
    }

    @Test("no applicable permissive policy means deny")
    func defaultDeny() throws {
        let history: PolicyRow = ["tenant_id": .uuid(tenant), "user_id": .uuid(alice), "entity_type": "projects"]
        // version_history has no UPDATE policy at all.
        #expect(
            try policies.decide(.update, on: "version_history", auth: People.user(alice), existing: history, new: history) == .rowHidden)
        // user_secrets has no policy for anon.
        let secret: PolicyRow = ["tenant_id": .uuid(tenant), "user_id": .null]
        #expect(try policies.decide(.select, on: "user_secrets", auth: People.anonymous(), existing: secret) == .rowHidden)
        // A role no policy names gets only TO public policies.
        let stranger = AuthContext(role: "reporting", tenantID: tenant)
        #expect(try policies.decide(.select, on: "projects", auth: stranger, existing: project(owner: alice, isPublic: true)) == .allowed)
        #expect(try policies.decide(.select, on: "user_secrets", auth: stranger, existing: secret) == .rowHidden)
    }

    @Test("a restrictive policy narrows what permissive ones allow")
    func restrictiveNarrows() throws {
        let set = try PolicySet.load(sources: [
            thingsFile(
                policies: """
                      - name: Own things
                        command: select
                        roles: [authenticated]
                        using: auth.uid() = user_id
                      - name: Never archived
                        command: select
                        roles: [authenticated]
                        as: restrictive
                        using: status <> 'archived'
                    """)
        ])
        let active: PolicyRow = ["tenant_id": .uuid(tenant), "user_id": .uuid(alice), "status": "active"]
        var archived = active
        archived["status"] = "archived"
        var unknown = active
        unknown["status"] = .null
        #expect(try set.decide(.select, on: "things", auth: People.user(alice), existing: active) == .allowed)
        #expect(try set.decide(.select, on: "things", auth: People.user(alice), existing: archived) == .rowHidden)
        #expect(try set.decide(.select, on: "things", auth: People.user(alice), existing: unknown) == .rowHidden)
    }

    @Test("restrictive policies alone allow nothing")
    func restrictiveAlone() throws {
        let set = try PolicySet.load(sources: [
            thingsFile(
                policies: """
                      - name: Only active
                        command: select
                        roles: [public]
                        as: restrictive
                        using: status = 'active'
                    """)
        ])
        let active: PolicyRow = ["tenant_id": .uuid(tenant), "status": "active"]
        #expect(try set.decide(.select, on: "things", auth: People.user(alice), existing: active) == .rowHidden)
    }

    @Test("UPDATE checks USING on the old row and WITH CHECK on the new row")
    func updateOldAndNew() throws {
        let mine = project(owner: alice, isPublic: false)
        var givenAway = mine
        givenAway["user_id"] = .uuid(bob)
        var renamed = mine
        renamed["name"] = "renamed"
        #expect(try policies.decide(.update, on: "projects", auth: People.user(alice), existing: mine, new: renamed) == .allowed)
        #expect(try policies.decide(.update, on: "projects", auth: People.user(alice), existing: mine, new: givenAway) == .rowRejected)
        #expect(try policies.decide(.update, on: "projects", auth: People.user(bob), existing: mine, new: givenAway) == .rowHidden)
        // Moving a row to another tenant fails the tenant policy's WITH CHECK.
        var moved = mine
        moved["tenant_id"] = .uuid(People.otherTenant)
        #expect(try policies.decide(.update, on: "projects", auth: People.user(alice), existing: mine, new: moved) == .rowRejected)
    }

    @Test("an UPDATE policy without WITH CHECK checks the new row with its USING")
    func updateFallsBackToUsing() throws {
        let set = try PolicySet.load(sources: [
            thingsFile(
                policies: """
                      - name: Own things
                        command: update
                        roles: [authenticated]
                        using: auth.uid() = user_id
                    """)
        ])
        let mine: PolicyRow = ["tenant_id": .uuid(tenant), "user_id": .uuid(alice)]
        var given: PolicyRow = mine
        given["user_id"] = .uuid(bob)
        #expect(try set.decide(.update, on: "things", auth: People.user(alice), existing: mine, new: mine) == .allowed)
        #expect(try set.decide(.update, on: "things", auth: People.user(alice), existing: mine, new: given) == .rowRejected)
    }

    @Test("INSERT checks WITH CHECK only; with RETURNING the new row must also pass SELECT")
    func insert() throws {
        let mine = project(owner: alice, isPublic: false)
        #expect(try policies.decide(.insert, on: "projects", auth: People.user(alice), new: mine) == .allowed)
        #expect(try policies.decide(.insert, on: "projects", auth: People.user(bob), new: mine) == .rowRejected)
        // anon may file a ticket but has no SELECT policy on support_tickets.
        let ticket: PolicyRow = ["tenant_id": .uuid(tenant), "user_id": .null, "subject": "help", "message": "hi"]
        #expect(try policies.decide(.insert, on: "support_tickets", auth: People.anonymous(), new: ticket) == .allowed)
        #expect(try policies.decide(.insert, on: "support_tickets", auth: People.anonymous(), new: ticket, returning: true) == .rowRejected)
        // An anonymous ticket cannot claim a user.
        var claimed = ticket
        claimed["user_id"] = .uuid(alice)
        #expect(try policies.decide(.insert, on: "support_tickets", auth: People.anonymous(), new: claimed) == .rowRejected)
    }

    @Test("DELETE with RETURNING needs SELECT on the existing row too")
    func deleteReturning() throws {
        let set = try PolicySet.load(sources: [
            thingsFile(
                policies: """
                      - name: Delete own
                        command: delete
                        roles: [authenticated]
                        using: auth.uid() = user_id
                    """)
        ])
        let mine: PolicyRow = ["tenant_id": .uuid(tenant), "user_id": .uuid(alice)]
        #expect(try set.decide(.delete, on: "things", auth: People.user(alice), existing: mine) == .allowed)
        #expect(try set.decide(.delete, on: "things", auth: People.user(alice), existing: mine, returning: true) == .rowHidden)
    }

    @Test("EXISTS through the parent: a sitemap is visible when its project is, writable when the user owns it")
    func existsThroughParent() throws {
        let privateID = UUID()
        let publicID = UUID()
        let rows = InMemoryRows([
            "projects": [project(owner: alice, isPublic: false, id: privateID), project(owner: alice, isPublic: true, id: publicID)]
        ])
        func sitemap(_ project: UUID) -> PolicyRow {
            ["id": .uuid(UUID()), "tenant_id": .uuid(tenant), "project_id": .uuid(project), "title": "map"]
        }
        #expect(
            try policies.decide(.select, on: "sitemaps", auth: People.user(alice), existing: sitemap(privateID), lookup: rows) == .allowed)
        #expect(
            try policies.decide(.select, on: "sitemaps", auth: People.user(bob), existing: sitemap(privateID), lookup: rows) == .rowHidden)
        #expect(try policies.decide(.select, on: "sitemaps", auth: People.user(bob), existing: sitemap(publicID), lookup: rows) == .allowed)
        #expect(
            try policies.decide(.select, on: "sitemaps", auth: People.anonymous(), existing: sitemap(publicID), lookup: rows) == .allowed)
        #expect(try policies.decide(.insert, on: "sitemaps", auth: People.user(bob), new: sitemap(publicID), lookup: rows) == .rowRejected)
        #expect(try policies.decide(.insert, on: "sitemaps", auth: People.user(alice), new: sitemap(privateID), lookup: rows) == .allowed)
        // No parent row, or no lookup: EXISTS is false.
        #expect(
            try policies.decide(.select, on: "sitemaps", auth: People.user(alice), existing: sitemap(UUID()), lookup: rows) == .rowHidden)
        #expect(try policies.decide(.select, on: "sitemaps", auth: People.user(alice), existing: sitemap(privateID)) == .rowHidden)
    }

    @Test("EXISTS three levels deep: a style guide follows wireframe → sitemap → project")
    func nestedExists() throws {
        let projectID = UUID(), sitemapID = UUID(), wireframeID = UUID()
        let rows = InMemoryRows([
            "projects": [project(owner: alice, isPublic: false, id: projectID)],
            "sitemaps": [["id": .uuid(sitemapID), "tenant_id": .uuid(tenant), "project_id": .uuid(projectID)]],
            "wireframes": [["id": .uuid(wireframeID), "tenant_id": .uuid(tenant), "sitemap_id": .uuid(sitemapID)]],
        ])
        let guide: PolicyRow = ["tenant_id": .uuid(tenant), "wireframe_id": .uuid(wireframeID)]
        #expect(try policies.decide(.select, on: "style_guides", auth: People.user(alice), existing: guide, lookup: rows) == .allowed)
        #expect(try policies.decide(.delete, on: "style_guides", auth: People.user(bob), existing: guide, lookup: rows) == .rowHidden)
    }

    @Test("inside EXISTS only rows the caller may see count: a parent in another tenant does not")
    func existsAppliesTheParentsPolicies() throws {
        let projectID = UUID()
        let rows = InMemoryRows(["projects": [project(owner: alice, isPublic: true, id: projectID, tenant: People.otherTenant)]])
        let sitemap: PolicyRow = ["tenant_id": .uuid(tenant), "project_id": .uuid(projectID)]
        #expect(try policies.decide(.select, on: "sitemaps", auth: People.user(alice), existing: sitemap, lookup: rows) == .rowHidden)
    }

    @Test("anonymous assistant sessions belong to whoever holds the JWT's session_id claim")
    func anonymousSessions() throws {
        let session: PolicyRow = ["tenant_id": .uuid(tenant), "session_id": "s-1", "user_id": .null]
        let holder = People.anonymous(claims: ["session_id": "s-1"])
        #expect(try policies.decide(.select, on: "ai_assistant_sessions", auth: holder, existing: session) == .allowed)
        #expect(
            try policies.decide(
                .select, on: "ai_assistant_sessions", auth: People.anonymous(claims: ["session_id": "s-2"]), existing: session)
                == .rowHidden)
        #expect(try policies.decide(.select, on: "ai_assistant_sessions", auth: People.anonymous(), existing: session) == .rowHidden)
        // A session that belongs to a user is not the anonymous holder's.
        var owned = session
        owned["user_id"] = .uuid(alice)
        #expect(try policies.decide(.select, on: "ai_assistant_sessions", auth: holder, existing: owned) == .rowHidden)
        #expect(try policies.decide(.insert, on: "ai_assistant_sessions", auth: holder, new: session) == .allowed)
        // A signed-in user whose token names the session sees it and may claim it, but not give it away.
        let signedIn = AuthContext(role: "authenticated", userID: alice, tenantID: tenant, claims: ["session_id": "s-1"])
        #expect(try policies.decide(.select, on: "ai_assistant_sessions", auth: signedIn, existing: session) == .allowed)
        #expect(try policies.decide(.update, on: "ai_assistant_sessions", auth: signedIn, existing: session, new: owned) == .allowed)
        var givenToBob = session
        givenToBob["user_id"] = .uuid(bob)
        #expect(
            try policies.decide(.update, on: "ai_assistant_sessions", auth: signedIn, existing: session, new: givenToBob) == .rowRejected)
    }

    @Test("ai_model_configs is service-managed: authenticated users read it, only service_role writes it")
    func serviceManaged() throws {
        let model: PolicyRow = ["tenant_id": .uuid(tenant), "provider": "openai", "model_name": "gpt", "model_type": "fast"]
        #expect(try policies.decide(.select, on: "ai_model_configs", auth: People.user(alice), existing: model) == .allowed)
        #expect(try policies.decide(.select, on: "ai_model_configs", auth: People.anonymous(), existing: model) == .rowHidden)
        #expect(try policies.decide(.insert, on: "ai_model_configs", auth: People.user(alice), new: model) == .rowRejected)
        #expect(try policies.decide(.insert, on: "ai_model_configs", auth: People.service(), new: model) == .allowed)
        #expect(try policies.decide(.delete, on: "ai_model_configs", auth: People.service(), existing: model) == .allowed)
        // The policy reads auth.role() from the JWT: a service_role session with another role claim is refused.
        let mismatched = AuthContext(role: "service_role", tenantID: tenant, claims: ["role": "authenticated"])
        #expect(try policies.decide(.insert, on: "ai_model_configs", auth: mismatched, new: model) == .rowRejected)
    }

    @Test("three-valued logic: NOT of unknown is unknown, IS NOT TRUE turns unknown into true")
    func threeValuedLogic() throws {
        let set = try PolicySet.load(sources: [
            thingsFile(
                policies: """
                      - name: Not mine
                        command: select
                        roles: [anon, authenticated]
                        using: NOT (auth.uid() = user_id)
                      - name: Not provably mine
                        command: delete
                        roles: [anon, authenticated]
                        using: (auth.uid() = user_id) IS NOT TRUE
                    """)
        ])
        let row: PolicyRow = ["tenant_id": .uuid(tenant), "user_id": .uuid(alice)]
        #expect(try set.decide(.select, on: "things", auth: People.anonymous(), existing: row) == .rowHidden)
        #expect(try set.decide(.select, on: "things", auth: People.user(bob), existing: row) == .allowed)
        #expect(try set.decide(.delete, on: "things", auth: People.anonymous(), existing: row) == .allowed)
        #expect(try set.decide(.delete, on: "things", auth: People.user(alice), existing: row) == .rowHidden)
    }

    @Test("IN lists, NOT IN with NULL, and = ANY over an array column")
    func listsAndArrays() throws {
        let set = try PolicySet.load(sources: [
            thingsFile(
                policies: """
                      - name: Open statuses
                        command: select
                        roles: [authenticated]
                        using: status IN ('open', 'pending')
                      - name: Never with NULL in NOT IN
                        command: delete
                        roles: [authenticated]
                        using: score NOT IN (0, NULL)
                      - name: Collaborators
                        command: update
                        roles: [authenticated]
                        using: auth.uid() = ANY (collaborators)
                        with_check: auth.uid() = ANY (collaborators)
                    """)
        ])
        let open: PolicyRow = ["tenant_id": .uuid(tenant), "status": "open", "score": 3]
        let closed: PolicyRow = ["tenant_id": .uuid(tenant), "status": "closed", "score": 3]
        #expect(try set.decide(.select, on: "things", auth: People.user(alice), existing: open) == .allowed)
        #expect(try set.decide(.select, on: "things", auth: People.user(alice), existing: closed) == .rowHidden)
        // `score NOT IN (0, NULL)` is never true: NULL in the list makes a non-match unknown.
        #expect(try set.decide(.delete, on: "things", auth: People.user(alice), existing: open) == .rowHidden)
        let shared: PolicyRow = ["tenant_id": .uuid(tenant), "collaborators": .array([.uuid(bob), .uuid(alice)])]
        #expect(try set.decide(.update, on: "things", auth: People.user(alice), existing: shared, new: shared) == .allowed)
        let notShared: PolicyRow = ["tenant_id": .uuid(tenant), "collaborators": .array([.uuid(bob)])]
        #expect(try set.decide(.update, on: "things", auth: People.user(alice), existing: notShared, new: notShared) == .rowHidden)
    }

    @Test("a request that lacks the row it needs, names an unknown table or asks for 'all' is refused")
    func invalidRequests() throws {
        #expect(throws: PolicyError.self) { try policies.decide(.update, on: "projects", auth: People.user(alice), existing: [:]) }
        #expect(throws: PolicyError.self) { try policies.decide(.select, on: "tenants", auth: People.user(alice), existing: [:]) }
        #expect(throws: PolicyError.self) { try policies.decide(.all, on: "projects", auth: People.user(alice), existing: [:], new: [:]) }
    }
}
