import CSodium

/// Process-wide libsodium set-up.
///
/// Named `LibSodium` rather than `Sodium`: a type with the same name as its module shadows
/// the module, which would break module-qualified names such as `Sodium.SHA256` in callers
/// that also import another library with a `SHA256`.
public enum LibSodium {
    /// `sodium_init()` runs exactly once: Swift initialises a `static let` lazily under a
    /// lock, so concurrent first calls are safe. It returns 0 on first success, 1 if
    /// something else in the process already initialised the library, -1 on failure.
    private static let initialized: Bool = sodium_init() >= 0

    /// Initialises libsodium if that has not happened yet.
    ///
    /// Every entry point of this module does this itself; call it at start-up only to turn
    /// the (practically impossible) failure into a clean error instead of a trap later.
    public static func ensureInitialized() throws(SodiumError) {
        guard initialized else { throw SodiumError(.initializationFailed) }
    }

    /// Used inside the module before any libsodium call. Traps, because continuing without
    /// a working CSPRNG and CPU feature detection would be unsafe, and making every hash or
    /// random call `throws` for an event that does not happen in practice is not worth it.
    static func require() {
        precondition(initialized, "sodium_init() failed: libsodium is unusable in this process")
    }
}
