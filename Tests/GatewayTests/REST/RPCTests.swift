import Audit
import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Policy
import Postgres
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// `/rest/v1/rpc/{fn}` and declared views through the real router: the seeds' functions run under
/// the caller's role and RLS, in the caller's tenant; nothing undeclared is reachable.
@Suite("REST: RPC and views declared in the policy files")
struct RPCTests {
    static let prefer = HTTPField.Name("Prefer")!

    /// Alice's brand, session and three messages (two with a provider); returns the session id.
    static func aliceConversation(_ f: RESTFixture) async throws -> String {
        let user = f.alice.uuidString.lowercased()
        let brand = try await f.request(
            .post, "/rest/v1/brands?select=id", as: f.acme, f.alice,
            body: #"{"name": "acme brand", "user_id": "\#(user)"}"#, headers: RESTTests.representation)
        #expect(brand.status == .created, "\(brand.body)")
        let brandID = try #require(try f.json(brand.body).first?["id"] as? String)
        let session = try await f.request(
            .post, "/rest/v1/conversation_sessions?select=id", as: f.acme, f.alice,
            body: #"{"brand_id": "\#(brandID)", "user_id": "\#(user)"}"#, headers: RESTTests.representation)
        #expect(session.status == .created, "\(session.body)")
        let sessionID = try #require(try f.json(session.body).first?["id"] as? String)
        // One request each: the history orders by created_at, which is the transaction's time.
        let messages = [
            #"{"role": "user", "content": "hi", "tokens_used": 10, "cost_usd": 0.01, "provider": "openai", "model_used": "gpt", "latency_ms": 100"#,
            #"{"role": "assistant", "content": "hello", "tokens_used": 20, "cost_usd": 0.02, "provider": "openai", "model_used": "gpt", "latency_ms": 300"#,
            #"{"role": "user", "content": "bye", "tokens_used": 5"#,
        ]
        for message in messages {
            let body = message + #", "session_id": "\#(sessionID)", "brand_id": "\#(brandID)", "user_id": "\#(user)"}"#
            let inserted = try await f.request(.post, "/rest/v1/conversation_messages", as: f.acme, f.alice, body: body)
            #expect(inserted.status == .created, "\(inserted.body)")
        }
        return sessionID
    }

    static func error(_ body: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
    }

    @Test("undeclared functions, unknown or missing arguments: 404 PGRST202 with a hint, before any SQL")
    func undeclaredFunctions() async throws {
        try await RESTFixture.run { f in
            let session = UUID().uuidString.lowercased()
            // Functions that exist in the database but are not declared, and ones that do not exist.
            for name in [
                "cleanup_old_sessions", "assert_service_key_active", "update_updated_at_column", "pg_sleep", "version", "nope",
                "get_session_cost;drop",
            ] {
                let call = try await f.request(.post, "/rest/v1/rpc/\(name)", as: f.acme, f.alice, body: "{}")
                #expect(call.status == .notFound, "\(name): \(call.body)")
                let body = Self.error(call.body)
                #expect(body["code"] as? String == "PGRST202")
                #expect((body["hint"] as? String)?.contains("get_session_cost") == true)
            }
            let unknown = try await f.request(
                .post, "/rest/v1/rpc/get_session_cost", as: f.acme, f.alice,
                body: #"{"p_session_id": "\#(session)", "p_user": "x"}"#)
            #expect(unknown.status == .notFound)
            #expect(Self.error(unknown.body)["details"] as? String == "unknown arguments: p_user")
            #expect((Self.error(unknown.body)["hint"] as? String)?.contains("p_session_id uuid") == true)
            let missing = try await f.request(.post, "/rest/v1/rpc/get_session_cost", as: f.acme, f.alice, body: "{}")
            #expect(missing.status == .notFound)
            #expect(Self.error(missing.body)["details"] as? String == "missing arguments: p_session_id")
            // Not an object, bad types, NUL: 400, never 5xx.
            for body in ["[1]", "\"x\"", "{not json"] {
                let bad = try await f.request(.post, "/rest/v1/rpc/get_session_cost", as: f.acme, f.alice, body: body)
                #expect(bad.status == .badRequest, "\(body): \(bad.body)")
            }
            let badUUID = try await f.request(
                .post, "/rest/v1/rpc/get_session_cost", as: f.acme, f.alice, body: #"{"p_session_id": "nope"}"#)
            #expect(badUUID.status == .badRequest, "\(badUUID.body)")
            #expect(Self.error(badUUID.body)["code"] as? String == "22P02")
            let nul = try await f.request(.get, "/rest/v1/rpc/get_session_cost?p_session_id=a%00b", as: f.acme, f.alice)
            #expect(nul.status == .badRequest, "\(nul.body)")
            let twice = try await f.request(
                .get, "/rest/v1/rpc/get_session_cost?p_session_id=\(session)&p_session_id=\(session)", as: f.acme, f.alice)
            #expect(twice.status == .badRequest)
        }
    }

    @Test("anon may call none of the seeds' functions: 401 42501 naming the declared roles, audited; the database refuses too")
    func anonRefused() async throws {
        try await RESTFixture.run { f in
            let session = try await Self.aliceConversation(f)
            let anon = try await f.request(
                .post, "/rest/v1/rpc/get_session_cost", as: f.acme, nil, body: #"{"p_session_id": "\#(session)"}"#)
            #expect(anon.status == .unauthorized, "\(anon.body)")
            #expect(Self.error(anon.body)["code"] as? String == "42501")
            #expect((Self.error(anon.body)["details"] as? String)?.contains("authenticated, service_role") == true)
            let keyAsBearer = try await SupabaseClientTests.raw(
                f, .get, "/rest/v1/rpc/get_session_cost?p_session_id=\(session)",
                apikey: f.acme.apikey, bearer: f.acme.apikey)
            #expect(keyAsBearer.status == .unauthorized)
            let entries = try await AuditReader.entries(pool: f.auth.owner, tenant: f.acme.id, actionPrefix: "policy.denied")
            #expect(entries.filter { $0.target == "public.get_session_cost" }.count == 2)
            // Under the gateway, as the database sees it: EXECUTE was revoked from PUBLIC (0018).
            let refused: Bool = try await f.auth.owner.withConnection { pooled in
                try await pooled.run { connection in
                    try connection.simple("BEGIN")
                    defer { _ = try? connection.simple("ROLLBACK") }
                    try connection.simple("SET LOCAL ROLE anon")
                    do {
                        _ = try connection.query("SELECT public.get_session_cost($1::uuid)", [session])
                        return false
                    } catch let error as PostgresError { return error.sqlState == "42501" }
                }
            }
            #expect(refused)
        }
    }

    @Test(
        "the seeds' functions run under the caller's RLS: alice sees her session's cost, history and stats; bob and another tenant see nothing"
    )
    func seedFunctionsScopedByRLS() async throws {
        try await RESTFixture.run { f in
            let session = try await Self.aliceConversation(f)
            let args = #"{"p_session_id": "\#(session)"}"#
            let cost = try await f.request(.post, "/rest/v1/rpc/get_session_cost", as: f.acme, f.alice, body: args)
            #expect(cost.status == .ok, "\(cost.body)")
            #expect(Decimal(string: cost.body) == Decimal(string: "0.03"))
            for (tenant, user) in [(f.acme, f.bob), (f.globex, f.carol), (f.globex, f.alice)] {
                let other = try await f.request(.post, "/rest/v1/rpc/get_session_cost", as: tenant, user, body: args)
                #expect(other.status == .ok)
                #expect(Decimal(string: other.body) == 0, "\(other.body)")
                let history = try await f.request(.get, "/rest/v1/rpc/get_conversation_history?p_session_id=\(session)", as: tenant, user)
                #expect(history.body == "[]")
            }
            // GET with arguments in the query string, the rest as the usual grammar on the rows.
            let history = try await f.request(
                .get,
                "/rest/v1/rpc/get_conversation_history?p_session_id=\(session)&p_limit=2&select=role,content&order=content.desc",
                as: f.acme, f.alice, headers: [Self.prefer: "count=exact"])
            #expect(history.status == .ok, "\(history.body)")
            #expect(try f.json(history.body).map { $0["content"] as? String } == ["hello", "bye"])
            #expect(try f.json(history.body).first?.keys.sorted() == ["content", "role"])
            #expect(history.headers[.contentRange] == "0-1/2")
            let filtered = try await f.request(
                .get,
                "/rest/v1/rpc/get_conversation_history?p_session_id=\(session)&role=eq.user&select=content&order=content&limit=1",
                as: f.acme, f.alice)
            #expect(try f.json(filtered.body).map { $0["content"] as? String } == ["bye"])
            let unknownColumn = try await f.request(
                .get, "/rest/v1/rpc/get_conversation_history?p_session_id=\(session)&select=secret", as: f.acme, f.alice)
            #expect(unknownColumn.status == .badRequest)
            let single = try await f.request(
                .post, "/rest/v1/rpc/get_conversation_history?role=eq.assistant", as: f.acme, f.alice,
                body: args, headers: [.accept: "application/vnd.pgrst.object+json"])
            #expect(single.status == .ok, "\(single.body)")
            #expect(single.body.hasPrefix("{"))
            let stats = try await f.request(.post, "/rest/v1/rpc/get_session_message_stats?order=role", as: f.acme, f.alice, body: args)
            #expect(try f.json(stats.body).map { $0["role"] as? String } == ["assistant", "user"])
            #expect(try f.json(stats.body).last?["message_count"] as? Int == 2)
            // A scalar takes no row grammar.
            let scalarFilter = try await f.request(.post, "/rest/v1/rpc/get_session_cost?order=x", as: f.acme, f.alice, body: args)
            #expect(scalarFilter.status == .badRequest)
            let analytics = try await f.request(
                .get, "/rest/v1/rpc/get_session_analytics?user_id_param=\(f.alice.uuidString.lowercased())", as: f.acme, f.alice)
            #expect(analytics.status == .ok, "\(analytics.body)")
            #expect(try f.json(analytics.body).first?["total_sessions"] as? Int == 0)
        }
    }

    @Test("a read-only service key calls stable functions but not volatile ones (403 PGW403); other methods are 405")
    func scopesAndMethods() async throws {
        try await RESTFixture.run { f in
            let session = try await Self.aliceConversation(f)
            let (_, readOnly) = try await ServiceKeyRegistry(pool: f.auth.owner, rootKey: f.auth.rootKey)
                .create(tenant: f.acme.id, scopes: [.dataRead], name: "read only")
            let token = try await Tokens.hs256(claims: Tokens.user(f.alice), secret: f.acme.secret!)
            let stable = try await SupabaseClientTests.raw(
                f, .get, "/rest/v1/rpc/get_session_cost?p_session_id=\(session)", apikey: readOnly, bearer: token)
            #expect(stable.status == .ok, "\(stable.body)")
            let volatile = try await SupabaseClientTests.raw(
                f, .post, "/rest/v1/rpc/complete_conversation_session", apikey: readOnly, bearer: token,
                body: #"{"p_session_id": "\#(session)"}"#)
            #expect(volatile.status == .forbidden)
            #expect(Self.error(volatile.body)["code"] as? String == "PGW403")
            for method in [HTTPRequest.Method.patch, .delete, .put] {
                let other = try await f.request(method, "/rest/v1/rpc/get_session_cost", as: f.acme, f.alice)
                #expect(other.status == .methodNotAllowed, "\(method)")
            }
            let state = try await f.request(.get, "/rest/v1/conversation_sessions?select=state&id=eq.\(session)", as: f.acme, f.alice)
            #expect(try f.json(state.body).first?["state"] as? String != "delivered")
        }
    }

    @Test("volatile functions: GET is 405; POST changes only what the caller's policies allow; stable ones run read-only")
    func volatileFunctions() async throws {
        try await RESTFixture.run { f in
            let session = try await Self.aliceConversation(f)
            let args = #"{"p_session_id": "\#(session)"}"#
            let get = try await f.request(.get, "/rest/v1/rpc/complete_conversation_session?p_session_id=\(session)", as: f.acme, f.alice)
            #expect(get.status == .methodNotAllowed)
            #expect(Self.error(get.body)["code"] as? String == "PGRST101")
            // Bob cannot see alice's session: nothing changes, the function says so.
            let bob = try await f.request(.post, "/rest/v1/rpc/complete_conversation_session", as: f.acme, f.bob, body: args)
            #expect(bob.body == "false", "\(bob.body)")
            let carol = try await f.request(.post, "/rest/v1/rpc/complete_conversation_session", as: f.globex, f.carol, body: args)
            #expect(carol.body == "false")
            let state = try await f.request(.get, "/rest/v1/conversation_sessions?select=state&id=eq.\(session)", as: f.acme, f.alice)
            #expect(try f.json(state.body).first?["state"] as? String != "delivered")
            let alice = try await f.request(.post, "/rest/v1/rpc/complete_conversation_session", as: f.acme, f.alice, body: args)
            #expect(alice.body == "true", "\(alice.body)")
            let after = try await f.request(.get, "/rest/v1/conversation_sessions?select=state&id=eq.\(session)", as: f.acme, f.alice)
            #expect(try f.json(after.body).first?["state"] as? String == "delivered")

            // create_version_history writes as the caller: for herself, yes; for bob, the insert
            // policy refuses (403) and nothing is written.
            let entity = UUID().uuidString.lowercased()
            let create =
                #"{"entity_type_param": "project", "entity_id_param": "\#(entity)", "user_id_param": "\#(f.alice.uuidString.lowercased())", "changes_param": {"name": ["a", "b"]}}"#
            let created = try await f.request(.post, "/rest/v1/rpc/create_version_history", as: f.acme, f.alice, body: create)
            #expect(created.status == .ok, "\(created.body)")
            #expect(UUID(uuidString: created.body.trimmingCharacters(in: CharacterSet(charactersIn: "\""))) != nil)
            let forBob = create.replacingOccurrences(of: f.alice.uuidString.lowercased(), with: f.bob.uuidString.lowercased())
            _ = try await f.request(.get, "/rest/v1/projects", as: f.acme, f.bob)  // registers bob
            let refused = try await f.request(.post, "/rest/v1/rpc/create_version_history", as: f.acme, f.alice, body: forBob)
            #expect(refused.status == .forbidden, "\(refused.body)")
            #expect(Self.error(refused.body)["code"] as? String == "42501")
            let next = try await f.request(
                .get, "/rest/v1/rpc/get_next_version?entity_type_param=project&entity_id_param=\(entity)", as: f.acme, f.alice)
            #expect(next.body == "2", "\(next.body)")
            let nextForBob = try await f.request(
                .get, "/rest/v1/rpc/get_next_version?entity_type_param=project&entity_id_param=\(entity)", as: f.acme, f.bob)
            #expect(nextForBob.body == "1")
        }
    }

    @Test("declared views serve each user aggregates of their own rows in their own tenant; anon and writes are refused")
    func views() async throws {
        try await RESTFixture.run { f in
            _ = try await Self.aliceConversation(f)
            let usage = try await f.request(
                .get, "/rest/v1/provider_usage_stats?select=provider,request_count,total_tokens", as: f.acme, f.alice,
                headers: [Self.prefer: "count=exact"])
            #expect(usage.status == .ok, "\(usage.body)")
            let rows = try f.json(usage.body)
            #expect(rows.count == 1)
            #expect(rows.first?["provider"] as? String == "openai")
            #expect(rows.first?["request_count"] as? Int == 2)
            #expect(usage.headers[.contentRange] == "0-0/1")
            let volume = try await f.request(
                .get, "/rest/v1/daily_message_volume?select=message_count,user_messages&user_id=eq.\(f.alice.uuidString.lowercased())",
                as: f.acme, f.alice)
            #expect(try f.json(volume.body).first?["message_count"] as? Int == 3)
            for (tenant, user) in [(f.acme, f.bob), (f.globex, f.carol), (f.globex, f.alice)] {
                for view in ["provider_usage_stats", "daily_message_volume"] {
                    let other = try await f.request(.get, "/rest/v1/\(view)", as: tenant, user)
                    #expect(other.status == .ok)
                    #expect(other.body == "[]", "\(view): \(other.body)")
                }
            }
            let anon = try await f.request(.get, "/rest/v1/provider_usage_stats", as: f.acme, nil)
            #expect(anon.status == .unauthorized)
            #expect(Self.error(anon.body)["code"] as? String == "42501")
            for method in [HTTPRequest.Method.post, .patch, .delete] {
                let write = try await f.request(
                    method, "/rest/v1/provider_usage_stats", as: f.acme, f.alice, body: method == .delete ? nil : #"{"provider": "x"}"#)
                #expect(write.status == .forbidden, "\(method): \(write.body)")
            }
            let unknown = try await f.request(.get, "/rest/v1/provider_usage_stats?select=content", as: f.acme, f.alice)
            #expect(unknown.status == .badRequest)
            let filtered = try await f.request(.get, "/rest/v1/provider_usage_stats?provider=eq.anthropic", as: f.acme, f.alice)
            #expect(filtered.body == "[]")
        }
    }

    @Test("the drift check knows declared functions: EXECUTE granted to anon, revoked from authenticated, or a function dropped is drift")
    func functionGrantDrift() async throws {
        try await RESTFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            #expect(try await LiveSchema.read(from: f.auth.owner).drift(of: policies).isClean)
            try await f.auth.owner.query("GRANT EXECUTE ON FUNCTION public.get_session_cost(uuid) TO anon")
            try await f.auth.owner.query("REVOKE EXECUTE ON FUNCTION public.get_next_version(text, uuid) FROM authenticated")
            try await f.auth.owner.query("DROP FUNCTION public.get_session_message_stats(uuid)")
            let report = try await LiveSchema.read(from: f.auth.owner).drift(of: policies)
            let cost = try #require(report.tables.first { $0.table == "public.get_session_cost(uuid)" })
            #expect(cost.rights.map(\.role) == ["anon"])
            let next = try #require(report.tables.first { $0.table == "public.get_next_version(text, uuid)" })
            #expect(next.rights.map(\.role) == ["authenticated"])
            #expect(
                report.tables.contains {
                    $0.table == "public.get_session_message_stats(uuid)" && $0.rights.first?.live == "no such function"
                })
            #expect(report.description.contains("grants:  anon may EXECUTE; declared: nothing"), "\(report)")
        }
    }

    @Test(
        "declarations agree with the database: volatility, security, arguments, EXECUTE for the declared roles only, views security_invoker"
    )
    func declarationsMatchDatabase() async throws {
        try await RESTFixture.run { f in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            #expect(policies.functions.count == 8)
            #expect(policies.views.map(\.name) == ["daily_message_volume", "provider_usage_stats"])
            #expect(policies.lint().filter { $0.code == .securityDefinerFunction }.isEmpty)
            try await f.auth.owner.withConnection { pooled in
                try await pooled.run { connection in
                    for function in policies.functions {
                        let row = try #require(
                            try connection.query(
                                """
                                SELECT p.provolatile::text AS volatility, p.prosecdef AS definer,
                                       coalesce(array_to_string(p.proargnames[1:p.pronargs], ','), '') AS names,
                                       p.pronargdefaults AS defaults,
                                       has_function_privilege('anon', p.oid, 'EXECUTE') AS anon,
                                       has_function_privilege('authenticated', p.oid, 'EXECUTE') AS authenticated,
                                       has_function_privilege('service_role', p.oid, 'EXECUTE') AS service_role
                                FROM pg_proc p WHERE p.oid = $1::regprocedure
                                """, [function.signature]
                            ).first, "\(function.signature)")
                        let volatility: String = try row.decode("volatility")
                        #expect(volatility == String(function.volatility.rawValue.prefix(1)), "\(function.name)")
                        #expect(try row.decode("definer", as: Bool.self) == (function.security == .definer))
                        #expect(try row.decode("names", as: String.self) == function.arguments.map(\.name).joined(separator: ","))
                        #expect(try row.decode("defaults", as: Int.self) == function.optional.count)
                        for role in PolicySet.requestRoles {
                            #expect(
                                try row.decode(role, as: Bool.self) == function.roles.contains(role), "\(function.name) EXECUTE for \(role)"
                            )
                        }
                    }
                    for view in policies.views {
                        let options: String = try connection.query(
                            "SELECT coalesce(array_to_string(reloptions, ','), '') AS o FROM pg_class WHERE oid = $1::regclass",
                            [view.qualifiedName]
                        ).first!.decode("o")
                        #expect(options.contains("security_invoker=true"), "\(view.name): \(options)")
                        let columns = try connection.query(
                            """
                            SELECT attname::text AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
                            WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
                            """, [view.qualifiedName]
                        ).rows.map { "\(try $0.decode("name", as: String.self)) \(try $0.decode("type", as: String.self))" }
                        #expect(columns == view.columns.map { "\($0.name) \($0.type.canonical)" })
                    }
                }
            }
        }
    }
}
