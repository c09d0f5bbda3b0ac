import Foundation
import JSON
import Postgres
import Sodium

/// An export bundle: a directory an auditor verifies with no database (ENCODING.md §6).
///
/// ```
/// manifest.json      format, tenant, exported_at, from_seq, head, SHA-256 of each file below
/// entries.jsonl      one entry per line, in seq order
/// checkpoints.json   all of the tenant's checkpoints
/// keys.json          the public keys that signed them: [{key_id, public_key}]
/// ```
public enum AuditBundle {
    /// `manifest.json`'s `format` value.
    public static let format = "privacy-gateway-audit-bundle"
    /// File names inside a bundle directory.
    public static let entriesFile = "entries.jsonl"
    public static let checkpointsFile = "checkpoints.json"
    public static let keysFile = "keys.json"
    public static let manifestFile = "manifest.json"

    /// The bundle's table of contents.
    public struct Manifest: Sendable, Codable, Hashable {
        public struct Head: Sendable, Codable, Hashable {
            public var seq: Int64
            /// Lowercase hex.
            public var hash: String
        }
        public var format: String
        public var version: Int
        /// The canonical encoding of entries and checkpoints (ENCODING.md).
        public var encoding: String
        public var tenantID: UUID
        public var exportedAt: String
        /// The first seq in entries.jsonl (1 unless exported `--since`).
        public var fromSeq: Int64
        /// The tenant's head when the bundle was written; the entries must end there.
        public var head: Head
        public var entries: Int
        /// File name → lowercase hex SHA-256 of its bytes.
        public var files: [String: String]

        enum CodingKeys: String, CodingKey {
            case format, version, encoding, tenantID = "tenant_id", exportedAt = "exported_at", fromSeq = "from_seq"
            case head, entries, files
        }
    }

    /// A public key as listed in keys.json.
    public struct PublicKey: Sendable, Codable, Hashable {
        public var keyID: String
        public var publicKey: String
        enum CodingKeys: String, CodingKey { case keyID = "key_id", publicKey = "public_key" }
    }

    // MARK: - Export

    /// Writes the tenant's chain (from `since`, if given) with all its checkpoints into
    /// `directory` (created if missing; existing bundle files are replaced).
    ///
    /// Everything is read in one read-only repeatable-read transaction, so the bundle is a
    /// consistent snapshot even while appends continue; entries are streamed page by page.
    public static func export(pool: ConnectionPool, tenant: UUID, since: Date? = nil, to directory: URL) async throws -> Manifest {
        do {
            return try await pool.withConnection(tenant: tenant) { connection in
                try await connection.run { connection in
                    try connection.transaction(isolation: .repeatableRead) { connection in
                        try write(connection, tenant: tenant, since: since, to: directory)
                    }
                }
            }
        } catch {
            throw AuditError.wrap(error, "audit export failed")
        }
    }

