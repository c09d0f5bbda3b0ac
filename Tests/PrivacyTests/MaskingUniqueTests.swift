import Foundation
import Policy
import Postgres
import Privacy
import TestSupport
import Testing

/// Masking that gives rows equal values cannot be declared on a unique column: an erasure with
/// such a plan could only stop at its second row with a unique violation, half done.
@Suite("Masking on unique columns")
struct MaskingUniqueTests {
    /// The repository's policies written to a directory of their own, with `ghl_opportunities`
    /// anonymised by `rule` instead of deleted.
    static func policies(_ rule: String, in directory: URL) throws -> PolicySet {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let source = TestDatabase.repositoryPolicies.path
        for name in try FileManager.default.contentsOfDirectory(atPath: source) where name.hasSuffix(".yaml") {
            var text = try String(contentsOfFile: (source as NSString).appendingPathComponent(name), encoding: .utf8)
            if name == "ghl_opportunities.yaml" {
                #expect(text.contains("  erasure: delete\n"))
                text = text.replacingOccurrences(of: "  erasure: delete\n", with: rule)
            }
            try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return try PolicySet.load(directory: directory.path)
    }

    @Test(
        "a fixed replacement, redact or truncation on a column of a unique index is refused when the graph loads, at the entry's file:line, with hmac or null as the hint; nothing runs"
    )
    func collapsingMaskRefused() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("masking-unique-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try await TestDatabase.withMigratedDatabase { owner in
            let pool = ConnectionPool(configuration: TestDatabase.gateway(owner), options: .init(maxConnections: 2))
            defer { pool.close() }
            for method in [#"{ replace: "erased" }"#, "redact"] {
                let policies = try Self.policies(
                    """
                      erasure: anonymize
                      anonymize:
                        user_id: null
                        contact_name: { replace: "erased" }
                        ghl_opportunity_id: \(method)

                    """, in: directory)
                do {
                    _ = try await SubjectGraph.load(policies: policies, pool: pool)
                    Issue.record("\(method) on ghl_opportunity_id (unique per tenant) was accepted")
                } catch let error as PrivacyError {
                    #expect(error.code == .graph)
                    let file = directory.appendingPathComponent("ghl_opportunities.yaml").path
                    let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
                    let line = try #require(lines.firstIndex { $0.contains("ghl_opportunity_id: \(method)") }) + 1
                    #expect(error.message.contains("\(file):\(line):"), "\(error.message)")
                    #expect(
                        error.message.contains("masking-on-unique-column") && error.message.contains("ghl_opportunities_tenant_ghl_id_key"))
                    #expect(error.message.contains("use hmac"))
                    // contact_name is in no unique index: its fixed value is not reported.
                    #expect(!error.message.contains("anonymize.contact_name"))
                }
            }
            // The fitting methods load.
            for method in ["hmac", "null"] {
                let policies = try Self.policies(
                    """
                      erasure: anonymize
                      anonymize:
                        user_id: null
                        ghl_opportunity_id: \(method)

                    """, in: directory)
                _ = try await SubjectGraph.load(policies: policies, pool: pool)
            }
        }
    }

    @Test("which methods collapse values: hmac never, null only under NULLS NOT DISTINCT, fixed values and truncations always")
    func collapsingMethods() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("masking-unique-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let policies = try Self.policies(
            """
              erasure: anonymize
              anonymize:
                user_id: null
                ghl_opportunity_id: hmac
                contact_email: null
                created_at: { truncate: year }

            """, in: directory)
        let table = "public.ghl_opportunities"
        #expect(
            policies.maskingFindings(uniqueIndexes: [
                LiveUniqueIndex(table: table, name: "a", columns: ["tenant_id", "ghl_opportunity_id"], nullsNotDistinct: true),
                LiveUniqueIndex(table: table, name: "b", columns: ["tenant_id", "contact_email"], nullsNotDistinct: false),
            ]).isEmpty)
        let findings = policies.maskingFindings(uniqueIndexes: [
            LiveUniqueIndex(table: table, name: "c", columns: ["tenant_id", "contact_email"], nullsNotDistinct: true),
            LiveUniqueIndex(table: table, name: "d", columns: ["created_at"], nullsNotDistinct: false),
            LiveUniqueIndex(table: "public.other", name: "e", columns: ["ghl_opportunity_id"], nullsNotDistinct: false),
        ])
        #expect(findings.count == 2)
        #expect(findings.allSatisfy { $0.code == .maskingOnUniqueColumn && $0.severity == .error })
        #expect(
            findings.contains {
                $0.message.hasPrefix("anonymize.contact_email: null") && $0.message.hasSuffix("use hmac (distinct values stay distinct)")
            })
        #expect(findings.contains { $0.message.hasPrefix("anonymize.created_at: truncate_year") })
        #expect(Anonymization.hmac.collapses(nullsNotDistinct: true) == false)
        #expect(Anonymization.replace("x").collapses(nullsNotDistinct: false) && Anonymization.redact.collapses(nullsNotDistinct: false))
        #expect(Anonymization.truncateIP(ipv4: 24, ipv6: 48).collapses(nullsNotDistinct: false))
    }
}
