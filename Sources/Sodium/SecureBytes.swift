import CSodium

/// Secret bytes (keys, seeds) held outside the Swift heap.
///
/// The bytes live in `sodium_malloc` memory: guard pages around it, locked against
/// swapping where the OS allows (`sodium_malloc` calls `sodium_mlock` itself, best effort),
/// and made read-only once filled, so the instance is immutable and safe to share between
/// threads. `deinit` releases it with `sodium_free`, which zeroes it first.
///
/// `description`, `debugDescription` and reflection (`dump`) show only the length.
public final class SecureBytes: @unchecked Sendable {
    // @unchecked: the only stored state is a pointer to memory that is written once during
    // init and then protected read-only by the MMU until deinit.

    /// The number of bytes held.
    public let count: Int
    private let pointer: UnsafeMutableRawPointer

    /// Allocates `count` bytes of secure memory and lets `fill` write all of them before
    /// the memory is made read-only. The one place memory is allocated; freed on failure.
    init(count: Int, fill: (UnsafeMutableRawBufferPointer) throws(SodiumError) -> Void) throws(SodiumError) {
        precondition(count >= 0, "SecureBytes count must not be negative")
        LibSodium.require()
        // sodium_malloc(0) still returns a usable guarded pointer, so empty keys (e.g. an
        // HMAC key of length 0 in test vectors) need no special case.
        guard let pointer = sodium_malloc(count) else {
            throw SodiumError(.outOfMemory)
        }
        do {
            try fill(UnsafeMutableRawBufferPointer(start: pointer, count: count))
        } catch {
            sodium_free(pointer)
            throw error
        }
        // Best effort: a failure only loses the write protection, not confidentiality.
        _ = sodium_mprotect_readonly(pointer)
        self.pointer = pointer
        self.count = count
    }

    /// Creates `count` bytes from the operating system's CSPRNG (`randombytes_buf`);
    /// the usual way to make a new key or seed.
    public convenience init(count: Int) throws(SodiumError) {
        try self.init(count: count) { buffer in
            if let base = buffer.baseAddress {
                randombytes_buf(base, buffer.count)
            }
        }
    }

    /// Copies `bytes` into secure memory.
    ///
    /// Only the copy is protected: a Swift array cannot be reliably zeroed (the optimiser
    /// and copy-on-write may leave other copies), so the caller's array keeps the secret
    /// until its memory is reused. Prefer ``init(count:)``, ``init(base64:count:)`` or a
    /// derivation when the bytes do not already exist in an array.
    public convenience init(copying bytes: [UInt8]) throws(SodiumError) {
        try self.init(count: bytes.count) { buffer in
            buffer.copyBytes(from: bytes)
        }
    }

    /// Decodes a key file: standard base64 (with padding) on one line, surrounding
    /// whitespace such as the trailing newline ignored.
    ///
    /// The bytes are decoded straight into secure memory. The string itself cannot be
    /// zeroed, so read the file and call this without keeping the text around.
    ///
    /// - Parameter count: the required decoded length (32 for root keys and signing seeds).
    /// - Throws: ``SodiumError/Code/invalidEncoding`` for text that is not base64,
    ///   ``SodiumError/Code/invalidKeyLength`` when it decodes to a different length.
    public convenience init(base64 text: String, count expected: Int = 32) throws(SodiumError) {
        var text = text
        try self.init(count: expected) { (buffer) throws(SodiumError) in
            // String.withUTF8 reads the text in place but only rethrows untyped errors,
            // so the reason for a failure is returned and thrown out here.
            let failure = text.withUTF8 { utf8 in
                Self.decodeBase64(utf8.trimmingASCIIWhitespace(), into: buffer)
            }
            if let failure { throw SodiumError(failure) }
        }
    }

    /// Decodes padded base64 into exactly `buffer.count` bytes; returns why not, if not.
    private static func decodeBase64(
        _ text: UnsafeBufferPointer<UInt8>, into buffer: UnsafeMutableRawBufferPointer
    ) -> SodiumError.Code? {
        // Work out the decoded length from the text first, so that a key of the wrong
        // length is reported as such (libsodium only says "did not fit") and the bytes can
        // be decoded straight into secure memory without a scratch copy.
        guard text.count % 4 == 0 else { return .invalidEncoding }
        let padding = text.reversed().prefix(2).prefix { $0 == UInt8(ascii: "=") }.count
        guard text.count / 4 * 3 - padding == buffer.count else { return .invalidKeyLength }
        guard buffer.count > 0 else { return nil }  // empty text, empty key
        var decodedCount = 0
        let status = text.withMemoryRebound(to: CChar.self) { chars in
            sodium_base642bin(
                buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), buffer.count,
                chars.baseAddress!, chars.count,
                nil, &decodedCount, nil, sodium_base64_VARIANT_ORIGINAL)
        }
        guard status == 0, decodedCount == buffer.count else { return .invalidEncoding }
        return nil
    }

    deinit {
        sodium_free(pointer)
    }

    /// Gives read-only access to the bytes for the duration of `body`.
    ///
    /// Do not let the pointer or copies of the bytes escape unless that is the point (for
    /// example when writing a key file).
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// Internal typed access for the C calls in this module. Keys are checked for length
    /// before this is used, so the pointer always covers the bytes libsodium reads.
    func withBytePointer<R, E: Error>(_ body: (UnsafePointer<UInt8>) throws(E) -> R) throws(E) -> R {
        // `self` is kept alive by the caller for the duration of this method call.
        try body(UnsafePointer(pointer.assumingMemoryBound(to: UInt8.self)))
    }

    /// The bytes as standard padded base64, the format of key files.
    ///
    /// The returned string is ordinary memory and cannot be zeroed: write it out and let it go.
    public func base64EncodedString() -> String {
        // sodium_base64_ENCODED_LEN is a C macro Swift cannot import; for the padded
        // variant it is 4 characters per started 3-byte group, plus the terminating NUL.
        let capacity = (count + 2) / 3 * 4 + 1
        var chars = [CChar](repeating: 0, count: capacity)
        defer { sodium_memzero(&chars, chars.count) }
        chars.withUnsafeMutableBufferPointer { out in
            _ = sodium_bin2base64(
                out.baseAddress!, out.count,
                pointer.assumingMemoryBound(to: UInt8.self), count,
                sodium_base64_VARIANT_ORIGINAL)
        }
        return chars.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Whether both hold the same bytes, compared in constant time (`sodium_memcmp`) so
    /// the time taken does not reveal where they first differ. Lengths are not secret.
    public func isEqual(to other: SecureBytes) -> Bool {
        guard count == other.count else { return false }
        return sodium_memcmp(pointer, other.pointer, count) == 0
    }
}

extension SecureBytes: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// `SecureBytes(32 bytes)`: the length only, never the contents.
    public var description: String { "SecureBytes(\(count) bytes)" }
    /// The same as ``description``, so debug output and `String(reflecting:)` are safe too.
    public var debugDescription: String { description }
    /// Hides the pointer from `dump` and debuggers' summaries as well.
    public var customMirror: Mirror { Mirror(self, children: ["count": count], displayStyle: .class) }
}

extension UnsafeBufferPointer where Element == UInt8 {
    /// The slice without leading and trailing spaces, tabs, CR and LF.
    fileprivate func trimmingASCIIWhitespace() -> UnsafeBufferPointer<UInt8> {
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        var start = startIndex
        var end = endIndex
        while start < end, isSpace(self[start]) { start += 1 }
        while end > start, isSpace(self[end - 1]) { end -= 1 }
        return UnsafeBufferPointer(rebasing: self[start..<end])
    }
}
