import Foundation

/// One `NNNN_name.sql` file of the migrations directory.
public struct Migration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let fileName: String
    public let sql: String
}

/// Where a migration stands against a database.
public struct MigrationStatus: Sendable, Hashable {
    public enum State: String, Sendable {
        /// Applied, and the file is unchanged since.
        case applied
        /// In the directory, not yet applied.
        case pending
        /// Applied, but the file has changed since: refused until resolved by a human.
        case changed
        /// Recorded as applied, but its file is gone from the directory.
        case missing
    }
    public let version: Int
    public let name: String
    public let state: State
    public let appliedAt: Date?
}

/// Applies `migrations/NNNN_name.sql` in order, each in its own transaction, as the owner role.
///
/// Records version, name, SHA-256 and time in `public.schema_migrations`. A session advisory
/// lock serialises concurrent runners on the same database. An applied migration whose file
/// changed is refused — by name — before anything is applied.
public struct MigrationRunner: Sendable {
    public let directory: URL
    private let pool: ConnectionPool

    /// The advisory lock key that serialises runners (any constant unlikely to collide).
    static let lockKey: Int64 = 0x7072_6976_6163_7967  // "privacyg"

    public init(directory: URL, pool: ConnectionPool) {
        self.directory = directory
        self.pool = pool
    }

