import BamFormats
import BamTensors
import Foundation

// The routing rule of an FFN mixture (a config value), forward and backward: the one place the
// rule is applied, by inference and training alike. The kernels are BamTensors' Router.swift and
// RouterVariants.swift.

/// Gumbel noise for one sampled forward pass of an FFN router (sampled top-1 while training).
public struct GumbelSample: Sendable {
    /// (T, E) Gumbel(0, 1) samples, one per token and expert.
    public var noise: [Float]
    /// The Gumbel-softmax temperature (FeedForwardRouting.gumbelTemperature).
    public var temperature: Float

    public init(noise: [Float], temperature: Float) {
        self.noise = noise
        self.temperature = temperature
    }

    /// T x E samples g = -log(-log u) from `rng`'s uniforms (u in (0, 1): the 24-bit draws are
    /// offset by half a step so neither end occurs).
    public init(T: Int, E: Int, temperature: Float, rng: inout SplitMix64) {
        noise = (0..<(T * E)).map { _ in gumbel(uniform: (Double(rng.next() >> 40) + 0.5) / 16_777_216) }
        self.temperature = temperature
    }
}

extension FeedForwardRouting {
    /// The decision of an FFN mixture's router for T tokens over E experts. `tokenMask` (T): the
    /// tokens router statistics count (false: padding; nil: all); Switch's capacity counts only
    /// them. `sample`: the Gumbel noise of a sampled top-1 training pass (nil: inference, argmax).
    public func route(logits: UnsafePointer<Float>, T: Int, E: Int, tokenMask: [Bool]? = nil,
                      sample: GumbelSample? = nil) -> RoutingDecision {
        switch self {
        case let .topK(k, renormalize):
            return BamTensors.route(logits: logits, T: T, E: E, topK: k, renormalize: renormalize, tokenMask: tokenMask)
        case let .switch(factor):
            let counted = tokenMask.map { $0.reduce(0) { $0 + ($1 ? 1 : 0) } } ?? T
            return routeSwitch(logits: logits, T: T, E: E, capacity: switchCapacity(factor: factor, tokens: counted, experts: E),
                               tokenMask: tokenMask)
        case .sampleTop1:
            guard let sample else {
                return routeSampleTop1(logits: logits, T: T, E: E, noise: nil, temperature: 1, tokenMask: tokenMask)
            }
            precondition(sample.noise.count == T * E, "Gumbel noise for \(sample.noise.count / max(E, 1)) tokens, routing \(T)")
            return sample.noise.withUnsafeBufferPointer {
                routeSampleTop1(logits: logits, T: T, E: E, noise: $0.baseAddress!, temperature: sample.temperature, tokenMask: tokenMask)
            }
        case .soft:
            return BamTensors.route(logits: logits, T: T, E: E, topK: E, renormalize: false, tokenMask: tokenMask)
        }
    }

    /// Backward of `route`: accumulates dlogits (N, E) from dgates and dprobs (N, E) as
    /// `routerBackward` (top-k, Switch, soft: plain or renormalised gates of the softmax) or
    /// `sampleTop1Backward` (the straight-through Gumbel-softmax) describes.
    public func backward(_ dlogits: UnsafeMutablePointer<Float>, _ dgates: UnsafePointer<Float>, _ dprobs: UnsafePointer<Float>?,
                         _ decision: RoutingDecision) throws {
        switch self {
        case let .topK(_, renormalize): routerBackward(dlogits, dgates, dprobs, decision, renormalize: renormalize)
        case .switch, .soft: routerBackward(dlogits, dgates, dprobs, decision, renormalize: false)
        case .sampleTop1: try sampleTop1Backward(dlogits, dgates, dprobs, decision)
        }
    }
}

/// What a forward pass reports to observers (routing statistics, router initialisation).
public enum ForwardEvent {
    /// The residual stream entering `layer`: (T, C).
    case hidden(layer: Int, x: UnsafePointer<Float>, T: Int, C: Int)
    case attentionRouting(layer: Int, RoutingDecision)
    case feedForwardRouting(layer: Int, RoutingDecision)
}
