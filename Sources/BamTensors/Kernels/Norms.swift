import Foundation

// Normalisation kernels. Each optimised kernel has a naive twin below it; tests hold them together.

/// RMSNorm (Llama, Mistral, Qwen2, Mixtral): out = x / sqrt(mean(x^2) + eps) * weight.
/// out, inp: (T, C); weight: (C). `out` may alias `inp`. Training passes `rstd` (T) to keep
/// 1 / sqrt(mean(x^2) + eps) per row for the backward pass (`rmsnormBackward` below).
public func rmsnormForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                           _ weight: UnsafePointer<Float>, T: Int, C: Int, eps: Float,
                           rstd savedRstd: UnsafeMutablePointer<Float>? = nil) {
    for t in 0..<T {
        let x = inp + t * C
        let o = out + t * C
        var ss: Float = 0
        for i in 0..<C { ss += x[i] * x[i] }
        let rstd = 1 / (ss / Float(C) + eps).squareRoot()
        savedRstd?[t] = rstd
        for i in 0..<C { o[i] = weight[i] * (x[i] * rstd) }
    }
}

public func rmsnormForwardNaive(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                                _ weight: UnsafePointer<Float>, T: Int, C: Int, eps: Float) {
    for t in 0..<T {
        var ss: Double = 0
        for i in 0..<C { ss += Double(inp[t * C + i]) * Double(inp[t * C + i]) }
        let rstd = 1 / (ss / Double(C) + Double(eps)).squareRoot()
        for i in 0..<C { out[t * C + i] = Float(Double(weight[i]) * Double(inp[t * C + i]) * rstd) }
    }
}

/// LayerNorm with a weight and no bias, as Cohere defines it (CohereLayerNorm): the mean is
/// subtracted, then the variance normalised. out, inp: (T, C); weight: (C). `out` may alias `inp`.
/// Training passes `mean` and `rstd` (T) to keep the row statistics for the backward pass.
public func layernormForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                             _ weight: UnsafePointer<Float>, bias: UnsafePointer<Float>? = nil,
                             T: Int, C: Int, eps: Float,
                             mean savedMean: UnsafeMutablePointer<Float>? = nil, rstd savedRstd: UnsafeMutablePointer<Float>? = nil) {
    for t in 0..<T {
        let x = inp + t * C
        let o = out + t * C
        var sum: Float = 0
        for i in 0..<C { sum += x[i] }
        let mean = sum / Float(C)
        var v: Float = 0
        for i in 0..<C { let d = x[i] - mean; v += d * d }
        let rstd = 1 / (v / Float(C) + eps).squareRoot()
        savedMean?[t] = mean
        savedRstd?[t] = rstd
        if let bias {
            for i in 0..<C { o[i] = weight[i] * ((x[i] - mean) * rstd) + bias[i] }
        } else {
            for i in 0..<C { o[i] = weight[i] * ((x[i] - mean) * rstd) }
        }
    }
}

public func layernormForwardNaive(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                                  _ weight: UnsafePointer<Float>, bias: UnsafePointer<Float>? = nil,
                                  T: Int, C: Int, eps: Float) {
    for t in 0..<T {
        var mean: Double = 0
        for i in 0..<C { mean += Double(inp[t * C + i]) }
        mean /= Double(C)
        var v: Double = 0
        for i in 0..<C { let d = Double(inp[t * C + i]) - mean; v += d * d }
        let rstd = 1 / (v / Double(C) + Double(eps)).squareRoot()
        for i in 0..<C {
            let b = bias.map { Double($0[i]) } ?? 0
            out[t * C + i] = Float(Double(weight[i]) * (Double(inp[t * C + i]) - mean) * rstd + b)
        }
    }
}

// MARK: backward
// Training runs the forwards above with the row statistics saved (rmsnormForward(..., rstd:),
// layernormForward(..., mean:, rstd:)), so training logits equal inference logits.

