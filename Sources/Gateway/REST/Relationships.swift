import Foundation
import Policy
import Postgres
import Synchronization

/// The foreign keys between governed tables, which resource embedding follows.
///
/// Read from `pg_catalog` on the first embedding request and kept, as PostgREST's schema cache
/// does, rather than declared again in the policy files: the constraints are already the
/// database's authoritative statement of how tables relate, and a copy in YAML could only
/// drift from them. A relationship exposes nothing by itself — every embedded table is still
/// read under its own policies, its RLS and its `rest:` exposure — so the catalogue needs no
/// review of its own. Only constraints whose both ends have a policy file count.
struct RelationshipCatalog: Sendable, Equatable {
    struct ForeignKey: Sendable, Hashable {
        /// The constraint's name, usable as a `!hint`.
        let name: String
        let table: String
        let columns: [String]
        let referencedTable: String
        let referencedColumns: [String]
    }

    let foreignKeys: [ForeignKey]
    /// Column sets of each table's primary key and unique constraints/indexes.
    let uniqueKeys: [String: [Set<String>]]

    static let empty = RelationshipCatalog(foreignKeys: [], uniqueKeys: [:])

    /// The `public` schema's foreign keys and unique keys between governed tables. Any role may
    /// read these catalogues; the gateway's own login does.
    static func read(from pool: ConnectionPool, policies: PolicySet) async throws -> RelationshipCatalog {
        let results = try await pool.withConnection { connection in
            try await connection.pipeline([
                Statement(
                    """
                    SELECT c.conname::text AS name, src.relname::text AS source, dst.relname::text AS target,
                           array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n)
                                 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n) AS columns,
                           array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(attnum, n)
                                 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.n) AS referenced
                    FROM pg_catalog.pg_constraint c
                    JOIN pg_catalog.pg_class src ON src.oid = c.conrelid
                    JOIN pg_catalog.pg_class dst ON dst.oid = c.confrelid
                    JOIN pg_catalog.pg_namespace ns ON ns.oid = src.relnamespace
                    JOIN pg_catalog.pg_namespace nd ON nd.oid = dst.relnamespace
                    WHERE c.contype = 'f' AND ns.nspname = 'public' AND nd.nspname = 'public'
                    ORDER BY c.conname
                    """),
                Statement(
                    """
                    SELECT t.relname::text AS tablename,
                           array(SELECT a.attname::text FROM unnest(i.indkey) k(attnum)
                                 JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) AS columns
                    FROM pg_catalog.pg_index i
                    JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
                    JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
                    WHERE i.indisunique AND i.indpred IS NULL AND n.nspname = 'public'
                    """),
            ])
        }
        let governed = Set(policies.tables.filter { $0.schema == "public" }.map(\.name))
        let keys = try results[0].rows.compactMap { row -> ForeignKey? in
            let key = ForeignKey(
                name: try row.decode("name"), table: try row.decode("source"),
                columns: try row.decode("columns", as: PostgresTextArray.self).elements.compactMap { $0 },
                referencedTable: try row.decode("target"),
                referencedColumns: try row.decode("referenced", as: PostgresTextArray.self).elements.compactMap { $0 })
            return governed.contains(key.table) && governed.contains(key.referencedTable) ? key : nil
        }
        var unique: [String: [Set<String>]] = [:]
        for row in results[1].rows {
            let table: String = try row.decode("tablename")
            guard governed.contains(table) else { continue }
            unique[table, default: []].append(Set(try row.decode("columns", as: PostgresTextArray.self).elements.compactMap { $0 }))
        }
        return RelationshipCatalog(foreignKeys: keys, uniqueKeys: unique)
    }

    /// How `source` reaches `target`: one of its foreign keys, seen from one end, or two
    /// foreign keys of a junction table.
    struct Relationship: Sendable, Hashable {
        enum Cardinality: String, Sendable {
            case manyToOne = "many-to-one", oneToMany = "one-to-many", oneToOne = "one-to-one", manyToMany = "many-to-many"
        }
        let foreignKey: ForeignKey
        let cardinality: Cardinality
        /// Pairs (source column, target column) that must be equal; for many-to-many, (source
        /// column, junction column).
        let pairs: [(source: String, target: String)]
        /// Many-to-many: the junction's key to the target, as (junction column, target column).
        let junction: (foreignKey: ForeignKey, pairs: [(junction: String, target: String)])?

        init(foreignKey: ForeignKey, cardinality: Cardinality, pairs: [(source: String, target: String)]) {
            self.foreignKey = foreignKey
            self.cardinality = cardinality
            self.pairs = pairs
            self.junction = nil
        }

        init(toJunction: ForeignKey, fromJunction: ForeignKey) {
            self.foreignKey = toJunction
            self.cardinality = .manyToMany
            self.pairs = Array(zip(toJunction.referencedColumns, toJunction.columns))
            self.junction = (fromJunction, Array(zip(fromJunction.columns, fromJunction.referencedColumns)))
        }

        var isToOne: Bool { cardinality == .manyToOne || cardinality == .oneToOne }
        /// The name a `!hint` matches: the junction table for many-to-many, else the constraint.
        var names: [String] {
            junction.map { [foreignKey.table, foreignKey.name, $0.foreignKey.name] } ?? [foreignKey.name] + foreignKey.columns
        }
        var described: String {
            guard let junction else {
                return
                    "\(cardinality.rawValue) via \(foreignKey.name) (\(foreignKey.table)(\(foreignKey.columns.joined(separator: ", "))) → \(foreignKey.referencedTable)(\(foreignKey.referencedColumns.joined(separator: ", "))))"
            }
            return "many-to-many through \(foreignKey.table) (\(foreignKey.name), \(junction.foreignKey.name))"
        }
        /// What the hint names in PostgREST's PGRST201 choices.
        var hint: String { junction == nil ? foreignKey.name : foreignKey.table }

