import Foundation
import Policy
import Testing

/// `anonymize:` methods in a policy file: each must fit its column's type, checked when the file
/// loads (so `privacyctl policy lint` and the gateway's start refuse it), at the entry's file:line:column.
@Suite("Masking rules in policy files")
struct MaskingRuleTests {
    static func file(_ entries: String) -> PolicySource {
        PolicySource(
            file: "policies/things.yaml",
            text: """
                table: public.things
                tenant_column: tenant_id
                subject: { column: user_id }
                columns:
                  id: uuid
                  tenant_id: uuid
                  user_id: uuid
                  email: text
                  code: varchar(20)
                  wide: varchar(64)
                  born: date
                  seen_at: timestamptz
                  ip: inet
                  score: integer
                  amount: numeric(12,2)
                  active: boolean
                  data: jsonb
                  tags: text[]
                indexes:
                  - [id]
                  - [tenant_id, user_id]
                policies:
                  - name: Own things
                    command: select
                    roles: [authenticated]
                    using: auth.uid() = user_id
                privacy:
                  export: true
                  erasure: anonymize
                  anonymize:
                    user_id: null
                \(entries.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
                """)
    }

    /// Where `needle` starts in the file built from `entries` (1-based), as the loader reports it.
    static func location(of needle: String, in entries: String) -> Policy.SourceLocation {
        let lines = file(entries).text.split(separator: "\n", omittingEmptySubsequences: false)
        let index = lines.lastIndex { $0.contains(needle) }!
        let column = lines[index].distance(from: lines[index].startIndex, to: lines[index].range(of: needle)!.lowerBound)
        return Policy.SourceLocation(file: "policies/things.yaml", line: index + 1, column: column + 1)
    }

    static func methods(_ entries: String) throws -> [String: Anonymization] {
        let set = try PolicySet.load(sources: [file(entries)])
        guard case .anonymize(let columns)? = set.table(named: "things")?.privacy?.erasure else { return [:] }
        return Dictionary(uniqueKeysWithValues: columns.map { ($0.column, $0.method) })
    }

    @Test(
        "a method that does not fit its column's type is refused at the entry's file:line:column",
        arguments: [
            ("email: { truncate: month }", "{ truncate", "truncate needs a date or timestamp column"),
            ("score: { truncate: day }", "{ truncate", "truncate needs a date or timestamp column"),
            ("email: truncate_ip", "truncate_ip", "truncate_ip needs an inet or cidr column"),
            ("born: truncate_ip", "truncate_ip", "truncate_ip needs an inet or cidr column"),
            ("code: hmac", "hmac", "more than 20 fit"),
            ("score: hmac", "hmac", "needs a text column"),
            ("tags: hmac", "hmac", "needs a text column"),
            ("score: { replace: \"many\" }", "{ replace", "is not a whole number"),
            ("amount: { replace: \"NaN\" }", "{ replace", "is not a number"),
            ("active: { replace: \"yes\" }", "{ replace", "is not true or false"),
            ("data: { replace: \"{not json\" }", "{ replace", "is not JSON"),
            ("born: { replace: \"last tuesday\" }", "{ replace", "is not a date"),
            ("code: { replace: \"a value that is far too long\" }", "{ replace", "longer than 20 characters"),
            ("ip: { replace: \"10.0.0.1\" }", "{ replace", "replace supports"),
            ("tags: { replace: \"{}\" }", "{ replace", "array"),
        ])
    func typeMismatch(entry: String, at needle: String, says message: String) throws {
        let error = try #require(loadError([Self.file(entry)]))
        #expect(error.code == .typeMismatch, "\(error)")
        #expect(error.message.contains(message), "\(error)")
        #expect(error.location == Self.location(of: needle, in: entry), "\(error)")
    }

    @Test("unknown methods, truncation units and prefix lengths are refused with the accepted forms")
    func malformed() throws {
        for (entry, needle, message) in [
            ("email: scramble", "scramble", "unknown anonymization 'scramble'"),
            ("born: { truncate: week }", "week", "unknown truncation 'week'"),
            ("ip: { truncate_ip: { ipv4: 33 } }", "33", "truncate_ip.ipv4 must be a prefix length in 0...32"),
            ("ip: { truncate_ip: { ipv6: -1 } }", "-1", "truncate_ip.ipv6 must be a prefix length in 0...128"),
            ("email: { shuffle: true }", "shuffle", "unknown key 'shuffle'"),
            ("email: { replace: x, truncate: day }", "{ replace", "takes one method"),
        ] {
            let error = try #require(loadError([Self.file(entry)]), "\(entry)")
            #expect(error.message.contains(message), "\(entry): \(error)")
            #expect(error.location?.line == Self.location(of: needle, in: entry).line, "\(entry): \(error)")
        }
    }

    @Test("the tenant column is never anonymised and the subject column only nulled: rows cannot move to another tenant or person")
    func ownershipColumns() throws {
        let tenant = try #require(loadError([Self.file("tenant_id: null")]))
        #expect(tenant.message.contains("tenant column 'tenant_id' cannot be anonymized"), "\(tenant)")
        let source = Self.file("email: null").text.replacingOccurrences(
            of: "    user_id: null", with: "    user_id: { replace: \"00000000-0000-0000-0000-000000000001\" }")
        let subject = try #require(loadError([PolicySource(file: "policies/things.yaml", text: source)]))
        #expect(subject.message.contains("subject column 'user_id' can only be set to null"), "\(subject)")
    }

    @Test("every method that fits is read: hmac (and hash, now keyed), replace, truncate, truncate_ip with default and given prefixes")
    func accepted() throws {
        let methods = try Self.methods(
            """
            email: hash
            wide: hmac
            code: { replace: "gone" }
            born: { truncate: year }
            seen_at: { truncate: day }
            ip: truncate_ip
            score: { replace: "0" }
            amount: { replace: "0.00" }
            active: { replace: "false" }
            data: { replace: '{"erased": true}' }
            """)
        #expect(methods["user_id"] == .null)
        #expect(methods["email"] == .hmac)
        #expect(methods["wide"] == .hmac)
        #expect(methods["code"] == .replace("gone"))
        #expect(methods["born"] == .truncateDate(.year))
        #expect(methods["seen_at"] == .truncateDate(.day))
        #expect(methods["ip"] == .truncateIP(ipv4: 24, ipv6: 48))
        #expect(methods["data"] == .replace("{\"erased\": true}"))
        let narrower = try Self.methods("ip: { truncate_ip: { ipv4: 16, ipv6: 32 } }")
        #expect(narrower["ip"] == .truncateIP(ipv4: 16, ipv6: 32))
    }
}
