import CLibPQ
import Foundation

/// A statement and its bind parameters. Values never enter the SQL text.
public struct Statement: Sendable {
    public var sql: String
    public var binds: [PostgresBind]

    public init(_ sql: String, _ parameters: [any PostgresEncodable] = []) {
        self.sql = sql
        self.binds = parameters.map(\.postgresBind)
    }

    /// What PostgREST does at the start of every request, in one statement: assume the request
    /// `role` and publish the JWT `claims` (JSON text) and the `tenant` for `auth.uid()`,
    /// `auth.jwt()` and `auth.tenant_id()` — all local to the current transaction, so RLS then
    /// decides as that caller.
    public static func assumeRequestRole(_ role: String, claims: String, tenant: UUID) -> Statement {
        Statement(
            "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), set_config('request.tenant_id', $3, true)",
            [role, claims, tenant.lowercasedString])
    }

    /// Makes the statements after it in the same pipeline (one implicit transaction) be planned
    /// with their parameters' values at every execution (`plan_cache_mode = force_custom_plan`,
    /// local to the transaction), as a PL/pgSQL function pins it with `SET` (migration 0035). For
    /// a statement whose best plan depends on those values — optional filters written
    /// `($n IS NULL OR …)`, a pattern — a plan cached without them may read a whole range to
    /// answer one page. Costs a plan per execution; statements without parameters are unaffected.
    public static let customPlans = Statement("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")
}

/// Transaction isolation levels, as Postgres spells them.
public enum IsolationLevel: String, Sendable {
    case readCommitted = "READ COMMITTED"
    case repeatableRead = "REPEATABLE READ"
    case serializable = "SERIALIZABLE"
}

/// A libpq connection, lent to the one piece of code that owns it right now.
///
/// A `Connection` exists only as a borrowed parameter: ``PooledConnection/run(_:)``,
/// ``ConnectionPool/transaction(isolation:_:)`` and ``transaction(isolation:_:)`` lend one to
/// their closure, on the thread that owns the libpq connection for that unit of work. It is
/// `~Copyable` and not `Sendable`, and nothing outside this module can make one, so the compiler
/// refuses to let it outlive the closure: it cannot be returned, stored, copied, or captured by an
/// escaping closure or another task (THREADING.md, "Who may call libpq").
///
/// Every statement is prepared once per connection and cached by its SQL text; every call is sent
/// in pipeline mode, so a batch of statements (a request's `BEGIN … COMMIT`) costs one round trip.
public struct Connection: ~Copyable {
    let libpq: LibPQConnection

    init(_ libpq: LibPQConnection) {
        self.libpq = libpq
    }

    /// Whether a transaction is open (or failed and awaiting ROLLBACK).
    public var inTransaction: Bool { libpq.inTransaction }

    /// Runs one parameterised statement.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) throws -> QueryResult {
        try libpq.pipeline([Statement(sql, parameters)])[0]
    }

    /// Sends all statements in one pipeline (one round trip) and returns their results in order.
    ///
    /// Outside an explicit transaction the statements run in one implicit transaction: if one
    /// fails, none of them takes effect and the first server error is thrown.
    /// `timeout` applies `statement_timeout` to these statements only.
    public func pipeline(_ statements: [Statement], timeout: Duration? = nil) throws -> [QueryResult] {
        try libpq.pipeline(statements, timeout: timeout)
    }

    /// Runs a script of one or more statements with the simple query protocol. No parameters: for
    /// migration files and fixed DDL only, never for text that contains values.
    public func simple(_ script: String) throws {
        try libpq.simple(script)
    }

    /// Runs `body` inside `BEGIN … COMMIT`; any error rolls back and is rethrown.
    public func transaction<T>(
        isolation: IsolationLevel = .readCommitted, _ body: (borrowing Connection) throws -> T
    ) throws -> T {
        try libpq.simple("BEGIN ISOLATION LEVEL \(isolation.rawValue)")
        do {
            let value = try body(self)
            try libpq.simple("COMMIT")
            return value
        } catch {
            if libpq.isConnected { try? libpq.simple("ROLLBACK") }
            throw error
        }
    }

    /// Streams `COPY (…) TO STDOUT` (any format) to `consume`, one server message (usually a row)
    /// at a time, in constant memory. Returns the number of rows copied.
    ///
    /// COPY takes no bind parameters; to scope it by a value, set a transaction-local setting with
    /// a bound `set_config` first and read it with `current_setting` in the query.
    /// If `consume` throws, the server is asked to cancel and the error is rethrown.
    @discardableResult
    public func copyOut(_ sql: String, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        try libpq.copyOut(sql, consume)
    }
}

