import Foundation
import Postgres
import RESTGrammar

/// Every bound the gateway puts on what one caller may make it do (README, "Limits"). Each is
/// configurable from the environment (``GatewayConfiguration/fromEnvironment(_:)``) and each
/// refusal is a PostgREST-shaped error (`{code, message, details, hint}`): PostgREST's code on
/// `/rest/v1`, a `PGW…` code elsewhere.
public struct GatewayLimits: Sendable, Equatable {
    /// `statement_timeout` of every `/rest/v1` statement, set inside the request's own pipeline
    /// (no extra round trip); 0 leaves the server's setting. A statement cancelled by it is 504
    /// `57014`. `GATEWAY_STATEMENT_TIMEOUT_MS`, default 5000.
    public var statementTimeoutMilliseconds: Int = 5_000
    /// Most rows one `GET`/`HEAD` on `/rest/v1` returns, as PostgREST's `db-max-rows`: a larger or
    /// absent `limit` is cut to it. nil: unbounded. `GATEWAY_DB_MAX_ROWS`, default unset.
    public var maximumRows: Int? = nil
    /// Most units of database work (a `/rest/v1` pipeline, a `/v1/secrets`, `/v1/audit`,
    /// `/v1/privacy` or report operation, a privacy request's step) one tenant has in flight in
    /// this process; the next ones wait in the tenant's own queue, so other tenants keep the rest
    /// of the pool. Held by the pool itself (``ConnectionPool/Options/tenantLimiter``). nil: three
    /// quarters of the pool. `GATEWAY_TENANT_MAX_CONCURRENT`.
    public var tenantConcurrency: Int? = nil
    /// Most requests of one tenant waiting for a slot; past it a request is answered 503 with
    /// `Retry-After` at once. `GATEWAY_TENANT_MAX_QUEUED`, default 1024.
    public var tenantQueue: Int = 1_024
    /// Largest request body (413). `GATEWAY_MAX_BODY_BYTES`, default 8 MiB.
    public var maximumBodyBytes: Int = 8 * 1024 * 1024
    /// The longest the server waits, in all, for a body to arrive (408), however it trickles in.
    /// Time the route spends on other work (e.g. waiting for the database) before it reads the
    /// body does not count. The rest of a body the route never read (it answered first) must
    /// arrive within this long of the answer, or the connection is closed.
    /// `GATEWAY_BODY_TIMEOUT_SECONDS`, default 30.
    public var bodyTimeoutSeconds: Int = 30
    /// Largest request head — the URL and all header fields together, and any single field (431,
    /// NIO's decoder limit). 64 KiB leaves room for an `in.()` list of 1000 uuids in the URL
    /// (37 KiB) and a large JWT. `GATEWAY_MAX_HEADER_BYTES`, default 64 KiB.
    public var maximumHeaderBytes: Int = 64 * 1024
    /// A connection that sends nothing complete (no full request head, no body chunk) and has no
    /// response in progress for this many seconds is closed: a client sending its headers byte by
    /// byte (slowloris) holds a connection no longer than this. `GATEWAY_IDLE_TIMEOUT_SECONDS`, default 30.
    public var idleTimeoutSeconds: Int = 30
    /// Most client connections open at once; past it the server stops accepting until one closes.
    /// `GATEWAY_MAX_CONNECTIONS`, default 4096.
    public var maximumConnections: Int = 4_096
    /// Deepest `or=(…)`/`and=(…)` nesting on `/rest/v1` (400 `PGRST100`), at most
    /// ``RESTQuery/maximumLogicDepth``. `GATEWAY_MAX_LOGIC_DEPTH`, default 32.
    public var logicDepth: Int = RESTQuery.maximumLogicDepth
    /// Most elements of one `in.(…)` list on `/rest/v1` (400 `PGRST100`). `GATEWAY_MAX_IN_LIST`, default 1000.
    public var inListLength: Int = 1_000
    /// Who may ask `/rest/v1` for a request's plan (`Accept: application/vnd.pgrst.plan+json`, as
    /// PostgREST's `db-plan-enabled`): nobody (the default; such an `Accept` is 406, as PostgREST
    /// answers it when disabled), signed-in callers, or also `anon`. `GATEWAY_DB_PLAN`:
    /// `off`, `signed_in`, `all`.
    public var planAccess: PlanAccess = .off

