import Config
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// The request-body limits of ``GatewayLimits``, before any route runs: a `Content-Length` past
/// ``GatewayLimits/maximumBodyBytes`` is refused at once (413); a body sent without one (chunked)
/// is cut with the same error once it passes the limit, and with 408 once the server has waited
/// for it longer than ``GatewayLimits/bodyTimeoutSeconds`` in all (a body trickled in, chunk by
/// chunk, each within the idle timeout). Only the wait for the client counts: a body that arrived
/// while the route waited for the database is not the client's delay. A route's own smaller cap (`collectBody(upTo:)`) is answered in the same shape.
/// Errors are `PGRST…` codes on `/rest/v1`, `PGW…` elsewhere. Requests without a body (every
/// `GET`) pass through untouched.
struct RequestLimitsMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let limits: GatewayLimits

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let length = request.headers[.contentLength]
        guard length != nil || request.headers[.transferEncoding] != nil else {
            return try await next(request, context)
        }
        let rest = Self.isREST(request)
        if let length {
            guard let bytes = Int(length), bytes >= 0 else {
                throw GatewayError(.badRequest, code: rest ? "PGRST100" : "PGW400", "Content-Length is not a number of bytes")
            }
            if bytes > limits.maximumBodyBytes { throw GatewayError.bodyTooLarge(limits.maximumBodyBytes, rest: rest) }
        }
        var request = request
        request.body = RequestBody(
            asyncSequence: LimitedBody(
                base: request.body, limit: limits.maximumBodyBytes, timeoutSeconds: limits.bodyTimeoutSeconds, rest: rest))
        do {
            return try await next(request, context)
        } catch let error as NIOTooManyBytesError {
            throw GatewayError.bodyTooLarge(error.maxBytes ?? limits.maximumBodyBytes, rest: rest)
        }
    }

    static func isREST(_ request: Request) -> Bool {
        request.uri.path.hasPrefix("/rest/")
    }
}

/// A request body that throws 413 past `limit` bytes and 408 once reading it has waited more than
/// `timeoutSeconds` for the client, in all.
struct LimitedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let base: RequestBody
    let limit: Int
    let timeoutSeconds: Int
    let rest: Bool

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        let body: LimitedBody
        var received = 0
        var waited = Duration.zero

        mutating func next() async throws -> ByteBuffer? {
            let asked = ContinuousClock.now
            guard let chunk = try await base.next() else { return nil }
            waited += ContinuousClock.now - asked
            received += chunk.readableBytes
            if received > body.limit { throw GatewayError.bodyTooLarge(body.limit, rest: body.rest) }
            if waited > .seconds(body.timeoutSeconds) {
                throw GatewayError(
                    .requestTimeout, code: body.rest ? "PGRST408" : "PGW408",
                    "the request body did not arrive within \(body.timeoutSeconds) seconds")
            }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), body: self)
    }
}

/// Closes the connection when the rest of a request body that the route never read has not
/// arrived within ``GatewayLimits/bodyTimeoutSeconds`` of the answer. A route that answers
/// before reading its body (a refusal, a route that takes none, a 413 or 408 cut mid-body)
/// leaves the rest to Hummingbird, which reads it to its end before the next request with only
/// the idle timeout between chunks: a client trickling it, chunked or under a large
/// `Content-Length`, would hold the connection for as long as it liked. ``LimitedBody`` bounds
/// the body a route reads; this, the body it does not. A body that ends in time keeps the
/// connection for the next request.
final class UnreadBodyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    /// Request heads read and responses ended: equal once every request read so far is answered.
    private var requests = 0
    private var answered = 0
    /// Whether the last request read has not had its end yet.
    private var bodyPending = false
    private var deadline: Scheduled<Void>?

    init(timeoutSeconds: Int) {
        self.timeout = .seconds(Int64(timeoutSeconds))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            requests += 1
            bodyPending = true
        case .body:
            break
        case .end:
            bodyPending = false
            cancelDeadline()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            answered += 1
            // Answered while its body is still coming: the rest is only being drained.
            if bodyPending, answered == requests, deadline == nil {
                deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                    deadline = nil
                    if bodyPending { context.close(promise: nil) }
                }
            }
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelDeadline()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelDeadline()
    }

    private func cancelDeadline() {
        deadline?.cancel()
        deadline = nil
    }
}

/// Answers a request head past ``GatewayLimits/maximumHeaderBytes`` (NIO's decoder limit,
/// `HTTPParserError.headerOverflow`) with 431 and a `{code, message, details, hint}` body, then
/// closes the connection — instead of Hummingbird's bare 400. The path is not known at that point
/// (the head was never parsed), so the code is `PGW431` on every route.
final class HeadTooLargeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    static let body =
        #"{"code":"PGW431","details":null,"hint":"send a shorter URL or fewer and smaller header fields","message":"request line and header fields are too large"}"#

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, case .headerOverflow = parserError else {
            context.fireErrorCaught(error)
            return
        }
        let body = ByteBuffer(string: Self.body)
        let head = HTTPResponse(
            status: .requestHeaderFieldsTooLarge,
            headerFields: [
                .contentType: "application/json; charset=utf-8", .contentLength: String(body.readableBytes), .connection: "close",
            ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}
