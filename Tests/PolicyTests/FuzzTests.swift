import Foundation
import Policy
import Testing

/// SplitMix64: a fixed seed keeps every run's inputs the same.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private let fragments = [
    "(", ")", "'", "\"", "::", "->>", " AND ", " OR ", "NOT ", " IS NULL", "EXISTS (SELECT 1 FROM projects p WHERE ",
    "auth.uid()", "ARRAY[", "]", ",", " = ANY (", "-", "1e", "E'\\", "\n", ": ", "- ", "[", "{", "}", "#", "&a", "*a", "\u{0}", "é",
]

private func mutate(_ text: String, using generator: inout SeededGenerator) -> String {
    var scalars = Array(text.unicodeScalars)
    for _ in 0..<Int.random(in: 1...4, using: &generator) {
        let position = scalars.isEmpty ? 0 : Int.random(in: 0..<scalars.count, using: &generator)
        switch Int.random(in: 0..<3, using: &generator) {
        case 0 where !scalars.isEmpty:
            scalars.removeSubrange(position..<min(scalars.count, position + Int.random(in: 1...8, using: &generator)))
        case 1:
            scalars.insert(contentsOf: Array(fragments.randomElement(using: &generator)!.unicodeScalars), at: position)
        default:
            if !scalars.isEmpty { scalars.swapAt(position, Int.random(in: 0..<scalars.count, using: &generator)) }
        }
    }
    var result = ""
    result.unicodeScalars.append(contentsOf: scalars)
    return result
}

@Suite("Fuzzing")
struct FuzzTests {
    @Test("mutated expressions never crash the parser: they parse or fail with a PolicyError")
    func expressions() throws {
        let live = try LiveFixture.shared.get()
        let texts = live.policies.flatMap { [$0.qual, $0.withCheck].compactMap { $0 } }
        var generator = SeededGenerator(state: 0x5EED)
        for _ in 0..<3_000 {
            let text = mutate(texts.randomElement(using: &generator)!, using: &generator)
            do {
                let parsed = try PolicyExpression.parse(text)
                #expect(try PolicyExpression.parse(parsed.description) == parsed, "\(text)")
            } catch is PolicyError {
                continue
            }
        }
    }

    @Test("mutated policy files never crash the loader: they load or fail with a located PolicyError")
    func files() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Repository.policies).filter { $0.hasSuffix(".yaml") }.sorted()
        let sources = try names.map { name in
            PolicySource(file: "policies/\(name)", text: try String(contentsOfFile: Repository.policies + "/" + name, encoding: .utf8))
        }
        var generator = SeededGenerator(state: 0xF11E)
        for _ in 0..<100 {
            var mutated = sources
            let index = Int.random(in: 0..<mutated.count, using: &generator)
            mutated[index].text = mutate(mutated[index].text, using: &generator)
            do {
                _ = try PolicySet.load(sources: mutated)
            } catch let error as PolicyError {
                #expect(error.location != nil, "\(error)")
            }
        }
    }
}
