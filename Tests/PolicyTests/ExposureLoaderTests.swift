import Policy
import Testing

/// `rest:`, `rest_hidden:` and `managed_by:` — how /rest/v1 may reach a table — loaded, refused,
/// linted and turned into grants.
@Suite("Exposure in policy files")
struct ExposureLoaderTests {
    static func table(_ extra: String, columns: String = "{ id: uuid, tenant_id: uuid, user_id: uuid, status: text, secret_value: bytea }")
        -> PolicySource
    {
        PolicySource(
            file: "policies/things.yaml",
            text: """
                table: public.things
                tenant_column: tenant_id
                subject: { column: user_id }
                \(extra)
                columns: \(columns)
                indexes: [[id], [tenant_id, user_id]]
                policies:
                  - name: Own
                    command: all
                    roles: [authenticated]
                    using: auth.uid() = user_id
                privacy: { export: true, erasure: delete }
                """)
    }

    static func loadError(_ source: PolicySource) -> PolicyError? {
        do {
            _ = try PolicySet.load(sources: [source])
            return nil
        } catch let error as PolicyError {
            return error
        } catch {
            return nil
        }
    }

    @Test("a table managed by /v1/secrets or /v1/privacy cannot be declared REST-writable")
    func managedTableNeverWritable() throws {
        for api in ["secrets", "privacy"] {
            let error = try #require(Self.loadError(Self.table("rest: read_write\nmanaged_by: \(api)")))
            #expect(error.message.contains("cannot be REST-writable"), "\(error)")
            #expect(error.location?.line == 4)
        }
    }

    @Test("an unknown exposure, owner or hidden column is refused with what was expected")
    func badValues() throws {
        let exposure = try #require(Self.loadError(Self.table("rest: write")))
        #expect(exposure.message == "unknown rest exposure 'write'")
        #expect("\(exposure)".contains("none, read, read_write"))
        let owner = try #require(Self.loadError(Self.table("managed_by: vault")))
        #expect(owner.message == "unknown managed_by 'vault'")
        let hidden = try #require(Self.loadError(Self.table("rest: read\nrest_hidden: [nope]")))
        #expect(hidden.message.contains("column 'nope' does not exist"))
        let everything = try #require(Self.loadError(Self.table("rest: read\nrest_hidden: [id, tenant_id, user_id, status, secret_value]")))
        #expect(everything.message.contains("hides every column"))
    }

    @Test("no rest: key means the table is not served (default-deny)")
    func defaultDeny() throws {
        let set = try PolicySet.load(sources: [Self.table("")])
        let table = try #require(set.table(named: "things"))
        #expect(table.rest == .none)
        #expect(PolicyCommand.requestCommands.allSatisfy { !table.rest.allows($0) })
        // Only the privacy worker reaches a table with personal data that /rest/v1 does not serve.
        #expect(
            try set.grantStatements(for: "things") == [
                #"REVOKE ALL ON "public"."things" FROM "anon", "authenticated", "service_role", "gateway_secrets", "privacy_worker";"#,
                #"GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."things" TO "privacy_worker";"#,
            ])
        for role in PolicySet.requestRoles + [PolicySet.secretsRole] { #expect(table.declaredRights(for: role).isNothing) }
    }

