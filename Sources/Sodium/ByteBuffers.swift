// Internal pointer plumbing shared by the wrappers in this module.

extension Array where Element == UInt8 {
    /// Calls `body` with a pointer to the bytes and their count.
    ///
    /// libsodium declares most pointer parameters `nonnull` even when the length may be 0,
    /// and Swift imports them as non-optional, but an empty array may have no storage and
    /// hand out a nil base address; a dummy byte stands in then (it is never read).
    func withBytePointer<R, E: Error>(_ body: (UnsafePointer<UInt8>, Int) throws(E) -> R) throws(E) -> R {
        try withUnsafeBufferPointer { (buffer) throws(E) -> R in
            if let base = buffer.baseAddress {
                return try body(base, buffer.count)
            }
            var dummy: UInt8 = 0
            return try body(&dummy, 0)
        }
    }

    /// Creates an array of `count` bytes filled in by `body`, which receives a non-null
    /// pointer even when `count` is 0 (see ``withBytePointer(_:)``).
    init(filling count: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Void) {
        if count == 0 {
            var dummy: UInt8 = 0
            body(&dummy)
            self = []
            return
        }
        self = [UInt8](unsafeUninitializedCapacity: count) { buffer, initializedCount in
            // Zero first so that no uninitialised memory is ever exposed, whatever `body` does.
            buffer.initialize(repeating: 0)
            initializedCount = count
            body(buffer.baseAddress!)
        }
    }
}
