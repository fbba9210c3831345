import BamTensors
import Foundation

/// SwiGLU forward, out = silu(gate) * up with silu(x) = x * sigmoid(x): the inference kernel
/// `swigluForward` (BamTensors) on chunks split across the cores (training's (B*T, F) buffers are
/// large enough to pay for it). All buffers (count).
public func swigluForwardParallel(_ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>,
                                  _ up: UnsafePointer<Float>, count: Int) {
    let oP = SendablePointer(out), gP = SendableRawPointer(gate), uP = SendableRawPointer(up)
    // Each chunk writes its own range of `out`.
    BLASThreads.parallelRanges(count, minimumPerChunk: 1 << 15) { r in
        swigluForward(oP.pointer + r.lowerBound, gP.pointer.assumingMemoryBound(to: Float.self) + r.lowerBound,
                      uP.pointer.assumingMemoryBound(to: Float.self) + r.lowerBound, count: r.count)
    }
}

/// Backward of SwiGLU: with s = sigmoid(g), silu'(g) = s * (1 + g * (1 - s)):
///   dgate += dout * up * silu'(gate);  dup += dout * silu(gate)
/// All buffers (count); chunks of the range run on separate cores.
public func swigluBackward(_ dgate: UnsafeMutablePointer<Float>, _ dup: UnsafeMutablePointer<Float>,
                           _ dout: UnsafePointer<Float>, _ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
    let dgP = SendablePointer(dgate), duP = SendablePointer(dup)
    let doP = SendableRawPointer(dout), gP = SendableRawPointer(gate), uP = SendableRawPointer(up)
    // Each chunk accumulates into its own range of dgate and dup.
    BLASThreads.parallelRanges(count, minimumPerChunk: 1 << 15) { r in
        let dgate = dgP.pointer, dup = duP.pointer
        let dout = doP.pointer.assumingMemoryBound(to: Float.self), gate = gP.pointer.assumingMemoryBound(to: Float.self)
        let up = uP.pointer.assumingMemoryBound(to: Float.self)
        for i in r {
            let g = gate[i]
            let s = 1 / (1 + expf(-g))
            dgate[i] += dout[i] * up[i] * s * (1 + g * (1 - s))
            dup[i] += dout[i] * g * s
        }
    }
}

/// Naive twin of `swigluBackward` (double precision).
public func swigluBackwardNaive(_ dgate: UnsafeMutablePointer<Float>, _ dup: UnsafeMutablePointer<Float>,
                                _ dout: UnsafePointer<Float>, _ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let g = Double(gate[i]), s = 1 / (1 + exp(-g))
        dgate[i] += Float(Double(dout[i]) * Double(up[i]) * (s + g * s * (1 - s)))
        dup[i] += Float(Double(dout[i]) * g * s)
    }
}
