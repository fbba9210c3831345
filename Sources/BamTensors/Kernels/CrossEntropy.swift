import Foundation

/// Next-token cross-entropy fused with its backward (llm.c's fused classifier), per row n:
///   losses[n] = logsumexp(logits[n]) - logits[n][targets[n]]
///   logits[n] <- softmax(logits[n]) - onehot(targets[n])        (in place)
/// i.e. the row becomes dlosses[n]/dlogits[n]; the caller scales it by dL/dlosses[n] (1 / scored
/// rows for a mean, times any logit scale) when it multiplies it into the output projection's
/// backward. Rows whose target is negative are not scored: loss 0 and a zero gradient row.
/// Overwriting the (N, V) logits — the largest activation — saves a second buffer and one of the
/// two exp passes an unfused forward + backward would make.
/// losses (N); logits (N, V) in, gradient out; targets (N). Returns the number of scored rows.
@discardableResult
public func crossEntropyForwardBackward(_ losses: UnsafeMutablePointer<Double>, _ logits: UnsafeMutablePointer<Float>,
                                        _ targets: UnsafePointer<Int32>, N: Int, V: Int) -> Int {
    let lP = SendablePointer(losses), xP = SendablePointer(logits), tP = SendableRawPointer(targets)
    // Rows are independent; each chunk rewrites its own rows and losses.
    BLASThreads.parallelRanges(N, minimumPerChunk: 8) { range in
        let t = tP.pointer.assumingMemoryBound(to: Int32.self)
        for n in range {
            let row = xP.pointer + n * V
            let target = Int(t[n])
            if target < 0 {
                for j in 0..<V { row[j] = 0 }
                lP.pointer[n] = 0
                continue
            }
            var mx = -Float.infinity
            for j in 0..<V where row[j] > mx { mx = row[j] }
            let picked = row[target]
            let sum = expShiftedInPlace(row, n: V, shift: mx)
            lP.pointer[n] = Double(mx) + log(sum) - Double(picked)
            let inv = Float(1 / sum)
            for j in 0..<V { row[j] *= inv }
            row[target] -= 1
        }
    }
    var scored = 0
    for n in 0..<N where targets[n] >= 0 { scored += 1 }
    return scored
}

/// Naive twin of `crossEntropyForwardBackward` (double precision, separate output buffers).
public func crossEntropyForwardBackwardNaive(_ losses: UnsafeMutablePointer<Double>, _ dlogits: UnsafeMutablePointer<Float>,
                                             _ logits: UnsafePointer<Float>, _ targets: UnsafePointer<Int32>, N: Int, V: Int) {
    for n in 0..<N {
        let target = Int(targets[n])
        var mx = -Double.infinity
        for j in 0..<V { mx = max(mx, Double(logits[n * V + j])) }
        var sum: Double = 0
        for j in 0..<V { sum += exp(Double(logits[n * V + j]) - mx) }
        losses[n] = target < 0 ? 0 : mx + log(sum) - Double(logits[n * V + target])
        for j in 0..<V {
            let p = exp(Double(logits[n * V + j]) - mx) / sum
            dlogits[n * V + j] = target < 0 ? 0 : Float(p - (j == target ? 1 : 0))
        }
    }
}
