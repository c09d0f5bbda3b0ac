import Audit
import Config
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Policy
import Postgres
import Privacy
import Secrets
import Sodium
import Synchronization
import Tenancy
import TestSupport
import Testing

@testable import Gateway

/// The gateway's limits (README, "Limits"), each through the real router or a real server socket.
struct LimitsFixture: @unchecked Sendable {
    let auth: AuthFixture
    let client: any TestClientProtocol
    let services: GatewayServices
    let acme: TestTenant
    let globex: TestTenant

    /// `privacy`: also serve `/v1/privacy` (on the same pool, so under the same per-tenant cap).
    static func run(
        limits: GatewayLimits, setup: TestingSetup = .router, trustedProxies: TrustedProxies = .none, privacy: Bool = false,
        _ body: @escaping @Sendable (LimitsFixture) async throws -> Void
    ) async throws {
        // As the gateway's start-up does: one per-tenant cap, the pool's own, for all of a tenant's database work.
        try await AuthFixture.run(tenantLimiter: limits.tenantLimiter(poolSize: 6)) { auth in
            let policies = try PolicySet.load(directory: TestDatabase.repositoryPolicies.path)
            let auditKeys = try AuditKeys(rootKey: auth.keyring.serviceMaster)
            let audit = AuditAppender(pool: auth.gateway, keys: auditKeys)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("limits-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            var service: PrivacyService?
            if privacy {
                var configuration = PrivacyConfiguration(
                    policyVersion: try PrivacyConfiguration.policyVersion(directory: TestDatabase.repositoryPolicies.path),
                    exportDirectory: directory.path)
                configuration.encryptionLimits = .testing
                service = PrivacyService(
                    pool: auth.gateway, graph: try await SubjectGraph.load(policies: policies, pool: auth.gateway),
                    audit: audit, signingKey: try Ed25519.SigningKey.generate(), tokenKey: try SecureBytes(count: 32),
                    keyring: auth.keyring, configuration: configuration, notifier: nil)
            }
            var services = GatewayServices(
                pool: auth.gateway, policies: policies, authenticator: auth.authenticator,
                readiness: try Readiness(pool: auth.gateway, migrationsDirectory: TestDatabase.repositoryMigrations, policies: policies),
                audit: audit,
                secrets: SecretStore(pool: auth.gateway, keyring: auth.keyring, audit: audit, auditKeys: auditKeys),
                auditKeys: auditKeys, privacy: service, limits: limits)
            services.trustedProxies = trustedProxies
            let built = services
            let scopes: [Scope] = [.dataRead, .dataWrite, .secretsRead, .secretsWrite, .auditRead, .privacyExport]
            let acme = try await auth.tenant("acme", scopes: scopes)
            let globex = try await auth.tenant("globex", scopes: scopes)
            let app = Application(
                router: GatewayApplication.router(services: built),
                server: GatewayApplication.server(limits: limits),
                configuration: GatewayApplication.serverConfiguration(address: .hostname("127.0.0.1", port: 0), limits: limits))
            try await app.test(setup) { client in
                try await body(LimitsFixture(auth: auth, client: client, services: built, acme: acme, globex: globex))
            }
        }
    }

    /// Runs the gateway's own server (as `GatewayApplication.make` builds it) on a free port:
    /// HummingbirdTesting's `.live` rebuilds the configuration with `with(address:)`, which drops
    /// the connection cap (`availableConnectionsDelegate`).
    func withServer(_ body: (Int) async throws -> Void) async throws {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: GatewayApplication.router(services: services),
            server: GatewayApplication.server(limits: services.limits),
            configuration: GatewayApplication.serverConfiguration(address: .hostname("127.0.0.1", port: 0), limits: services.limits),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) })
        let server = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        do {
            try await body(port)
        } catch {
            server.cancel()
            _ = try? await server.value
            throw error
        }
        server.cancel()
        _ = try? await server.value
    }

    func headers(_ tenant: TestTenant, _ user: UUID?) async throws -> HTTPFields {
        var headers: HTTPFields = [.apikey: tenant.apikey]
        if let user {
            headers[.authorization] = "Bearer " + (try await Tokens.hs256(claims: Tokens.user(user), secret: tenant.secret!))
        }
        return headers
    }

    func request(
        _ method: HTTPRequest.Method, _ uri: String, as tenant: TestTenant, _ user: UUID? = nil, body: String? = nil
    ) async throws -> (status: HTTPResponse.Status, body: String, headers: HTTPFields) {
        var headers = try await self.headers(tenant, user)
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
            ($0.status, String(buffer: $0.body), $0.headers)
        }
    }

    /// The `{code, message, details, hint}` body, all four keys present.
    static func error(_ text: String) throws -> [String: Any] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
        #expect(Set(object.keys) == ["code", "message", "details", "hint"], "\(text)")
        return object
    }

    /// Holds an ACCESS EXCLUSIVE lock on `table` (owner connection, open transaction) while `body`
    /// runs, so any statement on it waits — a slow statement without sleeping.
    func withTableLocked<T>(_ table: String, _ body: () async throws -> T) async throws -> T {
        try await auth.owner.withConnection { pooled in
            try await pooled.run { try $0.simple("BEGIN; LOCK TABLE public.\(table) IN ACCESS EXCLUSIVE MODE") }
            do {
                let value = try await body()
                try await pooled.run { try $0.simple("ROLLBACK") }
                return value
            } catch {
                try? await pooled.run { try $0.simple("ROLLBACK") }
                throw error
            }
        }
    }
}

