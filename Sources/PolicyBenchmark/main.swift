// Median time per policy decision over the seed patterns (not a test; DESIGN target ≤ 1 µs).
//
//   swift run -c release PolicyBenchmark [policies-directory]
//
// Each pattern is timed in batches; a batch's time divided by its size is one sample, and the
// median of the samples is reported, per pattern and over all samples together.
import Foundation
import Policy

let directory = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "policies"
let policies: PolicySet
do {
    policies = try PolicySet.load(directory: directory)
} catch {
    FileHandle.standardError.write(Data("PolicyBenchmark: \(error)\n".utf8))
    exit(1)
}

let tenant = UUID()
let alice = UUID()
let bob = UUID()
let privateProject = UUID()
let publicProject = UUID()

func project(_ id: UUID, owner: UUID, isPublic: Bool) -> PolicyRow {
    [
        "id": .uuid(id), "tenant_id": .uuid(tenant), "user_id": .uuid(owner), "name": "site", "type": "website",
        "status": "draft", "is_public": .bool(isPublic),
    ]
}

let aliceAuth = AuthContext(role: "authenticated", userID: alice, tenantID: tenant)
let bobAuth = AuthContext(role: "authenticated", userID: bob, tenantID: tenant)
let anonAuth = AuthContext(role: "anon", tenantID: tenant, claims: ["session_id": "session-1"])
let parents = InMemoryRows([
    "projects": [project(privateProject, owner: alice, isPublic: false), project(publicProject, owner: alice, isPublic: true)]
])

let secret: PolicyRow = ["id": .uuid(UUID()), "tenant_id": .uuid(tenant), "user_id": .uuid(alice), "service_name": "openai", "version": 1]
let alicesPrivate = project(privateProject, owner: alice, isPublic: false)
let alicesPublic = project(publicProject, owner: alice, isPublic: true)
var renamed = alicesPrivate
renamed["name"] = "renamed"
let sitemap: PolicyRow = ["id": .uuid(UUID()), "tenant_id": .uuid(tenant), "project_id": .uuid(publicProject), "title": "map"]
let anonymousSession: PolicyRow = ["tenant_id": .uuid(tenant), "session_id": "session-1", "user_id": .null]

struct Pattern {
    let name: String
    let expected: PolicyDecision
    let decide: () throws -> PolicyDecision
}

let patterns: [Pattern] = [
    Pattern(name: "owner-only select (user_secrets)", expected: .allowed) {
        try policies.decide(.select, on: "user_secrets", auth: aliceAuth, existing: secret)
    },
    Pattern(name: "owner-or-public select (projects)", expected: .allowed) {
        try policies.decide(.select, on: "projects", auth: bobAuth, existing: alicesPublic)
    },
    Pattern(name: "owner-or-public denied (projects)", expected: .rowHidden) {
        try policies.decide(.select, on: "projects", auth: bobAuth, existing: alicesPrivate)
    },
    Pattern(name: "insert with check (projects)", expected: .allowed) {
        try policies.decide(.insert, on: "projects", auth: aliceAuth, new: alicesPrivate)
    },
    Pattern(name: "update old + new row (projects)", expected: .allowed) {
        try policies.decide(.update, on: "projects", auth: aliceAuth, existing: alicesPrivate, new: renamed)
    },
    Pattern(name: "EXISTS via parent (sitemaps → projects)", expected: .allowed) {
        try policies.decide(.select, on: "sitemaps", auth: bobAuth, existing: sitemap, lookup: parents)
    },
    Pattern(name: "anonymous session claim (ai_assistant_sessions)", expected: .allowed) {
        try policies.decide(.select, on: "ai_assistant_sessions", auth: anonAuth, existing: anonymousSession)
    },
]

let batchSize = 2_000
let batches = 300
let warmupBatches = 20

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

var allSamples: [Double] = []
var checksum = 0
print(
    "policy decision benchmark: \(policies.tables.count) tables from \(directory), \(batches) batches × \(batchSize) decisions per pattern")
do {
    for pattern in patterns {
        let first = try pattern.decide()
        guard first == pattern.expected else {
            FileHandle.standardError.write(Data("PolicyBenchmark: \(pattern.name) decided \(first), expected \(pattern.expected)\n".utf8))
            exit(1)
        }
        var samples: [Double] = []
        for batch in 0..<(warmupBatches + batches) {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<batchSize where try pattern.decide() == .allowed {
                checksum &+= 1
            }
            let elapsed = DispatchTime.now().uptimeNanoseconds - start
            if batch >= warmupBatches {
                samples.append(Double(elapsed) / Double(batchSize))
            }
        }
        allSamples += samples
        let name = pattern.name.padding(toLength: 50, withPad: " ", startingAt: 0)
        print("  \(name) median \(String(format: "%6.0f", median(samples))) ns")
    }
} catch {
    FileHandle.standardError.write(Data("PolicyBenchmark: \(error)\n".utf8))
    exit(1)
}

let overall = median(allSamples)
let target = 1_000.0
print(String(format: "policy decision median: %.0f ns (target ≤ %.0f ns) ratio %.2f", overall, target, overall / target))
if checksum == 0 { print("(no decision allowed — check the policies)") }
