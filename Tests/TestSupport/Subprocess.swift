import Foundation

/// Runs a program to completion and collects its output, for tests that drive the executables or
/// the cluster scripts. Uses posix_spawn and waitpid directly: Foundation's `Process` can miss the
/// exit of a child whose own children daemonise (a Postgres server), and hang.
public enum Subprocess {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        public var stderrLines: [Substring] { stderr.split(separator: "\n") }
    }

    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]) throws -> Result {
        try start(executable, arguments, environment: environment).wait()
    }

    /// The path of one of the package's executables: built next to the test bundle, else in `.build/debug`.
    public static func product(_ name: String) -> String {
        let nextToTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path
        return FileManager.default.fileExists(atPath: nextToTests)
            ? nextToTests : FileManager.default.currentDirectoryPath + "/.build/debug/" + name
    }

    /// Runs one of the package's executables (``product(_:)``) with exactly `environment`, plus a
    /// system `PATH` where it sets none.
    public static func runProduct(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        try run(product(name), arguments, environment: environment.merging(["PATH": "/usr/bin:/bin"]) { current, _ in current })
    }

    /// A program started with ``start(_:_:environment:)``: kill it, wait for it.
    public final class Running: @unchecked Sendable {
        public let pid: pid_t
        let directory: URL

        init(pid: pid_t, directory: URL) {
            self.pid = pid
            self.directory = directory
        }

        /// What it wrote to stdout so far.
        public var stdout: String { (try? String(contentsOfFile: directory.appendingPathComponent("out").path, encoding: .utf8)) ?? "" }

        /// Whether it has exited (without collecting it: ``wait()`` still does).
        public var hasExited: Bool {
            // An exited, uncollected child is a zombie: state `Z` after the command name in /proc.
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return true }
            return stat[close...].dropFirst(2).first == "Z"
        }

        public func kill(_ signal: Int32 = SIGKILL) {
            _ = Foundation.kill(pid, signal)
        }

        /// Waits for the exit and collects the output.
        public func wait() -> Result {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            defer { try? FileManager.default.removeItem(at: directory) }
            let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return Result(
                status: exitStatus,
                stdout: (try? String(contentsOfFile: directory.appendingPathComponent("out").path, encoding: .utf8)) ?? "",
                stderr: (try? String(contentsOfFile: directory.appendingPathComponent("err").path, encoding: .utf8)) ?? "")
        }
    }

    /// Starts a program without waiting for it (for tests that kill a process mid-run).
    public static func start(_ executable: String, _ arguments: [String], environment: [String: String]) throws -> Running {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("subprocess-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, directory.appendingPathComponent("out").path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, directory.appendingPathComponent("err").path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else {
            throw CocoaError(
                .fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "cannot run \(executable): \(String(cString: strerror(spawned)))"])
        }
        return Running(pid: pid, directory: directory)
    }
}
