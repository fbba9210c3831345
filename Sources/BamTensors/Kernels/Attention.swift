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
    // Each head writes its own column block of `out` and its own slice of `scores`.
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
    // Heads go to the workers from 16k multiply-adds on (a decode row over 32 keys of 8 heads of
    // 64): by then the keys and values, evicted from cache by the weights streamed since the last
    // token, take longer to read on one core than a hand-off costs (58M Llama, 128-token decode:
    // bf16 2.52-2.64 against 2.66-2.73 ms per token, q8_0 1.68-1.69 against 1.73-1.78; BamBench
    // decode, EPYC Zen 3). Inside a fan-out (a BAM attention expert running beside others) the
    // heads would go to Dispatch, whose wake-ups cost more than a decode step's heads: there only
    // prefill-sized work (from 256k, and more than one query row) is split. A decode row stays on
    // its worker however long the context: from 512 positions on, a 58M-shape BAM expert's heads
    // went to Dispatch, whose threads then ran beside the pool's on the same two cores (16 % of a
    // long BAM decode's samples, perf); the time that cost, if any, was within this VM's noise
    // (BamBench bam --past 1024, four alternations).
    runAttentionHeads(s.NH, multiplyAdds: work, queryRows: s.T, body)
}

/// Runs `body` for every head, on the workers when the heads are worth `multiplyAdds` >= 16k
/// (inside a fan-out: 256k of more than one query row), else one after the other (the reasons
/// above `attentionForward`'s call).
func runAttentionHeads(_ heads: Int, multiplyAdds work: Int, queryRows: Int, _ body: @Sendable (Int) -> Void) {
    let split = BLASThreads.inParallelRegion ? queryRows > 1 && work >= 1 << 18 : work >= 1 << 14
    if split {
        BLASThreads.fanOut(heads, body)
    } else {
        for h in 0..<heads { body(h) }
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

// MARK: training: B sequences of T tokens, no cache

/// Dimensions of causal grouped-query attention over B independent sequences of T tokens.
public struct CausalAttentionShape: Sendable {
    public var B: Int, T: Int, NH: Int, NKV: Int, HS: Int
    public var scale: Float
    public init(B: Int, T: Int, NH: Int, NKV: Int, HS: Int) {
        self.B = B; self.T = T; self.NH = NH; self.NKV = NKV; self.HS = HS
        scale = 1 / Float(HS).squareRoot()
    }
    public var Q: Int { NH * HS }
    public var KV: Int { NKV * HS }
    /// Query heads per key/value head (transformers' repeat_kv): head h reads kv head h / group.
    public var group: Int { NH / NKV }
}

/// Query rows are processed in blocks of this many; block [r0, r1) only meets keys [0, r1)
/// (block-causal), which skips about 40 % of the products at T = 256 while keeping GEMM shapes.
let attentionRowBlock = 64

/// Causal attention, per sequence b and head h:
///   S = scale * q_h k_kv^T (T, T),  P = softmax over j <= t of S[t, j],  out_h = P v_kv
/// out (B*T, NH*HS); probs (B, NH, T, T) saved (zero above the diagonal);
/// q (B*T, NH*HS) after RoPE; k, v (B*T, NKV*HS), k after RoPE.
/// Each (b, h) is two GEMMs per block of query rows on strided views of q/k/v (no transposed
/// copies); the B*NH pairs are fanned out over Dispatch workers with BLAS single-threaded (BLASThreads).
public func causalAttentionForward(_ out: UnsafeMutablePointer<Float>, _ probs: UnsafeMutablePointer<Float>,
                                   _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                                   shape s: CausalAttentionShape) {
    let T = s.T, Q = s.Q, KV = s.KV, HS = s.HS
    let outP = SendablePointer(out), probsP = SendablePointer(probs)
    let qP = SendableRawPointer(q), kP = SendableRawPointer(k), vP = SendableRawPointer(v)
    // Iteration (b, h) writes only head h's columns of sequence b in `out` and its own (T, T) of `probs`.
    BLASThreads.fanOut(s.B * s.NH) { i in
        let b = i / s.NH, h = i % s.NH, kv = h / s.group
        let qh = qP.pointer.assumingMemoryBound(to: Float.self) + b * T * Q + h * HS
        let kh = kP.pointer.assumingMemoryBound(to: Float.self) + b * T * KV + kv * HS
        let vh = vP.pointer.assumingMemoryBound(to: Float.self) + b * T * KV + kv * HS
        let p = probsP.pointer + i * T * T
        let oh = outP.pointer + b * T * Q + h * HS
        for r0 in stride(from: 0, to: T, by: attentionRowBlock) {
            let r1 = min(T, r0 + attentionRowBlock), rows = r1 - r0
            let pr = p + r0 * T
            gemm(pr, qh + r0 * Q, kh, m: rows, n: r1, k: HS, transB: true, alpha: s.scale, lda: Q, ldb: KV, ldc: T)
            // Row t sees keys 0...t; the rest of its T entries become 0.
            softmaxRows(pr, rows: rows, n: T, valid: { t in r0 + t + 1 })
            gemm(oh + r0 * Q, pr, vh, m: rows, n: HS, k: r1, lda: T, ldb: KV, ldc: Q)
        }
    }
}

/// Backward of `causalAttentionForward`, per sequence b and head h (P = probs, dO = dout_h), by
/// blocks of query rows [r0, r1) against keys [0, r1):
///   dv_kv += P^T dO
///   dP     = dO v_kv^T
///   dS     = P * (dP - rowsum(P * dP))            (softmax backward; zero above the diagonal)
///   dq_h  += scale * dS k_kv
///   dk_kv += scale * dS^T q_h
/// Query heads that share a key/value head accumulate into the same dk/dv columns, so the work is
/// fanned out over (b, kv head) units, each running its group of query heads in turn.
/// dq (B*T, Q), dk, dv (B*T, KV) accumulate; scratch (B*NKV, T, T) is overwritten; dout (B*T, Q).
public func causalAttentionBackward(_ dq: UnsafeMutablePointer<Float>, _ dk: UnsafeMutablePointer<Float>,
                                    _ dv: UnsafeMutablePointer<Float>, _ scratch: UnsafeMutablePointer<Float>,
                                    _ dout: UnsafePointer<Float>, _ probs: UnsafePointer<Float>,
                                    _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                                    shape s: CausalAttentionShape) {
    let T = s.T, Q = s.Q, KV = s.KV, HS = s.HS
    let dqP = SendablePointer(dq), dkP = SendablePointer(dk), dvP = SendablePointer(dv), scP = SendablePointer(scratch)
    let doP = SendableRawPointer(dout), pP = SendableRawPointer(probs)
    let qP = SendableRawPointer(q), kP = SendableRawPointer(k), vP = SendableRawPointer(v)
    // Unit (b, kv) writes only kv head `kv` of sequence b in dk/dv, its query heads' columns of
    // sequence b in dq, and its own (T, T) scratch.
    BLASThreads.fanOut(s.B * s.NKV) { u in
        let b = u / s.NKV, kv = u % s.NKV
        let dP = scP.pointer + u * T * T
        let kh = kP.pointer.assumingMemoryBound(to: Float.self) + b * T * KV + kv * HS
        let vh = vP.pointer.assumingMemoryBound(to: Float.self) + b * T * KV + kv * HS
        let dkh = dkP.pointer + b * T * KV + kv * HS
        let dvh = dvP.pointer + b * T * KV + kv * HS
        for h in (kv * s.group)..<((kv + 1) * s.group) {
            let p = pP.pointer.assumingMemoryBound(to: Float.self) + (b * s.NH + h) * T * T
            let dO = doP.pointer.assumingMemoryBound(to: Float.self) + b * T * Q + h * HS
            let qh = qP.pointer.assumingMemoryBound(to: Float.self) + b * T * Q + h * HS
            let dqh = dqP.pointer + b * T * Q + h * HS
            for r0 in stride(from: 0, to: T, by: attentionRowBlock) {
                let r1 = min(T, r0 + attentionRowBlock), rows = r1 - r0
                let pr = p + r0 * T, dr = dP + r0 * T
                gemm(dvh, pr, dO + r0 * Q, m: r1, n: HS, k: rows, transA: true, beta: 1, lda: T, ldb: Q, ldc: KV)
                gemm(dr, dO + r0 * Q, vh, m: rows, n: r1, k: HS, transB: true, lda: Q, ldb: KV, ldc: T)
                for t in r0..<r1 {
                    let prow = p + t * T, drow = dP + t * T
                    var dot: Float = 0
                    for j in 0...t { dot += prow[j] * drow[j] }
                    for j in 0...t { drow[j] = prow[j] * (drow[j] - dot) }
                    for j in (t + 1)..<r1 { drow[j] = 0 }
                }
                gemm(dqh + r0 * Q, dr, kh, m: rows, n: HS, k: r1, alpha: s.scale, beta: 1, lda: T, ldb: KV, ldc: Q)
                gemm(dkh, dr, qh + r0 * Q, m: r1, n: HS, k: rows, transA: true, alpha: s.scale, beta: 1, lda: T, ldb: Q, ldc: KV)
            }
        }
    }
}

/// Naive twin of `causalAttentionForward`: explicit loops, double accumulation.
public func causalAttentionForwardNaive(_ out: UnsafeMutablePointer<Float>, _ probs: UnsafeMutablePointer<Float>,
                                        _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                                        shape s: CausalAttentionShape) {
    let T = s.T, Q = s.Q, KV = s.KV, HS = s.HS
    for b in 0..<s.B {
        for h in 0..<s.NH {
            let kv = h / s.group
            let p = probs + (b * s.NH + h) * T * T
            for t in 0..<T {
                var w = [Double](repeating: 0, count: t + 1)
                var mx = -Double.infinity
                for j in 0...t {
                    var d: Double = 0
                    for i in 0..<HS { d += Double(q[(b * T + t) * Q + h * HS + i]) * Double(k[(b * T + j) * KV + kv * HS + i]) }
                    w[j] = d * Double(s.scale)
                    mx = max(mx, w[j])
                }
                var sum: Double = 0
                for j in 0...t { w[j] = exp(w[j] - mx); sum += w[j] }
                for j in 0..<T { p[t * T + j] = j <= t ? Float(w[j] / sum) : 0 }
                for i in 0..<HS {
                    var acc: Double = 0
                    for j in 0...t { acc += w[j] / sum * Double(v[(b * T + j) * KV + kv * HS + i]) }
                    out[(b * T + t) * Q + h * HS + i] = Float(acc)
                }
            }
        }
    }
}

/// Naive twin of `causalAttentionBackward`: explicit loops, double accumulation.
public func causalAttentionBackwardNaive(_ dq: UnsafeMutablePointer<Float>, _ dk: UnsafeMutablePointer<Float>,
                                         _ dv: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>,
                                         _ probs: UnsafePointer<Float>, _ q: UnsafePointer<Float>,
                                         _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>, shape s: CausalAttentionShape) {
    let T = s.T, Q = s.Q, KV = s.KV, HS = s.HS
    for b in 0..<s.B {
        for h in 0..<s.NH {
            let kv = h / s.group
            let p = probs + (b * s.NH + h) * T * T
            for t in 0..<T {
                let dO = dout + (b * T + t) * Q + h * HS
                var dP = [Double](repeating: 0, count: t + 1)
                var dot: Double = 0
                for j in 0...t {
                    for i in 0..<HS { dP[j] += Double(dO[i]) * Double(v[(b * T + j) * KV + kv * HS + i]) }
                    dot += Double(p[t * T + j]) * dP[j]
                }
                for j in 0...t {
                    let pj = Double(p[t * T + j])
                    let dS = pj * (dP[j] - dot) * Double(s.scale)
                    for i in 0..<HS {
                        dv[(b * T + j) * KV + kv * HS + i] += Float(pj * Double(dO[i]))
                        dq[(b * T + t) * Q + h * HS + i] += Float(dS * Double(k[(b * T + j) * KV + kv * HS + i]))
                        dk[(b * T + j) * KV + kv * HS + i] += Float(dS * Double(q[(b * T + t) * Q + h * HS + i]))
                    }
                }
            }
        }
    }
}