/// One libpq connection. Not thread-safe and mostly blocking: one thread at a time uses it, as
/// `Sources/Postgres/THREADING.md` describes. Internal to this module: its owners are
/// ``PoolEntry`` (a checked-out connection, lent to callers only as a borrowed ``Connection``) and
/// ``SharedConnection`` (which touches it only under its lock).
final class LibPQConnection {
    private let handle: OpaquePointer
    /// Prepared statements by SQL text. `ready` once the server confirmed the Parse: until then
    /// (another pipeline on a shared connection may still be preparing it, and may fail) the
    /// statement is sent unnamed, so no pipeline ever depends on another's preparation.
    private var prepared: [String: (name: String, ready: Bool)] = [:]
    /// ``PostgresConfiguration/namedStatements``: off, nothing is prepared by name.
    private let namedStatements: Bool
    private var preparedBytes = 0
    private var nextStatementNumber = 0
    /// Set once the protocol state is no longer known to be clean (a lost connection, results that
    /// do not match what was sent, a send that failed half-way): the connection must not be reused.
    private(set) var isPoisoned = false
    /// How many round trips this connection has made.
    private(set) var roundTrips = 0

    /// Statements cached per connection before the cache is reset with `DEALLOCATE ALL`.
    static let preparedStatementLimit = 1000
    /// The cache's bound in bytes of SQL text (the server keeps a parse tree and plans per
    /// statement, several times the text): URLs with large, ever-different `or=(…)` lists must
    /// not grow a backend's memory without bound.
    static let preparedBytesLimit = 1 << 20
    /// Statements longer than this are never prepared by name: sent unnamed, planned each time.
    static let namedStatementMaxBytes = 8 * 1024

    /// Opens a connection, blocking until it is established or fails.
    init(configuration: PostgresConfiguration) throws {
        namedStatements = configuration.namedStatements
        var options = configuration.options
        // Deterministic text formats for decoding: UTC timestamps in ISO style.
        let sessionOptions = "-c TimeZone=UTC -c DateStyle=ISO,MDY -c client_encoding=UTF8"
        options["options"] = [options["options"], sessionOptions].compactMap { $0 }.joined(separator: " ")
        if options["application_name"] == nil { options["application_name"] = "privacy-gateway" }
        if options["connect_timeout"] == nil { options["connect_timeout"] = "10" }

        let keys = Array(options.keys)
        let keywords = keys.map { strdup($0) }
        let values = keys.map { strdup(options[$0]!) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        var keywordPointers = keywords.map { UnsafePointer($0) } + [nil]
        var valuePointers = values.map { UnsafePointer($0) } + [nil]
        guard let conn = PQconnectdbParams(&keywordPointers, &valuePointers, 0) else {
            throw PostgresError(.connectionFailed, "libpq could not allocate a connection")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = LibPQConnection.message(PQerrorMessage(conn))
            PQfinish(conn)
            throw PostgresError(
                .connectionFailed,
                "cannot connect to \(configuration.redacted): \(message)")
        }
        self.handle = conn
    }

    deinit { PQfinish(handle) }

    /// Whether the connection is usable, checked without a round trip; call it only while
    /// nothing is in flight. An idle connection is sent nothing unasked (nothing in this module
    /// LISTENs) except the server's last words before it closes the connection — 57P01 on a
    /// shutdown or `pg_terminate_backend` — whose end of file may not have arrived yet: a
    /// readable socket therefore means broken, and the connection is replaced before use.
    var isHealthy: Bool {
        guard !isPoisoned, PQstatus(handle) == CONNECTION_OK else { return false }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 0) == 0 else { return false }
        return true
    }

