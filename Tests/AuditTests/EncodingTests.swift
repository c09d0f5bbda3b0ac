import Audit
import Foundation
import Sodium
import Testing

/// The canonical encoding against known answers computed by an independent implementation of
/// ENCODING.md (a few lines of Python with hashlib and struct), so the document and the code
/// cannot drift apart unnoticed.
@Suite("Canonical encoding v1")
struct EncodingTests {
    static let tenant = UUID(uuidString: "00000000-0000-0000-0000-0000000000AA")!
    static let details: [String: AuditValue] = [
        "z": 1, "a": [true, nil, "x\"y\n/é"], "ab": ["b": -5, "a": "\u{01}"], "é": "ü",
    ]

    static func first() -> AuditEntry {
        var entry = AuditEntry(
            tenantID: tenant, seq: 1, at: "2026-01-02T03:04:05.000006Z", actor: "user-1", action: "secret.read",
            target: nil, outcome: "success", requestID: "req-1", ip: "::1", userAgent: "", details: details,
            prevHash: AuditEntry.genesisHash, hash: [])
        entry.hash = entry.computedHash()
        return entry
    }

    static func second() -> AuditEntry {
        var entry = AuditEntry(
            tenantID: tenant, seq: 2, at: "2026-01-02T03:04:05.000006Z", actor: nil, action: "policy.denied",
            target: "projects", outcome: "denied", requestID: nil, ip: nil, userAgent: nil, details: [:],
            prevHash: first().hash, hash: [])
        entry.hash = entry.computedHash()
        return entry
    }

    @Test("entry hashes match the known answers (NULL and empty string differ, keys sorted by bytes)")
    func knownAnswers() {
        #expect(Hex.encode(Self.first().hash) == "c27ecb61d0a3111a94d93a1fe791edd8170066df56cc30611ae8449606cef92b")
        #expect(Hex.encode(Self.second().hash) == "f7a03e1c8a0b6ede0a0dd5bf9d1f38da65d5563c768149626568c9c877de62cf")
    }

    @Test("checkpoint hash matches the known answer")
    func checkpointKnownAnswer() {
        let checkpoint = AuditCheckpoint(
            tenantID: Self.tenant, seq: 2, headHash: Self.second().hash, previousCheckpointHash: AuditEntry.genesisHash,
            signedAt: "2026-01-02T03:04:06.000000Z", keyID: String(repeating: "ab", count: 32), publicKey: [], signature: [])
        #expect(Hex.encode(checkpoint.hash()) == "2c39ce2f3e8423337a149b9d1a384ddc5a20fb0355e0d8e165e62ba9e06f229a")
    }

    @Test("a NULL field and an empty one hash differently")
    func nullIsNotEmpty() {
        var entry = Self.first()
        entry.userAgent = nil
        #expect(entry.computedHash() != Self.first().hash)
    }

    @Test("details survive a JSON round trip (as through jsonb) with the same hash")
    func jsonRoundTrip() throws {
        let data = try JSONEncoder().encode(Self.details)
        let decoded = try JSONDecoder().decode([String: AuditValue].self, from: data)
        #expect(decoded == Self.details)
        // jsonb prints with spaces and its own key order; parsing restores the same value.
        let jsonbStyle = #"{"a": [true, null, "x\"y\n/é"], "z": 1, "ab": {"a": "\u0001", "b": -5}, "é": "ü"}"#
        #expect(try JSONDecoder().decode([String: AuditValue].self, from: Data(jsonbStyle.utf8)) == Self.details)
        #expect(throws: (any Error).self) {
            try JSONDecoder().decode([String: AuditValue].self, from: Data(#"{"f": 1.5}"#.utf8))
        }
    }

    @Test("the verifier accepts a correct chain and names each fault in a doctored one")
    func pureVerifier() throws {
        let key = try Ed25519.SigningKey.generate()
        let keyID = AuditCheckpoint.keyID(of: key.publicKey)
        var checkpoint = AuditCheckpoint(
            tenantID: Self.tenant, seq: 2, headHash: Self.second().hash, previousCheckpointHash: AuditEntry.genesisHash,
            signedAt: "2026-01-02T03:04:06.000000Z", keyID: keyID, publicKey: key.publicKey, signature: [])
        checkpoint.signature = key.sign(checkpoint.signingMessage())
        let good = AuditVerifier.verify(
            tenant: Self.tenant, entries: [Self.first(), Self.second()], checkpoints: [checkpoint],
            trustedKeys: [keyID: key.publicKey], expectedHead: (2, Self.second().hash))
        #expect(good.isValid, "\(good.summary)")
        #expect(good.lastVerifiedCheckpoint == 2)

        let swapped = AuditVerifier.verify(
            tenant: Self.tenant, entries: [Self.second(), Self.first()], checkpoints: [checkpoint],
            trustedKeys: [keyID: key.publicKey])
        #expect(swapped.failures.contains { $0.kind == .outOfOrder && $0.seq == 1 })
        #expect(swapped.failures.contains { $0.kind == .gap && $0.seq == 2 })

        let truncated = AuditVerifier.verify(
            tenant: Self.tenant, entries: [Self.first()], checkpoints: [checkpoint], trustedKeys: [keyID: key.publicKey])
        #expect(truncated.failures.map(\.kind) == [.truncated])

        var forged = checkpoint
        forged.signature[0] ^= 1
        let badSignature = AuditVerifier.verify(
            tenant: Self.tenant, entries: [Self.first(), Self.second()], checkpoints: [forged],
            trustedKeys: [keyID: key.publicKey])
        #expect(badSignature.failures.map(\.kind) == [.badSignature])
    }
}
