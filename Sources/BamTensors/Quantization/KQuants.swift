// ggml's k-quants: super-blocks of QK_K = 256 values split into sub-blocks of 16 or 32, each with
// a 4-, 6- or 8-bit scale (and minimum) that multiplies the super-block's f16 `d` (and `dmin`).
// Layouts (ggml-common.h), in byte order:
//
//   Q2_K (84)  u8 scales[16] (low nibble scale, high nibble min), u8 qs[64] (2-bit), half d, dmin
//   Q3_K (110) u8 hmask[32] (third bit), u8 qs[64] (low 2 bits), u8 scales[12] (16 x 6-bit), half d
//   Q4_K (144) half d, dmin, u8 scales[12] (8 scales + 8 mins, 6-bit), u8 qs[128] (4-bit)
//   Q5_K (176) half d, dmin, u8 scales[12], u8 qh[32] (fifth bit), u8 qs[128]
//   Q6_K (210) u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits), i8 scales[16], half d
//   Q8_K (292) f32 d, i8 qs[256], i16 bsums[16] (only used by dot products)
//
// Each dequantiser is ggml's dequantize_row_* loop: the same products in the same order
// (sub-block scale first: (d * sc) * q - dmin * m), so the float32 results are identical.

/// The 6-bit scale and minimum of sub-block j (0..<8) of a Q4_K / Q5_K block, from its 12 bytes
/// at `s` (ggml's get_scale_min_k4): j < 4 in the low 6 bits of bytes j and j+4; j >= 4 split
/// between a nibble of byte j+4 and the top 2 bits of bytes j-4 and j.
@inline(__always) func kScaleMin(_ j: Int, _ s: UnsafeRawPointer) -> (Float, Float) {
    if j < 4 {
        return (Float(byte(s, j) & 63), Float(byte(s, j + 4) & 63))
    }
    let sc = (byte(s, j + 4) & 0x0F) | ((byte(s, j - 4) >> 6) << 4)
    let m = (byte(s, j + 4) >> 4) | ((byte(s, j) >> 6) << 4)
    return (Float(sc), Float(m))
}

/// The 6-bit scale of sub-block i (0..<16) of a Q3_K block, less its offset of 32, from the 12
/// scale bytes at `s`: the low 4 bits are nibble i / 8 of byte i % 8, the top 2 bits are bits
/// 2 (i / 4) of byte 8 + i % 4.
@inline(__always) func q3KScale(_ i: Int, _ s: UnsafeRawPointer) -> Int {
    let low = (byte(s, i % 8) >> UInt8(4 * (i / 8))) & 0x0F
    let high = (byte(s, 8 + i % 4) >> UInt8(2 * (i / 4))) & 3
    return Int(low | (high << 4)) - 32
}

public enum Q2_K: BlockFormat {
    public static let dtype = DType.q2_K

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let blk = source + b * 84
            let d = loadHalf(blk, 80), dmin = loadHalf(blk, 82)
            var y = out + b * 256
            var isc = 0
            for half in 0..<2 {
                let q = blk + 16 + 32 * half
                for shift in stride(from: UInt8(0), to: 8, by: 2) {
                    for part in 0..<2 {
                        let sc = byte(blk, isc)
                        isc += 1
                        let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                        for l in 0..<16 { y[l] = dl * Float((byte(q, 16 * part + l) >> shift) & 3) - ml }
                        y += 16
                    }
                }
            }
        }
    }
}

public enum Q3_K: BlockFormat {
    public static let dtype = DType.q3_K

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        var scales = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0),
                      Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
        withUnsafeMutableBytes(of: &scales) { raw in
            let sc = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            for b in 0..<blocks {
                let blk = source + b * 110
                let hm = blk, qs = blk + 32, packed = blk + 96
                let d = loadHalf(blk, 108)
                for i in 0..<16 { sc[i] = Float(q3KScale(i, packed)) }
                var y = out + b * 256
                var isc = 0
                var mask: UInt8 = 1
                for half in 0..<2 {
                    let q = qs + 32 * half
                    for shift in stride(from: UInt8(0), to: 8, by: 2) {
                        for part in 0..<2 {
                            let dl = d * sc[isc]
                            isc += 1
                            for l in 0..<16 {
                                let low = Int32((byte(q, 16 * part + l) >> shift) & 3)
                                let v = low - (byte(hm, 16 * part + l) & mask != 0 ? 0 : 4)
                                y[l] = dl * Float(v)
                            }
                            y += 16
                        }
                        mask <<= 1
                    }
                }
            }
        }
    }
}

public enum Q4_K: BlockFormat {
    public static let dtype = DType.q4_K

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let blk = source + b * 144
            let d = loadHalf(blk, 0), dmin = loadHalf(blk, 2)
            let scales = blk + 4
            var y = out + b * 256
            for j in 0..<4 {
                let q = blk + 16 + 32 * j
                let (s1, m1) = kScaleMin(2 * j, scales), (s2, m2) = kScaleMin(2 * j + 1, scales)
                let d1 = d * s1, dm1 = dmin * m1, d2 = d * s2, dm2 = dmin * m2
                for l in 0..<32 { y[l] = d1 * Float(byte(q, l) & 0x0F) - dm1 }
                for l in 0..<32 { y[32 + l] = d2 * Float(byte(q, l) >> 4) - dm2 }
                y += 64
            }
        }
    }
}