    private static func write(_ connection: borrowing Connection, tenant: UUID, since: Date?, to directory: URL) throws -> Manifest {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let first = try connection.pipeline([
            AuditSQL.head(tenant), AuditSQL.checkpoints(tenant),
            Statement("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', \(AuditSQL.canonicalTimeFormat)) AS now"),
        ])
        let head = Manifest.Head(
            seq: try first[0].first?.decode("seq") ?? 0,
            hash: Hex.encode(try first[0].first?.decode("hash") ?? AuditEntry.genesisHash))
        let checkpoints = try first[1].rows.map(AuditSQL.checkpoint)
        var fromSeq: Int64 = 1
        if let since {
            let row = try connection.pipeline([AuditSQL.firstSeq(tenant, since: since)])[0].first
            fromSeq = try row?.decodeIfPresent("seq", as: Int64.self) ?? head.seq + 1
        }

        // Entries, one JSON document per line, streamed to disk with their SHA-256.
        let entriesURL = directory.appendingPathComponent(entriesFile)
        guard FileManager.default.createFile(atPath: entriesURL.path, contents: nil) else {
            throw AuditError(.bundle, "cannot create \(entriesURL.path)")
        }
        let handle = try FileHandle(forWritingTo: entriesURL)
        defer { try? handle.close() }
        try handle.truncate(atOffset: 0)
        var hasher = SHA256.Hasher()
        var count = 0
        var after = fromSeq - 1
        let encoder = JSONCoding.encoder()
        while true {
            let page = try connection.pipeline([AuditSQL.entries(tenant, after: after, limit: 2000)])[0].rows
            if page.isEmpty { break }
            var chunk = Data()
            for row in page {
                let entry = try AuditSQL.entry(row)
                chunk.append(try encoder.encode(CodableEntry(entry)))
                chunk.append(0x0A)
                after = entry.seq
                count += 1
            }
            hasher.update(Array(chunk))
            try handle.write(contentsOf: chunk)
        }

        let pretty = JSONCoding.encoder(pretty: true)
        let checkpointsData = try pretty.encode(checkpoints.map(CodableCheckpoint.init))
        var keys: [String: PublicKey] = [:]
        for checkpoint in checkpoints {
            keys[checkpoint.keyID] = PublicKey(keyID: checkpoint.keyID, publicKey: Hex.encode(checkpoint.publicKey))
        }
        let keysData = try pretty.encode(keys.keys.sorted().map { keys[$0]! })
        try checkpointsData.write(to: directory.appendingPathComponent(checkpointsFile))
        try keysData.write(to: directory.appendingPathComponent(keysFile))

        let manifest = Manifest(
            format: format, version: 1, encoding: "v1", tenantID: tenant, exportedAt: try first[2].first!.decode("now"),
            fromSeq: fromSeq, head: head, entries: count,
            files: [
                entriesFile: Hex.encode(hasher.finalize()),
                checkpointsFile: Hex.encode(SHA256.hash(Array(checkpointsData))),
                keysFile: Hex.encode(SHA256.hash(Array(keysData))),
            ])
        try pretty.encode(manifest).write(to: directory.appendingPathComponent(manifestFile))
        return manifest
    }

    // MARK: - Offline verification

    /// Verifies a bundle directory with no database.
    ///
    /// - Parameter trustedKeys: key id → public key held by the auditor independently of the
    ///   bundle. `nil` trusts the keys in keys.json, which proves the bundle is self-consistent
    ///   but not who signed it.
    /// - Throws: ``AuditError/Code/bundle`` only when the manifest itself is missing or
    ///   unreadable; everything else wrong is a failure in the report.
    public static func verify(
        directory: URL, trustedKeys: [String: [UInt8]]? = nil, witnesses: WitnessPolicy = WitnessPolicy()
    ) throws -> VerificationReport {
        try verify(directory: directory, trustedKeys: trustedKeys, witnesses: witnesses, chunkSize: 1 << 20)
    }