    /// Readies the connection for a new pool user: it must be alive (the server may have closed it
    /// while it sat idle), and a transaction its previous user left open is rolled back.
    /// Its errors are ``PostgresError/unsent``: the caller's work has not been sent yet.
    func prepareForNewUser() throws {
        guard isHealthy else { throw PostgresError.closedWhileIdle }
        if inTransaction {
            do { try simple("ROLLBACK") } catch var error as PostgresError {
                error.unsent = true
                throw error
            }
        }
    }

    /// Whether a transaction is open (or failed and awaiting ROLLBACK).
    var inTransaction: Bool {
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    // MARK: - Statements

    /// Whether libpq still counts the connection as connected.
    var isConnected: Bool { PQstatus(handle) == CONNECTION_OK }

    /// See ``Connection/pipeline(_:timeout:)``: send, wait on this thread, read.
    func pipeline(_ statements: [Statement], timeout: Duration? = nil) throws -> [QueryResult] {
        guard !statements.isEmpty else { return [] }
        let pending = try sendPipeline(statements, timeout: timeout)
        while try !readPipeline(pending) { try waitUntilReadable() }
        return try finishPipeline(pending)
    }

    /// Sends a pipeline without waiting for its results; ``readPipeline(_:)`` reads them as they
    /// arrive, ``finishPipeline(_:)`` hands them over. ``pipeline(_:timeout:)`` is the three in a
    /// row; ``PoolEntry`` sends on the caller's thread and lets ``PostgresReactor`` wait.
    ///
    /// `shared`: the connection stays in pipeline mode with other pipelines in flight (see
    /// ``SharedConnection``); nothing is deallocated then, and statements beyond the cache's
    /// bounds are sent unnamed.
    func sendPipeline(_ statements: [Statement], timeout: Duration? = nil, shared: Bool = false) throws -> PendingPipeline {
        precondition(!statements.isEmpty, "an empty pipeline")
        try refusePoisoned()
        try LibPQConnection.refuseNUL(statements)
        var batch = statements
        var trim = (first: false, last: false)
        if let timeout {
            let milliseconds = max(1, Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
            batch.insert(Statement("SELECT set_config('statement_timeout', $1, true)", ["\(milliseconds)ms"]), at: 0)
            trim.first = true
            if inTransaction {
                // A transaction-local setting would outlive these statements in an explicit transaction.
                batch.append(Statement("RESET statement_timeout"))
                trim.last = true
            }
        }
        // A full cache is emptied by a `DEALLOCATE ALL` at the head of this pipeline, not by a
        // round trip of its own: this may run on an event-loop thread, which must not block.
        var deallocate = false
        if !shared && namedStatements {
            let newBytes = batch.reduce(0) { $0 + (prepared[$1.sql] == nil ? $1.sql.utf8.count : 0) }
            if prepared.count + batch.count > LibPQConnection.preparedStatementLimit
                || preparedBytes + newBytes > LibPQConnection.preparedBytesLimit
            {
                deallocate = true
                prepared.removeAll()
                preparedBytes = 0
            }
        }

        roundTrips += 1
        if !shared {
            guard PQenterPipelineMode(handle) == 1 else {
                isPoisoned = true
                throw connectionError()
            }
        }
        let pending = PendingPipeline(trimFirst: trim.first, trimLast: trim.last)
        pending.sent.reserveCapacity(batch.count * 2 + 1)
        do {
            if deallocate {
                guard PQsendQueryParams(handle, "DEALLOCATE ALL", 0, nil, nil, nil, nil, 0) == 1 else { throw connectionError() }
                pending.sent.append(.internal)
            }
            for statement in batch {
                let bytes = statement.sql.utf8.count
                var name: String?
                if let cached = prepared[statement.sql] {
                    name = cached.ready ? cached.name : nil
                } else if namedStatements, bytes <= LibPQConnection.namedStatementMaxBytes,
                    !shared
                        || (prepared.count < LibPQConnection.preparedStatementLimit
                            && preparedBytes + bytes <= LibPQConnection.preparedBytesLimit)
                {
                    nextStatementNumber += 1
                    let fresh = "pg\(nextStatementNumber)"
                    guard PQsendPrepare(handle, fresh, statement.sql, 0, nil) == 1 else { throw connectionError() }
                    prepared[statement.sql] = (fresh, false)
                    preparedBytes += bytes
                    pending.sent.append(.prepare(sql: statement.sql, name: fresh))
                    name = fresh
                }
                let ok: Int32
                if let name {
                    ok = LibPQConnection.withBinds(statement.binds) { count, values, lengths, formats in
                        PQsendQueryPrepared(handle, name, count, values, lengths, formats, 0)
                    }
                } else {
                    // Unnamed: too large to keep, the cache is full, or its preparation is still in flight.
                    ok = LibPQConnection.withBinds(statement.binds) { count, values, lengths, formats in
                        PQsendQueryParams(handle, statement.sql, count, nil, values, lengths, formats, 0)
                    }
                }
                guard ok == 1 else { throw connectionError() }
                pending.sent.append(.execute)
            }
            guard PQpipelineSync(handle) == 1 else { throw connectionError() }
        } catch {
            // Part of the pipeline may be in libpq's buffer or on the wire, without its Sync:
            // what the server holds is unknown, so the connection is never used again.
            isPoisoned = true
            if !shared { _ = PQexitPipelineMode(handle) }
            throw error
        }
        return pending
    }

    /// Reads whatever has arrived for `pending` without blocking. Returns `true` once the whole
    /// pipeline has been read (then call ``finishPipeline(_:)``); `false` means: wait until the
    /// socket is readable and call again. Throws if the connection is lost.
    func readPipeline(_ pending: PendingPipeline) throws -> Bool {
        guard !pending.complete else { return true }
        try consumeInput(failing: pending)
        return try readAvailable(pending, shared: false)
    }

    /// Reads what the socket holds into libpq's buffer, without blocking.
    func consumeInput(failing pending: PendingPipeline?) throws {
        guard PQconsumeInput(handle) == 1 else {
            let error = connectionError()
            isPoisoned = true
            pending?.discard()
            throw error
        }
    }

    /// Hands `pending` the results libpq has already received, without reading the socket.
    /// Returns `true` once its Sync has come. `shared`: stay in pipeline mode afterwards.
    ///
    /// A pipeline ends at its `PGRES_PIPELINE_SYNC` and nowhere else. The NULLs libpq returns
    /// between results are not counted: libpq leaves one out when a command is appended while the
    /// pipeline is aborted (`pqAppendCmdQueueEntry` advances its queue early), and a commit that
    /// fails at the Sync adds a result after the last command's. Both once made a shared
    /// connection hand the pipeline behind a failed one a NULL or the failed one's Sync
    /// (THREADING.md, "Shared connections"). Each command sent gets exactly one result, in order.
    func readAvailable(_ pending: PendingPipeline, shared: Bool) throws -> Bool {
        var nullInARow = false
        while PQisBusy(handle) == 0 {
            guard let result = PQgetResult(handle) else {
                guard PQstatus(handle) == CONNECTION_OK else { throw poison(pending, connectionError()) }
                // Two NULLs with nothing between: libpq has nothing queued while this Sync is due.
                if nullInARow {
                    throw poison(
                        pending,
                        PostgresError(.connectionLost, "the database connection's pipeline lost its place; the connection is dropped"))
                }
                nullInARow = true
                continue
            }
            nullInARow = false
            let status = PQresultStatus(result)
            if status == PGRES_PIPELINE_SYNC {
                PQclear(result)
                guard pending.answered == pending.sent.count else {
                    throw poison(
                        pending,
                        PostgresError(
                            .connectionLost,
                            "the database answered a pipeline with fewer results than it was sent; the connection is dropped"))
                }
                pending.complete = true
                pending.synced = true
                if !shared, PQexitPipelineMode(handle) != 1 { isPoisoned = true }
                return true
            }
            guard pending.answered < pending.sent.count else {
                // After the last command: the implicit transaction's commit failed at the Sync
                // (a deferred constraint, a serialization failure). Its own Sync follows.
                if status == PGRES_FATAL_ERROR {
                    pending.fail(serverError(result))
                    PQclear(result)
                    continue
                }
                PQclear(result)
                throw poison(
                    pending,
                    PostgresError(
                        .connectionLost, "the database answered a pipeline with more results than it was sent; the connection is dropped"))
            }
            let index = pending.answered
            pending.answered += 1
            switch pending.sent[index] {
            case .prepare(let sql, let name):
                if status == PGRES_COMMAND_OK {
                    if prepared[sql]?.name == name { prepared[sql]!.ready = true }
                } else {
                    if prepared[sql]?.name == name {
                        prepared[sql] = nil
                        preparedBytes -= sql.utf8.count
                    }
                    if status == PGRES_FATAL_ERROR { pending.fail(serverError(result)) }
                }
                PQclear(result)
            case .internal:
                if status == PGRES_FATAL_ERROR { pending.fail(serverError(result)) }
                PQclear(result)
            case .execute:
                switch status {
                case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
                    pending.results.append(result)
                case PGRES_FATAL_ERROR:
                    pending.fail(serverError(result))
                    PQclear(result)
                case PGRES_PIPELINE_ABORTED:
                    PQclear(result)
                default:
                    // COPY and the like: libpq now waits for data this module never sends.
                    PQclear(result)
                    throw poison(
                        pending,
                        PostgresError(.server, "unexpected result status \(status.rawValue); COPY is only available through copyOut"))
                }
            }
        }
        return false
    }

    /// Nothing more is sent on a connection whose protocol state is in doubt.
    private func refusePoisoned() throws {
        if isPoisoned { throw PostgresError(.connectionLost, "this database connection was dropped after a protocol error") }
    }

    /// Marks the connection unusable after `error`, drops `pending`'s results, returns `error`.
    private func poison(_ pending: PendingPipeline, _ error: PostgresError) -> PostgresError {
        isPoisoned = true
        pending.discard()
        return error
    }

    /// The results of a pipeline ``readPipeline(_:)`` has read in full, or its first error.
    func finishPipeline(_ pending: PendingPipeline) throws -> [QueryResult] {
        precondition(pending.complete, "the pipeline has not been read yet")
        if pending.firstError != nil, PQstatus(handle) != CONNECTION_OK {
            pending.discard()
            isPoisoned = true
            throw connectionError()
        }
        return try pending.finish()
    }

    /// Whether the connection can go back to the pool: alive, out of pipeline mode, no command
    /// in progress, and nothing ever left its protocol state in doubt.
    var isReusable: Bool {
        guard !isPoisoned, PQstatus(handle) == CONNECTION_OK, PQpipelineStatus(handle) == PQ_PIPELINE_OFF else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_IDLE || status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// Puts the connection in pipeline mode for good (``SharedConnection``).
    func enterPipelineMode() throws {
        guard PQenterPipelineMode(handle) == 1 else { throw connectionError() }
    }

    /// The connection's socket, for waiting on it.
    var socket: Int32 { PQsocket(handle) }

    /// Blocks the calling thread until the server has sent something (or closed the connection).
    private func waitUntilReadable() throws {
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        while poll(&descriptor, 1, -1) < 0 {
            guard errno == EINTR else { throw PostgresError(.connectionLost, "waiting for the database failed (errno \(errno))") }
        }
    }

    /// See ``Connection/simple(_:)``.
    func simple(_ script: String) throws {
        try refusePoisoned()
        roundTrips += 1
        var lastError: PostgresError?
        guard PQsendQuery(handle, script) == 1 else { throw connectionError() }
        while let result = PQgetResult(handle) {
            let status = PQresultStatus(result)
            if status == PGRES_FATAL_ERROR, lastError == nil { lastError = serverError(result) }
            if status == PGRES_COPY_IN || status == PGRES_COPY_OUT {
                lastError = PostgresError(.server, "COPY is not allowed in a script")
            }
            PQclear(result)
        }
        if PQstatus(handle) != CONNECTION_OK { throw connectionError() }
        if let lastError { throw lastError }
    }

    // MARK: - COPY

    /// See ``Connection/copyOut(_:_:)``.
    func copyOut(_ sql: String, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        try refusePoisoned()
        roundTrips += 1
        guard PQsendQuery(handle, sql) == 1 else { throw connectionError() }
        guard let start = PQgetResult(handle) else { throw connectionError() }
        let startStatus = PQresultStatus(start)
        if startStatus != PGRES_COPY_OUT {
            let error =
                startStatus == PGRES_FATAL_ERROR
                ? serverError(start) : PostgresError(.server, "statement is not COPY … TO STDOUT")
            PQclear(start)
            while let extra = PQgetResult(handle) { PQclear(extra) }
            throw error
        }
        PQclear(start)

        var consumerError: Error?
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &buffer, 0)
            if length > 0, let buffer {
                if consumerError == nil {
                    do {
                        try consume(UnsafeRawBufferPointer(start: buffer, count: Int(length)))
                    } catch {
                        consumerError = error
                        cancel()
                    }
                }
                PQfreemem(buffer)
            } else {
                break  // -1: done, -2: error (reported by the final result)
            }
        }
        var rows = 0
        var serverFailure: PostgresError?
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) == PGRES_FATAL_ERROR, serverFailure == nil {
                serverFailure = serverError(result)
            } else if let tuples = PQcmdTuples(result), let count = Int(String(cString: tuples)) {
                rows = count
            }
            PQclear(result)
        }
        if PQstatus(handle) != CONNECTION_OK { throw connectionError() }
        if let consumerError { throw consumerError }
        if let serverFailure { throw serverFailure }
        return rows
    }

    /// Asks the server to cancel the statement in progress on this connection.
    func cancel() {
        guard let cancel = PQgetCancel(handle) else { return }
        var errorBuffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancel, &errorBuffer, Int32(errorBuffer.count))
        PQfreeCancel(cancel)
    }

    // MARK: - Helpers

    /// libpq sends a text parameter as a C string, so a NUL would end it early and the statement
    /// would run on a shorter value than the caller gave (`eq.abc%00x` matching `abc`). Postgres
    /// text cannot hold NUL anyway: refused here, before anything is sent, with the SQLSTATE the
    /// server gives that byte (22021, so callers map it as the caller's error like any other).
    static func refuseNUL(_ statements: [Statement]) throws {
        for statement in statements {
            for bind in statement.binds {
                if case .text(let text) = bind.storage, text.utf8.contains(0) {
                    throw PostgresError(.server, #"invalid byte sequence for encoding "UTF8": 0x00"#, sqlState: "22021")
                }
            }
        }
    }

    private static func withBinds<R>(
        _ binds: [PostgresBind],
        _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
    ) -> R {
        if binds.isEmpty { return body(0, nil, nil, nil) }
        var buffers: [UnsafeMutableRawPointer?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        buffers.reserveCapacity(binds.count)
        for bind in binds {
            switch bind.storage {
            case .null:
                buffers.append(nil); lengths.append(0); formats.append(0)
            case .text(let text):
                buffers.append(UnsafeMutableRawPointer(strdup(text))); lengths.append(0); formats.append(0)
            case .binary(let bytes):
                let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
                bytes.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(pointer), byteCount: bytes.count) }
                buffers.append(pointer); lengths.append(Int32(bytes.count)); formats.append(1)
            }
        }
        defer {
            for (buffer, format) in zip(buffers, formats) {
                guard let buffer else { continue }
                if format == 0 { free(buffer) } else { buffer.deallocate() }
            }
        }
        let values: [UnsafePointer<CChar>?] = buffers.map { $0.map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) } }
        return values.withUnsafeBufferPointer { valuePointer in
            lengths.withUnsafeBufferPointer { lengthPointer in
                formats.withUnsafeBufferPointer { formatPointer in
                    body(Int32(binds.count), valuePointer.baseAddress, lengthPointer.baseAddress, formatPointer.baseAddress)
                }
            }
        }
    }

    static func makeResult(_ result: OpaquePointer) -> QueryResult {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        var names: [String] = []
        names.reserveCapacity(columnCount)
        for column in 0..<columnCount { names.append(String(cString: PQfname(result, Int32(column)))) }
        let index = ColumnIndex(names: names)
        var rows: [PostgresRow] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
            rows.append(PostgresRow(index: index, values: values))
        }
        let tag = String(cString: PQcmdStatus(result))
        let affected = Int(String(cString: PQcmdTuples(result))) ?? rowCount
        return QueryResult(columns: names, rows: rows, affectedRows: affected, commandTag: tag)
    }

    private func serverError(_ result: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        let sqlState = field("C")
        guard let message = field("M") else {
            // No primary message: libpq itself reported the failure (usually a lost connection).
            return connectionError()
        }
        PostgresMetrics.error(sqlState: sqlState)
        return PostgresError(
            .server, message, sqlState: sqlState, detail: field("D"), hint: field("H"),
            position: field("P").flatMap { Int($0) })
    }

    private func connectionError() -> PostgresError {
        let message = LibPQConnection.message(PQerrorMessage(handle))
        let code: PostgresError.Code = PQstatus(handle) == CONNECTION_OK ? .server : .connectionLost
        PostgresMetrics.error(sqlState: nil)
        return PostgresError(code, message.isEmpty ? "connection to the database was lost" : message)
    }

    private static func message(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        return String(cString: pointer).trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "\n", with: " ")
    }
}

