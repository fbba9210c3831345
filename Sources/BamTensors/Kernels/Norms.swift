import Foundation

// Normalisation kernels. Each optimised kernel has a naive twin below it; tests hold them together.

/// RMSNorm (Llama, Mistral, Qwen2, Mixtral): out = x / sqrt(mean(x^2) + eps) * weight.
/// out, inp: (T, C); weight: (C). `out` may alias `inp`. Training passes `rstd` (T) to keep
/// 1 / sqrt(mean(x^2) + eps) per row for the backward pass (BamTraining's rmsnormBackward).
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