/// Backward of RMSNorm. With y_i = w_i x_i r and r = (mean_j x_j^2 + eps)^(-1/2):
///   dx_i += r w_i dy_i - x_i r^3 / C * sum_j w_j dy_j x_j
///   dw_i += dy_i x_i r
/// dinp (N, C); dweight (C) or nil; dout (N, C); inp (N, C); weight (C); rstd (N).
public func rmsnormBackward(_ dinp: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>?,
                            _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                            _ rstd: UnsafePointer<Float>, N: Int, C: Int) {
    for n in 0..<N {
        let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
        let r = rstd[n]
        var dot: Float = 0
        for i in 0..<C { dot += weight[i] * dy[i] * x[i] }
        let k = dot * r * r * r / Float(C)
        for i in 0..<C { dx[i] += r * weight[i] * dy[i] - x[i] * k }
        if let dweight { for i in 0..<C { dweight[i] += dy[i] * x[i] * r } }
    }
}

/// Backward of LayerNorm (llm.c's layernorm_backward): with dxhat = w * dy,
///   dx_i += rstd * (dxhat_i - mean(dxhat) - xhat_i * mean(dxhat * xhat))
///   dw_i += dy_i xhat_i;  db_i += dy_i
public func layernormBackward(_ dinp: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>?,
                              _ dbias: UnsafeMutablePointer<Float>?, _ dout: UnsafePointer<Float>,
                              _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                              _ mean: UnsafePointer<Float>, _ rstd: UnsafePointer<Float>, N: Int, C: Int) {
    for n in 0..<N {
        let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
        let m = mean[n], r = rstd[n]
        var dnormMean: Float = 0, dnormNormMean: Float = 0
        for i in 0..<C {
            let xhat = (x[i] - m) * r
            let dnorm = weight[i] * dy[i]
            dnormMean += dnorm
            dnormNormMean += dnorm * xhat
        }
        dnormMean /= Float(C)
        dnormNormMean /= Float(C)
        for i in 0..<C {
            let xhat = (x[i] - m) * r
            let dnorm = weight[i] * dy[i]
            dx[i] += r * (dnorm - dnormMean - xhat * dnormNormMean)
            dweight?[i] += dy[i] * xhat
            dbias?[i] += dy[i]
        }
    }
}

/// Naive twin of `rmsnormBackward` (double precision, statistics recomputed from the input).
public func rmsnormBackwardNaive(_ dinp: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>?,
                                 _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                                 N: Int, C: Int, eps: Float) {
    for n in 0..<N {
        var ss: Double = 0
        for i in 0..<C { ss += Double(inp[n * C + i]) * Double(inp[n * C + i]) }
        let r = 1 / (ss / Double(C) + Double(eps)).squareRoot()
        var dot: Double = 0
        for i in 0..<C { dot += Double(weight[i]) * Double(dout[n * C + i]) * Double(inp[n * C + i]) }
        for i in 0..<C {
            let x = Double(inp[n * C + i]), dy = Double(dout[n * C + i])
            dinp[n * C + i] += Float(r * Double(weight[i]) * dy - x * r * r * r * dot / Double(C))
            if let dweight { dweight[i] += Float(dy * x * r) }
        }
    }
}

/// Naive twin of `layernormBackward` (double precision, statistics recomputed from the input).
public func layernormBackwardNaive(_ dinp: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>?,
                                   _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                                   N: Int, C: Int, eps: Float) {
    for n in 0..<N {
        var m: Double = 0
        for i in 0..<C { m += Double(inp[n * C + i]) }
        m /= Double(C)
        var v: Double = 0
        for i in 0..<C { let d = Double(inp[n * C + i]) - m; v += d * d }
        let r = 1 / (v / Double(C) + Double(eps)).squareRoot()
        var a: Double = 0, b: Double = 0
        for i in 0..<C {
            let xhat = (Double(inp[n * C + i]) - m) * r, dn = Double(weight[i]) * Double(dout[n * C + i])
            a += dn
            b += dn * xhat
        }
        a /= Double(C)
        b /= Double(C)
        for i in 0..<C {
            let xhat = (Double(inp[n * C + i]) - m) * r, dy = Double(dout[n * C + i])
            dinp[n * C + i] += Float(r * (Double(weight[i]) * dy - a - xhat * b))
            if let dweight { dweight[i] += Float(dy * xhat) }
        }
    }
}
