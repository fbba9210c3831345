import BamTensors
import Foundation

/// SwiGLU forward, out = silu(gate) * up with silu(x) = x * sigmoid(x): the inference kernel
/// `swigluForward`'s formula with the vectorised exp (`exp8`), on chunks split across the cores
/// (training's (B*T, F) buffers are large enough to pay for both). All buffers (count); `out` may
/// alias either input.
public func swigluForwardParallel(_ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>,
                                  _ up: UnsafePointer<Float>, count: Int) {
    let oP = SendablePointer(out), gP = SendableRawPointer(gate), uP = SendableRawPointer(up)
    // Each chunk writes its own range of `out`.
    BLASThreads.parallelRanges(count, minimumPerChunk: 1 << 15) { r in
        let out = oP.pointer, gate = gP.pointer.assumingMemoryBound(to: Float.self)
        let up = uP.pointer.assumingMemoryBound(to: Float.self)
        var i = r.lowerBound
        while i + 8 <= r.upperBound {
            let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD8<Float>.self)
            let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: g / (1 + exp8(-g)) * u, as: SIMD8<Float>.self)
            i += 8
        }
        swigluForward(out + i, gate + i, up + i, count: r.upperBound - i)
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
        typealias V8 = SIMD8<Float>
        func load(_ p: UnsafePointer<Float>, _ i: Int) -> V8 { UnsafeRawPointer(p + i).loadUnaligned(as: V8.self) }
        func store(_ v: V8, _ p: UnsafeMutablePointer<Float>, _ i: Int) { UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: V8.self) }
        var i = r.lowerBound
        while i + 8 <= r.upperBound {
            let g = load(gate, i), d = load(dout, i)
            let s = 1 / (1 + exp8(-g))
            store(load(dgate, i) + d * load(up, i) * s * (1 + g * (1 - s)), dgate, i)
            store(load(dup, i) + d * g * s, dup, i)
            i += 8
        }
        for i in i..<r.upperBound {
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
