import JSON
import Policy

extension JSONValue {
    /// The value as the policy engine sees a claim. Objects have no policy counterpart; they become
    /// their JSON text, which is what `auth.jwt() ->> 'name'` yields for them in Postgres.
    public var policyValue: PolicyValue {
        switch self {
        case .null: return .null
        case .bool(let value): return .bool(value)
        case .int(let value): return .int(value)
        case .double(let value): return .double(value)
        case .string(let value): return .text(value)
        case .array(let values): return .array(values.map(\.policyValue))
        case .object: return .text(jsonText)
        }
    }
}
