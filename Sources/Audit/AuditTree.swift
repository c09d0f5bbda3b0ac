import Foundation
import Postgres
import Sodium

/// The stored side of a tenant's Merkle tree (migration 0019): the right edge on the head row,
/// interior nodes at every 8th level in `audit_tree_nodes`, leaves from `audit_events.hash`.
/// Synchronous helpers for code already on a connection's thread.
enum AuditTree {
    /// Levels stored in `audit_tree_nodes` are the multiples of this. 8 keeps appends at one node
    /// row per 256 entries, and any other node is at most 128 reads of the stored level below.
    static let levelStride = 8

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

    /// The hashes of complete subtrees, read in one pipeline: a stored level directly, any other
    /// level folded from the stored level below it. Throws ``AuditError/Code/chainCorrupt`` when
    /// the rows needed are missing (the tree does not reach that far, or rows were removed).
    static func nodeHashes(_ nodes: [MerkleTree.Node], tenant: UUID, connection: borrowing Connection) throws -> [MerkleTree.Node: [UInt8]] {
        let (unique, statements) = nodeQueries(nodes, tenant: tenant)
        let results = statements.isEmpty ? [] : try connection.pipeline(statements)
        return try nodeHashes(unique, results: results[...])
    }

    /// The statements that read `nodes` (deduplicated, in the order returned), to send in a
    /// caller's pipeline; ``nodeHashes(_:results:)`` folds their results.
    static func nodeQueries(_ nodes: [MerkleTree.Node], tenant: UUID) -> (nodes: [MerkleTree.Node], statements: [Statement]) {
        let unique = Array(Set(nodes))
        let statements = unique.map { node -> Statement in
            let base = node.level - node.level % levelStride
            let count = Int64(1) << (node.level - base)
            let start = node.index << (node.level - base)
            if base == 0 {
                return Statement(
                    "SELECT hash FROM public.audit_events WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
                    [tenant, start, start + count])
            }
            return Statement(
                "SELECT hash FROM public.audit_tree_nodes WHERE tenant_id = $1 AND level = $2 AND idx >= $3 AND idx < $4 ORDER BY idx",
                [tenant, base, start, start + count])
        }
        return (unique, statements)
    }

    /// The hashes of `unique` from the results of their ``nodeQueries(_:tenant:)``.
    static func nodeHashes(_ unique: [MerkleTree.Node], results: ArraySlice<QueryResult>) throws -> [MerkleTree.Node: [UInt8]] {
        var hashes: [MerkleTree.Node: [UInt8]] = [:]
        for (node, result) in zip(unique, results) {
            let base = node.level - node.level % levelStride
            var level: [[UInt8]] = try result.rows.map { try $0.decode("hash", as: [UInt8].self) }
            guard level.count == 1 << (node.level - base) else {
                throw AuditError(
                    .chainCorrupt,
                    "the Merkle tree has no \(base == 0 ? "entries" : "level-\(base) nodes") for the subtree at level \(node.level), index \(node.index)")
            }
            if base == 0 { level = level.map(MerkleTree.leafHash) }
            while level.count > 1 {
                level = stride(from: 0, to: level.count, by: 2).map { MerkleTree.nodeHash(level[$0], level[$0 + 1]) }
            }
            hashes[node] = level[0]
        }
        return hashes
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
