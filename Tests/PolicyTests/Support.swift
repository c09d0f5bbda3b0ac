import Foundation
import Policy
import Testing

/// Paths of the repository this test file lives in (symlinks resolved, so a scratch package that
/// links the test directory still finds the real `policies/`).
enum Repository {
    static let testDirectory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
    static let root = testDirectory.deletingLastPathComponent().deletingLastPathComponent()
    static let policies = root.appendingPathComponent("policies").path
    static let fixtures = testDirectory.appendingPathComponent("Fixtures")
}

/// The repository's policy files, loaded once.
let repositoryPolicies = Result { try PolicySet.load(directory: Repository.policies) }

/// `pg_policies` and `relrowsecurity` of a database migrated with migrations/*.sql (PostgreSQL 15).
struct LiveFixture: Decodable {
    let policies: [LivePolicy]
    let tables: [LiveTable]

    static let shared = Result {
        try JSONDecoder().decode(
            LiveFixture.self, from: Data(contentsOf: Repository.fixtures.appendingPathComponent("pg_policies.json")))
    }
}

/// Columns (`format_type`) and index column lists of the same database.
struct CatalogueFixture: Decodable {
    struct Table: Decodable {
        let tablename: String
        let columns: [[String]]
        let indexes: [[String]]
    }
    let tables: [Table]

    static let shared = Result {
        try JSONDecoder().decode(
            CatalogueFixture.self, from: Data(contentsOf: Repository.fixtures.appendingPathComponent("pg_catalogue.json")))
    }
}

enum People {
    static let tenant = UUID(uuidString: "00000000-0000-4000-8000-00000000000a")!
    static let otherTenant = UUID(uuidString: "00000000-0000-4000-8000-00000000000b")!
    static let alice = UUID(uuidString: "a11ce000-0000-4000-8000-000000000001")!
    static let bob = UUID(uuidString: "b0b00000-0000-4000-8000-000000000002")!

    static func user(_ id: UUID, tenant: UUID = tenant) -> AuthContext {
        AuthContext(role: "authenticated", userID: id, tenantID: tenant)
    }

    static func anonymous(claims: [String: PolicyValue] = [:]) -> AuthContext {
        AuthContext(role: "anon", tenantID: tenant, claims: claims)
    }

    static func service(actingFor id: UUID? = nil) -> AuthContext {
        AuthContext(role: "service_role", userID: id, tenantID: tenant)
    }
}

/// A small table for crafted policies: `policies/things.yaml` with the given policy entries (and
/// optional privacy section), indented as list items under `policies:`.
func thingsFile(policies: String, extra: String = "", file: String = "policies/things.yaml") -> PolicySource {
    PolicySource(
        file: file,
        text: """
            table: public.things
            tenant_column: tenant_id
            subject: { column: user_id }
            columns:
              id: uuid
              tenant_id: uuid
              user_id: uuid
              status: text
              score: integer
              is_public: boolean
              collaborators: uuid[]
            indexes:
              - [id]
              - [tenant_id, user_id]
            policies:
            \(policies)
            privacy:
              export: true
              erasure: delete
            \(extra)
            """)
}

/// Loads crafted sources; the error when they do not load.
func loadError(_ sources: [PolicySource]) -> PolicyError? {
    do {
        _ = try PolicySet.load(sources: sources)
        return nil
    } catch let error as PolicyError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

func row(_ values: [String: PolicyValue]) -> PolicyRow { values }
