import Foundation
import Policy
import Postgres
import Privacy
import Synchronization

/// Counters the gateway exposes at `/metrics` in Prometheus' text format.
///
/// Labels are bounded: route templates (never raw paths), status codes, governed table names and
/// commands. No value a caller sends, and no secret, ever becomes a label.
public final class GatewayMetrics: Sendable {
    private struct State {
        var requests: [String: Int] = [:]
        var denials: [String: Int] = [:]
        var checkpointFailures: [String: Int] = [:]
        var privacyQueue: [QueueFigures] = []
        var latencyBuckets: [Int] = Array(repeating: 0, count: GatewayMetrics.buckets.count)
        var latencySum: Double = 0
        var latencyCount: Int = 0
    }

    /// Upper bounds of the latency histogram, in seconds.
    static let buckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    private let state = Mutex(State())

    public init() {}

    func request(route: String, method: String, status: Int, seconds: Double) {
        state.withLock { state in
            state.requests["route=\"\(route)\",method=\"\(method)\",status=\"\(status)\"", default: 0] += 1
            for (index, bound) in Self.buckets.enumerated() where seconds <= bound { state.latencyBuckets[index] += 1 }
            state.latencySum += seconds
            state.latencyCount += 1
        }
    }

    func policyDenied(table: String, command: PolicyCommand) {
        state.withLock { $0.denials["table=\"\(table)\",command=\"\(command.rawValue)\"", default: 0] += 1 }
    }

    /// An audit checkpoint round failed for a tenant; `reason` is `chain_corrupt` (the chain failed
    /// re-verification and was not signed) or `error`.
    func checkpointFailed(reason: String) {
        state.withLock { $0.checkpointFailures["reason=\"\(reason)\"", default: 0] += 1 }
    }

    /// The data-subject request queue as the privacy worker last counted it.
    func privacyQueue(_ figures: [QueueFigures]) {
        state.withLock { $0.privacyQueue = figures }
    }

    /// The exposition text, pool figures included.
    func render(pool: ConnectionPool.Statistics) -> String {
        let snapshot = state.withLock { $0 }
        var lines: [String] = []
        lines.append("# HELP gateway_http_requests_total HTTP requests by route template, method and status.")
        lines.append("# TYPE gateway_http_requests_total counter")
        for (labels, value) in snapshot.requests.sorted(by: { $0.key < $1.key }) {
            lines.append("gateway_http_requests_total{\(labels)} \(value)")
        }
        lines.append("# HELP gateway_http_request_duration_seconds Request latency.")
        lines.append("# TYPE gateway_http_request_duration_seconds histogram")
        for (index, bound) in Self.buckets.enumerated() {
            lines.append("gateway_http_request_duration_seconds_bucket{le=\"\(bound)\"} \(snapshot.latencyBuckets[index])")
        }
        lines.append("gateway_http_request_duration_seconds_bucket{le=\"+Inf\"} \(snapshot.latencyCount)")
        lines.append("gateway_http_request_duration_seconds_sum \(snapshot.latencySum)")
        lines.append("gateway_http_request_duration_seconds_count \(snapshot.latencyCount)")
        lines.append("# HELP gateway_policy_denials_total Writes refused or hidden by row-level security policies.")
        lines.append("# TYPE gateway_policy_denials_total counter")
        for (labels, value) in snapshot.denials.sorted(by: { $0.key < $1.key }) {
            lines.append("gateway_policy_denials_total{\(labels)} \(value)")
        }
        lines.append("# HELP gateway_audit_checkpoint_failures_total Audit checkpoints not signed: chain_corrupt = the chain failed re-verification.")
        lines.append("# TYPE gateway_audit_checkpoint_failures_total counter")
        for (labels, value) in snapshot.checkpointFailures.sorted(by: { $0.key < $1.key }) {
            lines.append("gateway_audit_checkpoint_failures_total{\(labels)} \(value)")
        }
        if !snapshot.privacyQueue.isEmpty {
            lines.append("# HELP gateway_privacy_requests Data-subject requests by kind: open, overdue (past their due date), stuck (no progress for PRIVACY_STUCK_AFTER_SECONDS).")
            lines.append("# TYPE gateway_privacy_requests gauge")
            for figure in snapshot.privacyQueue {
                for (state, value) in [("open", figure.open), ("overdue", figure.overdue), ("stuck", figure.stuck)] {
                    lines.append("gateway_privacy_requests{kind=\"\(figure.kind.rawValue)\",state=\"\(state)\"} \(value)")
                }
            }
        }
        lines.append("# HELP gateway_db_pool_connections Database connections by state.")
        lines.append("# TYPE gateway_db_pool_connections gauge")
        lines.append("gateway_db_pool_connections{state=\"in_use\"} \(pool.inUse)")
        lines.append("gateway_db_pool_connections{state=\"idle\"} \(pool.idle)")
        lines.append("gateway_db_pool_connections{state=\"shared\"} \(pool.shared)")
        lines.append("# HELP gateway_db_pool_waiting Requests waiting for a database connection.")
        lines.append("# TYPE gateway_db_pool_waiting gauge")
        lines.append("gateway_db_pool_waiting \(pool.waiting)")
        return lines.joined(separator: "\n") + "\n"
    }
}
