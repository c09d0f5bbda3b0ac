import CLibPQ
import Foundation

/// Where and how to connect: a libpq connection URL (`postgresql://user@host:port/db?…`) or
/// key/value conninfo string, validated by libpq's own parser.
public struct PostgresConfiguration: Sendable, Hashable {
    /// The libpq keywords that were set, e.g. `host`, `port`, `user`, `dbname`.
    public private(set) var options: [String: String]
    /// Whether connections keep a cache of named prepared statements (the default). Off, every
    /// statement is sent unnamed (parsed and planned each time): for a pooler in transaction
    /// mode, such as pgbouncer 1.18, which may run the next transaction on another server
    /// connection, where a name prepared earlier does not exist. Not a libpq keyword.
    public var namedStatements = true

    /// Parses a URL or conninfo string. A malformed one is an `.invalidConfiguration` error
    /// with libpq's explanation; passwords are never echoed back.
    public init(_ connectionString: String) throws {
        let trimmed = connectionString.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else {
            throw PostgresError(.invalidConfiguration, "the database connection string is empty")
        }
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let parsed = PQconninfoParse(trimmed, &errorMessage) else {
            var reason = "libpq could not parse it"
            if let errorMessage {
                reason = Self.redacted(String(cString: errorMessage).trimmingCharacters(in: .whitespacesAndNewlines))
                PQfreemem(errorMessage)
            }
            throw PostgresError(.invalidConfiguration, "invalid database connection string: \(reason)")
        }
        defer { PQconninfoFree(parsed) }
        var options: [String: String] = [:]
        var cursor = parsed
        while let keyword = cursor.pointee.keyword {
            if let value = cursor.pointee.val { options[String(cString: keyword)] = String(cString: value) }
            cursor += 1
        }
        if let port = options["port"], port.split(separator: ",").contains(where: { UInt16($0) == nil }) {
            throw PostgresError(
                .invalidConfiguration, "invalid database connection string: port \"\(port)\" is not a number between 0 and 65535")
        }
        self.options = options
    }

    /// libpq's reason with every quoted span replaced by `"…"`: it quotes the token it could not
    /// parse, which can be the password (`invalid percent-encoded token: "s3cr%zz"`, `missing "="
    /// after "…"` in a conninfo string).
    static func redacted(_ reason: String) -> String {
        var text = "", quoted = false
        for character in reason {
            if character == "\"" {
                if !quoted { text += "\"…\"" }
                quoted.toggle()
            } else if !quoted {
                text.append(character)
            }
        }
        return text
    }

    public var user: String? { options["user"] }
    public var database: String? { options["dbname"] }
    public var host: String? { options["host"] }
    public var port: String? { options["port"] }

    /// The same server, as another role (the gateway's own login, say).
    public func with(user: String) -> PostgresConfiguration {
        var copy = self
        copy.options["user"] = user
        copy.options["password"] = nil
        return copy
    }

    /// The same server, another database.
    public func with(database: String) -> PostgresConfiguration {
        var copy = self
        copy.options["dbname"] = database
        return copy
    }

    /// The same configuration with one more libpq keyword set, e.g. `application_name`.
    public func with(_ keyword: String, _ value: String) -> PostgresConfiguration {
        var copy = self
        copy.options[keyword] = value
        return copy
    }

    /// A safe one-line description for logs and errors: no password.
    public var redacted: String {
        let user = options["user"] ?? "(default user)"
        let host = options["host"] ?? "(default host)"
        let port = options["port"].map { ":\($0)" } ?? ""
        let db = options["dbname"] ?? "(default database)"
        return "\(user)@\(host)\(port)/\(db)"
    }
}
