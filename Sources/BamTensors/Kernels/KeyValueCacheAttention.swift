/// The keys and values of one KV-cache set as the cache stores them, (NKV, S, HS) each.
public enum KeyValueCache {
    /// float32, read in place.
    case f32(keys: UnsafePointer<Float>, values: UnsafePointer<Float>)
    /// IEEE half. The visible positions of every key/value head are widened into `scratch`
    /// (`f16ScratchCount` floats) before the float32 attention runs on them: the widening reads
    /// half the bytes a float32 cache would, and the float32 copy it writes is read back from
    /// cache by the products (one head's keys over 512 positions of 64 are 128 KiB).
    case f16(keys: UnsafeRawPointer, values: UnsafeRawPointer, scratch: UnsafeMutablePointer<Float>)

    /// Floats the f16 case's scratch must hold: the visible keys and values of every head.
    public static func f16ScratchCount(_ s: AttentionShape) -> Int { 2 * s.NKV * s.keys * s.HS }
}

/// `attentionForward` over a cache of either type. An f16 cache gives the attention of its
/// stored (rounded) keys and values computed in float32, as llama.cpp does with its default
/// f16 cache.
public func attentionForward(_ out: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>, cache: KeyValueCache,
                             scores: UnsafeMutablePointer<Float>, shape s: AttentionShape) {
    switch cache {
    case let .f32(k, v):
        attentionForward(out, q, k, v, scores: scores, shape: s)
    case let .f16(k, v, scratch):
        let span = s.keys * s.HS
        let kernels = WeightKernels.active
        let kP = SendableRawPointer(k), vP = SendableRawPointer(v), scP = SendablePointer(scratch)
        // Item i widens keys (i < NKV) or values of head i % NKV into its own slice of scratch:
        // keys (NKV, keys, HS), then values (NKV, keys, HS).
        let widen: @Sendable (Int) -> Void = { i in
            let head = i % s.NKV
            let source = (i < s.NKV ? kP : vP).pointer + head * s.S * s.HS * 2
            kernels.f16ToF32(scP.pointer + i * span, source, count: span)
        }
        // Split from 64k values (128 KiB of halves, about a hand-off's cost to widen on one core);
        // inside a fan-out the items would go to Dispatch, so only prefill-sized caches are split.
        if 2 * s.NKV * span >= (BLASThreads.inParallelRegion ? 1 << 20 : 1 << 16) {
            BLASThreads.fanOut(2 * s.NKV, widen)
        } else {
            for i in 0..<(2 * s.NKV) { widen(i) }
        }
        var widened = s
        widened.S = s.keys
        attentionForward(out, q, scratch, scratch + s.NKV * span, scores: scores, shape: widened)
    }
}
