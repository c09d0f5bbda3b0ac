import Config
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Postgres
import Synchronization

extension HTTPField.Name {
    /// The request id, echoed on every response and present in every log line of the request.
    public static let requestID = HTTPField.Name("x-request-id")!
}

/// Gives every request an id (the caller's `x-request-id` when it is sane, else a new UUID),
/// logs one line per request, and renders every error — including unexpected ones — as a
/// PostgREST-style body carrying the same id. Unexpected errors never leak their text.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let metrics: GatewayMetrics
    let trustedProxies: TrustedProxies

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requestID = request.headers[.requestID].flatMap(Self.acceptable) ?? RequestIDs.next()
        var context = context
        context.logger[metadataKey: "request_id"] = .string(requestID)
        context.facts.requestID = requestID
        context.facts.clientAddress = trustedProxies.clientAddress(peer: context.remoteAddress?.ipAddress, headers: request.headers)
        let started = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPResponseError where !(error is GatewayError) {
            // Hummingbird's own (an unknown route, a body past its limit): already an answer.
            response = try error.response(from: request, context: context)
        } catch {
            // Every module's error, answered through the one map (ErrorMap.swift).
            var answer: GatewayError
            if let known = GatewayError(known: error) {
                answer = known
                if answer.status == .serviceUnavailable, let error = error as? PostgresError {
                    context.logger.warning("database unavailable", metadata: ["error": "\(error.code)"])
                }
            } else {
                context.logger.error("unhandled error", metadata: ["error_type": "\(type(of: error))"])
                answer = GatewayError(mapping: error)
                answer.hint = "quote request id \(requestID) to the operator"
            }
            // Authentication failures are counted here, where every route's error passes, by a fixed reason.
            if let reason = AuthFailure(answer) { metrics.authFailed(reason) }
            response = try answer.response(from: request, context: context)
        }
        response.headers[.requestID] = requestID
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        // The route template, never the raw path: label values stay bounded.
        let route = GatewayMetrics.routeLabel(context.endpointPath)
        metrics.request(route: route, method: request.method.rawValue, status: response.status.code, duration: elapsed)
        var line: Logger.Metadata = [
            "route": .string(route),
            "method": .string(request.method.rawValue),
            "path": .string(request.uri.path),
            "status": .stringConvertible(response.status.code),
            "latency_ms": .string(Self.milliseconds(seconds)),
        ]
        if let tenant = context.facts.tenantID { line["tenant"] = .string(tenant.lowercasedString) }
        context.logger.info("request", metadata: line)
        return response
    }

    /// Accepts ids of up to 128 characters from a conservative alphabet; anything else is replaced,
    /// so a caller cannot inject text into logs.
    static func acceptable(_ id: String) -> String? {
        guard (1...128).contains(id.utf8.count),
            id.utf8.allSatisfy({
                $0 < 128 && (isalnum(Int32($0)) != 0 || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "."))
            })
        else { return nil }
        return id
    }

    /// `seconds` as milliseconds with three decimals, e.g. `1.250` (String(format:) costs a
    /// locale lookup per request).
    static func milliseconds(_ seconds: Double) -> String {
        let micros = Int((max(0, seconds) * 1_000_000).rounded())
        let fraction = String(micros % 1000)
        return String(micros / 1000) + "." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}

/// Fresh request ids, shaped like UUIDs (version 4): a counter mixed (splitmix64, a bijection)
/// with a key drawn once per process. Unique within a process, unrelated across processes, and
/// without the `/dev/urandom` open-read-close that `UUID()` costs per call on Linux.
enum RequestIDs {
    private static let key = (UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        let high = mix(n ^ key.0)
        let low = mix(n ^ key.1)
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { output in
            withUnsafeBytes(of: high.bigEndian) { output.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: 8) }
            withUnsafeBytes(of: low.bigEndian) { (output.baseAddress! + 8).copyMemory(from: $0.baseAddress!, byteCount: 8) }
            output[6] = output[6] & 0x0f | 0x40  // version 4
            output[8] = output[8] & 0x3f | 0x80  // RFC 4122 variant
        }
        return UUID(uuid: bytes).lowercasedString
    }

    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
