// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "privacy-gateway",
    // Linux only (Debian 12 is what CI and deploy/ target): the Postgres reactor is epoll, the
    // benchmarks read /proc. No Apple platform is declared, so none is implied to work.
    products: [
        .executable(name: "privacy-gateway", targets: ["privacy-gateway"]),
        .executable(name: "privacyctl", targets: ["privacyctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // Tenants' JWKS URLs (Gateway/Auth/JWKSCache.swift); already in the graph through HummingbirdTesting.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.30.0"),
        // Prometheus exposition for swift-metrics (Gateway/Observability). Hummingbird already
        // brings swift-metrics and swift-distributed-tracing; this adds one small package.
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    ],
    targets: [
        // C shims: a module map and one header each, nothing more.
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),

        // Library modules: one per concern (DESIGN.md §2).
        .target(name: "Sodium", dependencies: ["CSodium"]),
        // The one JSON value type, writer, escaper and house encoder. A leaf: Foundation only.
        .target(name: "JSON"),
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
                // Only to resume a request on the event loop it came from (PostgresReactor).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // Pool wait and SQLSTATE classes (PostgresMetrics), a span per pipeline.
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            exclude: ["THREADING.md"]
        ),
        .target(name: "Policy", dependencies: ["JSON", .product(name: "Yams", package: "Yams")]),
        // PostgREST's request grammar, pure: text in, a parsed query or a RESTGrammarError out.
        // HTTPTypes only for the method and header types it reads.
        .target(name: "RESTGrammar", dependencies: [.product(name: "HTTPTypes", package: "swift-http-types")]),
        .target(
            name: "Audit",
            dependencies: [
                "JSON", "Sodium", "Postgres", .product(name: "Logging", package: "swift-log"),
                // SHA-256 with the CPU's SHA extensions for the per-entry hashes (FastDigest.swift).
                .product(name: "Crypto", package: "swift-crypto"),
                // Append batch size, latency and failures; a span per append.
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            exclude: ["ENCODING.md"]
        ),
        .target(name: "Keyring", dependencies: ["Sodium", "Postgres"]),
        // Requests to URLs a tenant chose (webhooks, JWKS): which hosts are internal, and sending
        // only to an address checked just before (no second resolution by the HTTP client).
        .target(
            name: "Outbound",
            dependencies: [.product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio")]
        ),
        // The environment and key files, read once by an executable (GatewayConfiguration, KeyFile).
        // HTTPTypes for the forwarding headers TrustedProxies reads; RESTGrammar for its limits' defaults.
        .target(
            name: "Config",
            dependencies: ["Audit", "Keyring", "Postgres", "RESTGrammar", "Sodium", .product(name: "HTTPTypes", package: "swift-http-types")]
        ),
        // Tenants, service keys and scopes, tenants' JWT keys, and how admin writes are audited:
        // shared by the gateway and privacyctl, without HTTP.
        .target(
            name: "Tenancy",
            dependencies: [
                // Outbound for the one classifier of URLs the gateway may fetch (JWKS URLs).
                "Audit", "JSON", "Keyring", "Outbound", "Postgres", "Sodium",
                .product(name: "JWTKit", package: "jwt-kit"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What the live database says about itself: its policies and grants against the files
        // (the drift check), and whether the gateway's login escapes RLS.
        .target(name: "Catalog", dependencies: ["Config", "Policy", "Postgres"]),
        .target(name: "Secrets", dependencies: ["Keyring", "Audit", "Postgres", "Sodium"]),
        .target(
            name: "Reports",
            dependencies: ["Audit", "JSON", "Policy", "Postgres", "Privacy", "Sodium"],
            exclude: ["SCHEMA.md"]
        ),
        .target(
            name: "Privacy",
            dependencies: [
                "Policy", "Audit", "JSON", "Keyring", "Outbound", "Postgres", "Sodium",
                .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Gateway",
            dependencies: [
                "Catalog",
                "Config",
                "Tenancy",
                "Keyring",
                "JSON",
                "Outbound",
                "Secrets",
                "Sodium",
                "Postgres",
                "Policy",
                "Audit",
                "Reports",
                "Privacy",
                "RESTGrammar",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                // TLS on the listener (Server/ListenerTLS.swift), on swift-nio-ssl.
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),

        // Executables: argument parsing and wiring only.
        .executableTarget(
            name: "privacy-gateway",
            dependencies: [
                "Audit",
                "Catalog",
                "Config",
                "Gateway",
                "Tenancy",
                "Keyring",
                "Policy",
                "Secrets",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "privacyctl",
            dependencies: [
                "Audit",
                "Catalog",
                "Config",
                "JSON",
                "Tenancy",
                "Keyring",
                "Policy",
                "Postgres",
                "Reports",
                "Privacy",
                "Sodium",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Benchmarks: print a measured figure, never assert a timing.
        .executableTarget(name: "PolicyBenchmark", dependencies: ["Policy"], path: "Sources/PolicyBenchmark"),
        .executableTarget(name: "AuditBenchmark", dependencies: ["Audit", "Postgres", "Sodium"], path: "Sources/AuditBenchmark"),

        // Tests (Swift Testing). TestSupport: the throwaway database every database test uses.
        .target(name: "TestSupport", dependencies: ["Postgres"], path: "Tests/TestSupport"),
        .testTarget(name: "SodiumTests", dependencies: ["Sodium"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport"]),
        .testTarget(name: "PolicyTests", dependencies: ["Policy"], exclude: ["Fixtures"]),
        .testTarget(name: "AuditTests", dependencies: ["Audit", "JSON", "TestSupport"]),
        .testTarget(name: "KeyringTests", dependencies: ["Keyring", "Postgres", "Sodium", "TestSupport"]),
        .testTarget(name: "SecretsTests", dependencies: ["Secrets", "Keyring", "Audit", "Postgres", "Sodium", "TestSupport"]),
        .testTarget(
            name: "ReportsTests",
            dependencies: [
                "Audit",
                "Catalog",
                "Gateway",
                "Policy",
                "Postgres",
                "Privacy",
                "Reports",
                "Sodium",
                "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "PrivacyTests", dependencies: ["Privacy", "Audit", "Keyring", "Policy", "Postgres", "Secrets", "Sodium", "TestSupport"]),
        // Runs the built executables as an operator would; needs `swift build` first (scripts/test does it).
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "Postgres"]),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Audit",
                "Catalog",
                "Config",
                "Gateway",
                "JSON",
                "Tenancy",
                "Keyring",
                "Outbound",
                "Policy",
                "Secrets",
                "Privacy",
                "RESTGrammar",
                "Sodium",
                "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ]
        ),
    ]
)
