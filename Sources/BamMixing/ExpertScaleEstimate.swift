import BamModels
import Foundation

/// The expert weight scaling of He et al. ("Upcycling Large Language Models into Mixture of
/// Experts", arXiv 2410.07524, section 3), per FFN mixture layer.
///
/// Without renormalisation a token's FFN output is sum_{i chosen} p_i FFN_i(x): the trained FFN
/// output shrinks to the mass the chosen gates carry. The paper takes fresh routers as uniform, so
/// the mass is K/E and the experts are scaled by E/K. That is exact for all-zero routers; random
/// routers N(0, std^2) make one expert's probability stand out (the logits of a token have spread
/// std |h|), so the chosen gates carry more than K/E and E/K over-scales — by 23 % per layer on the
/// shipped checkpoints, compounding over the layers. `auto` therefore divides by the expected mass
/// itself: the router's logits for a token are R h, with h the FFN input, whose length the norm in
/// front of the FFN fixes (|h|^2 = sum_i w_i^2 xhat_i^2 with sum_i xhat_i^2 = C, about sum_i w_i^2),
/// and whose direction the estimate takes as uniform; the mass is averaged over such tokens by
/// Monte Carlo with a fixed seed. Zero routers give exactly E/K, the paper's factor. Routers built
/// from a model's residual stream (`hidden`, `domain`) point along their inputs, so the mass is
/// measured on the streams they were built from instead.
enum ExpertScaleEstimate {
    /// Tokens of the Monte Carlo average (the estimate's standard error is below 0.1 % of the mass).
    static let samples = 2048

    /// The mean over tokens of the sum of the K chosen gates (not renormalised), for routing by
    /// `router` (E, C) of FFN inputs of length `inputLength` and uniformly random direction.
    static func expectedGateMass(router: Tensor, inputLength: Double, topK K: Int, seed: UInt64) -> Double {
        let E = router.rows, C = router.count / router.rows
        var rng = SplitMix64(seed: seed)
        var z = [Float](repeating: 0, count: C)
        var logits = [Double](repeating: 0, count: E)
        var total = 0.0
        for _ in 0..<samples {
            // h = inputLength * z / |z|: a point of the sphere of that radius.
            var norm = 0.0
            for i in 0..<C { z[i] = rng.normal(); norm += Double(z[i]) * Double(z[i]) }
            let scale = norm > 0 ? inputLength / norm.squareRoot() : 0
            for e in 0..<E {
                var s = 0.0
                let row = router.data + e * C
                for i in 0..<C { s += Double(row[i]) * Double(z[i]) }
                logits[e] = s * scale
            }
            let m = logits.max()!
            let p = logits.map { exp($0 - m) }
            let sum = p.reduce(0, +)
            total += p.sorted(by: >).prefix(K).reduce(0, +) / sum
        }
        return total / Double(samples)
    }

    /// The mean over `residuals` (rows of C) of the sum of the K chosen gates, each row normalised
    /// as the FFN's input norm does (`norm` with weight `normWeight`). For data-based routers, on
    /// the residual streams they were computed from; for a sequential block the FFN reads the
    /// stream after attention, which the layer's entry stream stands in for.
    static func measuredGateMass(router: Tensor, residuals: [[Float]], normWeight w: Tensor, norm: NormKind, eps: Float,
                                 topK K: Int) -> Double {
        let E = router.rows, C = router.count / router.rows
        var total = 0.0
        var h = [Double](repeating: 0, count: C)
        for x in residuals {
            var mean = 0.0
            if norm == .layer { mean = x.reduce(0.0) { $0 + Double($1) } / Double(C) }
            var ss = 0.0
            for i in 0..<C { let d = Double(x[i]) - mean; ss += d * d }
            let r = 1 / (ss / Double(C) + Double(eps)).squareRoot()
            for i in 0..<C { h[i] = (Double(x[i]) - mean) * r * Double(w.data[i]) }
            var logits = [Double](repeating: 0, count: E)
            for e in 0..<E {
                let row = router.data + e * C
                for i in 0..<C { logits[e] += Double(row[i]) * h[i] }
            }
            let m = logits.max()!
            let p = logits.map { exp($0 - m) }
            total += p.sorted(by: >).prefix(K).reduce(0, +) / p.reduce(0, +)
        }
        return total / Double(max(1, residuals.count))
    }

    /// |h| for the FFN input of a layer whose norm has weight `w`: sqrt(sum_i w_i^2).
    static func inputLength(normWeight w: Tensor) -> Double {
        var s = 0.0
        for i in 0..<w.count { s += Double(w.data[i]) * Double(w.data[i]) }
        return s.squareRoot()
    }
}
