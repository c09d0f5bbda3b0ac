import AsyncHTTPClient
import Config
import Foundation
import JSON
import Logging
import NIOCore
import Outbound
import Synchronization
import Tenancy

/// RS256/ES256 keys fetched from tenants' JWKS URLs (`tenants.jwt_jwks_url`), cached per URL.
///
/// - Fresh for ``Options/refreshAfter`` (5 min): served from memory, no request made.
/// - Then refreshed in the background on the next use, while the cached keys keep verifying; a
///   JWKS that is down keeps them serving until ``Options/expireAfter`` (1 h) after the last
///   successful fetch. After that the tenant's tokens fail closed (401), never a 5xx.
/// - A token whose `kid` is not among the cached keys triggers one refetch (the provider rotated
///   its keys), at most once per ``Options/minimumRefreshInterval`` per URL, so a stream of tokens
///   with made-up `kid`s cannot turn the gateway into a request amplifier.
/// - One fetch at a time per URL; bounded time (``Options/fetchTimeout``), bounded body
///   (``Options/maximumBytes``), at most ``Options/maximumKeys`` keys, no redirects, https only
///   (`http://` to a loopback address only with ``Options/allowsInsecureLoopback``, for tests).
/// - Only RSA and P-256 keys are ever taken from a JWKS (``TenantKeys``): a symmetric (`oct`) key
///   published at a URL is skipped, so a JWKS can never introduce an HMAC key.
///
/// The response body is never logged or echoed: only whether it could be used.
final class JWKSCache: Sendable {
    struct Options: Sendable {
        var refreshAfter: Duration = .seconds(300)
        var expireAfter: Duration = .seconds(3600)
        var minimumRefreshInterval: Duration = .seconds(30)
        var fetchTimeout: Duration = .seconds(5)
        var maximumBytes = 256 * 1024
        var maximumKeys = 100
        /// Most URLs remembered at once.
        var capacity = 10_000
        /// Accept `http://` URLs whose host is a loopback address (`GATEWAY_JWKS_ALLOW_INSECURE_LOOPBACK`).
        var allowsInsecureLoopback = false
        /// The time the cache reads (tests move it forward instead of sleeping).
        var clock: @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }

