import Foundation
import Policy
import Testing

@Suite("Explain")
struct ExplainTests {
    let policies: PolicySet
    init() throws { policies = try repositoryPolicies.get() }

    @Test("a rejected update names the deciding policy and its WITH CHECK clause")
    func rejectedUpdate() throws {
        let mine: PolicyRow = ["tenant_id": .uuid(People.tenant), "user_id": .uuid(People.alice)]
        var given = mine
        given["user_id"] = .uuid(People.bob)
        let explanation = try policies.explain(.update, on: "projects", auth: People.user(People.alice), existing: mine, new: given)
        #expect(explanation.decision == .rowRejected)
        #expect(explanation.decidingPolicy == "Users can update their projects")
        #expect(explanation.decidingClause == .withCheck)
        #expect(explanation.checks.map(\.passed) == [true, false])
        #expect(explanation.reason.contains("auth.uid() = user_id is false"))
        #expect(explanation.description.contains("2. WITH CHECK of UPDATE policies on the new row: failed"))
    }

    @Test("an anonymous denial shows the NULL that decided it")
    func anonymousNull() throws {
        let row: PolicyRow = ["tenant_id": .uuid(People.tenant), "user_id": .uuid(People.alice), "is_public": false]
        let explanation = try policies.explain(.select, on: "projects", auth: People.anonymous(), existing: row)
        #expect(explanation.decision == .rowHidden)
        #expect(explanation.decidingPolicy == "Users can view their projects")
        let outcome = try #require(explanation.checks.first?.permissive.first)
        #expect(outcome.result == "null")
        #expect(outcome.deciding == "auth.uid() = user_id is null (auth.uid() is NULL); is_public = true is false")
    }

    @Test("a failing restrictive policy is named before any permissive one")
    func restrictiveDecides() throws {
        let elsewhere: PolicyRow = ["tenant_id": .uuid(People.otherTenant), "user_id": .uuid(People.alice)]
        let explanation = try policies.explain(.select, on: "user_secrets", auth: People.user(People.alice), existing: elsewhere)
        #expect(explanation.decision == .rowHidden)
        #expect(explanation.decidingPolicy == "tenant_isolation")
        #expect(explanation.reason.hasPrefix("restrictive policy \"tenant_isolation\" (USING) is false"))
    }

    @Test("with no policy for the role, the explanation says so and lists the policies meant for other roles")
    func noPolicyForRole() throws {
        let ticket: PolicyRow = ["tenant_id": .uuid(People.tenant), "user_id": .null]
        let explanation = try policies.explain(.select, on: "support_tickets", auth: People.anonymous(), existing: ticket)
        #expect(explanation.decision == .rowHidden)
        #expect(explanation.decidingPolicy == nil)
        #expect(explanation.reason.hasPrefix("no permissive policy for SELECT applies to role anon"))
        #expect(
            explanation.checks.first?.notApplicable == ["privacy_worker", "Users can view own tickets", "Support staff manage tickets"])
    }

    @Test("an allowed decision names the permissive policy that allowed it; the JSON round-trips")
    func allowedAndCodable() throws {
        let row: PolicyRow = ["tenant_id": .uuid(People.tenant), "user_id": .uuid(People.alice), "is_public": true]
        let explanation = try policies.explain(.select, on: "projects", auth: People.user(People.bob), existing: row)
        #expect(explanation.decision == .allowed)
        #expect(explanation.decidingPolicy == "Users can view their projects")
        #expect(explanation.reason.hasSuffix("is_public = true is true"))
        let json = try JSONEncoder().encode(explanation)
        #expect(try JSONDecoder().decode(Explanation.self, from: json) == explanation)
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(object["decision"] as? String == "allowed")
        #expect(object["deciding_policy"] as? String == "Users can view their projects")
    }

    @Test("explain and decide agree")
    func agreesWithDecide() throws {
        let projectID = UUID()
        let rows = InMemoryRows([
            "projects": [["id": .uuid(projectID), "tenant_id": .uuid(People.tenant), "user_id": .uuid(People.alice), "is_public": false]]
        ])
        let sitemap: PolicyRow = ["tenant_id": .uuid(People.tenant), "project_id": .uuid(projectID)]
        for auth in [People.user(People.alice), People.user(People.bob), People.anonymous(), People.service(actingFor: People.alice)] {
            for command in PolicyCommand.requestCommands {
                let decision = try policies.decide(
                    command, on: "sitemaps", auth: auth, existing: sitemap, new: sitemap, returning: true, lookup: rows)
                let explanation = try policies.explain(
                    command, on: "sitemaps", auth: auth, existing: sitemap, new: sitemap, returning: true, lookup: rows)
                #expect(decision == explanation.decision, "\(command) as \(auth.role)")
            }
        }
    }
}
