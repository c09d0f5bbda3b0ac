import Foundation
import JSON

/// The report's three forms. Pure functions of a ``ComplianceReport``.
public enum ReportFormat: String, Sendable, CaseIterable {
    case json, md, html

    /// The HTTP content type of this form.
    public var contentType: String {
        switch self {
        case .json: return "application/json; charset=utf-8"
        case .md: return "text/markdown; charset=utf-8"
        case .html: return "text/html; charset=utf-8"
        }
    }
}

public enum ReportRenderer {
    /// How an erasure's certificate signature reads in the Markdown and HTML reports.
    static func signatureText(_ erasure: ErasureSummary, html: Bool) -> String {
        switch erasure.signature {
        case "valid": return "signed certificate (signature verified)"
        case "invalid": return html ? "<span class=\"bad\">certificate signature INVALID</span>" : "certificate signature **INVALID**"
        case "unchecked": return "certificate signature not checked (no public key given)"
        default: return "certificate not signed"
        }
    }

    public static func render(_ report: ComplianceReport, as format: ReportFormat) -> String {
        switch format {
        case .json: return json(report)
        case .md: return markdown(report)
        case .html: return html(report)
        }
    }

    /// The documented JSON form (Sources/Reports/SCHEMA.md): snake_case keys, sorted, pretty.
    public static func json(_ report: ComplianceReport) -> String {
        let encoder = JSONCoding.encoder(pretty: true)
        encoder.keyEncodingStrategy = .convertToSnakeCase
        // The model holds only strings, numbers, bools and arrays: encoding cannot fail.
        return String(decoding: (try? encoder.encode(report)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }

    /// Reads the JSON form back (for tools and tests).
    public static func decode(json data: Data) throws -> ComplianceReport {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(ComplianceReport.self, from: data)
    }

    // MARK: - Shared wording

    static func consentLabel(_ column: String) -> String {
        column.replacingOccurrences(of: "_consent", with: "").replacingOccurrences(of: "_", with: " ").capitalizedFirst
    }

    static func days(_ value: Double?) -> String {
        guard let value else { return "–" }
        return String(format: "%.2f d", value)
    }

    static func percent(_ rate: Double) -> String { String(format: "%.0f%%", rate * 100) }

    /// `2026-11-22T09:52:01Z` → `2026-11-22 09:52`.
    static func shortTime(_ text: String?) -> String {
        guard let text else { return "–" }
        guard text.count >= 16 else { return text }
        return text.prefix(10) + " " + text.dropFirst(11).prefix(5)
    }

    static func shortID(_ id: String) -> String { String(id.prefix(8)) }

    static func shortPseudonym(_ name: String) -> String {
        name.hasPrefix("hmac:") && name.count > 17 ? String(name.prefix(17)) + "…" : name
    }
}

extension String {
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
