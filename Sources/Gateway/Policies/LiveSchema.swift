import Foundation
import Policy
import Postgres

/// What the live database says about row level security: `pg_policies` and `relrowsecurity`.
/// The policy files are compared with it (drift) and linted against it.
public struct LiveSchema: Sendable {
    public let policies: [LivePolicy]
    public let tables: [LiveTable]

    /// Reads every schema's policies and the RLS flag of every ordinary table. Any role may read
    /// these catalogues, so the gateway's own login can run it for `/ready`.
    public static func read(from pool: ConnectionPool) async throws -> LiveSchema {
        let results = try await pool.withConnection { connection in
            try await connection.pipeline([
                Statement("""
                    SELECT schemaname::text AS schemaname, tablename::text AS tablename, policyname::text AS policyname,
                           permissive, roles::text[] AS roles, cmd, qual, with_check
                    FROM pg_catalog.pg_policies
                    WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
                    ORDER BY schemaname, tablename, policyname
                    """),
                Statement("""
                    SELECT n.nspname::text AS schemaname, c.relname::text AS tablename, c.relrowsecurity AS rls
                    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                    """),
            ])
        }
        let policies = try results[0].rows.map { row in
            LivePolicy(
                schemaname: try row.decode("schemaname"), tablename: try row.decode("tablename"),
                policyname: try row.decode("policyname"), permissive: try row.decode("permissive"),
                roles: try row.decode("roles", as: PostgresTextArray.self).elements.compactMap { $0 },
                cmd: try row.decode("cmd"), qual: try row.decodeIfPresent("qual"), withCheck: try row.decodeIfPresent("with_check"))
        }
        let tables = try results[1].rows.map { row in
            LiveTable(schemaname: try row.decode("schemaname"), tablename: try row.decode("tablename"), rlsEnabled: try row.decode("rls"))
        }
        return LiveSchema(policies: policies, tables: tables)
    }

    /// The policy files against this database.
    public func drift(of policySet: PolicySet) -> DriftReport {
        policySet.drift(live: policies, tables: tables)
    }
}

extension PolicySet {
    /// Loads `directory`, turning a policy file error into a configuration error that names
    /// file, line and column.
    public static func loadForGateway(directory: String) throws -> PolicySet {
        do {
            return try PolicySet.load(directory: directory)
        } catch let error as PolicyError {
            throw GatewayError.configuration("policy files: \(error)")
        }
    }
}
