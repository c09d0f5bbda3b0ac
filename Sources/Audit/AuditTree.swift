import Foundation
import Postgres
import Sodium

/// The stored side of a tenant's Merkle tree (migrations 0019 and 0028): the right edge on the head
/// row, interior nodes at every 4th level in `audit_tree_nodes`, leaves from `audit_events.hash`.
/// Synchronous helpers for code already on a connection's thread.
enum AuditTree {
    /// Levels stored in `audit_tree_nodes` are the multiples of this (migration 0028; 8 before).
    /// 4 costs appends one node row per 16 entries, and any other node is at most 8 hashes of the
    /// stored level below: an inclusion proof at 1,000,000 entries folds ~75 hashes instead of ~525.
    static let levelStride = 4

    /// The tree state on a locked head row (``AuditSQL/lockHead(_:)``); nil on a database not yet
    /// migrated to 0019.
    static func range(_ row: PostgresRow) throws -> CompactRange? {
        guard let size = try row.decodeIfPresent("tree_size", as: Int64.self),
            let frontier = try row.decodeIfPresent("frontier", as: [UInt8].self)
        else { return nil }
        guard let range = CompactRange(size: size, bytes: frontier) else {
            throw AuditError(.chainCorrupt, "the stored Merkle tree edge does not match its size \(size)")
        }
        return range
    }

    /// Extends `range` with the leaves of the stored entries after it, up to `seq` (a chain
    /// written before the tree existed), returning the stride nodes closed on the way.
    static func catchUp(
        _ range: inout CompactRange, to seq: Int64, tenant: UUID, connection: borrowing Connection
    ) throws -> [(MerkleTree.Node, [UInt8])] {
        var closed: [(MerkleTree.Node, [UInt8])] = []
        while range.size < seq {
            let rows = try connection.pipeline([
                Statement(
                    "SELECT seq, hash FROM public.audit_events WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT 10000",
                    [tenant, range.size, seq])
            ])[0].rows
            guard !rows.isEmpty else { throw AuditError(.chainCorrupt, "entries \(range.size + 1)…\(seq) are missing") }
            for row in rows {
                guard try row.decode("seq", as: Int64.self) == range.size + 1 else {
                    throw AuditError(.chainCorrupt, "entry \(range.size + 1) is missing")
                }
                append(try row.decode("hash", as: [UInt8].self), to: &range, closed: &closed)
            }
        }
        return closed
    }

    /// Appends one entry hash as a leaf, collecting the stride nodes it closes.
    static func append(_ entryHash: [UInt8], to range: inout CompactRange, closed: inout [(MerkleTree.Node, [UInt8])]) {
        range.append(MerkleTree.leafHash(entryHash)) { node, hash in
            if node.level % levelStride == 0 { closed.append((node, hash)) }
        }
    }

    static func insertNodes(_ nodes: [(MerkleTree.Node, [UInt8])], tenant: UUID) -> Statement {
        Statement(
            """
            INSERT INTO public.audit_tree_nodes (tenant_id, level, idx, hash)
            SELECT $1::uuid, u.* FROM unnest($2::smallint[], $3::bigint[], $4::bytea[]) AS u
            """,
            [
                tenant,
                PostgresTextArray(nodes.map { String($0.0.level) }),
                PostgresTextArray(nodes.map { String($0.0.index) }),
                PostgresTextArray(nodes.map { "\\x" + Hex.encode($0.1) }),
            ])
    }

    static func updateTree(_ tenant: UUID, _ range: CompactRange) -> Statement {
        Statement(
            "UPDATE public.audit_heads SET tree_size = $2, frontier = $3 WHERE tenant_id = $1",
            [tenant, range.size, range.bytes])
    }