    /// ``verify(directory:trustedKeys:witnesses:)`` reading entries.jsonl `chunkSize` bytes at a time.
    static func verify(
        directory: URL, trustedKeys: [String: [UInt8]]?, witnesses: WitnessPolicy, chunkSize: Int
    ) throws -> VerificationReport {
        let manifest: Manifest
        guard let manifestData = try? Data(contentsOf: directory.appendingPathComponent(manifestFile)) else {
            throw AuditError(.bundle, "\(directory.path) is not an audit bundle: it has no readable \(manifestFile)")
        }
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: manifestData)
        } catch {
            throw AuditError(.bundle, "\(directory.path)/\(manifestFile) is not a bundle manifest (\(error))")
        }
        var problems: [VerificationFailure] = []
        guard manifest.format == format, manifest.version == 1, manifest.encoding == "v1" else {
            throw AuditError(.bundle, "unsupported bundle \(manifest.format) version \(manifest.version) encoding \(manifest.encoding)")
        }

        func load(_ name: String) -> Data {
            guard let data = try? Data(contentsOf: directory.appendingPathComponent(name)) else {
                problems.append(VerificationFailure(.malformed, seq: nil, "\(name) is missing or unreadable"))
                return Data()
            }
            if Hex.encode(SHA256.hash(Array(data))) != manifest.files[name] {
                problems.append(VerificationFailure(.malformed, seq: nil, "\(name) does not match its SHA-256 in the manifest"))
            }
            return data
        }
        let checkpointsData = load(checkpointsFile)
        let keysData = load(keysFile)

        let decoder = JSONDecoder()
        var checkpoints: [AuditCheckpoint] = []
        if let decoded = try? decoder.decode([CodableCheckpoint].self, from: checkpointsData) {
            checkpoints = decoded.map(\.checkpoint)
        } else if !checkpointsData.isEmpty {
            problems.append(VerificationFailure(.malformed, seq: nil, "\(checkpointsFile) is not a list of checkpoints"))
        }
        var keys = trustedKeys ?? [:]
        if trustedKeys == nil {
            for key in (try? decoder.decode([PublicKey].self, from: keysData)) ?? [] {
                guard let bytes = Hex.decode(key.publicKey), AuditCheckpoint.keyID(of: bytes) == key.keyID else {
                    problems.append(
                        VerificationFailure(.malformed, seq: nil, "\(keysFile): key \(key.keyID) does not match its public key"))
                    continue
                }
                keys[key.keyID] = bytes
            }
        }

        var verifier = AuditVerifier(
            tenant: manifest.tenantID, checkpoints: checkpoints, trustedKeys: keys, startSeq: manifest.fromSeq,
            expectedHead: Hex.decode(manifest.head.hash).map { (manifest.head.seq, $0) }, witnesses: witnesses)
        // entries.jsonl is streamed a chunk at a time (hashed and verified as it is read), so a
        // bundle of any length is checked in bounded memory; its problems are reported in the
        // order they were when the file was read whole.
        var fileProblems: [VerificationFailure] = []
        var lineProblems: [VerificationFailure] = []
        if let handle = FileHandle(forReadingAtPath: directory.appendingPathComponent(entriesFile).path) {
            defer { try? handle.close() }
            var hasher = SHA256.Hasher()
            var pending = Data()
            var index = 0
            func consume(_ line: Data) {
                guard !line.isEmpty else { return }
                index += 1
                guard let entry = try? decoder.decode(CodableEntry.self, from: line).entry else {
                    lineProblems.append(VerificationFailure(.malformed, seq: nil, "\(entriesFile) line \(index) is not an entry"))
                    return
                }
                verifier.consume(entry)
            }
            var readable = true
            while true {
                let next: Data?
                do { next = try handle.read(upToCount: chunkSize) } catch { readable = false; break }
                guard let chunk = next, !chunk.isEmpty else { break }  // nil or empty: end of file
                hasher.update(Array(chunk))
                pending.append(chunk)
                var start = pending.startIndex
                while let newline = pending[start...].firstIndex(of: 0x0A) {
                    consume(pending[start..<newline])
                    start = newline + 1
                }
                pending = Data(pending[start...])
            }
            consume(pending)
            if !readable {
                fileProblems.append(VerificationFailure(.malformed, seq: nil, "\(entriesFile) is missing or unreadable"))
            } else if Hex.encode(hasher.finalize()) != manifest.files[entriesFile] {
                fileProblems.append(VerificationFailure(.malformed, seq: nil, "\(entriesFile) does not match its SHA-256 in the manifest"))
            }
        } else {
            fileProblems.append(VerificationFailure(.malformed, seq: nil, "\(entriesFile) is missing or unreadable"))
        }
        var report = verifier.finish()
        report.failures = fileProblems + problems + lineProblems + report.failures
        return report
    }

    /// Verifies the tenant's chain in the database directly (`privacyctl audit verify --live`,
    /// `GET /v1/audit/verify`), including that the head row matches the last entry. Read in one
    /// repeatable-read snapshot as one stream consumed entry by entry (``AuditStream``): memory
    /// stays bounded by the checkpoints and one row, whatever the chain's length.
    ///
    /// - Parameter trustedKeys: key id → public key, pinned from configuration
    ///   (`PRIVACY_AUDIT_PUBLIC_KEYS`, the signing key's public half, `--trusted-key`). Never the
    ///   keys stored with the checkpoints: whoever can write a forged checkpoint into the database
    ///   can write its key there too. A checkpoint signed by any other key fails as
    ///   ``VerificationFailure/Kind/unknownKey``; with no keys at all, every checkpoint does.
    public static func verifyLive(
        pool: ConnectionPool, tenant: UUID, trustedKeys: [String: [UInt8]], witnesses: WitnessPolicy = WitnessPolicy()
    ) async throws -> VerificationReport {
        do {
            return try await pool.withConnection(tenant: tenant) { connection in
                try await connection.run { connection in
                    try connection.transaction(isolation: .repeatableRead) { connection in
                        let first = try connection.pipeline([AuditSQL.head(tenant), AuditSQL.checkpoints(tenant)])
                        let checkpoints = try first[1].rows.map(AuditSQL.checkpoint)
                        let head = try first[0].first.map {
                            (seq: try $0.decode("seq", as: Int64.self), hash: try $0.decode("hash", as: [UInt8].self))
                        }
                        var verifier = AuditVerifier(
                            tenant: tenant, checkpoints: checkpoints, trustedKeys: trustedKeys,
                            expectedHead: head ?? (0, AuditEntry.genesisHash), witnesses: witnesses)
                        _ = try AuditStream.rows(tenant, from: 1, through: nil, connection: connection) { try verifier.consume(row: $0) }
                        return verifier.finish()
                    }
                }
            }
        } catch {
            throw AuditError.wrap(error, "live audit verification failed")
        }
    }

    /// What ``verifyPeriod(pool:tenant:since:until:trustedKeys:keep:)`` found.
    public struct PeriodVerification: Sendable {
        /// The verification of the entries read: from the anchor checkpoint to the closing
        /// checkpoint (or the head).
        public var report: VerificationReport
        /// The period's entries (stamped in `[since, until)`, to the microsecond) that `keep`
        /// selected, in seq order.
        public var entries: [AuditEntry]
        /// Rows read from `audit_events`: the period's entries and the margins to the checkpoints
        /// around it, never the rest of the chain.
        public var rowsRead: Int
        /// The trusted checkpoint the verification started from (nil: from seq 1).
        public var anchor: Int64?
        /// The trusted checkpoint it stopped at (nil: it ran to the head, which was checked too).
        public var end: Int64?
        /// The tenant's head seq in the snapshot.
        public var headSeq: Int64
    }

    /// Verifies the part of the tenant's chain that holds the entries stamped in `[since, until)`
    /// (`since` nil: from the start), reading only that part, and returns the period's entries
    /// that `keep` selects (the auditor report, ``ReportCollector``). One repeatable-read snapshot.
    ///
    /// The part read is `A…B`: `A` is the last checkpoint before the period's first entry whose
    /// signature and signed Merkle root verify with `trustedKeys` and whose stored tree edge
    /// reproduces that root (else seq 1); `B` is the first trusted checkpoint at or after the
    /// first entry stamped at or after `until` (else the head, checked against the head row).
    /// Every entry read is checked exactly as ``verifyLive`` checks it — hash, seq, link, the
    /// checkpoints and Merkle roots inside `A…B` — and entry `A` against its signed head, so a
    /// tampered entry inside the period fails as it would in a whole-chain verification. Why the
    /// bounds are safe: `at` is stamped by the database clock under the head lock, so it never
    /// decreases along an untampered chain; the entry after the period is read and verified, so an
    /// entry of the period whose `at` was rewritten to move it out of the period is still read
    /// (and fails its hash). All checkpoints' signatures and chain are checked as in ``verifyLive``.
    public static func verifyPeriod(
        pool: ConnectionPool, tenant: UUID, since: Date?, until: Date, trustedKeys: [String: [UInt8]],
        keep: @escaping @Sendable (AuditEntry) -> Bool
    ) async throws -> PeriodVerification {
        do {
            return try await pool.withConnection(tenant: tenant) { connection in
                try await connection.run { connection in
                    try connection.transaction(isolation: .repeatableRead) { connection in
                        try period(connection, tenant: tenant, since: since, until: until, trustedKeys: trustedKeys, keep: keep)
                    }
                }
            }
        } catch {
            throw AuditError.wrap(error, "verifying the period's audit entries failed")
        }
    }

    private static func period(
        _ connection: borrowing Connection, tenant: UUID, since: Date?, until: Date, trustedKeys: [String: [UInt8]],
        keep: (AuditEntry) -> Bool
    ) throws -> PeriodVerification {
        // The bounds as canonical `at` text (fixed width, so text order is time order), by the
        // database's own conversion, to compare with entries exactly to the microsecond.
        let bounds = Statement(
            """
            SELECT to_char($1::timestamptz AT TIME ZONE 'UTC', \(AuditSQL.canonicalTimeFormat)) AS since,
                   to_char($2::timestamptz AT TIME ZONE 'UTC', \(AuditSQL.canonicalTimeFormat)) AS until
            """,
            [since, until])
        var statements = [AuditSQL.head(tenant), AuditSQL.checkpoints(tenant), bounds, AuditSQL.firstSeq(tenant, atOrAfter: until)]
        if let since { statements.append(AuditSQL.firstSeq(tenant, atOrAfter: since)) }
        let results = try connection.pipeline(statements)
        let sinceText: String? = try results[2].first?.decodeIfPresent("since")
        let untilText: String = try results[2].first!.decode("until")
        let head: (seq: Int64, hash: [UInt8]) =
            try results[0].first.map {
                (seq: try $0.decode("seq", as: Int64.self), hash: try $0.decode("hash", as: [UInt8].self))
            } ?? (0, AuditEntry.genesisHash)
        let checkpoints = try results[1].rows.map(AuditSQL.checkpoint)
        // The period's entries are firstIn…afterLast - 1 (stamps do not decrease along the chain).
        let afterLast = try results[3].first?.decodeIfPresent("seq", as: Int64.self) ?? head.seq + 1
        var firstIn: Int64 = 1
        if since != nil { firstIn = try results[4].first?.decodeIfPresent("seq", as: Int64.self) ?? head.seq + 1 }

        var verifier = AuditVerifier(tenant: tenant, checkpoints: checkpoints, trustedKeys: trustedKeys, expectedHead: head)
        let trusted = verifier.trustedCheckpoints
        var anchor: AuditCheckpoint?
        var tree: CompactRange?
        // The newest trusted checkpoint before the period whose stored tree edge reproduces its
        // signed root; without one (none yet, or one signed before the tree), start at seq 1.
        if let candidate = trusted.last(where: { $0.seq < firstIn }), let root = candidate.rootHash,
            var edge = try? AuditTree.range(at: candidate.seq - 1, tenant: tenant, connection: connection)
        {
            let before = edge
            edge.append(MerkleTree.leafHash(candidate.headHash))
            if edge.root == root {
                anchor = candidate
                tree = before
            }
        }
        let end = trusted.first { $0.seq >= afterLast && $0.seq <= head.seq }
        verifier.restrict(startSeq: anchor?.seq ?? 1, endSeq: end?.seq, tree: tree)

        var kept: [AuditEntry] = []
        // Rows outside the period (the margins to the checkpoints around it) are only verified.
        let read = try AuditStream.rows(tenant, from: anchor?.seq ?? 1, through: end?.seq, connection: connection) { row in
            try verifier.consume(row: row)
            let seq = try row.seq()
            guard seq >= firstIn, seq < afterLast else { return }
            let entry = try row.entry()
            if entry.at < untilText, sinceText.map({ entry.at >= $0 }) ?? true, keep(entry) {
                kept.append(entry)
            }
        }
        return PeriodVerification(
            report: verifier.finish(), entries: kept, rowsRead: read, anchor: anchor?.seq, end: end?.seq, headSeq: head.seq)
    }

    /// Reads a bundle's entries (for tools and tests); throws on an unreadable line.
    public static func entries(in directory: URL) throws -> [AuditEntry] {
        let data = try Data(contentsOf: directory.appendingPathComponent(entriesFile))
        return try data.split(separator: 0x0A, omittingEmptySubsequences: true).map {
            try JSONDecoder().decode(CodableEntry.self, from: Data($0)).entry
        }
    }
}

