import Foundation
import Sodium
import Testing

@testable import Audit

/// RFC 9162 hashing and proofs, and C2SP signed notes, without a database.
@Suite struct MerkleTests {
    /// The Certificate Transparency reference leaves (raw leaf data) and roots for sizes 0…8.
    static let leaves: [[UInt8]] = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .map { Hex.decode($0)! }
    static let roots = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]

    /// MTH straight from RFC 9162 §2.1.1, recursively, as the reference.
    static func mth(_ leafHashes: ArraySlice<[UInt8]>) -> [UInt8] {
        if leafHashes.isEmpty { return SHA256.hash([]) }
        if leafHashes.count == 1 { return leafHashes.first! }
        let k = Int(MerkleTree.split(Int64(leafHashes.count)))
        let start = leafHashes.startIndex
        return MerkleTree.nodeHash(mth(leafHashes[start..<start + k]), mth(leafHashes[(start + k)...]))
    }

    static func proof(_ ranges: [MerkleTree.LeafRange], _ leafHashes: [[UInt8]]) -> [[UInt8]] {
        ranges.map { mth(leafHashes[Int($0.start)..<Int($0.end)]) }
    }

    static func syntheticLeaves(_ count: Int) -> [[UInt8]] {
        (0..<count).map { MerkleTree.leafHash(SHA256.hash(Array(String($0).utf8))) }
    }

    @Test("proof shapes for sizes near Int64.max finish: the split and decomposition never overflow")
    func hugeSizesDoNotOverflow() {
        #expect(MerkleTree.split(Int64.max) == 1 << 62)
        #expect(MerkleTree.split((1 << 62) + 1) == 1 << 62)
        #expect(MerkleTree.split(1 << 62) == 1 << 61)
        #expect(MerkleTree.split(2) == 1 && MerkleTree.split(3) == 2 && MerkleTree.split(4) == 2 && MerkleTree.split(5) == 4)
        #expect(MerkleTree.inclusionRanges(index: 0, size: Int64.max).count == 63)
        #expect(MerkleTree.decompose(MerkleTree.LeafRange(start: 0, end: Int64.max)).count == 63)
    }

    @Test func aTamperedInclusionProofIsRefusedWithTheReason() throws {
        let leafHashes = Self.syntheticLeaves(13)
        let root = Self.mth(leafHashes[...])
        let good = Self.proof(MerkleTree.inclusionRanges(index: 5, size: 13), leafHashes)
        var flipped = good
        flipped[1][0] ^= 1
        #expect(throws: MerkleTree.ProofError.rootMismatch) {
            try MerkleTree.verifyInclusion(leafHash: leafHashes[5], index: 5, size: 13, proof: flipped, root: root)
        }
        #expect(throws: MerkleTree.ProofError.rootMismatch) {  // the right path, the wrong leaf
            try MerkleTree.verifyInclusion(leafHash: leafHashes[6], index: 5, size: 13, proof: good, root: root)
        }
        #expect(throws: MerkleTree.ProofError.wrongLength(expected: good.count, got: good.count - 1)) {
            try MerkleTree.verifyInclusion(leafHash: leafHashes[5], index: 5, size: 13, proof: Array(good.dropLast()), root: root)
        }
        #expect(throws: MerkleTree.ProofError.indexOutOfRange(index: 13, size: 13)) {
            try MerkleTree.verifyInclusion(leafHash: leafHashes[5], index: 13, size: 13, proof: good, root: root)
        }
        #expect(throws: (any Error).self) {
            try MerkleTree.verifyInclusion(leafHash: leafHashes[5], index: 4, size: 13, proof: good, root: root)
        }
    }

    @Test func aForkedOrRolledBackTreeFailsConsistency() throws {
        let leafHashes = Self.syntheticLeaves(20)
        var forked = leafHashes
        forked[3] = MerkleTree.leafHash([9, 9, 9])
        let proof = Self.proof(MerkleTree.consistencyRanges(from: 7, to: 20), forked)
        #expect(throws: MerkleTree.ProofError.rootMismatch) {
            try MerkleTree.verifyConsistency(
                oldSize: 7, newSize: 20, oldRoot: Self.mth(leafHashes[0..<7]), newRoot: Self.mth(forked[...]), proof: proof)
        }
        #expect(throws: MerkleTree.ProofError.sizesOutOfOrder(from: 20, to: 7)) {
            try MerkleTree.verifyConsistency(
                oldSize: 20, newSize: 7, oldRoot: Self.mth(leafHashes[...]), newRoot: Self.mth(leafHashes[0..<7]), proof: [])
        }
        #expect(throws: MerkleTree.ProofError.rootMismatch) {  // same size, different root: a fork
            try MerkleTree.verifyConsistency(
                oldSize: 20, newSize: 20, oldRoot: Self.mth(leafHashes[...]), newRoot: Self.mth(forked[...]), proof: [])
        }
    }

    @Test func rootsMatchTheCertificateTransparencyReferenceVectors() {
        let leafHashes = Self.leaves.map { MerkleTree.leafHash($0) }
        var range = CompactRange()
        #expect(Hex.encode(range.root) == Self.roots[0])
        for (size, leaf) in leafHashes.enumerated() {
            range.append(leaf)
            #expect(Hex.encode(range.root) == Self.roots[size + 1], "size \(size + 1)")
            #expect(CompactRange(size: range.size, bytes: range.bytes) == range)
        }
    }

    @Test func proofsMatchTheReferenceVectors() throws {
        let leafHashes = Self.leaves.map { MerkleTree.leafHash($0) }
        #expect(
            Self.proof(MerkleTree.inclusionRanges(index: 0, size: 8), leafHashes).map(Hex.encode) == [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ])
        #expect(
            Self.proof(MerkleTree.inclusionRanges(index: 5, size: 8), leafHashes).map(Hex.encode) == [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ])
        #expect(
            Self.proof(MerkleTree.consistencyRanges(from: 2, to: 8), leafHashes).map(Hex.encode) == [
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ])
        #expect(
            Self.proof(MerkleTree.consistencyRanges(from: 2, to: 5), leafHashes).map(Hex.encode) == [
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ])
        #expect(
            Self.proof(MerkleTree.consistencyRanges(from: 6, to: 8), leafHashes).map(Hex.encode) == [
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ])
    }

    @Test func everyInclusionAndConsistencyProofOfSmallTreesVerifies() throws {
        let leafHashes = Self.syntheticLeaves(40)
        for size in 1...40 {
            let root = Self.mth(leafHashes[0..<size])
            for index in 0..<size {
                let proof = Self.proof(MerkleTree.inclusionRanges(index: Int64(index), size: Int64(size)), leafHashes)
                try MerkleTree.verifyInclusion(
                    leafHash: leafHashes[index], index: Int64(index), size: Int64(size), proof: proof, root: root)
            }
            for old in 0...size {
                let proof = Self.proof(MerkleTree.consistencyRanges(from: Int64(old), to: Int64(size)), leafHashes)
                try MerkleTree.verifyConsistency(
                    oldSize: Int64(old), newSize: Int64(size), oldRoot: Self.mth(leafHashes[0..<old]), newRoot: root, proof: proof)
            }
        }
    }

    @Test func decomposedRangesHashLikeTheRFC() {
        let leafHashes = Self.syntheticLeaves(300)
        for (start, end) in [(0, 300), (256, 300), (128, 256), (288, 299), (0, 1), (299, 300)] {
            let range = MerkleTree.LeafRange(start: Int64(start), end: Int64(end))
            let pieces = MerkleTree.decompose(range).map { node in
                Self.mth(leafHashes[Int(node.index << node.level)..<Int((node.index + 1) << node.level)])
            }
            #expect(MerkleTree.rangeHash(pieces) == Self.mth(leafHashes[start..<end]), "\(start)..<\(end)")
        }
    }

    // MARK: - Signed notes

    /// The example key and note of the signed-note reference implementation (golang.org/x/mod/sumdb/note).
    static let exampleVerifierKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let exampleSeed = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let exampleText = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    static let exampleNote =
        exampleText
        + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

    @Test func anAlteredNoteOrAForeignKeyIsRefused() throws {
        let (name, publicKey) = try SignedNote.parseVerifierKey(Self.exampleVerifierKey)
        #expect(throws: SignedNote.NoteError.badSignature("PeterNeumann+c74f20a3")) {
            try SignedNote.verify(
                Self.exampleNote.replacingOccurrences(of: "cryptography", with: "cryptographY"), name: name, publicKey: publicKey)
        }
        let other = try Ed25519.SigningKey.generate()
        #expect(throws: SignedNote.NoteError.self) {
            try SignedNote.verify(Self.exampleNote, name: name, publicKey: other.publicKey)
        }
        #expect(throws: SignedNote.NoteError.self) { try SignedNote.open(Self.exampleText) }
        #expect(throws: SignedNote.NoteError.self) {
            try SignedNote.parseVerifierKey("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        }
        #expect(throws: SignedNote.NoteError.self) { try TreeCheckpoint(text: "origin\n012\nAAAA\n") }
    }

    @Test func signaturesMatchTheSignedNoteSpecExampleByteForByte() throws {
        let (name, publicKey) = try SignedNote.parseVerifierKey(Self.exampleVerifierKey)
        #expect(name == "PeterNeumann")
        #expect(try SignedNote.verify(Self.exampleNote, name: name, publicKey: publicKey) == Self.exampleText)
        let seed = Array(Data(base64Encoded: Self.exampleSeed)!)
        #expect(seed[0] == 0x01)
        let key = try Ed25519.SigningKey(seed: SecureBytes(copying: Array(seed.dropFirst())))
        #expect(key.publicKey == publicKey)
        #expect(SignedNote.sign(text: Self.exampleText, name: name, key: key) == Self.exampleNote)
        #expect(SignedNote.verifierKey(name: name, publicKey: publicKey) == Self.exampleVerifierKey)
    }

    @Test func checkpointBodiesRoundTrip() throws {
        let root = SHA256.hash([1, 2, 3])
        let body = TreeCheckpoint(origin: "example.com/log", size: 42, rootHash: root)
        #expect(body.text == "example.com/log\n42\n\(Data(root).base64EncodedString())\n")
        #expect(try TreeCheckpoint(text: body.text) == body)
    }
}