    /// Builds the tree of a chain written before migration 0019, under the head lock (one
    /// transaction; a no-op when the tree is current). Returns the tree size.
    @discardableResult
    static func ensureCurrent(tenant: UUID, connection: borrowing Connection) throws -> Int64 {
        try connection.transaction { connection in
            guard let row = try connection.pipeline([AuditSQL.lockHead(tenant)])[0].first else { return 0 }
            let seq: Int64 = try row.decode("seq")
            guard var tree = try Self.range(row) else { return 0 }
            if tree.size >= seq { return tree.size }
            let closed = try catchUp(&tree, to: seq, tenant: tenant, connection: connection)
            var statements = [updateTree(tenant, tree)]
            if !closed.isEmpty { statements.insert(insertNodes(closed, tenant: tenant), at: 0) }
            _ = try connection.pipeline(statements)
            return tree.size
        }
    }

    // MARK: - Reading nodes for proofs

    /// The hashes of complete subtrees, read in one statement: a stored level directly, any other
    /// level folded from the stored level below it. Throws ``AuditError/Code/chainCorrupt`` when
    /// the rows needed are missing (the tree does not reach that far, or rows were removed).
    static func nodeHashes(_ nodes: [MerkleTree.Node], tenant: UUID, connection: borrowing Connection) throws -> [MerkleTree.Node: [UInt8]]
    {
        if nodes.isEmpty { return [:] }
        let read = NodeRead(nodes, tenant: tenant)
        let result = try connection.pipeline([read.statement])[0]
        return try read.hashes(result, connection: connection)
    }

    /// One statement reading the hashes a set of subtrees folds from: per subtree, the ≤ 8
    /// consecutive hashes of the stored level at or below it (entry hashes for level 0), each
    /// looked up by its exact key. Send ``statement`` in a caller's pipeline, then fold with
    /// ``hashes(_:connection:)``.
    ///
    /// One statement, not one per subtree: at 1,000,000 entries a proof's ~20 range reads as
    /// separate statements cost more in per-statement executor overhead than in rows. Exact keys,
    /// not ranges: the planner estimates a range with parameters at 0.5% of the table, which put
    /// one statement of twenty ranges over PostgreSQL's `jit_above_cost` and cost ~70 ms of JIT
    /// compilation for a ~1 ms read.
    struct NodeRead {
        let tenant: UUID
        /// Deduplicated, in no particular order.
        let nodes: [MerkleTree.Node]
        let statement: Statement

        init(_ nodes: [MerkleTree.Node], tenant: UUID) {
            self.tenant = tenant
            self.nodes = Array(Set(nodes))
            statement = Self.statement(self.nodes.map { ($0, Self.storedBase(of: $0.level)) }, tenant: tenant)
        }

        /// The highest level stored at or below `level` (0: the entries' hashes).
        static func storedBase(of level: Int) -> Int { level - level % AuditTree.levelStride }

        /// The keys (level `base`, index) of `node`'s descendants at `base`, in order.
        static func keys(_ node: MerkleTree.Node, base: Int) -> [MerkleTree.Node] {
            let start = node.index << (node.level - base)
            return (start..<start + Int64(1) << (node.level - base)).map { MerkleTree.Node(level: base, index: $0) }
        }

        /// Reads, for each (node, base), the hashes of `node`'s descendants at level `base`.
        static func statement(_ reads: [(MerkleTree.Node, Int)], tenant: UUID) -> Statement {
            let wanted = Array(Set(reads.flatMap { Self.keys($0.0, base: $0.1) }))
            // Leaf `idx` is the entry seq = idx + 1.
            return Statement(
                """
                SELECT u.level, u.idx, n.hash FROM unnest($2::smallint[], $3::bigint[]) AS u(level, idx)
                    JOIN public.audit_tree_nodes n ON n.tenant_id = $1 AND n.level = u.level AND n.idx = u.idx
                WHERE u.level > 0
                UNION ALL
                SELECT u.level, u.idx, e.hash FROM unnest($2::smallint[], $3::bigint[]) AS u(level, idx)
                    JOIN public.audit_events e ON e.tenant_id = $1 AND e.seq = u.idx + 1
                WHERE u.level = 0
                """,
                [tenant, PostgresTextArray(wanted.map { String($0.level) }), PostgresTextArray(wanted.map { String($0.index) })])
        }

