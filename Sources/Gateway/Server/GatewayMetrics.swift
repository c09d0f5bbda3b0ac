import Config
import CoreMetrics
import Foundation
import Metrics
import Policy
import Postgres
import Privacy
import Prometheus
import Synchronization

/// The gateway's metrics, through swift-metrics into a Prometheus registry (swift-prometheus),
/// exposed at `/metrics` in Prometheus' text format. Every family is `privacy_gateway_…`.
///
/// Labels are bounded: route templates (never raw paths), a fixed set of methods, status
/// classes, governed table names and commands, SQLSTATE classes, fixed reason and outcome words,
/// and — for the checkpoint age only, which the operator asked for per tenant — tenant ids
/// (tenants are created by operators, not callers). No value a caller sends, no user id and no
/// secret ever becomes a label.
///
/// The executable bootstraps swift-metrics with ``factory`` (``bootstrapGlobal()``), so what the
/// Postgres and Audit modules record (pool wait, SQLSTATE classes, audit appends) lands in the
/// same registry; a test's instance without the bootstrap sees only the gateway's own families.
public final class GatewayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory

    /// Upper bounds of the request latency histogram.
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]
    /// Methods that become their own label value; any other is `other` (a caller may send any token).
    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    private struct RouteKey: Hashable {
        let route: String
        let method: String
        let statusClass: Int
    }

    private let routes = Mutex<[RouteKey: CoreMetrics.Timer]>([:])
    private let checkpointAges = Mutex<[UUID: Date?]>([:])
    private let poolConnections: [String: CoreMetrics.Gauge]
    private let poolWaiting: CoreMetrics.Gauge

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            "privacy_gateway_http_request_duration_seconds": Self.latencyBuckets,
            "privacy_gateway_db_pool_wait_seconds": [
                .microseconds(100), .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
                .milliseconds(500), .seconds(1), .seconds(5),
            ],
            "privacy_gateway_audit_append_seconds": Self.latencyBuckets,
        ]
        factory.valueHistogramBuckets = ["privacy_gateway_audit_append_batch_size": [1, 2, 4, 8, 16, 32, 64, 128, 256]]
        self.factory = factory
        poolConnections = Dictionary(
            uniqueKeysWithValues: ["in_use", "idle", "shared", "stalled"].map {
                ($0, CoreMetrics.Gauge(label: "privacy_gateway_db_pool_connections", dimensions: [("state", $0)], factory: factory))
            })
        poolWaiting = CoreMetrics.Gauge(label: "privacy_gateway_db_pool_waiting", factory: factory)
        CoreMetrics.Gauge(label: "privacy_gateway_build_info", dimensions: [("version", PrivacyGatewayVersion.string)], factory: factory)
            .record(1)
        // Families whose events are rare start at zero, so dashboards and alerts see them from the first scrape.
        for outcome in ["ok", "failed"] {
            CoreMetrics.Counter(label: "privacy_gateway_retention_sweeps_total", dimensions: [("outcome", outcome)], factory: factory)
                .increment(by: 0)
        }
        CoreMetrics.Counter(
            label: "privacy_gateway_audit_checkpoint_failures_total", dimensions: [("reason", "chain_corrupt")], factory: factory
        )
        .increment(by: 0)
        CoreMetrics.Counter(label: "privacy_gateway_auth_failures_total", dimensions: [("reason", "invalid_api_key")], factory: factory)
            .increment(by: 0)
        // Recorded by the Audit module through the global backend (``bootstrapGlobal()``): the same series.
        CoreMetrics.Counter(label: "privacy_gateway_audit_append_failures_total", factory: factory).increment(by: 0)
    }

    /// Makes ``factory`` swift-metrics' process-wide backend (once per process: the executable's
    /// start), so the Postgres and Audit modules' metrics join this registry.
    public func bootstrapGlobal() {
        MetricsSystem.bootstrap(factory)
    }

    // MARK: - Requests

    /// The route label of a request: its route template, or `unmatched` when no route served it
    /// (Hummingbird names that case `NotFound`; templates all start with `/`).
    static func routeLabel(_ endpointPath: String?) -> String {
        guard let endpointPath, endpointPath.hasPrefix("/") else { return "unmatched" }
        return endpointPath
    }

    /// One request: its route template (`unmatched` when no route matched), method, status and latency.
    func request(route: String, method: String, status: Int, duration: Duration) {
        let key = RouteKey(
            route: route, method: Self.knownMethods.contains(method) ? method : "other", statusClass: min(max(status / 100, 1), 5))
        let timer = routes.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = CoreMetrics.Timer(
                label: "privacy_gateway_http_request_duration_seconds",
                dimensions: [("route", key.route), ("method", key.method), ("status", "\(key.statusClass)xx")], factory: factory)
            timers[key] = timer
            return timer
        }
        timer.record(duration: duration)
    }

    /// A refused or failed authentication, by a fixed reason (``AuthFailure``).
    func authFailed(_ reason: AuthFailure) {
        CoreMetrics.Counter(label: "privacy_gateway_auth_failures_total", dimensions: [("reason", reason.rawValue)], factory: factory)
            .increment()
    }

    func policyDenied(table: String, command: PolicyCommand) {
        // Table names come from the policy files (a denial is only ever recorded for a governed table).
        CoreMetrics.Counter(
            label: "privacy_gateway_policy_denials_total", dimensions: [("table", table), ("command", command.rawValue)],
            factory: factory
        ).increment()
    }

    /// A `/v1/secrets` operation: `action` one of list, read, write, versions, delete, destroy,
    /// undelete; `outcome` from the answer's status (``SecretOutcome``).
    func secretOperation(action: String, status: Int) {
        CoreMetrics.Counter(
            label: "privacy_gateway_secrets_operations_total",
            dimensions: [("action", action), ("outcome", SecretOutcome(status: status).rawValue)], factory: factory
        ).increment()
    }

    // MARK: - Background work

    /// An audit checkpoint round failed for a tenant; `reason` is `chain_corrupt` (the chain failed
    /// re-verification and was not signed) or `error`.
    func checkpointFailed(reason: String) {
        CoreMetrics.Counter(label: "privacy_gateway_audit_checkpoint_failures_total", dimensions: [("reason", reason)], factory: factory)
            .increment()
    }

    /// Per tenant with an audit chain, when its oldest entry no signed checkpoint covers was
    /// written (nil: the head is checkpointed); the age is computed at each scrape.
    func checkpointCoverage(_ oldestUncovered: [UUID: Date?]) {
        checkpointAges.withLock { $0 = oldestUncovered }
    }

    /// The data-subject request queue as the privacy worker last counted it.
    func privacyQueue(_ figures: [QueueFigures]) {
        for figure in figures {
            for (state, value) in [("open", figure.open), ("overdue", figure.overdue), ("stuck", figure.stuck)] {
                CoreMetrics.Gauge(
                    label: "privacy_gateway_privacy_requests", dimensions: [("kind", figure.kind.rawValue), ("state", state)],
                    factory: factory
                ).record(value)
            }
        }
    }

    /// One retention sweep: rows removed or anonymised per governed table, or a failed sweep.
    func retentionSwept(_ sweeps: [RetentionSweep]?) {
        CoreMetrics.Counter(
            label: "privacy_gateway_retention_sweeps_total", dimensions: [("outcome", sweeps == nil ? "failed" : "ok")], factory: factory
        )
        .increment()
        var rows: [String: Int64] = [:]
        for sweep in sweeps ?? [] { rows[sweep.table, default: 0] += sweep.rows }
        for (table, count) in rows {
            CoreMetrics.Counter(label: "privacy_gateway_retention_rows_total", dimensions: [("table", table)], factory: factory).increment(
                by: count)
        }
    }

    // MARK: - Exposition

    /// The exposition text, with the pool's figures and the checkpoint ages as of now.
    func render(pool: ConnectionPool.Statistics) -> String {
        String(decoding: exposition(pool: pool), as: UTF8.self)
    }

    func exposition(pool: ConnectionPool.Statistics) -> [UInt8] {
        poolConnections["in_use"]!.record(pool.inUse)
        poolConnections["idle"]!.record(pool.idle)
        poolConnections["shared"]!.record(pool.shared)
        poolConnections["stalled"]!.record(pool.stalled)
        poolWaiting.record(pool.waiting)
        let now = Date()
        for (tenant, oldest) in checkpointAges.withLock({ $0 }) {
            CoreMetrics.Gauge(
                label: "privacy_gateway_audit_checkpoint_age_seconds", dimensions: [("tenant", tenant.lowercasedString)], factory: factory
            )
            .record(oldest.map { max(0, now.timeIntervalSince($0)) } ?? 0)
        }
        return registry.emitToBuffer()
    }
}

