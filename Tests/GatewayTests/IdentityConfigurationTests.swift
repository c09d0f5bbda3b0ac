import Config
import Foundation
import Gateway
import Testing

@Suite("Identity verification settings")
struct IdentityConfigurationTests {
    @Test(
        "unhappy: a bad maximum auth age, an unknown notifier, a webhook without its secret file, or an age without a notifier are refused by name"
    )
    func refused() throws {
        for (environment, names) in [
            (["PRIVACY_IDENTITY_MAX_AUTH_AGE": "59", "PRIVACY_IDENTITY_NOTIFIER": "file:/tmp/codes"], "PRIVACY_IDENTITY_MAX_AUTH_AGE"),
            (["PRIVACY_IDENTITY_MAX_AUTH_AGE": "86401", "PRIVACY_IDENTITY_NOTIFIER": "file:/tmp/codes"], "PRIVACY_IDENTITY_MAX_AUTH_AGE"),
            (
                ["PRIVACY_IDENTITY_MAX_AUTH_AGE": "ten minutes", "PRIVACY_IDENTITY_NOTIFIER": "file:/tmp/codes"],
                "PRIVACY_IDENTITY_MAX_AUTH_AGE"
            ),
            (["PRIVACY_IDENTITY_NOTIFIER": "smtp:me@example.com"], "PRIVACY_IDENTITY_NOTIFIER"),
            (["PRIVACY_IDENTITY_NOTIFIER": "file:"], "PRIVACY_IDENTITY_NOTIFIER"),
            (["PRIVACY_IDENTITY_NOTIFIER": "webhook:https://hooks.example.com/codes"], "PRIVACY_IDENTITY_WEBHOOK_SECRET_FILE"),
            (["PRIVACY_IDENTITY_MAX_AUTH_AGE": "600"], "PRIVACY_IDENTITY_NOTIFIER"),
        ] {
            let error = #expect(throws: ConfigurationError.self, "\(environment)") { try GatewayConfiguration.fromEnvironment(environment) }
            #expect(error?.message.contains(names) == true, "\(environment): \(String(describing: error?.message))")
        }
    }

    @Test("unset, any valid JWT of the subject verifies them; set, the age and the notifier are read")
    func read() throws {
        let defaults = try GatewayConfiguration.fromEnvironment([:])
        #expect(defaults.identityMaxAuthAgeSeconds == nil && defaults.identityNotifier == nil)
        let webhook = try GatewayConfiguration.fromEnvironment([
            "PRIVACY_IDENTITY_MAX_AUTH_AGE": "900", "PRIVACY_IDENTITY_NOTIFIER": "webhook:https://hooks.example.com/codes",
            "PRIVACY_IDENTITY_WEBHOOK_SECRET_FILE": "/etc/pg/identity-webhook.key",
        ])
        #expect(webhook.identityMaxAuthAgeSeconds == 900)
        #expect(
            webhook.identityNotifier
                == .webhook(url: URL(string: "https://hooks.example.com/codes")!, secretFile: "/etc/pg/identity-webhook.key"))
        let file = try GatewayConfiguration.fromEnvironment([
            "PRIVACY_IDENTITY_MAX_AUTH_AGE": "60", "PRIVACY_IDENTITY_NOTIFIER": "file:.data/identity-codes.jsonl",
        ])
        #expect(file.identityNotifier == .file(path: ".data/identity-codes.jsonl"))
    }
}
