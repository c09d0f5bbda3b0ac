import Config
import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// The request context of every gateway route: Hummingbird's core storage plus what a handler
/// learns that the request log line should carry (the tenant, once authenticated).
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Shared by the logging middleware and the handler, which sees the request after it.
    public let facts = RequestFacts()
    /// The peer's address: the client's, or a trusted proxy's (see ``RequestFacts/clientAddress``).
    public let remoteAddress: SocketAddress?
    /// The authenticated caller, set by ``AuthenticationMiddleware`` for the routes of its group;
    /// nil on unauthenticated routes (`/health`, a download by token, a processor's signed callback).
    public var caller: AuthenticatedRequest?

    public init(source: Source) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Facts about one request, shared by the middleware and the handler. Never secrets.
public final class RequestFacts: Sendable {
    private let tenant = Mutex<UUID?>(nil)
    private let id = Mutex<String?>(nil)
    private let client = Mutex<String?>(nil)

    /// The client's address (``TrustedProxies``), set by the middleware; recorded in audit
    /// entries of secret and privacy operations.
    public var clientAddress: String? {
        get { client.withLock { $0 } }
        set { client.withLock { $0 = newValue } }
    }

    /// Set by the handler once the caller is authenticated; read by the log line.
    public var tenantID: UUID? {
        get { tenant.withLock { $0 } }
        set { tenant.withLock { $0 = newValue } }
    }

    /// Set by the middleware; recorded in audit entries.
    public var requestID: String? {
        get { id.withLock { $0 } }
        set { id.withLock { $0 = newValue } }
    }
}