public enum Q5_K: BlockFormat {
    public static let dtype = DType.q5_K

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let blk = source + b * 176
            let d = loadHalf(blk, 0), dmin = loadHalf(blk, 2)
            let scales = blk + 4, qh = blk + 16
            var y = out + b * 256
            var u1: UInt8 = 1, u2: UInt8 = 2
            for j in 0..<4 {
                let ql = blk + 48 + 32 * j
                let (s1, m1) = kScaleMin(2 * j, scales), (s2, m2) = kScaleMin(2 * j + 1, scales)
                let d1 = d * s1, dm1 = dmin * m1, d2 = d * s2, dm2 = dmin * m2
                for l in 0..<32 {
                    let h: UInt8 = byte(qh, l) & u1 != 0 ? 16 : 0
                    y[l] = d1 * Float((byte(ql, l) & 0x0F) + h) - dm1
                }
                for l in 0..<32 {
                    let h: UInt8 = byte(qh, l) & u2 != 0 ? 16 : 0
                    y[32 + l] = d2 * Float((byte(ql, l) >> 4) + h) - dm2
                }
                y += 64
                u1 <<= 2
                u2 <<= 2
            }
        }
    }
}

public enum Q6_K: BlockFormat {
    public static let dtype = DType.q6_K

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let blk = source + b * 210
            let d = loadHalf(blk, 208)
            var y = out + b * 256
            for half in 0..<2 {
                let ql = blk + 64 * half, qh = blk + 128 + 32 * half, sc = blk + 192 + 8 * half
                for l in 0..<32 {
                    let i = l / 16
                    let a = byte(ql, l), c = byte(ql, l + 32), h = byte(qh, l)
                    let q1 = Int32((a & 0x0F) | ((h & 3) << 4)) - 32
                    let q2 = Int32((c & 0x0F) | (((h >> 2) & 3) << 4)) - 32
                    let q3 = Int32((a >> 4) | (((h >> 4) & 3) << 4)) - 32
                    let q4 = Int32((c >> 4) | (((h >> 6) & 3) << 4)) - 32
                    // (d * scale) * q, as ggml's `d * sc[is] * q1` associates.
                    y[l] = d * Float(Int8(bitPattern: byte(sc, i))) * Float(q1)
                    y[l + 32] = d * Float(Int8(bitPattern: byte(sc, i + 2))) * Float(q2)
                    y[l + 64] = d * Float(Int8(bitPattern: byte(sc, i + 4))) * Float(q3)
                    y[l + 96] = d * Float(Int8(bitPattern: byte(sc, i + 6))) * Float(q4)
                }
                y += 128
            }
        }
    }
}

/// ggml's intermediate type for activations in k-quant dot products; it can appear in a GGUF.
/// gguf-py has no Q8_K; the values follow ggml's dequantize_row_q8_K: x = d * q (d a float32).
/// Decode quantizes activations to it for Q4_K and Q6_K weights (`quantize`, the naive twin of
/// the kernels' `quantize_q8_K`); bam-mix never writes it to a file.
public enum Q8_K: BlockQuantizer {
    public static let dtype = DType.q8_K

    /// ggml's quantize_row_q8_K_ref: the value of largest magnitude `max` (the first of equals),
    /// q = nearest_int(-127 / max * x) with ties to even, capped at 127, d = 1 / (-127 / max); then
    /// the int16 sums of each 16 q. A block of zeros has d = 0 and q = 0.
    public static func quantize(_ x: UnsafePointer<Float>, blocks: Int, into out: UnsafeMutableRawPointer) {
        for b in 0..<blocks {
            let v = x + b * 256, blk = out + b * 292
            var amax: Float = 0, max: Float = 0
            for j in 0..<256 where abs(v[j]) > amax {
                amax = abs(v[j])
                max = v[j]
            }
            var d: Float = 0
            if amax == 0 {
                for j in 0..<256 { blk.storeBytes(of: 0, toByteOffset: 4 + j, as: Int8.self) }
            } else {
                let iscale = -127 / max
                for j in 0..<256 {
                    // ggml's nearest_int: ties to even through the float32 significand (a NaN
                    // gives the same defined value as in C, where `rounded` would trap).
                    let shifted = iscale * v[j] + 12582912
                    let q = min(127, Int(shifted.bitPattern & 0x007f_ffff) - 0x0040_0000)
                    blk.storeBytes(of: Int8(truncatingIfNeeded: q), toByteOffset: 4 + j, as: Int8.self)
                }
                d = 1 / iscale
            }
            blk.storeBytes(of: d.bitPattern.littleEndian, toByteOffset: 0, as: UInt32.self)
            for g in 0..<16 {
                var sum: Int16 = 0
                for j in 0..<16 { sum += Int16(blk.load(fromByteOffset: 4 + 16 * g + j, as: Int8.self)) }
                blk.storeBytes(of: sum.littleEndian, toByteOffset: 4 + 256 + 2 * g, as: Int16.self)
            }
        }
    }

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let blk = source + b * 292
            let d = Float(bitPattern: UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
            let y = out + b * 256
            for j in 0..<256 { y[j] = d * Float(Int8(bitPattern: byte(blk, 4 + j))) }
        }
    }
}
