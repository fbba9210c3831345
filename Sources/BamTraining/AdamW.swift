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
    /// gradient this step, by tensor identity: they are left entirely alone). The gradients are
    /// multiplied by `gradientScale` as they are read (gradient clipping without a pass of its own).
    public func update(lr: Double, gradientScale: Float = 1, skipping idle: Set<ObjectIdentifier> = []) {
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
                    let gj = g[j] * gradientScale
                    p[j] *= decay
                    m[j] = b1 * m[j] + (1 - b1) * gj
                    v[j] = b2 * v[j] + (1 - b2) * gj * gj
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

/// Blocks of this many elements are summed independently (and in parallel), then added in order,
/// so the norm does not depend on the number of cores.
private let normBlock = 1 << 16

/// The global L2 norm of all gradients (accumulated in double).
public func gradientNorm(_ gradients: [Tensor]) -> Double {
    var total = 0.0
    for g in gradients {
        let blocks = (g.count + normBlock - 1) / normBlock
        var partial = [Double](repeating: 0, count: blocks)
        let gP = SendablePointer(g.data), count = g.count
        partial.withUnsafeMutableBufferPointer { pb in
            let pP = SendablePointer(pb.baseAddress!)
            // Each block writes its own partial sum.
            BLASThreads.parallelRanges(blocks) { range in
                for b in range {
                    var s = 0.0
                    for i in (b * normBlock)..<min(count, (b + 1) * normBlock) { s += Double(gP.pointer[i]) * Double(gP.pointer[i]) }
                    pP.pointer[b] = s
                }
            }
        }
        total += partial.reduce(0, +)
    }
    return total.squareRoot()
}

/// The factor torch.nn.utils.clip_grad_norm_ scales every gradient by: min(1, max_norm / (norm + 1e-6)).
public func clipCoefficient(norm: Double, maxNorm: Double) -> Float {
    Float(min(1, maxNorm / (norm + 1e-6)))
}

/// Scales every gradient by `clipCoefficient` (torch.nn.utils.clip_grad_norm_). Returns the norm
/// before clipping. (Training passes the coefficient to `AdamW.update` instead of rewriting the
/// gradients.)
@discardableResult
public func clipGradients(_ gradients: [Tensor], maxNorm: Double) -> Double {
    let norm = gradientNorm(gradients)
    let c = clipCoefficient(norm: norm, maxNorm: maxNorm)
    if c < 1 {
        for g in gradients {
            let gP = SendablePointer(g.data)
            BLASThreads.parallelRanges(g.count, minimumPerChunk: normBlock) { r in for i in r { gP.pointer[i] *= c } }
        }
    }
    return norm
}

/// Linear warm-up to the peak learning rate, then cosine decay to `minFraction` of the peak at
/// the last step (docs/methods.md, "Optimiser and schedule"). `step` counts
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
