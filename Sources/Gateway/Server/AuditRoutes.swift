import Audit
import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import Sodium
import Tenancy

/// `/v1/audit`: the caller's tenant's trail, for service keys with the `audit:read` scope.
///
/// - `GET /v1/audit/events?after=SEQ&limit=N&action=PREFIX&actor=ACTOR` — entries in seq order,
///   paginated by seq (`next_after` continues).
/// - `GET /v1/audit/checkpoints` — the signed checkpoints.
/// - `GET /v1/audit/verify` — the chain and checkpoints verified in the database, as a report.
///   Checkpoint signatures are checked against ``trustedKeys`` (configuration), never against the
///   public keys stored with the checkpoints: a forged checkpoint fails as `unknown_key`.
/// - `GET /v1/audit/entries/{seq}/proof?checkpoint=N` — the RFC 9162 inclusion proof of entry
///   `seq` in the checkpoint at seq N, with the entry and the checkpoint's C2SP signed note
///   (`privacyctl audit verify-proof` checks it with only the pinned public key).
/// - `GET /v1/audit/checkpoints/consistency?from=M&to=N` — the consistency proof between two
///   checkpoints, with both signed notes.
/// - `POST /v1/audit/checkpoints/{seq}/cosignatures` — a witness submits its C2SP cosignature line
///   (`{"name", "public_key", "cosignature"}`); stored only if it verifies on that checkpoint's note,
///   then served in `cosignatures` by `GET /v1/audit/checkpoints`. Scope `audit:read`, and only from
///   a witness the operator declared (``witnesses``, `PRIVACY_AUDIT_WITNESS_KEYS`): each checkpoint
///   keeps at most ``AuditCosignatures/maximumPerCheckpoint`` cosignatures, so accepting any key
///   would let a read-only key holder fill them with self-made witnesses and lock the real ones out.
struct AuditRoutes: Sendable {
    let pool: ConnectionPool
    let authenticator: RequestAuthenticator
    let trustedKeys: [String: [UInt8]]
    /// The declared witnesses (configuration): the only keys whose cosignatures are stored.
    let witnesses: [(name: String, publicKey: [UInt8])]

    static let maximumPage = 1000
    /// The longest `action` or `actor` filter accepted.
    static let maximumFilter = 255

    func add(to router: Router<GatewayRequestContext>) {
        let router = router.group().add(middleware: AuthenticationMiddleware(authenticator: authenticator, scope: .always(.auditRead)))
        router.get("/v1/audit/events") { request, context in
            let tenant = try context.authenticated().tenantID
            let query = request.uri.queryParameters
            let after = try GatewayApplication.queryInteger(query["after"].map(String.init), name: "after", in: 0...Int(Int64.max)) ?? 0
            let limit = try GatewayApplication.queryInteger(query["limit"].map(String.init), name: "limit", in: 1...Self.maximumPage) ?? 100
            let action = try GatewayApplication.queryText(
                query["action"].map(String.init), name: "action", maximumLength: Self.maximumFilter)
            let actor = try GatewayApplication.queryText(query["actor"].map(String.init), name: "actor", maximumLength: Self.maximumFilter)
            let entries = try await AuditReader.entries(
                pool: pool, tenant: tenant, afterSeq: Int64(after), limit: limit, actionPrefix: action, actor: actor)
            struct Page: Encodable {
                let events: [CodableEntry]
                let next_after: Int64?
            }
            return try GatewayApplication.jsonResponse(
                .ok, Page(events: entries.map(CodableEntry.init), next_after: entries.count == limit ? entries.last?.seq : nil))
        }
        router.get("/v1/audit/checkpoints") { request, context in
            let tenant = try context.authenticated().tenantID
            let checkpoints = try await AuditReader.checkpoints(pool: pool, tenant: tenant)
            return try GatewayApplication.jsonResponse(.ok, ["checkpoints": checkpoints.map(CodableCheckpoint.init)])
        }
        router.get("/v1/audit/entries/:seq/proof") { request, context in
            let tenant = try context.authenticated().tenantID
            let seq = try GatewayApplication.queryInteger(context.parameters.get("seq"), name: "seq", in: 1...Int(Int64.max))
            let checkpoint = try Self.required(request, "checkpoint")
            let proof = try await AuditProofs.inclusion(pool: pool, tenant: tenant, seq: Int64(seq!), checkpointSeq: Int64(checkpoint))
            return try GatewayApplication.jsonResponse(.ok, proof)
        }
        router.get("/v1/audit/checkpoints/consistency") { request, context in
            let tenant = try context.authenticated().tenantID
            let from = try Self.required(request, "from")
            let to = try Self.required(request, "to")
            let proof = try await AuditProofs.consistency(pool: pool, tenant: tenant, from: Int64(from), to: Int64(to))
            return try GatewayApplication.jsonResponse(.ok, proof)
        }
        router.post("/v1/audit/checkpoints/:seq/cosignatures") { request, context in
            let tenant = try context.authenticated().tenantID
            guard !witnesses.isEmpty else {
                throw GatewayError(
                    .forbidden, code: "PGW403", "this gateway accepts no cosignatures: no witnesses are declared",
                    hint:
                        "the operator lists the witnesses' keys as name+hex in PRIVACY_AUDIT_WITNESS_KEYS (or PRIVACY_AUDIT_WITNESS_KEYS_FILE) and restarts the gateway"
                )
            }
            let seq = try GatewayApplication.queryInteger(context.parameters.get("seq"), name: "seq", in: 1...Int(Int64.max))!
            struct Input: Decodable {
                let name: String
                let public_key: String
                let cosignature: String
            }
            var request = request
            let body = try await request.collectBody(upTo: 4096)
            let input = try GatewayApplication.jsonBody(
                body.readableBytesView, as: Input.self, fields: ["name", "public_key", "cosignature"],
                expected: #"{"name": witness name, "public_key": 64 hex characters, "cosignature": "— name base64…\n"}"#)
            guard let publicKey = Hex.decode(input.public_key), publicKey.count == 32 else {
                throw GatewayError.invalidInput("public_key must be a 32-byte Ed25519 key in hex")
            }
            // Name and key must both match one declared witness (public values: no constant-time need).
            guard witnesses.contains(where: { $0.name == input.name && $0.publicKey == publicKey }) else {
                throw GatewayError(
                    .forbidden, code: "PGW403",
                    "witness \(input.name) with this public key is not declared on this gateway; its cosignature is not stored",
                    hint: "the operator adds name+hex of the witness's public key to PRIVACY_AUDIT_WITNESS_KEYS")
            }
            let stored = try await AuditCosignatures.add(
                pool: pool, tenant: tenant, seq: Int64(seq), name: input.name, publicKey: publicKey, line: input.cosignature)
            return try GatewayApplication.jsonResponse(
                stored ? .created : .ok, ["seq": String(seq), "name": input.name, "stored": stored ? "new" : "already"])
        }
        router.get("/v1/audit/verify") { request, context in
            let tenant = try context.authenticated().tenantID
            let report = try await AuditBundle.verifyLive(pool: pool, tenant: tenant, trustedKeys: trustedKeys)
            return try GatewayApplication.jsonResponse(.ok, report)
        }
    }

    /// A required positive integer query parameter (a checkpoint's seq): a 400 naming it when absent or malformed.
    private static func required(_ request: Request, _ name: String) throws -> Int {
        guard
            let value = try GatewayApplication.queryInteger(
                request.uri.queryParameters[Substring(name)].map(String.init), name: name, in: 1...Int(Int64.max))
        else { throw GatewayError.invalidInput("\(name) is required: the seq of one of this tenant's checkpoints") }
        return value
    }
}
