import Audit
import Foundation
import JSON
import Policy
import Postgres
import Sodium

/// What an export archive holds, written last into it as `manifest.json` and stored in
/// `data_export_requests.manifest`.
public struct ExportManifest: Codable, Sendable, Equatable {
    public struct File: Codable, Sendable, Equatable {
        public let name: String
        public let table: String
        public let format: String
        public let rows: Int
        public let bytes: Int64
        public let sha256: String
    }

    public var format = "privacy-gateway-export/1"
    public let tenant: String
    public let subject: String
    public let requestID: String?
    public let generatedAt: String
    public let policyVersion: String
    public let files: [File]
    /// Columns left out per table: ciphertexts and other bytea values (secrets are listed by name, never decrypted).
    public let withheldColumns: [String: [String]]
    public let encrypted: Bool
    /// The processors asked for the subject's data held outside Postgres (those declared
    /// `export_required`), each with its outcome, time and any reference it returned; nil when
    /// none was asked (older manifests too).
    public var processors: [ProcessorOutcome]? = nil

    enum CodingKeys: String, CodingKey {
        case format, tenant, subject, files, encrypted, processors
        case requestID = "request_id"
        case generatedAt = "generated_at"
        case policyVersion = "policy_version"
        case withheldColumns = "withheld_columns"
    }

    /// Rows per table (each table's CSV and JSON files hold the same rows).
    public var rowsByTable: [String: Int] {
        var counts: [String: Int] = [:]
        for file in files where file.format == "csv" { counts[file.table] = file.rows }
        return counts
    }
}

/// Progress of a running export or erasure, for a terminal progress line.
public struct PrivacyProgress: Sendable {
    public let table: String
    public let tableIndex: Int
    public let tableCount: Int
    public let rows: Int
}

extension PrivacyService {
    /// The archive's files (CSV and JSON) of the audit entries about the subject.
    public static let auditTrailFile = "audit_trail"
    /// The archive's file of inclusion proofs of those entries (``InclusionProofSet``).
    public static let auditTrailProofsFile = "audit_trail.proofs.json"

