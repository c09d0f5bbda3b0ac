import Audit
import Config
import Foundation
import Gateway
import Sodium
import Testing

@Suite("Configuration and key files")
struct ConfigurationTests {
    @Test("the documented environment variables configure the gateway, with defaults")
    func environment() throws {
        let configuration = try GatewayConfiguration.fromEnvironment([
            "DATABASE_URL": "postgresql://owner@db/app",
            "PORT": "9090",
            "PRIVACY_POLICIES_DIR": "/etc/pg/policies",
            "PRIVACY_MIGRATIONS_DIR": "",
        ])
        #expect(configuration.port == 9090)
        #expect(configuration.policiesDirectory == "/etc/pg/policies")
        #expect(configuration.migrationsDirectory == "migrations")
        // The owner's URL never stands in for the gateway's own login.
        let missing = #expect(throws: ConfigurationError.self) { try configuration.gatewayDatabase() }
        #expect(missing?.message == "GATEWAY_DATABASE_URL is not set")
        var withLogin = configuration
        withLogin.gatewayDatabaseURL = "postgresql://privacy_gateway@db/app"
        #expect(try withLogin.gatewayDatabase().user == "privacy_gateway")
        let defaults = try GatewayConfiguration.fromEnvironment([:])
        #expect(defaults.port == 8080)
        #expect(defaults.exportTTLDays == 7)
        #expect(try GatewayConfiguration.fromEnvironment(["PRIVACY_EXPORT_TTL_DAYS": "2"]).exportTTLDays == 2)
    }

