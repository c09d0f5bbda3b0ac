import ArgumentParser
import Audit
import Foundation
import Gateway
import Postgres
import Sodium

struct AuditCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Export, verify and checkpoint the tamper-evident audit trail.",
        discussion: """
            Every tenant has one hash chain of audit entries (encoding: Sources/Audit/ENCODING.md).
            Checkpoints sign its head with the Ed25519 key in $PRIVACY_SIGNING_KEY_FILE.
            An exported bundle is verified with no database:
              privacyctl audit checkpoint --tenant <id>
              privacyctl audit export --tenant <id> --out bundle/
              privacyctl audit verify bundle/ --trusted-key <public key hex>     # exit 3 if anything fails
              privacyctl audit verify --live --tenant <id>
            Each tenant's log is also an RFC 9162 Merkle tree; checkpoints carry a C2SP signed note of
            its root, and one entry or one extension can be proven without the whole log:
              privacyctl audit prove --tenant <id> --seq 42 --out proof.json
              privacyctl audit verify-proof proof.json --trusted-key <public key hex>
            """,
        subcommands: [Export.self, Verify.self, Checkpoint.self, Prove.self, VerifyProof.self])

    struct TenantOption: ParsableArguments {
        @Option(help: "Tenant id.") var tenant: String?

        func id() throws -> UUID {
            guard let tenant else { throw ValidationError("--tenant is required") }
            guard let id = UUID(uuidString: tenant) else {
                throw ValidationError("--tenant must be a tenant id (a UUID), got \"\(tenant)\"")
            }
            return id
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a tenant's audit bundle (entries, checkpoints, public keys, manifest) to a directory.",
            discussion: "Example: privacyctl audit export --tenant <id> --since 2026-01-01 --out audit-2026/")
        @OptionGroup var tenant: TenantOption
        @Option(help: "Only entries at or after this date (YYYY-MM-DD or RFC 3339 time).") var since: String?
        @Option(help: "Directory to write (created if missing).") var out: String
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            _ = try tenant.id()
            if let since, AuditCLI.parseDate(since) == nil {
                throw ValidationError("--since must be a date (YYYY-MM-DD) or an RFC 3339 time, got \"\(since)\"")
            }
        }

        func run() async throws {
            let printer = Output(json: output.json)
            try await printer.run {
                let pool = try database.ownerPool()
                defer { pool.close() }
                let manifest = try await AuditBundle.export(
                    pool: pool, tenant: try tenant.id(), since: since.flatMap(AuditCLI.parseDate),
                    to: URL(fileURLWithPath: out, isDirectory: true))
                try printer.emit(manifest) {
                    "wrote \(manifest.entries) entries (seq \(manifest.fromSeq)…\(manifest.head.seq)) to \(out)"
                }
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify an exported bundle offline, or a tenant's chain in the database (--live); exit 3 on any failure.",
            discussion: """
                Checks recomputed hashes, contiguous seq, chain links, checkpoint signatures,
                the checkpoint chain, and that the chain ends at the recorded head.
                Checkpoint keys are pinned: --trusted-key, $PRIVACY_AUDIT_PUBLIC_KEYS and the public
                half of $PRIVACY_SIGNING_KEY_FILE. --live never trusts keys read from the database (with
                no pinned key every checkpoint fails as unknown_key). A bundle with no pinned key falls
                back to its own keys.json: that proves consistency, not who signed.
                Examples:
                  privacyctl audit verify audit-2026/ --trusted-key 3b6a27bc…
                  privacyctl audit verify --live --tenant <id> --json
                """)
        @Argument(help: "Bundle directory (omit with --live).") var path: String?
        @Flag(help: "Verify the chain in the database ($DATABASE_URL) instead of a bundle.") var live = false
        @OptionGroup var tenant: TenantOption
        @Option(name: .customLong("trusted-key"), help: "A trusted Ed25519 public key (64 hex characters); repeat for old keys.")
        var trustedKeys: [String] = []
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if live {
                guard path == nil else { throw ValidationError("give either a bundle path or --live, not both") }
                _ = try tenant.id()
            } else {
                guard path != nil else { throw ValidationError("give a bundle directory, or --live --tenant <id>") }
            }
            for key in trustedKeys where Hex.decode(key)?.count != Ed25519.publicKeyLength {
                throw ValidationError("--trusted-key must be a 32-byte public key in hex, got \"\(key)\"")
            }
        }

        func run() async throws {
            let printer = Output(json: output.json)
            var failed = false
            try await printer.run {
                let pinned = try database.configuration().pinnedAuditKeys().merging(
                    AuditCheckpoint.trustedKeys(trustedKeys.compactMap(Hex.decode))) { first, _ in first }
                let trusted: [String: [UInt8]]? = pinned.isEmpty && !live ? nil : pinned
                let report: VerificationReport
                if live {
                    let pool = try database.ownerPool()
                    defer { pool.close() }
                    report = try await AuditBundle.verifyLive(pool: pool, tenant: try tenant.id(), trustedKeys: pinned)
                } else {
                    report = try AuditBundle.verify(directory: URL(fileURLWithPath: path!, isDirectory: true), trustedKeys: trusted)
                }
                failed = !report.isValid
                try printer.emit(report) {
                    var text = report.summary
                    if trusted == nil {
                        text += "\nnote: trusted the public keys found in the bundle; pin keys with --trusted-key or PRIVACY_AUDIT_PUBLIC_KEYS"
                    } else if pinned.isEmpty, report.checkpointsChecked > 0 {
                        text += "\nnote: no checkpoint key is pinned; set PRIVACY_AUDIT_PUBLIC_KEYS or pass --trusted-key"
                    }
                    return text
                }
            }
            if failed { throw ExitCode(3) }
        }
    }

    struct Checkpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign the current head of a tenant's chain (or of every tenant that moved, with --all).",
            discussion: """
                The signing key is an Ed25519 seed file (privacyctl keys generate), never in the database.
                Example: privacyctl audit checkpoint --tenant <id> --json
                """)
        @OptionGroup var tenant: TenantOption
        @Flag(help: "Checkpoint every tenant whose chain moved since its last checkpoint.") var all = false
        @Option(name: .customLong("signing-key-file"), help: "Ed25519 seed file (default: $PRIVACY_SIGNING_KEY_FILE).")
        var signingKeyFile: String?
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if all {
                guard tenant.tenant == nil else { throw ValidationError("give either --tenant or --all, not both") }
            } else {
                _ = try tenant.id()
            }
        }

        func run() async throws {
            let printer = Output(json: output.json)
            try await printer.run {
                let configuration = try database.configuration()
                guard let keyPath = signingKeyFile ?? configuration.signingKeyFile else {
                    throw GatewayError.configuration(
                        "no signing key: set PRIVACY_SIGNING_KEY_FILE or pass --signing-key-file",
                        hint: "create one with: privacyctl keys generate --out signing.key")
                }
                let signingKey = try Ed25519.SigningKey(seed: try KeyFile.load(keyPath, purpose: "signing key"))
                let pool = try database.ownerPool()
                defer { pool.close() }
                let checkpointer = AuditCheckpointer(
                    pool: pool, signingKey: signingKey, trustedKeys: try database.configuration().pinnedAuditKeys())
                let checkpoints: [AuditCheckpoint]
                if all {
                    let result = try await checkpointer.checkpointAll()
                    for (tenant, error) in result.failures {
                        FileHandle.standardError.write(Data("error: tenant \(tenant.lowercasedString): \(error)\n".utf8))
                    }
                    if !result.failures.isEmpty { throw ExitCode.failure }
                    checkpoints = result.checkpoints
                } else {
                    checkpoints = [try await checkpointer.checkpoint(tenant: try tenant.id())]
                }
                try printer.emit(checkpoints.map(CheckpointSummary.init)) {
                    checkpoints.isEmpty
                        ? "no chain moved since its last checkpoint"
                        : checkpoints.map {
                            "checkpoint tenant \($0.tenantID.lowercasedString) seq \($0.seq) head \(Hex.encode($0.headHash)) key \($0.keyID)"
                        }.joined(separator: "\n")
                }
            }
        }
    }

    struct Prove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an inclusion proof (--seq) or a consistency proof (--from, --to) from the database to a file.",
            discussion: """
                The proof file carries the entry (for inclusion), the proof hashes and the checkpoints'
                C2SP signed notes: verify-proof needs nothing else but the pinned public key.
                Examples:
                  privacyctl audit prove --tenant <id> --seq 42 --out proof.json              # latest checkpoint
                  privacyctl audit prove --tenant <id> --seq 42 --checkpoint 100 --out proof.json
                  privacyctl audit prove --tenant <id> --from 100 --to 250 --out consistency.json
                """)
        @OptionGroup var tenant: TenantOption
        @Option(help: "The entry to prove.") var seq: Int64?
        @Option(help: "The checkpoint (its seq) to prove the entry in; default: the latest signed one.") var checkpoint: Int64?
        @Option(help: "Consistency: the earlier checkpoint's seq.") var from: Int64?
        @Option(help: "Consistency: the later checkpoint's seq.") var to: Int64?
        @Option(help: "File to write (default: standard output).") var out: String?
        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            _ = try tenant.id()
            switch (seq, from, to) {
            case (let seq?, nil, nil):
                guard seq >= 1 else { throw ValidationError("--seq must be 1 or more") }
                if let checkpoint, checkpoint < 1 { throw ValidationError("--checkpoint must be 1 or more") }
            case (nil, let from?, let to?):
                guard from >= 1, to >= from, checkpoint == nil else {
                    throw ValidationError("--from and --to are checkpoint seqs with 1 ≤ from ≤ to (and no --checkpoint)")
                }
            default:
                throw ValidationError("give --seq (inclusion) or both --from and --to (consistency)")
            }
        }

        func run() async throws {
            let printer = Output(json: false)
            try await printer.run {
                let pool = try database.ownerPool()
                defer { pool.close() }
                let tenant = try tenant.id()
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                let data: Data
                if let seq {
                    var checkpointSeq = checkpoint
                    if checkpointSeq == nil {
                        checkpointSeq = try await AuditReader.checkpoints(pool: pool, tenant: tenant).last { $0.note != nil }?.seq
                    }
                    guard let checkpointSeq else {
                        throw AuditError(.invalidRequest, "tenant \(tenant.lowercasedString) has no checkpoint with a signed root yet: run privacyctl audit checkpoint")
                    }
                    data = try encoder.encode(try await AuditProofs.inclusion(pool: pool, tenant: tenant, seq: seq, checkpointSeq: checkpointSeq))
                } else {
                    data = try encoder.encode(try await AuditProofs.consistency(pool: pool, tenant: tenant, from: from!, to: to!))
                }
                if let out {
                    try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: out))
                    FileHandle.standardError.write(Data("wrote \(out)\n".utf8))
                } else {
                    FileHandle.standardOutput.write(data + Data("\n".utf8))
                }
            }
        }
    }

    struct VerifyProof: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify-proof",
            abstract: "Verify a proof file offline against a pinned public key; exit 3 if it does not verify.",
            discussion: """
                Checks the checkpoint's signed note (C2SP signed-note, key name = the tenant's log origin)
                with the pinned key, recomputes the entry's hash from its content, and walks the RFC 9162
                path to the signed root (or checks that the later checkpoint extends the earlier one).
                No database, no network. Keys: --trusted-key and $PRIVACY_AUDIT_PUBLIC_KEYS.
                Example: privacyctl audit verify-proof proof.json --trusted-key 3b6a27bc…
                """)
        @Argument(help: "The proof file written by audit prove or GET /v1/audit/…/proof.") var path: String
        @Option(name: .customLong("trusted-key"), help: "The log's Ed25519 public key (64 hex characters); repeat for old keys.")
        var trustedKeys: [String] = []
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            for key in trustedKeys where Hex.decode(key)?.count != Ed25519.publicKeyLength {
                throw ValidationError("--trusted-key must be a 32-byte public key in hex, got \"\(key)\"")
            }
        }

        func run() async throws {
            let printer = Output(json: output.json)
            var failure: String?
            try await printer.run {
                let keys = trustedKeys.compactMap(Hex.decode) + (try database.configuration().auditPublicKeys)
                guard !keys.isEmpty else {
                    throw ValidationError("pin the log's public key: --trusted-key <hex> or PRIVACY_AUDIT_PUBLIC_KEYS")
                }
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                struct Kind: Decodable { let type: String? }
                let type = (try? JSONDecoder().decode(Kind.self, from: data))?.type
                var verdict: String?
                var errors: [String] = []
                for key in keys {
                    do {
                        switch type {
                        case InclusionProof.type:
                            verdict = try AuditProofs.verify(try JSONDecoder().decode(InclusionProof.self, from: data), publicKey: key)
                        case ConsistencyProof.type:
                            verdict = try AuditProofs.verify(try JSONDecoder().decode(ConsistencyProof.self, from: data), publicKey: key)
                        default:
                            throw AuditError(.proof, "\(path) is not a proof file (type \(type.map { "\"\($0)\"" } ?? "missing"))")
                        }
                        break
                    } catch let error as AuditError {
                        errors.append(error.message)
                    } catch {
                        errors.append("\(path) is not a readable proof file: \(error)")
                    }
                }
                struct Result: Encodable { let valid: Bool; let message: String }
                if let verdict {
                    try printer.emit(Result(valid: true, message: verdict)) { verdict }
                } else {
                    // With several pinned keys, the first key's reason is the one that names the problem
                    // unless it was merely "not signed by this key".
                    let message = errors.first { !$0.contains("no signature by the trusted key") } ?? errors[0]
                    failure = message
                    try printer.emit(Result(valid: false, message: message)) { "FAILED: \(message)" }
                }
            }
            if failure != nil { throw ExitCode(3) }
        }
    }

    /// A checkpoint as printed with --json (binary values in hex).
    struct CheckpointSummary: Encodable {
        let tenant_id: String, seq: Int64, head_hash: String, previous_checkpoint_hash: String
        let signed_at: String, key_id: String, public_key: String, signature: String
        let root_hash: String?, note: String?

        init(_ checkpoint: AuditCheckpoint) {
            tenant_id = checkpoint.tenantID.lowercasedString
            seq = checkpoint.seq
            head_hash = Hex.encode(checkpoint.headHash)
            previous_checkpoint_hash = Hex.encode(checkpoint.previousCheckpointHash)
            signed_at = checkpoint.signedAt
            key_id = checkpoint.keyID
            public_key = Hex.encode(checkpoint.publicKey)
            signature = Hex.encode(checkpoint.signature)
            root_hash = checkpoint.rootHash.map(Hex.encode)
            note = checkpoint.note
        }
    }

    /// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time with or without fraction.
    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        if text.count == 10, let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
