import Foundation

/// In-place softmax over each row of x: (rows, n), only the first `valid(row)` entries of each
/// row take part (the rest become 0) — this is how the causal mask is applied.
public func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int, stride: Int? = nil,
                        valid: ((Int) -> Int)? = nil) {
    let ld = stride ?? n
    for r in 0..<rows {
        let row = x + r * ld
        let m = valid?(r) ?? n
        var mx = -Float.infinity
        for i in 0..<m where row[i] > mx { mx = row[i] }
        let sum = expShiftedInPlace(row, n: m, shift: mx)
        let inv = 1 / sum
        for i in 0..<m { row[i] *= inv }
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
