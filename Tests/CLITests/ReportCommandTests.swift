import Foundation
import Postgres
import TestSupport
import Testing

@Suite("privacyctl report")
struct ReportCommandTests {
    @Test("writes the tenant's report as JSON, Markdown or HTML; exit 3 with the failure on top once the chain is edited")
    func reportFormsAndIntegrity() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let rootKey = directory.appendingPathComponent("root.key").path
        #expect(try privacyctl(["keys", "generate", "--out", rootKey]).status == 0)
        try await TestDatabase.withMigratedDatabase { owner in
            let environment = [
                "DATABASE_URL": TestDatabase.url(owner), "PRIVACY_ROOT_KEY_FILE": rootKey,
                "PRIVACY_POLICIES_DIR": TestDatabase.repositoryPolicies.path,
            ]
            let created = try privacyctl(["tenant", "create", "--name", "reported", "--json"], environment: environment)
            let tenant = try #require(try json(created.stdout)["id"] as? String)

            let report = try privacyctl(["report", "--tenant", tenant, "--format", "json"], environment: environment)
            #expect(report.status == 0, "\(report.stderr)")
            let document = try json(report.stdout)
            #expect(document["version"] as? Int == 1)
            #expect((document["integrity"] as? [String: Any])?["valid"] as? Bool == true)
            #expect((document["policy"] as? [String: Any]).flatMap { ($0["drift"] as? [String: Any])?["clean"] as? Bool } == true)

            let markdown = try privacyctl(
                ["report", "--tenant", tenant, "--format", "md", "--since", "2026-01-01"], environment: environment)
            #expect(markdown.status == 0)
            #expect(markdown.stdout.hasPrefix("# Compliance report"))

            let admin = ConnectionPool(configuration: owner, options: .init(maxConnections: 1))
            defer { admin.close() }
            try await admin.withConnection { connection in
                try await connection.run { connection in
                    try connection.simple("ALTER TABLE audit_events DISABLE TRIGGER USER")
                    try connection.query(
                        #"UPDATE audit_events SET actor = 'someone else' WHERE tenant_id = $1 AND seq = 1"#, [UUID(uuidString: tenant)!])
                    try connection.simple("ALTER TABLE audit_events ENABLE TRIGGER USER")
                }
            }
            let html = directory.appendingPathComponent("report.html").path
            let tampered = try privacyctl(["report", "--tenant", tenant, "--format", "html", "--out", html], environment: environment)
            #expect(tampered.status == 3)
            #expect(tampered.stdout.isEmpty)
            let page = try String(contentsOfFile: html, encoding: .utf8)
            #expect(page.contains("<div class=\"alert critical\"><strong>CRITICAL</strong> · integrity"))
        }
    }

    @Test("a bad format, tenant or period is a usage error (exit 2)")
    func usageErrors() throws {
        let tenant = UUID().uuidString
        #expect(try privacyctl(["report", "--tenant", tenant, "--format", "pdf"]).status == 2)
        #expect(try privacyctl(["report", "--tenant", "acme", "--format", "json"]).status == 2)
        #expect(
            try privacyctl(["report", "--tenant", tenant, "--format", "json", "--since", "2026-05-01", "--until", "2026-04-01"]).status == 2
        )
        #expect(try privacyctl(["report", "--tenant", tenant, "--format", "json", "--since", "last week"]).status == 2)
    }
}
