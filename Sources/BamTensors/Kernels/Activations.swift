import Foundation

/// In-place softmax over each row of x: (rows, n), only the first `valid(row)` entries of each
/// row take part (the rest become 0) — this is how the causal mask is applied.
public func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int, stride: Int? = nil,
                        valid: ((Int) -> Int)? = nil) {
    let ld = stride ?? n
    for r in 0..<rows {
        let row = x + r * ld
        let m = valid?(r) ?? n
        let mx = maxValue(row, n: m)
        let inv = Float(1 / expShiftedInPlace(row, n: m, shift: mx))
        scaleInPlace(row, n: m, by: inv)
        for i in m..<n { row[i] = 0 }
    }
}

public func softmaxRowsNaive(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
    for r in 0..<rows {
        let row = x + r * n
        var mx = -Double.infinity
        for i in 0..<n { mx = max(mx, Double(row[i])) }
        var sum: Double = 0
        for i in 0..<n { sum += exp(Double(row[i]) - mx) }
        for i in 0..<n { row[i] = Float(exp(Double(row[i]) - mx) / sum) }
    }
}

@inline(__always) public func silu(_ x: Float) -> Float { x / (1 + expf(-x)) }

/// SwiGLU: out[i] = silu(gate[i]) * up[i]. `out` may alias either input.
public func swigluForward(_ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>,
                          _ up: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        let g = UnsafeRawPointer(gate + i).loadUnaligned(as: FloatLanes.self)
        let u = UnsafeRawPointer(up + i).loadUnaligned(as: FloatLanes.self)
        UnsafeMutableRawPointer(out + i).storeBytes(of: g / (1 + fastExp(-g)) * u, as: FloatLanes.self)
        i += 8
    }
    while i < count {
        out[i] = gate[i] / (1 + fastExp(-gate[i])) * up[i]
        i += 1
    }
}

public func swigluForwardNaive(_ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>,
                               _ up: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let g = Double(gate[i])
        out[i] = Float(g / (1 + exp(-g)) * Double(up[i]))
    }
}

/// log(sum(exp(x))) over n values, accumulated in double (vectorised: `logSumExpFast`).
public func logSumExp(_ x: UnsafePointer<Float>, n: Int) -> Double { logSumExpFast(x, n: n) }

/// Naive twin of `logSumExp`.
public func logSumExpNaive(_ x: UnsafePointer<Float>, n: Int) -> Double {
    var mx = -Double.infinity
    for i in 0..<n { mx = max(mx, Double(x[i])) }
    var sum: Double = 0
    for i in 0..<n { sum += exp(Double(x[i]) - mx) }
    return mx + log(sum)
}

/// SwiGLU forward, out = silu(gate) * up: the (vectorised) inference kernel `swigluForward` on
/// chunks split across the cores (training's (B*T, F) buffers are large enough to pay for it).
/// All buffers (count); `out` may alias either input.
public func swigluForwardParallel(_ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>,
                                  _ up: UnsafePointer<Float>, count: Int) {
    let oP = SendablePointer(out), gP = SendableRawPointer(gate), uP = SendableRawPointer(up)
    // Each chunk writes its own range of `out`.
    BLASThreads.parallelRanges(count, minimumPerChunk: 1 << 15) { r in
        let i = r.lowerBound
        swigluForward(oP.pointer + i, gP.pointer.assumingMemoryBound(to: Float.self) + i,
                      uP.pointer.assumingMemoryBound(to: Float.self) + i, count: r.count)
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
            let s = 1 / (1 + fastExp(-g))
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