    /// Reads and validates the directory: names must be `NNNN_lowercase_name.sql`, versions unique.
    public func loadMigrations() throws -> [Migration] {
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw PostgresError(.migration, "cannot read migrations directory \(directory.path): it does not exist or is not readable")
        }
        var migrations: [Migration] = []
        for file in files.sorted() where !file.hasPrefix(".") {
            guard file.hasSuffix(".sql") else { continue }
            guard let migration = try Self.parse(fileName: file, in: directory) else {
                throw PostgresError(
                    .migration,
                    "migration file name \"\(file)\" is invalid: expected NNNN_name.sql (four digits, underscore, lowercase letters, digits or underscores)"
                )
            }
            if let clash = migrations.first(where: { $0.version == migration.version }) {
                throw PostgresError(.migration, "migrations \(clash.fileName) and \(file) share version \(migration.version)")
            }
            migrations.append(migration)
        }
        return migrations
    }

    private static func parse(fileName: String, in directory: URL) throws -> Migration? {
        let stem = fileName.dropLast(4)
        let parts = stem.split(separator: "_", maxSplits: 1)
        guard parts.count == 2, parts[0].count == 4, let version = Int(parts[0]),
            !parts[1].isEmpty,
            parts[1].allSatisfy({ ($0.isLetter && $0.isLowercase && $0.isASCII) || $0.isNumber || $0 == "_" })
        else { return nil }
        let url = directory.appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw PostgresError(.migration, "cannot read migration \(fileName)")
        }
        guard let sql = String(data: data, encoding: .utf8) else {
            throw PostgresError(.migration, "migration \(fileName) is not valid UTF-8")
        }
        return Migration(version: version, name: String(parts[1]), fileName: fileName, sql: sql)
    }

    /// Applied, pending, changed and missing migrations, in version order.
    public func status() async throws -> [MigrationStatus] {
        let migrations = try loadMigrations()
        return try await pool.withConnection { connection in
            try await connection.run { connection in
                try Self.ensureTable(connection)
                return try Self.compare(
                    migrations, with: try Self.applied(connection), checksums: try Self.checksums(of: migrations, on: connection))
            }
        }
    }

    /// Applies every pending migration. Returns those applied (empty when up to date).
    ///
    /// `progress` is called before each migration is applied.
    @discardableResult
    public func migrate(progress: @escaping @Sendable (Migration) -> Void = { _ in }) async throws -> [Migration] {
        let migrations = try loadMigrations()
        return try await pool.withConnection { connection in
            try await connection.run { connection in
                try connection.query("SELECT pg_advisory_lock($1)", [Self.lockKey])
                defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [Self.lockKey]) }
                try Self.ensureTable(connection)
                let checksums = try Self.checksums(of: migrations, on: connection)
                let states = try Self.compare(migrations, with: try Self.applied(connection), checksums: checksums)
                if let changed = states.first(where: { $0.state == .changed }) {
                    let file = migrations.first { $0.version == changed.version }?.fileName ?? "\(changed.version)"
                    var error = PostgresError(
                        .migration, "\(file) was changed after it was applied; restore the applied version and add a new migration instead")
                    error.migration = file
                    throw error
                }
                var applied: [Migration] = []
                for migration in migrations where states.contains(where: { $0.version == migration.version && $0.state == .pending }) {
                    progress(migration)
                    try Self.apply(migration, checksum: checksums[migration.version]!, on: connection)
                    applied.append(migration)
                }
                return applied
            }
        }
    }

    /// Whether every given migration has been applied (for `/ready`; pass ``loadMigrations()``'s
    /// result, read once at start-up). Needs only SELECT on `schema_migrations`.
    public func isCurrent(_ migrations: [Migration]) async throws -> Bool {
        let result = try await pool.query("SELECT version FROM public.schema_migrations")
        let applied = Set(try result.rows.map { try $0.decode("version", as: Int.self) })
        return migrations.allSatisfy { applied.contains($0.version) }
    }

    // MARK: - Steps (run on the connection's thread)

    private static func ensureTable(_ connection: borrowing Connection) throws {
        try connection.simple(
            """
            CREATE TABLE IF NOT EXISTS public.schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                execution_ms integer NOT NULL DEFAULT 0
            )
            """)
    }

    private static func applied(_ connection: borrowing Connection) throws -> [(
        version: Int, name: String, checksum: String, appliedAt: Date
    )] {
        try connection.query("SELECT version, name, checksum, applied_at FROM public.schema_migrations ORDER BY version").rows.map {
            (try $0.decode("version"), try $0.decode("name"), try $0.decode("checksum"), try $0.decode("applied_at"))
        }
    }

    /// SHA-256 of each file, computed by the server so the module needs no crypto of its own.
    private static func checksums(of migrations: [Migration], on connection: borrowing Connection) throws -> [Int: String] {
        guard !migrations.isEmpty else { return [:] }
        let statements = migrations.map {
            Statement("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') AS checksum", [$0.sql])
        }
        let results = try connection.pipeline(statements)
        var checksums: [Int: String] = [:]
        for (migration, result) in zip(migrations, results) {
            checksums[migration.version] = try result.first!.decode("checksum")
        }
        return checksums
    }

    private static func compare(
        _ migrations: [Migration], with applied: [(version: Int, name: String, checksum: String, appliedAt: Date)],
        checksums: [Int: String]
    ) throws -> [MigrationStatus] {
        var statuses: [MigrationStatus] = []
        let appliedByVersion = Dictionary(uniqueKeysWithValues: applied.map { ($0.version, $0) })
        for migration in migrations {
            if let record = appliedByVersion[migration.version] {
                let state: MigrationStatus.State = record.checksum == checksums[migration.version] ? .applied : .changed
                statuses.append(
                    MigrationStatus(version: migration.version, name: migration.name, state: state, appliedAt: record.appliedAt))
            } else {
                statuses.append(MigrationStatus(version: migration.version, name: migration.name, state: .pending, appliedAt: nil))
            }
        }
        for record in applied where !migrations.contains(where: { $0.version == record.version }) {
            statuses.append(MigrationStatus(version: record.version, name: record.name, state: .missing, appliedAt: record.appliedAt))
        }
        return statuses.sorted { $0.version < $1.version }
    }

    private static func apply(_ migration: Migration, checksum: String, on connection: borrowing Connection) throws {
        let started = ContinuousClock.now
        do {
            try connection.transaction { connection in
                try connection.simple(migration.sql)
                let elapsed = ContinuousClock.now - started
                try connection.query(
                    "INSERT INTO public.schema_migrations (version, name, checksum, execution_ms) VALUES ($1, $2, $3, $4)",
                    [
                        migration.version, migration.name, checksum,
                        Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000),
                    ])
            }
        } catch var error as PostgresError {
            error.migration = migration.fileName
            if let position = error.position { error.line = line(ofCharacter: position, in: migration.sql) }
            throw error
        }
    }

    /// The 1-based line of a 1-based character position (the server counts characters, not bytes).
    static func line(ofCharacter position: Int, in text: String) -> Int {
        var line = 1
        for (offset, character) in text.enumerated() {
            if offset >= position - 1 { break }
            if character == "\n" || character == "\r\n" { line += 1 }
        }
        return line
    }
}
