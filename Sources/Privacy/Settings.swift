import Audit
import Foundation
import Postgres
import Sodium

/// A subject's consents and retention (`user_privacy_settings`).
public struct PrivacySettings: Codable, Sendable, Equatable {
    public var dataProcessingConsent: Bool
    public var marketingConsent: Bool
    public var analyticsConsent: Bool
    public var thirdPartyConsent: Bool
    public var dataRetentionDays: Int
    public var updatedAt: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case dataProcessingConsent = "data_processing_consent"
        case marketingConsent = "marketing_consent"
        case analyticsConsent = "analytics_consent"
        case thirdPartyConsent = "third_party_consent"
        case dataRetentionDays = "data_retention_days"
        case updatedAt = "updated_at"
    }

    /// The database defaults, for a subject without a row yet.
    public static let defaults = PrivacySettings(
        dataProcessingConsent: false, marketingConsent: false, analyticsConsent: false, thirdPartyConsent: false,
        dataRetentionDays: 730, updatedAt: nil)
}

/// A partial update: absent fields keep their value.
public struct PrivacySettingsUpdate: Codable, Sendable {
    public var dataProcessingConsent: Bool?
    public var marketingConsent: Bool?
    public var analyticsConsent: Bool?
    public var thirdPartyConsent: Bool?
    public var dataRetentionDays: Int?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case dataProcessingConsent = "data_processing_consent"
        case marketingConsent = "marketing_consent"
        case analyticsConsent = "analytics_consent"
        case thirdPartyConsent = "third_party_consent"
        case dataRetentionDays = "data_retention_days"
    }

    /// The JSON field names an update may hold.
    public static let fields = Set(CodingKeys.allCases.map(\.rawValue))
    /// The retention a subject may choose, in days.
    public static let retentionDays = 1...36_500

    public init(
        dataProcessingConsent: Bool? = nil, marketingConsent: Bool? = nil, analyticsConsent: Bool? = nil,
        thirdPartyConsent: Bool? = nil, dataRetentionDays: Int? = nil
    ) {
        self.dataProcessingConsent = dataProcessingConsent
        self.marketingConsent = marketingConsent
        self.analyticsConsent = analyticsConsent
        self.thirdPartyConsent = thirdPartyConsent
        self.dataRetentionDays = dataRetentionDays
    }
}

extension PrivacyService {
    static let settingsColumns = """
        data_processing_consent, marketing_consent, analytics_consent, third_party_consent, data_retention_days,
        \(PrivacyRequest.timestamp("updated_at"))
        """

    static func settings(_ row: PostgresRow) throws -> PrivacySettings {
        PrivacySettings(
            dataProcessingConsent: try row.decode("data_processing_consent"), marketingConsent: try row.decode("marketing_consent"),
            analyticsConsent: try row.decode("analytics_consent"), thirdPartyConsent: try row.decode("third_party_consent"),
            dataRetentionDays: try row.decode("data_retention_days"), updatedAt: try row.decodeIfPresent("updated_at"))
    }

    public func settings(tenant: UUID, subject: UUID) async throws -> PrivacySettings {
        let row = try await run(tenant: tenant) { connection in
            try connection.query(
                "SELECT \(Self.settingsColumns) FROM public.user_privacy_settings WHERE tenant_id = $1 AND user_id = $2", [tenant, subject]
            ).first
        }
        return try row.map(Self.settings) ?? .defaults
    }

