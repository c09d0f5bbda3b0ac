import Foundation
import JSON
import Privacy
import Sodium

/// Summarises a deletion certificate (`data_deletion_requests.certificate`, DESIGN.md §9) and
/// checks its signature.
///
/// A certificate is Privacy's ``DeletionCertificate``: decoded as that type, its Ed25519 signature
/// is checked over the type's own signed bytes (``DeletionCertificate/signingMessage()``) with
/// the public keys the report was given — the stored `certificate_signature` must be the one
/// the certificate carries, and must verify; a non-null column proves nothing.
///
/// The report must never fail because a certificate has another shape (one written before this
/// format, or by hand): such a certificate is read leniently for what it states, and its
/// signature never counts as valid. Understood shapes (keys in snake_case or camelCase):
/// - `tables`: an array of `{table, strategy, rows|count|affected|deleted|anonymized|retained, basis|ground}`,
///   or an object `{"schema.table": {strategy, rows|count…}}` or `{"schema.table": count}`;
///   alternatively `counts: {table: n}` with `strategies: {table: strategy}`.
/// - `verification` (or `verified`, `verification_result`): a bool; a string (`passed`, `ok`,
///   `verified`, `failed`…); or an object with `passed|ok|verified|success` (bool), `result|status`
///   (string) or `remaining` (a count, or an object of counts — zero means passed).
/// - `audit_head`: a hex string, or `{seq, hash}`.
enum DeletionCertificateReader {
    static func summarize(_ text: String?, signature: [UInt8]?, keys: [[UInt8]], grounds: [String: String]) -> ErasureSummary {
        var summary = ErasureSummary(
            requestId: "", status: "", completedAt: nil, hasCertificate: text != nil, signed: false, signature: "missing",
            recognized: false, tables: [], totalRows: 0, verification: "unknown", verificationDetail: nil, auditHead: nil, note: nil)
        guard let text else {
            summary.note = "no certificate stored"
            return summary
        }
        if let certificate = try? DeletionCertificate.decode(json: text) {
            summary.signature = signatureState(certificate, stored: signature, keys: keys)
            summary.signed = summary.signature == "valid"
            summary.recognized = true
            summary.tables = certificate.tables.map { table in
                ErasedTable(
                    table: table.table, strategy: table.strategy, rows: Int(table.rows),
                    ground: table.ground ?? (table.strategy == "retain" ? grounds[table.table] : nil))
            }.sorted { $0.table < $1.table }
            summary.totalRows = summary.tables.compactMap(\.rows).reduce(0, +)
            let remaining = certificate.verification.remaining.values.reduce(0, +)
            summary.verification = certificate.verification.passed ? "passed" : "failed"
            if remaining > 0 { summary.verificationDetail = "\(remaining) subject rows remain" }
            summary.auditHead = "seq \(certificate.auditHead.seq) · \(certificate.auditHead.hash)"
            if summary.tables.isEmpty { summary.note = "the certificate lists no tables" }
            return summary
        }
        if signature != nil {
            // Not a certificate this gateway issues: nothing its signature could be checked over.
            summary.signature = keys.isEmpty ? "unchecked" : "invalid"
        }
        guard let object = (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)))?.objectValue else {
            summary.note = "the certificate is not a JSON object"
            return summary
        }
        let tables = readTables(object, grounds: grounds)
        summary.tables = tables.sorted { $0.table < $1.table }
        summary.totalRows = tables.compactMap(\.rows).reduce(0, +)
        let (verdict, detail) = readVerification(value(object, "verification", "verified", "verification_result", "verificationResult"))
        summary.verification = verdict
        summary.verificationDetail = detail
        summary.auditHead = readHead(value(object, "audit_head", "auditHead"))
        summary.recognized = !tables.isEmpty || verdict != "unknown"
        if !summary.recognized {
            summary.note = "certificate shape not recognised (keys: \(object.keys.sorted().joined(separator: ", ")))"
        } else if tables.isEmpty {
            summary.note = "the certificate lists no tables"
        }
        return summary
    }

    /// `valid`, `invalid`, `missing` or `unchecked` (see ``ErasureSummary/signature``).
    static func signatureState(_ certificate: DeletionCertificate, stored: [UInt8]?, keys: [[UInt8]]) -> String {
        var certificate = certificate
        switch (stored, certificate.signature) {
        case (nil, nil): return "missing"
        case (let stored?, let carried?):
            // The column and the certificate must name the same signature.
            guard Hex.decode(carried).map({ ConstantTime.equals($0, stored) }) == true else { return "invalid" }
        case (let stored?, nil):
            certificate.signature = Hex.encode(stored)
        case (nil, _):
            break
        }
        if keys.isEmpty { return "unchecked" }
        return keys.contains { certificate.verify(publicKey: $0) } ? "valid" : "invalid"
    }

    private static func value(_ object: [String: JSONValue], _ keys: String...) -> JSONValue? {
        for key in keys {
            if let found = object[key] {
                if case .null = found { continue }
                return found
            }
        }
        return nil
    }

    private static func rows(_ object: [String: JSONValue]) -> Int? {
        for key in ["rows", "count", "affected", "deleted", "anonymized", "anonymised", "retained", "changed", "row_count", "rowCount"] {
            if let number = object[key]?.integer { return number }
        }
        return nil
    }

    private static func strategyName(_ json: JSONValue?) -> String? {
        if let text = json?.stringValue { return text }
        if let object = json?.objectValue { return (object["kind"] ?? object["type"] ?? object["name"])?.stringValue }
        return nil
    }

    private static func readTables(_ object: [String: JSONValue], grounds: [String: String]) -> [ErasedTable] {
        func entry(_ name: String, _ strategy: String?, _ rows: Int?, _ ground: String?) -> ErasedTable {
            let strategy = strategy ?? "unknown"
            return ErasedTable(
                table: name, strategy: strategy, rows: rows,
                ground: ground ?? (strategy == "retain" ? grounds[name] ?? grounds["public." + name] : nil))
        }
        func ground(_ item: [String: JSONValue]) -> String? {
            value(item, "basis", "ground", "legal_basis", "legalBasis")?.stringValue ?? item["retain"]?.objectValue?["basis"]?.stringValue
        }
        let tables = value(object, "tables", "per_table", "perTable")
        if case .array(let list)? = tables {
            return list.compactMap { element -> ErasedTable? in
                guard let item = element.objectValue, let name = value(item, "table", "name")?.stringValue else { return nil }
                return entry(name, strategyName(value(item, "strategy", "erasure")), rows(item), ground(item))
            }
        }
        if let map = tables?.objectValue {
            return map.map { name, element in
                if let item = element.objectValue {
                    return entry(name, strategyName(value(item, "strategy", "erasure")), rows(item), ground(item))
                }
                return entry(name, nil, element.integer, nil)
            }
        }
        if let counts = value(object, "counts")?.objectValue {
            let strategies = value(object, "strategies")?.objectValue ?? [:]
            return counts.map { name, count in entry(name, strategyName(strategies[name]), count.integer, nil) }
        }
        return []
    }

    private static func verdict(_ text: String) -> String? {
        switch text.lowercased() {
        case "passed", "pass", "ok", "verified", "success", "succeeded", "clean", "true": return "passed"
        case "failed", "fail", "failure", "error", "false", "unverified": return "failed"
        default: return nil
        }
    }

    private static func readVerification(_ json: JSONValue?) -> (String, String?) {
        switch json {
        case .bool(let flag)?: return (flag ? "passed" : "failed", nil)
        case .string(let text)?: return (verdict(text) ?? "unknown", text)
        case .object(let object)?:
            let detail = value(object, "detail", "message", "details")?.stringValue
            for key in ["passed", "ok", "verified", "success", "clean"] {
                if case .bool(let flag)? = object[key] { return (flag ? "passed" : "failed", detail) }
            }
            if let text = value(object, "result", "status", "outcome")?.stringValue, let verdict = verdict(text) {
                return (verdict, detail ?? text)
            }
            if let remaining = object["remaining"] ?? object["remaining_rows"] {
                if let count = remaining.integer {
                    return (count == 0 ? "passed" : "failed", count == 0 ? detail : "\(count) subject rows remain")
                }
                if let map = remaining.objectValue {
                    let total = map.values.compactMap(\.integer).reduce(0, +)
                    return (total == 0 ? "passed" : "failed", total == 0 ? detail : "\(total) subject rows remain")
                }
            }
            return ("unknown", detail)
        default: return ("unknown", nil)
        }
    }

    private static func readHead(_ json: JSONValue?) -> String? {
        if let text = json?.stringValue { return text }
        if let object = json?.objectValue {
            switch (object["seq"]?.integer, object["hash"]?.stringValue) {
            case let (seq?, hash?): return "seq \(seq) · \(hash)"
            case let (seq?, nil): return "seq \(seq)"
            case let (nil, hash?): return hash
            default: return nil
            }
        }
        return nil
    }
}
