import Foundation

/// exp of 8 lanes at once: Cephes' expf (range reduction by ln 2 in two parts, a degree-5
/// polynomial, the exponent set in the bits), max relative error 1.2e-7 — the accuracy of expf.
/// The training loops bound by exp (the cross-entropy's softmax over the vocabulary, SwiGLU's
/// backward) run it instead of one libm call per value. Inputs are clamped to [-87.3, 88.3]:
/// below, the result is the smallest normal float instead of a denormal or 0 (irrelevant next to
/// the other terms of a softmax or sigmoid); above, 2.2e38 instead of an overflow.
/// Its naive twin is libm's expf (TrainingOpTests).
@inline(__always)
public func exp8(_ x0: SIMD8<Float>) -> SIMD8<Float> {
    let x = pointwiseMax(pointwiseMin(x0, SIMD8(repeating: 88.3)), SIMD8(repeating: -87.3))
    // n = round(x / ln 2): adding 1.5 * 2^23 rounds to an integer held in the low mantissa bits.
    let magic = SIMD8<Float>(repeating: 12_582_912)
    let t = x * 1.442_695_040_888_963_4 + magic
    let n = t - magic
    let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
    var p = SIMD8<Float>(repeating: 1.987_569_150_0e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let y = p * r * r + r + 1
    let k = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000   // n as an integer
    return y * unsafeBitCast((k &+ 127) &<< 23, to: SIMD8<Float>.self)
}

/// x[i] <- exp(x[i] - shift) for n values; returns their sum (8-lane float partial sums over
/// blocks of 256 values, added in double).
func expShiftInPlace(_ x: UnsafeMutablePointer<Float>, n: Int, shift: Float) -> Double {
    var total = 0.0
    var i = 0
    let s = SIMD8<Float>(repeating: shift)
    while i + 8 <= n {
        var block = SIMD8<Float>(repeating: 0)
        let end = min(n - n % 8, i + 256)
        while i < end {
            let e = exp8(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - s)
            UnsafeMutableRawPointer(x + i).storeBytes(of: e, as: SIMD8<Float>.self)
            block += e
            i += 8
        }
        total += Double(block.sum())
    }
    while i < n {
        x[i] = expf(x[i] - shift)
        total += Double(x[i])
        i += 1
    }
    return total
}