// MARK: - JSON forms (snake_case, hashes in lowercase hex, NULL as null)

/// An entry in its JSON form (bundle lines and the HTTP API): snake_case, hashes in hex.
public struct CodableEntry: Codable, Sendable {
    public var entry: AuditEntry

    public init(_ entry: AuditEntry) { self.entry = entry }

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenant_id", seq, at, actor, action, target, outcome, requestID = "request_id", ip
        case userAgent = "user_agent", details, prevHash = "prev_hash", hash
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func bytes(_ key: CodingKeys) throws -> [UInt8] {
            guard let value = Hex.decode(try c.decode(String.self, forKey: key)) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not hex")
            }
            return value
        }
        entry = AuditEntry(
            tenantID: try c.decode(UUID.self, forKey: .tenantID), seq: try c.decode(Int64.self, forKey: .seq),
            at: try c.decode(String.self, forKey: .at), actor: try c.decodeIfPresent(String.self, forKey: .actor),
            action: try c.decode(String.self, forKey: .action), target: try c.decodeIfPresent(String.self, forKey: .target),
            outcome: try c.decode(String.self, forKey: .outcome),
            requestID: try c.decodeIfPresent(String.self, forKey: .requestID),
            ip: try c.decodeIfPresent(String.self, forKey: .ip), userAgent: try c.decodeIfPresent(String.self, forKey: .userAgent),
            details: try c.decode([String: AuditValue].self, forKey: .details),
            prevHash: try bytes(.prevHash), hash: try bytes(.hash))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(entry.tenantID.lowercasedString, forKey: .tenantID)
        try c.encode(entry.seq, forKey: .seq)
        try c.encode(entry.at, forKey: .at)
        try c.encode(entry.actor, forKey: .actor)
        try c.encode(entry.action, forKey: .action)
        try c.encode(entry.target, forKey: .target)
        try c.encode(entry.outcome, forKey: .outcome)
        try c.encode(entry.requestID, forKey: .requestID)
        try c.encode(entry.ip, forKey: .ip)
        try c.encode(entry.userAgent, forKey: .userAgent)
        try c.encode(entry.details, forKey: .details)
        try c.encode(Hex.encode(entry.prevHash), forKey: .prevHash)
        try c.encode(Hex.encode(entry.hash), forKey: .hash)
    }
}

