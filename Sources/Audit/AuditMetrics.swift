import CoreMetrics
import Metrics

/// Audit appends through swift-metrics' process-wide backend (the gateway bootstraps it with its
/// Prometheus registry; without a bootstrap these are no-ops). No labels: a tenant's chain is not
/// a label here (the per-tenant figure that matters, checkpoint age, is the gateway's).
enum AuditMetrics {
    /// Entries per committed transaction: 1 for ``AuditAppender/append(in:tenant:_:)``, up to
    /// `maxBatch` for group commit.
    static let batchSize = Recorder(label: "privacy_gateway_audit_append_batch_size")
    /// One committed batch's database time (checkout, head lock, insert, commit).
    static let latency = Timer(label: "privacy_gateway_audit_append_seconds")
    /// Entries whose append failed (the caller got an error and did not act).
    static let failures = Counter(label: "privacy_gateway_audit_append_failures_total")
}
