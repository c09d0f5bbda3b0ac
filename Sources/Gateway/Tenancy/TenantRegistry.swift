import Foundation
import Postgres
import Sodium

/// A tenant: one customer's isolated slice of every governed table.
public struct Tenant: Sendable, Codable, Equatable {
    public let id: UUID
    public let name: String
    public let createdAt: Date
    /// Whether an HS256 secret is configured (the secret itself is never returned).
    public let hasJWTSecret: Bool

    enum CodingKeys: String, CodingKey {
        case id, name
        case createdAt = "created_at"
        case hasJWTSecret = "has_jwt_secret"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.uuidString.lowercased(), forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(hasJWTSecret, forKey: .hasJWTSecret)
    }
}

/// The tenants table. Needs the owner role: request roles never see it.
public struct TenantRegistry: Sendable {
    private let pool: ConnectionPool

    /// HS256 secrets shorter than this are refused (RFC 7518 §3.2: at least the hash size).
    public static let minimumJWTSecretLength = 32

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    public func create(name: String, jwtSecret: String?) async throws -> Tenant {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, name.count <= 200 else {
            throw GatewayError.invalidInput("tenant name must be 1 to 200 characters")
        }
        if let jwtSecret, jwtSecret.utf8.count < Self.minimumJWTSecretLength {
            throw GatewayError.invalidInput(
                "the JWT secret is \(jwtSecret.utf8.count) bytes; HS256 needs at least \(Self.minimumJWTSecretLength)",
                hint: "generate one with: openssl rand -base64 48")
        }
        do {
            let row = try await pool.query(
                """
                INSERT INTO public.tenants (name, jwt_secret) VALUES ($1, $2)
                RETURNING id, name, created_at, jwt_secret IS NOT NULL AS has_secret
                """, [name, jwtSecret])
            return try Self.tenant(row.first!)
        } catch let error as PostgresError where error.sqlState == "23505" {
            throw GatewayError(.conflict, code: "23505", "a tenant named \"\(name)\" already exists")
        }
    }

    public func list() async throws -> [Tenant] {
        try await pool.query(
            "SELECT id, name, created_at, jwt_secret IS NOT NULL AS has_secret FROM public.tenants ORDER BY created_at, name"
        ).rows.map(Self.tenant)
    }

    private static func tenant(_ row: PostgresRow) throws -> Tenant {
        Tenant(id: try row.decode("id"), name: try row.decode("name"), createdAt: try row.decode("created_at"),
               hasJWTSecret: try row.decode("has_secret"))
    }
}
