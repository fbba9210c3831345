import Foundation

// Vectorised exp for the hot loops (log-sum-exp over the vocabulary, softmax, SiLU): glibc's
// scalar expf was ~12 % of a perplexity pass (perf). Cephes' expf polynomial on SIMD lanes:
// range reduction x = n ln2 + r with ln2 split in two for exactness, a degree-6 polynomial for
// e^r on [-ln2/2, ln2/2], and 2^n assembled in the exponent bits. Relative error <= 2 ulp on
// [-87, 88] (tested against the naive twin `Foundation.exp` in double). Inputs are clamped to
// [-87.3, 88.3]: below, the result is ~1e-38 instead of 0 (irrelevant next to the other terms of a
// softmax or sigmoid); above, 2.2e38 instead of an overflow.

public typealias FloatLanes = SIMD8<Float>

@inline(__always)
public func fastExp(_ v: FloatLanes) -> FloatLanes {
    // (Lane-wise selects: the generic pointwiseMin/Max are not specialised and cost ~4 % of a step.)
    let hi = FloatLanes(repeating: 88.3), lo = FloatLanes(repeating: -87.3)
    var x = v.replacing(with: hi, where: v .> hi)
    x = x.replacing(with: lo, where: x .< lo)
    // n = round(x / ln 2) by adding 1.5 * 2^23, which leaves the integer in the low mantissa bits:
    // plain float arithmetic and a bit cast. (SIMD `.rounded()` and Int32 conversion go through
    // generic per-lane code in Swift and cost more than the polynomial.)
    let magic = FloatLanes(repeating: 12_582_912)
    let t = x * 1.442_695_040_888_963_4 + magic
    let n = t - magic
    let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
    var p = FloatLanes(repeating: 1.987_569_150_0e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let y = p * r * r + r + 1
    let k = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000   // n as an integer
    return y * unsafeBitCast((k &+ 127) &<< 23, to: FloatLanes.self)
}

@inline(__always)
public func fastExp(_ x: Float) -> Float { fastExp(FloatLanes(repeating: x))[0] }

/// The largest of n values (vectorised).
@inline(__always)
public func maxValue(_ x: UnsafePointer<Float>, n: Int) -> Float {
    var m8 = FloatLanes(repeating: -.infinity)
    var i = 0
    while i + 8 <= n {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: FloatLanes.self)
        m8 = m8.replacing(with: v, where: v .> m8)
        i += 8
    }
    var mx = m8.max()
    while i < n { mx = max(mx, x[i]); i += 1 }
    return mx
}

/// x[i] *= s for n values (vectorised).
@inline(__always)
public func scaleInPlace(_ x: UnsafeMutablePointer<Float>, n: Int, by s: Float) {
    var i = 0
    while i + 8 <= n {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: FloatLanes.self) * s
        UnsafeMutableRawPointer(x + i).storeBytes(of: v, as: FloatLanes.self)
        i += 8
    }
    while i < n { x[i] *= s; i += 1 }
}

/// log(sum(exp(x))) over n values, the sum accumulated in double per lane.
public func logSumExpFast(_ x: UnsafePointer<Float>, n: Int) -> Double {
    var mx = -Float.infinity
    var i = 0
    mx = maxValue(x, n: n)
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

/// In place: x[i] = exp(x[i] - shift) for i < n; returns their sum (8-lane float partial sums
/// over blocks of 256 values, added in double, so a 32k-vocabulary softmax sums accurately).
@inline(__always)
public func expShiftedInPlace(_ x: UnsafeMutablePointer<Float>, n: Int, shift: Float) -> Double {
    let s = FloatLanes(repeating: shift)
    var total = 0.0
    var i = 0
    while i + 8 <= n {
        var block = FloatLanes()
        let end = min(n - n % 8, i + 256)
        while i < end {
            let e = fastExp(UnsafeRawPointer(x + i).loadUnaligned(as: FloatLanes.self) - s)
            UnsafeMutableRawPointer(x + i).storeBytes(of: e, as: FloatLanes.self)
            block += e
            i += 8
        }
        total += Double(block.sum())
    }
    while i < n {
        let e = fastExp(x[i] - shift)
        x[i] = e
        total += Double(e)
        i += 1
    }
    return total
}
