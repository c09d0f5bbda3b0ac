import Sodium

/// RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing over a tenant's audit entries.
///
/// Leaf `i` (0-based) is entry `seq = i + 1`; its leaf hash is `SHA-256(0x00 ‖ entry hash)` and an
/// interior node is `SHA-256(0x01 ‖ left ‖ right)` (RFC 9162 §2.1.1). The tree of `n` leaves is the
/// RFC's left-balanced tree: its left subtree holds the largest power of two smaller than `n`.
/// Pure computation; storage is ``AuditTreeStore``'s.
public enum MerkleTree {
    /// `MTH({})`: SHA-256 of nothing.
    public static let emptyRoot = SHA256.hash([])

    /// `SHA-256(0x00 ‖ entryHash)`.
    public static func leafHash(_ entryHash: [UInt8]) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(33)
        bytes.append(0)
        bytes += entryHash
        return FastDigest.sha256(bytes)
    }

    /// `SHA-256(0x01 ‖ left ‖ right)`.
    public static func nodeHash(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(65)
        bytes.append(1)
        bytes += left
        bytes += right
        return FastDigest.sha256(bytes)
    }

    /// The largest power of two strictly smaller than `n` (n ≥ 2). Written so that doubling
    /// never overflows: with `k << 1 < n`, a size past 2^62 (a caller's `checkpoint=` before it
    /// is looked up) wrapped `k` to zero and spun forever on an event loop.
    static func split(_ n: Int64) -> Int64 {
        var k: Int64 = 1
        while k <= (n - 1) >> 1 { k <<= 1 }
        return k
    }

    // MARK: - Proof shapes

    /// A range of leaves `[start, end)` whose RFC 9162 subtree hash is one element of a proof.
    public struct LeafRange: Sendable, Hashable {
        public var start: Int64
        public var end: Int64
    }

    /// The ranges whose hashes make up the inclusion proof of leaf `index` in a tree of `size`
    /// leaves, in proof order (RFC 9162 §2.1.3.1, `PATH(m, D[n])`).
    public static func inclusionRanges(index: Int64, size: Int64) -> [LeafRange] {
        precondition(index >= 0 && index < size)
        func path(_ m: Int64, _ lo: Int64, _ hi: Int64) -> [LeafRange] {
            let n = hi - lo
            if n <= 1 { return [] }
            let k = split(n)
            if m - lo < k { return path(m, lo, lo + k) + [LeafRange(start: lo + k, end: hi)] }
            return path(m, lo + k, hi) + [LeafRange(start: lo, end: lo + k)]
        }
        return path(index, 0, size)
    }

    /// The ranges whose hashes make up the consistency proof from a tree of `from` leaves to one
    /// of `to` leaves (RFC 9162 §2.1.4.1, `PROOF(m, D[n])`); empty when `from` is 0 or equals `to`.
    public static func consistencyRanges(from m: Int64, to n: Int64) -> [LeafRange] {
        precondition(m >= 0 && m <= n)
        if m == 0 || m == n { return [] }
        func subproof(_ m: Int64, _ lo: Int64, _ hi: Int64, _ complete: Bool) -> [LeafRange] {
            let n = hi - lo
            if m == n { return complete ? [] : [LeafRange(start: lo, end: hi)] }
            let k = split(n)
            if m <= k { return subproof(m, lo, lo + k, complete) + [LeafRange(start: lo + k, end: hi)] }
            return subproof(m - k, lo + k, hi, false) + [LeafRange(start: lo, end: lo + k)]
        }
        return subproof(m, 0, n, true)
    }

    /// A complete subtree: `2^level` leaves starting at leaf `index << level`.
    public struct Node: Sendable, Hashable {
        public var level: Int
        public var index: Int64
    }

    /// The complete subtrees whose hashes combine (right to left, as ``rangeHash``) into the
    /// hash of `range`: the RFC's left-balanced split applied until every piece is complete.
    static func decompose(_ range: LeafRange) -> [Node] {
        var nodes: [Node] = []
        var start = range.start
        while start < range.end {
            let n = range.end - start
            // The largest power of two ≤ n: the RFC's left subtree, or the whole range.
            var size: Int64 = 1
            while size <= n >> 1 { size <<= 1 }  // never overflows (see ``split(_:)``)
            let level = size.trailingZeroBitCount
            nodes.append(Node(level: level, index: start >> level))
            start += size
        }
        return nodes
    }

    /// The RFC 9162 hash of `range` given the hashes of its ``decompose(_:)`` pieces.
    static func rangeHash(_ pieces: [[UInt8]]) -> [UInt8] {
        var hash = pieces[pieces.count - 1]
        for piece in pieces.dropLast().reversed() { hash = nodeHash(piece, hash) }
        return hash
    }

    /// The root of a tree of whole leaves (for tests and small logs; O(n) memory).
    public static func root(leaves: [[UInt8]]) -> [UInt8] {
        var range = CompactRange()
        for leaf in leaves { range.append(leaf) }
        return range.root
    }

    // MARK: - Verification (RFC 9162 §2.1.3.2 and §2.1.4.2)

    /// Why a proof does not verify.
    public enum ProofError: Error, Sendable, Equatable, CustomStringConvertible {
        case indexOutOfRange(index: Int64, size: Int64)
        case wrongLength(expected: Int, got: Int)
        case rootMismatch
        case sizesOutOfOrder(from: Int64, to: Int64)
        case malformedHash

        public var description: String {
            switch self {
            case let .indexOutOfRange(index, size): "leaf \(index) is outside a tree of \(size) leaves"
            case let .wrongLength(expected, got): "the proof has \(got) hashes where \(expected) are needed"
            case .rootMismatch: "the proof does not lead to the signed root hash"
            case let .sizesOutOfOrder(from, to): "a tree of \(to) leaves cannot extend one of \(from)"
            case .malformedHash: "a proof hash is not 32 bytes"
            }
        }
    }

    /// Verifies that `leafHash` is leaf `index` of the tree of `size` leaves whose root is `root`.
    public static func verifyInclusion(
        leafHash: [UInt8], index: Int64, size: Int64, proof: [[UInt8]], root: [UInt8]
    ) throws(ProofError) {
        guard index >= 0, index < size else { throw .indexOutOfRange(index: index, size: size) }
        guard proof.allSatisfy({ $0.count == 32 }) else { throw .malformedHash }
        let expected = inclusionRanges(index: index, size: size).count
        guard proof.count == expected else { throw .wrongLength(expected: expected, got: proof.count) }
        var fn = index
        var sn = size - 1
        var r = leafHash
        for p in proof {
            guard sn != 0 else { throw .rootMismatch }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0, r == root else { throw .rootMismatch }
    }

    /// Verifies that the tree of `newSize` leaves with root `newRoot` extends (appends only to)
    /// the tree of `oldSize` leaves with root `oldRoot`.
    public static func verifyConsistency(
        oldSize: Int64, newSize: Int64, oldRoot: [UInt8], newRoot: [UInt8], proof: [[UInt8]]
    ) throws(ProofError) {
        guard oldSize >= 0, oldSize <= newSize else { throw .sizesOutOfOrder(from: oldSize, to: newSize) }
        guard proof.allSatisfy({ $0.count == 32 }) else { throw .malformedHash }
        let expected = consistencyRanges(from: oldSize, to: newSize).count
        guard proof.count == expected else { throw .wrongLength(expected: expected, got: proof.count) }
        if oldSize == newSize {
            guard oldRoot == newRoot else { throw .rootMismatch }
            return
        }
        if oldSize == 0 { return }  // The empty tree is a prefix of every tree.
        var path = proof
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        var fn = oldSize - 1
        var sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            guard sn != 0 else { throw .rootMismatch }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0, fr == oldRoot, sr == newRoot else { throw .rootMismatch }
    }
}

