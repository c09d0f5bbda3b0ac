/// What a service key may do (DESIGN.md §3).
public enum Scope: String, Sendable, CaseIterable, Codable, Comparable {
    case dataRead = "data:read"
    case dataWrite = "data:write"
    case secretsRead = "secrets:read"
    case secretsWrite = "secrets:write"
    case privacyExport = "privacy:export"
    case privacyErase = "privacy:erase"
    case auditRead = "audit:read"
    case admin = "admin"

    public static func < (lhs: Scope, rhs: Scope) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Parses a scope name, with an error that lists the valid ones.
    public static func parse(_ text: String) throws -> Scope {
        guard let scope = Scope(rawValue: text) else {
            throw TenancyError.invalidInput(
                "unknown scope \"\(text)\"",
                hint: "valid scopes: \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return scope
    }
}