/// A checkpoint in its JSON form (bundles and the HTTP API).
public struct CodableCheckpoint: Codable, Sendable {
    public var checkpoint: AuditCheckpoint

    public init(_ checkpoint: AuditCheckpoint) { self.checkpoint = checkpoint }

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenant_id", seq, headHash = "head_hash", previousCheckpointHash = "previous_checkpoint_hash"
        case signedAt = "signed_at", keyID = "key_id", publicKey = "public_key", signature
        case rootHash = "root_hash", note, cosignatures
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func bytes(_ key: CodingKeys) throws -> [UInt8] {
            guard let value = Hex.decode(try c.decode(String.self, forKey: key)) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not hex")
            }
            return value
        }
        checkpoint = AuditCheckpoint(
            tenantID: try c.decode(UUID.self, forKey: .tenantID), seq: try c.decode(Int64.self, forKey: .seq),
            headHash: try bytes(.headHash), previousCheckpointHash: try bytes(.previousCheckpointHash),
            signedAt: try c.decode(String.self, forKey: .signedAt), keyID: try c.decode(String.self, forKey: .keyID),
            publicKey: try bytes(.publicKey), signature: try bytes(.signature),
            rootHash: try c.decodeIfPresent(String.self, forKey: .rootHash).map {
                guard let value = Hex.decode($0), value.count == 32 else {
                    throw DecodingError.dataCorruptedError(forKey: .rootHash, in: c, debugDescription: "not a 32-byte hex hash")
                }
                return value
            },
            note: try c.decodeIfPresent(String.self, forKey: .note))
        checkpoint.cosignatures = try c.decodeIfPresent([String].self, forKey: .cosignatures) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(checkpoint.tenantID.lowercasedString, forKey: .tenantID)
        try c.encode(checkpoint.seq, forKey: .seq)
        try c.encode(Hex.encode(checkpoint.headHash), forKey: .headHash)
        try c.encode(Hex.encode(checkpoint.previousCheckpointHash), forKey: .previousCheckpointHash)
        try c.encode(checkpoint.signedAt, forKey: .signedAt)
        try c.encode(checkpoint.keyID, forKey: .keyID)
        try c.encode(Hex.encode(checkpoint.publicKey), forKey: .publicKey)
        try c.encode(Hex.encode(checkpoint.signature), forKey: .signature)
        // Absent (not null) for checkpoints signed before the Merkle tree, so old bundles read alike.
        try c.encodeIfPresent(checkpoint.rootHash.map(Hex.encode), forKey: .rootHash)
        try c.encodeIfPresent(checkpoint.note, forKey: .note)
        if !checkpoint.cosignatures.isEmpty { try c.encode(checkpoint.cosignatures, forKey: .cosignatures) }
    }
}

extension AuditBundle.Manifest {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decode(String.self, forKey: .format)
        version = try c.decode(Int.self, forKey: .version)
        encoding = try c.decode(String.self, forKey: .encoding)
        tenantID = try c.decode(UUID.self, forKey: .tenantID)
        exportedAt = try c.decode(String.self, forKey: .exportedAt)
        fromSeq = try c.decode(Int64.self, forKey: .fromSeq)
        head = try c.decode(Head.self, forKey: .head)
        entries = try c.decode(Int.self, forKey: .entries)
        files = try c.decode([String: String].self, forKey: .files)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(version, forKey: .version)
        try c.encode(encoding, forKey: .encoding)
        try c.encode(tenantID.lowercasedString, forKey: .tenantID)
        try c.encode(exportedAt, forKey: .exportedAt)
        try c.encode(fromSeq, forKey: .fromSeq)
        try c.encode(head, forKey: .head)
        try c.encode(entries, forKey: .entries)
        try c.encode(files, forKey: .files)
    }
}
