import BamTensors
import Foundation

/// Router decisions for T tokens over E experts.
public struct RoutingDecision: Sendable {
    public var T: Int
    public var E: Int
    public var probabilities: [Float]     // (T, E) dense softmax of the router logits
    public var logits: [Float]            // (T, E)
    public var weights: [Float]           // (T, E) the gate each expert's output is scaled by (0 = not chosen)
    public var chosen: [[Int]]            // (T, K) chosen experts, highest probability first
}

/// Softmax over the router logits, then the K largest (ties go to the lower expert index, a
/// stable order; torch.topk leaves ties unspecified). With `renormalize` the chosen probabilities
/// are divided by their sum — Mixtral's softmax -> top-k -> renormalise, which equals BTX's
/// softmax over the top-k logits (docs/methods.md). Without it they are used as is (Switch / BAM).
public func route(logits: UnsafePointer<Float>, T: Int, E: Int, topK K: Int, renormalize: Bool) -> RoutingDecision {
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
    return RoutingDecision(T: T, E: E, probabilities: probs, logits: logitArray, weights: weights, chosen: chosen)
}

/// What a forward pass reports to observers (routing statistics, router initialisation).
public enum ForwardEvent {
    /// The residual stream entering `layer`: (T, C).
    case hidden(layer: Int, x: UnsafePointer<Float>, T: Int, C: Int)
    case attentionRouting(layer: Int, RoutingDecision)
    case feedForwardRouting(layer: Int, RoutingDecision)
}
