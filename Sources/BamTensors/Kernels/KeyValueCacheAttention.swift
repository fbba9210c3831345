import BamKernelsC

/// The keys and values of one KV-cache set as the cache stores them, (NKV, S, HS) each.
public enum KeyValueCache {
    /// float32, read in place.
    case f32(keys: UnsafePointer<Float>, values: UnsafePointer<Float>)
    /// IEEE half. A decode step reads it in place; more query rows widen the visible keys and
    /// values into `scratch` (`f16ScratchCount` floats) for the float32 GEMMs.
    case f16(keys: UnsafeRawPointer, values: UnsafeRawPointer, scratch: UnsafeMutablePointer<Float>)

    /// Floats the f16 case's scratch must hold: none for a decode step (T = 1); for more rows,
    /// the visible keys and values of every key/value head.
    public static func f16ScratchCount(_ s: AttentionShape) -> Int {
        s.T == 1 ? 0 : 2 * s.NKV * s.keys * s.HS
    }
}

/// `attentionForward` over a cache of either type. An f16 cache gives the attention of its
/// stored (rounded) keys and values computed in float32, as llama.cpp does with its default
/// f16 cache.
public func attentionForward(_ out: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>, cache: KeyValueCache,
                             scores: UnsafeMutablePointer<Float>, shape s: AttentionShape) {
    switch cache {
    case let .f32(k, v) where s.T == 1 && WeightKernels.active.family.streamsOneF32RowFasterThanSGEMV:
        // (The portable family's f32 kernel is slower than sgemv on one row: it keeps sgemv.)
        cacheDecode(out, q, keys: UnsafeRawPointer(k), values: UnsafeRawPointer(v), element: .f32, scores: scores, shape: s)
    case let .f32(k, v):
        attentionForward(out, q, k, v, scores: scores, shape: s)
    case let .f16(k, v, _) where s.T == 1:
        cacheDecode(out, q, keys: k, values: v, element: .f16, scores: scores, shape: s)
    case let .f16(k, v, scratch):
        halfCachePrefill(out, q, keys: k, values: v, scratch: scratch, scores: scores, shape: s)
    }
}

/// One query row (a decode step) over the cache, reading it in place: the scores from the fused
/// matrix kernel of the cache's type (the keys as the rows of a weight matrix), the output as the
/// values' weighted sum (`weightedRows`). An f16 cache is thus read once, at
/// half the bytes of a float32 one. Widening it into scratch first, as prefill does, writes and
/// reads back a float32 copy as large as a float32 cache: it made BAM's decode no faster than with
/// the f32 cache; widening 64 values at a time into L1 instead cost 8 % of a decode step's samples
/// after 1536 tokens. An f32 cache went through sgemv per head before (two calls per head, the
/// keys read once per query head); the fused kernel reads 64-column rows 20 % faster than
/// OpenBLAS's sgemv on this shape (`BamBench kernels --cols 64`, EPYC Zen 3).
///
/// A unit of work is a key/value head with its query heads, so that its keys are read once for
/// the whole group (eight query heads per key/value head in the 1.1B Llama shape; the fused kernel
/// takes up to eight query rows at once); with fewer key/value heads than workers, each group is
/// cut into slices of query heads instead.
private func cacheDecode(_ out: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>,
                         keys: UnsafeRawPointer, values: UnsafeRawPointer, element: CacheElement,
                         scores: UnsafeMutablePointer<Float>, shape s: AttentionShape) {
    let group = s.NH / s.NKV, visible = s.keys, bytes = element.bytes
    let slices = s.NKV >= BLASThreads.defaultCount ? 1 : min(group, BLASThreads.defaultCount)
    let kernels = WeightKernels.active, maxRows = Int(BAM_MATMUL_MAX_ROWS)
    let outP = SendablePointer(out), qP = SendablePointer(UnsafeMutablePointer(mutating: q))
    let kP = SendableRawPointer(keys), vP = SendableRawPointer(values), scoresP = SendablePointer(scores)
    runAttentionHeads(s.NKV * slices, multiplyAdds: visible * s.HS * s.NH, queryRows: 1) { u in
        let kv = u / slices, slice = u % slices
        let heads = (kv * group + slice * group / slices)..<(kv * group + (slice + 1) * group / slices)
        let k = kP.pointer + kv * s.S * s.HS * bytes, v = vP.pointer + kv * s.S * s.HS * bytes
        // Scores of these heads: their rows of (NH, visible), the keys read once per 8 query rows.
        var h0 = heads.lowerBound
        while h0 < heads.upperBound {
            let rows = min(maxRows, heads.upperBound - h0)
            kernels.matmul(scoresP.pointer + h0 * visible, ldy: visible, k, wStride: s.HS * bytes, storage: element.weightStorage,
                           qP.pointer + h0 * s.HS, xStride: s.HS * 4, T: rows, rows: visible, cols: s.HS)
            h0 += rows
        }
        for h in heads {
            let sc = scoresP.pointer + h * visible
            for j in 0..<visible { sc[j] *= s.scale }
            softmaxRows(sc, rows: 1, n: visible)
            kernels.weightedRows(outP.pointer + h * s.HS, v, wStride: s.HS * bytes, element: element, sc, rows: visible,
                                 cols: s.HS, accumulate: false)
        }
    }
}

/// More than one query row over an f16 cache: the visible keys and values of every key/value head
/// are widened into scratch once, then the float32 attention runs on them. Prefill is
/// compute-bound (each key meets every query row of its block), so the float32 copy, written once
/// and read by every block's GEMMs, costs little beside the products.
private func halfCachePrefill(_ out: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>,
                              keys: UnsafeRawPointer, values: UnsafeRawPointer, scratch: UnsafeMutablePointer<Float>,
                              scores: UnsafeMutablePointer<Float>, shape s: AttentionShape) {
    let span = s.keys * s.HS
    let kernels = WeightKernels.active
    let kP = SendableRawPointer(keys), vP = SendableRawPointer(values), scP = SendablePointer(scratch)
    // Item i widens the keys (i < NKV) or the values of head i % NKV into its own slice of
    // scratch: keys (NKV, keys, HS), then values (NKV, keys, HS).
    let widen: @Sendable (Int) -> Void = { i in
        let head = i % s.NKV
        kernels.f16ToF32(scP.pointer + i * span, (i < s.NKV ? kP : vP).pointer + head * s.S * s.HS * 2, count: span)
    }
    // Split from 64k values (128 KiB of halves, roughly what one core widens in a hand-off's
    // time); inside a fan-out the items would go to Dispatch, so there only large caches are split.
    if 2 * s.NKV * span >= (BLASThreads.inParallelRegion ? 1 << 20 : 1 << 16) {
        BLASThreads.fanOut(2 * s.NKV, widen)
    } else {
        for i in 0..<(2 * s.NKV) { widen(i) }
    }
    var widened = s
    widened.S = s.keys
    attentionForward(out, q, scratch, scratch + s.NKV * span, scores: scores, shape: widened)
}
