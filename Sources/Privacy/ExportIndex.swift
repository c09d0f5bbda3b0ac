import Foundation

/// Text for HTML documents: the one escaper of the product (export indexes here, reports in Reports).
public enum HTMLText {
    /// `text` with `& < > " '` replaced by entities: safe in element content and quoted attributes.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}

/// `index.html`, the page a data subject opens first in their export: what is in it, table by table,
/// with row counts and links to each CSV and JSON file, readable offline (no script, no remote
/// resource) in any browser. Made from the manifest, so it never says more than the archive holds.
enum ExportIndex {
    static func html(_ manifest: ExportManifest) -> String {
        let e = HTMLText.escape
        var rows = ""
        var seen = Set<String>()
        for file in manifest.files where seen.insert(file.table).inserted {
            let links = manifest.files.filter { $0.table == file.table }
                .map { "<a href=\"\(e($0.name))\">\(e($0.format.uppercased()))</a>" }
                .joined(separator: " · ")
            rows +=
                "<tr><td>\(e(file.table))</td><td class=\"n\">\(manifest.rowsByTable[file.table] ?? file.rows)</td><td>\(links)</td></tr>\n"
        }
        var withheld = ""
        if !manifest.withheldColumns.isEmpty {
            let items = manifest.withheldColumns.keys.sorted().map { table in
                "<li>\(e(table)): \(manifest.withheldColumns[table]!.map(e).joined(separator: ", "))</li>"
            }.joined(separator: "\n")
            withheld = """
                <h2>Listed but not included</h2>
                <p>These columns hold encrypted values (for example secrets you stored). They are listed by name; their
                contents are not in this export.</p>
                <ul>
                \(items)
                </ul>

                """
        }
        var proofs = ""
        if let file = manifest.files.first(where: { $0.format == "proofs" }) {
            proofs = """
                <h2>Checking the record of who used your data</h2>
                <p><a href="\(e(file.name))">\(e(file.name))</a> proves that each of the \(file.rows) entries about you listed in
                \(e(file.table)) is in the operator's signed, append-only audit log: one RFC 9162 inclusion proof per entry,
                all against one checkpoint signed by the operator's key. Anyone can check it offline, with only this file
                and the operator's public key (ask the operator for it):</p>
                <p><code>privacyctl audit verify-proof \(e(file.name)) --trusted-key &lt;the operator's public key&gt;</code></p>
                <p>It names any entry that was changed or is missing from the signed log. Entries listed under
                <code>unproven</code> were recorded after that checkpoint was signed; the reason is given for each.</p>

                """
        }
        var processors = ""
        if let called = manifest.processors, !called.isEmpty {
            let items = called.map { processor -> String in
                let outcome: String
                switch processor.outcome ?? "" {
                case "confirmed": outcome = "sent or confirmed what it holds"
                case "refused": outcome = "refused"
                case "timed_out": outcome = "did not answer by its deadline"
                default: outcome = "no answer yet"
                }
                var reference = ""
                if let given = processor.reference {
                    // Shown as given (checked when recorded: printable, no quote or bracket; a link only https); never fetched.
                    reference =
                        PrivacyService.isLink(given)
                        ? " — <a href=\"\(e(given))\" rel=\"noreferrer noopener\">\(e(given))</a>"
                        : " — reference <code>\(e(given))</code>"
                }
                let detail = processor.detail.map { " (\(e($0)))" } ?? ""
                return "<tr><td>\(e(processor.name))</td><td>\(e(processor.dataKind))</td><td>\(outcome)\(detail)\(reference)</td>"
                    + "<td>\(e(processor.answeredAt ?? "—"))</td></tr>"
            }.joined(separator: "\n")
            processors = """
                <h2>Data held by other services</h2>
                <p>These services hold data about you for the operator and were asked for it. What each answered, and when:</p>
                <table>
                <thead><tr><th>Service</th><th>Holds</th><th>Answer</th><th>When (UTC)</th></tr></thead>
                <tbody>
                \(items)
                </tbody>
                </table>

                """
        }
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Your data export</title>
            <style>
            body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #111827; }
            table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e5e7eb; }
            td.n { text-align: right; font-variant-numeric: tabular-nums; } code { font-size: .9em; }
            </style>
            </head>
            <body>
            <h1>Your data export</h1>
            <p>Everything held about you (subject <code>\(e(manifest.subject))</code>) on \(e(manifest.generatedAt)), one table per row below.
            Each table is here twice: as CSV (opens in a spreadsheet) and as JSON.</p>
            <table>
            <thead><tr><th>Table</th><th class="n">Rows</th><th>Files</th></tr></thead>
            <tbody>
            \(rows)</tbody>
            </table>
            \(withheld)\(processors)\(proofs)<p><a href="manifest.json">manifest.json</a> lists every file with its size and SHA-256, the request
            (<code>\(e(manifest.requestID ?? "none"))</code>) and the version of the policies that chose what to include
            (<code>\(e(manifest.policyVersion))</code>).</p>
            </body>
            </html>

            """
    }
}
