/// The one error type of the `Postgres` module.
///
/// Callers switch on ``code`` and, for errors the server reported, on ``sqlState``
/// (`23505`, `42501`, …) — never on message text. Messages come from libpq or the server;
/// they never contain bind-parameter values that this module added.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; extensible without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidConfiguration
            case connectionFailed
            case connectionLost
            case server
            case decoding
            case poolTimeout
            case poolClosed
            case copyAborted
            case migration
            case notOwner
            case tenantBusy
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The connection string or URL could not be understood.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// No connection could be opened (server down, wrong host, authentication refused).
        public static let connectionFailed = Code(.connectionFailed)
        /// An open connection broke (server restarted, network cut).
        public static let connectionLost = Code(.connectionLost)
        /// The server answered a statement with an error; see ``PostgresError/sqlState``.
        public static let server = Code(.server)
        /// A value in a row could not be decoded as the requested Swift type.
        public static let decoding = Code(.decoding)
        /// No pooled connection became free within the acquire timeout.
        public static let poolTimeout = Code(.poolTimeout)
        /// The pool was shut down.
        public static let poolClosed = Code(.poolClosed)
        /// A COPY stream was stopped by its consumer.
        public static let copyAborted = Code(.copyAborted)
        /// A migration file could not be loaded or applied; see ``PostgresError/migration``.
        public static let migration = Code(.migration)
        /// A connection was used by code that does not hold it: a lease after its checkout
        /// ended, or a second unit of work while one is in flight (``PooledConnection``). A bug
        /// in the caller; nothing was sent.
        public static let notOwner = Code(.notOwner)
        /// The tenant already has its most units of database work in flight and its queue is full
        /// (``ConnectionPool/withConnection(tenant:_:)``, ``TenantLimiter``): answer 503 with
        /// `Retry-After`. Nothing was sent.
        public static let tenantBusy = Code(.tenantBusy)

        public var description: String { base.rawValue }
    }

    public var code: Code
    public var message: String
    /// Five-character SQLSTATE reported by the server, e.g. `23505`.
    public var sqlState: String?
    public var detail: String?
    public var hint: String?
    /// 1-based character position of the error in the statement text, when the server gave one.
    public var position: Int?
    /// The migration file this error belongs to, and the line in it, when known.
    public var migration: String?
    public var line: Int?
    /// Set only where the failure certainly came before any of the caller's work reached the
    /// server (a connection found closed before use): the one kind of error the pool retries.
    var unsent = false

    /// A tenant's slots and queue are full (``Code/tenantBusy``); `detail` says how full.
    static func tenantBusy(_ saturated: TenantLimiter.Saturated) -> PostgresError {
        PostgresError(
            .tenantBusy, "too many concurrent requests for this tenant",
            detail: "\(saturated.concurrency) in flight and \(saturated.queued) waiting", hint: "retry after the Retry-After delay")
    }

    /// A pooled connection the server closed while it sat idle, found before anything was sent.
    static var closedWhileIdle: PostgresError {
        var error = PostgresError(.connectionLost, "the database closed this connection while it was idle")
        error.unsent = true
        return error
    }

    public init(
        _ code: Code, _ message: String, sqlState: String? = nil, detail: String? = nil,
        hint: String? = nil, position: Int? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.position = position
    }

    /// Message and SQLSTATE only, for logs and wrapped errors: a server's `detail` can quote row
    /// values ("Failing row contains …"), which must not reach a log line.
    public var summary: String {
        message + (sqlState.map { " [SQLSTATE \($0)]" } ?? "")
    }

    public var description: String {
        var text = ""
        if let migration {
            text += "migration \(migration)"
            if let line { text += " (line \(line))" }
            text += ": "
        }
        text += message
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        if let detail, !detail.isEmpty { text += " — \(detail)" }
        if let hint, !hint.isEmpty { text += " (hint: \(hint))" }
        return text
    }
}

extension PostgresError {
    /// SQLSTATE classes that mean the connection itself is gone, so a retry on a fresh one is safe
    /// when nothing had been sent on it since checkout.
    var isConnectionFailure: Bool {
        if code == .connectionLost || code == .connectionFailed { return true }
        guard let sqlState else { return false }
        // 08xxx connection exception, 57P01..57P03 admin shutdown / crash shutdown / cannot connect now.
        return sqlState.hasPrefix("08") || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03"
    }
}

extension PostgresError {
    /// The server refused a value itself: a data exception (class 22 — numeric value out of
    /// range, invalid text representation, …) or a NOT NULL or CHECK violation (23502, 23514).
    /// Retrying cannot help; for input a caller sent it is the caller's error, never an outage.
    public var isDataError: Bool {
        guard code == .server, let sqlState else { return false }
        return sqlState.hasPrefix("22") || sqlState == "23502" || sqlState == "23514"
    }
}