    /// Applies `update` and records what changed — `privacy.settings_updated` with every changed
    /// field's old and new value, the client's IP and user agent — in the same transaction. The
    /// audit trail is the settings' history. Nothing changed: nothing written, no receipt.
    /// With a signing key, a change comes with a signed ``ConsentReceipt`` for the subject.
    public func updateSettings(
        tenant: UUID, subject: UUID, _ update: PrivacySettingsUpdate, actor: PrivacyActor
    ) async throws -> (settings: PrivacySettings, receipt: ConsentReceipt?) {
        if let days = update.dataRetentionDays, !PrivacySettingsUpdate.retentionDays.contains(days) {
            throw PrivacyError(.invalidInput, "data_retention_days must be from 1 to 36500")
        }
        let audit = self.audit
        let signingKey = self.signingKey
        let policyVersion = configuration.policyVersion
        return try await run(tenant: tenant) { connection in
            try connection.transaction { connection in
                try connection.query(
                    "INSERT INTO public.user_privacy_settings (tenant_id, user_id) VALUES ($1, $2) ON CONFLICT (tenant_id, user_id) DO NOTHING",
                    [tenant, subject])
                let before = try Self.settings(
                    try connection.query(
                        "SELECT \(Self.settingsColumns) FROM public.user_privacy_settings WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
                        [tenant, subject]
                    ).first!)
                var after = before
                after.dataProcessingConsent = update.dataProcessingConsent ?? before.dataProcessingConsent
                after.marketingConsent = update.marketingConsent ?? before.marketingConsent
                after.analyticsConsent = update.analyticsConsent ?? before.analyticsConsent
                after.thirdPartyConsent = update.thirdPartyConsent ?? before.thirdPartyConsent
                after.dataRetentionDays = update.dataRetentionDays ?? before.dataRetentionDays
                var changed: [String: AuditValue] = [:]
                func note(_ name: String, _ from: AuditValue, _ to: AuditValue) {
                    if from != to { changed[name] = ["from": from, "to": to] }
                }
                note("data_processing_consent", .bool(before.dataProcessingConsent), .bool(after.dataProcessingConsent))
                note("marketing_consent", .bool(before.marketingConsent), .bool(after.marketingConsent))
                note("analytics_consent", .bool(before.analyticsConsent), .bool(after.analyticsConsent))
                note("third_party_consent", .bool(before.thirdPartyConsent), .bool(after.thirdPartyConsent))
                note("data_retention_days", .int(Int64(before.dataRetentionDays)), .int(Int64(after.dataRetentionDays)))
                guard !changed.isEmpty else { return (before, nil) }
                let row = try connection.query(
                    """
                    UPDATE public.user_privacy_settings
                    SET data_processing_consent = $3, marketing_consent = $4, analytics_consent = $5, third_party_consent = $6, data_retention_days = $7
                    WHERE tenant_id = $1 AND user_id = $2 RETURNING \(Self.settingsColumns)
                    """,
                    [
                        tenant, subject, after.dataProcessingConsent, after.marketingConsent, after.analyticsConsent,
                        after.thirdPartyConsent, after.dataRetentionDays,
                    ]
                ).first!
                let entry = try audit.append(
                    in: connection, tenant: tenant,
                    actor.event(
                        "privacy.settings_updated", target: subject.lowercasedString,
                        details: ["user_id": .string(subject.lowercasedString), "changed": .object(changed)]))
                let settings = try Self.settings(row)
                guard let signingKey else { return (settings, nil) }
                let receipt = try ConsentReceipt(
                    tenant: tenant.lowercasedString, subject: subject.lowercasedString, issuedAt: entry.at,
                    policyVersion: policyVersion, settings: settings, previous: before, changed: changed.keys.sorted(),
                    collection: .init(actor: actor.actor, ip: actor.ip, userAgent: actor.userAgent, requestID: actor.requestID),
                    auditEntry: .init(seq: entry.seq, hash: Hex.encode(entry.hash)),
                    keyID: Hex.encode(SHA256.hash(signingKey.publicKey)), publicKey: Hex.encode(signingKey.publicKey)
                ).signed(with: signingKey)
                return (settings, receipt)
            }
        }
    }

    /// The subject's consent changes, oldest first, from the audit trail (`privacy.settings_updated`
    /// entries about them): at most `limit`, after `afterSeq`.
    public func settingsHistory(tenant: UUID, subject: UUID, afterSeq: Int64 = 0, limit: Int = 100) async throws -> [ConsentChange] {
        let rows = try await run(tenant: tenant) { connection in
            try connection.query(
                """
                SELECT seq, \(PrivacyRequest.timestamp("at")), actor, host(ip) AS ip, user_agent, (details->'changed')::text AS changed
                FROM public.audit_events
                WHERE tenant_id = $1 AND action = 'privacy.settings_updated' AND outcome = 'success' AND target = $2 AND seq > $3
                ORDER BY seq LIMIT $4
                """, [tenant, subject.lowercasedString, afterSeq, limit]
            ).rows
        }
        return try rows.map { row in
            let changed = try JSONDecoder().decode([String: AuditValue].self, from: Data(try row.decode("changed", as: String.self).utf8))
            return ConsentChange(
                seq: try row.decode("seq"), at: try row.decode("at"), actor: try row.decodeIfPresent("actor") ?? "unknown",
                ip: try row.decodeIfPresent("ip"), userAgent: try row.decodeIfPresent("user_agent"), changed: changed)
        }
    }
}
