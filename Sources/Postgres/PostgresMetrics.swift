import CoreMetrics
import Metrics

/// What the connection layer records through swift-metrics' process-wide backend (the gateway
/// bootstraps it with its Prometheus registry; without a bootstrap these are no-ops). Labels are
/// SQLSTATE classes only — never a statement, a parameter or a message.
enum PostgresMetrics {
    /// How long a checkout waited for a connection, opening one included (about zero when one was idle).
    static let poolWait = Timer(label: "privacy_gateway_db_pool_wait_seconds")

    /// An error the server reported (its SQLSTATE's class, e.g. `23`), or `08` for a connection
    /// libpq lost. A class that is not two characters of `0-9A-Z` (never from a real server) is `other`.
    static func error(sqlState: String?) {
        let utf8 = Array((sqlState ?? "08").utf8.prefix(2))
        let valid = utf8.count == 2 && utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) }
        Counter(label: "privacy_gateway_db_errors_total", dimensions: [("class", valid ? String(decoding: utf8, as: UTF8.self) : "other")])
            .increment()
    }
}