@Suite("Limits: statement timeout, max rows, query size, per-tenant concurrency, HTTP")
struct LimitsTests {
    @Test("a statement past the statement timeout is cancelled: 504 57014, PostgREST-shaped, and the next request is served")
    func statementTimeout() async throws {
        var limits = GatewayLimits()
        limits.statementTimeoutMilliseconds = 200
        try await LimitsFixture.run(limits: limits) { f in
            let alice = UUID()
            let timedOut = try await f.withTableLocked("projects") {
                try await f.request(.get, "/rest/v1/projects?select=id", as: f.acme, alice)
            }
            #expect(timedOut.status == .gatewayTimeout, "\(timedOut.body)")
            let error = try LimitsFixture.error(timedOut.body)
            #expect(error["code"] as? String == "57014")
            #expect((error["message"] as? String)?.contains("statement timeout") == true)
            // The timeout is the request's own (SET LOCAL): nothing is left on the connection.
            let after = try await f.request(.get, "/rest/v1/projects?select=id", as: f.acme, alice)
            #expect(after.status == .ok, "\(after.body)")
            let setting = try await f.auth.gateway.query("SHOW statement_timeout").first?.decode("statement_timeout", as: String.self)
            #expect(setting == "0")
        }
    }

    @Test("db-max-rows caps every read, with or without limit=; writes are not cut")
    func maximumRows() async throws {
        var limits = GatewayLimits()
        limits.maximumRows = 2
        try await LimitsFixture.run(limits: limits) { f in
            let alice = UUID()
            let rows = (1...3).map { #"{"name": "p\#($0)", "type": "website", "user_id": "\#(alice.lowercasedString)"}"# }
            let created = try await f.request(.post, "/rest/v1/projects", as: f.acme, alice, body: "[" + rows.joined(separator: ",") + "]")
            #expect(created.status == .created, "\(created.body)")
            func count(_ query: String) async throws -> Int {
                let response = try await f.request(.get, "/rest/v1/projects" + query, as: f.acme, alice)
                #expect(response.status == .ok || response.status == .partialContent, "\(response.body)")
                return try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [Any]).count
            }
            #expect(try await count("") == 2)
            #expect(try await count("?limit=10") == 2)
            #expect(try await count("?limit=1") == 1)
            #expect(try await count("?offset=2") == 1)
            let deleted = try await f.request(.delete, "/rest/v1/projects?user_id=eq.\(alice.lowercasedString)", as: f.acme, alice)
            #expect(deleted.status == .noContent, "\(deleted.body)")
            let left = try await f.auth.owner.query("SELECT count(*)::int AS n FROM public.projects").first?.decode("n", as: Int.self)
            #expect(left == 0)
        }
    }

