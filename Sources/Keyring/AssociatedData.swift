import Foundation

/// Associated data that binds a sealed value to where it belongs.
///
/// A label, then each field as a 4-byte big-endian length and its UTF-8 bytes, so no two
/// different field lists encode alike (a service name may contain any character). A value sealed
/// for one (tenant, user, service, id, version) fails to open with any other.
public enum AssociatedData {
    public static func encode(_ label: String, _ fields: [String]) -> [UInt8] {
        var bytes = Array(label.utf8)
        bytes.append(0)
        for field in fields {
            let utf8 = Array(field.utf8)
            let length = UInt32(utf8.count)
            bytes += [UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
            bytes += utf8
        }
        return bytes
    }

    static func serviceMaster(root: Int) -> [UInt8] {
        encode("pgw.service_master.v1", [String(root)])
    }

    static func tenantKey(tenant: UUID, version: Int, root: Int) -> [UInt8] {
        encode("pgw.kek.v1", [tenant.lowercasedString, String(version), String(root)])
    }

    static func subjectKey(tenant: UUID, user: UUID, kekVersion: Int) -> [UInt8] {
        encode("pgw.dek.v1", [tenant.lowercasedString, user.lowercasedString, String(kekVersion)])
    }

    static func tenantSecret(tenant: UUID, purpose: String, kekVersion: Int) -> [UInt8] {
        encode("pgw.tenant_secret.v1", [tenant.lowercasedString, purpose, String(kekVersion)])
    }
}