    /// Streams every row of the subject, table by table, into a ustar archive at `path` (a CSV
    /// and a JSON file per table, then `manifest.json` and `index.html`, the page to open first), in one consistent snapshot and constant
    /// memory. The archive appears at `path` only when complete (written beside it, then
    /// renamed); with a passphrase it is encrypted (``ArchiveEncryption``); with `sealedAtRestWith`
    /// it is sealed in the at-rest layout under that key instead.
    public func writeArchive(
        tenant: UUID, subject: UUID, to path: String, passphrase: String? = nil, sealedAtRestWith sealKey: SecureBytes? = nil,
        requestID: UUID? = nil, processors: [ProcessorOutcome] = [], progress: (@Sendable (PrivacyProgress) -> Void)? = nil
    ) async throws -> ExportManifest {
        let graph = self.graph
        let policyVersion = configuration.policyVersion
        let limits = configuration.encryptionLimits
        let encrypted = passphrase != nil || sealKey != nil
        // Before the snapshot, so that the checkpoint is in it: the proofs are built inside it.
        let unprovenReason = try await checkpointForExport(tenant: tenant)
        return try await run(tenant: tenant) { connection in
            let partial = path + ".partial"
            let plain = encrypted ? path + ".plain.partial" : partial
            defer { unlink(plain + ".json"); if encrypted { unlink(plain) } }
            let manifest: ExportManifest = try connection.transaction(isolation: .repeatableRead) { connection in
                try connection.simple("SET TRANSACTION READ ONLY")
                try Self.scope(connection, tenant: tenant, subject: subject)
                let generatedAt = try connection.query("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS t")
                    .first!.decode("t", as: String.self)
                let tar = try TarWriter(path: plain)
                var files: [ExportManifest.File] = []
                var withheld: [String: [String]] = [:]
                let nodes = graph.parentsFirst.filter(\.exported)
                // One query's rows as `<name>.csv` and `<name>.json`, streamed (COPY) into the archive.
                // The connection is a parameter, not a capture: a local function capturing a borrowed
                // noncopyable value crashes the Swift 6.3.1 compiler (SILGenCleanup).
                func export(
                    _ connection: borrowing Connection, _ name: String, selected: [(name: String, kind: RowEncoder.Kind, sql: String)],
                    from: String, index: Int
                ) throws -> Int {
                    let sql = "COPY (SELECT \(selected.map(\.sql).joined(separator: ", ")) FROM \(from)) TO STDOUT"
                    var encoder = RowEncoder(columns: selected.map { ($0.name, $0.kind) })
                    let jsonSide = try BufferedFile(creating: plain + ".json")
                    let jsonHash = BackgroundHasher()
                    try tar.begin(name + ".csv")
                    try tar.write(Array(selected.map(\.name).joined(separator: ",").utf8) + [0x0A])
                    var csv: [UInt8] = []
                    var json: [UInt8] = Array("[".utf8)
                    csv.reserveCapacity(1 << 17)
                    json.reserveCapacity(1 << 17)
                    var rows = 0
                    try connection.copyOut(sql) { row in
                        json.append(contentsOf: rows == 0 ? [0x0A] : [UInt8(ascii: ","), 0x0A])
                        encoder.encode(row, csv: &csv, json: &json)
                        rows += 1
                        if csv.count >= 1 << 16 { try tar.write(csv); csv.removeAll(keepingCapacity: true) }
                        if json.count >= 1 << 16 {
                            jsonHash.update(json)
                            try jsonSide.write(json)
                            json.removeAll(keepingCapacity: true)
                        }
                        if rows % 100_000 == 0 {
                            progress?(PrivacyProgress(table: name, tableIndex: index, tableCount: nodes.count + 1, rows: rows))
                        }
                    }
                    try tar.write(csv)
                    json.append(contentsOf: Array((rows == 0 ? "]\n" : "\n]\n").utf8))
                    jsonHash.update(json)
                    try jsonSide.write(json)
                    try jsonSide.flush()
                    let csvEntry = try tar.end()
                    files.append(
                        .init(name: csvEntry.name, table: name, format: "csv", rows: rows, bytes: csvEntry.bytes, sha256: csvEntry.sha256))
                    let jsonEntry = try tar.append(name + ".json", from: plain + ".json", sha256: jsonHash.finalize())
                    files.append(
                        .init(
                            name: jsonEntry.name, table: name, format: "json", rows: rows, bytes: jsonEntry.bytes, sha256: jsonEntry.sha256)
                    )
                    progress?(PrivacyProgress(table: name, tableIndex: index + 1, tableCount: nodes.count + 1, rows: rows))
                    return rows
                }
                for (index, node) in nodes.enumerated() {
                    let table = node.table
                    var selected: [(name: String, kind: RowEncoder.Kind, sql: String)] = []
                    for column in table.columns {
                        if column.type.canonical == "bytea" {
                            withheld[table.qualifiedName, default: []].append(column.name)
                            continue
                        }
                        let kind = RowEncoder.kind(of: column.type)
                        let quoted = "t0." + (try table.quotedColumn(column.name))
                        selected.append((column.name, kind, kind == .json ? "to_json(\(quoted))::text" : quoted))
                    }
                    let predicate = try graph.predicate(table, tenant: Self.tenantSetting, subject: Self.subjectSetting)
                    _ = try export(
                        connection, table.qualifiedName, selected: selected, from: "\(table.quotedName) t0 WHERE \(predicate)", index: index
                    )
                }
                // Art. 15(1)(c): who read or changed the subject's data, from the tenant's audit trail —
                // every entry about them (secrets read, consents changed, requests), with its hash to
                // find it in the chain. Secret names appear as the trail's keyed pseudonyms.
                _ = try export(
                    connection, Self.auditTrailFile,
                    selected: [
                        ("seq", .number, "t0.seq"),
                        ("at", .string, "to_char(t0.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"),
                        ("actor", .string, "t0.actor"), ("action", .string, "t0.action"), ("target", .string, "t0.target"),
                        ("outcome", .string, "t0.outcome"), ("request_id", .string, "t0.request_id"),
                        ("hash", .string, "encode(t0.hash, 'hex')"),
                    ],
                    from: """
                        public.audit_events t0 WHERE t0.tenant_id = \(Self.tenantSetting)
                          AND t0.details->>'user_id' = \(Self.subjectSetting)::text ORDER BY t0.seq
                        """, index: nodes.count)
                // The proofs of those entries against the newest signed checkpoint of the snapshot
                // (entries after it are listed as not yet provable), streamed into the archive 100
                // at a time: a long trail is never held in memory (~1.5 KB a proof). Read as the
                // login, which holds the audit grants.
                let seqs: [Int64] = try connection.query(
                    """
                    SELECT seq FROM public.audit_events t0 WHERE t0.tenant_id = \(Self.tenantSetting)
                      AND t0.details->>'user_id' = \(Self.subjectSetting)::text ORDER BY t0.seq
                    """
                ).rows.map { try $0.decode("seq") }
                try tar.begin(Self.auditTrailProofsFile)
                let counts = try Self.asLogin(connection) {
                    try InclusionProofSet.write(connection: connection, tenant: tenant, seqs: seqs, unprovenReason: unprovenReason) {
                        try tar.write($0)
                    }
                }
                let proofsEntry = try tar.end()
                files.append(
                    .init(
                        name: proofsEntry.name, table: Self.auditTrailFile, format: "proofs", rows: counts.proven,
                        bytes: proofsEntry.bytes, sha256: proofsEntry.sha256))
                var manifest = ExportManifest(
                    tenant: tenant.lowercasedString, subject: subject.lowercasedString, requestID: requestID?.lowercasedString,
                    generatedAt: generatedAt, policyVersion: policyVersion, files: files, withheldColumns: withheld,
                    encrypted: passphrase != nil)
                manifest.processors = processors.isEmpty ? nil : processors
                try tar.begin("manifest.json")
                try tar.write(try Self.canonicalJSON(manifest))
                try tar.end()
                try tar.begin("index.html")
                try tar.write(Array(ExportIndex.html(manifest).utf8))
                try tar.end()
                try tar.finish()
                return manifest
            }
            if let sealKey {
                try ArchiveEncryption.sealAtRest(source: plain, destination: partial, key: sealKey)
            } else if let passphrase {
                try ArchiveEncryption.encrypt(source: plain, destination: partial, passphrase: passphrase, limits: limits)
            }
            guard rename(partial, path) == 0 else { throw PrivacyError(.archive, "cannot move the archive into place at \(path)") }
            return manifest
        }
    }

    /// Checkpoints the log when this process has the signing key, so that every entry so far is
    /// provable in the export, and returns why entries after the newest checkpoint are not:
    /// without the key, or when the log cannot be checkpointed, those are listed with the reason.
    func checkpointForExport(tenant: UUID) async throws -> String {
        var reason = "this export was made without the signing key; the next checkpoint covers it"
        if let signingKey {
            do {
                // On the pool's own login (outside ``run``): checkpoints are the gateway's, not the worker's.
                _ = try await AuditCheckpointer(pool: pool, signingKey: signingKey, trustedKeys: configuration.auditTrustedKeys)
                    .checkpoint(tenant: tenant)
                reason = "recorded while this export was being made; the next checkpoint covers it"
            } catch let error as AuditError where error.code == .emptyChain {
                // No entries at all: nothing about the subject to prove.
            } catch let error as AuditError where error.code == .chainCorrupt {
                // The subject's access to their data does not wait on the audit log's repair.
                reason = "the log could not be checkpointed (it failed verification); an operator must look at it"
            }
        }
        return reason
    }

    static func canonicalJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
        try JSONCoding.encode(value)
    }
}
