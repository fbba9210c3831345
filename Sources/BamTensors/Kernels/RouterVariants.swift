import Foundation

// BTX's further FFN routings (arXiv 2403.07816, section 4, the routing ablation), beside top-k
// (Router.swift):
//   Switch:         top-1 with gate p_i, at most C = ceil(capacityFactor * N / E) tokens per expert
//                   (first come, first served in token order); the rest skip the FFN.
//   sampled top-1:  while training, the expert of the Gumbel-max sample argmax(logits + g), with a
//                   hard gate 1 whose gradient is the relaxed sample's
//                   y = softmax((logits + g) / tau) (straight-through Gumbel-softmax, hard=True in
//                   torch.nn.functional.gumbel_softmax); at inference argmax(logits) with gate 1.
//   soft:           every expert with gate p_i: route(topK: E, renormalize: false).
// Each with its backward (Switch's and soft's gates are plain p: `routerBackward(renormalize:
// false)`) and naive twins.

/// Switch routing for T tokens: the top-1 expert with gate p (no renormalisation), and the tokens
/// over an expert's capacity `capacity` marked dropped. Tokens claim capacity in order; padding
/// (tokenMask false) claims none and is dropped too.
public func routeSwitch(logits: UnsafePointer<Float>, T: Int, E: Int, capacity: Int, tokenMask: [Bool]? = nil) -> RoutingDecision {
    var d = route(logits: logits, T: T, E: E, topK: 1, renormalize: false, tokenMask: tokenMask)
    var load = [Int](repeating: 0, count: E)
    for t in 0..<T {
        guard d.counts(t) else { d.dropped[t] = true; continue }
        let e = d.chosen[t][0]
        if load[e] < capacity { load[e] += 1 } else { d.dropped[t] = true }
    }
    return d
}

/// Switch's expert capacity: ceil(capacityFactor * N / E) tokens, N the tokens that count (at least 1).
public func switchCapacity(factor: Double, tokens N: Int, experts E: Int) -> Int {
    max(1, Int((factor * Double(N) / Double(E)).rounded(.up)))
}

/// Naive twin of `routeSwitch`'s dropping, the way a tensor library writes it: one-hot of the
/// chosen expert (zero rows for padding), its cumulative sum down the tokens (each token's position
/// in its expert's queue), and a token dropped when that position exceeds the capacity.
public func switchDroppedNaive(chosen: [Int], E: Int, capacity: Int, tokenMask: [Bool]?) -> [Bool] {
    let T = chosen.count
    var oneHot = [[Int]](repeating: [Int](repeating: 0, count: E), count: T)
    for t in 0..<T where tokenMask?[t] ?? true { oneHot[t][chosen[t]] = 1 }
    var cumulative = oneHot
    for t in 1..<max(T, 1) { for e in 0..<E { cumulative[t][e] += cumulative[t - 1][e] } }
    return (0..<T).map { t in
        guard tokenMask?[t] ?? true else { return true }
        return cumulative[t][chosen[t]] > capacity
    }
}

/// Gumbel(0, 1) noise from uniforms u in (0, 1): g = -log(-log u).
@inline(__always) public func gumbel(uniform u: Double) -> Float { Float(-log(-log(u))) }

