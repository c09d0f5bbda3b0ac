import Foundation

/// Who is asking, on whose secrets, as the gateway authenticated them.
public struct SecretCaller: Sendable {
    public enum Role: String, Sendable {
        case authenticated
        case serviceRole = "service_role"
    }

    public var tenant: UUID
    public var role: Role
    /// The subject whose secrets are reached: the JWT's `sub`, or for `service_role` the user it names.
    public var subject: UUID
    /// For the audit entry: `user:<uuid>` or `service_key:<uuid>`.
    public var actor: String
    public var requestID: String?
    public var ip: String?
    public var userAgent: String?

    public init(
        tenant: UUID, role: Role, subject: UUID, actor: String, requestID: String? = nil, ip: String? = nil, userAgent: String? = nil
    ) {
        self.tenant = tenant
        self.role = role
        self.subject = subject
        self.actor = actor
        self.requestID = requestID
        self.ip = ip
        self.userAgent = userAgent
    }

    /// The JWT claims the database's RLS sees for this request: the subject as `sub`.
    var claimsJSON: String {
        #"{"role":"\#(role.rawValue)","sub":"\#(subject.lowercasedString)"}"#
    }
}

/// A secret's metadata: never its value.
public struct SecretMetadata: Sendable, Codable, Equatable {
    public var serviceName: String
    public var version: Int
    public var createdAt: Date
    public var updatedAt: Date
    public var lastUsedAt: Date?
    public var deletedAt: Date?

    enum CodingKeys: String, CodingKey {
        case serviceName = "service_name"
        case version
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case lastUsedAt = "last_used_at"
        case deletedAt = "deleted_at"
    }
}

/// A secret with its opened value.
public struct SecretValue: Sendable {
    public var metadata: SecretMetadata
    /// The plaintext; hand it to the caller and let it go.
    public var value: String
}

/// A past (or the current) version of a secret, without its value.
public struct SecretVersion: Sendable, Codable, Equatable {
    public var version: Int
    public var createdAt: Date
    /// When a newer value replaced it; nil for the current version.
    public var supersededAt: Date?
    public var current: Bool

    enum CodingKeys: String, CodingKey {
        case version
        case createdAt = "created_at"
        case supersededAt = "superseded_at"
        case current
    }
}

/// One page of a subject's secrets, ordered by service name.
public struct SecretPage: Sendable, Codable, Equatable {
    public var secrets: [SecretMetadata]
    /// Pass as `after` for the next page; nil on the last page.
    public var next: String?
}