    @Test("or=/and= nested past the limit and in.() lists past the limit are 400 PGRST100; at the limit they run")
    func querySize() async throws {
        var limits = GatewayLimits()
        limits.logicDepth = 2
        limits.inListLength = 3
        try await LimitsFixture.run(limits: limits) { f in
            let alice = UUID()
            for query in [
                "?id=in.(\(UUID()),\(UUID()),\(UUID()),\(UUID()))",
                "?id=not.in.(\(UUID()),\(UUID()),\(UUID()),\(UUID()))",
                "?or=(name.eq.a,id.in.(\(UUID()),\(UUID()),\(UUID()),\(UUID())))",
                "?or=(name.eq.a,and(name.eq.b,or(name.eq.c,name.eq.d)))",
                "?not.and=(name.eq.a,or(name.eq.b,and(name.eq.c)))",
            ] {
                let refused = try await f.request(.get, "/rest/v1/projects" + query, as: f.acme, alice)
                #expect(refused.status == .badRequest, "\(query): \(refused.body)")
                #expect(try LimitsFixture.error(refused.body)["code"] as? String == "PGRST100", "\(query)")
            }
            for query in [
                "?id=in.(\(UUID()),\(UUID()),\(UUID()))",
                "?or=(name.eq.a,and(name.eq.b,id.in.(\(UUID()),\(UUID()),\(UUID()))))",
                "?or=(name.eq.a)&and=(name.eq.b,or(name.eq.c))",
            ] {
                let served = try await f.request(.get, "/rest/v1/projects" + query, as: f.acme, alice)
                #expect(served.status == .ok, "\(query): \(served.body)")
            }
        }
    }

    @Test("one tenant past its concurrency cap is answered 503 PGRST003 with Retry-After; another tenant is still served")
    func tenantConcurrency() async throws {
        var limits = GatewayLimits()
        limits.statementTimeoutMilliseconds = 0
        limits.tenantConcurrency = 1
        limits.tenantQueue = 0
        try await LimitsFixture.run(limits: limits) { f in
            let alice = UUID(), bob = UUID()
            let held = try await f.withTableLocked("projects") {
                let held = Task { try await f.request(.get, "/rest/v1/projects?select=id", as: f.acme, alice) }
                // Wait until the first request holds acme's only slot (it waits on the lock) and,
                // on a shared connection, until the pool sees that connection stalled: before that,
                // a pipeline may still be sent behind it (ConnectionPool.stall) and wait for the lock too.
                while f.services.tenantLimiter!.inFlight(f.acme.id) == 0 { try await Task.sleep(for: .milliseconds(5)) }
                for _ in 0..<12_000 where f.auth.gateway.statistics.shared > 0 && f.auth.gateway.statistics.stalled == 0 {
                    try await Task.sleep(for: .milliseconds(5))
                }

                let refused = try await f.request(.get, "/rest/v1/leads?select=id", as: f.acme, alice)
                #expect(refused.status == .serviceUnavailable, "\(refused.body)")
                #expect(refused.headers[.retryAfter] == "1")
                #expect(try LimitsFixture.error(refused.body)["code"] as? String == "PGRST003")

                let other = try await f.request(.get, "/rest/v1/leads?select=id", as: f.globex, bob)
                #expect(other.status == .ok, "\(other.body)")

                // /v1/secrets shares the tenant's slots, and answers in its own shape.
                let secrets = try await f.request(.get, "/v1/secrets", as: f.acme, alice)
                #expect(secrets.status == .serviceUnavailable, "\(secrets.body)")
                #expect(secrets.headers[.retryAfter] == "1")
                #expect(try LimitsFixture.error(secrets.body)["code"] as? String == "PGW503")
                #expect(try await f.request(.get, "/v1/secrets", as: f.globex, bob).status == .ok)
                return held
            }
            // Unlocked: the held request completes, and its slot is free again.
            #expect(try await held.value.status == .ok)
            #expect(f.services.tenantLimiter!.inFlight(f.acme.id) == 0)
            #expect(try await f.request(.get, "/rest/v1/leads?select=id", as: f.acme, alice).status == .ok)
        }
    }