/// Sampled top-1 for T tokens. With `noise` (T, E) Gumbel samples (training): the expert of
/// argmax(logits + g) (ties to the lower index), gate 1, and the relaxed sample
/// y = softmax((logits + g) / temperature) kept for the backward. Without (inference): argmax(logits), gate 1.
public func routeSampleTop1(logits: UnsafePointer<Float>, T: Int, E: Int, noise: UnsafePointer<Float>?, temperature: Float,
                            tokenMask: [Bool]? = nil) -> RoutingDecision {
    var probs = [Float](repeating: 0, count: T * E)
    probs.withUnsafeMutableBufferPointer { p in
        p.baseAddress!.update(from: logits, count: T * E)
        softmaxRows(p.baseAddress!, rows: T, n: E)
    }
    var weights = [Float](repeating: 0, count: T * E)
    var chosen: [[Int]] = []
    chosen.reserveCapacity(T)
    var relaxed: [Float]? = nil
    if let noise {
        var y = [Float](repeating: 0, count: T * E)
        y.withUnsafeMutableBufferPointer { yp in
            for i in 0..<(T * E) { yp[i] = (logits[i] + noise[i]) / temperature }
            softmaxRows(yp.baseAddress!, rows: T, n: E)
        }
        relaxed = y
    }
    for t in 0..<T {
        var best = 0
        var bestScore = -Float.infinity
        for e in 0..<E {
            let score = logits[t * E + e] + (noise?[t * E + e] ?? 0)
            if score > bestScore { bestScore = score; best = e }
        }
        weights[t * E + best] = 1
        chosen.append([best])
    }
    return RoutingDecision(T: T, E: E, probabilities: probs, logits: Array(UnsafeBufferPointer(start: logits, count: T * E)),
                           weights: weights, chosen: chosen, tokenMask: tokenMask, relaxed: relaxed, temperature: temperature)
}

/// Backward of sampled top-1 (straight-through Gumbel-softmax): the gate vector is
/// w = onehot + y - stop_gradient(y), so dL/dw (all E entries of dgates: the LM loss fills the
/// chosen one, BTX's balancing loss every one) goes through y = softmax(z / tau), z = logits + g:
///   dlogit_k += (1 / tau) y_k (dw_k - sum_j y_j dw_j)
/// and dprobs through the dense softmax as in `routerBackward`.
public func sampleTop1Backward(_ dlogits: UnsafeMutablePointer<Float>, _ dgates: UnsafePointer<Float>,
                               _ dprobs: UnsafePointer<Float>?, _ decision: RoutingDecision) throws {
    guard let relaxed = decision.relaxed else {
        throw BamError.usage("sampled top-1 routing: the backward pass needs the forward pass's Gumbel sample (train with router noise, not an inference decision)")
    }
    let N = decision.T, E = decision.E, invTau = 1 / decision.temperature
    for t in 0..<N {
        let y = t * E, dl = dlogits + t * E
        var dot: Float = 0
        for j in 0..<E { dot += relaxed[y + j] * dgates[t * E + j] }
        for k in 0..<E { dl[k] += invTau * relaxed[y + k] * (dgates[t * E + k] - dot) }
        if let dprobs {
            var pdot: Float = 0
            for j in 0..<E { pdot += decision.probabilities[y + j] * dprobs[t * E + j] }
            for k in 0..<E { dl[k] += decision.probabilities[y + k] * (dprobs[t * E + k] - pdot) }
        }
    }
}

/// Naive twin of `sampleTop1Backward`: the relaxed sample recomputed in double from the logits and
/// the noise, and each row's Jacobians written out and multiplied.
public func sampleTop1BackwardNaive(_ dlogits: UnsafeMutablePointer<Float>, _ dgates: UnsafePointer<Float>,
                                    _ dprobs: UnsafePointer<Float>?, _ decision: RoutingDecision, noise: UnsafePointer<Float>) {
    let N = decision.T, E = decision.E, tau = Double(decision.temperature)
    func softmax(_ x: [Double]) -> [Double] {
        let m = x.max() ?? 0
        let ex = x.map { exp($0 - m) }
        let s = ex.reduce(0, +)
        return ex.map { $0 / s }
    }
    for t in 0..<N {
        let l = (0..<E).map { Double(decision.logits[t * E + $0]) }
        let y = softmax((0..<E).map { (l[$0] + Double(noise[t * E + $0])) / tau })
        let p = softmax(l)
        for k in 0..<E {
            var d = 0.0
            for j in 0..<E {
                d += Double(dgates[t * E + j]) * y[j] * ((j == k ? 1 : 0) - y[k]) / tau
                if let dprobs { d += Double(dprobs[t * E + j]) * p[j] * ((j == k ? 1 : 0) - p[k]) }
            }
            dlogits[t * E + k] += Float(d)
        }
    }
}
