import Audit
import Foundation
import Logging
import ServiceLifecycle

/// Signs every tenant's audit head that moved since its last checkpoint, periodically, until the
/// gateway shuts down. Failures are logged and retried on the next round: a checkpoint only
/// strengthens what the chain already proves.
public struct CheckpointService: Service {
    let checkpointer: AuditCheckpointer
    let interval: Duration
    let logger: Logger

    public init(checkpointer: AuditCheckpointer, interval: Duration, logger: Logger) {
        self.checkpointer = checkpointer
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                // Graceful shutdown must not wait out the interval.
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            do {
                let (checkpoints, failures) = try await checkpointer.checkpointAll()
                if !checkpoints.isEmpty { logger.info("audit checkpoints signed", metadata: ["count": "\(checkpoints.count)"]) }
                for (tenant, error) in failures {
                    logger.error("audit checkpoint failed", metadata: ["tenant": "\(tenant.lowercasedString)", "error": "\(error.code)"])
                }
            } catch {
                logger.error("audit checkpoints could not run", metadata: ["error_type": "\(type(of: error))"])
            }
        }
    }
}
