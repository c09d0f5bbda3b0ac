extension RESTQuery {
    /// The `Prefer` header (RFC 7240) as PostgREST reads it: comma-separated tokens over any
    /// number of `Prefer` lines, surrounding spaces ignored, the first token of each kind
    /// winning. Unknown tokens are ignored (PostgREST's `handling=lenient` default) and kept
    /// in ``ignored``; with `handling=strict` they are a `PGRST122` error instead.
    public struct Preferences: Sendable, Hashable {
        /// `return=`: what a write answers with; `nil` leaves the default to the handler.
        public var returning: Return?
        /// `count=`: whether `Content-Range` carries a total.
        public var count: Count?
        /// `resolution=`: what an insert does on a conflict (with `on_conflict=`).
        public var resolution: Resolution?
        /// `missing=`: what columns absent from an insert payload get.
        public var missing: Missing?
        /// `handling=`: whether unknown preferences are an error.
        public var handling: Handling?
        /// `tx=`: whether the request's transaction is committed (the default) or rolled back
        /// after its statements ran and their result was read.
        public var transaction: Transaction?
        /// `max-affected=N` (N ≥ 0): with `handling=strict`, a PATCH or DELETE that would change
        /// more than N rows is rolled back (`400 PGRST124`); without it, ignored, as PostgREST does.
        public var maxAffected: Int?
        /// `timezone=<name>`: the zone timestamps are rendered in, as sent; whether Postgres
        /// knows it is decided by the gateway (an unknown zone is ignored, or refused under
        /// `handling=strict`, as PostgREST does).
        public var timeZone: String?
        /// Tokens that were not understood (or are PostgREST preferences this gateway does
        /// not implement: `params=`; or a `max-affected=` that is not a non-negative
        /// integer), in header order.
        public var ignored: [String]

        /// Preferences as given; ``parse(_:)`` reads them from headers.
        public init(
            returning: Return? = nil, count: Count? = nil, resolution: Resolution? = nil,
            missing: Missing? = nil, handling: Handling? = nil, transaction: Transaction? = nil,
            maxAffected: Int? = nil, ignored: [String] = []
        ) {
            self.returning = returning
            self.count = count
            self.resolution = resolution
            self.missing = missing
            self.handling = handling
            self.transaction = transaction
            self.maxAffected = maxAffected
            self.ignored = ignored
        }

        /// The values of `return=`, each spelled as its header token.
        public enum Return: String, Sendable, Hashable, CaseIterable {
            case representation = "return=representation"
            case minimal = "return=minimal"
            case headersOnly = "return=headers-only"
        }

        /// The values of `count=`, each spelled as its header token.
        public enum Count: String, Sendable, Hashable, CaseIterable {
            case exact = "count=exact"
            case planned = "count=planned"
            case estimated = "count=estimated"
        }

        /// The values of `resolution=`, each spelled as its header token.
        public enum Resolution: String, Sendable, Hashable, CaseIterable {
            case mergeDuplicates = "resolution=merge-duplicates"
            case ignoreDuplicates = "resolution=ignore-duplicates"
        }

        /// The values of `missing=`, each spelled as its header token.
        public enum Missing: String, Sendable, Hashable, CaseIterable {
            case `default` = "missing=default"
            case null = "missing=null"
        }

        /// The values of `handling=`, each spelled as its header token.
        public enum Handling: String, Sendable, Hashable, CaseIterable {
            case strict = "handling=strict"
            case lenient = "handling=lenient"
        }

        /// The values of `tx=`, each spelled as its header token.
        public enum Transaction: String, Sendable, Hashable, CaseIterable {
            case commit = "tx=commit"
            case rollback = "tx=rollback"
        }

        /// The recognised preferences as header tokens, in the order PostgREST lists them in
        /// `Preference-Applied` (`max-affected=` only with `handling=strict`, the only way it
        /// applies). A handler first drops the ones it does not honour for this request (e.g.
        /// `resolution=` on a GET): see `RESTPlan.appliedPreferences`.
        public var applied: [String] {
            [
                resolution?.rawValue, missing?.rawValue, returning?.rawValue, count?.rawValue, transaction?.rawValue,
                handling?.rawValue, handling == .strict ? maxAffected.map { "max-affected=\($0)" } : nil,
            ]
            .compactMap { $0 }
        }

        /// `Preference-Applied` for ``applied``, or `nil` when nothing was recognised.
        public var appliedHeaderValue: String? {
            let tokens = applied
            return tokens.isEmpty ? nil : tokens.joined(separator: ", ")
        }

        /// Reads every `Prefer` header line, in order.
        public static func parse(_ headerLines: [String]) throws(RESTGrammarError) -> Preferences {
            var preferences = Preferences()
            for line in headerLines {
                for rawToken in line.split(separator: ",", omittingEmptySubsequences: true) {
                    let token = GrammarScanner.trimmed(rawToken)
                    if token.isEmpty { continue }
                    if let value = Return(rawValue: token) {
                        preferences.returning = preferences.returning ?? value
                    } else if let value = Count(rawValue: token) {
                        preferences.count = preferences.count ?? value
                    } else if let value = Resolution(rawValue: token) {
                        preferences.resolution = preferences.resolution ?? value
                    } else if let value = Missing(rawValue: token) {
                        preferences.missing = preferences.missing ?? value
                    } else if let value = Handling(rawValue: token) {
                        preferences.handling = preferences.handling ?? value
                    } else if let value = Transaction(rawValue: token) {
                        preferences.transaction = preferences.transaction ?? value
                    } else if token.hasPrefix("max-affected="), case let digits = token.dropFirst("max-affected=".count),
                        HeaderGrammar.isDigits(digits), let value = Int(digits)
                    {
                        preferences.maxAffected = preferences.maxAffected ?? value
                    } else if token.hasPrefix("timezone="), token.count > "timezone=".count {
                        preferences.timeZone = preferences.timeZone ?? String(token.dropFirst("timezone=".count))
                    } else {
                        preferences.ignored.append(token)
                    }
                }
            }
            if preferences.handling == .strict && !preferences.ignored.isEmpty {
                throw RESTGrammarError(
                    .malformed, code: "PGRST122", "Invalid preferences given with handling=strict",
                    details: GrammarScanner.shortened("Invalid preferences: " + preferences.ignored.joined(separator: ", "), limit: 300))
            }
            return preferences
        }
    }
}
