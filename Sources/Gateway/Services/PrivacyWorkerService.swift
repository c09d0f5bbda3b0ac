import Foundation
import Logging
import Privacy
import ServiceLifecycle

/// Works the data-subject request queue until the gateway shuts down: claims pending (or
/// abandoned) exports and confirmed erasures with `SELECT … FOR UPDATE SKIP LOCKED`, so several
/// gateways share the queue, and runs them — only requests the privacy service filed and
/// confirmed (a row written any other way is refused, marked `failed` and audited); sweeps
/// retention and removes expired export archives every `retentionInterval` (archives first at start).
/// A failed request is marked `failed` with a reason and the loop goes on.
public struct PrivacyWorkerService: Service {
    let privacy: PrivacyService
    let pollInterval: Duration
    let retentionInterval: Duration
    let logger: Logger
    /// Where the queue's gauges go (open, overdue, stuck), counted every ``queueCountInterval``.
    let metrics: GatewayMetrics?
    /// No progress for this long makes an open request stuck (`PRIVACY_STUCK_AFTER_SECONDS`).
    let stuckAfter: Duration
    static let queueCountInterval: Duration = .seconds(30)

    public init(
        privacy: PrivacyService, pollInterval: Duration = .seconds(2), retentionInterval: Duration = .seconds(3600), logger: Logger,
        metrics: GatewayMetrics? = nil, stuckAfter: Duration = .seconds(3600)
    ) {
        self.metrics = metrics
        self.stuckAfter = stuckAfter
        self.privacy = privacy
        self.pollInterval = pollInterval
        self.retentionInterval = retentionInterval
        self.logger = logger
    }

    public func run() async throws {
        let clock = ContinuousClock()
        var nextSweep = clock.now + retentionInterval
        var nextCount = clock.now
        await removeExpiredArchives()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var worked = false
            for kind in RequestKind.allCases {
                // Without a signing key no certificate can be issued: confirmed erasures wait for a gateway that has one.
                if kind == .deletion && privacy.certificatePublicKey == nil { continue }
                do {
                    guard let (tenant, id) = try await privacy.claimNext(kind) else { continue }
                    worked = true
                    do {
                        switch kind {
                        case .export: try await privacy.processExport(tenant: tenant, id: id)
                        case .deletion: try await privacy.processDeletion(tenant: tenant, id: id)
                        }
                        logger.info("privacy request done", metadata: ["kind": "\(kind.rawValue)", "request": "\(id.lowercasedString)"])
                    } catch let error as PrivacyError where error.code == .awaitingInput {
                        // Its processors were called (dispatchProcessorCalls); it comes back once they answered or their deadline passed.
                        logger.info(
                            "privacy request waits for its processors",
                            metadata: ["kind": "\(kind.rawValue)", "request": "\(id.lowercasedString)"])
                    } catch {
                        let reason = (error as? PrivacyError)?.description ?? "\(type(of: error))"
                        // A refused request was already marked failed and audited by the service.
                        logger.error(
                            "privacy request failed",
                            metadata: ["kind": "\(kind.rawValue)", "request": "\(id.lowercasedString)", "error": "\(reason)"])
                        try? await privacy.fail(kind, tenant: tenant, id: id, reason: reason)
                    }
                } catch {
                    logger.error("privacy queue unavailable", metadata: ["error_type": "\(type(of: error))"])
                }
            }
            do {
                // Calls to processors: each attempt bounded by its own timeout, several at once, so one
                // slow processor holds up neither the others nor the queue above.
                try await privacy.dispatchProcessorCalls()
            } catch {
                logger.error("calling processors failed", metadata: ["error_type": "\(type(of: error))"])
            }
            do {
                let expired = try await privacy.expireUnverified()
                if expired > 0 { logger.info("unverified requests expired", metadata: ["requests": "\(expired)"]) }
            } catch {
                logger.error("expiring unverified requests failed", metadata: ["error_type": "\(type(of: error))"])
            }
            if let metrics, clock.now >= nextCount {
                nextCount = clock.now + Self.queueCountInterval
                do {
                    metrics.privacyQueue(try await privacy.queueFigures(stuckAfter: stuckAfter))
                } catch {
                    logger.error("counting the request queue failed", metadata: ["error_type": "\(type(of: error))"])
                }
            }
            if clock.now >= nextSweep {
                nextSweep = clock.now + retentionInterval
                await removeExpiredArchives()
                await attachMissingErasureProofs()
                do {
                    let sweeps = try await privacy.sweepRetention(actor: PrivacyActor("privacy-worker"))
                    metrics?.retentionSwept(sweeps)
                    if !sweeps.isEmpty {
                        logger.info(
                            "retention swept", metadata: ["tables": "\(sweeps.count)", "rows": "\(sweeps.reduce(0) { $0 + $1.rows })"])
                    }
                } catch {
                    metrics?.retentionSwept(nil)
                    logger.error("retention sweep failed", metadata: ["error_type": "\(type(of: error))"])
                }
            }
            if !worked {
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: pollInterval) }
                } catch {
                    return
                }
            }
        }
    }

    /// Certificates of erasures whose process died before their audit proof was attached.
    private func attachMissingErasureProofs() async {
        do {
            let (attached, failed) = try await privacy.attachMissingErasureProofs()
            if attached > 0 || failed > 0 {
                logger.info("erasure audit proofs attached", metadata: ["attached": "\(attached)", "failed": "\(failed)"])
            }
        } catch {
            logger.error("attaching erasure audit proofs failed", metadata: ["error_type": "\(type(of: error))"])
        }
    }

    private func removeExpiredArchives() async {
        do {
            let removed = try await privacy.removeExpiredArchives()
            if removed > 0 { logger.info("expired export archives removed", metadata: ["archives": "\(removed)"]) }
        } catch {
            logger.error("export archive sweep failed", metadata: ["error_type": "\(type(of: error))"])
        }
    }
}
