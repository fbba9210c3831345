// ggml's original block types: 32 values per block, one f16 scale `d` (and an f16 minimum `m`
// for the _1 types), 4, 5 or 8 bits per value. Layouts (ggml-common.h):
//
//   block_q4_0 { half d;         u8 qs[16]; }             x = d * (q - 8)
//   block_q4_1 { half d, m;      u8 qs[16]; }             x = d * q + m
//   block_q5_0 { half d; u8 qh[4]; u8 qs[16]; }           x = d * (q - 16)
//   block_q5_1 { half d, m; u8 qh[4]; u8 qs[16]; }        x = d * q + m
//   block_q8_0 { half d;         i8 qs[32]; }             x = d * q
//
// 4-bit values j and j+16 share byte qs[j] (low nibble first); the fifth bit of value j is bit j
// of the little-endian u32 qh.
//
// The quantisers follow gguf-py's quants.py (which reproduces ggml's quantize_row_*_ref): the
// scale comes from the value of largest magnitude (first one on ties) or from max and min, and
// the codes are truncated after adding 8.5 / 16.5 / 0.5, or rounded half away from zero for Q8_0.
// The f16 scale is stored rounded, but the codes are computed with the float32 one, as ggml does.

/// Float -> Int32 the way x86's cvttss2si converts, which NumPy's and ggml's float-to-integer casts
/// compile to: truncation toward zero, and Int32.min for NaN and values outside Int32. It only
/// matters when a block's float32 scale is so small that its reciprocal is infinite (x * id is then
/// inf or NaN): gguf-py stores code 0 for those values, and so do we.
@inline(__always) func x86Truncate(_ v: Float) -> Int32 {
    guard v >= -2_147_483_648, v < 2_147_483_648 else { return .min }   // NaN fails both
    return Int32(v)
}

/// gguf-py's `np.trunc(v).astype(np.uint8).clip(0, hi)`: truncate, wrap to 8 bits, then clip.
@inline(__always) private func code(_ v: Float, _ hi: UInt8) -> UInt8 {
    Swift.min(UInt8(truncatingIfNeeded: x86Truncate(v)), hi)
}

/// The value of largest magnitude (the first on ties, as NumPy's argmax picks it).
@inline(__always) private func signedAbsMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var amax = abs(x[0]), m = x[0]
    for j in 1..<n where amax < abs(x[j]) {
        amax = abs(x[j])
        m = x[j]
    }
    return m
}

@inline(__always) private func minMax(_ x: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
    var lo = x[0], hi = x[0]
    for j in 1..<n {
        if x[j] < lo { lo = x[j] }
        if x[j] > hi { hi = x[j] }
    }
    return (lo, hi)
}

public enum Q4_0: BlockQuantizer {
    public static let dtype = DType.q4_0

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let blk = source + b * 18
            let d = loadHalf(blk, 0)
            let y = out + b * 32
            for j in 0..<16 {
                let q = byte(blk, 2 + j)
                y[j] = d * Float(Int32(q & 0x0F) - 8)
                y[j + 16] = d * Float(Int32(q >> 4) - 8)
            }
        }
    }

    public static func quantize(_ x: UnsafePointer<Float>, blocks: Int, into out: UnsafeMutableRawPointer) {
        for b in 0..<blocks {
            let src = x + b * 32
            let blk = out + b * 18
            let d = signedAbsMax(src, 32) / -8
            let id: Float = d == 0 ? 0 : 1 / d
            storeHalf(d, blk, 0)
            for j in 0..<16 {
                let lo = code(src[j] * id + 8.5, 15)
                let hi = code(src[j + 16] * id + 8.5, 15)
                blk.storeBytes(of: lo | (hi << 4), toByteOffset: 2 + j, as: UInt8.self)
            }
        }
    }
}

public enum Q4_1: BlockQuantizer {
    public static let dtype = DType.q4_1

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let blk = source + b * 20
            let d = loadHalf(blk, 0), m = loadHalf(blk, 2)
            let y = out + b * 32
            for j in 0..<16 {
                let q = byte(blk, 4 + j)
                y[j] = d * Float(q & 0x0F) + m
                y[j + 16] = d * Float(q >> 4) + m
            }
        }
    }

    public static func quantize(_ x: UnsafePointer<Float>, blocks: Int, into out: UnsafeMutableRawPointer) {
        for b in 0..<blocks {
            let src = x + b * 32
            let blk = out + b * 20
            let (lo, hi) = minMax(src, 32)
            let d = (hi - lo) / 15
            let id: Float = d == 0 ? 0 : 1 / d
            storeHalf(d, blk, 0)
            storeHalf(lo, blk, 2)
            for j in 0..<16 {
                let q0 = code((src[j] - lo) * id + 0.5, 15)
                let q1 = code((src[j + 16] - lo) * id + 0.5, 15)
                blk.storeBytes(of: q0 | (q1 << 4), toByteOffset: 4 + j, as: UInt8.self)
            }
        }
    }
}

