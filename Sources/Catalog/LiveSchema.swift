import Config
import Foundation
import Policy
import Postgres

/// What the live database says about row level security: `pg_policies`, `relrowsecurity` and
/// what the request roles and the secrets role may do to every relation. The policy files are
/// compared with it (drift) and linted against it.
public struct LiveSchema: Sendable {
    public let policies: [LivePolicy]
    public let tables: [LiveTable]
    public let rights: [LiveRights]
    /// Who may execute each function of `public` (declared ones are checked against their files).
    public var functionRights: [LiveFunctionRights] = []

    /// Reads every schema's policies, the RLS flag of every ordinary table and the checked roles'
    /// effective rights (grants to PUBLIC included) on every table, view and materialized view.
    /// Any role may read these catalogues, so the gateway's own login can run it for `/ready`.
    /// `tenant`: read on that tenant's behalf (a report), holding one of its slots in the pool.
    public static func read(from pool: ConnectionPool, tenant: UUID? = nil) async throws -> LiveSchema {
        let results = try await pool.withConnection(tenant: tenant) { connection in
            try await connection.pipeline([
                Statement(
                    """
                    SELECT schemaname::text AS schemaname, tablename::text AS tablename, policyname::text AS policyname,
                           permissive, roles::text[] AS roles, cmd, qual, with_check
                    FROM pg_catalog.pg_policies
                    WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
                    ORDER BY schemaname, tablename, policyname
                    """),
                Statement(
                    """
                    SELECT n.nspname::text AS schemaname, c.relname::text AS tablename, c.relrowsecurity AS rls
                    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                    """),
                Statement(
                    """
                    SELECT n.nspname::text AS schemaname, c.relname::text AS tablename, r.rolname::text AS role,
                           array(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                   AND has_column_privilege(r.oid, c.oid, a.attnum, 'SELECT')) AS can_select,
                           array(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                   AND has_column_privilege(r.oid, c.oid, a.attnum, 'INSERT')) AS can_insert,
                           array(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                   AND has_column_privilege(r.oid, c.oid, a.attnum, 'UPDATE')) AS can_update,
                           has_table_privilege(r.oid, c.oid, 'DELETE') AS can_delete,
                           (has_table_privilege(r.oid, c.oid, 'TRUNCATE') OR has_table_privilege(r.oid, c.oid, 'TRIGGER')
                            OR has_any_column_privilege(r.oid, c.oid, 'REFERENCES')) AS can_other
                    FROM pg_catalog.pg_class c
                    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                    JOIN pg_catalog.pg_roles r ON r.rolname = ANY($1::text[])
                    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
                    """, [PostgresTextArray(PolicySet.checkedRoles)]),
                Statement(
                    """
                    SELECT n.nspname::text || '.' || p.proname::text || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')' AS signature,
                           r.rolname::text AS role, has_function_privilege(r.oid, p.oid, 'EXECUTE') AS can_execute
                    FROM pg_catalog.pg_proc p
                    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                    JOIN pg_catalog.pg_roles r ON r.rolname = ANY($1::text[])
                    WHERE n.nspname = 'public' AND p.prokind = 'f'
                    """, [PostgresTextArray(PolicySet.checkedRoles)]),
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
        let rights = try results[2].rows.map { row in
            func columns(_ name: String) throws -> Set<String> {
                Set(try row.decode(name, as: PostgresTextArray.self).elements.compactMap { $0 })
            }
            return LiveRights(
                schemaname: try row.decode("schemaname"), tablename: try row.decode("tablename"), role: try row.decode("role"),
                rights: TableRights(
                    select: try columns("can_select"), insert: try columns("can_insert"), update: try columns("can_update"),
                    delete: try row.decode("can_delete"), other: try row.decode("can_other")))
        }
        var schema = LiveSchema(policies: policies, tables: tables, rights: rights)
        schema.functionRights = try results[3].rows.map { row in
            LiveFunctionRights(
                signature: try row.decode("signature"), role: try row.decode("role"), canExecute: try row.decode("can_execute"))
        }
        return schema
    }

    /// The policy files against this database: policies, RLS, grants and EXECUTE on declared functions.
    public func drift(of policySet: PolicySet) -> DriftReport {
        policySet.drift(live: policies, tables: tables, rights: rights, functions: functionRights)
    }
}

extension PolicySet {
    /// Loads `directory`, turning a policy file error into a configuration error that names
    /// file, line and column.
    public static func loadForGateway(directory: String) throws -> PolicySet {
        do {
            return try PolicySet.load(directory: directory)
        } catch let error as PolicyError {
            throw ConfigurationError("policy files: \(error)")
        }
    }
}
