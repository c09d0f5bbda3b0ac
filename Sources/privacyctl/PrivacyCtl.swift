import ArgumentParser
import Catalog
import Config
import Foundation
import JSON
import Keyring
import Postgres
import Sodium
import Tenancy

@main
struct PrivacyCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privacyctl",
        abstract: "Operate a Privacy Gateway: migrations, tenants, service keys, policies, audit trail, key files, data-subject requests.",
        discussion: """
            Configuration comes from the environment, overridable by flags:
              DATABASE_URL            owner role (migrations, admin commands)
              PRIVACY_ROOT_KEY_FILE   32-byte root key (base64, mode 0600)
              PRIVACY_SIGNING_KEY_FILE  32-byte Ed25519 seed for audit checkpoints (base64, mode 0600)
              PRIVACY_MIGRATIONS_DIR  default: migrations
              PRIVACY_ADDR            the gateway (http(s)://host:port): admin commands go over HTTP
              PRIVACY_TOKEN           with PRIVACY_ADDR: a service key with the admin scope

            Two modes for the admin commands (tenant create|list|show|disable|enable|set-jwt,
            servicekey create|list|revoke|rotate, requests list|extend):
              over HTTP     PRIVACY_ADDR and PRIVACY_TOKEN set: through the gateway's /v1/admin, with
                            neither the owner's DATABASE_URL nor the root key on this machine.
              direct        otherwise: DATABASE_URL (owner) and, to mint keys, the root key. For
                            bootstrap — the first tenant and its first admin key — and for what has no
                            HTTP form yet (migrate, keys, audit, report, export, delete, retention).

            Exit codes: 0 ok, 1 failure, 2 usage error, 3 verification failed,
            4 refused by the gateway (PRIVACY_TOKEN wrong, revoked, or lacking the right).
            With --json, a command prints exactly one JSON document on stdout.

            A first setup:
              privacyctl keys generate --out root.key
              export DATABASE_URL=postgresql://owner@localhost/app PRIVACY_ROOT_KEY_FILE=root.key
              privacyctl migrate
              privacyctl tenant create --name acme --json
              privacyctl servicekey create --tenant <id> --scope data:read --scope secrets:read --json
            Then, from an operator's machine (GATEWAY_OPERATOR_TENANT names the operators' tenant):
              export PRIVACY_ADDR=https://gateway.example.com PRIVACY_TOKEN=<admin key>
              privacyctl tenant list

            Shell completion: privacyctl --generate-completion-script bash|zsh|fish
            """,
        version: PrivacyGatewayVersion.string,
        subcommands: [
            MigrateCommand.self, KeysCommand.self, TenantCommand.self, ServiceKeyCommand.self, PolicyFilesCommand.self, AuditCommand.self,
            ReportCommand.self,
            ExportCommand.self, ExportDecryptCommand.self, DeleteCommand.self, RequestsCommand.self, RetentionCommand.self,
            CertificateCommand.self, ProcessorCommand.self,
        ])

    /// ArgumentParser exits 64 on usage errors; this tool promises 2 (DESIGN.md §6).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}

// MARK: - Shared options and output

struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "Owner connection URL (default: $DATABASE_URL).")
    var databaseURL: String?

    func configuration() throws -> GatewayConfiguration {
        var configuration = try GatewayConfiguration.fromEnvironment(ProcessInfo.processInfo.environment)
        if let databaseURL { configuration.databaseURL = databaseURL }
        return configuration
    }

    func ownerPool() throws -> ConnectionPool {
        ConnectionPool(configuration: try configuration().ownerDatabase(), options: .init(maxConnections: 2))
    }
}

/// The root key, for commands that open the keyring or file requests the gateway's worker accepts.
struct RootKeyOptions: ParsableArguments {
    @Option(name: .customLong("root-key-file"), help: "Root key file (default: $PRIVACY_ROOT_KEY_FILE).")
    var rootKeyFile: String?
    @Option(
        name: .customLong("root-passphrase-file"),
        help: "Instead of a key file: a file holding the root passphrase (default: $PRIVACY_ROOT_PASSPHRASE_FILE).")
    var rootPassphraseFile: String?