/// Why an authentication failed, from the error the request was answered with: a fixed set, so
/// the label stays bounded and says nothing about the key or token.
enum AuthFailure: String, CaseIterable {
    case missingAPIKey = "missing_api_key"
    /// Unknown, malformed, revoked or expired service keys look alike to callers; here too.
    case invalidAPIKey = "invalid_api_key"
    case jwtInvalid = "jwt_invalid"
    case jwtExpired = "jwt_expired"
    case jwtClaims = "jwt_claims"
    case missingScope = "missing_scope"
    /// `/metrics` without the configured metrics token, or with another.
    case metricsToken = "metrics_token"

    /// The reason for an error the authenticator (or a scope check) raised; nil for any other error.
    init?(_ error: GatewayError) {
        switch error.code {
        case "PGW401" where error.message == GatewayError.missingAPIKey.message: self = .missingAPIKey
        case "PGW401" where error.message == GatewayError.metricsToken.message: self = .metricsToken
        case "PGW401": self = .invalidAPIKey
        case "PGRST301": self = .jwtInvalid
        case "PGRST302": self = .jwtClaims
        case "PGRST303": self = error.message.localizedCaseInsensitiveContains("expired") ? .jwtExpired : .jwtClaims
        case "PGW403" where error.message.hasPrefix("the service key lacks"): self = .missingScope
        default: return nil
        }
    }
}

/// A secrets operation's outcome, from its answer's status.
enum SecretOutcome: String {
    case ok, denied, notFound = "not_found", conflict, invalid, unavailable, error

    init(status: Int) {
        switch status {
        case 200..<300: self = .ok
        case 401, 403: self = .denied
        case 404, 410: self = .notFound
        case 409, 412, 428: self = .conflict
        case 503: self = .unavailable
        case 400..<500: self = .invalid
        default: self = .error
        }
    }
}
