import Foundation
import Logging
import Metrics
import Postgres
import Synchronization
import Tracing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where an appended entry landed in its tenant's chain.
public struct AuditReceipt: Sendable, Hashable {
    /// The chain's tenant.
    public var tenantID: UUID
    /// The entry's seq.
    public var seq: Int64
    /// The entry's hash (to quote in responses or deletion certificates as the audit head).
    public var hash: [UInt8]
    /// The canonical `at` text of the entry.
    public var at: String
}

/// Appends entries to per-tenant hash chains (DESIGN.md §8).
///
/// Two ways in, both fail closed (an error means nothing was recorded, and the caller must not
/// carry out or release the action):
///
/// - ``append(tenant:_:)``: **group commit.** Concurrent appends for one tenant queue in memory;
///   one task at a time per tenant takes everything queued, writes it in one transaction (lock
///   the head row, one multi-row INSERT, advance the head, commit) and answers every waiter.
///   While a batch commits the next one gathers, so a busy tenant is not limited to one commit
///   per entry, and each tenant has its own queue and head row, so tenants never wait on each
///   other. Use it where the action has no transaction of its own to share or must not hold its
///   transaction open for the audit write — an audited read: read, `await append`, and only then
///   return the value.
/// - ``append(in:tenant:_:)``: inside the caller's transaction, for actions that change data:
///   the entry commits or rolls back with the action.
///
/// Several appenders (several gateway processes) may write one tenant's chain: the head row
/// lock serialises them in the database, so the chain stays contiguous.
public final class AuditAppender: Sendable {
    /// Tuning.
    public struct Options: Sendable {
        /// Most entries written in one transaction; more wait for the next batch.
        public var maxBatch: Int
        /// Defaults suit one gateway process.
        public init(maxBatch: Int = 256) {
            self.maxBatch = maxBatch
        }
    }

    private struct Pending: Sendable {
        let event: PreparedEvent
        let continuation: CheckedContinuation<AuditReceipt, any Error>
    }

    private let pool: ConnectionPool
    private let keys: AuditKeys?
    private let options: Options
    private let logger: Logger
    /// Per-tenant queues. A tenant is present exactly while a drain task serves it.
    private let lanes = Mutex<[UUID: [Pending]]>([:])

    /// - Parameters:
    ///   - pool: connections as the gateway's login (which holds the audit grants). A pool of
    ///     its own keeps audit writes from queueing behind request work.
    ///   - keys: needed only to append events with `sensitive` values.
    public init(pool: ConnectionPool, keys: AuditKeys? = nil, options: Options = Options(), logger: Logger = Logger(label: "audit")) {
        self.pool = pool
        self.keys = keys
        self.options = options
        self.logger = logger
    }

    // MARK: - Group commit

    /// Appends `event` to the tenant's chain and returns once it is committed.
    ///
    /// - Throws: ``AuditError`` — invalid event, missing audit key, or a database failure.
    public func append(tenant: UUID, _ event: AuditEvent) async throws -> AuditReceipt {
        let prepared = try prepare(event, tenant: tenant)
        // The caller's wait, queue and group commit included (the batch itself runs in its own task).
        return try await withSpan("audit.append") { _ in try await enqueue(prepared, tenant: tenant) }
    }

    private func enqueue(_ prepared: PreparedEvent, tenant: UUID) async throws -> AuditReceipt {
        try await withCheckedThrowingContinuation { continuation in
            let startDrain = lanes.withLock { lanes -> Bool in
                if lanes[tenant] != nil {
                    lanes[tenant]!.append(Pending(event: prepared, continuation: continuation))
                    return false
                }
                lanes[tenant] = [Pending(event: prepared, continuation: continuation)]
                return true
            }
            if startDrain {
                Task { await self.drain(tenant) }
            }
        }
    }

    /// Writes the tenant's queue batch by batch until it is empty, then retires the lane.
    private func drain(_ tenant: UUID) async {
        while true {
            let batch = lanes.withLock { lanes -> [Pending] in
                guard let queue = lanes[tenant], !queue.isEmpty else {
                    lanes[tenant] = nil
                    return []
                }
                let batch = Array(queue.prefix(options.maxBatch))
                lanes[tenant] = Array(queue.dropFirst(batch.count))
                return batch
            }
            if batch.isEmpty { return }
            await write(batch, tenant: tenant)
        }
    }

