import Foundation

/// The naive twin of the fused decode kernels, one weight row against one activation row at a
/// time: every weight value and every activation value taken exactly (each is a product of a few
/// small integers and one or two float scales, exact in double) and their products summed in
/// double. The kernels compute the same sum with each block's integer part exact and a few float32
/// roundings per block; `absoluteSum` is the sum of the magnitudes of the pieces they round (for
/// Q2_K, Q4_K and Q5_K the scale and minimum parts separately, which may cancel), which bounds their error.
public enum BlockProducts {
    public struct Sum {
        public var sum: Double = 0
        public var absoluteSum: Double = 0
        mutating func add(_ term: Double) {
            sum += term
            absoluteSum += abs(term)
        }
    }

    /// W's row `w` (`cols` values of `storage`) against activation row `x` in the form
    /// `storage.decodeActivations` takes (float32 for types without a fused kernel).
    public static func row(_ w: UnsafeRawPointer, storage: WeightStorage, _ x: UnsafeRawPointer, cols: Int) -> Sum {
        var s = Sum()
        switch storage {
        case .q8_0, .q4_0, .q5_0, .q4_1, .q5_1, .iq4_nl:
            let blockBytes = storage.dtype.byteCount(elements: 32)!
            // Q4_1 / Q5_1: x = d * q + m, m the second half; the kernels add d * (q . x) and m * sum(x).
            let withMinimum = storage == .q4_1 || storage == .q5_1
            for b in 0..<(cols / 32) {
                let wb = w + b * blockBytes, xb = x + b * Q8_0.blockBytes
                let dw = Double(Float(wb.loadUnaligned(as: Float16.self))), dx = Double(Float(xb.loadUnaligned(as: Float16.self)))
                let m = withMinimum ? Double(Float(wb.loadUnaligned(fromByteOffset: 2, as: Float16.self))) : 0
                for j in 0..<32 {
                    let xv = dx * Double(xb.load(fromByteOffset: 2 + j, as: Int8.self))
                    let scaled = dw * Double(legacyCode(wb, storage: storage, j)) * xv, shifted = m * xv
                    s.sum += scaled + shifted
                    s.absoluteSum += abs(scaled) + abs(shifted)
                }
            }
        case .q4_K, .q5_K:
            // Q5_K: Q4_K's 16-byte header, 32 bytes of fifth bits (bit `sub` of byte j % 32 for
            // value j in sub-block `sub`), then the nibbles.
            let fifth = storage == .q5_K
            for b in 0..<(cols / 256) {
                let wb = w + b * (fifth ? 176 : 144), xb = x + b * Q8_K.blockBytes
                let d = Double(Float(wb.loadUnaligned(as: Float16.self)))
                let dmin = Double(Float(wb.loadUnaligned(fromByteOffset: 2, as: Float16.self)))
                let dx = Double(xb.loadUnaligned(as: Float.self))
                for j in 0..<256 {
                    let sub = j / 32, (sc, m) = kScaleMin(sub, wb + 4)
                    let byte = wb.load(fromByteOffset: (fifth ? 48 : 16) + 32 * (sub / 2) + j % 32, as: UInt8.self)
                    let high = fifth ? ((wb.load(fromByteOffset: 16 + j % 32, as: UInt8.self) >> UInt8(sub)) & 1) << 4 : 0
                    let q = (sub % 2 == 0 ? byte & 0x0F : byte >> 4) | high
                    let xv = dx * Double(xb.load(fromByteOffset: 4 + j, as: Int8.self))
                    let scaled = d * Double(sc) * Double(q) * xv, shifted = dmin * Double(m) * xv
                    s.sum += scaled - shifted
                    s.absoluteSum += abs(scaled) + abs(shifted)
                }
            }
        case .q2_K, .q3_K:
            // 16 sub-blocks of 16: value j's 2-bit code in bits 2 jj, 2 jj + 1 (jj = (j % 128) / 32)
            // of code byte 32 (j / 128) + j % 32; Q3_K's third bit is bit 4 (j / 128) + jj of hmask
            // byte j % 32 (set: code as it is, clear: code - 4). Q2_K: scale and minimum are the
            // nibbles of byte j / 16; Q3_K: the 6-bit scale j / 16 less 32.
            let third = storage == .q3_K
            for b in 0..<(cols / 256) {
                let wb = w + b * (third ? 110 : 84), xb = x + b * Q8_K.blockBytes
                let dx = Double(xb.loadUnaligned(as: Float.self))
                let d = Double(Float(wb.loadUnaligned(fromByteOffset: third ? 108 : 80, as: Float16.self)))
                let dmin = third ? 0 : Double(Float(wb.loadUnaligned(fromByteOffset: 82, as: Float16.self)))
                for j in 0..<256 {
                    let sub = j / 16, jj = (j % 128) / 32
                    let byte = wb.load(fromByteOffset: (third ? 32 : 16) + 32 * (j / 128) + j % 32, as: UInt8.self)
                    var q = Int((byte >> UInt8(2 * jj)) & 3)
                    let xv = dx * Double(xb.load(fromByteOffset: 4 + j, as: Int8.self))
                    if third {
                        let hm = wb.load(fromByteOffset: j % 32, as: UInt8.self)
                        q -= (hm >> UInt8(4 * (j / 128) + jj)) & 1 == 1 ? 0 : 4
                        s.add(d * Double(q3KScale(sub, wb + 96)) * Double(q) * xv)
                    } else {
                        let packed = wb.load(fromByteOffset: sub, as: UInt8.self)
                        let scaled = d * Double(packed & 0x0F) * Double(q) * xv, shifted = dmin * Double(packed >> 4) * xv
                        s.sum += scaled - shifted
                        s.absoluteSum += abs(scaled) + abs(shifted)
                    }
                }
            }
        case .iq4_xs:
            for b in 0..<(cols / 256) {
                let wb = w + b * 136, xb = x + b * Q8_K.blockBytes
                let d = Double(Float(wb.loadUnaligned(as: Float16.self))), dx = Double(xb.loadUnaligned(as: Float.self))
                let scalesH = Int(wb.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
                for j in 0..<256 {
                    // Sub-block ib = j / 32: a 6-bit scale (low nibble from byte ib / 2, high bits
                    // from scales_h), its codes at 8 + 16 ib, value j % 32 < 16 a low nibble.
                    let ib = j / 32, l = j % 32
                    let ls = Int((wb.load(fromByteOffset: 4 + ib / 2, as: UInt8.self) >> UInt8(4 * (ib % 2))) & 0x0F)
                        | ((scalesH >> (2 * ib)) & 3) << 4
                    let byte = wb.load(fromByteOffset: 8 + 16 * ib + l % 16, as: UInt8.self)
                    let level = iq4Codebook[Int(l < 16 ? byte & 0x0F : byte >> 4)]
                    s.add(d * Double(ls - 32) * Double(level) * dx * Double(xb.load(fromByteOffset: 4 + j, as: Int8.self)))
                }
            }
        case .q6_K:
            for b in 0..<(cols / 256) {
                let wb = w + b * 210, xb = x + b * Q8_K.blockBytes
                let d = Double(Float(wb.loadUnaligned(fromByteOffset: 208, as: Float16.self)))
                let dx = Double(xb.loadUnaligned(as: Float.self))
                for j in 0..<256 {
                    // Value j: half j / 128; within it group k = (j % 128) / 32 takes a nibble of
                    // ql (low for k = 0, 1; high for 2, 3) and bits 2k, 2k + 1 of qh.
                    let half = j / 128, v = j % 128, k = v / 32, l = v % 32
                    let ql = wb.load(fromByteOffset: 64 * half + 32 * (k % 2) + l, as: UInt8.self)
                    let qh = wb.load(fromByteOffset: 128 + 32 * half + l, as: UInt8.self)
                    let q = Int((k < 2 ? ql & 0x0F : ql >> 4) | (((qh >> (2 * k)) & 3) << 4)) - 32
                    let sc = wb.load(fromByteOffset: 192 + 8 * half + v / 16, as: Int8.self)
                    s.add(d * Double(sc) * Double(q) * dx * Double(xb.load(fromByteOffset: 4 + j, as: Int8.self)))
                }
            }
        case .f32, .f16, .bf16, .dequantized:
            let row = UnsafeMutablePointer<Float>.allocate(capacity: max(cols, 1))
            defer { row.deallocate() }
            // A valid WeightMatrix row decodes (checked when it was made).
            try! DTypeConversion.toFloat32(w, dtype: storage.dtype, count: cols, into: row)
            for c in 0..<cols { s.add(Double(row[c]) * Double(x.loadUnaligned(fromByteOffset: 4 * c, as: Float.self))) }
        }
        return s
    }

    /// Value j (0..<32) of a Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 or IQ4_NL block as the integer its scale multiplies.
    static func legacyCode(_ block: UnsafeRawPointer, storage: WeightStorage, _ j: Int) -> Int {
        switch storage {
        case .q4_0:
            let byte = block.load(fromByteOffset: 2 + j % 16, as: UInt8.self)
            return Int(j < 16 ? byte & 0x0F : byte >> 4) - 8
        case .q5_0:
            let qh = block.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
            let byte = block.load(fromByteOffset: 6 + j % 16, as: UInt8.self)
            return Int(j < 16 ? byte & 0x0F : byte >> 4) + Int((qh >> UInt32(j)) & 1) * 16 - 16
        case .q4_1:
            let byte = block.load(fromByteOffset: 4 + j % 16, as: UInt8.self)
            return Int(j < 16 ? byte & 0x0F : byte >> 4)
        case .iq4_nl:
            let byte = block.load(fromByteOffset: 2 + j % 16, as: UInt8.self)
            return Int(iq4Codebook[Int(j < 16 ? byte & 0x0F : byte >> 4)])
        case .q5_1:
            let qh = block.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
            let byte = block.load(fromByteOffset: 8 + j % 16, as: UInt8.self)
            return Int(j < 16 ? byte & 0x0F : byte >> 4) + Int((qh >> UInt32(j)) & 1) * 16
        default:
            return Int(block.load(fromByteOffset: 2 + j, as: Int8.self))
        }
    }
}
