import BamModels
import BamTensors
import BamTraining
import Foundation
import Testing

// Gradient checks of every training op against central finite differences of a float64 twin of
// its forward (written here, independently of the kernels): the scalar is f = sum(out * W) with
// a fixed random W, so the analytic backward runs with dout = W. Each tensor's error is
// max |analytic - numeric| / max |numeric|.

/// Numerical gradients of f with respect to every element of every input (float64, step 1e-6).
private func numericGradients(_ inputs: [[Double]], _ f: ([[Double]]) -> Double) -> [[Double]] {
    var x = inputs
    let h = 1e-6
    return inputs.indices.map { i in
        (0..<inputs[i].count).map { j in
            let keep = x[i][j]
            x[i][j] = keep + h
            let up = f(x)
            x[i][j] = keep - h
            let down = f(x)
            x[i][j] = keep
            return (up - down) / (2 * h)
        }
    }
}

private func expectClose(_ analytic: [Float], _ numeric: [Double], _ what: String, tolerance: Double = 1e-4) {
    precondition(analytic.count == numeric.count)
    var maxRef = 0.0, maxDiff = 0.0
    for i in analytic.indices {
        maxRef = max(maxRef, abs(numeric[i]))
        maxDiff = max(maxDiff, abs(Double(analytic[i]) - numeric[i]))
    }
    #expect(maxRef > 0, "\(what): the numeric gradient is zero everywhere (a degenerate check)")
    #expect(maxDiff <= tolerance * maxRef, "\(what): max |analytic - numeric| = \(maxDiff), max |numeric| = \(maxRef)")
}

private func doubles(_ t: Tensor) -> [Double] { t.array.map(Double.init) }

private func dot(_ a: [Double], _ w: [Double]) -> Double { zip(a, w).reduce(0) { $0 + $1.0 * $1.1 } }

@Suite("Training ops: backward passes against finite differences, optimised kernels against naive twins")
struct TrainingOpTests {
    @Test("matmul (linear with bias): dinp, dweight, dbias; BLAS backward equals its naive twin")
    func matmul() {
        var r = TestRandom(seed: 1)
        let N = 5, C = 7, OC = 6
        let x = r.tensor([N, C]), w = r.tensor([OC, C]), b = r.tensor([OC]), W = r.tensor([N, OC])
        let dx = Tensor(shape: [N, C]), dw = Tensor(shape: [OC, C]), db = Tensor(shape: [OC])
        matmulBackward(dx.data, dw.data, db.data, W.data, x.data, w.data, N: N, C: C, OC: OC)
        let num = numericGradients([doubles(x), doubles(w), doubles(b)]) { v in
            var out = [Double](repeating: 0, count: N * OC)
            for n in 0..<N { for o in 0..<OC {
                out[n * OC + o] = v[2][o] + (0..<C).reduce(0) { $0 + v[0][n * C + $1] * v[1][o * C + $1] }
            } }
            return dot(out, doubles(W))
        }
        expectClose(dx.array, num[0], "matmul dinp")
        expectClose(dw.array, num[1], "matmul dweight")
        expectClose(db.array, num[2], "matmul dbias")
        // Accumulation and the naive twin: a second pass adds the same amount again.
        let nx = Tensor(shape: [N, C]), nw = Tensor(shape: [OC, C]), nb = Tensor(shape: [OC])
        matmulBackwardNaive(nx.data, nw.data, nb.data, W.data, x.data, w.data, N: N, C: C, OC: OC)
        matmulBackwardNaive(nx.data, nw.data, nb.data, W.data, x.data, w.data, N: N, C: C, OC: OC)
        matmulBackward(dx.data, dw.data, db.data, W.data, x.data, w.data, N: N, C: C, OC: OC)
        for (a, bb, what) in [(dx, nx, "dinp"), (dw, nw, "dweight"), (db, nb, "dbias")] {
            expectTwins(a.data, bb.data, count: a.count, tolerance: 1e-5, "matmulBackward \(what), accumulated twice")
        }
        // `scale` multiplies the output gradient: one pass at scale 2 equals the two above.
        let sx = Tensor(shape: [N, C]), sw = Tensor(shape: [OC, C]), sb = Tensor(shape: [OC])
        matmulBackward(sx.data, sw.data, sb.data, W.data, x.data, w.data, N: N, C: C, OC: OC, scale: 2)
        for (a, bb, what) in [(sx, nx, "dinp"), (sw, nw, "dweight"), (sb, nb, "dbias")] {
            expectTwins(a.data, bb.data, count: a.count, tolerance: 1e-5, "matmulBackward \(what) at scale 2")
        }
    }

