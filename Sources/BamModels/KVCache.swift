import BamTensors

/// The number type the KV cache keeps keys and values in.
public enum KVCacheType: String, Sendable, CaseIterable, CustomStringConvertible {
    /// float32, as transformers keeps them: the logits equal transformers' (the default).
    case f32
    /// IEEE half, llama.cpp's default: half the cache memory, and half the bytes a decode step
    /// reads from it. Keys and values are rounded to nearest even when stored, so the logits
    /// move by about f16's precision (2^-11 relative) from transformers' float32 cache.
    case f16

    /// Bytes one stored key or value element takes.
    public var bytesPerValue: Int {
        switch self {
        case .f32: 4
        case .f16: 2
        }
    }

    public var description: String { rawValue }
}

/// Keys and values of every position processed so far, per layer and per key/value set
/// (one set for dense, BTX and shared-KV BAM; one per attention expert for expert-KV BAM —
/// which is why expert-KV needs E times the cache memory, docs/methods.md).
///
/// Layout per set: keys (NKV, S, HS) and values (NKV, S, HS) of `type`, S = capacity, so that
/// each key/value head is one contiguous matrix for the attention GEMMs.
public final class KVCache: @unchecked Sendable {
    public let kvHeads: Int
    public let headDim: Int
    public let type: KVCacheType
    public private(set) var capacity: Int
    /// Positions already stored (the next token's position).
    public private(set) var length = 0
    private var keys: [[Storage]]     // [layer][set] (NKV, S, HS)
    private var values: [[Storage]]

    /// One (NKV, S, HS) buffer of keys or values. Not zeroed: only stored positions are read
    /// (zeroing a 58M Llama's 16.8 MB cost 9 ms of a 512-token prefill). Debug builds, which
    /// run the tests, fill it with NaN (f32) or half NaN (f16), so that reading a position never
    /// stored shows in the results.
    final class Storage: @unchecked Sendable {
        let raw: UnsafeMutableRawPointer
        let byteCount: Int

        init(values: Int, type: KVCacheType) {
            byteCount = max(1, values) * type.bytesPerValue
            raw = .allocate(byteCount: byteCount, alignment: 64)
            #if DEBUG
            switch type {
            case .f32: raw.initializeMemory(as: Float.self, repeating: .nan, count: max(1, values))
            case .f16: raw.initializeMemory(as: UInt16.self, repeating: 0x7E00, count: max(1, values))
            }
            #endif
        }

        deinit { raw.deallocate() }
    }

    public init(config: ModelConfig, capacity: Int, type: KVCacheType = .f32) {
        kvHeads = config.kvHeads
        headDim = config.headDim
        self.type = type
        self.capacity = max(1, capacity)
        let sets = Self.sets(config), count = config.kvHeads * max(1, capacity) * config.headDim
        keys = (0..<config.layers).map { _ in (0..<sets).map { _ in Storage(values: count, type: type) } }
        values = (0..<config.layers).map { _ in (0..<sets).map { _ in Storage(values: count, type: type) } }
    }

    /// Bytes the cache needs per position (all layers and sets) when it keeps `type`, for `inspect`.
    public static func bytesPerPosition(config: ModelConfig, type: KVCacheType = .f32) -> Int {
        config.layers * sets(config) * 2 * config.kvDim * type.bytesPerValue
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
        let rowBytes = headDim * type.bytesPerValue
        func grow(_ old: Storage) -> Storage {
            let g = Storage(values: kvHeads * newCapacity * headDim, type: type)
            for h in 0..<kvHeads {
                (g.raw + h * newCapacity * rowBytes).copyMemory(from: old.raw + h * capacity * rowBytes, byteCount: length * rowBytes)
            }
            return g
        }
        keys = keys.map { $0.map(grow) }
        values = values.map { $0.map(grow) }
        capacity = newCapacity
    }

    /// Writes new keys/values (T, NKV, HS) for positions length..<length+T of one layer and set,
    /// rounding them to `type`.
    func store(layer: Int, set: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, T: Int) {
        let kc = keys[layer][set].raw, vc = values[layer][set].raw
        let kernels = WeightKernels.active
        for t in 0..<T {
            for h in 0..<kvHeads {
                let dst = (h * capacity + length + t) * headDim
                let src = (t * kvHeads + h) * headDim
                switch type {
                case .f32:
                    (kc.assumingMemoryBound(to: Float.self) + dst).update(from: k + src, count: headDim)
                    (vc.assumingMemoryBound(to: Float.self) + dst).update(from: v + src, count: headDim)
                case .f16:
                    kernels.f32ToF16(kc + 2 * dst, k + src, count: headDim)
                    kernels.f32ToF16(vc + 2 * dst, v + src, count: headDim)
                }
            }
        }
    }

    /// The stored keys and values of one layer and set, as `attentionForward` reads them
    /// (`scratch` gives the float32 buffer an f16 cache is widened into, `KeyValueCache.f16ScratchCount`).
    func view(layer: Int, set: Int, scratch: (Int) -> UnsafeMutablePointer<Float>, shape: AttentionShape) -> KeyValueCache {
        let k = UnsafeRawPointer(keys[layer][set].raw), v = UnsafeRawPointer(values[layer][set].raw)
        switch type {
        case .f32:
            return .f32(keys: k.assumingMemoryBound(to: Float.self), values: v.assumingMemoryBound(to: Float.self))
        case .f16:
            return .f16(keys: k, values: v, scratch: scratch(KeyValueCache.f16ScratchCount(shape)))
        }
    }

    func advance(_ T: Int) { length += T }

    /// Drops positions from `newLength` on (generation that backtracks, perplexity chunks).
    public func truncate(to newLength: Int) { length = min(length, max(0, newLength)) }
}
