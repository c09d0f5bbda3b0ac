/// Bad configuration or environment, found before anything was served: a variable out of range,
/// a key file with the wrong mode, a database login that would escape row level security.
///
/// The executables print it and exit; the gateway's error map answers it as 500 `PGW001` should
/// one surface in a request. Messages name the variable or file and the fix, never a secret.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var hint: String?

    public init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }

    public var description: String {
        hint.map { "\(message) (hint: \($0))" } ?? message
    }
}
