import BamTensors
import Foundation

// SwiGLU forward is the inference kernel `swigluForward(out, gate, up, count:)` (BamTensors):
// out = silu(gate) * up, silu(x) = x * sigmoid(x).

/// Backward of SwiGLU: with s = sigmoid(g), silu'(g) = s * (1 + g * (1 - s)):
///   dgate += dout * up * silu'(gate);  dup += dout * silu(gate)
/// All buffers (count).
public func swigluBackward(_ dgate: UnsafeMutablePointer<Float>, _ dup: UnsafeMutablePointer<Float>,
                           _ dout: UnsafePointer<Float>, _ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let g = gate[i]
        let s = 1 / (1 + expf(-g))
        dgate[i] += dout[i] * up[i] * s * (1 + g * (1 - s))
        dup[i] += dout[i] * g * s
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
