import BamTensors
import Foundation
import Testing

/// Every kernel family this CPU runs: each test below runs all of them against the naive twins.
private let families: [WeightKernels] = KernelFamily.supported.map { $0.kernels! }

/// Raw bytes at an odd address, as a file mapping may hand them out (safetensors data need not be
/// aligned), kept alive with the test.
private final class OddBytes {
    let base: UnsafeMutableRawPointer
    let pointer: UnsafeMutableRawPointer
    init(count: Int) {
        base = .allocate(byteCount: count + 1, alignment: 16)
        pointer = base + 1
    }
    deinit { base.deallocate() }
}

/// How far a float32 dot product of `n` terms may be from the exact one: any summation order, with
/// or without fused multiply-adds, errs by at most about n * u * sum|terms| (Higham, Accuracy and
/// Stability of Numerical Algorithms, 2nd ed., eq. 3.5; u = 2^-24), plus the final rounding.
private func dotBound(absoluteSum: Double, terms n: Int) -> Double {
    Double(n + 2) * 0x1p-24 * absoluteSum + 1e-30
}

@Suite("Low-precision kernels agree with their naive twins")
struct WeightKernelTests {
    @Test("the families offered are exactly those the CPU's flags allow")
    func familiesMatchCPUFlags() throws {
        print("low-precision kernel families run by these tests: \(families.map(\.name).joined(separator: ", ")); active: \(WeightKernels.active.name); CPU features: \(KernelFamily.cpuFeatures.joined(separator: " "))")
        #expect(families.first?.family == .generic)
        #if arch(x86_64) && os(Linux)
        // /proc/cpuinfo is the kernel's view of cpuid and of the register state it enables: an
        // independent check that no family this CPU can run goes untested.
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try #require(info.split(separator: "\n").first { $0.hasPrefix("flags") })
        let flags = Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
        let avx2 = ["avx2", "fma", "f16c"].allSatisfy(flags.contains)
        let avx512 = avx2 && ["avx512f", "avx512bw", "avx512vl"].allSatisfy(flags.contains)
        #expect((KernelFamily.avx2.kernels != nil) == avx2)
        #expect((KernelFamily.avx2VNNI.kernels != nil) == (avx2 && flags.contains("avx_vnni")))
        #expect((KernelFamily.avx512.kernels != nil) == avx512)
        #expect((KernelFamily.avx512VNNI.kernels != nil) == (avx512 && flags.contains("avx512_vnni")))
        #else
        #expect(KernelFamily.supported == [.generic])
        #endif
    }

    @Test("half -> float32 for every bit pattern, from an unaligned source")
    func f16Widening() {
        let n = 65536
        let src = OddBytes(count: 2 * n)
        for i in 0..<n { src.pointer.storeBytes(of: UInt16(i), toByteOffset: 2 * i, as: UInt16.self) }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { out.deallocate() }
        for k in families {
            k.f16ToF32(out, src.pointer, count: n)
            var bad = 0
            for i in 0..<n {
                let want = Float(Float16(bitPattern: UInt16(i)))
                if want.isNaN ? !out[i].isNaN : out[i].bitPattern != want.bitPattern { bad += 1 }
            }
            #expect(bad == 0, "\(k.name): \(bad) half values widened wrongly")
        }
    }

    @Test("float32 -> half rounds to nearest even like Float16(x), tails and specials included")
    func f16Narrowing() {
        var r = TestRandom(seed: 5)
        var values: [Float] = [0, -0.0, .infinity, -.infinity, .nan, 65504, 65519.996, 65520, 70000, -65520,
                               0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-26, 0x1.8p-24, 0x1p-14, 0x1.ffcp-15, 0x1.ffep-15,
                               1 + 0x1p-11, 1 + 0x1.8p-10, 1 + 0x1p-10 + 0x1p-11, -(1 + 0x1p-11), 2049, 2051, 1e-30,
                               Float(bitPattern: 0x7FA0_0001), Float(bitPattern: 0xFFC1_2345)]
        for scale: Float in [1e-7, 1e-5, 1e-3, 1, 300, 3e4] { for _ in 0..<200 { values.append(r.normal() * scale) } }
        values.append(contentsOf: (0..<13).map { Float($0) * 0.1 })   // a tail shorter than a vector
        let out = OddBytes(count: 2 * values.count)
        for k in families {
            k.f32ToF16(out.pointer, values, count: values.count)
            for (i, v) in values.enumerated() {
                let got = out.pointer.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                if v.isNaN {
                    #expect(Float16(bitPattern: got).isNaN, "\(k.name): NaN #\(i) became \(got)")
                } else {
                    #expect(got == Float16(v).bitPattern, "\(k.name): \(v) -> \(String(got, radix: 16)), want \(String(Float16(v).bitPattern, radix: 16))")
                }
            }
        }
    }

