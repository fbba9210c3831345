import BamKernelsC
import Foundation

/// The families of low-precision kernels in BamKernelsC, each a complete table: portable C, AVX2
/// (+ FMA + F16C), AVX-512 (F + BW + VL), and the VNNI variants whose only difference is the
/// Q8_0 dot product. Which ones a CPU can run is read once from cpuid (not from compile flags), so
/// one binary serves every x86-64 machine.
public enum KernelFamily: String, CaseIterable, Sendable {
    case generic
    case avx2
    case avx2VNNI = "avx2-vnni"
    case avx512
    case avx512VNNI = "avx512-vnni"

    var cFamily: bam_family {
        switch self {
        case .generic: BAM_FAMILY_GENERIC
        case .avx2: BAM_FAMILY_AVX2
        case .avx2VNNI: BAM_FAMILY_AVX2_VNNI
        case .avx512: BAM_FAMILY_AVX512
        case .avx512VNNI: BAM_FAMILY_AVX512_VNNI
        }
    }

    /// Whether this family's f32 kernel reads one activation row against float32 weights faster
    /// than OpenBLAS's sgemv, so that decode takes it for f32 weights too: the AVX2 and AVX-512
    /// kernels prefetch the next tile of a matrix's short rows, measured faster than sgemv on an
    /// EPYC Zen 3 (AVX2) and an EPYC Zen 4 (AVX-512: `BamBench kernels`, 8192 x 4096 and
    /// 131072 x 512 weights; docs/performance.md). The portable kernel is slower than sgemv.
    public var streamsOneF32RowFasterThanSGEMV: Bool {
        switch self {
        case .avx2, .avx2VNNI, .avx512, .avx512VNNI: true
        case .generic: false
        }
    }

    /// The family's kernels, or nil when this CPU cannot run them.
    public var kernels: WeightKernels? {
        bam_kernels_for(cFamily).map { WeightKernels(family: self, table: $0) }
    }

    /// Every family this CPU runs, least capable first.
    public static var supported: [KernelFamily] { allCases.filter { $0.kernels != nil } }

    /// The CPU features the dispatcher read (names as in /proc/cpuinfo), for reports.
    public static var cpuFeatures: [String] {
        let f = bam_cpu_features()
        let names: [(UInt32, String)] = [
            (UInt32(BAM_CPU_AVX2), "avx2"), (UInt32(BAM_CPU_FMA), "fma"), (UInt32(BAM_CPU_F16C), "f16c"),
            (UInt32(BAM_CPU_AVX512F), "avx512f"), (UInt32(BAM_CPU_AVX512BW), "avx512bw"),
            (UInt32(BAM_CPU_AVX512VL), "avx512vl"), (UInt32(BAM_CPU_AVX512_VNNI), "avx512_vnni"),
            (UInt32(BAM_CPU_AVX_VNNI), "avx_vnni"), (UInt32(BAM_CPU_AVX512_BF16), "avx512_bf16"),
        ]
        return names.filter { f & $0.0 != 0 }.map(\.1)
    }
}

/// One family's kernel table, with Swift signatures. `WeightKernels.active` is what `linear`
/// uses; tests and benchmarks call each family directly.
public struct WeightKernels: @unchecked Sendable {
    public let family: KernelFamily
    let table: UnsafePointer<bam_kernels>

    /// BAM_MIX_KERNELS=generic|avx2|avx2-vnni|avx512|avx512-vnni forces a family (tests,
    /// benchmarks); otherwise the most capable one the CPU runs. Forcing a family the CPU cannot
    /// run stops the process with a message (exit status 2, no crash report) rather than quietly
    /// measuring another family.
    public static let active: WeightKernels = {
        if let name = ProcessInfo.processInfo.environment["BAM_MIX_KERNELS"], !name.isEmpty {
            guard let family = KernelFamily(rawValue: name.lowercased()) else {
                refuse("BAM_MIX_KERNELS=\(name): expected one of \(KernelFamily.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let kernels = family.kernels else {
                refuse("BAM_MIX_KERNELS=\(name): this CPU cannot run that family (it runs \(KernelFamily.supported.map(\.rawValue).joined(separator: ", "))); unset the variable or choose one of those")
            }
            return kernels
        }
        return KernelFamily.supported.last!.kernels!
    }()

    /// An environment setting no run can honour: said on stderr, then exit 2 (the CLI's status
    /// for bad input). A thrown error cannot reach the user from this lazily built global.
    private static func refuse(_ message: String) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        exit(2)
    }