    @Test("RMSNorm backward (and its naive twin)")
    func rmsnorm() {
        var r = TestRandom(seed: 2)
        let N = 4, C = 9
        let eps: Float = 1e-5
        let x = r.tensor([N, C]), w = r.tensor([C]), W = r.tensor([N, C])
        let out = Tensor(shape: [N, C]), rstd = Tensor(shape: [N])
        rmsnormForward(out.data, x.data, w.data, T: N, C: C, eps: eps, rstd: rstd.data)
        let ref = Tensor(shape: [N, C])
        rmsnormForward(ref.data, x.data, w.data, T: N, C: C, eps: eps)
        #expect(out.array == ref.array, "saving rstd does not change the output")
        let dx = Tensor(shape: [N, C]), dw = Tensor(shape: [C])
        rmsnormBackward(dx.data, dw.data, W.data, x.data, w.data, rstd.data, N: N, C: C)
        let num = numericGradients([doubles(x), doubles(w)]) { v in
            var s = 0.0
            for n in 0..<N {
                let ms = (0..<C).reduce(0.0) { $0 + v[0][n * C + $1] * v[0][n * C + $1] } / Double(C)
                let rs = 1 / (ms + Double(eps)).squareRoot()
                for i in 0..<C { s += v[1][i] * v[0][n * C + i] * rs * Double(W[n * C + i]) }
            }
            return s
        }
        expectClose(dx.array, num[0], "rmsnorm dinp")
        expectClose(dw.array, num[1], "rmsnorm dweight")
        let nx = Tensor(shape: [N, C]), nw = Tensor(shape: [C])
        rmsnormBackwardNaive(nx.data, nw.data, W.data, x.data, w.data, N: N, C: C, eps: eps)
        expectTwins(dx.data, nx.data, count: dx.count, tolerance: 1e-5, "rmsnormBackward dinp")
        expectTwins(dw.data, nw.data, count: dw.count, tolerance: 1e-5, "rmsnormBackward dweight")
    }

    @Test("LayerNorm (Cohere) backward with and without bias (and its naive twin)")
    func layernorm() {
        var r = TestRandom(seed: 3)
        let N = 4, C = 9
        let eps: Float = 1e-5
        let x = r.tensor([N, C]), w = r.tensor([C]), b = r.tensor([C]), W = r.tensor([N, C])
        let out = Tensor(shape: [N, C]), mean = Tensor(shape: [N]), rstd = Tensor(shape: [N])
        layernormForward(out.data, x.data, w.data, T: N, C: C, eps: eps, mean: mean.data, rstd: rstd.data)
        let ref = Tensor(shape: [N, C])
        layernormForward(ref.data, x.data, w.data, T: N, C: C, eps: eps)
        #expect(out.array == ref.array, "saving the statistics does not change the output")
        let dx = Tensor(shape: [N, C]), dw = Tensor(shape: [C]), db = Tensor(shape: [C])
        layernormBackward(dx.data, dw.data, db.data, W.data, x.data, w.data, mean.data, rstd.data, N: N, C: C)
        let num = numericGradients([doubles(x), doubles(w), doubles(b)]) { v in
            var s = 0.0
            for n in 0..<N {
                let m = (0..<C).reduce(0.0) { $0 + v[0][n * C + $1] } / Double(C)
                let va = (0..<C).reduce(0.0) { $0 + (v[0][n * C + $1] - m) * (v[0][n * C + $1] - m) } / Double(C)
                let rs = 1 / (va + Double(eps)).squareRoot()
                for i in 0..<C { s += (v[1][i] * (v[0][n * C + i] - m) * rs + v[2][i]) * Double(W[n * C + i]) }
            }
            return s
        }
        expectClose(dx.array, num[0], "layernorm dinp")
        expectClose(dw.array, num[1], "layernorm dweight")
        expectClose(db.array, num[2], "layernorm dbias")
        let nx = Tensor(shape: [N, C]), nw = Tensor(shape: [C])
        layernormBackwardNaive(nx.data, nw.data, W.data, x.data, w.data, N: N, C: C, eps: eps)
        expectTwins(dx.data, nx.data, count: dx.count, tolerance: 1e-5, "layernormBackward dinp")
        expectTwins(dw.data, nw.data, count: dw.count, tolerance: 1e-5, "layernormBackward dweight")
    }

