import Foundation
import Policy
import Postgres
import Privacy
import TestSupport
import Testing

@Suite("Subject graph")
struct SubjectGraphTests {
    @Test("every table with a subject is in the graph, children before parents along via chains and foreign keys")
    func order() async throws {
        try await PrivacyFixture.with { fixture in
            let graph = fixture.service.graph
            let names = graph.nodes.map(\.name)
            let expected = PrivacyFixture.policies.tables.filter { $0.subject != nil }.map(\.name).sorted()
            #expect(names.sorted() == expected)
            #expect(!names.contains("ai_model_configs"))
            func position(_ name: String) -> Int { names.firstIndex(of: name)! }
            let keys = try await fixture.pool.withConnection { connection in
                try await connection.run { try SubjectGraph.loadForeignKeys($0) }
            }
            for (child, parent) in keys where child != parent && names.contains(child) && names.contains(parent) {
                #expect(position(child) < position(parent), "\(child) must come before \(parent)")
            }
            #expect(position("style_guides") < position("wireframes"))
            #expect(position("wireframes") < position("sitemaps"))
            #expect(position("sitemaps") < position("projects"))
            #expect(position("lead_activities") < position("leads"))
            #expect(graph.node(named: "style_guides")?.chain == ["wireframes", "sitemaps", "projects"])
        }
    }

    @Test("a via chain's predicate walks up to the subject column, with bound values only")
    func predicate() throws {
        let graph = try SubjectGraph(policies: PrivacyFixture.policies)
        let table = try #require(PrivacyFixture.policies.table(named: "style_guides"))
        let sql = try graph.predicate(table, tenant: "$1", subject: "$2")
        #expect(sql.contains("FROM \"public\".\"wireframes\" t1"))
        #expect(sql.contains("FROM \"public\".\"projects\" t3"))
        #expect(sql.contains("t3.\"user_id\" = $2"))
    }

    @Test("a via reference to a table without a subject is refused")
    func badChain() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("graph-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for name in ["ai_model_configs", "sitemaps"] {
            var text = try String(contentsOf: TestDatabase.repositoryPolicies.appendingPathComponent("\(name).yaml"), encoding: .utf8)
            if name == "sitemaps" {
                text = text.replacingOccurrences(of: "references: projects.id", with: "references: ai_model_configs.id")
            }
            try text.write(to: directory.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
        }
        guard let policies = try? PolicySet.load(directory: directory.path) else { return }  // the loader may refuse it first
        #expect(throws: PrivacyError.self) { try SubjectGraph(policies: policies) }
    }
}
