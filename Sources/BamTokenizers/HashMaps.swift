import Foundation

// Open-addressing hash maps for the hot paths of encoding. Swift's Dictionary would need a String
// or [UInt8] key per lookup (an allocation, SipHash, and for String canonical-equivalence
// comparison, which would merge the NFC and NFD spellings of a token); these take a pointer and a
// length instead and compare bytes exactly.

@inline(__always)
func hashBytes(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ (UInt64(n) &* 0xC2B2_AE3D_27D4_EB4F)
    let raw = UnsafeRawPointer(p)
    var i = 0
    while i + 8 <= n {
        let v = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        h = (h ^ v) &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 32
        i += 8
    }
    if i < n {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            v |= UInt64(p[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ v) &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 29
    }
    h ^= h >> 33
    h = h &* 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 33
    return h
}

/// Byte string -> UInt64. Keys live in one arena; insertion overwrites.
struct ByteStringMap: Sendable {
    private struct Slot {
        var hash: UInt64 = 0
        var offset: Int32 = -1  // -1: empty
        var length: Int32 = 0
        var value: UInt64 = 0
    }

    private var arena: [UInt8] = []
    private var slots: [Slot]
    private var mask: Int
    private(set) var count = 0

    init(minimumCapacity: Int = 16) {
        var cap = 16
        while cap < minimumCapacity * 2 { cap <<= 1 }
        slots = Array(repeating: Slot(), count: cap)
        mask = cap - 1
    }

    func get(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64? {
        let h = hashBytes(p, n)
        return slots.withUnsafeBufferPointer { s in
            arena.withUnsafeBufferPointer { a in
                var i = Int(truncatingIfNeeded: h) & mask
                while true {
                    let slot = s[i]
                    if slot.offset < 0 { return nil }
                    if slot.hash == h, Int(slot.length) == n,
                       n == 0 || memcmp(a.baseAddress! + Int(slot.offset), p, n) == 0 {
                        return slot.value
                    }
                    i = (i + 1) & mask
                }
            }
        }
    }

    func get(_ key: [UInt8]) -> UInt64? {
        key.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress else { return withEmptyPointer { get($0, 0) } }
            return get(base, b.count)
        }
    }

    mutating func set(_ p: UnsafePointer<UInt8>, _ n: Int, _ value: UInt64) {
        if (count + 1) * 2 > slots.count { grow() }
        let h = hashBytes(p, n)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let slot = slots[i]
            if slot.offset < 0 { break }
            if slot.hash == h, Int(slot.length) == n,
               arena.withUnsafeBufferPointer({ n == 0 || memcmp($0.baseAddress! + Int(slot.offset), p, n) == 0 }) {
                slots[i].value = value
                return
            }
            i = (i + 1) & mask
        }
        let offset = arena.count
        arena.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        slots[i] = Slot(hash: h, offset: Int32(offset), length: Int32(n), value: value)
        count += 1
    }

    mutating func set(_ key: [UInt8], _ value: UInt64) {
        key.withUnsafeBufferPointer { b in
            if let base = b.baseAddress { set(base, b.count, value) } else { withEmptyPointer { set($0, 0, value) } }
        }
    }

    private mutating func grow() {
        let old = slots
        let cap = slots.count * 2
        slots = Array(repeating: Slot(), count: cap)
        mask = cap - 1
        for slot in old where slot.offset >= 0 {
            var i = Int(truncatingIfNeeded: slot.hash) & mask
            while slots[i].offset >= 0 { i = (i + 1) & mask }
            slots[i] = slot
        }
    }

    /// Every (key, value), in no particular order.
    func forEach(_ body: ([UInt8], UInt64) -> Void) {
        for slot in slots where slot.offset >= 0 {
            body(Array(arena[Int(slot.offset)..<Int(slot.offset) + Int(slot.length)]), slot.value)
        }
    }
}

@inline(__always)
private func withEmptyPointer<R>(_ body: (UnsafePointer<UInt8>) -> R) -> R {
    var zero: UInt8 = 0
    return withUnsafePointer(to: &zero) { body($0) }
}

/// (left id, right id) -> (merge rank, merged id), for the BPE merge loop.
struct PairMap: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    private var shift: UInt64
    private(set) var count = 0
    private static let empty = UInt64.max

    init(minimumCapacity: Int) {
        var cap = 16
        var bits: UInt64 = 4
        while cap < minimumCapacity * 2 { cap <<= 1; bits += 1 }
        keys = Array(repeating: PairMap.empty, count: cap)
        values = Array(repeating: 0, count: cap)
        mask = cap - 1
        shift = 64 - bits
    }

    @inline(__always)
    static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        (UInt64(UInt32(bitPattern: a)) << 32) | UInt64(UInt32(bitPattern: b))
    }

    @inline(__always)
    private func index(_ k: UInt64) -> Int { Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// Inserts or overwrites (a later duplicate merge wins, as in HF's HashMap collect).
    mutating func set(_ a: Int32, _ b: Int32, rank: Int32, newId: Int32) {
        if (count + 1) * 2 > keys.count { grow() }
        let k = PairMap.key(a, b)
        let v = (UInt64(UInt32(bitPattern: rank)) << 32) | UInt64(UInt32(bitPattern: newId))
        var i = index(k)
        while keys[i] != PairMap.empty {
            if keys[i] == k { values[i] = v; return }
            i = (i + 1) & mask
        }
        keys[i] = k
        values[i] = v
        count += 1
    }

    /// The merge for (a, b) as (rank, newId), or nil.
    @inline(__always)
    func get(_ a: Int32, _ b: Int32) -> (rank: Int32, newId: Int32)? {
        let k = PairMap.key(a, b)
        return keys.withUnsafeBufferPointer { ks in
            var i = index(k)
            while true {
                let cur = ks[i]
                if cur == k {
                    let v = values[i]
                    return (Int32(truncatingIfNeeded: v >> 32), Int32(truncatingIfNeeded: v))
                }
                if cur == PairMap.empty { return nil }
                i = (i + 1) & mask
            }
        }
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        let cap = keys.count * 2
        keys = Array(repeating: PairMap.empty, count: cap)
        values = Array(repeating: 0, count: cap)
        mask = cap - 1
        shift -= 1
        for (k, v) in zip(oldKeys, oldValues) where k != PairMap.empty {
            var i = index(k)
            while keys[i] != PairMap.empty { i = (i + 1) & mask }
            keys[i] = k
            values[i] = v
        }
    }
}