    @Test("RoPE backward (inverse rotation), rotate-half and interleaved", arguments: [RopeStyle.rotateHalf, .interleaved])
    func rope(style: RopeStyle) {
        var r = TestRandom(seed: 4)
        let B = 2, T = 5, H = 3, HS = 8
        let table = RopeTable(headSize: HS, theta: 10000, style: style)
        let x = r.tensor([B * T, H * HS]), W = r.tensor([B * T, H * HS])
        let dx = W.copy()
        ropeBackward(dx.data, table, B: B, T: T, heads: H)
        let inv = table.inverseFrequencies
        let num = numericGradients([doubles(x)]) { v in
            var s = 0.0
            for b in 0..<B { for t in 0..<T { for h in 0..<H { for i in 0..<(HS / 2) {
                let base = ((b * T + t) * H + h) * HS
                let (ia, ib) = style == .rotateHalf ? (i, i + HS / 2) : (2 * i, 2 * i + 1)
                // The angle as the table computes it (float32 product), then cos/sin in double.
                let angle = Double(Float(t) * inv[i])
                let a = v[0][base + ia], bb = v[0][base + ib]
                s += (a * cos(angle) - bb * sin(angle)) * Double(W[base + ia]) + (bb * cos(angle) + a * sin(angle)) * Double(W[base + ib])
            } } } }
            return s
        }
        expectClose(dx.array, num[0], "rope \(style) dinp")
        // Forward then backward is the identity.
        let y = x.copy()
        ropeForward(y.data, table, B: B, T: T, heads: H)
        ropeBackward(y.data, table, B: B, T: T, heads: H)
        expectTwins(y.data, x.data, count: x.count, tolerance: 1e-5, "RoPE \(style): forward then backward, against the input")
        // The naive twin: each pair's transposed rotation, angles in double.
        let naive = W.copy()
        ropeBackwardNaive(naive.data, B: B, T: T, heads: H, headSize: HS, inverseFrequencies: inv, style: style)
        expectTwins(dx.data, naive.data, count: dx.count, tolerance: 2e-5, "ropeBackward \(style)")
    }

