import Foundation

// The router: p = softmax(logits); the K most probable experts (ties to the lower index); gate
// g_i = p_i / sum_{chosen} p (renormalised: Mixtral/BTX, BAM top-k attention) or g_i = p_i
// (Switch / BAM FFN), 0 for experts not chosen. Inference and training call the same `route`, so
// they choose the same experts. Soft attention routing is route(topK: E, renormalize: true), i.e.
// g = p. Below it: its backward, the router losses (forward and backward) and the naive twins.

/// Router decisions for T tokens over E experts.
public struct RoutingDecision: Sendable {
    public var T: Int
    public var E: Int
    public var probabilities: [Float]     // (T, E) dense softmax of the router logits
    public var logits: [Float]            // (T, E)
    public var weights: [Float]           // (T, E) the gate each expert's output is scaled by (0 = not chosen)
    public var chosen: [[Int]]            // (T, K) chosen experts, highest probability first
    /// (T) the tokens the router statistics and losses count; false marks padding (positions past
    /// the end of a short stream), which the balancing losses and the z-loss leave out as the BAM
    /// reference's `token_mask` does. nil: every token counts.
    public var tokenMask: [Bool]?
    /// (T) tokens that skip the FFN: Switch routing's overflow once the chosen expert holds its
    /// capacity (and padding, which takes none). A dropped token keeps its router choice in
    /// `chosen` / `weights` — the balancing losses are about what the router wants — but no expert
    /// runs on it, so its FFN output is 0 and only the residual carries it.
    public var dropped: [Bool]
    /// Sampled top-1 while training: the relaxed sample y = softmax((logits + g) / temperature)
    /// (T, E) of the Gumbel noise g, whose gradient the hard gate takes (straight-through); nil
    /// for every other decision.
    public var relaxed: [Float]?
    public var temperature: Float

    public init(T: Int, E: Int, probabilities: [Float], logits: [Float], weights: [Float], chosen: [[Int]],
                tokenMask: [Bool]? = nil, dropped: [Bool]? = nil, relaxed: [Float]? = nil, temperature: Float = 1) {
        self.T = T
        self.E = E
        self.probabilities = probabilities
        self.logits = logits
        self.weights = weights
        self.chosen = chosen
        self.tokenMask = tokenMask
        self.dropped = dropped ?? [Bool](repeating: false, count: T)
        self.relaxed = relaxed
        self.temperature = temperature
    }

    /// Whether token t counts in the router statistics (not padding).
    @inline(__always) public func counts(_ t: Int) -> Bool { tokenMask?[t] ?? true }

    /// The experts token t is sent through: its choice, or none when it was dropped.
    @inline(__always) public func dispatched(_ t: Int) -> [Int] { dropped[t] ? [] : chosen[t] }

    /// Tokens that skipped the FFN, padding excluded.
    public var droppedCount: Int { (0..<T).reduce(0) { $0 + (dropped[$1] && counts($1) ? 1 : 0) } }

    /// Tokens the statistics count.
    public var countedTokens: Int { tokenMask.map { $0.reduce(0) { $0 + ($1 ? 1 : 0) } } ?? T }
}

