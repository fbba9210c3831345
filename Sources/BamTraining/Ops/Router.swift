import BamModels
import BamTensors
import Foundation

// The router's forward is the inference routing itself, `route(logits:T:E:topK:renormalize:)`
// (BamModels/Routing.swift): p = softmax(logits); the K most probable experts (ties to the lower
// index); gate g_i = p_i / sum_{chosen} p (renormalised: Mixtral/BTX, BAM top-k attention) or
// g_i = p_i (Switch / BAM FFN), 0 for experts not chosen. Training and inference therefore choose
// the same experts. Soft attention routing is route(topK: E, renormalize: true), i.e. g = p.

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

/// Mean probability P_i, mean gate u_i and hard fraction f_i = count_i / (N K) per expert.
func routerStatistics(_ d: RoutingDecision, topK K: Int) -> (P: [Double], u: [Double], f: [Double]) {
    let N = d.T, E = d.E
    var P = [Double](repeating: 0, count: E), u = P, f = P
    for t in 0..<N {
        for i in 0..<E {
            P[i] += Double(d.probabilities[t * E + i])
            u[i] += Double(d.weights[t * E + i])
        }
        for i in d.chosen[t].prefix(K) { f[i] += 1 }
    }
    for i in 0..<E { P[i] /= Double(N); u[i] /= Double(N); f[i] /= Double(N * K) }
    return (P, u, f)
}

/// The three router losses (docs/methods.md, and the BAM reference's `router_losses`):
///   btx    = E * sum_i u_i P_i
///   switch = E * sum_i f_i P_i
///   z      = mean over tokens of logsumexp(logits)^2
public func routerLossesForward(_ decision: RoutingDecision, topK K: Int) -> RouterLossValues {
    let N = decision.T, E = decision.E
    let (P, u, f) = routerStatistics(decision, topK: K)
    var v = RouterLossValues()
    for i in 0..<E {
        v.btx += Double(E) * u[i] * P[i]
        v.switchLoss += Double(E) * f[i] * P[i]
    }
    decision.logits.withUnsafeBufferPointer { l in
        for t in 0..<N {
            let lse = logSumExp(l.baseAddress! + t * E, n: E)
            v.z += lse * lse / Double(N)
        }
    }
    return v
}

/// Backward of `alpha * aux + beta * z` for one layer:
///   btx:    dL/dg_{t,i} += alpha E P_i / N;   dL/dp_{t,i} += alpha E u_i / N
///   switch: dL/dp_{t,i} += alpha E f_i / N    (f is a count: no gradient)
///   z:      dL/dlogit_{t,j} += beta * 2 lse_t / N * p_{t,j}
/// dgates, dprobs, dlogits (N, E) accumulate; the first two then go through `routerBackward`.
public func routerLossesBackward(_ dgates: UnsafeMutablePointer<Float>, _ dprobs: UnsafeMutablePointer<Float>,
                                 _ dlogits: UnsafeMutablePointer<Float>, _ decision: RoutingDecision, topK K: Int,
                                 aux: AuxLossKind, alpha: Double, zBeta: Double) {
    let N = decision.T, E = decision.E
    if aux != .none && alpha != 0 {
        let (P, u, f) = routerStatistics(decision, topK: K)
        let c = alpha * Double(E) / Double(N)
        for t in 0..<N {
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
            for t in 0..<N {
                let lse = logSumExp(l.baseAddress! + t * E, n: E)
                let c = Float(zBeta * 2 * lse / Double(N))
                for j in 0..<E { dlogits[t * E + j] += c * decision.probabilities[t * E + j] }
            }
        }
    }
}
