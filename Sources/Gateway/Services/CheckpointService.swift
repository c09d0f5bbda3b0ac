import Audit
import Foundation
import Logging
import ServiceLifecycle

/// Signs every tenant's audit head that moved since its last checkpoint: once at start (so a new
/// deployment has checkpoints from its first run), then every interval until the gateway shuts
/// down. A chain that fails re-verification is never signed (``AuditCheckpointer``): that is
/// logged as an error and counted in `privacy_gateway_audit_checkpoint_failures_total`. Other failures are
/// retried on the next round: a checkpoint only strengthens what the chain already proves.
public struct CheckpointService: Service {
    let checkpointer: AuditCheckpointer
    let interval: Duration
    let logger: Logger
    let metrics: GatewayMetrics?

    public init(checkpointer: AuditCheckpointer, interval: Duration, logger: Logger, metrics: GatewayMetrics? = nil) {
        self.checkpointer = checkpointer
        self.interval = interval
        self.logger = logger
        self.metrics = metrics
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await round()
            do {
                // Graceful shutdown must not wait out the interval.
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }

    /// One pass over the tenants whose chain moved.
    func round() async {
        do {
            let (checkpoints, failures) = try await checkpointer.checkpointAll()
            if !checkpoints.isEmpty { logger.info("audit checkpoints signed", metadata: ["count": "\(checkpoints.count)"]) }
            for (tenant, error) in failures.sorted(by: { $0.key.lowercasedString < $1.key.lowercasedString }) {
                metrics?.checkpointFailed(reason: error.code == .chainCorrupt ? "chain_corrupt" : "error")
                logger.error(
                    error.code == .chainCorrupt ? "audit chain fails verification; checkpoint refused" : "audit checkpoint failed",
                    metadata: ["tenant": "\(tenant.lowercasedString)", "error": "\(error.code)", "detail": "\(error.message)"])
            }
        } catch {
            metrics?.checkpointFailed(reason: "error")
            logger.error("audit checkpoints could not run", metadata: ["error_type": "\(type(of: error))"])
        }
        // After the round: what is still unsigned, per tenant (its age is computed at each scrape).
        if let metrics {
            do {
                metrics.checkpointCoverage(try await checkpointer.oldestUncheckpointed())
            } catch {
                logger.error("reading audit checkpoint coverage failed", metadata: ["error_type": "\(type(of: error))"])
            }
        }
    }
}