    public var name: String { String(cString: table.pointee.name) }

    /// The fused decode kernel for a stored type (nil for types read through a row dequantizer).
    func matmul(_ storage: WeightStorage) -> bam_matmul_fn? {
        switch storage {
        case .f32: table.pointee.matmul_f32
        case .f16: table.pointee.matmul_f16
        case .bf16: table.pointee.matmul_bf16
        case .q8_0: table.pointee.matmul_q8_0
        case .q4_0: table.pointee.matmul_q4_0
        case .q5_0: table.pointee.matmul_q5_0
        case .q4_1: table.pointee.matmul_q4_1
        case .q5_1: table.pointee.matmul_q5_1
        case .q2_K: table.pointee.matmul_q2_K
        case .q3_K: table.pointee.matmul_q3_K
        case .q4_K: table.pointee.matmul_q4_K
        case .q5_K: table.pointee.matmul_q5_K
        case .q6_K: table.pointee.matmul_q6_K
        case .iq4_nl: table.pointee.matmul_iq4_nl
        case .iq4_xs: table.pointee.matmul_iq4_xs
        case .dequantized: nil
        }
    }

    /// y[t * ldy + r] = sum_c W[r, c] x[t, c] for the first `rows` rows of `w` (rows `wStride`
    /// bytes apart) and T <= 8 activation rows `xStride` bytes apart, in the storage's
    /// `decodeActivations` form: float32 rows, or rows quantized by `quantizeQ8_0` / `quantizeQ8_K`.
    public func matmul(_ y: UnsafeMutablePointer<Float>, ldy: Int, _ w: UnsafeRawPointer, wStride: Int, storage: WeightStorage,
                       _ x: UnsafeRawPointer, xStride: Int, T: Int, rows: Int, cols: Int) {
        precondition(T >= 1 && T <= Int(BAM_MATMUL_MAX_ROWS), "matmul: T = \(T) outside 1...\(BAM_MATMUL_MAX_ROWS)")
        guard let kernel = matmul(storage) else { preconditionFailure("matmul: no fused kernel for \(storage)") }
        kernel(y, ldy, w, wStride, x, xStride, Int32(T), Int32(rows), Int32(cols))
    }

    /// `count` floats (a multiple of 32) -> Q8_0 blocks, bit for bit `Q8_0.quantize`.
    public func quantizeQ8_0(_ out: UnsafeMutableRawPointer, _ inp: UnsafePointer<Float>, count: Int) {
        precondition(count % Q8_0.blockSize == 0)
        table.pointee.quantize_q8_0!(out, inp, count)
    }

    /// `count` floats (a multiple of 256) -> Q8_K blocks, bit for bit `Q8_K.quantize` (ggml's
    /// quantize_row_q8_K_ref).
    public func quantizeQ8_K(_ out: UnsafeMutableRawPointer, _ inp: UnsafePointer<Float>, count: Int) {
        precondition(count % Int(BAM_QK_K) == 0)
        table.pointee.quantize_q8_K!(out, inp, count)
    }

    /// Q8_0 blocks -> `count` floats, bit for bit `Q8_0.dequantize`.
    public func q8_0ToF32(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafeRawPointer, count: Int) {
        precondition(count % Q8_0.blockSize == 0)
        table.pointee.q8_0_to_f32!(out, inp, count)
    }

    /// IEEE half -> float32 (exact; the source may be unaligned).
    public func f16ToF32(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafeRawPointer, count: Int) {
        table.pointee.f16_to_f32!(out, inp, count)
    }