    @Test("causal GQA attention: forward equals the inference kernel and its naive twin; backward against finite differences",
          arguments: [(NH: 4, NKV: 2), (NH: 2, NKV: 2), (NH: 4, NKV: 1)])
    func attention(NH: Int, NKV: Int) {
        var r = TestRandom(seed: 5)
        let B = 2, T = 6, HS = 4
        let s = CausalAttentionShape(B: B, T: T, NH: NH, NKV: NKV, HS: HS)
        let q = r.tensor([B * T, s.Q]), k = r.tensor([B * T, s.KV]), v = r.tensor([B * T, s.KV]), W = r.tensor([B * T, s.Q])
        let out = Tensor(shape: [B * T, s.Q]), probs = Tensor(shape: [B, NH, T, T])
        causalAttentionForward(out.data, probs.data, q.data, k.data, v.data, shape: s)
        let nOut = Tensor(shape: [B * T, s.Q]), nProbs = Tensor(shape: [B, NH, T, T])
        causalAttentionForwardNaive(nOut.data, nProbs.data, q.data, k.data, v.data, shape: s)
        expectTwins(out.data, nOut.data, count: out.count, tolerance: 1e-5, "causalAttentionForward out (NH \(NH), NKV \(NKV))")
        expectTwins(probs.data, nProbs.data, count: probs.count, tolerance: 1e-6, "causalAttentionForward probs (NH \(NH), NKV \(NKV))")
        // The inference kernel over a (NKV, S, HS) cache, one sequence at a time.
        for b in 0..<B {
            let kc = Tensor(shape: [NKV, T, HS]), vc = Tensor(shape: [NKV, T, HS])
            for t in 0..<T { for h in 0..<NKV { for i in 0..<HS {
                kc[(h * T + t) * HS + i] = k[(b * T + t) * s.KV + h * HS + i]
                vc[(h * T + t) * HS + i] = v[(b * T + t) * s.KV + h * HS + i]
            } } }
            let inf = Tensor(shape: [T, s.Q]), scores = Tensor(shape: [NH * T * T])
            attentionForward(inf.data, q.data + b * T * s.Q, kc.data, vc.data, scores: scores.data,
                             shape: AttentionShape(T: T, past: 0, NH: NH, NKV: NKV, HS: HS, S: T))
            expectTwins(out.data + b * T * s.Q, inf.data, count: T * s.Q, tolerance: 1e-6, "causalAttentionForward vs the inference kernel, sequence \(b)")
        }
        let dq = Tensor(shape: [B * T, s.Q]), dk = Tensor(shape: [B * T, s.KV]), dv = Tensor(shape: [B * T, s.KV])
        let scratch = Tensor(shape: [B * NKV, T, T])
        causalAttentionBackward(dq.data, dk.data, dv.data, scratch.data, W.data, probs.data, q.data, k.data, v.data, shape: s)
        let num = numericGradients([doubles(q), doubles(k), doubles(v)]) { x in
            var total = 0.0
            for b in 0..<B { for h in 0..<NH {
                let kv = h / s.group
                for t in 0..<T {
                    var w = (0...t).map { j in
                        (0..<HS).reduce(0.0) { $0 + x[0][(b * T + t) * s.Q + h * HS + $1] * x[1][(b * T + j) * s.KV + kv * HS + $1] } / Double(HS).squareRoot()
                    }
                    let mx = w.max()!
                    w = w.map { exp($0 - mx) }
                    let sum = w.reduce(0, +)
                    for i in 0..<HS {
                        let o = (0...t).reduce(0.0) { $0 + w[$1] / sum * x[2][(b * T + $1) * s.KV + kv * HS + i] }
                        total += o * Double(W[(b * T + t) * s.Q + h * HS + i])
                    }
                }
            } }
            return total
        }
        expectClose(dq.array, num[0], "attention dq")
        expectClose(dk.array, num[1], "attention dk")
        expectClose(dv.array, num[2], "attention dv")
        let nq = Tensor(shape: [B * T, s.Q]), nk = Tensor(shape: [B * T, s.KV]), nv = Tensor(shape: [B * T, s.KV])
        causalAttentionBackwardNaive(nq.data, nk.data, nv.data, W.data, probs.data, q.data, k.data, v.data, shape: s)
        for (a, b, what) in [(dq, nq, "dq"), (dk, nk, "dk"), (dv, nv, "dv")] {
            expectTwins(a.data, b.data, count: a.count, tolerance: 1e-5, "causalAttentionBackward \(what) (NH \(NH), NKV \(NKV))")
        }
    }