    @Test(
        "a tenant at its cap is answered 503 with Retry-After on /v1/audit, /v1/privacy and reports too (the pool's cap), while another tenant is served"
    )
    func tenantConcurrencyBeyondREST() async throws {
        var limits = GatewayLimits()
        limits.statementTimeoutMilliseconds = 0
        limits.tenantConcurrency = 1
        limits.tenantQueue = 0
        try await LimitsFixture.run(limits: limits, privacy: true) { f in
            let alice = UUID(), bob = UUID()
            let limiter = try #require(f.services.tenantLimiter)
            func expectRefusedAcmeServedGlobex(_ paths: [String]) async throws {
                for path in paths {
                    let refused = try await f.request(.get, path, as: f.acme, alice)
                    #expect(refused.status == .serviceUnavailable, "\(path): \(refused.body)")
                    #expect(refused.headers[.retryAfter] == "1", "\(path)")
                    #expect(try LimitsFixture.error(refused.body)["code"] as? String == "PGW503", "\(path)")
                    let other = try await f.request(.get, path, as: f.globex, bob)
                    #expect(other.status == .ok, "\(path): \(other.body)")
                }
            }
            let paths = ["/v1/audit/events", "/v1/audit/checkpoints", "/v1/privacy/settings"]
            let held = try await f.withTableLocked("projects") {
                // acme's only slot is held by a request waiting on the lock (as in tenantConcurrency).
                let held = Task { try await f.request(.get, "/rest/v1/projects?select=id", as: f.acme, alice) }
                while limiter.inFlight(f.acme.id) == 0 { try await Task.sleep(for: .milliseconds(5)) }
                for _ in 0..<12_000 where f.auth.gateway.statistics.shared > 0 && f.auth.gateway.statistics.stalled == 0 {
                    try await Task.sleep(for: .milliseconds(5))
                }
                try await expectRefusedAcmeServedGlobex(paths)
                return held
            }
            #expect(try await held.value.status == .ok)
            #expect(limiter.inFlight(f.acme.id) == 0)
            // A report reads the catalogue (pg_policies), which waits on any locked governed table:
            // here acme's slot is held through the pool itself, no lock needed.
            try await f.auth.gateway.withConnection(tenant: f.acme.id) { _ in
                try await expectRefusedAcmeServedGlobex(["/v1/audit/report"])
            }
            for path in paths + ["/v1/audit/report"] {
                let served = try await f.request(.get, path, as: f.acme, alice)
                #expect(served.status == .ok, "\(path): \(served.body)")
            }
        }
    }

