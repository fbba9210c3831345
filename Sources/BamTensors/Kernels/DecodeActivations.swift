import BamKernelsC

/// The form in which a fused decode kernel takes the activation rows: float32 as they are (f32,
/// f16 and bf16 weights, widened in registers), or quantized per block to 8 bits so that block-
/// quantized weights multiply them in integers, as llama.cpp does: Q8_0 (blocks of 32, for Q8_0,
/// Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL weights) or Q8_K (blocks of 256 with the sums of each 16, for Q2_K..Q6_K and IQ4_XS).
public enum DecodeActivations: Sendable, Hashable {
    case float32, q8_0, q8_K

    /// Values per block of this form (a row's columns are a multiple of it).
    public var blockValues: Int {
        switch self {
        case .float32: 1
        case .q8_0: Q8_0.blockSize
        case .q8_K: Int(BAM_QK_K)
        }
    }

    /// Bytes of one activation row of `columns` values in this form.
    public func rowBytes(columns: Int) -> Int {
        switch self {
        case .float32: 4 * columns
        case .q8_0: Q8_0.blockBytes * (columns / Q8_0.blockSize)
        case .q8_K: Int(BAM_Q8_K_BYTES) * (columns / Int(BAM_QK_K))
        }
    }

    /// Rows `inp` (T rows of `columns` floats) in this form, one row every `rowBytes(columns:)`
    /// bytes of `out` (decode reads float32 rows in place and calls this for the quantized forms only).
    public func quantize(_ out: UnsafeMutableRawPointer, _ inp: UnsafePointer<Float>, T: Int, columns: Int, kernels k: WeightKernels) {
        let stride = rowBytes(columns: columns)
        for t in 0..<T {
            switch self {
            case .float32: (out + t * stride).copyMemory(from: inp + t * columns, byteCount: stride)
            case .q8_0: k.quantizeQ8_0(out + t * stride, inp + t * columns, count: columns)
            case .q8_K: k.quantizeQ8_K(out + t * stride, inp + t * columns, count: columns)
            }
        }
    }
}

extension WeightStorage {
    /// What the fused decode kernel of this storage multiplies; nil for types read through the
    /// row dequantizer (no fused kernel).
    public var decodeActivations: DecodeActivations? {
        switch self {
        case .f32, .f16, .bf16: .float32
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .iq4_nl: .q8_0
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs: .q8_K
        case .dequantized: nil
        }
    }
}

/// Activation rows quantized once for every block-quantized matrix of a decode hand-off that
/// reads them (Q, K and V; gate and up), one buffer per form needed.
struct QuantizedActivations {
    private var buffers: [DecodeActivations: UnsafeMutableRawPointer] = [:]
    let columns: Int

    init(_ inp: UnsafePointer<Float>, T: Int, columns: Int, forms: Set<DecodeActivations>, kernels k: WeightKernels) {
        self.columns = columns
        for form in forms where form != .float32 {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, T * form.rowBytes(columns: columns)), alignment: 64)
            form.quantize(buffer, inp, T: T, columns: columns, kernels: k)
            buffers[form] = buffer
        }
    }

    /// The rows in `form` (nil for float32: the caller's input).
    func rows(_ form: DecodeActivations) -> UnsafeRawPointer? { buffers[form].map { UnsafeRawPointer($0) } }

    func deallocate() { for b in buffers.values { b.deallocate() } }
}
