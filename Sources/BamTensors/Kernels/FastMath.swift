import Foundation

// Vectorised exp for the hot loops (log-sum-exp over the vocabulary, softmax, SiLU): glibc's
// scalar expf was ~12 % of a perplexity pass (perf). Cephes' expf polynomial on SIMD lanes:
// range reduction x = n ln2 + r with ln2 split in two for exactness, a degree-6 polynomial for
// e^r on [-ln2/2, ln2/2], and 2^n assembled in the exponent bits. Relative error <= 2 ulp on
// [-87, 88] (tested against the naive twin `Foundation.exp` in double). Inputs are clamped to
// [-87.3, 88.7]: below, the result is ~1e-38 instead of 0, which no caller can tell apart.

public typealias FloatLanes = SIMD8<Float>

@inline(__always)
public func fastExp(_ v: FloatLanes) -> FloatLanes {
    let x = v.clamped(lowerBound: FloatLanes(repeating: -87.3), upperBound: FloatLanes(repeating: 88.7))
    let n = (x * 1.442_695_04).rounded(.toNearestOrEven)
    var r = x - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    var p = FloatLanes(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    p = p * (r * r) + r + 1
    let bits = (SIMD8<Int32>(truncatingIfNeeded: SIMD8<Int32>(n)) &+ 127) &<< 23
    return p * unsafeBitCast(bits, to: FloatLanes.self)
}

@inline(__always)
public func fastExp(_ x: Float) -> Float { fastExp(FloatLanes(repeating: x))[0] }

/// log(sum(exp(x))) over n values, the sum accumulated in double per lane.
public func logSumExpFast(_ x: UnsafePointer<Float>, n: Int) -> Double {
    var mx = -Float.infinity
    var i = 0
    var m8 = FloatLanes(repeating: -.infinity)
    while i + 8 <= n {
        m8 = pointwiseMax(m8, UnsafeRawPointer(x + i).loadUnaligned(as: FloatLanes.self))
        i += 8
    }
    mx = m8.max()
    while i < n { mx = max(mx, x[i]); i += 1 }
    let shift = FloatLanes(repeating: mx)
    var acc = SIMD8<Double>()
    i = 0
    while i + 8 <= n {
        let e = fastExp(UnsafeRawPointer(x + i).loadUnaligned(as: FloatLanes.self) - shift)
        acc += SIMD8<Double>(e)
        i += 8
    }
    var sum = acc.sum()
    while i < n { sum += Double(fastExp(x[i] - mx)); i += 1 }
    return Double(mx) + log(sum)
}

/// In place: x[i] = exp(x[i] - shift) for i < n; returns the sum (float).
@inline(__always)
public func expShiftedInPlace(_ x: UnsafeMutablePointer<Float>, n: Int, shift: Float) -> Float {
    let s = FloatLanes(repeating: shift)
    var acc = FloatLanes()
    var i = 0
    while i + 8 <= n {
        let e = fastExp(UnsafeRawPointer(x + i).loadUnaligned(as: FloatLanes.self) - s)
        UnsafeMutableRawPointer(x + i).storeBytes(of: e, as: FloatLanes.self)
        acc += e
        i += 8
    }
    var sum = acc.sum()
    while i < n {
        let e = fastExp(x[i] - shift)
        x[i] = e
        sum += e
        i += 1
    }
    return sum
}
