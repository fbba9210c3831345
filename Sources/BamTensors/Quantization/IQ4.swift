// ggml's non-linear 4-bit types: each 4-bit code indexes a fixed 16-entry codebook
// (kvalues_iq4nl in ggml-common.h) that puts more levels near zero than a uniform grid.
//
//   IQ4_NL (18)  half d, u8 qs[16]                                    x = d * k[q]
//   IQ4_XS (136) half d, u16 scales_h, u8 scales_l[4], u8 qs[128]     x = (d * (ls - 32)) * k[q]
//
// IQ4_XS has 8 sub-blocks of 32 with 6-bit scales ls (low 4 bits in a nibble of scales_l, high
// 2 bits in scales_h). Values j and j+16 of a sub-block share a byte (low nibble first).

/// kvalues_iq4nl, as float32 (exact).
let iq4Codebook: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

public enum IQ4_NL: BlockFormat {
    public static let dtype = DType.iq4_nl

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        iq4Codebook.withUnsafeBufferPointer { k in
            for b in 0..<blocks {
                let blk = source + b * 18
                let d = loadHalf(blk, 0)
                let y = out + b * 32
                for j in 0..<16 {
                    let q = byte(blk, 2 + j)
                    y[j] = d * k[Int(q & 0x0F)]
                    y[j + 16] = d * k[Int(q >> 4)]
                }
            }
        }
    }
}

public enum IQ4_XS: BlockFormat {
    public static let dtype = DType.iq4_xs

    public static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        iq4Codebook.withUnsafeBufferPointer { k in
            for b in 0..<blocks {
                let blk = source + b * 136
                let d = loadHalf(blk, 0)
                let scalesH = UInt16(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
                var y = out + b * 256
                for ib in 0..<8 {
                    let low = (byte(blk, 4 + ib / 2) >> UInt8(4 * (ib % 2))) & 0x0F
                    let high = UInt8((scalesH >> UInt16(2 * ib)) & 3)
                    let dl = d * Float(Int32(low | (high << 4)) - 32)
                    let qs = blk + 8 + 16 * ib
                    for j in 0..<16 {
                        let q = byte(qs, j)
                        y[j] = dl * k[Int(q & 0x0F)]
                        y[j + 16] = dl * k[Int(q >> 4)]
                    }
                    y += 32
                }
            }
        }
    }
}
