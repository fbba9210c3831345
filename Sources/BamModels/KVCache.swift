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
    /// Positions allocated (none until the first forward call; see `reserve`).
    public private(set) var capacity = 0
    /// The capacity asked for at creation, allocated by the first `reserve` when it fits.
    private let requestedCapacity: Int
    /// Bytes of one position, all layers and sets (`bytesPerPosition`).
    private let positionBytes: Int
    private let sets: Int
    private let layers: Int
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

    /// A cache for about `capacity` positions. Nothing is allocated yet: the first forward call
    /// allocates `capacity` positions if they fit in memory (else only what it needs; the cache
    /// grows as it fills), so that a capacity asked for up front — generate's prompt plus
    /// `--max-tokens` — cannot fail before a token is computed.
    public init(config: ModelConfig, capacity: Int, type: KVCacheType = .f32) {
        kvHeads = config.kvHeads
        headDim = config.headDim
        self.type = type
        requestedCapacity = max(1, capacity)
        positionBytes = Self.bytesPerPosition(config: config, type: type)
        sets = Self.sets(config)
        layers = config.layers
        keys = []
        values = []
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

    /// Makes room for `n` more positions, allocating or growing (and copying) when needed: the
    /// first time the capacity asked for at creation, later twice the current one — or, when that
    /// would not fit in memory, just what is needed. Throws, before allocating, when even that
    /// does not fit.
    func reserve(additional n: Int) throws {
        let (needed, overflow) = length.addingReportingOverflow(n)
        guard overflow || needed > capacity else { return }
        func bytes(_ positions: Int) -> Int {
            let (b, o) = positions.multipliedReportingOverflow(by: positionBytes)
            return o ? .max : b
        }
        try ModelMemory.require(overflow ? .max : bytes(needed), extraBytes: 0, purpose: "the KV cache",
                                what: "\(overflow ? "more than 2^63" : "\(needed)") positions at \(positionBytes) bytes each (\(type))",
                                hint: "use a shorter prompt or fewer new tokens" + (type == .f32 ? ", or --kv-cache f16 (half the bytes)" : ""))
        var newCapacity = max(needed, capacity == 0 ? requestedCapacity : capacity * 2)
        if bytes(newCapacity) > ModelMemory.availableBytes { newCapacity = needed }
        let rowBytes = headDim * type.bytesPerValue
        let count = kvHeads * newCapacity * headDim, old = capacity, stored = length
        func grow(_ previous: Storage?) -> Storage {
            let g = Storage(values: count, type: type)
            if let previous {
                for h in 0..<kvHeads {
                    (g.raw + h * newCapacity * rowBytes).copyMemory(from: previous.raw + h * old * rowBytes, byteCount: stored * rowBytes)
                }
            }
            return g
        }
        if keys.isEmpty {
            keys = (0..<layers).map { _ in (0..<sets).map { _ in grow(nil) } }
            values = (0..<layers).map { _ in (0..<sets).map { _ in grow(nil) } }
        } else {
            keys = keys.map { $0.map(grow) }
            values = values.map { $0.map(grow) }
        }
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
