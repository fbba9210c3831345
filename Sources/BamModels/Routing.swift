import BamFormats
import BamTensors
import Foundation

// The routing rule of an FFN mixture (a config value), forward and backward: the one place the
// rule is applied, by inference and training alike. The kernels are BamTensors' Router.swift.
extension FeedForwardRouting {
    /// The decision of an FFN mixture's router for T tokens over E experts.
    public func route(logits: UnsafePointer<Float>, T: Int, E: Int) -> RoutingDecision {
        switch self {
        case let .topK(k, renormalize): BamTensors.route(logits: logits, T: T, E: E, topK: k, renormalize: renormalize)
        }
    }

    /// Backward of `route(logits:T:E:)`: accumulates dlogits (N, E) from dgates and dprobs (N, E)
    /// as `routerBackward` describes.
    public func backward(_ dlogits: UnsafeMutablePointer<Float>, _ dgates: UnsafePointer<Float>, _ dprobs: UnsafePointer<Float>?,
                         _ decision: RoutingDecision) {
        switch self {
        case let .topK(_, renormalize): routerBackward(dlogits, dgates, dprobs, decision, renormalize: renormalize)
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
