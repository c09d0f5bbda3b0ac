import Audit
import Foundation
import Policy
import Postgres

/// Rows a retention sweep removed from one table of one tenant.
public struct RetentionSweep: Codable, Sendable, Equatable {
    public let tenant: String
    public let table: String
    /// `table` (the table's `retention_days`), `subject` (the user's `data_retention_days`) or
    /// `retain_until` (a retained table's period ended).
    public let basis: String
    public let strategy: String
    public let rows: Int64

    public init(tenant: String, table: String, basis: String, strategy: String, rows: Int64) {
        self.tenant = tenant
        self.table = table
        self.basis = basis
        self.strategy = strategy
        self.rows = rows
    }
}

extension PrivacyService {
    /// Tables a subject's own retention setting does not reach: the setting itself and the
    /// request records, which have their own lifecycle.
    static let subjectRetentionExempt: Set<String> = ["user_privacy_settings", "data_export_requests", "data_deletion_requests"]

    /// Sweeps, children before parents and in batches (each batch audited in its own
    /// transaction as `privacy.retention_swept`):
    /// - rows older than their table's `retention_days` (deleted: the period is over);
    /// - a subject's rows older than their `data_retention_days` (the table's erasure strategy).
    /// - rows of a retained table older than the ground's `until` period.
    /// Rows are aged by `created_at`.
    public func sweepRetention(tenant only: UUID? = nil, actor: PrivacyActor) async throws -> [RetentionSweep] {
        let graph = self.graph
        let configuration = self.configuration
        let audit = self.audit
        let tenants: [UUID] = try await run(tenant: nil) { connection in
            try connection.query(
                "SELECT id FROM public.tenants WHERE $1::uuid IS NULL OR id = $1::uuid ORDER BY id",
                [only.map { $0.lowercasedString } as String?]
            ).rows.map { try $0.decode("id") }
        }
        var sweeps: [RetentionSweep] = []
        // One tenant at a time, each bound by its own tenant policy.
        for tenant in tenants {
            sweeps += try await run(tenant: tenant) { connection in
                var sweeps: [RetentionSweep] = []
                for node in graph.nodes {
                    let table = node.table
                    guard let rules = table.privacy, table.column(named: "created_at") != nil else { continue }
                    let created = "t0." + (try table.quotedColumn("created_at"))
                    let tenantColumn = "t0." + (try table.quotedColumn(table.tenantColumn))
                    // `keyed`: an anonymisation with hmac columns, run through ``Masking/runKeyed`` (each row's hash under its own subject's key).
                    var statements:
                        [(
                            basis: String, strategy: String, sql: String, binds: [any PostgresEncodable], batched: Bool,
                            keyed: (masking: Masking, filter: String, subject: String)?
                        )] = []
                    let retained: Bool
                    if case .retain = rules.erasure { retained = true } else { retained = false }
                    if case .retain(_, let until) = rules.erasure {
                        // Retained rows go once their legal ground's period is over, and not before.
                        let (days, months, years) = (
                            until.unit == .day ? until.count : 0, until.unit == .month ? until.count : 0,
                            until.unit == .year ? until.count : 0
                        )
                        statements.append(
                            (
                                "retain_until", "delete",
                                """
                                DELETE FROM \(table.quotedName) WHERE ctid = ANY(ARRAY(
                                    SELECT t0.ctid FROM \(table.quotedName) t0
                                    WHERE \(tenantColumn) = $1 AND \(created) < now() - make_interval(years => $2, months => $3, days => $4) LIMIT $5))
                                """, [tenant, years, months, days, configuration.batchSize], true, nil
                            ))
                    }
                    if let days = rules.retentionDays, !retained {
                        statements.append(
                            (
                                "table", "delete",
                                """
                                DELETE FROM \(table.quotedName) WHERE ctid = ANY(ARRAY(
                                    SELECT t0.ctid FROM \(table.quotedName) t0
                                    WHERE \(tenantColumn) = $1 AND \(created) < now() - make_interval(days => $2) LIMIT $3))
                                """, [tenant, days, configuration.batchSize], true, nil
                            ))
                    }
                    if !retained && !Self.subjectRetentionExempt.contains(table.name) {
                        let expired = """
                            \(tenantColumn) = $1 AND EXISTS (SELECT 1 FROM public.user_privacy_settings s
                                WHERE s.tenant_id = \(tenantColumn) AND s.user_id = \(try graph.subjectValue(table))
                                AND \(created) < now() - make_interval(days => s.data_retention_days))
                            """
                        switch rules.erasure {
                        case .delete:
                            statements.append(
                                (
                                    "subject", "delete",
                                    "DELETE FROM \(table.quotedName) WHERE ctid = ANY(ARRAY(SELECT t0.ctid FROM \(table.quotedName) t0 WHERE \(expired) LIMIT $2))",
                                    [tenant, configuration.batchSize], true, nil
                                ))
                        case .anonymize:
                            // The erasure statement's column rewrites, with the retention predicate.
                            if let erasure = try Self.batchStatement(table, strategy: rules.erasure, graph: graph),
                                let masking = erasure.masking
                            {
                                let owner = try graph.subjectValue(table)
                                let keyed: (masking: Masking, filter: String, subject: String)? =
                                    masking.keyed.isEmpty ? nil : (masking, "\(expired) LIMIT $2", owner)
                                statements.append(
                                    (
                                        "subject", "anonymize",
                                        "UPDATE \(table.quotedName) SET \(masking.assignments(firstParameter: 3)) "
                                            + "WHERE ctid = ANY(ARRAY(SELECT t0.ctid FROM \(table.quotedName) t0 WHERE \(expired) LIMIT $2))",
                                        [tenant, configuration.batchSize] + masking.parameters, erasure.batched, keyed
                                    ))
                            }
                        case .retain:
                            break
                        }
                    }
                    for statement in statements {
                        var total: Int64 = 0
                        while true {
                            let changed = try connection.transaction { connection -> Int in
                                let affected: Int
                                if let keyed = statement.keyed {
                                    affected = try keyed.masking.runKeyed(
                                        connection, filter: keyed.filter, binds: [tenant, configuration.batchSize], subject: keyed.subject,
                                        fixedSubject: nil,
                                        timeout: configuration.statementTimeout
                                    ) { try Self.maskingKey(connection, keyring: self.keyring, tenant: tenant, subject: $0) }
                                } else {
                                    affected = try connection.pipeline(
                                        [Statement(statement.sql, statement.binds)], timeout: configuration.statementTimeout)[0]
                                        .affectedRows
                                }
                                if affected > 0 {
                                    _ = try audit.append(
                                        in: connection, tenant: tenant,
                                        actor.event(
                                            "privacy.retention_swept", target: table.qualifiedName,
                                            details: [
                                                "table": .string(table.qualifiedName), "rows": .int(Int64(affected)),
                                                "basis": .string(statement.basis), "strategy": .string(statement.strategy),
                                            ]))
                                }
                                return affected
                            }
                            total += Int64(changed)
                            if changed == 0 || !statement.batched { break }
                        }
                        if total > 0 {
                            sweeps.append(
                                RetentionSweep(
                                    tenant: tenant.lowercasedString, table: table.qualifiedName, basis: statement.basis,
                                    strategy: statement.strategy, rows: total))
                        }
                    }
                }
                return sweeps
            }
        }
        return sweeps
    }
}
