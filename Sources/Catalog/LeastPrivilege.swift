import Config
import Postgres

/// The gateway's login must leave row level security in force: not a superuser, not BYPASSRLS,
/// and not the owner of any table (an owner bypasses its table's RLS unless it is FORCEd). The
/// same holds for every role the login is a member of: a member of the owner's role has the
/// owner's privileges (inherited, or one `SET ROLE` away) and so bypasses RLS as the owner does,
/// and a member of a superuser or BYPASSRLS role becomes one with `SET ROLE`. The HTTP-facing
/// process refuses to start otherwise — RLS is its second line of defence, and a warning in a
/// log is no line at all.
public enum LeastPrivilege {
    /// Throws a configuration error naming what is wrong with the current login.
    public static func requireRLSBound(_ pool: ConnectionPool) async throws {
        let row = try await pool.query(
            """
            SELECT current_user::text AS name, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls,
                   (SELECT string_agg(m.rolname::text, ', ' ORDER BY m.rolname) FROM pg_catalog.pg_roles m
                    WHERE m.oid <> r.oid AND (m.rolsuper OR m.rolbypassrls)
                      AND pg_catalog.pg_has_role(r.oid, m.oid, 'MEMBER')) AS escalates_to,
                   (SELECT count(*) FROM pg_catalog.pg_class c
                    WHERE pg_catalog.pg_has_role(r.oid, c.relowner, 'MEMBER') AND c.relkind IN ('r', 'p')
                      AND c.relnamespace NOT IN (SELECT oid FROM pg_catalog.pg_namespace
                                                 WHERE nspname IN ('pg_catalog', 'information_schema'))) AS owned
            FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
            """
        ).rows.first
        guard let row else { throw ConfigurationError("the gateway's database login has no pg_roles row") }
        let name: String = try row.decode("name")
        let fix = "set GATEWAY_DATABASE_URL to the privacy_gateway login the migrations create (not the owner's DATABASE_URL)"
        if try row.decode("superuser", as: Bool.self) {
            throw ConfigurationError("refusing to serve as \(name): it is a superuser, so row level security would not apply; \(fix)")
        }
        if try row.decode("bypassrls", as: Bool.self) {
            throw ConfigurationError("refusing to serve as \(name): it has BYPASSRLS, so row level security would not apply; \(fix)")
        }
        if let roles = try row.decodeIfPresent("escalates_to", as: String.self) {
            throw ConfigurationError(
                "refusing to serve as \(name): it is a member of \(roles), a superuser or BYPASSRLS role it can become with SET ROLE, so row level security would not apply; \(fix)"
            )
        }
        let owned = try row.decode("owned", as: Int.self)
        if owned > 0 {
            throw ConfigurationError(
                "refusing to serve as \(name): it owns \(owned) tables (itself or through a role it is a member of), and an owner bypasses their row level security; \(fix)"
            )
        }
    }
}