    /// ``planAccess``'s values.
    public enum PlanAccess: String, Sendable, Equatable {
        case off
        case signedIn = "signed_in"
        case all
    }

    public init() {}

    /// The per-tenant slot count for a pool of `poolSize` connections.
    public func tenantConcurrency(poolSize: Int) -> Int {
        tenantConcurrency ?? max(1, poolSize * 3 / 4)
    }

    /// The per-tenant cap for a pool of `poolSize` connections: one per process, given to its pools
    /// (``ConnectionPool/Options/tenantLimiter``), which hold it around every tenant's database work.
    public func tenantLimiter(poolSize: Int) -> TenantLimiter {
        TenantLimiter(concurrency: tenantConcurrency(poolSize: poolSize), queueLength: tenantQueue)
    }

    /// The grammar's share of these limits.
    public var query: RESTQuery.Limits {
        RESTQuery.Limits(logicDepth: logicDepth, inListLength: inListLength)
    }

    /// Reads the `GATEWAY_*` limit variables (nil or empty: the default). Bad values are errors
    /// naming the variable and the accepted range.
    static func fromEnvironment(_ value: (String) -> String?) throws -> GatewayLimits {
        func number(_ name: String, _ range: ClosedRange<Int>, unit: String) throws -> Int? {
            guard let text = value(name) else { return nil }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError(
                    "\(name) must be a number of \(unit) from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
            }
            return number
        }
        var limits = GatewayLimits()
        if let n = try number("GATEWAY_STATEMENT_TIMEOUT_MS", 0...3_600_000, unit: "milliseconds") {
            limits.statementTimeoutMilliseconds = n
        }
        if let n = try number("GATEWAY_DB_MAX_ROWS", 1...1_000_000_000, unit: "rows") { limits.maximumRows = n }
        if let n = try number("GATEWAY_TENANT_MAX_CONCURRENT", 1...10_000, unit: "requests") { limits.tenantConcurrency = n }
        if let n = try number("GATEWAY_TENANT_MAX_QUEUED", 0...1_000_000, unit: "requests") { limits.tenantQueue = n }
        if let n = try number("GATEWAY_MAX_BODY_BYTES", 1...1_073_741_824, unit: "bytes") { limits.maximumBodyBytes = n }
        if let n = try number("GATEWAY_BODY_TIMEOUT_SECONDS", 1...3_600, unit: "seconds") { limits.bodyTimeoutSeconds = n }
        if let n = try number("GATEWAY_MAX_HEADER_BYTES", 1_024...1_048_576, unit: "bytes") { limits.maximumHeaderBytes = n }
        if let n = try number("GATEWAY_IDLE_TIMEOUT_SECONDS", 1...3_600, unit: "seconds") { limits.idleTimeoutSeconds = n }
        if let n = try number("GATEWAY_MAX_CONNECTIONS", 1...1_000_000, unit: "connections") { limits.maximumConnections = n }
        if let n = try number("GATEWAY_MAX_LOGIC_DEPTH", 1...RESTQuery.maximumLogicDepth, unit: "levels") { limits.logicDepth = n }
        if let n = try number("GATEWAY_MAX_IN_LIST", 1...1_000_000, unit: "elements") { limits.inListLength = n }
        if let text = value("GATEWAY_DB_PLAN") {
            guard let access = PlanAccess(rawValue: text) else {
                throw ConfigurationError("GATEWAY_DB_PLAN must be off, signed_in or all, got \"\(text)\"")
            }
            limits.planAccess = access
        }
        return limits
    }
}
