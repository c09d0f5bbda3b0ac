import Audit
import Foundation
import Postgres

/// Who performs admin writes, and where they are recorded.
///
/// With an appender, each admin write and its audit entry commit in one transaction: no entry,
/// no change (fail closed). Without one, writes are not audited — only tests do that.
public struct AdminAuditing: Sendable {
    package let appender: AuditAppender?
    package let actor: String

    /// Audits as `actor` (e.g. `privacyctl`).
    public init(appender: AuditAppender, actor: String) {
        self.appender = appender
        self.actor = actor
    }

    private init() {
        appender = nil
        actor = ""
    }

    /// No auditing, for tests of the registries themselves.
    public static let disabled = AdminAuditing()

    /// Runs `statement`, then — in the same transaction — appends the entry `event` builds from
    /// its first row (no row: nothing changed, nothing recorded).
    package func write(
        _ pool: ConnectionPool, _ statement: Statement,
        event: @escaping @Sendable (PostgresRow) throws -> (tenant: UUID, event: AuditEvent)
    ) async throws -> QueryResult {
        try await write(pool, { try $0.pipeline([statement])[0] }, event: event)
    }

    /// Like ``write(_:_:event:)`` for a change of several statements: `body` runs them in the
    /// transaction and returns the result whose first row describes the change.
    package func write(
        _ pool: ConnectionPool, _ body: @escaping @Sendable (borrowing Connection) throws -> QueryResult,
        event: @escaping @Sendable (PostgresRow) throws -> (tenant: UUID, event: AuditEvent)
    ) async throws -> QueryResult {
        let appender = self.appender
        return try await pool.transaction { connection in
            let result = try body(connection)
            if let appender, let row = result.first {
                let (tenant, entry) = try event(row)
                _ = try appender.append(in: connection, tenant: tenant, entry)
            }
            return result
        }
    }
}