/// The right edge of a tree: the hashes of its complete subtrees, largest first (one per set bit
/// of ``size``). Enough to append the next leaf and to compute the root, in O(log n) time and
/// space — what the appender stores per tenant and what a streaming verifier keeps.
public struct CompactRange: Sendable, Hashable {
    public private(set) var size: Int64 = 0
    public private(set) var hashes: [[UInt8]] = []

    public init() {}

    /// From its stored form; nil if `bytes` is not one 32-byte hash per set bit of `size`.
    public init?(size: Int64, bytes: [UInt8]) {
        guard size >= 0, bytes.count == size.nonzeroBitCount * 32 else { return nil }
        self.size = size
        hashes = stride(from: 0, to: bytes.count, by: 32).map { Array(bytes[$0..<$0 + 32]) }
    }

    /// The stored form: the hashes concatenated.
    public var bytes: [UInt8] { hashes.flatMap { $0 } }

    /// Appends a leaf (its leaf hash) and reports each complete subtree it closes, as
    /// (level, index, hash), lowest first.
    public mutating func append(_ leafHash: [UInt8], closed: (MerkleTree.Node, [UInt8]) -> Void = { _, _ in }) {
        var hash = leafHash
        var level = 0
        var remaining = size
        while remaining & 1 == 1 {
            hash = MerkleTree.nodeHash(hashes.removeLast(), hash)
            level += 1
            closed(MerkleTree.Node(level: level, index: (size + 1) >> level - 1), hash)
            remaining >>= 1
        }
        hashes.append(hash)
        size += 1
    }

    /// `MTH` of the leaves so far (``MerkleTree/emptyRoot`` for none).
    public var root: [UInt8] {
        guard var hash = hashes.last else { return MerkleTree.emptyRoot }
        for left in hashes.dropLast().reversed() { hash = MerkleTree.nodeHash(left, hash) }
        return hash
    }
}
