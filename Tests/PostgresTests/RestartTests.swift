import Foundation
import Postgres
import TestSupport
import Testing

/// A real server restart, on a private cluster of its own so other tests keep their server.
@Suite("Server restart")
struct RestartTests {
    private static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/lib.sh").path

    /// Runs functions of scripts/lib.sh with `$1` = `directory`; returns their stdout.
    @discardableResult
    private static func cluster(_ commands: String, _ directory: String) throws -> String {
        let environment = ProcessInfo.processInfo.environment.merging(["PG_FSYNC": "off"]) { _, new in new }
        let result = try Subprocess.run("/bin/bash", ["-c", "source \"$0\"; \(commands)", scripts, directory], environment: environment)
        guard result.status == 0 else {
            throw PostgresError(.connectionFailed, "cluster command failed (\(result.status)): \(commands): \(result.stderr)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("a pool in use recovers by itself when the server restarts")
    func recoversAfterRestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("restart-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        defer {
            _ = try? Self.cluster("cluster_stop \"$1\"", directory)
            try? FileManager.default.removeItem(atPath: directory)
        }
        let url = try Self.cluster("cluster_init \"$1\" >/dev/null; cluster_start \"$1\"; cluster_url \"$1\"", directory)
        let pool = ConnectionPool(configuration: try PostgresConfiguration(url), options: .init(maxConnections: 4))
        defer { pool.close() }

        // Keep the pool busy throughout.
        let load = Task {
            var successes = 0
            while !Task.isCancelled {
                if (try? await pool.query("SELECT 1")) != nil { successes += 1 }
                try? await Task.sleep(for: .milliseconds(5))
            }
            return successes
        }
        try await Task.sleep(for: .milliseconds(200))
        try Self.cluster("cluster_stop \"$1\"; cluster_start \"$1\"", directory)

        // After the restart every query succeeds, on the same pool, without intervention.
        for _ in 0..<20 {
            #expect(try await pool.query("SELECT 42 AS answer").first?.decode("answer", as: Int.self) == 42)
        }
        load.cancel()
        #expect(await load.value > 0)
        #expect(pool.statistics.open <= 4)
    }
}
