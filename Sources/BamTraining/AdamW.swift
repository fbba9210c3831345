import BamModels
import BamTensors
import Foundation

/// AdamW (Loshchilov & Hutter; torch.optim.AdamW's arithmetic, step for step): for a parameter p
/// with gradient g at step t (from 1), learning rate lr and weight decay wd,
///   p <- p * (1 - lr * wd)                                   (decoupled decay; 0 for norms and biases)
///   m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g^2
///   p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
public struct AdamWOptions: Sendable, Equatable, Codable {
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double
    /// Decay norms and biases too (off by default, as both papers' Llama-style recipes).
    public var decayNormsAndBiases: Bool
    /// Leave FFN experts that no token reached in a step entirely alone (no decay, no moment
    /// update, no step count): what torch does for experts that are separate modules (the BAM
    /// reference, transformers 4's Mixtral), whose .grad stays None. false: update them with a zero
    /// gradient, as torch does for transformers 5's fused expert tensors.
    public var skipIdleExperts: Bool

    public init(beta1: Double = 0.9, beta2: Double = 0.95, eps: Double = 1e-8, weightDecay: Double = 0.1,
                decayNormsAndBiases: Bool = false, skipIdleExperts: Bool = true) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decayNormsAndBiases = decayNormsAndBiases
        self.skipIdleExperts = skipIdleExperts
    }
}

public final class AdamW {
    public let options: AdamWOptions
    /// Updates taken so far, per parameter (t of its bias corrections; a parameter skipped in a
    /// step does not count it, as in torch).
    public private(set) var steps: [Int]
    /// First and second moments, one pair per trainable parameter (same order as `parameters`).
    public let m: [Tensor]
    public let v: [Tensor]
    let parameters: [(spec: ParameterSpec, parameter: Tensor, gradient: Tensor)]

    public init(parameters: [(spec: ParameterSpec, parameter: Tensor, gradient: Tensor)], options: AdamWOptions) {
        self.parameters = parameters
        self.options = options
        m = parameters.map { Tensor(shape: $0.parameter.shape) }
        v = parameters.map { Tensor(shape: $0.parameter.shape) }
        steps = parameters.map { _ in 0 }
    }

    /// Bytes of optimiser state (m and v).
    public var stateBytes: Int { m.reduce(0) { $0 + $1.byteCount } * 2 }

    /// One update with learning rate `lr` of every parameter not in `idle` (parameters that got no
    /// gradient this step, by tensor identity: they are left entirely alone).
    public func update(lr: Double, skipping idle: Set<ObjectIdentifier> = []) {
        let o = options
        let b1 = Float(o.beta1), b2 = Float(o.beta2), eps = Float(o.eps)
        for (i, (spec, p, g)) in parameters.enumerated() where !idle.contains(ObjectIdentifier(p)) {
            steps[i] += 1
            let bc1 = 1 - pow(o.beta1, Double(steps[i]))
            let bc2Sqrt = (1 - pow(o.beta2, Double(steps[i]))).squareRoot()
            let stepSize = Float(lr / bc1), invBc2Sqrt = Float(1 / bc2Sqrt)
            let decay = Float(spec.isNormOrBias && !o.decayNormsAndBiases ? 1 : 1 - lr * o.weightDecay)
            let pP = SendablePointer(p.data), gP = SendablePointer(g.data), mP = SendablePointer(m[i].data), vP = SendablePointer(v[i].data)
            // Element-wise; each chunk updates its own range of the four buffers.
            BLASThreads.parallelRanges(p.count, minimumPerChunk: 1 << 15) { range in
                let p = pP.pointer, g = gP.pointer, m = mP.pointer, v = vP.pointer
                for j in range {
                    p[j] *= decay
                    m[j] = b1 * m[j] + (1 - b1) * g[j]
                    v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j]
                    p[j] -= stepSize * m[j] / ((v[j].squareRoot() * invBc2Sqrt) + eps)
                }
            }
        }
    }

    /// Restores the per-parameter step counts (resume); m and v are filled by the caller.
    public func restore(steps: [Int]) {
        precondition(steps.count == self.steps.count)
        self.steps = steps
    }
}

/// The global L2 norm of all gradients (accumulated in double).
public func gradientNorm(_ gradients: [Tensor]) -> Double {
    var total = 0.0
    for g in gradients {
        var s = 0.0
        for i in 0..<g.count { s += Double(g.data[i]) * Double(g.data[i]) }
        total += s
    }
    return total.squareRoot()
}

/// Scales every gradient by max_norm / (norm + 1e-6) when the global norm exceeds max_norm
/// (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
@discardableResult
public func clipGradients(_ gradients: [Tensor], maxNorm: Double) -> Double {
    let norm = gradientNorm(gradients)
    let coef = maxNorm / (norm + 1e-6)
    if coef < 1 {
        let c = Float(coef)
        for g in gradients { for i in 0..<g.count { g.data[i] *= c } }
    }
    return norm
}

/// Linear warm-up to the peak learning rate, then cosine decay to `minFraction` of the peak at
/// the last step (methods.md: "linear warm-up, cosine decay to 10 % of peak"). `step` counts
/// updates from 0:
///   step < warmup:  peak * (step + 1) / warmup
///   otherwise:      floor + (peak - floor) * (1 + cos(pi * progress)) / 2,
///                   progress = (step - warmup) / max(1, total - warmup - 1), floor = minFraction * peak
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public var peak: Double
    public var warmupSteps: Int
    public var totalSteps: Int
    public var minFraction: Double

    public init(peak: Double, warmupSteps: Int, totalSteps: Int, minFraction: Double = 0.1) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minFraction = minFraction
    }

    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps - 1)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        let floor = minFraction * peak
        return floor + (peak - floor) * 0.5 * (1 + cos(Double.pi * progress))
    }
}