/// A pipeline that has been sent and whose results are being read (see
/// ``LibPQConnection/sendPipeline(_:timeout:shared:)``). Touched by one thread at a time: the sender,
/// then the reactor thread, then the sender again; each hand-over goes through a lock or a
/// continuation, which orders the accesses (THREADING.md).
final class PendingPipeline: @unchecked Sendable {
    enum Sent {
        case prepare(sql: String, name: String)
        case execute
        /// A statement the connection added whose result nobody asked for (`DEALLOCATE ALL`).
        case `internal`
    }

    var sent: [Sent] = []
    /// How many entries of `sent` have had their result.
    var answered = 0
    /// libpq results of the executed statements, in order; cleared by ``discard()``.
    var results: [OpaquePointer] = []
    var firstError: PostgresError?
    var complete = false
    var synced = false
    /// Whether the first/last result belongs to a statement the connection added (statement timeout).
    let trimFirst: Bool
    let trimLast: Bool

    init(trimFirst: Bool, trimLast: Bool) {
        self.trimFirst = trimFirst
        self.trimLast = trimLast
    }

    func fail(_ error: PostgresError) {
        if firstError == nil { firstError = error }
    }

    func discard() {
        results.forEach { PQclear($0) }
        results.removeAll()
    }

    /// The results, or the first error (a pipeline read without its Sync counts as a lost connection).
    func finish() throws -> [QueryResult] {
        defer { discard() }
        if let firstError { throw firstError }
        guard synced else { throw PostgresError(.connectionLost, "the database connection ended in the middle of a pipeline") }
        var converted = results.map(LibPQConnection.makeResult)
        if trimFirst { converted.removeFirst() }
        if trimLast { converted.removeLast() }
        return converted
    }

    deinit { discard() }
}
