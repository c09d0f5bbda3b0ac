import Foundation
import Tenancy

extension OpenAPIDocument {
    /// The `/v1/admin` routes (``AdminRoutes``): scope `admin`, a service key alone (no user JWT).
    /// "operator" marks what only a deployment operator's key may do (`GATEWAY_OPERATOR_TENANT`).
    static func adminPaths(auth: [[String: [String]]], error: [String: Any]) -> [String: Any] {
        func operation(
            _ summary: String, operatorOnly: Bool = false, _ responses: [String: Any], parameters: [[String: Any]] = [],
            body: [String: Any]? = nil, bodyRequired: Bool = true
        ) -> [String: Any] {
            var operation: [String: Any] = [
                "summary": summary, "tags": ["admin"],
                "description": "Scope: admin"
                    + (operatorOnly
                        ? "; a deployment operator's key only." : "; a tenant's admin key reaches its own tenant only (others: 404)."),
                "security": auth, "parameters": parameters,
                "responses": responses.merging(["400": error, "401": error, "403": error, "503": error]) { first, _ in first },
            ]
            if let body {
                operation["requestBody"] = ["required": bodyRequired, "content": ["application/json": ["schema": body]]]
            }
            return operation
        }
        let json: [String: Any] = ["description": "JSON", "content": ["application/json": ["schema": ["type": "object"]]]]
        let uuid: [String: Any] = ["type": "string", "format": "uuid"]
        let id: [String: Any] = ["name": "id", "in": "path", "required": true, "schema": uuid]
        let tenantQuery: [String: Any] = [
            "name": "tenant_id", "in": "query", "required": false, "schema": uuid,
            "description": "default: the key's own tenant (an operator: every tenant)",
        ]
        let rfc3339: [String: Any] = ["type": "string", "format": "date-time", "description": "RFC 3339, in the future"]
        let scopes: [String: Any] = [
            "type": "array", "minItems": 1, "items": ["type": "string", "enum": Scope.allCases.map(\.rawValue)],
        ]
        return [
            "/v1/admin/tenants": [
                "get": operation("Every tenant", operatorOnly: true, ["200": json]),
                "post": operation(
                    "Create a tenant (audited in its own new chain)", operatorOnly: true, ["201": json, "409": error],
                    body: [
                        "type": "object", "required": ["name"], "additionalProperties": false,
                        "properties": ["name": ["type": "string", "minLength": 1, "maxLength": 200]],
                    ]),
            ],
            "/v1/admin/tenants/{id}": ["parameters": [id], "get": operation("One tenant", ["200": json, "404": error])],
            "/v1/admin/tenants/{id}/disable": [
                "parameters": [id],
                "post": operation(
                    "Disable a tenant: its keys are refused by every gateway from their next request", operatorOnly: true,
                    ["200": json, "404": error, "409": error]),
            ],
            "/v1/admin/tenants/{id}/enable": [
                "parameters": [id], "post": operation("Enable a disabled tenant", operatorOnly: true, ["200": json, "404": error]),
            ],
            "/v1/admin/tenants/{id}/jwt": [
                "parameters": [id],
                "put": operation(
                    "Set the tenant's HS256 secret (the old one verifies for secret_overlap_seconds more), JWKS, JWKS URL, audience or issuer (\"\" removes a pin or the URL)",
                    ["200": json, "404": error],
                    body: [
                        "type": "object", "additionalProperties": false, "minProperties": 1,
                        "properties": [
                            "secret": ["type": "string", "minLength": 32],
                            "secret_overlap_seconds": [
                                "type": "integer", "minimum": 0,
                                "maximum": TenantRegistry.maximumSecretOverlapSeconds,
                                "default": TenantRegistry.defaultSecretOverlapSeconds,
                                "description": "with secret only; 0 replaces the old secret at once",
                            ],
                            "jwks": ["type": ["object", "array"]],
                            "jwks_url": [
                                "type": "string", "maxLength": TenantRegistry.maximumJWKSURLLength,
                                "description": "https:// (\"\" removes it); keys cached per gateway, refetched on an unknown kid",
                            ],
                            "audience": ["type": "string", "maxLength": 1000], "issuer": ["type": "string", "maxLength": 1000],
                        ],
                    ]),
            ],
            "/v1/admin/tenants/{id}/kek": [
                "parameters": [id],
                "get": operation("KEK versions, subject keys under each, whether a rotation is unfinished", ["200": json, "404": error]),
            ],
            "/v1/admin/tenants/{id}/kek/rotate": [
                "parameters": [id],
                "post": operation(
                    "Rotate the tenant's KEK synchronously (resumes an interrupted rotation)", operatorOnly: true,
                    ["200": json, "404": error, "409": error]),
            ],
            "/v1/admin/kek-rotation": [
                "post": operation(
                    "Start (or resume) a KEK rotation of one tenant or every tenant; it runs in the gateway", operatorOnly: true,
                    ["202": json, "404": error, "409": error],
                    body: ["type": "object", "additionalProperties": false, "properties": ["tenant_id": uuid]], bodyRequired: false),
                "get": operation(
                    "The latest KEK rotation: state (running, interrupted, finished), rows_done/rows_total, tenants_done/tenants_total, started_at, finished_at",
                    operatorOnly: true, ["200": json, "404": error]),
            ],
            "/v1/admin/service-keys": [
                "get": operation(
                    "Service keys: scopes, created, revoked, expiry and last use — never a key or its hash",
                    ["200": json, "404": error], parameters: [tenantQuery]),
                "post": operation(
                    "Create a key; the key is in the answer once (Cache-Control: no-store)", ["201": json, "404": error],
                    body: [
                        "type": "object", "required": ["scopes"], "additionalProperties": false,
                        "properties": [
                            "tenant_id": uuid, "scopes": scopes,
                            "name": ["type": "string", "minLength": 1, "maxLength": 200],
                            "expires_at": rfc3339,
                        ],
                    ]),
            ],
            "/v1/admin/service-keys/{id}/revoke": [
                "parameters": [id], "post": operation("Revoke a key (idempotent)", ["200": json, "404": error]),
            ],
            "/v1/admin/service-keys/{id}/rotate": [
                "parameters": [id],
                "post": operation(
                    "A new key with the same tenant, name and scopes; the old one keeps working for the overlap",
                    ["201": json, "404": error, "409": error],
                    body: [
                        "type": "object", "additionalProperties": false,
                        "properties": [
                            "overlap_seconds": [
                                "type": "integer", "minimum": 0,
                                "maximum": ServiceKeyRegistry.maximumOverlap.components.seconds,
                                "default": AdminRoutes.defaultOverlapSeconds,
                            ],
                            "expires_at": rfc3339,
                        ],
                    ], bodyRequired: false),
            ],
            "/v1/admin/requests": [
                "get": operation(
                    "Data-subject requests with their due dates", ["200": json, "404": error],
                    parameters: [
                        tenantQuery,
                        [
                            "name": "overdue", "in": "query", "required": false,
                            "schema": ["type": "string", "enum": ["true", "false"]],
                        ],
                    ])
            ],
            "/v1/admin/requests/overdue": [
                "get": operation("Open requests past their (extended) due date", ["200": json, "404": error], parameters: [tenantQuery])
            ],
            "/v1/admin/requests/{kind}/{id}/extend": [
                "parameters": [
                    ["name": "kind", "in": "path", "required": true, "schema": ["type": "string", "enum": ["export", "deletion"]]], id,
                    tenantQuery,
                ],
                "post": operation(
                    "One extension of 1–2 months with a reason (Art. 12(3))", ["200": json, "404": error, "409": error],
                    body: [
                        "type": "object", "required": ["months", "reason"], "additionalProperties": false,
                        "properties": [
                            "months": ["type": "integer", "enum": [1, 2]],
                            "reason": ["type": "string", "minLength": 1, "maxLength": 1000],
                        ],
                    ]),
            ],
            "/v1/admin/processors": [
                "get": operation(
                    "The tenant's processors (data held outside Postgres) — never a secret", ["200": json, "404": error],
                    parameters: [tenantQuery]),
                "post": operation(
                    "Declare a processor; its secret is stored sealed, and shown once when the gateway made it",
                    ["201": json, "404": error, "409": error], parameters: [tenantQuery],
                    body: [
                        "type": "object", "required": ["name", "data_kind", "webhook_url"], "additionalProperties": false,
                        "properties": [
                            "name": ["type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,62}$"],
                            "data_kind": ["type": "string", "minLength": 1, "maxLength": 200],
                            "webhook_url": [
                                "type": "string", "format": "uri", "maxLength": 2048, "description": "https, without credentials or query",
                            ],
                            "secret": ["type": "string", "minLength": 32, "maxLength": 512],
                            "timeout_seconds": ["type": "integer", "minimum": 1, "maximum": 2_592_000, "default": 604_800],
                            "erasure_required": ["type": "boolean", "default": true],
                            "export_required": ["type": "boolean", "default": false],
                        ],
                    ]),
            ],
            "/v1/admin/processors/{id}": [
                "parameters": [id, tenantQuery],
                "delete": operation("Remove a processor; calls already made keep their record", ["200": json, "404": error]),
            ],
        ]
    }
}