    /// Opens the keyring with the root key; a wrong root key is refused before anything changes.
    func keyring(_ configuration: GatewayConfiguration, pool: ConnectionPool) async throws -> Keyring {
        let source = try KeyFile.rootKeySource(
            keyFile: rootKeyFile ?? configuration.rootKeyFile,
            passphraseFile: rootPassphraseFile ?? (rootKeyFile == nil ? configuration.rootPassphraseFile : nil))
        return try await Keyring.open(pool: pool, root: source)
    }
}

/// Audit public keys given on the command line (`--trusted-key`, `--audit-public-key`): each is
/// checked the same way, and joined with the configuration's pins the same way.
enum PinnedKeyFlags {
    static func validate(_ keys: [String], flag: String) throws {
        for key in keys where Hex.decode(key)?.count != Ed25519.publicKeyLength {
            throw ValidationError("\(flag) must be a 32-byte public key in hex, got \"\(key)\"")
        }
    }

    /// The flags' keys plus the configuration's (``GatewayConfiguration/pinnedAuditKeys()``:
    /// `PRIVACY_AUDIT_PUBLIC_KEYS` and the signing key file's public half).
    static func keys(_ keys: [String], database: DatabaseOptions) throws -> [[UInt8]] {
        keys.compactMap(Hex.decode) + Array(try database.configuration().pinnedAuditKeys().values)
    }

    /// A file checked offline with the pinned keys (`audit verify-proof`, `certificate verify`):
    /// no pinned key is a usage error (`unpinned`); the file at `path` is read and `check`ed, and
    /// its verdict printed as `{valid, message}` with --json, else as the verdict or
    /// `FAILED: <reason>`; exit 3 when it fails.
    static func verifyFile(
        _ path: String, pinned flags: [String], unpinned: String, database: DatabaseOptions, output: OutputOptions,
        _ check: ([[UInt8]], Data) throws -> OfflineVerdict
    ) async throws {
        let printer = Output(json: output.json)
        var failed = false
        try await printer.run {
            let keys = try Self.keys(flags, database: database)
            guard !keys.isEmpty else { throw ValidationError(unpinned) }
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            struct Result: Encodable { let valid: Bool; let message: String }
            switch try check(keys, data) {
            case .valid(let verdict):
                try printer.emit(Result(valid: true, message: verdict)) { verdict }
            case .failed(let message):
                failed = true
                try printer.emit(Result(valid: false, message: message)) { "FAILED: \(message)" }
            }
        }
        if failed { throw ExitCode(3) }
    }
}

/// What an offline check found: the verdict that it holds, or the reason it does not.
enum OfflineVerdict {
    case valid(String)
    case failed(String)
}

struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON document on stdout, for scripts.")
    var json = false
}

/// Prints a result as JSON (`--json`) or as text, and reports failures with exit code 1.
struct Output {
    let json: Bool

    func emit<T: Encodable>(_ value: T, text: () -> String) throws {
        if json {
            print(String(decoding: try JSONCoding.encoder(pretty: true).encode(value), as: UTF8.self))
        } else {
            print(text())
        }
    }

    /// Runs `body`; a known error becomes one clear line (or a JSON error document) and exit 1.
    func run(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch let error as ValidationError {
            throw error
        } catch {
            let message: String
            switch error {
            case let error as KeyringError: message = error.message
            // CommandError, ConfigurationError, TenancyError, PostgresError and the other
            // modules' errors describe themselves without secrets.
            default: message = String(describing: error)
            }
            if json {
                try? emit(["error": message]) { message }
            }
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            if let refused = error as? AdminHTTPError, refused.isRefusal { throw ExitCode(4) }
            throw ExitCode.failure
        }
    }

    /// Progress lines go to a terminal only; pipes and scripts stay quiet.
    static func progress(_ line: String) {
        guard isatty(STDERR_FILENO) == 1 else { return }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