    private func write(_ batch: [Pending], tenant: UUID) async {
        let events = batch.map(\.event)
        let started = ContinuousClock.now
        do {
            // Not a tenant slot (ConnectionPool.withConnection(tenant:)): the lane already keeps each
            // tenant to one connection at a time, and an entry whose caller's work is done (a secret
            // read whose value waits for it) must not be refused or queued behind that tenant's load.
            let receipts = try await pool.withConnection { connection in
                try await connection.run { try Self.writeBatch(events, tenant: tenant, on: $0) }
            }
            AuditMetrics.batchSize.record(batch.count)
            AuditMetrics.latency.record(duration: ContinuousClock.now - started)
            for (pending, receipt) in zip(batch, receipts) { pending.continuation.resume(returning: receipt) }
        } catch {
            let error = AuditError.wrap(error, "audit append failed")
            // One bad entry (a CHECK violation, say) must not fail its batch-mates: retry them
            // one by one so each caller gets its own answer. Not for connection failures,
            // which would only fail again.
            if batch.count > 1, error.underlying?.sqlState.map(Self.isDataError) == true {
                for pending in batch { await write([pending], tenant: tenant) }
                return
            }
            AuditMetrics.failures.increment(by: batch.count)
            logger.error(
                "audit append failed", metadata: ["tenant": "\(tenant.lowercasedString)", "entries": "\(batch.count)", "error": "\(error)"])
            for pending in batch { pending.continuation.resume(throwing: error) }
        }
    }

    private static func isDataError(_ sqlState: String) -> Bool {
        sqlState.hasPrefix("22") || sqlState.hasPrefix("23")
    }

    /// One transaction, two round trips: lock and read the head, then insert, advance, commit.
    private static func writeBatch(_ events: [PreparedEvent], tenant: UUID, on connection: borrowing Connection) throws -> [AuditReceipt] {
        do {
            let head = try connection.pipeline([AuditSQL.begin, AuditSQL.ensureHead(tenant), AuditSQL.lockHead(tenant)])[2]
            let entries = try chain(events, tenant: tenant, head: head)
            _ = try connection.pipeline(try writes(entries, tenant: tenant, head: head, on: connection) + [AuditSQL.commit])
            return entries.map(receipt)
        } catch {
            if connection.inTransaction { try? connection.simple("ROLLBACK") }
            throw error
        }
    }

    // MARK: - Same transaction as the action

    /// Appends one entry inside the caller's open transaction, on `connection`'s thread (call it
    /// from within ``PooledConnection/run(_:)``), locking the tenant's head row until the caller
    /// commits. Works under `SET LOCAL ROLE`: the audit statements run as the session user and
    /// the caller's role is restored afterwards.
    ///
    /// Fail closed: any error is thrown and leaves the transaction aborted, so the caller's
    /// action cannot commit without its entry.
    ///
    /// - Throws: ``AuditError`` (``AuditError/Code/notInTransaction`` if no transaction is open).
    public func append(in connection: borrowing Connection, tenant: UUID, _ event: AuditEvent) throws -> AuditReceipt {
        let prepared = try prepare(event, tenant: tenant)
        guard connection.inTransaction else {
            throw AuditError(.notInTransaction, "append(in:) needs an open transaction: the entry must commit with the action")
        }
        let started = ContinuousClock.now
        do {
            let head = try connection.pipeline([AuditSQL.assumeSessionUser, AuditSQL.ensureHead(tenant), AuditSQL.lockHead(tenant)])[2]
            let entries = try Self.chain([prepared], tenant: tenant, head: head)
            _ = try connection.pipeline(try Self.writes(entries, tenant: tenant, head: head, on: connection) + [AuditSQL.restoreRole])
            AuditMetrics.batchSize.record(1)
            AuditMetrics.latency.record(duration: ContinuousClock.now - started)
            return Self.receipt(entries[0])
        } catch {
            AuditMetrics.failures.increment()
            // Make sure the caller cannot commit past a failed audit write, even if it ignores
            // the error: a failed statement already aborted the transaction; a failure on our
            // side (say, an unreadable head) does it here.
            if connection.inTransaction { try? connection.simple("SELECT 1/0") }
            throw AuditError.wrap(error, "audit append failed")
        }
    }

    // MARK: - Building entries

    /// Links events onto the locked head: seq, `at` (database clock), prev_hash, hash.
    private static func chain(_ events: [PreparedEvent], tenant: UUID, head: QueryResult) throws -> [AuditEntry] {
        guard let row = head.first else {
            throw AuditError(.chainCorrupt, "audit head of tenant \(tenant.lowercasedString) is missing")
        }
        var seq: Int64 = try row.decode("seq")
        var previous: [UInt8] = try row.decode("hash")
        let at: String = try row.decode("now")
        var entries: [AuditEntry] = []
        entries.reserveCapacity(events.count)
        for event in events {
            seq += 1
            var entry = AuditEntry(
                tenantID: tenant, seq: seq, at: at, actor: event.actor, action: event.action, target: event.target,
                outcome: event.outcome, requestID: event.requestID, ip: event.ip, userAgent: event.userAgent,
                details: event.details, prevHash: previous, hash: [])
            entry.hash = entry.computedHash()
            previous = entry.hash
            entries.append(entry)
        }
        return entries
    }

