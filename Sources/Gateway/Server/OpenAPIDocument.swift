import Foundation
import Policy
import Privacy
import Secrets
import Tenancy

/// `/openapi.json` (and `GET /rest/v1/`): the gateway's own API, as OpenAPI 3.1. Built once from
/// the policy set: one path per table `/rest/v1` serves (`rest:` read or read_write) with the
/// columns it serves and only the methods some caller can use (``usableCommands(_:)``), one per
/// declared view (GET/HEAD) and per declared function (POST; GET/HEAD when stable or immutable).
enum OpenAPIDocument {
    static func json(policies: PolicySet) -> String {
        let error: [String: Any] = [
            "type": "object", "required": ["code", "message", "details", "hint"],
            "properties": [
                "code": ["type": "string"], "message": ["type": "string"],
                "details": ["type": ["string", "null"]], "hint": ["type": ["string", "null"]],
            ],
        ]
        let errorResponse: [String: Any] = [
            "description": "PostgREST-style error", "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]],
        ]
        let served = policies.tables.filter { $0.rest != .none }
        let query: [[String: Any]] = [
            [
                "name": "select", "in": "query", "schema": ["type": "string"],
                "description": "columns, aliases (alias:col) and casts (col::text)",
            ],
            [
                "name": "order", "in": "query", "schema": ["type": "string"],
                "description": "col.asc|desc.nullsfirst|nullslast, comma-separated",
            ],
            ["name": "limit", "in": "query", "schema": ["type": "integer", "minimum": 0]],
            ["name": "offset", "in": "query", "schema": ["type": "integer", "minimum": 0]],
            ["name": "on_conflict", "in": "query", "schema": ["type": "string"]],
            ["name": "or", "in": "query", "schema": ["type": "string"], "description": "(a.eq.1,and(b.gt.2,c.is.null))"],
        ]
        let auth: [[String: [String]]] = [["apikey": [], "bearer": []]]
        func rows(_ relation: String) -> [String: Any] {
            [
                "description": "rows",
                "content": ["application/json": ["schema": ["type": "array", "items": ["$ref": "#/components/schemas/\(relation)"]]]],
            ]
        }
        var schemas: [String: Any] = ["Error": error]
        for table in served {
            schemas[table.name] = relationSchema(table.restColumns)
        }
        for view in policies.views {
            schemas[view.name] = relationSchema(view.columns)
        }
        var restPaths: [String: Any] = [:]
        for table in served {
            restPaths["/rest/v1/\(table.name)"] = tableOperations(
                table, auth: auth, query: query, error: errorResponse, rows: rows(table.name))
        }
        for view in policies.views where !view.roles.isEmpty {
            restPaths["/rest/v1/\(view.name)"] =
                [
                    "get": [
                        "summary": "Read the view (read-only; its base tables' policies apply)", "security": auth, "parameters": query,
                        "responses": ["200": rows(view.name), "206": rows(view.name), "400": errorResponse, "401": errorResponse],
                    ],
                    "head": ["summary": "As GET, without a body", "security": auth, "responses": ["200": ["description": "headers only"]]],
                ] as [String: Any]
        }
        for function in policies.functions where !function.roles.isEmpty {
            restPaths["/rest/v1/rpc/\(function.name)"] = functionOperations(function, auth: auth, error: errorResponse)
        }
        let document: [String: Any] = [
            "openapi": "3.1.0",
            "info": ["title": "Privacy Gateway", "version": "1"],
            "components": [
                "securitySchemes": [
                    "apikey": ["type": "apiKey", "in": "header", "name": "apikey"],
                    "bearer": ["type": "http", "scheme": "bearer", "bearerFormat": "JWT"],
                ],
                "schemas": schemas,
            ],
            "paths": [
                "/health": ["get": ["summary": "The process is up", "responses": ["200": ["description": "ok"]]]],
                "/ready": [
                    "get": [
                        "summary": "Database reachable, migrations current, no policy drift",
                        "responses": ["200": ["description": "ready"], "503": ["description": "not ready, with reasons"]],
                    ]
                ],
                "/metrics": [
                    "get": [
                        "summary": "Prometheus metrics (Authorization: Bearer <GATEWAY_METRICS_TOKEN> when one is set)",
                        "responses": ["200": ["description": "text exposition format"], "401": errorResponse],
                    ]
                ],
            ].merging(restPaths) { first, _ in first }
                .merging(v1Paths(auth: auth, error: errorResponse)) { first, _ in first }
                .merging(adminPaths(auth: [["apikey": []]], error: errorResponse)) { first, _ in first },
        ]
        let data =
            (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private static func relationSchema(_ columns: [TableColumn]) -> [String: Any] {
        [
            "type": "object",
            "properties": Dictionary(uniqueKeysWithValues: columns.map { ($0.name, ["x-postgres-type": $0.type.canonical]) }),
        ]
    }

    /// The commands some request role can run on `table` through `/rest/v1`: its `rest:` exposure
    /// allows them and a permissive policy of its file gives them to anon, authenticated or
    /// service_role. Anything else changes nothing whoever asks (403 for what `rest:` closes; a
    /// write no policy admits is refused or matches nothing), so it is not listed: a `rest: read`
    /// table has GET and HEAD only, `version_history` (update denied: immutable) no PATCH.
    static func usableCommands(_ table: TablePolicy) -> Set<PolicyCommand> {
        Set(
            PolicyCommand.requestCommands.filter { command in
                table.rest.allows(command)
                    && table.policies.contains { rule in
                        rule.kind == .permissive && (rule.command == command || rule.command == .all)
                            && PolicySet.requestRoles.contains { rule.applies(to: $0) }
                    }
            })
    }

    /// One served table's path: only the methods ``usableCommands(_:)`` allows.
    private static func tableOperations(
        _ table: TablePolicy, auth: [[String: [String]]], query: [[String: Any]], error: [String: Any], rows: [String: Any]
    ) -> [String: Any] {
        let commands = usableCommands(table)
        var operations: [String: Any] = [:]
        let written = ["description": "written (Prefer: return=minimal)"]
        if commands.contains(.select) {
            operations["get"] =
                [
                    "summary": "Read rows the caller's policies allow", "security": auth, "parameters": query,
                    "responses": ["200": rows, "206": rows, "400": error, "401": error, "404": error],
                ] as [String: Any]
            operations["head"] =
                ["summary": "As GET, without a body", "security": auth, "responses": ["200": ["description": "headers only"]]]
                as [String: Any]
        }
        let row: [String: Any] = ["$ref": "#/components/schemas/\(table.name)"]
        let rowsBody: [String: Any] = [
            "required": true, "content": ["application/json": ["schema": ["oneOf": [row, ["type": "array", "items": row]]]]],
        ]
        let rowBody: [String: Any] = ["required": true, "content": ["application/json": ["schema": row]]]
        if commands.contains(.insert) {
            operations["post"] =
                [
                    "summary": "Insert one row or an array of rows (upsert with on_conflict)", "security": auth, "requestBody": rowsBody,
                    "responses": ["201": rows, "204": written, "400": error, "401": error, "403": error, "409": error],
                ] as [String: Any]
        }
        if commands.contains(.update) {
            operations["patch"] =
                [
                    "summary": "Update the filtered rows; rows the caller sees but may not change are 403 naming the policy",
                    "security": auth, "parameters": query, "requestBody": rowBody,
                    "responses": ["200": rows, "204": written, "400": error, "401": error, "403": error],
                ] as [String: Any]
        }
        if commands.contains(.delete) {
            operations["delete"] =
                [
                    "summary": "Delete the filtered rows; rows the caller sees but may not delete are 403 naming the policy",
                    "security": auth, "parameters": query,
                    "responses": ["200": rows, "204": written, "400": error, "401": error, "403": error],
                ] as [String: Any]
        }
        return operations
    }

    /// A declared function's path: POST with its named arguments; GET and HEAD (arguments as query
    /// parameters) only for stable and immutable functions, as `/rest/v1/rpc` answers.
    private static func functionOperations(_ function: FunctionDeclaration, auth: [[String: [String]]], error: [String: Any]) -> [String:
        Any]
    {
        let required = function.arguments.map(\.name).filter { !function.optional.contains($0) }
        let arguments: [String: Any] = [
            "type": "object", "additionalProperties": false, "required": required,
            "properties": Dictionary(uniqueKeysWithValues: function.arguments.map { ($0.name, ["x-postgres-type": $0.type.canonical]) }),
        ]
        let result: [String: Any] = [
            "description": "the function's result (rows take select, filters, order and limit)",
            "content": ["application/json": ["schema": [:] as [String: Any]]],
        ]
        let summary = "\(function.volatility.rawValue) function; roles: \(function.roles.joined(separator: ", "))"
        var operations: [String: Any] = [
            "post": [
                "summary": summary, "security": auth,
                "requestBody": ["required": !required.isEmpty, "content": ["application/json": ["schema": arguments]]],
                "responses": ["200": result, "204": ["description": "no result"], "400": error, "401": error, "403": error, "404": error],
            ]
        ]
        if function.volatility != .volatile {
            let parameters: [[String: Any]] = function.arguments.map {
                [
                    "name": $0.name, "in": "query", "required": !function.optional.contains($0.name),
                    "schema": ["x-postgres-type": $0.type.canonical],
                ]
            }
            operations["get"] =
                [
                    "summary": summary, "security": auth, "parameters": parameters,
                    "responses": ["200": result, "400": error, "401": error, "403": error, "404": error],
                ] as [String: Any]
            operations["head"] =
                [
                    "summary": "As GET, without a body", "security": auth, "parameters": parameters,
                    "responses": ["200": ["description": "headers only"]],
                ] as [String: Any]
        }
        return operations
    }

    /// The `/v1` routes: secrets, data-subject requests and the audit trail. Parameters and bodies
    /// carry the ranges, lengths and enums the routes enforce (each answers 400 outside them), so a
    /// client or a fuzzer (`Tests/python/test_v1_sweep.py`) can tell valid input from invalid.
    private static func v1Paths(auth: [[String: [String]]], error: [String: Any]) -> [String: Any] {
        func operation(
            _ summary: String, scope: String, _ responses: [String: Any], parameters: [[String: Any]] = [], body: [String: Any]? = nil
        ) -> [String: Any] {
            var operation: [String: Any] = [
                "summary": summary, "description": "Scope: \(scope).", "security": auth, "parameters": parameters,
                "responses": responses.merging(["400": error, "401": error, "403": error, "503": error]) { first, _ in first },
            ]
            if let body {
                operation["requestBody"] = ["required": true, "content": ["application/json": ["schema": body]]]
            }
            return operation
        }
        func query(_ name: String, _ schema: [String: Any], required: Bool = false, _ description: String? = nil) -> [String: Any] {
            var parameter: [String: Any] = ["name": name, "in": "query", "required": required, "schema": schema]
            if let description { parameter["description"] = description }
            return parameter
        }
        let json: [String: Any] = ["description": "JSON", "content": ["application/json": ["schema": ["type": "object"]]]]
        /// Text without control characters (the routes refuse them: Postgres text cannot hold NUL).
        let printable = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
        let service: [String: Any] = [
            "name": "service", "in": "path", "required": true,
            "schema": ["type": "string", "minLength": 1, "maxLength": SecretStore.maximumServiceLength, "pattern": printable],
            "description": "1 to 255 characters, not blank, no control characters",
        ]
        let userID = query("user_id", ["type": "string", "format": "uuid"], "service_role callers only: whose secrets")
        let versionRange: [String: Any] = [
            "type": "integer", "minimum": SecretStore.versions.lowerBound, "maximum": SecretStore.versions.upperBound,
        ]
        let version = query("version", versionRange)
        let request: [String: Any] = ["name": "id", "in": "path", "required": true, "schema": ["type": "string", "format": "uuid"]]
        let boolean: [String: Any] = ["type": "string", "enum": ["true", "false"]]
        let secretBody: [String: Any] = [
            "type": "object", "required": ["value"], "additionalProperties": false,
            "properties": ["value": ["type": "string", "description": "at most 65,536 bytes of UTF-8"]],
        ]
        var consents: [String: Any] = [:]
        for field in PrivacySettingsUpdate.fields { consents[field] = ["type": "boolean"] }
        consents["data_retention_days"] = [
            "type": "integer", "minimum": PrivacySettingsUpdate.retentionDays.lowerBound,
            "maximum": PrivacySettingsUpdate.retentionDays.upperBound,
        ]
        let settingsBody: [String: Any] = ["type": "object", "additionalProperties": false, "properties": consents]
        let extensionBody: [String: Any] = [
            "type": "object", "required": ["months", "reason"], "additionalProperties": false,
            "properties": [
                "months": ["type": "integer", "enum": [1, 2]],
                "reason": [
                    "type": "string", "minLength": 1, "maxLength": 1000, "description": "no control characters but line breaks and tabs",
                ],
            ],
        ]
        let codeBody: [String: Any] = [
            "type": "object", "required": ["code"], "additionalProperties": false,
            "properties": ["code": ["type": "string", "pattern": "^[0-9]{6}$", "description": "the one-time code sent to the subject"]],
        ]
        let period: [String: Any] = [
            "type": "string",
            "description": "YYYY-MM-DD (a bare until includes that day) or an RFC 3339 time, from 1970-01-01 to 9999-12-31",
        ]
        return [
            "/v1/secrets": [
                "get": operation(
                    "Names and metadata of the user's secrets, never values (paginated by name)", scope: "secrets:read", ["200": json],
                    parameters: [
                        userID,
                        query(
                            "limit",
                            [
                                "type": "integer", "minimum": SecretStore.pageSizes.lowerBound,
                                "maximum": SecretStore.pageSizes.upperBound, "default": 100,
                            ]),
                        query(
                            "after", ["type": "string", "maxLength": SecretStore.maximumServiceLength, "pattern": printable],
                            "the next page starts after this service name (the previous page's next)"),
                        query("include_deleted", boolean),
                    ])
            ],
            "/v1/secrets/{service}": [
                "parameters": [service, userID],
                "get": operation(
                    "The value (audited before it is returned)", scope: "secrets:read",
                    ["200": json, "404": error, "410": error], parameters: [version]),
                "put": operation(
                    "Write a value; If-Match: N is check-and-set (0: only if it does not exist)", scope: "secrets:write",
                    ["200": json, "201": json, "412": error],
                    parameters: [
                        [
                            "name": "If-Match", "in": "header",
                            "schema": ["type": "string", "pattern": "^(W/)?\"?[0-9]{1,10}\"?$"],
                            "description": "a version from 0 to 2147483647, bare or as the ETag (\"N\")",
                        ]
                    ],
                    body: secretBody),
                "delete": operation(
                    "Soft delete; destroy=true[&version=N] destroys", scope: "secrets:write", ["200": json, "404": error],
                    parameters: [query("destroy", boolean), version]),
            ],
            "/v1/secrets/{service}/versions": [
                "parameters": [service, userID],
                "get": operation("Versions, without values", scope: "secrets:read", ["200": json, "404": error]),
            ],
            "/v1/secrets/{service}/undelete": [
                "parameters": [service, userID],
                "post": operation("Undo a soft delete", scope: "secrets:write", ["200": json, "404": error]),
            ],
            "/v1/privacy/settings": [
                "get": operation("The subject's consents and data_retention_days", scope: "privacy:export", ["200": json]),
                "put": operation(
                    "Change consents (audited with ip and user agent, old and new values); absent fields keep their value. "
                        + "A change is answered with `receipt`, a consent receipt signed with the gateway's Ed25519 key",
                    scope: "privacy:export", ["200": json], body: settingsBody),
            ],
            "/v1/privacy/settings/history": [
                "get": operation(
                    "The subject's consent changes, oldest first, from the audit trail", scope: "privacy:export", ["200": json],
                    parameters: [
                        query(
                            "after", ["type": "integer", "minimum": 0, "maximum": Int64.max, "default": 0],
                            "the next page starts after this seq"),
                        query("limit", ["type": "integer", "minimum": 1, "maximum": 1000, "default": 100]),
                    ])
            ],
            "/v1/privacy/exports": [
                "post": operation("File an export request for the subject", scope: "privacy:export", ["202": json, "409": error])
            ],
            "/v1/privacy/exports/{id}": [
                "parameters": [request],
                "get": operation(
                    "Status, manifest and, once completed, a single-use download link", scope: "privacy:export",
                    ["200": json, "404": error]),
            ],
            "/v1/privacy/exports/{id}/download": [
                "parameters": [request],
                "get": [
                    "summary":
                        "The archive (tar: CSV + JSON per table, manifest, index.html); the token works once, before it expires, and the archive is removed once downloaded",
                    "parameters": [
                        query("token", ["type": "string", "pattern": "^[0-9a-f]{64}$"], required: true),
                        query(
                            "format", ["type": "string", "enum": ["tar", "zip"], "default": "tar"],
                            "zip re-packs the archive as ZIP (stored entries) for computers without tar"),
                        [
                            "name": "X-Export-Passphrase", "in": "header",
                            "schema": ["type": "string", "minLength": 8, "maxLength": 1024, "pattern": printable],
                            "description":
                                "encrypts the archive on the way out as an age file (age -d, or privacyctl export-decrypt, opens it with the passphrase)",
                        ],
                    ],
                    "responses": [
                        "200": ["description": "application/x-tar, application/zip, or with a passphrase an age file"], "400": error,
                        "403": error, "404": error, "410": error,
                    ],
                ],
            ],
            "/v1/privacy/processors/{id}/callback": [
                "parameters": [
                    [
                        "name": "id", "in": "path", "required": true, "schema": ["type": "string", "format": "uuid"],
                        "description": "the processor",
                    ]
                ],
                "post": [
                    "summary":
                        "A processor's signed answer to the gateway's call; no service key: X-PGW-Signature is v2=HMAC-SHA-256(secret, \"<processor id>.<X-PGW-Timestamp>.<X-PGW-Request-Id>.<body>\"), the timestamp within 300 s; at most PRIVACY_PROCESSOR_CALLBACKS_PER_MINUTE per address and per processor (429 with Retry-After)",
                    "parameters": [
                        [
                            "name": "X-PGW-Timestamp", "in": "header", "required": true,
                            "schema": ["type": "string", "pattern": "^[0-9]{1,12}$"],
                        ],
                        ["name": "X-PGW-Request-Id", "in": "header", "required": true, "schema": ["type": "string", "format": "uuid"]],
                        [
                            "name": "X-PGW-Signature", "in": "header", "required": true,
                            "schema": ["type": "string", "pattern": "^v2=[0-9a-f]{64}$"],
                        ],
                    ],
                    "requestBody": [
                        "required": true,
                        "content": [
                            "application/json": [
                                "schema": [
                                    "type": "object", "required": ["request_id", "outcome"], "additionalProperties": false,
                                    "properties": [
                                        "request_id": ["type": "string", "format": "uuid"],
                                        "outcome": ["type": "string", "enum": ["confirmed", "refused"]],
                                        "detail": ["type": "string", "maxLength": 500],
                                        "reference": [
                                            "type": "string", "maxLength": 500,
                                            "description":
                                                "an opaque reference or an https link to the data the processor holds; recorded and listed in the export archive, never fetched",
                                        ],
                                    ],
                                ]
                            ]
                        ],
                    ],
                    "responses": ["200": json, "400": error, "401": error, "404": error, "409": error, "429": error],
                ],
            ],
            "/v1/privacy/deletions": [
                "post": operation("File an erasure request; answers the dry-run plan", scope: "privacy:erase", ["201": json, "409": error])
            ],
            "/v1/privacy/deletions/{id}": [
                "parameters": [request],
                "get": operation(
                    "Status, plan and, when done, the signed deletion certificate", scope: "privacy:erase", ["200": json, "404": error]),
            ],
            "/v1/privacy/deletions/{id}/confirm": [
                "parameters": [request],
                "post": operation("Confirm the plan; a worker runs it", scope: "privacy:erase", ["202": json, "404": error, "409": error]),
            ],
            "/v1/privacy/deletions/{id}/cancel": [
                "parameters": [request],
                "post": operation("Cancel until processing starts", scope: "privacy:erase", ["200": json, "404": error, "409": error]),
            ],
            "/v1/privacy/exports/{id}/extend": [
                "parameters": [request],
                "post": operation(
                    "One extension of 1–2 months with a reason", scope: "privacy:export", ["200": json, "404": error, "409": error],
                    body: extensionBody),
            ],
            "/v1/privacy/deletions/{id}/extend": [
                "parameters": [request],
                "post": operation(
                    "One extension of 1–2 months with a reason", scope: "privacy:erase", ["200": json, "404": error, "409": error],
                    body: extensionBody),
            ],
            "/v1/privacy/exports/{id}/retry": [
                "parameters": [request],
                "post": operation(
                    "A failed export back to pending (idempotent)", scope: "privacy:export", ["200": json, "404": error, "409": error]),
            ],
            "/v1/privacy/deletions/{id}/retry": [
                "parameters": [request],
                "post": operation(
                    "A failed erasure back to pending; it resumes from its committed batches (idempotent)", scope: "privacy:erase",
                    ["200": json, "404": error, "409": error]),
            ],
            "/v1/privacy/exports/{id}/verify": [
                "parameters": [request],
                "post": operation(
                    "The subject's one-time code: a request filed without a recent sign-in moves on", scope: "privacy:export",
                    ["200": json, "403": error, "404": error, "409": error, "410": error], body: codeBody),
            ],
            "/v1/privacy/deletions/{id}/verify": [
                "parameters": [request],
                "post": operation(
                    "The subject's one-time code: the erasure moves on to its plan", scope: "privacy:erase",
                    ["200": json, "403": error, "404": error, "409": error, "410": error], body: codeBody),
            ],
            "/v1/audit/events": [
                "get": operation(
                    "The tenant's audit entries in seq order; next_after continues", scope: "audit:read", ["200": json],
                    parameters: [
                        query("after", ["type": "integer", "minimum": 0, "maximum": Int64.max, "default": 0], "entries with a larger seq"),
                        query("limit", ["type": "integer", "minimum": 1, "maximum": AuditRoutes.maximumPage, "default": 100]),
                        query(
                            "action", ["type": "string", "maxLength": AuditRoutes.maximumFilter, "pattern": printable],
                            "actions starting with this prefix, e.g. secret."),
                        query(
                            "actor", ["type": "string", "maxLength": AuditRoutes.maximumFilter, "pattern": printable],
                            "exactly this actor, e.g. user:UUID"),
                    ])
            ],
            "/v1/audit/checkpoints": ["get": operation("Signed checkpoints", scope: "audit:read", ["200": json])],
            "/v1/audit/entries/{seq}/proof": [
                "parameters": [
                    ["name": "seq", "in": "path", "required": true, "schema": ["type": "integer", "minimum": 1, "maximum": Int64.max]]
                ],
                "get": operation(
                    "RFC 9162 inclusion proof of the entry in a signed checkpoint", scope: "audit:read", ["200": json, "404": error],
                    parameters: [
                        query(
                            "checkpoint", ["type": "integer", "minimum": 1, "maximum": Int64.max], required: true,
                            "the seq of the checkpoint (its tree size)")
                    ]),
            ],
            "/v1/audit/checkpoints/{seq}/cosignatures": [
                "parameters": [
                    ["name": "seq", "in": "path", "required": true, "schema": ["type": "integer", "minimum": 1, "maximum": Int64.max]]
                ],
                "post": operation(
                    "A witness's C2SP cosignature of the checkpoint (declared witnesses only, PRIVACY_AUDIT_WITNESS_KEYS; verified before it is stored)",
                    scope: "audit:read",
                    ["200": json, "201": json, "403": error, "404": error],
                    body: [
                        "type": "object", "additionalProperties": false, "required": ["name", "public_key", "cosignature"],
                        "properties": [
                            "name": ["type": "string", "minLength": 1, "maxLength": 255],
                            "public_key": ["type": "string", "pattern": "^[0-9a-fA-F]{64}$"],
                            "cosignature": ["type": "string", "maxLength": 1024],
                        ],
                    ]),
            ],
            "/v1/audit/checkpoints/consistency": [
                "get": operation(
                    "RFC 9162 consistency proof between two signed checkpoints", scope: "audit:read", ["200": json, "404": error],
                    parameters: [
                        query("from", ["type": "integer", "minimum": 1, "maximum": Int64.max], required: true),
                        query("to", ["type": "integer", "minimum": 1, "maximum": Int64.max], required: true),
                    ])
            ],
            "/v1/audit/verify": ["get": operation("The chain and checkpoints verified", scope: "audit:read", ["200": json])],
            "/v1/audit/report": [
                "get": operation(
                    "The compliance report (JSON, Markdown or one self-contained HTML file)", scope: "audit:read", ["200": json],
                    parameters: [
                        query("format", ["type": "string", "enum": ["json", "md", "html"], "default": "json"]),
                        query("since", period), query("until", period),
                    ])
            ],
        ]
    }
}
