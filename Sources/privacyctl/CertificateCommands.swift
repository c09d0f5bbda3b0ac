import ArgumentParser
import Catalog
import Config
import Foundation
import Privacy
import Sodium
import Tenancy

/// `privacyctl certificate verify`: a deletion certificate checked offline.
struct CertificateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certificate",
        abstract: "Deletion certificates: verify one offline.",
        subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Verify a deletion certificate offline: its signature, and that its erasure is in a signed checkpoint; exit 3 if not.",
            discussion: """
                Needs only the certificate file (as printed by privacyctl delete --json, or the
                "certificate" of GET /v1/privacy/deletions/{id}) and the gateway's pinned Ed25519
                public key (the public half of PRIVACY_SIGNING_KEY_FILE; repeat for retired keys, or
                set PRIVACY_AUDIT_PUBLIC_KEYS). Checks the certificate's signature, the signed
                checkpoint (C2SP note) in its audit_proof, the RFC 9162 inclusion proof of the erasure's
                audit entry, and that the entry is this certificate's erasure (tenant, seq, hash,
                request, subject). No database, no network.
                Example: privacyctl certificate verify certificate.json --audit-public-key 3b6a27bc…
                """)
        @Argument(help: "The certificate file (JSON).") var path: String
        @Option(name: .customLong("audit-public-key"), help: "The gateway's Ed25519 public key (64 hex characters); repeat for old keys.")
        var publicKeys: [String] = []
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            try PinnedKeyFlags.validate(publicKeys, flag: "--audit-public-key")
        }

        func run() async throws {
            try await PinnedKeyFlags.verifyFile(
                path, pinned: publicKeys, unpinned: "pin the gateway's public key: --audit-public-key <hex> or PRIVACY_AUDIT_PUBLIC_KEYS",
                database: database, output: output
            ) { keys, data in
                struct Status: Decodable { let certificate: DeletionCertificate }
                let certificate: DeletionCertificate
                if let bare = try? JSONDecoder().decode(DeletionCertificate.self, from: data) {
                    certificate = bare
                } else if let status = try? JSONDecoder().decode(Status.self, from: data) {
                    certificate = status.certificate
                } else {
                    return .failed("\(path) is not a readable deletion certificate (JSON with request_id, audit_head, signature, …)")
                }
                do {
                    return .valid(try certificate.verifyOffline(publicKeys: keys))
                } catch let error as PrivacyError {
                    return .failed(error.message)
                }
            }
        }
    }
}