    @Test("GATEWAY_POOL_SHARED: refused above the pool size or when not a number; unset, the pool decides")
    func sharedConnections() throws {
        #expect(try GatewayConfiguration.fromEnvironment([:]).poolSharedConnections == nil)
        #expect(try GatewayConfiguration.fromEnvironment(["GATEWAY_POOL_SHARED": "0"]).poolSharedConnections == 0)
        #expect(
            try GatewayConfiguration.fromEnvironment(["GATEWAY_POOL_SIZE": "4", "GATEWAY_POOL_SHARED": "4"]).poolSharedConnections == 4)
        for bad in ["5", "-1", "two"] {
            let error = #expect(throws: ConfigurationError.self) {
                try GatewayConfiguration.fromEnvironment(["GATEWAY_POOL_SIZE": "4", "GATEWAY_POOL_SHARED": bad])
            }
            #expect(error?.message == "GATEWAY_POOL_SHARED must be a number from 0 to GATEWAY_POOL_SIZE, got \"\(bad)\"")
        }
    }

    @Test("a bad PORT or DATABASE_URL is one clear error naming the variable")
    func badValues() throws {
        let port = #expect(throws: ConfigurationError.self) { try GatewayConfiguration.fromEnvironment(["PORT": "eighty"]) }
        #expect(port?.message == "PORT must be a port number from 1 to 65535, got \"eighty\"")
        let url = #expect(throws: ConfigurationError.self) {
            try GatewayConfiguration.fromEnvironment(["DATABASE_URL": "postgresql://x@h/db?nonsense=1"]).ownerDatabase()
        }
        #expect(url?.message.hasPrefix("DATABASE_URL: invalid database connection string") == true)
        let missing = #expect(throws: ConfigurationError.self) { try GatewayConfiguration.fromEnvironment([:]).ownerDatabase() }
        #expect(missing?.message == "DATABASE_URL is not set")
        let ttl = #expect(throws: ConfigurationError.self) { try GatewayConfiguration.fromEnvironment(["PRIVACY_EXPORT_TTL_DAYS": "0"]) }
        #expect(ttl?.message == "PRIVACY_EXPORT_TTL_DAYS must be a number of days from 1 to 365, got \"0\"")
    }

    @Test("JWT rules and pinned audit keys: bad values are refused by name; the signing key's public half is pinned too")
    func hardening() throws {
        for (variable, value) in [
            ("GATEWAY_JWT_LEEWAY_SECONDS", "31"), ("GATEWAY_JWT_LEEWAY_SECONDS", "-1"), ("GATEWAY_JWT_ALLOW_MISSING_EXP", "maybe"),
            ("PRIVACY_AUDIT_PUBLIC_KEYS", "abcd"), ("PRIVACY_AUDIT_PUBLIC_KEYS", String(repeating: "z", count: 64)),
        ] {
            let error = #expect(throws: ConfigurationError.self) { try GatewayConfiguration.fromEnvironment([variable: value]) }
            #expect(error?.message.hasPrefix(variable) == true, "\(variable)=\(value)")
        }
        let defaults = try GatewayConfiguration.fromEnvironment([:])
        #expect(defaults.jwtLeewaySeconds == 30 && !defaults.jwtAllowsMissingExpiry)
        #expect(try defaults.pinnedAuditKeys().isEmpty)

        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try KeyFile.generate(at: path)
        let signing = try Ed25519.SigningKey(seed: try KeyFile.load(path, purpose: "signing key"))
        let retired = try Ed25519.SigningKey.generate()
        let configured = try GatewayConfiguration.fromEnvironment([
            "GATEWAY_JWT_LEEWAY_SECONDS": "5", "GATEWAY_JWT_ALLOW_MISSING_EXP": "true", "PRIVACY_SIGNING_KEY_FILE": path,
            "PRIVACY_AUDIT_PUBLIC_KEYS": Hex.encode(retired.publicKey) + ", " + Hex.encode(signing.publicKey),
        ])
        #expect(configured.jwtLeewaySeconds == 5 && configured.jwtAllowsMissingExpiry)
        let pinned = try configured.pinnedAuditKeys()
        #expect(Set(pinned.values) == Set([retired.publicKey, signing.publicKey]))
        #expect(pinned[AuditCheckpoint.keyID(of: retired.publicKey)] == retired.publicKey)
    }

    @Test("PRIVACY_STUCK_AFTER_SECONDS and GATEWAY_OPERATOR_TENANT: bad values are refused by name; defaults 3600 s and no operator")
    func stuckThresholdAndOperator() throws {
        for (variable, value) in [
            ("PRIVACY_STUCK_AFTER_SECONDS", "59"), ("PRIVACY_STUCK_AFTER_SECONDS", "an hour"), ("PRIVACY_STUCK_AFTER_SECONDS", "31536001"),
            ("GATEWAY_OPERATOR_TENANT", "acme"),
        ] {
            let error = #expect(throws: ConfigurationError.self) { try GatewayConfiguration.fromEnvironment([variable: value]) }
            #expect(error?.message.hasPrefix(variable) == true, "\(variable)=\(value)")
        }
        let defaults = try GatewayConfiguration.fromEnvironment([:])
        #expect(defaults.stuckAfterSeconds == 3600 && defaults.operatorTenant == nil)
        #expect(try GatewayConfiguration.fromEnvironment(["PRIVACY_STUCK_AFTER_SECONDS": "600"]).stuckAfterSeconds == 600)
    }

    @Test("PRIVACY_DUPLICATE_WINDOW: seconds or with a unit, 0 to 365 days; bad values refused by name; default 30 days")
    func duplicateWindow() throws {
        for value in ["-1", "a month", "366d", "31536001", "9223372036854775807d", "30w", "d"] {
            let error = #expect(throws: ConfigurationError.self) {
                try GatewayConfiguration.fromEnvironment(["PRIVACY_DUPLICATE_WINDOW": value])
            }
            #expect(error?.message.hasPrefix("PRIVACY_DUPLICATE_WINDOW") == true, "\(value)")
        }
        #expect(try GatewayConfiguration.fromEnvironment([:]).duplicateWindowSeconds == 30 * 86_400)
        for (value, seconds) in [("0", 0), ("600", 600), ("90m", 5400), ("12h", 43_200), ("7d", 604_800), ("365d", 31_536_000)] {
            #expect(
                try GatewayConfiguration.fromEnvironment(["PRIVACY_DUPLICATE_WINDOW": value]).duplicateWindowSeconds == seconds, "\(value)")
        }
    }

    @Test("declared witnesses: name+hex from the variable and the file; a bad entry is refused by name; none by default")
    func witnessKeys() throws {
        let good = Hex.encode(try Ed25519.SigningKey.generate().publicKey)
        for (variable, value) in [
            ("PRIVACY_AUDIT_WITNESS_KEYS", good), ("PRIVACY_AUDIT_WITNESS_KEYS", "w1+abcd"),
            ("PRIVACY_AUDIT_WITNESS_KEYS", "w1=\(good)"), ("PRIVACY_AUDIT_WITNESS_KEYS", "+\(good)"),
            ("PRIVACY_AUDIT_WITNESS_KEYS", "a+b+\(good)"), ("PRIVACY_AUDIT_WITNESS_KEYS", "w1+\(String(repeating: "z", count: 64))"),
        ] {
            let error = #expect(throws: ConfigurationError.self) { try GatewayConfiguration.fromEnvironment([variable: value]) }
            #expect(error?.message.hasPrefix(variable) == true, "\(variable)=\(value)")
            #expect(error?.message.contains("name+hex") == true)
        }
        #expect(try GatewayConfiguration.fromEnvironment([:]).declaredWitnesses().isEmpty)

        let second = try Ed25519.SigningKey.generate().publicKey
        let third = try Ed25519.SigningKey.generate().publicKey
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "# auditors\nauditor.example/w2+\(Hex.encode(second))   # second\n\nother.example/w3+\(Hex.encode(third))\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let configured = try GatewayConfiguration.fromEnvironment([
            "PRIVACY_AUDIT_WITNESS_KEYS": "auditor.example/w1+\(good)", "PRIVACY_AUDIT_WITNESS_KEYS_FILE": path,
        ])
        let witnesses = try configured.declaredWitnesses()
        #expect(witnesses.map(\.name) == ["auditor.example/w1", "auditor.example/w2", "other.example/w3"])
        #expect(witnesses.map(\.publicKey) == [Hex.decode(good)!, second, third])

        try "auditor.example/w2 \(Hex.encode(second))\n".write(toFile: path, atomically: true, encoding: .utf8)
        let bad = #expect(throws: ConfigurationError.self) {
            try GatewayConfiguration.fromEnvironment(["PRIVACY_AUDIT_WITNESS_KEYS_FILE": path]).declaredWitnesses()
        }
        #expect(bad?.message.hasPrefix("PRIVACY_AUDIT_WITNESS_KEYS_FILE") == true)
        let missing = #expect(throws: ConfigurationError.self) {
            try GatewayConfiguration.fromEnvironment(["PRIVACY_AUDIT_WITNESS_KEYS_FILE": path + ".absent"]).declaredWitnesses()
        }
        #expect(missing?.message.contains("cannot be read") == true)
    }

    private func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("key-\(UUID().uuidString)").path
    }

    @Test("a generated key file is 0600, loads back, and is never overwritten")
    func generateAndLoad() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try KeyFile.generate(at: path)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let key = try KeyFile.load(path, purpose: "root key")
        #expect(key.count == 32)
        let before = try String(contentsOfFile: path, encoding: .utf8)
        let again = #expect(throws: ConfigurationError.self) { try KeyFile.generate(at: path) }
        #expect(again?.message.contains("already exists") == true)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == before)
    }

    @Test("a key file others can read, a missing one, or one without a 32-byte key is refused")
    func badKeyFiles() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try KeyFile.generate(at: path)
        chmod(path, 0o644)
        let open = #expect(throws: ConfigurationError.self) { try KeyFile.load(path, purpose: "root key") }
        #expect(open?.message.contains("readable by other users (mode 644)") == true)
        #expect(open?.hint == "chmod 600 \(path)")

        try "c2hvcnQ=\n".write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o600)
        let short = #expect(throws: ConfigurationError.self) { try KeyFile.load(path, purpose: "root key") }
        #expect(short?.message.contains("does not hold a 32-byte key") == true)

        let missing = #expect(throws: ConfigurationError.self) { try KeyFile.load(path + ".none", purpose: "signing key") }
        #expect(missing?.message.contains("signing key file") == true)
    }
}