    @Test("an audited secret read gives its tenant slot back while its audit entry waits to commit: the next read is admitted, not refused")
    func secretReadReleasesSlotBeforeAudit() async throws {
        var limits = GatewayLimits()
        limits.statementTimeoutMilliseconds = 0
        limits.tenantConcurrency = 1
        limits.tenantQueue = 0
        try await LimitsFixture.run(limits: limits) { f in
            let alice = UUID()
            let written = try await f.request(.put, "/v1/secrets/openai", as: f.acme, alice, body: #"{"value": "v"}"#)
            #expect(written.status == .created || written.status == .ok, "\(written.body)")
            let reads = try await f.withTableLocked("audit_heads") {
                // The first read's database work is done; its audit append waits on the lock.
                let first = Task { try await f.request(.get, "/v1/secrets/openai", as: f.acme, alice) }
                var appendWaits = false
                for _ in 0..<12_000 where !appendWaits {
                    try await Task.sleep(for: .milliseconds(5))
                    appendWaits =
                        try await f.auth.owner.query(
                            // pg_stat_activity is the cluster's: other tests wait on their own audit_heads.
                            """
                            SELECT count(*) AS n FROM pg_stat_activity
                            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%audit_heads%'
                            """
                        ).first!.decode("n", as: Int.self) > 0
                }
                try #require(appendWaits, "the read's audit append never waited on audit_heads")
                #expect(f.services.tenantLimiter!.inFlight(f.acme.id) == 0)
                // Before, the read held acme's only slot through its audit wait and this got 503.
                let other = try await f.request(.get, "/rest/v1/leads?select=id", as: f.acme, alice)
                #expect(other.status == .ok, "\(other.body)")
                return [first]
            }
            for read in reads {
                let answered = try await read.value
                #expect(answered.status == .ok, "\(answered.body)")
                #expect(answered.body.contains(#""value":"v""#) || answered.body.contains(#""value": "v""#), "\(answered.body)")
            }
        }
    }
}

/// A plain TCP client for what an HTTP client library will not send: an oversized head, a head
/// trickled byte by byte, a chunked body, a connection left open.
final class RawConnection: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        // A guard against a hung test, not an assertion: no expectation depends on it.
        var timeout = timeval(tv_sec: 120, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// Sends `text`; false once the peer has closed the connection.
    @discardableResult
    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// The blocking reads below, on a thread of their own: blocking a thread of the cooperative
    /// pool (as many as cores) would starve the in-process server under test.
    func readToEnd() async -> String { await Self.offload { self.readToEndBlocking() } }
    func readResponse() async -> String { await Self.offload { self.readResponseBlocking() } }

    static func offload(_ work: @escaping @Sendable () -> String) async -> String {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: work()) }.start()
        }
    }

    /// Everything the server sends until it closes the connection.
    func readToEndBlocking() -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads until one whole response with `Content-Length` has arrived.
    func readResponseBlocking() -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let text = String(decoding: data, as: UTF8.self)
            if let headEnd = text.range(of: "\r\n\r\n") {
                let head = text[..<headEnd.lowerBound].lowercased()
                if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                    let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)),
                    text.utf8.count - text[..<headEnd.upperBound].utf8.count >= length
                {
                    return text
                }
            }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return text }
            data += buffer[0..<n]
        }
    }

    /// Whether the server has closed the connection (EOF now), without waiting.
    var closedByPeer: Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT) | Int32(MSG_PEEK)) == 0
    }

    /// Whether anything has arrived, without waiting.
    var hasData: Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT) | Int32(MSG_PEEK)) > 0
    }
}

@Suite("Limits: the HTTP server against hostile clients (real sockets)")
struct HTTPLimitsTests {
    static func body(of response: String) -> String {
        response.range(of: "\r\n\r\n").map { String(response[$0.upperBound...]) } ?? ""
    }

