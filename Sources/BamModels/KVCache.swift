import BamTensors

/// Keys and values of every position processed so far, per layer and per key/value set
/// (one set for dense, BTX and shared-KV BAM; one per attention expert for expert-KV BAM —
/// which is why expert-KV needs E times the cache memory, docs/methods.md).
///
/// Layout per set: keys (NKV, S, HS) and values (NKV, S, HS), S = capacity, so that each
/// key/value head is one contiguous matrix for the attention GEMMs.
public final class KVCache: @unchecked Sendable {
    public let kvHeads: Int
    public let headDim: Int
    public private(set) var capacity: Int
    /// Positions already stored (the next token's position).
    public private(set) var length = 0
    var keys: [[Tensor]]     // [layer][set] (NKV, S, HS)
    var values: [[Tensor]]

    public init(config: ModelConfig, capacity: Int) {
        kvHeads = config.kvHeads
        headDim = config.headDim
        self.capacity = max(1, capacity)
        let sets = Self.sets(config)
        keys = (0..<config.layers).map { _ in (0..<sets).map { _ in Tensor(uninitializedShape: [config.kvHeads, max(1, capacity), config.headDim]) } }
        values = (0..<config.layers).map { _ in (0..<sets).map { _ in Tensor(uninitializedShape: [config.kvHeads, max(1, capacity), config.headDim]) } }
    }

    /// Bytes the cache needs per position (all layers and sets), for `inspect`.
    public static func bytesPerPosition(config: ModelConfig) -> Int {
        config.layers * sets(config) * 2 * config.kvDim * MemoryLayout<Float>.size
    }

    /// Key/value sets per layer: one for a single attention, else the mixture's.
    static func sets(_ config: ModelConfig) -> Int {
        switch config.attention {
        case .single: 1
        case let .mixture(moa): moa.keyValueSets
        }
    }

    public var byteCount: Int { keys.reduce(0) { $0 + $1.reduce(0) { $0 + $1.byteCount } } * 2 }

    public func reset() { length = 0 }

    /// Makes room for `n` more positions, growing (and copying) when needed.
    func reserve(additional n: Int) {
        let needed = length + n
        guard needed > capacity else { return }
        let newCapacity = max(needed, capacity * 2)
        func grow(_ t: Tensor) -> Tensor {
            let g = Tensor(uninitializedShape: [kvHeads, newCapacity, headDim])
            for h in 0..<kvHeads {
                (g.data + h * newCapacity * headDim).update(from: t.data + h * capacity * headDim, count: length * headDim)
            }
            return g
        }
        keys = keys.map { $0.map(grow) }
        values = values.map { $0.map(grow) }
        capacity = newCapacity
    }

    /// Writes new keys/values (T, NKV, HS) for positions length..<length+T of one layer and set.
    func store(layer: Int, set: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, T: Int) {
        let kc = keys[layer][set].data, vc = values[layer][set].data
        for t in 0..<T {
            for h in 0..<kvHeads {
                let dst = (h * capacity + length + t) * headDim
                let src = (t * kvHeads + h) * headDim
                (kc + dst).update(from: k + src, count: headDim)
                (vc + dst).update(from: v + src, count: headDim)
            }
        }
    }

    func advance(_ T: Int) { length += T }

    /// Drops positions from `newLength` on (generation that backtracks, perplexity chunks).
    public func truncate(to newLength: Int) { length = min(length, max(0, newLength)) }
}
