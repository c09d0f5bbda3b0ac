import Audit
import Foundation
import Postgres
import Privacy
import TestSupport
import Testing

@Suite("Data-subject requests move only as the lifecycle table allows")
struct RequestLifecycleTests {
    /// Creates a request as the owner (not bound by the trigger) in `status`, then tries to move it
    /// to `to` as the privacy worker on the gateway's login: whether the database let it.
    static func moves(
        _ worker: ConnectionPool, _ owner: ConnectionPool, kind: RequestKind, tenant: UUID, user: UUID,
        from: RequestStatus, to: RequestStatus
    ) async throws -> Result<Void, PostgresError> {
        let table = kind == .export ? "public.data_export_requests" : "public.data_deletion_requests"
        let id: UUID = try await owner.query(
            "INSERT INTO \(table) (tenant_id, user_id, status) VALUES ($1, $2, $3) RETURNING id", [tenant, user, from.rawValue]
        ).rows[0].decode("id")
        defer { Task { try? await owner.query("DELETE FROM \(table) WHERE id = $1", [id]) } }
        do {
            try await worker.transaction { connection in
                try connection.query(
                    "SELECT set_config('role', 'privacy_worker', true), set_config('request.tenant_id', $1, true)", [tenant.uuidString])
                let changed = try connection.query("UPDATE \(table) SET status = $2 WHERE id = $1", [id, to.rawValue]).affectedRows
                precondition(changed == 1, "the worker must see the row")
            }
            return .success(())
        } catch let error as PostgresError {
            return .failure(error)
        }
    }