    @Test("SwiGLU backward (and its naive twin)")
    func swiglu() {
        var r = TestRandom(seed: 6)
        let n = 27
        let g = r.tensor([n], scale: 2), u = r.tensor([n]), W = r.tensor([n])
        let dg = Tensor(shape: [n]), du = Tensor(shape: [n])
        swigluBackward(dg.data, du.data, W.data, g.data, u.data, count: n)
        let num = numericGradients([doubles(g), doubles(u)]) { v in
            (0..<n).reduce(0.0) { s, i in s + v[0][i] / (1 + exp(-v[0][i])) * v[1][i] * Double(W[i]) }
        }
        expectClose(dg.array, num[0], "swiglu dgate")
        expectClose(du.array, num[1], "swiglu dup")
        let out = Tensor(shape: [n]), naiveOut = Tensor(shape: [n])
        swigluForwardParallel(out.data, g.data, u.data, count: n)
        swigluForwardNaive(naiveOut.data, g.data, u.data, count: n)
        expectTwins(out.data, naiveOut.data, count: n, tolerance: 1e-6, "swigluForwardParallel")
        let ng = Tensor(shape: [n]), nu = Tensor(shape: [n])
        swigluBackwardNaive(ng.data, nu.data, W.data, g.data, u.data, count: n)
        expectTwins(dg.data, ng.data, count: n, tolerance: 1e-6, "swigluBackward dgate")
        expectTwins(du.data, nu.data, count: n, tolerance: 1e-6, "swigluBackward dup")
    }