        static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.foreignKey == rhs.foreignKey && lhs.cardinality == rhs.cardinality && lhs.junction?.foreignKey == rhs.junction?.foreignKey
        }
        func hash(into hasher: inout Hasher) { hasher.combine(foreignKey) }
    }

    /// Every relationship between `source` and `target` over one foreign key, either way.
    func relationships(from source: String, to target: String) -> [Relationship] {
        var found: [Relationship] = []
        for key in foreignKeys {
            if key.table == source, key.referencedTable == target {
                found.append(
                    Relationship(
                        foreignKey: key, cardinality: .manyToOne, pairs: Array(zip(key.columns, key.referencedColumns))))
            } else if key.referencedTable == source, key.table == target {
                // One-to-one when the referencing columns are themselves unique.
                let oneToOne = uniqueKeys[target, default: []].contains(Set(key.columns))
                found.append(
                    Relationship(
                        foreignKey: key, cardinality: oneToOne ? .oneToOne : .oneToMany,
                        pairs: Array(zip(key.referencedColumns, key.columns))))
            }
        }
        // Many-to-many: a third table with a foreign key to each whose columns together are part
        // of one of its unique keys (its primary key, typically), as PostgREST finds junctions —
        // a table that merely references both (conversation_messages: brands and sessions) is not one.
        for toJunction in foreignKeys where toJunction.referencedTable == source && toJunction.table != source && toJunction.table != target
        {
            for fromJunction in foreignKeys
            where fromJunction.table == toJunction.table && fromJunction.referencedTable == target && fromJunction != toJunction {
                let linked = Set(toJunction.columns + fromJunction.columns)
                guard uniqueKeys[toJunction.table, default: []].contains(where: { linked.isSubset(of: $0) }) else { continue }
                found.append(Relationship(toJunction: toJunction, fromJunction: fromJunction))
            }
        }
        return found
    }
}

/// The catalogue, read on first use and shared by every request, kept in step with the schema
/// while the gateway runs (migrations apply under a running gateway):
/// - a relationship a request names but the catalogue lacks (PGRST200) makes the handler call
///   ``refresh(pool:policies:)`` and plan once more, so a foreign key added by a migration embeds
///   on its first use;
/// - a catalogue older than ``maximumAge`` is read again before use, so a dropped or changed key
///   stops counting within that time. Until then the stale relationship still joins on its
///   columns under every embedded table's policies: staleness can refuse or answer a shape, never
///   widen what a caller sees.
/// A read is two small catalogue queries (pg_constraint, pg_index of `public`); concurrent
/// requests share one read in flight.
final class RelationshipCache: Sendable {
    /// 10 s: one catalogue read per 10 s per process at most, besides misses.
    static let defaultMaximumAge: Duration = .seconds(10)

    /// Reads after misses: a burst of ``missBurst``, then one per ``missInterval`` — a caller naming
    /// relationships that do not exist (random `!hint`s on real tables) cannot make every request a
    /// catalogue read. A foreign key a migration adds still embeds on first use, or within
    /// ``missInterval`` under such a flood.
    static let missBurst = 4.0
    static let missInterval: Duration = .seconds(1)

    private struct State {
        var catalog: RelationshipCatalog?
        var readAt: ContinuousClock.Instant?
        var reading: Task<RelationshipCatalog, any Error>?
        var missTokens = RelationshipCache.missBurst
        var tokensAt = ContinuousClock.now
        /// Catalogue reads so far (tests).
        var reads = 0
    }

    private let state = Mutex(State())
    let maximumAge: Duration

    init(maximumAge: Duration = RelationshipCache.defaultMaximumAge) {
        self.maximumAge = maximumAge
    }

    func catalog(pool: ConnectionPool, policies: PolicySet) async throws -> RelationshipCatalog {
        let now = ContinuousClock.now
        if let catalog = state.withLock({ state -> RelationshipCatalog? in
            guard let readAt = state.readAt, now - readAt <= maximumAge else { return nil }
            return state.catalog
        }) {
            return catalog
        }
        return try await refresh(pool: pool, policies: policies)
    }

    /// Catalogue reads this cache has made.
    var reads: Int { state.withLock { $0.reads } }

    /// After a miss: reads the catalogue again if the miss budget allows (``missBurst``), else
    /// answers the catalogue it has.
    func refreshAfterMiss(pool: ConnectionPool, policies: PolicySet) async throws -> RelationshipCatalog {
        let now = ContinuousClock.now
        let kept = state.withLock { state -> RelationshipCatalog? in
            let elapsed = now - state.tokensAt
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let interval = Double(Self.missInterval.components.seconds)
            state.missTokens = min(Self.missBurst, state.missTokens + seconds / interval)
            state.tokensAt = now
            guard state.missTokens < 1, let catalog = state.catalog else {
                state.missTokens -= 1
                return nil
            }
            return catalog
        }
        if let kept { return kept }
        return try await refresh(pool: pool, policies: policies)
    }

    /// Reads the catalogue again (joining a read already in flight) and keeps it.
    func refresh(pool: ConnectionPool, policies: PolicySet) async throws -> RelationshipCatalog {
        let task = state.withLock { state -> Task<RelationshipCatalog, any Error> in
            if let reading = state.reading { return reading }
            let reading = Task { try await RelationshipCatalog.read(from: pool, policies: policies) }
            state.reading = reading
            state.reads += 1
            return reading
        }
        do {
            let catalog = try await task.value
            state.withLock { state in
                state.catalog = catalog
                state.readAt = .now
                state.reading = nil
            }
            return catalog
        } catch {
            state.withLock { $0.reading = nil }
            throw error
        }
    }
}