        init() {}
    }

    private struct Entry: Sendable {
        var keys: [TenantKeys.VerificationKey] = []
        /// The last successful fetch.
        var fetched: ContinuousClock.Instant?
        /// The start of the last fetch, successful or not (the rate limit).
        var attempted: ContinuousClock.Instant?
        var inflight: Task<Void, Never>?
    }

    private enum Step {
        case ready([TenantKeys.VerificationKey]?)
        case wait(Task<Void, Never>)
    }

    let options: Options
    private let entries: Mutex<BoundedCache<String, Entry>>
    private let logger: Logger

    init(options: Options = Options(), logger: Logger = Logger(label: "gateway.jwks")) {
        self.options = options
        self.entries = Mutex(BoundedCache(capacity: options.capacity))
        self.logger = logger
    }

    /// The keys published at `url`, or nil when there are none to use: never fetched successfully,
    /// or the last success is older than ``Options/expireAfter`` and a refetch failed.
    func keys(for url: String) async -> [TenantKeys.VerificationKey]? {
        let now = options.clock()
        let step: Step = entries.withLock { cache in
            var entry = cache.value(for: url) ?? Entry()
            let live = entry.fetched.map { $0 + options.expireAfter > now } ?? false
            if let fetched = entry.fetched, fetched + options.refreshAfter > now { return .ready(entry.keys) }
            if let task = entry.inflight { return live ? .ready(entry.keys) : .wait(task) }
            if let attempted = entry.attempted, attempted + options.minimumRefreshInterval > now {
                return .ready(live ? entry.keys : nil)
            }
            let task = startFetch(url, entry: &entry, now: now)
            cache.insert(entry, for: url)
            // Stale but live keys serve while the refresh runs; nothing live: wait for it.
            return live ? .ready(entry.keys) : .wait(task)
        }
        return await settle(step, url: url)
    }

    /// After a token's `kid` matched no cached key: refetches `url` unless `kid` is known, a fetch
    /// is under way (then waits for it) or one started within ``Options/minimumRefreshInterval``.
    /// Returns the keys after the refetch, or nil when none was made or none are live.
    func refresh(_ url: String, unknownKeyID kid: String?) async -> [TenantKeys.VerificationKey]? {
        let now = options.clock()
        let step: Step? = entries.withLock { cache in
            var entry = cache.value(for: url) ?? Entry()
            if let kid, entry.keys.contains(where: { $0.kid == kid }) { return nil }
            if let task = entry.inflight { return .wait(task) }
            if let attempted = entry.attempted, attempted + options.minimumRefreshInterval > now { return nil }
            let task = startFetch(url, entry: &entry, now: now)
            cache.insert(entry, for: url)
            return .wait(task)
        }
        guard let step else { return nil }
        return await settle(step, url: url)
    }

    /// Forgets `url` (the tenant's settings changed).
    func forget(_ url: String) {
        entries.withLock { $0.removeValue(for: url) }
    }

    private func settle(_ step: Step, url: String) async -> [TenantKeys.VerificationKey]? {
        switch step {
        case .ready(let keys): return keys
        case .wait(let task):
            await task.value
            let now = options.clock()
            return entries.withLock { cache in
                guard let entry = cache.value(for: url), let fetched = entry.fetched, fetched + options.expireAfter > now else {
                    return nil
                }
                return entry.keys
            }
        }
    }

    private func startFetch(_ url: String, entry: inout Entry, now: ContinuousClock.Instant) -> Task<Void, Never> {
        let task = Task { await self.fetch(url) }
        entry.inflight = task
        entry.attempted = now
        return task
    }

    private func fetch(_ url: String) async {
        let result: Result<[TenantKeys.VerificationKey], FetchProblem>
        do {
            result = .success(try await download(url))
        } catch let problem as FetchProblem {
            result = .failure(problem)
        } catch {
            // Connection refused, timeout, TLS: the kind only (no response text).
            result = .failure(FetchProblem("the request failed (\(type(of: error)))"))
        }
        let now = options.clock()
        entries.withLock { cache in
            var entry = cache.value(for: url) ?? Entry()
            entry.inflight = nil
            if case .success(let keys) = result {
                entry.keys = keys
                entry.fetched = now
            }
            cache.insert(entry, for: url)
        }
        if case .failure(let problem) = result {
            logger.warning(
                "JWKS fetch failed; cached keys (if any) serve until they expire",
                metadata: ["url": "\(url)", "problem": "\(problem.reason)"])
        }
    }

    struct FetchProblem: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    private func download(_ url: String) async throws -> [TenantKeys.VerificationKey] {
        if let problem = TenantKeys.jwksURLProblem(url, allowsInsecureLoopback: options.allowsInsecureLoopback) {
            throw FetchProblem(problem)
        }
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/jwk-set+json, application/json")
        request.headers.add(name: "User-Agent", value: "privacy-gateway/\(PrivacyGatewayVersion.string)")
        let milliseconds =
            options.fetchTimeout.components.seconds * 1000 + options.fetchTimeout.components.attoseconds / 1_000_000_000_000_000
        let deadline = NIODeadline.now() + .milliseconds(milliseconds)
        // The name is resolved now and the request goes to an address just checked: a name that
        // resolves to the metadata service or the deployment's network is refused, however spelled.
        let host = URL(string: url)?.host ?? ""
        let reach = PinnedHTTP.Reach(loopback: options.allowsInsecureLoopback)
        let target: PinnedHTTP.Target
        switch await PinnedHTTP.check(host, reach: reach) {
        case .success(let checked): target = checked
        case .failure(.internalAddress): throw FetchProblem("its host resolves to an internal address")
        case .failure(.unresolved): throw FetchProblem("its host did not resolve")
        }
        let maximumBytes = options.maximumBytes
        let body = try await PinnedHTTP.execute(request, to: target, deadline: deadline) { response -> ByteBuffer in
            guard response.status == .ok else {
                throw FetchProblem("the JWKS answered HTTP \(response.status.code)")
            }
            do {
                return try await response.body.collect(upTo: maximumBytes)
            } catch is NIOTooManyBytesError {
                throw FetchProblem("the JWKS is larger than \(maximumBytes) bytes")
            }
        }
        guard case .object(let set)? = try? JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView)),
            case .array(let entries)? = set["keys"]
        else { throw FetchProblem("the answer is not a JWK Set ({\"keys\": [...]})") }
        guard entries.count <= options.maximumKeys else {
            throw FetchProblem("the JWKS holds \(entries.count) keys, more than \(options.maximumKeys)")
        }
        let parsed = await TenantKeys.parse(jwtSecret: nil, publicKeys: JSONValue.array(entries).jsonText)
        for problem in parsed.problems {
            logger.info("JWKS key skipped", metadata: ["url": "\(url)", "problem": "\(problem)"])
        }
        return parsed.keys
    }
}