/// Softmax over the router logits, then the K largest (ties go to the lower expert index, a
/// stable order; torch.topk leaves ties unspecified). With `renormalize` the chosen probabilities
/// are divided by their sum — Mixtral's softmax -> top-k -> renormalise, which equals BTX's
/// softmax over the top-k logits (docs/methods.md). Without it they are used as is (Switch / BAM).
public func route(logits: UnsafePointer<Float>, T: Int, E: Int, topK K: Int, renormalize: Bool,
                  tokenMask: [Bool]? = nil) -> RoutingDecision {
    var probs = [Float](repeating: 0, count: T * E)
    var weights = [Float](repeating: 0, count: T * E)
    var chosen: [[Int]] = []
    chosen.reserveCapacity(T)
    let logitArray = Array(UnsafeBufferPointer(start: logits, count: T * E))
    probs.withUnsafeMutableBufferPointer { p in
        p.baseAddress!.update(from: logits, count: T * E)
        softmaxRows(p.baseAddress!, rows: T, n: E)
    }
    for t in 0..<T {
        let row = Array(probs[(t * E)..<((t + 1) * E)])
        var order = Array(0..<E)
        if K < E {
            order.sort { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
            order = Array(order.prefix(K))
        } else {
            order.sort { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
        }
        var sum: Float = 0
        for e in order { sum += row[e] }
        for e in order { weights[t * E + e] = renormalize ? row[e] / sum : row[e] }
        chosen.append(order)
    }
    return RoutingDecision(T: T, E: E, probabilities: probs, logits: logitArray, weights: weights, chosen: chosen, tokenMask: tokenMask)
}

/// Backward of the router: from dgates (N, E) = dL/dg (the LM loss through the chosen experts'
/// outputs, plus the BTX balance loss) and dprobs (N, E) = dL/dp (the balance losses' direct
/// dependence on the dense probabilities), accumulates dlogits (N, E) += dL/dlogits.
///   renormalised: dL/dp_j += (dg_j - sum_{i chosen} dg_i g_i) / S,  S = sum_{i chosen} p_i   (j chosen)
///   plain:        dL/dp_j += dg_j                                                           (j chosen)
///   softmax:      dlogit_j += p_j (dp_j - sum_i p_i dp_i)
/// Experts not chosen receive no gradient through the gate (g is the constant 0 there), only
/// through the probabilities.
public func routerBackward(_ dlogits: UnsafeMutablePointer<Float>, _ dgates: UnsafePointer<Float>,
                           _ dprobs: UnsafePointer<Float>?, _ decision: RoutingDecision, renormalize: Bool) {
    let N = decision.T, E = decision.E
    var dp = [Float](repeating: 0, count: E)
    decision.probabilities.withUnsafeBufferPointer { probs in
        decision.weights.withUnsafeBufferPointer { gates in
            for t in 0..<N {
                let p = probs.baseAddress! + t * E, g = gates.baseAddress! + t * E, dg = dgates + t * E
                for j in 0..<E { dp[j] = dprobs?[t * E + j] ?? 0 }
                let chosen = decision.chosen[t]
                if renormalize {
                    var S: Float = 0, dot: Float = 0
                    for i in chosen { S += p[i]; dot += dg[i] * g[i] }
                    for j in chosen { dp[j] += (dg[j] - dot) / S }
                } else {
                    for j in chosen { dp[j] += dg[j] }
                }
                var dot: Float = 0
                for j in 0..<E { dot += p[j] * dp[j] }
                let dl = dlogits + t * E
                for j in 0..<E { dl[j] += p[j] * (dp[j] - dot) }
            }
        }
    }
}

/// Naive twin of `routerBackward`: each row's Jacobians written out in double and multiplied,
/// with the gates taken as functions of the logits directly — renormalised gates are a softmax
/// over the chosen logits (dg_j/dl_k = g_j (δ_jk - g_k), k chosen), plain gates are the dense
/// probabilities (dg_j/dl_k = p_j (δ_jk - p_k)); dp_j/dl_k = p_j (δ_jk - p_k).
public func routerBackwardNaive(_ dlogits: UnsafeMutablePointer<Float>, _ dgates: UnsafePointer<Float>,
                                _ dprobs: UnsafePointer<Float>?, _ decision: RoutingDecision, renormalize: Bool) {
    let N = decision.T, E = decision.E
    for t in 0..<N {
        let l = (0..<E).map { Double(decision.logits[t * E + $0]) }
        let mx = l.max() ?? 0
        let ex = l.map { exp($0 - mx) }
        let sum = ex.reduce(0, +)
        let p = ex.map { $0 / sum }
        let chosen = decision.chosen[t]
        let chosenSum = chosen.reduce(0.0) { $0 + ex[$1] }
        for k in 0..<E {
            var d = 0.0
            for j in chosen {
                let dgdl: Double
                if renormalize {
                    let g = ex[j] / chosenSum
                    dgdl = chosen.contains(k) ? g * ((j == k ? 1 : 0) - ex[k] / chosenSum) : 0
                } else {
                    dgdl = p[j] * ((j == k ? 1 : 0) - p[k])
                }
                d += Double(dgates[t * E + j]) * dgdl
            }
            if let dprobs {
                for j in 0..<E { d += Double(dprobs[t * E + j]) * p[j] * ((j == k ? 1 : 0) - p[k]) }
            }
            dlogits[t * E + k] += Float(d)
        }
    }
}

/// Which load-balancing loss an FFN mixture is trained with (docs/methods.md).
public enum AuxLossKind: String, Sendable, Codable, CaseIterable {
    /// BTX: E * sum_i u_i P_i, u_i = mean sparse gate, P_i = mean probability (both differentiable).
    case btx
    /// Switch / HF style: E * sum_i f_i P_i with hard fractions f_i = count_i / (N K) (constant).
    case `switch`
    /// No balancing loss.
    case none
}

/// The router losses of one FFN mixture layer over the N tokens of a batch.
public struct RouterLossValues: Sendable, Codable, Equatable {
    public var btx: Double
    public var switchLoss: Double
    public var z: Double
    public init(btx: Double = 0, switchLoss: Double = 0, z: Double = 0) { self.btx = btx; self.switchLoss = switchLoss; self.z = z }

    public static func + (a: RouterLossValues, b: RouterLossValues) -> RouterLossValues {
        RouterLossValues(btx: a.btx + b.btx, switchLoss: a.switchLoss + b.switchLoss, z: a.z + b.z)
    }

    public func aux(_ kind: AuxLossKind) -> Double {
        switch kind {
        case .btx: btx
        case .switch: switchLoss
        case .none: 0
        }
    }
}

/// Mean probability P_i, mean gate u_i and hard fraction f_i = count_i / (N K) per expert, over
/// the N tokens the decision counts (padding left out; all zero when none counts).
public func routerStatistics(_ d: RoutingDecision, topK K: Int) -> (P: [Double], u: [Double], f: [Double]) {
    let E = d.E, N = d.countedTokens
    var P = [Double](repeating: 0, count: E), u = P, f = P
    guard N > 0 else { return (P, u, f) }
    for t in 0..<d.T where d.counts(t) {
        for i in 0..<E {
            P[i] += Double(d.probabilities[t * E + i])
            u[i] += Double(d.weights[t * E + i])
        }
        for i in d.chosen[t].prefix(K) { f[i] += 1 }
    }
    for i in 0..<E { P[i] /= Double(N); u[i] /= Double(N); f[i] /= Double(N * K) }
    return (P, u, f)
}

/// The three router losses (docs/methods.md, and the BAM reference's `router_losses`) over the N
/// tokens the decision counts:
///   btx    = E * sum_i u_i P_i
///   switch = E * sum_i f_i P_i
///   z      = mean over tokens of logsumexp(logits)^2
public func routerLossesForward(_ decision: RoutingDecision, topK K: Int) -> RouterLossValues {
    let E = decision.E, N = decision.countedTokens
    let (P, u, f) = routerStatistics(decision, topK: K)
    var v = RouterLossValues()
    guard N > 0 else { return v }
    for i in 0..<E {
        v.btx += Double(E) * u[i] * P[i]
        v.switchLoss += Double(E) * f[i] * P[i]
    }
    decision.logits.withUnsafeBufferPointer { l in
        for t in 0..<decision.T where decision.counts(t) {
            let lse = logSumExp(l.baseAddress! + t * E, n: E)
            v.z += lse * lse / Double(N)
        }
    }
    return v
}

/// Backward of `alpha * aux + beta * z` for one layer (t over the N counted tokens; padding gets
/// nothing):
///   btx:    dL/dg_{t,i} += alpha E P_i / N;   dL/dp_{t,i} += alpha E u_i / N
///   switch: dL/dp_{t,i} += alpha E f_i / N    (f is a count: no gradient)
///   z:      dL/dlogit_{t,j} += beta * 2 lse_t / N * p_{t,j}
/// dgates, dprobs, dlogits (T, E) accumulate; the first two then go through the routing's backward.
public func routerLossesBackward(_ dgates: UnsafeMutablePointer<Float>, _ dprobs: UnsafeMutablePointer<Float>,
                                 _ dlogits: UnsafeMutablePointer<Float>, _ decision: RoutingDecision, topK K: Int,
                                 aux: AuxLossKind, alpha: Double, zBeta: Double) {
    let E = decision.E, N = decision.countedTokens
    guard N > 0 else { return }
    if aux != .none && alpha != 0 {
        let (P, u, f) = routerStatistics(decision, topK: K)
        let c = alpha * Double(E) / Double(N)
        for t in 0..<decision.T where decision.counts(t) {
            for i in 0..<E {
                switch aux {
                case .btx:
                    dgates[t * E + i] += Float(c * P[i])
                    dprobs[t * E + i] += Float(c * u[i])
                case .switch:
                    dprobs[t * E + i] += Float(c * f[i])
                case .none: break
                }
            }
        }
    }
    if zBeta != 0 {
        decision.logits.withUnsafeBufferPointer { l in
            for t in 0..<decision.T where decision.counts(t) {
                let lse = logSumExp(l.baseAddress! + t * E, n: E)
                let c = Float(zBeta * 2 * lse / Double(N))
                for j in 0..<E { dlogits[t * E + j] += c * decision.probabilities[t * E + j] }
            }
        }
    }
}