    @Test("every pair of statuses, for both kinds, against the database's trigger: allowed exactly when the table allows it")
    func exhaustive() async throws {
        try await PrivacyFixture.with { fixture in
            let worker = ConnectionPool(configuration: TestDatabase.gateway(fixture.owner), options: .init(maxConnections: 2))
            defer { worker.close() }
            let tenant = try await fixture.tenant()
            let user = UUID()
            try await fixture.pool.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant])
            for kind in RequestKind.allCases {
                // An export is never awaiting confirmation (its CHECK constraint refuses the status).
                for from in RequestStatus.allCases where !(kind == .export && from == .awaitingConfirmation) {
                    for to in RequestStatus.allCases where to != from {
                        let outcome = try await Self.moves(worker, fixture.pool, kind: kind, tenant: tenant, user: user, from: from, to: to)
                        let allowed = RequestLifecycle.allows(kind, from: from, to: to)
                        switch outcome {
                        case .success:
                            #expect(allowed, "\(kind) \(from.rawValue) → \(to.rawValue) went through but the table forbids it")
                        case .failure(let error):
                            #expect(!allowed, "\(kind) \(from.rawValue) → \(to.rawValue) refused: \(error)")
                            if !allowed {
                                #expect(error.sqlState == "23514", "\(error)")
                                #expect("\(error)".contains("cannot move from \(from.rawValue) to \(to.rawValue)"), "\(error)")
                            }
                        }
                    }
                }
            }
        }
    }

    @Test("a request cannot be created in the middle of its life, e.g. an erasure already confirmed, except by the owner")
    func creation() async throws {
        try await PrivacyFixture.with { fixture in
            let worker = ConnectionPool(configuration: TestDatabase.gateway(fixture.owner), options: .init(maxConnections: 1))
            defer { worker.close() }
            let tenant = try await fixture.tenant()
            let user = UUID()
            try await fixture.pool.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant])
            for (table, status, allowed) in [
                ("data_deletion_requests", "pending", false), ("data_deletion_requests", "awaiting_confirmation", true),
                ("data_export_requests", "processing", false), ("data_export_requests", "pending", true),
            ] {
                do {
                    try await worker.transaction { connection in
                        try connection.query(
                            "SELECT set_config('role', 'privacy_worker', true), set_config('request.tenant_id', $1, true)",
                            [tenant.uuidString])
                        try connection.query(
                            "INSERT INTO public.\(table) (tenant_id, user_id, status) VALUES ($1, $2, $3)", [tenant, user, status])
                    }
                    #expect(allowed, "\(table) created as \(status)")
                } catch let error as PostgresError {
                    #expect(!allowed && error.sqlState == "23514", "\(table) \(status): \(error)")
                }
            }
        }
    }

    @Test(
        "retry: a failed export goes back to pending and is audited; again is a no-op; a completed or refused one cannot; another subject's is not found"
    )
    func retry() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = try await fixture.subject(in: tenant, rounds: 1)
            let actor = PrivacyActor("user:\(user.uuidString.lowercased())")
            let filed = try await fixture.service.requestExport(tenant: tenant, subject: user, actor: actor)
            let id = try #require(UUID(uuidString: filed.request.id))
            let claimed = try await fixture.service.claimNext(.export)
            #expect(claimed?.id == id)
            try await fixture.service.fail(.export, tenant: tenant, id: id, reason: "disk full")
            #expect(try await fixture.service.request(.export, tenant: tenant, id: id).status == "failed")

            await #expect(throws: PrivacyError.self) {
                try await fixture.service.retry(.export, tenant: tenant, id: id, subject: UUID(), actor: actor)
            }
            let retried = try await fixture.service.retry(.export, tenant: tenant, id: id, subject: user, actor: actor)
            #expect(retried.status == "pending" && retried.statusReason == nil)
            #expect(try await fixture.service.retry(.export, tenant: tenant, id: id, subject: user, actor: actor).status == "pending")
            let entries = try await AuditReader.entries(pool: fixture.pool, tenant: tenant, actionPrefix: "privacy.request_retried")
            #expect(entries.count == 1, "a second retry of a pending request writes nothing")

            // It runs to completion like any other request.
            _ = try await fixture.service.processExport(tenant: tenant, id: id)
            #expect(try await fixture.service.request(.export, tenant: tenant, id: id).status == "completed")
            await #expect(throws: PrivacyError.self) {
                try await fixture.service.retry(.export, tenant: tenant, id: id, subject: nil, actor: actor)
            }

            // A row the service did not file is refused by the worker, and a retry cannot launder it.
            let forged: UUID = try await fixture.pool.query(
                "INSERT INTO public.data_export_requests (tenant_id, user_id, status) VALUES ($1, $2, 'pending') RETURNING id",
                [tenant, user]
            ).rows[0].decode("id")
            _ = try await fixture.service.claimNext(.export)
            #expect(try await fixture.service.request(.export, tenant: tenant, id: forged).status == "failed")
            await #expect(throws: PrivacyError.self) {
                try await fixture.service.retry(.export, tenant: tenant, id: forged, subject: nil, actor: actor)
            }
        }
    }

    @Test("stuck: an open request unchanged for longer than the threshold is listed; one awaiting the subject's confirmation is not")
    func stuck() async throws {
        try await PrivacyFixture.with { fixture in
            let tenant = try await fixture.tenant()
            let user = UUID()
            try await fixture.pool.query("INSERT INTO auth.users (id, tenant_id) VALUES ($1, $2)", [user, tenant])
            let old: UUID = try await fixture.pool.query(
                "INSERT INTO public.data_export_requests (tenant_id, user_id, status) VALUES ($1, $2, 'pending') RETURNING id",
                [tenant, user]
            ).rows[0].decode("id")
            try await fixture.pool.query(
                "INSERT INTO public.data_deletion_requests (tenant_id, user_id, status) VALUES ($1, $2, 'awaiting_confirmation')",
                [tenant, user])
            try await fixture.pool.query("ALTER TABLE public.data_export_requests DISABLE TRIGGER update_data_export_requests_updated_at")
            try await fixture.pool.query(
                "ALTER TABLE public.data_deletion_requests DISABLE TRIGGER update_data_deletion_requests_updated_at")
            try await fixture.pool.query(
                "UPDATE public.data_export_requests SET updated_at = now() - interval '2 hours' WHERE tenant_id = $1", [tenant])
            try await fixture.pool.query(
                "UPDATE public.data_deletion_requests SET updated_at = now() - interval '2 hours' WHERE tenant_id = $1", [tenant])
            try await fixture.pool.query("ALTER TABLE public.data_export_requests ENABLE TRIGGER update_data_export_requests_updated_at")
            try await fixture.pool.query(
                "ALTER TABLE public.data_deletion_requests ENABLE TRIGGER update_data_deletion_requests_updated_at")
            let stuck = try await fixture.service.listRequests(tenant: tenant, stuckAfter: .seconds(3600))
            #expect(stuck.map(\.id) == [old.uuidString.lowercased()])
            #expect(try await fixture.service.listRequests(tenant: tenant, stuckAfter: .seconds(3 * 3600)).isEmpty)
        }
    }
}