    @Test("fused cross-entropy (loss and dloss/dlogits in place) with a logit scale and unscored rows, against finite differences")
    func crossEntropy() {
        var r = TestRandom(seed: 7)
        let N = 5, V = 11
        let scale: Float = 0.25
        let raw = r.tensor([N, V], scale: 3)
        let targets: [Int32] = [3, -1, 0, 10, 7]
        let logits = raw.copy()
        for i in 0..<logits.count { logits[i] *= scale }
        let losses = UnsafeMutablePointer<Double>.allocate(capacity: N), naiveLosses = UnsafeMutablePointer<Double>.allocate(capacity: N)
        defer { losses.deallocate(); naiveLosses.deallocate() }
        let naive = Tensor(shape: [N, V])
        let scored = targets.withUnsafeBufferPointer { t in
            crossEntropyForwardBackwardNaive(naiveLosses, naive.data, logits.data, t.baseAddress!, N: N, V: V)
            return crossEntropyForwardBackward(losses, logits.data, t.baseAddress!, N: N, V: V)
        }
        #expect(scored == 4)
        #expect(losses[1] == 0)
        expectTwins((0..<N).map { losses[$0] }, (0..<N).map { naiveLosses[$0] }, tolerance: 1e-5, "crossEntropyForwardBackward losses")
        expectTwins(logits.data, naive.data, count: logits.count, tolerance: 1e-6, "crossEntropyForwardBackward dlogits")
        // The mean loss over the scored rows, as a function of the raw (unscaled) logits: its gradient
        // is the in-place result times scale / scored, the factor the backward folds into the GEMMs.
        let num = numericGradients([doubles(raw)]) { v in
            var s = 0.0
            for n in 0..<N where targets[n] >= 0 {
                let row = (0..<V).map { v[0][n * V + $0] * Double(scale) }
                let mx = row.max()!
                let lse = mx + log(row.reduce(0) { $0 + exp($1 - mx) })
                s += lse - row[Int(targets[n])]
            }
            return s / Double(scored)
        }
        expectClose(logits.array.map { $0 * scale / Float(scored) }, num[0], "cross-entropy dlogits (raw, before the scale)")
        let total = (0..<N).reduce(0.0) { $0 + losses[$1] } / Double(scored)
        #expect(abs(total - { () -> Double in
            var s = 0.0
            for n in 0..<N where targets[n] >= 0 {
                let row = (0..<V).map { Double(raw[n * V + $0]) * Double(scale) }
                let mx = row.max()!
                s += mx + log(row.reduce(0) { $0 + exp($1 - mx) }) - row[Int(targets[n])]
            }
            return s / Double(scored)
        }()) < 1e-5)
    }

    @Test("embedding backward (tied: the output projection's gradient lands in the same rows)")
    func encoder() {
        var r = TestRandom(seed: 8)
        let V = 6, C = 4, N = 5
        let wte = r.tensor([V, C]), W = r.tensor([N, C])
        let tokens: [Int32] = [2, 5, 2, 0, 3]
        let out = Tensor(shape: [N, C])
        tokens.withUnsafeBufferPointer { encoderForward(out.data, $0.baseAddress!, wte.data, N: N, C: C) }
        #expect(Array(out.array[0..<C]) == Array(wte.array[(2 * C)..<(3 * C)]))
        let d = Tensor(shape: [V, C])
        tokens.withUnsafeBufferPointer { encoderBackward(d.data, W.data, $0.baseAddress!, N: N, C: C) }
        let num = numericGradients([doubles(wte)]) { v in
            (0..<N).reduce(0.0) { s, n in s + (0..<C).reduce(0.0) { $0 + v[0][Int(tokens[n]) * C + $1] * Double(W[n * C + $1]) } }
        }
        expectClose(d.array, num[0], "embedding dwte")
        // The naive twin (a one-hot product, accumulated in double), with and without a padding token.
        for pad in [nil, Int32(2)] {
            let fast = Tensor(shape: [V, C]), naive = Tensor(shape: [V, C])
            tokens.withUnsafeBufferPointer {
                encoderBackward(fast.data, W.data, $0.baseAddress!, N: N, C: C, paddingToken: pad)
                encoderBackwardNaive(naive.data, W.data, $0.baseAddress!, N: N, C: C, V: V, paddingToken: pad)
            }
            expectTwins(fast.data, naive.data, count: fast.count, tolerance: 1e-6, "encoderBackward (padding \(pad.map(String.init) ?? "none"))")
            if let pad { #expect(fast.array[(Int(pad) * C)..<(Int(pad) * C + C)].allSatisfy { $0 == 0 }, "the padding row gets no gradient") }
        }
    }

    /// Router logits with clear top-k margins (so finite differences never flip a choice).
    private func routerLogits(N: Int, E: Int, seed: UInt64) -> Tensor {
        var g = SplitMix64(seed: seed)
        let t = Tensor(shape: [N, E])
        for n in 0..<N {
            let order = (0..<E).shuffled(using: &g)
            for (rank, e) in order.enumerated() { t[n * E + e] = Float(rank) * 0.7 + g.uniform() * 0.3 }
        }
        return t
    }

    @Test("router: softmax -> top-k -> (renormalised) gates, with BTX / Switch balance losses and the z-loss",
          arguments: [(K: 2, renormalize: true, aux: AuxLossKind.btx), (K: 1, renormalize: false, aux: .switch),
                      (K: 2, renormalize: false, aux: .btx), (K: 4, renormalize: true, aux: .none), (K: 1, renormalize: true, aux: .btx)])
    func router(K: Int, renormalize: Bool, aux: AuxLossKind) {
        let N = 6, E = 4
        let alpha = 0.7, beta = 0.3
        let logits = routerLogits(N: N, E: E, seed: 9)
        var r = TestRandom(seed: 10)
        let W = r.tensor([N, E])   // the LM loss's dL/dgate
        let d = route(logits: logits.data, T: N, E: E, topK: K, renormalize: renormalize)
        let values = routerLossesForward(d, topK: K)
        let dg = Tensor(shape: [N, E]), dp = Tensor(shape: [N, E]), dl = Tensor(shape: [N, E])
        dg.data.update(from: W.data, count: W.count)
        routerLossesBackward(dg.data, dp.data, dl.data, d, topK: K, aux: aux, alpha: alpha, zBeta: beta)
        routerBackward(dl.data, dg.data, dp.data, d, renormalize: renormalize)
        let chosen = d.chosen
        func objective(_ x: [Double]) -> (total: Double, btx: Double, switchLoss: Double, z: Double) {
            var P = [Double](repeating: 0, count: E), u = P, f = P
            var total = 0.0, z = 0.0
            for n in 0..<N {
                let row = Array(x[(n * E)..<((n + 1) * E)])
                let mx = row.max()!
                let ex = row.map { exp($0 - mx) }
                let s = ex.reduce(0, +)
                let p = ex.map { $0 / s }
                let S = chosen[n].reduce(0.0) { $0 + p[$1] }
                for e in chosen[n] {
                    let g = renormalize ? p[e] / S : p[e]
                    total += g * Double(W[n * E + e])
                    u[e] += g / Double(N)
                    f[e] += 1 / Double(N * K)
                }
                for e in 0..<E { P[e] += p[e] / Double(N) }
                let lse = mx + log(s)
                z += lse * lse / Double(N)
            }
            let btx = Double(E) * (0..<E).reduce(0.0) { $0 + u[$1] * P[$1] }
            let sw = Double(E) * (0..<E).reduce(0.0) { $0 + f[$1] * P[$1] }
            let auxValue = aux == .btx ? btx : aux == .switch ? sw : 0
            return (total + alpha * auxValue + beta * z, btx, sw, z)
        }
        let reference = objective(doubles(logits))
        #expect(abs(values.btx - reference.btx) < 1e-6 && abs(values.switchLoss - reference.switchLoss) < 1e-6
                && abs(values.z - reference.z) < 1e-5, "router loss values \(values) vs \(reference)")
        let num = numericGradients([doubles(logits)]) { objective($0[0]).total }
        expectClose(dl.array, num[0], "router dlogits (K \(K), renormalize \(renormalize), aux \(aux))")
        // routerBackward against its naive twin (explicit Jacobians), from the same dgates and dprobs.
        let fast = Tensor(shape: [N, E]), naive = Tensor(shape: [N, E])
        routerBackward(fast.data, dg.data, dp.data, d, renormalize: renormalize)
        routerBackwardNaive(naive.data, dg.data, dp.data, d, renormalize: renormalize)
        expectTwins(fast.data, naive.data, count: fast.count, tolerance: 1e-6, "routerBackward (K \(K), renormalize \(renormalize))")
        // Without dprobs (the attention router's case: no balance loss).
        let fast0 = Tensor(shape: [N, E]), naive0 = Tensor(shape: [N, E])
        routerBackward(fast0.data, W.data, nil, d, renormalize: renormalize)
        routerBackwardNaive(naive0.data, W.data, nil, d, renormalize: renormalize)
        expectTwins(fast0.data, naive0.data, count: fast0.count, tolerance: 1e-6, "routerBackward without dprobs (K \(K), renormalize \(renormalize))")
    }

    @Test("a twin mismatch names the first bad index and both values")
    func twinReport() {
        let kernel: [Float] = [1, 2, 3.5, 4, 9], twin: [Float] = [1, 2, 3, 4, 5]
        let message = kernel.withUnsafeBufferPointer { k in twin.withUnsafeBufferPointer { t in
            twinMismatch(k.baseAddress!, t.baseAddress!, count: 5, tolerance: 0.1)
        } }
        #expect(message == "first element beyond 0.1 at index 2 of 5: kernel 3.5, twin 3.0 (largest |difference| 4.0)")
        let agree = kernel.withUnsafeBufferPointer { k in twinMismatch(k.baseAddress!, k.baseAddress!, count: 5, tolerance: 0) }
        #expect(agree == nil)
        #expect(twinMismatch([1, 2.5], [1, 2], tolerance: 0.5) == "first element not within 0.5 at index 1 of 2: kernel 2.5, twin 2.0 (largest |difference| 0.5)")
    }
}
