import Foundation

/// The house `JSONEncoder`: every JSON document the gateway writes through `Codable` — HTTP
/// responses and error bodies, signed documents (certificates, receipts, manifests), webhook
/// bodies, audit bundles and proofs, `privacyctl --json` — comes from here, so one value always
/// has one text.
///
/// Keys sorted; `/` not escaped (as PostgreSQL, PostgREST and ``JSONWriter`` write it); dates as
/// ISO 8601 (`2026-01-02T03:04:05Z`). A signed document's bytes are this encoder's output:
/// changing a setting breaks every stored signature (the Privacy and Audit tests prove them).
public enum JSONCoding {
    /// Compact (`pretty: false`) or indented by two spaces with ` : ` separators (Foundation's
    /// `.prettyPrinted`, for files people read).
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// `value` encoded by the compact house encoder.
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        Array(try encoder().encode(value))
    }
}