    @Test("bfloat16 <-> float32 match BFloat16 bit for bit, NaNs included")
    func bf16Conversions() {
        let n = 65536
        let src = OddBytes(count: 2 * n)
        for i in 0..<n { src.pointer.storeBytes(of: UInt16(i), toByteOffset: 2 * i, as: UInt16.self) }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { out.deallocate() }
        var r = TestRandom(seed: 6)
        var values: [Float] = [0, -0.0, .infinity, -.infinity, .nan, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFF81_0000),
                               Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x7F7F_FFFF),
                               Float(bitPattern: 0x0000_8000), Float(bitPattern: 0x8001_8000)]
        for _ in 0..<1001 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: r.next()))) }
        let narrow = OddBytes(count: 2 * values.count)
        for k in families {
            k.bf16ToF32(out, src.pointer, count: n)
            let wide = (0..<n).filter { out[$0].bitPattern != BFloat16.toFloat(UInt16($0)).bitPattern }.count
            #expect(wide == 0, "\(k.name): \(wide) bf16 values widened wrongly")
            k.f32ToBF16(narrow.pointer, values, count: values.count)
            for (i, v) in values.enumerated() {
                let got = narrow.pointer.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                #expect(got == BFloat16.fromFloat(v), "\(k.name): \(v.bitPattern) -> \(got), want \(BFloat16.fromFloat(v))")
            }
        }
    }

    @Test("Q8_0 quantization is bit for bit Q8_0.quantize, ties rounded away from zero")
    func q8_0Quantize() {
        var r = TestRandom(seed: 7)
        var x: [Float] = []
        // A block whose scale is exactly 1 (max 127): every x * id is x, and the halves test the
        // rounding (round-half-even would give 0, 2, -2 where roundf gives 1, 3, -3).
        x += [127, -127, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 0.49999997, 3.4999998]
        x += (0..<20).map { Float($0) - 9.5 }
        x += [Float](repeating: 0, count: 32)                               // d = 0
        for scale: Float in [1e-6, 0.01, 1, 50, 1e4] { for _ in 0..<(32 * 7) { x.append(r.normal() * scale) } }
        let blocks = x.count / 32
        let want = UnsafeMutableRawPointer.allocate(byteCount: blocks * 34, alignment: 1)
        defer { want.deallocate() }
        Q8_0.quantize(x, count: x.count, into: want)
        let got = OddBytes(count: blocks * 34)
        for k in families {
            k.quantizeQ8_0(got.pointer, x, count: x.count)
            #expect(memcmp(got.pointer, want, blocks * 34) == 0, "\(k.name): Q8_0 bytes differ from Q8_0.quantize")
        }
        #expect(want.load(fromByteOffset: 2 + 2, as: Int8.self) == 1 && want.load(fromByteOffset: 2 + 7, as: Int8.self) == -3)
    }

    @Test("Q8_0 dequantization is bit for bit Q8_0.dequantize (any int8, -128 included)")
    func q8_0Dequantize() {
        var r = TestRandom(seed: 8)
        let blocks = 41
        let src = OddBytes(count: blocks * 34)
        for b in 0..<blocks {
            src.pointer.storeBytes(of: Float16(r.normal() * 0.01), toByteOffset: b * 34, as: Float16.self)
            for j in 0..<32 { src.pointer.storeBytes(of: UInt8(truncatingIfNeeded: r.next()), toByteOffset: b * 34 + 2 + j, as: UInt8.self) }
        }
        src.pointer.storeBytes(of: Int8(-128), toByteOffset: 2, as: Int8.self)
        let want = [Float](unsafeUninitializedCapacity: blocks * 32) { p, n in
            Q8_0.dequantize(src.pointer, count: blocks * 32, into: p.baseAddress!); n = blocks * 32
        }
        let got = UnsafeMutablePointer<Float>.allocate(capacity: blocks * 32)
        defer { got.deallocate() }
        for k in families {
            k.q8_0ToF32(got, src.pointer, count: blocks * 32)
            let bad = (0..<(blocks * 32)).filter { got[$0].bitPattern != want[$0].bitPattern }.count
            #expect(bad == 0, "\(k.name): \(bad) Q8_0 values dequantized wrongly")
        }
    }

    /// Weights of `storage` (rows, cols) at an odd address, rows `stride` bytes apart. Types
    /// bam-mix writes come from random values; the k-quants and IQ4 types (which only
    /// llama-quantize writes) are random bytes, every code and scale bit pattern, with half scales
    /// of a realistic size.
    private func storedWeights(_ storage: WeightStorage, rows: Int, cols: Int, random r: inout TestRandom) throws -> (OddBytes, Int) {
        let stride = storage.dtype.byteCount(elements: cols)! + 6
        let bytes = OddBytes(count: rows * stride)
        let row = (0..<cols).map { _ in r.normal() * 0.5 }
        for i in 0..<rows {
            let base = bytes.pointer + i * stride
            switch storage {
            case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs:
                for b in 0..<(stride - 6) { base.storeBytes(of: UInt8(truncatingIfNeeded: r.next()), toByteOffset: b, as: UInt8.self) }
                let blockBytes = storage.dtype.byteCount(elements: storage.dtype.blockSize)!
                for blk in 0..<(cols / storage.dtype.blockSize) {
                    let d = Float16(r.uniform() * 0.01 * Float(i % 5 + 1)), dmin = Float16(r.uniform() * 0.02)
                    // The f16 d (and dmin after it) sit at the block's end in Q2_K, Q3_K and Q6_K.
                    let dAt: Int = switch storage { case .q2_K: 80; case .q3_K: 108; case .q6_K: 208; default: 0 }
                    let at = blk * blockBytes + dAt
                    base.storeBytes(of: d.bitPattern, toByteOffset: at, as: UInt16.self)
                    if [.q2_K, .q4_K, .q5_K].contains(storage) { base.storeBytes(of: dmin.bitPattern, toByteOffset: at + 2, as: UInt16.self) }
                }
            default:
                let values = row.map { $0 * Float(i % 5 + 1) * (r.uniform() < 0.1 ? -3 : 1) + r.normal() * 0.1 }
                try DTypeConversion.fromFloat32(values, count: cols, dtype: storage.dtype, into: base)
            }
        }
        if storage == .q8_0 {
            // Files may hold -128 (the reference quantizer never writes it): |w| must not overflow.
            for i in 0..<rows { bytes.pointer.storeBytes(of: Int8(-128), toByteOffset: i * stride + 2 + 5, as: Int8.self) }
        }
        return (bytes, stride)
    }

    /// The row lengths the decode kernels treat differently: the AVX-512 and AVX2 kernels stream
    /// one activation row against short rows (up to 8 KiB and 2.5 KiB) one row at a time, and
    /// against longer rows in four-row tiles (kernels_internal.h, BAM_*_STREAM_ROW_MAX_BYTES).
    enum RowLength: CaseIterable, Sendable { case short, long }

    @Test("fused decode kernels, 1 to 8 activation rows, every stored type, short and long rows",
          arguments: [WeightStorage.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs],
          RowLength.allCases)
    func matmul(storage: WeightStorage, length: RowLength) throws {
        var r = TestRandom(seed: 9)
        // 13 rows: not a multiple of the 2- or 4-row tiles; 133 columns: a tail after the vectors
        // (Q8_0: 5 blocks, an odd number for the two-block AVX-512 steps). The long rows pass
        // 8 KiB (f32 8340 bytes, f16/bf16 8266, Q8_0 241 blocks, 8194 bytes), with the same tails.
        // The k-quants take whole super-blocks of 256: 3 and 17 of them.
        let rows = 13, ldy = rows + 3
        let cols = switch (length, storage) {
        case (.short, .q8_0), (.short, .q4_0), (.short, .q4_1), (.short, .q5_0), (.short, .q5_1), (.short, .iq4_nl): 160
        case (.short, .q2_K), (.short, .q3_K), (.short, .q4_K), (.short, .q5_K), (.short, .q6_K), (.short, .iq4_xs): 768
        case (.short, _): 133
        case (.long, .q8_0), (.long, .q4_0), (.long, .q4_1), (.long, .q5_0), (.long, .q5_1), (.long, .iq4_nl): 7712
        case (.long, .q2_K), (.long, .q3_K), (.long, .q4_K), (.long, .q5_K), (.long, .q6_K), (.long, .iq4_xs): 4352
        case (.long, .f32): 2085
        case (.long, _): 4133
        }
        let (w, wStride) = try storedWeights(storage, rows: rows, cols: cols, random: &r)
        let T = WeightMatrix.fusedRowLimit
        let xf = (0..<(T * cols)).map { _ in r.normal() }
        // The activations as the kernel takes them: float32 rows (stride cols + 3), or quantized
        // rows (Q8_0 or Q8_K) with two bytes of slack.
        let form = try #require(storage.decodeActivations)
        let xStride = form == .float32 ? 4 * (cols + 3) : form.rowBytes(columns: cols) + 2
        let x = OddBytes(count: T * xStride)
        let xAligned = UnsafeMutableRawPointer.allocate(byteCount: T * xStride, alignment: 64)
        defer { xAligned.deallocate() }
        for t in 0..<T {
            let row = xf.withUnsafeBufferPointer { $0.baseAddress! + t * cols }
            switch form {
            case .q8_0: Q8_0.quantize(row, count: cols, into: xAligned + t * xStride)
            case .q8_K: Q8_K.quantize(row, count: cols, into: xAligned + t * xStride)
            case .float32: (xAligned + t * xStride).copyMemory(from: row, byteCount: 4 * cols)
            }
        }
        x.pointer.copyMemory(from: xAligned, byteCount: T * xStride)
        // The magnitudes of the pieces each dot product rounds, for the bound.
        var absSums = [Double](repeating: 0, count: T * rows)
        for i in 0..<rows {
            for t in 0..<T {
                absSums[t * rows + i] = BlockProducts.row(w.pointer + i * wStride, storage: storage, x.pointer + t * xStride,
                                                          cols: cols).absoluteSum
            }
        }
        let want = UnsafeMutablePointer<Float>.allocate(capacity: T * ldy)
        let got = UnsafeMutablePointer<Float>.allocate(capacity: T * ldy)
        defer { want.deallocate(); got.deallocate() }
        // 1, 2 and 13 weight rows: the one-row stream reads a worker's rows as two streams (rows
        // r and half + r together), with an odd row left over.
        for k in families {
            for n in [1, 2, rows] {
                for t in 1...T {
                    WeightKernels.matmulNaive(want, ldy: ldy, w.pointer, wStride: wStride, storage: storage, x.pointer, xStride: xStride,
                                              T: t, rows: n, cols: cols)
                    got.update(repeating: .nan, count: T * ldy)
                    k.matmul(got, ldy: ldy, w.pointer, wStride: wStride, storage: storage, x.pointer, xStride: xStride, T: t, rows: n, cols: cols)
                    var worst = 0.0
                    for tt in 0..<t {
                        for i in 0..<n {
                            let err = abs(Double(got[tt * ldy + i]) - Double(want[tt * ldy + i]))
                            let bound = dotBound(absoluteSum: absSums[tt * rows + i], terms: cols)
                            worst = max(worst, err.isNaN ? .infinity : err / bound)
                        }
                        for i in n..<ldy { #expect(got[tt * ldy + i].isNaN, "\(k.name): wrote past the rows") }
                    }
                    #expect(worst <= 1, "\(k.name) \(storage) T=\(t) rows=\(n): error \(worst)x the summation-order bound")
                }
            }
        }
    }

    @Test("Q8_K quantization is bit for bit Q8_K.quantize (ggml's quantize_row_q8_K_ref): ties to even, zero blocks, sums of 16")
    func quantizeQ8_K() {
        var r = TestRandom(seed: 21)
        let blocks = 6
        var v = (0..<(blocks * 256)).map { i in r.normal() * Float(1 << (i / 256)) }
        v[0] = -127                                               // max = -127: the scale -127/max is 1,
        for j in 1..<256 { v[j] = Float(j % 200 - 100) + 0.5 }    // so these are ties, rounded to even
        for j in 256..<512 { v[j] = 0 }                           // a zero block
        v[600] = -40; v[601] = 40                                 // the first of equal magnitudes decides the sign
        let want = UnsafeMutableRawPointer.allocate(byteCount: blocks * 292, alignment: 1)
        let got = OddBytes(count: blocks * 292)
        defer { want.deallocate() }
        Q8_K.quantize(v, count: v.count, into: want)
        // Hand-checked against the reference's definition: a zero block is d = 0, all q 0.
        #expect(want.loadUnaligned(fromByteOffset: 292, as: Float.self) == 0)
        for k in families {
            k.quantizeQ8_K(got.pointer, v, count: v.count)
            #expect(memcmp(got.pointer, want, blocks * 292) == 0, "\(k.name): Q8_K blocks differ from Q8_K.quantize")
        }
        // Dequantized, each value is within half a step of the input (d * q with |q| <= 127).
        var back = [Float](repeating: 0, count: v.count)
        Q8_K.dequantize(want, count: v.count, into: &back)
        for b in 0..<blocks {
            let step = abs(want.loadUnaligned(fromByteOffset: b * 292, as: Float.self))
            let worst = (0..<256).map { abs(back[b * 256 + $0] - v[b * 256 + $0]) }.max()!
            #expect(worst <= step * 0.5001, "block \(b): error \(worst) over half a step \(step)")
        }
    }

    @Test("weighted rows (P V over an f16 or f32 value cache), overwriting and accumulating, column tails, unaligned rows",
          arguments: CacheElement.allCases, [(1, 3), (37, 8), (150, 64), (64, 72), (9, 128), (200, 131)])
    func weightedRows(values kind: CacheElement, shape: (Int, Int)) {
        let (rows, cols) = shape
        var r = TestRandom(seed: UInt64(rows * 1000 + cols))
        let bytes = kind.bytes
        let stride = bytes * cols + 6   // rows further apart than their values, as a cache's heads are
        let w = OddBytes(count: rows * stride)
        let p = r.tensor([rows]), start = r.tensor([cols]), values = r.tensor([rows, cols], scale: 3)
        var absSum = [Double](repeating: 0, count: cols)
        for i in 0..<rows {
            for c in 0..<cols {
                let v: Float
                switch kind {
                case .f16:
                    let h = Float16(values.data[i * cols + c])
                    w.pointer.storeBytes(of: h, toByteOffset: i * stride + 2 * c, as: Float16.self)
                    v = Float(h)
                case .f32:
                    v = values.data[i * cols + c]
                    w.pointer.storeBytes(of: v, toByteOffset: i * stride + 4 * c, as: Float.self)
                }
                absSum[c] += abs(Double(p.data[i]) * Double(v))
            }
        }
        for k in families {
            for accumulate in [false, true] {
                let got = start.copy(), want = start.copy()
                k.weightedRows(got.data, w.pointer, wStride: stride, element: kind, p.data, rows: rows, cols: cols,
                               accumulate: accumulate)
                WeightKernels.weightedRowsNaive(want.data, w.pointer, wStride: stride, element: kind, p.data, rows: rows,
                                                cols: cols, accumulate: accumulate)
                var worst = 0.0
                for c in 0..<cols {
                    let bound = dotBound(absoluteSum: absSum[c] + (accumulate ? abs(Double(start.data[c])) : 0), terms: rows + 1)
                    worst = max(worst, abs(Double(got.data[c]) - Double(want.data[c])) / bound)
                }
                #expect(worst <= 1, "\(k.name) \(kind) rows \(rows) cols \(cols) accumulate \(accumulate): error \(worst)x the summation-order bound")
            }
        }
    }
}