/// Packs 32 five-bit codes: low nibbles into qs (values j, j+16 share a byte), fifth bits into qh.
@inline(__always) private func packFiveBit(_ q: UnsafePointer<UInt8>, _ blk: UnsafeMutableRawPointer, qh: Int, qs: Int) {
    var high: UInt32 = 0
    for j in 0..<32 { high |= UInt32((q[j] >> 4) & 1) << UInt32(j) }
    blk.storeBytes(of: high.littleEndian, toByteOffset: qh, as: UInt32.self)
    for j in 0..<16 {
        blk.storeBytes(of: (q[j] & 0x0F) | (q[j + 16] << 4), toByteOffset: qs + j, as: UInt8.self)
    }
}

public enum Q5_0: BlockQuantizer {
    public static let dtype = DType.q5_0

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let blk = source + b * 22
            let d = loadHalf(blk, 0)
            let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            let y = out + b * 32
            for j in 0..<16 {
                let q = byte(blk, 6 + j)
                let h0 = Int32((qh >> UInt32(j)) & 1) << 4
                let h1 = Int32((qh >> UInt32(j + 16)) & 1) << 4
                y[j] = d * Float((Int32(q & 0x0F) | h0) - 16)
                y[j + 16] = d * Float((Int32(q >> 4) | h1) - 16)
            }
        }
    }

    public static func quantize(_ x: UnsafePointer<Float>, blocks: Int, into out: UnsafeMutableRawPointer) {
        var q = [UInt8](repeating: 0, count: 32)
        q.withUnsafeMutableBufferPointer { qb in
            let qp = qb.baseAddress!
            for b in 0..<blocks {
                let src = x + b * 32
                let blk = out + b * 22
                let d = signedAbsMax(src, 32) / -16
                let id: Float = d == 0 ? 0 : 1 / d
                storeHalf(d, blk, 0)
                for j in 0..<32 { qp[j] = code(src[j] * id + 16.5, 31) }
                packFiveBit(qp, blk, qh: 2, qs: 6)
            }
        }
    }
}

public enum Q5_1: BlockQuantizer {
    public static let dtype = DType.q5_1

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let blk = source + b * 24
            let d = loadHalf(blk, 0), m = loadHalf(blk, 2)
            let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let y = out + b * 32
            for j in 0..<16 {
                let q = byte(blk, 8 + j)
                let h0 = UInt32((qh >> UInt32(j)) & 1) << 4
                let h1 = UInt32((qh >> UInt32(j + 16)) & 1) << 4
                y[j] = d * Float(UInt32(q & 0x0F) | h0) + m
                y[j + 16] = d * Float(UInt32(q >> 4) | h1) + m
            }
        }
    }

    public static func quantize(_ x: UnsafePointer<Float>, blocks: Int, into out: UnsafeMutableRawPointer) {
        var q = [UInt8](repeating: 0, count: 32)
        q.withUnsafeMutableBufferPointer { qb in
            let qp = qb.baseAddress!
            for b in 0..<blocks {
                let src = x + b * 32
                let blk = out + b * 24
                let (lo, hi) = minMax(src, 32)
                let d = (hi - lo) / 31
                let id: Float = d == 0 ? 0 : 1 / d
                storeHalf(d, blk, 0)
                storeHalf(lo, blk, 2)
                for j in 0..<32 { qp[j] = code((src[j] - lo) * id + 0.5, 31) }
                packFiveBit(qp, blk, qh: 4, qs: 8)
            }
        }
    }
}

/// d = max|x| / 127, q = round(x / d) (half away from zero, ggml's roundf), x ~ d * q.
public enum Q8_0: BlockQuantizer {
    public static let dtype = DType.q8_0

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let blk = source + b * 34
            let d = loadHalf(blk, 0)
            let y = out + b * 32
            for j in 0..<32 { y[j] = d * Float(Int8(bitPattern: byte(blk, 2 + j))) }
        }
    }

    public static func quantize(_ x: UnsafePointer<Float>, blocks: Int, into out: UnsafeMutableRawPointer) {
        for b in 0..<blocks {
            let src = x + b * 32
            let blk = out + b * 34
            var amax: Float = 0
            for j in 0..<32 { amax = Swift.max(amax, abs(src[j])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, blk, 0)
            for j in 0..<32 {
                // gguf-py: np_roundf (half away from zero), then .astype(np.int8).
                let q = (src[j] * id).rounded(.toNearestOrAwayFromZero)
                blk.storeBytes(of: Int8(truncatingIfNeeded: x86Truncate(q)), toByteOffset: 2 + j, as: Int8.self)
            }
        }
    }
}