    @Test("rest: read grants SELECT on the visible columns only; the hidden ones never reach a request role")
    func readWithHiddenColumns() throws {
        let set = try PolicySet.load(sources: [Self.table("rest: read\nmanaged_by: privacy\nrest_hidden: [secret_value]")])
        let table = try #require(set.table(named: "things"))
        #expect(table.rest.allows(.select) && !table.rest.allows(.insert) && !table.rest.allows(.update) && !table.rest.allows(.delete))
        #expect(table.restColumns.map(\.name) == ["id", "tenant_id", "user_id", "status"])
        #expect(table.restColumn(named: "secret_value") == nil)
        #expect(table.column(named: "secret_value") != nil)
        #expect(
            try set.grantStatements(for: "things").contains(
                #"GRANT SELECT ("id", "tenant_id", "user_id", "status") ON "public"."things" TO "anon", "authenticated", "service_role";"#))
        #expect(table.declaredRights(for: "authenticated") == TableRights(select: ["id", "tenant_id", "user_id", "status"]))
        #expect(table.declaredRights(for: PolicySet.secretsRole).isNothing)
        // The generated script carries the grants after the RLS.
        #expect(set.rowLevelSecurityScript().contains("GRANT SELECT (\"id\""))
    }

    @Test("lint: a sealed column served through /rest/v1 is an error, hidden it is not")
    func sealedColumnLint() throws {
        let exposed = try PolicySet.load(sources: [Self.table("rest: read_write")]).lint()
        let finding = try #require(exposed.first { $0.code == .sealedColumnExposed })
        #expect(finding.severity == .error)
        #expect(finding.message.contains("'secret_value' (bytea)"))
        let byName = try PolicySet.load(sources: [
            Self.table("rest: read", columns: "{ id: uuid, tenant_id: uuid, user_id: uuid, certificate_signature: text }")
        ]).lint()
        #expect(byName.contains { $0.code == .sealedColumnExposed })
        let hidden = try PolicySet.load(sources: [Self.table("rest: read_write\nrest_hidden: [secret_value]")]).lint()
        #expect(!hidden.contains { $0.code == .sealedColumnExposed })
        let unserved = try PolicySet.load(sources: [Self.table("rest: none")]).lint()
        #expect(!unserved.contains { $0.code == .sealedColumnExposed })
    }

    @Test("the repository declares the secrets and privacy tables as their APIs' own")
    func repositoryExposure() throws {
        let policies = try repositoryPolicies.get()
        for name in ["user_secrets", "user_secret_versions"] {
            let table = try #require(policies.table(named: name))
            #expect(table.rest == .none && table.managedBy == .secrets)
        }
        for name in ["data_export_requests", "data_deletion_requests", "user_privacy_settings"] {
            let table = try #require(policies.table(named: name))
            #expect(table.rest == .read && table.managedBy == .privacy)
        }
        #expect(policies.table(named: "data_deletion_requests")?.restHidden == ["plan", "result", "certificate", "certificate_signature"])
        #expect(policies.table(named: "projects")?.rest == .readWrite)
    }

    @Test("a table with personal data implies the privacy worker's policy, bounded by the tenant policy; no file may declare it")
    func privacyWorkerPolicy() throws {
        let set = try PolicySet.load(sources: [Self.table("rest: read_write")])
        let table = try #require(set.table(named: "things"))
        #expect(table.effectivePolicies.map(\.name) == ["tenant_isolation", "privacy_worker", "Own"])
        #expect(
            try set.rowLevelSecurityStatements(for: "things").contains(
                #"CREATE POLICY "privacy_worker" ON "public"."things" AS PERMISSIVE FOR ALL TO "privacy_worker" USING (true) WITH CHECK (true);"#
            ))
        let worker = AuthContext(role: PolicySet.privacyRole, tenantID: People.tenant)
        let row: PolicyRow = ["tenant_id": .uuid(People.tenant), "user_id": .uuid(People.alice)]
        let elsewhere: PolicyRow = ["tenant_id": .uuid(People.otherTenant), "user_id": .uuid(People.alice)]
        #expect(try set.decide(.delete, on: "things", auth: worker, existing: row) == .allowed)
        #expect(try set.decide(.delete, on: "things", auth: worker, existing: elsewhere) == .rowHidden)

        let declared = PolicySource(
            file: "policies/things.yaml", text: Self.table("").text.replacingOccurrences(of: "- name: Own", with: "- name: privacy_worker"))
        let error = try #require(Self.loadError(declared))
        #expect(error.message.contains("is implied by subject"))
    }
}
