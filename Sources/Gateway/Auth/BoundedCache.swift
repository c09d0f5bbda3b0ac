/// A size-bounded map that forgets the least recently used entries first (approximately).
///
/// Two generations instead of a linked list: new and recently read entries live in `young`; when
/// it fills half the capacity it becomes `old` and the previous `old` is dropped whole. A read
/// that hits `old` promotes the entry. O(1) per operation, no per-entry bookkeeping, and never
/// more than `capacity` entries — enough to keep a flood of distinct keys from growing memory.
struct BoundedCache<Key: Hashable, Value> {
    let capacity: Int
    private var young: [Key: Value] = [:]
    private var old: [Key: Value] = [:]

    init(capacity: Int) {
        self.capacity = max(2, capacity)
    }

    var count: Int { young.count + old.count }

    mutating func value(for key: Key) -> Value? {
        if let value = young[key] { return value }
        guard let value = old.removeValue(forKey: key) else { return nil }
        insert(value, for: key)
        return value
    }

    mutating func insert(_ value: Value, for key: Key) {
        old.removeValue(forKey: key)
        young[key] = value
        if young.count >= capacity / 2 {
            old = young
            young = [:]
        }
    }

    mutating func removeValue(for key: Key) {
        young.removeValue(forKey: key)
        old.removeValue(forKey: key)
    }

    /// O(count): for rare events (a revoked key), not per request.
    mutating func removeAll(where shouldRemove: (Value) -> Bool) {
        young = young.filter { !shouldRemove($0.value) }
        old = old.filter { !shouldRemove($0.value) }
    }

    mutating func removeAll() {
        young.removeAll()
        old.removeAll()
    }
}

extension BoundedCache: Sendable where Key: Sendable, Value: Sendable {}