    @Test("a request head past the limit is answered 431 with a {code,message,details,hint} body, and the connection closed")
    func headTooLarge() async throws {
        var limits = GatewayLimits()
        limits.maximumHeaderBytes = 4096
        try await LimitsFixture.run(limits: limits, setup: .live) { f in
            let port = try #require(f.client.port)
            let big = try RawConnection(port: port)
            big.send(
                "GET /rest/v1/projects HTTP/1.1\r\nHost: x\r\napikey: \(f.acme.apikey)\r\nX-Padding: \(String(repeating: "a", count: 8192))\r\n\r\n"
            )
            let response = await big.readToEnd()
            #expect(response.hasPrefix("HTTP/1.1 431"), "\(response.prefix(200))")
            #expect(try LimitsFixture.error(Self.body(of: response))["code"] as? String == "PGW431")

            let longURL = try RawConnection(port: port)
            longURL.send("GET /rest/v1/projects?name=eq.\(String(repeating: "b", count: 8192)) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await longURL.readToEnd().hasPrefix("HTTP/1.1 431"))

            // Under the limit, the same server answers normally.
            let small = try RawConnection(port: port)
            small.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: \(String(repeating: "a", count: 1024))\r\n\r\n")
            #expect(await small.readResponse().hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test("a client sending its head byte by byte (slowloris) is disconnected before it completes")
    func slowloris() async throws {
        var limits = GatewayLimits()
        limits.idleTimeoutSeconds = 1
        try await LimitsFixture.run(limits: limits, setup: .live) { f in
            let port = try #require(f.client.port)
            let slow = try RawConnection(port: port)
            let head = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + String(repeating: "s", count: 10_000)
            var disconnected = false
            for byte in head {
                if !slow.send(String(byte)) || slow.closedByPeer {
                    disconnected = true
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            // The head was never completed: a server without the idle timeout would still be waiting.
            #expect(disconnected)
            // The server still serves others.
            let other = try RawConnection(port: port)
            other.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await other.readResponse().hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test("a body past the limit is 413: by Content-Length at once (PGRST413 on /rest/v1, PGW413 on /v1), and chunked as it streams")
    func bodyTooLarge() async throws {
        var limits = GatewayLimits()
        limits.maximumBodyBytes = 100
        try await LimitsFixture.run(limits: limits, setup: .live) { f in
            let port = try #require(f.client.port)
            let body = #"{"name": "\#(String(repeating: "x", count: 200))"}"#
            let rest = try RawConnection(port: port)
            rest.send(
                "POST /rest/v1/projects HTTP/1.1\r\nHost: x\r\napikey: \(f.acme.apikey)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
                    + body)
            let restResponse = await rest.readResponse()
            #expect(restResponse.hasPrefix("HTTP/1.1 413"), "\(restResponse.prefix(300))")
            #expect(try LimitsFixture.error(Self.body(of: restResponse))["code"] as? String == "PGRST413")

            let v1 = try RawConnection(port: port)
            v1.send(
                "PUT /v1/privacy/settings HTTP/1.1\r\nHost: x\r\napikey: \(f.acme.apikey)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
                    + body)
            let v1Response = await v1.readResponse()
            #expect(v1Response.hasPrefix("HTTP/1.1 413"), "\(v1Response.prefix(300))")
            #expect(try LimitsFixture.error(Self.body(of: v1Response))["code"] as? String == "PGW413")

            let chunked = try RawConnection(port: port)
            let alice = UUID()
            let token = try await Tokens.hs256(claims: Tokens.user(alice), secret: f.acme.secret!)
            chunked.send(
                "POST /rest/v1/projects HTTP/1.1\r\nHost: x\r\napikey: \(f.acme.apikey)\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            let part = String(repeating: " ", count: 80)
            chunked.send("50\r\n\(part)\r\n50\r\n\(part)\r\n0\r\n\r\n")
            let chunkedResponse = await chunked.readResponse()
            #expect(chunkedResponse.hasPrefix("HTTP/1.1 413"), "\(chunkedResponse.prefix(300))")
            #expect(try LimitsFixture.error(Self.body(of: chunkedResponse))["code"] as? String == "PGRST413")
            let rows = try await f.auth.owner.query("SELECT count(*)::int AS n FROM public.projects").first?.decode("n", as: Int.self)
            #expect(rows == 0)
        }
    }

    @Test(
        "a body trickled in, each chunk within the idle timeout, chunked or under a Content-Length, is cut at the body deadline: 408 PGRST408 / PGW408, nothing written"
    )
    func slowBody() async throws {
        var limits = GatewayLimits()
        limits.bodyTimeoutSeconds = 1
        try await LimitsFixture.run(limits: limits, setup: .live) { f in
            let port = try #require(f.client.port)
            let token = try await Tokens.hs256(claims: Tokens.user(UUID()), secret: f.acme.secret!)
            let chunked = try RawConnection(port: port)
            chunked.send(
                "POST /rest/v1/projects HTTP/1.1\r\nHost: x\r\napikey: \(f.acme.apikey)\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            let announced = try RawConnection(port: port)
            announced.send(
                "PUT /v1/secrets/slow HTTP/1.1\r\nHost: x\r\napikey: \(f.acme.apikey)\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            )
            var reading = [chunked, announced]
            for _ in 0..<600 where !reading.isEmpty {
                chunked.send("1\r\n \r\n")
                announced.send(" ")
                try await Task.sleep(for: .milliseconds(100))
                reading.removeAll { $0.hasData || $0.closedByPeer }
            }
            #expect(reading.isEmpty, "the server was still reading a body trickled in for a minute")
            for (connection, code) in [(chunked, "PGRST408"), (announced, "PGW408")] {
                let response = await connection.readResponse()
                #expect(response.hasPrefix("HTTP/1.1 408"), "\(response.prefix(300))")
                #expect(try LimitsFixture.error(Self.body(of: response))["code"] as? String == code)
            }
            let rows = try await f.auth.owner.query("SELECT count(*)::int AS n FROM public.projects").first?.decode("n", as: Int.self)
            #expect(rows == 0)
            let secrets = try await f.auth.owner.query("SELECT count(*)::int AS n FROM public.user_secrets").first?.decode(
                "n", as: Int.self)
            #expect(secrets == 0)
        }
    }

    /// Hummingbird reads a body the route left unread to its end before the next request, with
    /// only the idle timeout between chunks; ``LimitedBody`` never sees it.
    @Test(
        "a body the route never read (it answered first: a refusal, a route that takes none) is cut at the body timeout after the answer: trickled, it holds no connection"
    )
    func unreadBodyTrickled() async throws {
        var limits = GatewayLimits()
        limits.bodyTimeoutSeconds = 1
        try await LimitsFixture.run(limits: limits, setup: .live) { f in
            let port = try #require(f.client.port)
            // Refused before the body is read (no service key), the body chunked and endless.
            let refused = try RawConnection(port: port)
            refused.send(
                "POST /rest/v1/projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n"
            )
            #expect(await refused.readResponse().hasPrefix("HTTP/1.1 401"))
            // A route that takes no body, sent one of 8 MB announced by Content-Length.
            let ignored = try RawConnection(port: port)
            ignored.send("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 8000000\r\n\r\nx")
            #expect(await ignored.readResponse().hasPrefix("HTTP/1.1 200"))
            var open = [refused, ignored]
            for _ in 0..<600 where !open.isEmpty {
                open.removeAll { !($0 === refused ? $0.send("1\r\n \r\n") : $0.send(" ")) || $0.closedByPeer }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(open.isEmpty, "the server was still reading an unread body trickled in for a minute")

            // A body that does arrive in time keeps the connection for the next request.
            let prompt = try RawConnection(port: port)
            prompt.send("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            #expect(await prompt.readResponse().hasPrefix("HTTP/1.1 200"))
            prompt.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await prompt.readResponse().hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test(
        "a body that arrived while the route was busy elsewhere (the database, a full pool) is read whole: only the wait for the client counts toward the body timeout"
    )
    func bodyReadLateIsNotTheClientsDelay() async throws {
        let body = LimitedBody(
            base: RequestBody(buffer: ByteBuffer(string: #"{"name": "late"}"#)), limit: 1 << 20, timeoutSeconds: 1, rest: true)
        // The route reads the body two timeouts after the request began; the body had long arrived.
        try await Task.sleep(for: .seconds(2))
        var read = ByteBuffer()
        for try await chunk in body { read.writeImmutableBuffer(chunk) }
        #expect(String(buffer: read) == #"{"name": "late"}"#)
    }

    @Test("past the connection cap the server accepts no new connection until one closes; open ones are still served")
    func connectionCap() async throws {
        var limits = GatewayLimits()
        limits.maximumConnections = 1
        try await LimitsFixture.run(limits: limits) { f in
            try await f.withServer { port in
                let first = try RawConnection(port: port)
                first.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(await first.readResponse().hasPrefix("HTTP/1.1 200"))

                let waiting = try RawConnection(port: port)  // completes in the kernel's backlog, not accepted
                waiting.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                // Connections already open are served meanwhile…
                first.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(await first.readResponse().hasPrefix("HTTP/1.1 200"))
                // …the one past the cap is not, until a slot frees.
                #expect(!waiting.hasData)
                first.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                _ = await first.readToEnd()
                #expect(await waiting.readResponse().hasPrefix("HTTP/1.1 200"))
            }
        }
    }
}

@Suite("Limits: the per-tenant limiter and the configuration")
struct TenantLimiterTests {
    @Test(
        "past its cap a tenant waits in its own queue and gets the next free slot; past the queue it is refused; a cancelled waiter leaves at once"
    )
    func queueing() async throws {
        let limiter = TenantLimiter(concurrency: 1, queueLength: 1)
        let acme = UUID(), globex = UUID()
        try await limiter.acquire(acme)
        try await limiter.acquire(globex)  // another tenant is not held up by acme
        let waiting = Task { try await limiter.acquire(acme) }
        while limiter.waiting(acme) == 0 { await Task.yield() }
        await #expect(throws: TenantLimiter.Saturated.self) { try await limiter.acquire(acme) }
        limiter.release(acme)  // hands the slot to the waiter
        try await waiting.value
        #expect(limiter.inFlight(acme) == 1)
        #expect(limiter.waiting(acme) == 0)

        let cancelled = Task { try await limiter.acquire(acme) }
        while limiter.waiting(acme) == 0 { await Task.yield() }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(limiter.waiting(acme) == 0)
        #expect(limiter.inFlight(acme) == 1)
        limiter.release(acme)
        limiter.release(globex)
        #expect(limiter.inFlight(acme) == 0 && limiter.inFlight(globex) == 0)
    }

    @Test("many concurrent units never exceed the cap and all complete")
    func neverExceeds() async throws {
        let limiter = TenantLimiter(concurrency: 3, queueLength: 1_000)
        let tenant = UUID()
        final class Peak: Sendable { let value = Mutex(0) }
        let peak = Peak()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await limiter.run(tenant) {
                        peak.value.withLock { $0 = max($0, limiter.inFlight(tenant)) }
                        await Task.yield()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(peak.value.withLock { $0 } <= 3)
        #expect(limiter.inFlight(tenant) == 0)
    }

    @Test("bad limit variables name the variable and the range; good ones are read")
    func configuration() throws {
        for (name, value) in [
            ("GATEWAY_MAX_BODY_BYTES", "lots"), ("GATEWAY_STATEMENT_TIMEOUT_MS", "-1"), ("GATEWAY_MAX_LOGIC_DEPTH", "33"),
            ("GATEWAY_TENANT_MAX_CONCURRENT", "0"), ("GATEWAY_MAX_HEADER_BYTES", "10"),
        ] {
            #expect {
                try GatewayConfiguration.fromEnvironment([name: value])
            } throws: { error in
                (error as? ConfigurationError)?.message.contains(name) == true
            }
        }
        let configuration = try GatewayConfiguration.fromEnvironment([
            "GATEWAY_STATEMENT_TIMEOUT_MS": "2500", "GATEWAY_DB_MAX_ROWS": "500", "GATEWAY_TENANT_MAX_CONCURRENT": "4",
            "GATEWAY_TENANT_MAX_QUEUED": "0", "GATEWAY_MAX_BODY_BYTES": "1024", "GATEWAY_BODY_TIMEOUT_SECONDS": "5",
            "GATEWAY_MAX_HEADER_BYTES": "8192", "GATEWAY_IDLE_TIMEOUT_SECONDS": "10", "GATEWAY_MAX_CONNECTIONS": "100",
            "GATEWAY_MAX_LOGIC_DEPTH": "4", "GATEWAY_MAX_IN_LIST": "50",
        ])
        var expected = GatewayLimits()
        expected.statementTimeoutMilliseconds = 2500
        expected.maximumRows = 500
        expected.tenantConcurrency = 4
        expected.tenantQueue = 0
        expected.maximumBodyBytes = 1024
        expected.bodyTimeoutSeconds = 5
        expected.maximumHeaderBytes = 8192
        expected.idleTimeoutSeconds = 10
        expected.maximumConnections = 100
        expected.logicDepth = 4
        expected.inListLength = 50
        #expect(configuration.limits == expected)
        #expect(GatewayLimits().tenantConcurrency(poolSize: 32) == 24)
    }
}
