/// A command's input or outcome refused: printed as one `error:` line (or the `--json` error
/// document) and exit 1 (``Output/run(_:)``). Configuration problems are ``ConfigurationError``,
/// the modules' own errors pass through as they are.
struct CommandError: Error, CustomStringConvertible {
    var message: String
    var hint: String?

    init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }

    var description: String {
        hint.map { "\(message) (hint: \($0))" } ?? message
    }
}