        /// The hashes of ``nodes`` from the result of ``statement``. A level that is not a multiple
        /// of 8 may lack rows for entries appended by a gateway older than migration 0028 (which
        /// stored every 8th level only); those subtrees are folded from the level below in a second
        /// read on `connection`.
        func hashes(_ result: QueryResult, connection: borrowing Connection) throws -> [MerkleTree.Node: [UInt8]] {
            var found = try Self.found(result)
            var hashes: [MerkleTree.Node: [UInt8]] = [:]
            var retry: [(MerkleTree.Node, Int)] = []
            for node in nodes {
                let base = Self.storedBase(of: node.level)
                if let hash = Self.fold(node, base: base, found) {
                    hashes[node] = hash
                } else if base % 8 == 4 {
                    retry.append((node, base - 4))
                } else {
                    throw Self.missing(node, base: base)
                }
            }
            if !retry.isEmpty {
                found = try Self.found(try connection.pipeline([Self.statement(retry, tenant: tenant)])[0])
                for (node, base) in retry {
                    guard let hash = Self.fold(node, base: base, found) else { throw Self.missing(node, base: base) }
                    hashes[node] = hash
                }
            }
            return hashes
        }

        private static func found(_ result: QueryResult) throws -> [MerkleTree.Node: [UInt8]] {
            var found: [MerkleTree.Node: [UInt8]] = [:]
            for row in result.rows {
                let key = MerkleTree.Node(level: Int(try row.decode("level", as: Int64.self)), index: try row.decode("idx", as: Int64.self))
                found[key] = try row.decode("hash", as: [UInt8].self)
            }
            return found
        }

        /// `node`'s hash from its descendants at `base` in `found`; nil when some are missing.
        private static func fold(_ node: MerkleTree.Node, base: Int, _ found: [MerkleTree.Node: [UInt8]]) -> [UInt8]? {
            var level: [[UInt8]] = []
            for key in Self.keys(node, base: base) {
                guard let hash = found[key], hash.count == 32 else { return nil }
                level.append(base == 0 ? MerkleTree.leafHash(hash) : hash)
            }
            while level.count > 1 {
                level = stride(from: 0, to: level.count, by: 2).map { MerkleTree.nodeHash(level[$0], level[$0 + 1]) }
            }
            return level[0]
        }

        private static func missing(_ node: MerkleTree.Node, base: Int) -> AuditError {
            AuditError(
                .chainCorrupt,
                "the Merkle tree has no \(base == 0 ? "entries" : "level-\(base) nodes") for the subtree at level \(node.level), index \(node.index)"
            )
        }
    }

    /// The RFC 9162 hashes of `ranges` (each the hash of its leaves), in order.
    static func rangeHashes(_ ranges: [MerkleTree.LeafRange], tenant: UUID, connection: borrowing Connection) throws -> [[UInt8]] {
        let pieces = ranges.map(MerkleTree.decompose)
        let hashes = try nodeHashes(pieces.flatMap { $0 }, tenant: tenant, connection: connection)
        return pieces.map { MerkleTree.rangeHash($0.map { hashes[$0]! }) }
    }

    /// The right edge of the tree at `size` (≤ the stored tree size), from stored nodes.
    static func range(at size: Int64, tenant: UUID, connection: borrowing Connection) throws -> CompactRange {
        if size == 0 { return CompactRange() }
        let nodes = MerkleTree.decompose(MerkleTree.LeafRange(start: 0, end: size))
        let hashes = try nodeHashes(nodes, tenant: tenant, connection: connection)
        return CompactRange(size: size, bytes: nodes.flatMap { hashes[$0]! })!
    }
}