    /// The statements that store `entries` after the locked `head`: insert them, store the Merkle
    /// nodes they close, advance the head with the tree's new right edge. The tree is extended
    /// here, in memory, from the head row's edge: two SHA-256 per entry and one node row per
    /// 256 entries, so a batch costs no extra round trip. A chain written before the tree existed
    /// is caught up first (once, under the same lock).
    private static func writes(_ entries: [AuditEntry], tenant: UUID, head: QueryResult, on connection: borrowing Connection) throws
        -> [Statement]
    {
        guard let row = head.first else {
            throw AuditError(.chainCorrupt, "audit head of tenant \(tenant.lowercasedString) is missing")
        }
        guard var tree = try AuditTree.range(row) else {
            // A database not yet migrated to 0019: the chain alone; the tree catches up afterwards.
            return [AuditSQL.insert(entries), AuditSQL.advanceHead(tenant, to: entries[entries.count - 1])]
        }
        guard tree.size < entries[0].seq else {
            // Only a head moved back by hand (triggers disabled) gets here: never append onto a cut chain.
            throw AuditError(
                .chainCorrupt,
                "tenant \(tenant.lowercasedString): the Merkle tree covers \(tree.size) entries but the head is at seq \(entries[0].seq - 1) (the chain was cut back)"
            )
        }
        var closed = try AuditTree.catchUp(&tree, to: entries[0].seq - 1, tenant: tenant, connection: connection)
        for entry in entries { AuditTree.append(entry.hash, to: &tree, closed: &closed) }
        var statements = [AuditSQL.insert(entries)]
        if !closed.isEmpty { statements.append(AuditTree.insertNodes(closed, tenant: tenant)) }
        statements.append(AuditSQL.advanceHead(tenant, to: entries[entries.count - 1], tree: tree))
        return statements
    }

    private static func receipt(_ entry: AuditEntry) -> AuditReceipt {
        AuditReceipt(tenantID: entry.tenantID, seq: entry.seq, hash: entry.hash, at: entry.at)
    }

    /// Checks and normalises an event before it may join a batch, so that a batch fails only
    /// for reasons the database decides.
    private func prepare(_ event: AuditEvent, tenant: UUID) throws -> PreparedEvent {
        let texts: [(String, String?)] = [
            ("actor", event.actor), ("action", event.action), ("target", event.target),
            ("request_id", event.requestID), ("user_agent", event.userAgent),
        ]
        for (name, value) in texts {
            if value?.utf8.contains(0) == true { throw AuditError(.invalidEvent, "\(name) contains a NUL character") }
        }
        var details = event.details
        if CanonicalJSON.containsNUL(.object(details)) {
            throw AuditError(.invalidEvent, "details contain a NUL character")
        }
        if !event.sensitive.isEmpty {
            guard let keys else {
                throw AuditError(.noAuditKey, "sensitive values need an audit key: create the appender with keys")
            }
            for (name, value) in event.sensitive {
                guard details[name] == nil else {
                    throw AuditError(.invalidEvent, "\"\(name)\" is both a detail and a sensitive value")
                }
                details[name] = .string(try keys.pseudonym(value, tenant: tenant))
            }
        }
        var ip: String?
        if let address = event.ip {
            guard let normalized = Self.normalizeIP(address) else {
                throw AuditError(.invalidEvent, "ip is not an IPv4 or IPv6 address")
            }
            ip = normalized
        }
        return PreparedEvent(
            actor: event.actor, action: event.action, target: event.target, outcome: event.outcome.rawValue,
            requestID: event.requestID, ip: ip, userAgent: event.userAgent, details: details)
    }

    /// The address as Postgres's `host(inet)` prints it (lowercase, zero runs compressed), so the
    /// hashed text equals what a later read returns.
    static func normalizeIP(_ text: String) -> String? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            guard inet_ntop(AF_INET, &v4, &buffer, socklen_t(buffer.count)) != nil else { return nil }
            return string(from: buffer)
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count)) != nil else { return nil }
            return string(from: buffer)
        }
        return nil
    }

    private static func string(from buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An event checked, pseudonymised and normalised; everything but its place in the chain.
struct PreparedEvent: Sendable {
    var actor: String?
    var action: String
    var target: String?
    var outcome: String
    var requestID: String?
    var ip: String?
    var userAgent: String?
    var details: [String: AuditValue]
}
