import ArgumentParser
import Audit
import Catalog
import Config
import Foundation
import JSON
import Postgres
import Sodium
import Tenancy

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

struct AuditCommand: AsyncParsableCommand {
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
            An auditor's witness cosigns each new checkpoint only if it extends the last one it saw:
              privacyctl audit witness --log https://gateway --apikey <audit:read key> --log-key <hex> \\
                --state witness-state/ --witness-key-file witness.key --name auditor.example/w1
            """,
        subcommands: [Export.self, Verify.self, Checkpoint.self, Prove.self, VerifyProof.self, Witness.self])

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
            if let since, AuditCommand.parseDate(since) == nil {
                throw ValidationError("--since must be a date (YYYY-MM-DD) or an RFC 3339 time, got \"\(since)\"")
            }
        }

        func run() async throws {
            let printer = Output(json: output.json)
            try await printer.run {
                let pool = try database.ownerPool()
                defer { pool.close() }
                let manifest = try await AuditBundle.export(
                    pool: pool, tenant: try tenant.id(), since: since.flatMap(AuditCommand.parseDate),
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
        @Option(name: .customLong("witness"), help: "A pinned witness, NAME=HEX (its Ed25519 public key); repeat for each.")
        var witnesses: [String] = []
        @Option(
            name: .customLong("require-cosignatures"),
            help: "Fail unless the newest signed checkpoint has this many valid cosignatures by pinned witnesses.")
        var requiredCosignatures: Int = 0
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func witnessPolicy() throws -> WitnessPolicy {
            let pinned = try witnesses.map { text -> (name: String, publicKey: [UInt8]) in
                let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, SignedNote.isValidName(parts[0]), let key = Hex.decode(parts[1]),
                    key.count == Ed25519.publicKeyLength
                else {
                    throw ValidationError("--witness must be NAME=HEX (a 32-byte Ed25519 public key), got \"\(text)\"")
                }
                return (parts[0], key)
            }
            guard requiredCosignatures >= 0, requiredCosignatures <= pinned.count else {
                throw ValidationError(
                    "--require-cosignatures \(requiredCosignatures) needs at least that many --witness keys (\(pinned.count) given)")
            }
            return WitnessPolicy(witnesses: pinned, required: requiredCosignatures)
        }

        func validate() throws {
            _ = try witnessPolicy()
            if live {
                guard path == nil else { throw ValidationError("give either a bundle path or --live, not both") }
                _ = try tenant.id()
            } else {
                guard path != nil else { throw ValidationError("give a bundle directory, or --live --tenant <id>") }
            }
            try PinnedKeyFlags.validate(trustedKeys, flag: "--trusted-key")
        }

        func run() async throws {
            let printer = Output(json: output.json)
            var failed = false
            try await printer.run {
                let pinned = try database.configuration().pinnedAuditKeys().merging(
                    AuditCheckpoint.trustedKeys(trustedKeys.compactMap(Hex.decode))
                ) { first, _ in first }
                let trusted: [String: [UInt8]]? = pinned.isEmpty && !live ? nil : pinned
                let report: VerificationReport
                if live {
                    let pool = try database.ownerPool()
                    defer { pool.close() }
                    report = try await AuditBundle.verifyLive(
                        pool: pool, tenant: try tenant.id(), trustedKeys: pinned, witnesses: try witnessPolicy())
                } else {
                    report = try AuditBundle.verify(
                        directory: URL(fileURLWithPath: path!, isDirectory: true), trustedKeys: trusted, witnesses: try witnessPolicy())
                }
                failed = !report.isValid
                try printer.emit(report) {
                    var text = report.summary
                    if trusted == nil {
                        text +=
                            "\nnote: trusted the public keys found in the bundle; pin keys with --trusted-key or PRIVACY_AUDIT_PUBLIC_KEYS"
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
                    throw ConfigurationError(
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
                let encoder = JSONCoding.encoder(pretty: true)
                let data: Data
                if let seq {
                    var checkpointSeq = checkpoint
                    if checkpointSeq == nil {
                        checkpointSeq = try await AuditReader.checkpoints(pool: pool, tenant: tenant).last { $0.note != nil }?.seq
                    }
                    guard let checkpointSeq else {
                        throw AuditError(
                            .invalidRequest,
                            "tenant \(tenant.lowercasedString) has no checkpoint with a signed root yet: run privacyctl audit checkpoint")
                    }
                    data = try encoder.encode(
                        try await AuditProofs.inclusion(pool: pool, tenant: tenant, seq: seq, checkpointSeq: checkpointSeq))
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
        @Argument(help: "The proof file written by audit prove, GET /v1/audit/…/proof, or an export's audit_trail.proofs.json.") var path:
            String
        @Option(name: .customLong("trusted-key"), help: "The log's Ed25519 public key (64 hex characters); repeat for old keys.")
        var trustedKeys: [String] = []
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            try PinnedKeyFlags.validate(trustedKeys, flag: "--trusted-key")
        }

        func run() async throws {
            try await PinnedKeyFlags.verifyFile(
                path, pinned: trustedKeys, unpinned: "pin the log's public key: --trusted-key <hex> or PRIVACY_AUDIT_PUBLIC_KEYS",
                database: database, output: output
            ) { keys, data in
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
                        case InclusionProofSet.type:
                            // A data subject's export: every entry's proof against one signed checkpoint.
                            verdict = try JSONDecoder().decode(InclusionProofSet.self, from: data).verify(publicKey: key)
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
                if let verdict { return .valid(verdict) }
                // With several pinned keys, the first key's reason is the one that names the problem
                // unless it was merely "not signed by this key".
                return .failed(errors.first { !$0.contains("no signature by the trusted key") } ?? errors[0])
            }
        }
    }

    struct Witness: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cosign a tenant's newest checkpoint if it extends the last one this witness cosigned; exit 3 on a rollback or fork.",
            discussion: """
                Run by an auditor on their own machine. Fetches GET /v1/audit/checkpoints with an audit:read
                key, verifies the newest signed note with the pinned log key, checks the consistency proof
                (GET /v1/audit/checkpoints/consistency) from the checkpoint kept in --state, and writes a
                C2SP tlog-cosignature (Ed25519, cosignature/v1) line: --state/<tenant>.json keeps the
                cosigned checkpoint, --state/<tenant>-<size>.note the note with the cosignature.
                A smaller tree (rollback) or a different or non-extending one (fork) is refused and the
                state is left as it was. The gateway stores the cosignature only if the operator declared
                this witness (PRIVACY_AUDIT_WITNESS_KEYS=<name>+<witness public key hex>); otherwise it
                answers 403 and the command fails after saving its state (a rerun posts it again).
                Example: privacyctl audit witness --log http://localhost:8080 --apikey $KEY --log-key 3b6a27bc… \\
                           --state ~/witness --witness-key-file ~/witness.key --name auditor.example/w1
                """)
        @Option(help: "The gateway's base URL.") var log: String
        @Option(help: "A service key of the tenant with audit:read (default: $PRIVACY_WITNESS_APIKEY).") var apikey: String?
        @Option(name: .customLong("log-key"), help: "The log's pinned Ed25519 public key (64 hex characters).") var logKey: String
        @Option(help: "Directory keeping the last cosigned checkpoint per tenant (created if missing).") var state: String
        @Option(name: .customLong("witness-key-file"), help: "The witness's Ed25519 seed file (privacyctl keys generate).")
        var witnessKeyFile: String
        @Option(help: "The witness's name (a schema-less URL, no spaces or '+').") var name: String
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard Hex.decode(logKey)?.count == Ed25519.publicKeyLength else {
                throw ValidationError("--log-key must be a 32-byte public key in hex, got \"\(logKey)\"")
            }
            guard SignedNote.isValidName(name) else { throw ValidationError("--name must be non-empty, without spaces or '+'") }
            guard URL(string: log)?.scheme != nil else { throw ValidationError("--log must be a URL such as http://localhost:8080") }
        }

        func run() async throws {
            let printer = Output(json: output.json)
            var refused = false
            try await printer.run {
                guard let apikey = apikey ?? ProcessInfo.processInfo.environment["PRIVACY_WITNESS_APIKEY"] else {
                    throw ValidationError("give --apikey or set PRIVACY_WITNESS_APIKEY (a service key with audit:read)")
                }
                let key = try Ed25519.SigningKey(seed: try KeyFile.load(witnessKeyFile, purpose: "witness key"))
                let base = log.hasSuffix("/") ? String(log.dropLast()) : log
                func get(_ path: String) async throws -> Data {
                    var request = URLRequest(url: URL(string: base + path)!)
                    request.setValue(apikey, forHTTPHeaderField: "apikey")
                    let (data, response) = try await URLSession.shared.data(for: request)
                    guard let status = (response as? HTTPURLResponse)?.statusCode, status == 200 else {
                        throw AuditError(
                            .invalidRequest,
                            "GET \(path) answered \((response as? HTTPURLResponse)?.statusCode ?? 0): \(String(decoding: data.prefix(500), as: UTF8.self))"
                        )
                    }
                    return data
                }
                struct Listing: Decodable { let checkpoints: [CodableCheckpoint] }
                let listing = try JSONDecoder().decode(Listing.self, from: try await get("/v1/audit/checkpoints"))
                guard let newest = listing.checkpoints.map(\.checkpoint).last(where: { $0.note != nil }), let note = newest.note else {
                    throw AuditError(.invalidRequest, "the log has no checkpoint with a signed note yet")
                }
                let directory = URL(fileURLWithPath: state, isDirectory: true)
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                let stateFile = directory.appendingPathComponent("\(newest.tenantID.lowercasedString).json")
                let previous =
                    FileManager.default.fileExists(atPath: stateFile.path)
                    ? try JSONDecoder().decode(AuditWitness.State.self, from: Data(contentsOf: stateFile)) : nil
                var proof: [[UInt8]] = []
                if let previous, newest.seq > previous.size {
                    let consistency = try JSONDecoder().decode(
                        ConsistencyProof.self,
                        from: try await get("/v1/audit/checkpoints/consistency?from=\(previous.size)&to=\(newest.seq)"))
                    proof = try consistency.hashes.map {
                        guard let bytes = Hex.decode($0), bytes.count == 32 else {
                            throw AuditError(.proof, "a proof hash is not 32 bytes of hex")
                        }
                        return bytes
                    }
                }
                struct Result: Encodable { let cosigned: Bool; let size: Int64?; let message: String }
                do {
                    let next = try AuditWitness.witness(
                        note: note, tenant: newest.tenantID, logPublicKey: Hex.decode(logKey)!, previous: previous, proof: proof,
                        name: name, key: key)
                    let encoder = JSONCoding.encoder(pretty: true)
                    try Data(next.note.utf8).write(
                        to: directory.appendingPathComponent("\(newest.tenantID.lowercasedString)-\(next.size).note"), options: .atomic)
                    try encoder.encode(next).write(to: stateFile, options: .atomic)
                    // Hand the cosignature to the gateway, which stores and serves it (idempotent: a rerun posts it again).
                    let line = String(next.note.split(separator: "\n").last!) + "\n"
                    var post = URLRequest(url: URL(string: base + "/v1/audit/checkpoints/\(next.size)/cosignatures")!)
                    post.httpMethod = "POST"
                    post.setValue(apikey, forHTTPHeaderField: "apikey")
                    post.setValue("application/json", forHTTPHeaderField: "Content-Type")
                    post.httpBody = try JSONCoding.encoder().encode([
                        "name": name, "public_key": Hex.encode(key.publicKey), "cosignature": line,
                    ])
                    let (answer, response) = try await URLSession.shared.data(for: post)
                    guard let status = (response as? HTTPURLResponse)?.statusCode, status == 200 || status == 201 else {
                        throw AuditError(
                            .invalidRequest,
                            "cosigned (state saved) but the gateway refused the cosignature: \(String(decoding: answer.prefix(500), as: UTF8.self))"
                        )
                    }
                    let message =
                        "cosigned \(next.origin) at tree size \(next.size)"
                        + (previous.map { " (consistent with the cosigned size \($0.size))" }
                            ?? " (first checkpoint seen: trusted on first use)")
                    try printer.emit(Result(cosigned: true, size: next.size, message: message)) { message }
                } catch let error as AuditError where error.code == .proof {
                    refused = true
                    try printer.emit(Result(cosigned: false, size: nil, message: error.message)) { "REFUSED: \(error.message)" }
                }
            }
            if refused { throw ExitCode(3) }
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
