import Foundation

/// Causal multi-head attention with grouped-query heads over a key/value cache.
///
/// q:      (T, NH, HS)    queries of the T new tokens, RoPE already applied
/// kCache: (NKV, S, HS)   keys of positions 0..<past+T (the new tokens' keys already written)
/// vCache: (NKV, S, HS)   values, same layout
/// out:    (T, NH, HS)
/// Query t sits at absolute position past + t and attends to positions 0...past+t.
/// Query head h reads key/value head h / (NH / NKV) (transformers' repeat_kv).
public struct AttentionShape: Sendable {
    public var T: Int, past: Int, NH: Int, NKV: Int, HS: Int, S: Int
    public var scale: Float
    public init(T: Int, past: Int, NH: Int, NKV: Int, HS: Int, S: Int, scale: Float? = nil) {
        self.T = T; self.past = past; self.NH = NH; self.NKV = NKV; self.HS = HS; self.S = S
        self.scale = scale ?? 1 / Float(HS).squareRoot()
    }
    public var keys: Int { past + T }

    /// Query rows attended at once: long prefills go in blocks (block-causal), see `attentionForward`.
    public var blockRows: Int { T > 192 ? 128 : T }

    /// Floats `attentionForward` needs for its score matrices: one block of rows per head.
    public var scoresCount: Int { NH * blockRows * keys }
}

/// Optimised: per head, scores = q_h K^T and out_h = P V are two GEMMs (two matrix-vector
/// products for a single query row); heads are fanned out over Dispatch workers with BLAS
/// single-threaded (see `BLASThreads`). Long prefills are cut into blocks of query rows, each
/// multiplied only against the keys it can see (block-causal), which skips about 40 % of the
/// score and value products of a 512-token chunk.
/// `scores` must hold `shape.scoresCount` floats (NH * blockRows * (past + T)).
public func attentionForward(_ out: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>,
                             _ kCache: UnsafePointer<Float>, _ vCache: UnsafePointer<Float>,
                             scores: UnsafeMutablePointer<Float>, shape s: AttentionShape) {
    let group = s.NH / s.NKV
    let keys = s.keys
    let rowStride = s.NH * s.HS
    let block = s.blockRows
    let outP = SendablePointer(out), qP = SendablePointer(UnsafeMutablePointer(mutating: q))
    let kP = SendablePointer(UnsafeMutablePointer(mutating: kCache))
    let vP = SendablePointer(UnsafeMutablePointer(mutating: vCache))
    let scP = SendablePointer(scores)
    // Each head writes its own column block of `out` and its own slice of `scores`. A decode step
    // (a few rows over a short cache) is too small to be worth a Dispatch round trip per head.
    let work = s.T * keys * s.HS * s.NH
    let body: @Sendable (Int) -> Void = { h in
        let kv = h / group
        let k = kP.pointer + kv * s.S * s.HS
        let v = vP.pointer + kv * s.S * s.HS
        var r0 = 0
        while r0 < s.T {
            let rows = min(block, s.T - r0)
            let visible = s.past + r0 + rows   // keys the last row of this block sees
            let sc = scP.pointer + h * block * keys   // this head's slice, reused block after block
            if rows == 1 {
                // One query row (a decode step): two matrix-vector products over the cache,
                // reading K and V once instead of packing them for a GEMM.
                let qRow = qP.pointer + r0 * rowStride + h * s.HS
                gemv(sc, k, qRow, rows: visible, cols: s.HS, alpha: s.scale)
                softmaxRows(sc, rows: 1, n: visible)
                gemv(outP.pointer + r0 * rowStride + h * s.HS, v, sc, rows: visible, cols: s.HS, transA: true)
                r0 += 1
                continue
            }
            gemm(sc, qP.pointer + r0 * rowStride + h * s.HS, k, m: rows, n: visible, k: s.HS, transB: true,
                 alpha: s.scale, lda: rowStride, ldb: s.HS, ldc: visible)
            softmaxRows(sc, rows: rows, n: visible, valid: { t in s.past + r0 + t + 1 })
            gemm(outP.pointer + r0 * rowStride + h * s.HS, sc, v, m: rows, n: s.HS, k: visible,
                 lda: visible, ldb: s.HS, ldc: rowStride)
            r0 += rows
        }
    }
    if work >= 1 << 18 {
        BLASThreads.fanOut(s.NH, body)
    } else {
        for h in 0..<s.NH { body(h) }
    }
}

/// Naive twin of `attentionForward`: explicit loops, double accumulation.
public func attentionForwardNaive(_ out: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>,
                                  _ kCache: UnsafePointer<Float>, _ vCache: UnsafePointer<Float>,
                                  shape s: AttentionShape) {
    let group = s.NH / s.NKV
    for t in 0..<s.T {
        let n = s.past + t + 1
        for h in 0..<s.NH {
            let kv = h / group
            let qv = q + (t * s.NH + h) * s.HS
            var w = [Double](repeating: 0, count: n)
            var mx = -Double.infinity
            for j in 0..<n {
                let kr = kCache + (kv * s.S + j) * s.HS
                var d: Double = 0
                for i in 0..<s.HS { d += Double(qv[i]) * Double(kr[i]) }
                w[j] = d * Double(s.scale)
                mx = max(mx, w[j])
            }
            var sum: Double = 0
            for j in 0..<n { w[j] = exp(w[j] - mx); sum += w[j] }
            let o = out + (t * s.NH + h) * s.HS
            for i in 0..<s.HS {
                var acc: Double = 0
                for j in 0..<n { acc += w[j] / sum * Double(vCache[(kv * s.S + j) * s.HS + i]) }
                o[i] = Float(acc)
            }
        }
    }
}
