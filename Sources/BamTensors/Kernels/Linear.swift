import Foundation

/// A linear layer as transformers defines it: out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (OC).
public func matmulForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                          _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, N: Int, C: Int, OC: Int) {
    linearForward(out, inp, weight, bias, T: N, C: C, OC: OC)
}

/// Backward of `matmulForward`, all three products as single cblas_sgemm calls with transposes
/// (no transposed copies); the output gradient is `scale * dout`:
///   dinp (N, C)     += scale * dout (N, OC) @ weight (OC, C)
///   dweight (OC, C) += scale * dout^T (OC, N) @ inp (N, C)
///   dbias (OC)      += scale * sum over rows of dout
/// Any gradient may be nil (frozen weight, or an input nothing upstream needs).
public func matmulBackward(_ dinp: UnsafeMutablePointer<Float>?, _ dweight: UnsafeMutablePointer<Float>?,
                           _ dbias: UnsafeMutablePointer<Float>?, _ dout: UnsafePointer<Float>,
                           _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, N: Int, C: Int, OC: Int,
                           scale: Float = 1) {
    if N == 0 { return }
    if let dinp { gemm(dinp, dout, weight, m: N, n: C, k: OC, alpha: scale, beta: 1) }
    if let dweight { gemm(dweight, dout, inp, m: OC, n: C, k: N, transA: true, alpha: scale, beta: 1) }
    if let dbias {
        for n in 0..<N {
            let g = dout + n * OC
            for o in 0..<OC { dbias[o] += scale * g[o] }
        }
    }
}

/// Naive twin of `matmulBackward`: explicit loops, double accumulation.
public func matmulBackwardNaive(_ dinp: UnsafeMutablePointer<Float>?, _ dweight: UnsafeMutablePointer<Float>?,
                                _ dbias: UnsafeMutablePointer<Float>?, _ dout: UnsafePointer<Float>,
                                _ inp: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, N: Int, C: Int, OC: Int) {
    if let dinp {
        for n in 0..<N {
            for c in 0..<C {
                var s: Double = 0
                for o in 0..<OC { s += Double(dout[n * OC + o]) * Double(weight[o * C + c]) }
                dinp[n * C + c] += Float(s)
            }
        }
    }
    if let dweight {
        for o in 0..<OC {
            for c in 0..<C {
                var s: Double = 0
                for n in 0..<N { s += Double(dout[n * OC + o]) * Double(inp[n * C + c]) }
                dweight[o * C + c] += Float(s)
            }
        }
    }
    if let dbias {
        for o in 0..<OC {
            var s: Double = 0
            for n in 0..<N { s += Double(dout[n * OC + o]) }
            dbias[o] += Float(s)
        }
    }
}