    /// float32 -> IEEE half, round to nearest even (as `Float16(x)`).
    public func f32ToF16(_ out: UnsafeMutableRawPointer, _ inp: UnsafePointer<Float>, count: Int) {
        table.pointee.f32_to_f16!(out, inp, count)
    }

    /// y[c] (+)= sum_r p[r] W[r][c] over `rows` rows of `element` values `wStride` bytes apart,
    /// summed in float32, in an order of the kernel's choosing (attention's P V over a value cache,
    /// read in place). `accumulate` adds to y.
    public func weightedRows(_ y: UnsafeMutablePointer<Float>, _ w: UnsafeRawPointer, wStride: Int, element: CacheElement,
                             _ p: UnsafePointer<Float>, rows: Int, cols: Int, accumulate: Bool) {
        let kernel = switch element {
        case .f32: table.pointee.f32_weighted_rows!
        case .f16: table.pointee.f16_weighted_rows!
        }
        kernel(y, w, wStride, p, Int32(rows), Int32(cols), accumulate ? 1 : 0)
    }

    /// Naive twin of `weightedRows`: double accumulation.
    public static func weightedRowsNaive(_ y: UnsafeMutablePointer<Float>, _ w: UnsafeRawPointer, wStride: Int,
                                         element: CacheElement, _ p: UnsafePointer<Float>, rows: Int, cols: Int,
                                         accumulate: Bool) {
        for c in 0..<cols {
            var acc = accumulate ? Double(y[c]) : 0
            for r in 0..<rows { acc += Double(p[r]) * Double(element.value(w, byteOffset: r * wStride + element.bytes * c)) }
            y[c] = Float(acc)
        }
    }

    /// bfloat16 -> float32 (exact).
    public func bf16ToF32(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafeRawPointer, count: Int) {
        table.pointee.bf16_to_f32!(out, inp, count)
    }

    /// float32 -> bfloat16, round to nearest even with NaN kept quiet (as `BFloat16.fromFloat`).
    public func f32ToBF16(_ out: UnsafeMutableRawPointer, _ inp: UnsafePointer<Float>, count: Int) {
        table.pointee.f32_to_bf16!(out, inp, count)
    }
}

extension WeightKernels {
    /// Naive twin of `matmul`: scalar Swift, sums in double. Widened types decode each value with
    /// `DTypeConversion`; block-quantized weights against quantized activations take every
    /// weight and activation value exactly (`BlockProducts`) and sum their products in double,
    /// which is the integer sums of ggml's vec_dot_*_q8_0 / *_q8_K scaled without rounding.
    public static func matmulNaive(_ y: UnsafeMutablePointer<Float>, ldy: Int, _ w: UnsafeRawPointer, wStride: Int,
                                   storage: WeightStorage, _ x: UnsafeRawPointer, xStride: Int, T: Int, rows: Int, cols: Int) {
        for r in 0..<rows {
            for t in 0..<T {
                y[t * ldy + r] = Float(BlockProducts.row(w + r * wStride, storage: storage, x + t * xStride, cols: cols).sum)
            }
        }
    }
}

/// The element types a KV cache stores, as the attention kernels read them in place.
public enum CacheElement: Sendable, CaseIterable {
    case f32, f16

    public var bytes: Int {
        switch self {
        case .f32: 4
        case .f16: 2
        }
    }

    /// The same bytes taken as the rows of a weight matrix (the scores' fused matrix kernel).
    public var weightStorage: WeightStorage {
        switch self {
        case .f32: .f32
        case .f16: .f16
        }
    }

    /// The value at `byteOffset` (unaligned), widened exactly to float32.
    public func value(_ base: UnsafeRawPointer, byteOffset: Int) -> Float {
        switch self {
        case .f32: base.loadUnaligned(fromByteOffset: byteOffset, as: Float.self)
        case .f16: Float(base.loadUnaligned(fromByteOffset: byteOffset, as: Float16.self))
        }
    }
}
