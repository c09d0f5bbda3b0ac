import Foundation

/// Who a request runs as: what the gateway puts into `SET LOCAL ROLE`, `request.jwt.claims` and
/// `request.tenant_id` for the same request.
///
/// `auth.uid()` is ``userID``, `auth.tenant_id()` is ``tenantID``, `auth.role()` is the `role`
/// claim and `auth.jwt() ->> 'x'` is claim `x` as text — as the Supabase helpers read them.
public struct AuthContext: Sendable, Hashable {
    /// The database role the request runs as (`anon`, `authenticated`, `service_role`); decides
    /// which policies apply through their `roles`.
    public var role: String { storage.role }
    public var userID: UUID? { storage.userID }
    public var tenantID: UUID? { storage.tenantID }
    /// The JWT claims. `sub` and `role` are filled in from ``userID`` and ``role`` when absent,
    /// as the gateway writes them into `request.jwt.claims`.
    public var claims: [String: PolicyValue] { storage.claims }

    /// One reference instead of a dozen fields: a decision copies the context, and each copied
    /// field would cost a retain and a release.
    private let storage: Storage

    var uidValue: PolicyValue { storage.uidValue }
    var tenantValue: PolicyValue { storage.tenantValue }
    var roleClaimValue: PolicyValue { storage.roleClaimValue }

    public init(role: String, userID: UUID? = nil, tenantID: UUID?, claims: [String: PolicyValue] = [:]) {
        var claims = claims
        var userID = userID
        if userID == nil, case .text(let sub)? = claims["sub"] {
            userID = UUID(uuidString: sub)
        } else if userID == nil, case .uuid(let sub)? = claims["sub"] {
            userID = sub
        }
        if claims["sub"] == nil, let userID {
            claims["sub"] = .text(userID.uuidString.lowercased())
        }
        if claims["role"] == nil {
            claims["role"] = .text(role)
        }
        storage = Storage(
            role: role, userID: userID, tenantID: tenantID, claims: claims, uidValue: PolicyValue(userID),
            tenantValue: PolicyValue(tenantID), roleClaimValue: claims["role"]?.textValue.map(PolicyValue.text) ?? .null)
    }

    /// `auth.jwt() ->> name`: the claim as text, or NULL.
    func claimText(_ name: String) -> PolicyValue {
        guard let value = storage.claims[name], let text = value.textValue else { return .null }
        return .text(text)
    }

    public static func == (lhs: AuthContext, rhs: AuthContext) -> Bool {
        lhs.role == rhs.role && lhs.userID == rhs.userID && lhs.tenantID == rhs.tenantID && lhs.claims == rhs.claims
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(role)
        hasher.combine(userID)
        hasher.combine(tenantID)
        hasher.combine(claims)
    }

    private final class Storage: Sendable {
        let role: String
        let userID: UUID?
        let tenantID: UUID?
        let claims: [String: PolicyValue]
        let uidValue: PolicyValue
        let tenantValue: PolicyValue
        let roleClaimValue: PolicyValue

        init(
            role: String, userID: UUID?, tenantID: UUID?, claims: [String: PolicyValue], uidValue: PolicyValue,
            tenantValue: PolicyValue, roleClaimValue: PolicyValue
        ) {
            self.role = role
            self.userID = userID
            self.tenantID = tenantID
            self.claims = claims
            self.uidValue = uidValue
            self.tenantValue = tenantValue
            self.roleClaimValue = roleClaimValue
        }
    }
}
