import BamTensors
import Foundation

/// Next-token cross-entropy per row: losses[n] = logsumexp(logits[n]) - logits[n][targets[n]].
/// Rows whose target is negative are not scored (loss 0); they are the padding of a batch.
/// losses (N); lse (N) saved (the backward's softmax needs it); logits (N, V); targets (N).
/// Returns the number of scored rows.
@discardableResult
public func crossEntropyForward(_ losses: UnsafeMutablePointer<Double>, _ lse: UnsafeMutablePointer<Float>,
                                _ logits: UnsafePointer<Float>, _ targets: UnsafePointer<Int32>, N: Int, V: Int) -> Int {
    let lP = SendablePointer(losses), sP = SendablePointer(lse), xP = SendableRawPointer(logits), tP = SendableRawPointer(targets)
    // Rows are independent; each chunk writes its own losses.
    BLASThreads.parallelRanges(N, minimumPerChunk: 8) { range in
        let x = xP.pointer.assumingMemoryBound(to: Float.self), t = tP.pointer.assumingMemoryBound(to: Int32.self)
        for n in range {
            let target = Int(t[n])
            let l = target < 0 ? 0 : logSumExp(x + n * V, n: V)
            sP.pointer[n] = Float(l)
            lP.pointer[n] = target < 0 ? 0 : l - Double(x[n * V + target])
        }
    }
    var scored = 0
    for n in 0..<N where targets[n] >= 0 { scored += 1 }
    return scored
}

/// Fused softmax + cross-entropy backward (llm.c's fused classifier): for each scored row,
///   dlogits[n] = dloss * scale * (exp(logits[n] - lse[n]) - onehot(targets[n]))
/// and 0 for unscored rows. `dloss` is dL/dlosses[n] (1 / scored rows for a mean); `scale` is the
/// factor the logits were multiplied by after the output projection (Cohere's logit_scale), so
/// dlogits is the gradient of the projection's raw output. WRITES dlogits, which may alias logits
/// (the (N, V) logits are the largest activation; overwriting them saves a second buffer).
public func crossEntropySoftmaxBackward(_ dlogits: UnsafeMutablePointer<Float>, _ logits: UnsafePointer<Float>,
                                        _ lse: UnsafePointer<Float>, _ targets: UnsafePointer<Int32>, dloss: Float, scale: Float,
                                        N: Int, V: Int) {
    let dP = SendablePointer(dlogits), xP = SendableRawPointer(logits), tP = SendableRawPointer(targets)
    let sP = SendableRawPointer(lse)
    BLASThreads.parallelRanges(N, minimumPerChunk: 8) { range in
        let x = xP.pointer.assumingMemoryBound(to: Float.self), t = tP.pointer.assumingMemoryBound(to: Int32.self)
        let lse = sP.pointer.assumingMemoryBound(to: Float.self)
        for n in range {
            let row = x + n * V, d = dP.pointer + n * V
            let target = Int(t[n])
            if target < 0 {
                for j in 0..<V { d[j] = 0 }
                continue
            }
            let lse = lse[n]
            let g = dloss * scale
            for j in 0..<V { d[j] = g * expf(row[j] - lse) }
            d[target] -= g
        }
    }
}

/// Naive twin of `crossEntropySoftmaxBackward` (double precision, no aliasing).
public func crossEntropySoftmaxBackwardNaive(_ dlogits: UnsafeMutablePointer<Float>, _ logits: UnsafePointer<Float>,
                                             _ targets: UnsafePointer<Int32>, dloss: Float, scale: Float, N: Int, V: Int) {
    for n in 0..<N {
        let target = Int(targets[n])
        var mx = -Double.infinity
        for j in 0..<V { mx = max(mx, Double(logits[n * V + j])) }
        var sum: Double = 0
        for j in 0..<V { sum += exp(Double(logits[n * V + j]) - mx) }
        for j in 0..<V {
            let p = exp(Double(logits[n * V + j]) - mx) / sum
            dlogits[n * V + j] = target < 0 ? 0 : Float(Double(dloss) * Double(scale) * (p - (j == target ? 1 : 0)))
        }
    }
}
