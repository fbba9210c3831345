/// The seeded randomness and hashing every generator uses.
///
/// Nothing here touches Foundation's or the standard library's random APIs: `Int.random(in:using:)`,
/// `shuffled(using:)` and `randomElement(using:)` are free to change their algorithms between Swift
/// releases, and the corpora must be byte-identical on every platform and toolchain. Everything is
/// integer arithmetic on UInt64.

/// SplitMix64 (Steele, Lea and Flood 2014): a 64-bit state advanced by the golden-ratio increment and
/// a bijective finaliser. Small, fast, and good enough for text grammars.
/// (BamModels has its own copy for weight initialisation; BamCorpora depends on nothing.)
struct CorpusRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// A stream for one purpose (`tags`: domain, split, sub-source...), independent of the other
    /// purposes' streams under the same user seed.
    init(seed: UInt64, _ tags: String...) {
        var s = mix64(seed)
        for tag in tags { s = mix64(s ^ fnv1a64(tag.utf8)) }
        state = s
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return mix64(state)
    }

    /// Uniform in 0..<n (n > 0), exactly: Lemire's multiply-shift with rejection of the biased sliver.
    mutating func below(_ n: Int) -> Int {
        precondition(n > 0, "CorpusRandom.below: n must be positive")
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Uniform in the closed range.
    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + below(range.count) }

    /// True with probability `percent` / 100.
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// An index drawn with the given integer weights.
    mutating func weighted(_ weights: [Int]) -> Int {
        var r = below(weights.reduce(0, +))
        for (i, w) in weights.enumerated() {
            if r < w { return i }
            r -= w
        }
        return weights.count - 1
    }

    /// Fisher-Yates with our own `below`.
    mutating func shuffle<T>(_ a: inout [T]) {
        var i = a.count - 1
        while i > 0 {
            let j = below(i + 1)
            a.swapAt(i, j)
            i -= 1
        }
    }

    /// `k` distinct items in a random order.
    mutating func sample<T>(_ items: [T], _ k: Int) -> [T] {
        var a = items
        shuffle(&a)
        return Array(a.prefix(k))
    }
}

/// SplitMix64's finaliser: a bijection on UInt64 with good avalanche.
@inline(__always)
func mix64(_ x: UInt64) -> UInt64 {
    var z = x
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// 64-bit FNV-1a of a byte sequence.
public func fnv1a64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h &*= 0x0000_0100_0000_01B3
    }
    return h
}
