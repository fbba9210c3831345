import Foundation

/// Element types that checkpoints store. Computation is always float32; these are what we read
/// from and write to disk. The ggml block types (GGUF only) pack `blockSize` values into
/// `blockBytes` bytes (layouts in Quantization/; ggml's ggml-common.h is the spec).
public enum DType: String, Sendable, CaseIterable, Codable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"
    /// ggml's legacy block types: 32 values per block with an f16 scale (and, for _1, an f16 minimum).
    case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q8_0 = "Q8_0"
    /// ggml's k-quants: super-blocks of 256 values with 6- or 8-bit sub-block scales.
    case q2_K = "Q2_K", q3_K = "Q3_K", q4_K = "Q4_K", q5_K = "Q5_K", q6_K = "Q6_K", q8_K = "Q8_K"
    /// ggml's non-linear 4-bit types (a fixed 16-entry codebook).
    case iq4_nl = "IQ4_NL", iq4_xs = "IQ4_XS"

    /// Bytes per element; 0 for block types (use `byteCount(elements:)` or `blockBytes`).
    public var size: Int { isQuantized ? 0 : blockBytes }

    /// Values per block: 1 for plain element types.
    public var blockSize: Int {
        switch self {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl: 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K, .iq4_xs: 256
        default: 1
        }
    }

    /// Bytes per block (ggml's type_size; gguf-py's GGML_QUANT_SIZES).
    public var blockBytes: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        case .q4_0: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q5_1: 24
        case .q8_0: 34
        case .q2_K: 84
        case .q3_K: 110
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        case .q8_K: 292
        case .iq4_nl: 18
        case .iq4_xs: 136
        }
    }

    /// A ggml block type (values stored in blocks, GGUF only).
    public var isQuantized: Bool { blockSize > 1 }

    public var isFloatingPoint: Bool { isQuantized || [.f64, .f32, .f16, .bf16].contains(self) }

    /// Bytes needed for `elements` values, or nil when the count is not representable
    /// (negative, overflow, or not a whole number of blocks).
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0, elements % blockSize == 0 else { return nil }
        let (b, o) = (elements / blockSize).multipliedReportingOverflow(by: blockBytes)
        return o ? nil : b
    }

    /// Parses a user-facing name such as `f16`, `bf16`, `q8_0`, `q4_k` (case-insensitive).
    public init?(userName: String) {
        switch userName.lowercased() {
        case "f32", "float32", "fp32": self = .f32
        case "f16", "float16", "fp16", "half": self = .f16
        case "bf16", "bfloat16": self = .bf16
        case "q8": self = .q8_0
        default:
            guard let d = DType.allCases.first(where: { $0.isQuantized && $0.rawValue.lowercased() == userName.lowercased() }) else { return nil }
            self = d
        }
    }

    /// The `torch_dtype` string transformers writes into config.json.
    public var torchName: String {
        switch self {
        case .f32: "float32"
        case .f16: "float16"
        case .bf16: "bfloat16"
        case .f64: "float64"
        default: rawValue.lowercased()
        }
    }
}

/// bfloat16 <-> float32. bf16 is the top half of an IEEE float32.
public enum BFloat16 {
    @inline(__always) public static func toFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Round to nearest, ties to even; NaNs stay NaN (quieted) instead of rounding into infinity.
    @inline(__always) public static func fromFloat(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let lsb = (bits >> 16) & 1
        let rounded = bits &+ 0x7FFF &+ lsb
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }
}

/// Element conversion between stored dtypes and float32. Unaligned sources are read with
/// `loadUnaligned`, since safetensors and GGUF data need not be aligned to the element size.
public enum DTypeConversion {
    /// Decodes `count` values of `dtype` held in `source`, after checking that `count` is a whole
    /// number of blocks and that `source` holds exactly the bytes they take (not fewer, not more).
    public static func toFloat32(_ source: UnsafeRawBufferPointer, dtype: DType, count: Int,
                                 into out: UnsafeMutablePointer<Float>) throws {
        guard count >= 0, count % dtype.blockSize == 0 else {
            throw TensorError.shapeMismatch("\(count) values are not a whole number of \(dtype.rawValue) blocks of \(dtype.blockSize)")
        }
        guard let need = dtype.byteCount(elements: count) else {
            throw TensorError.shapeMismatch("\(count) values of \(dtype.rawValue) take more bytes than are addressable")
        }
        guard source.count == need else {
            throw TensorError.shapeMismatch("\(count) values of \(dtype.rawValue) take \(need) bytes (\(count / dtype.blockSize) block(s) of \(dtype.blockBytes)), but \(source.count) bytes are stored — the data is truncated or its shape is wrong")
        }
        guard count > 0 else { return }
        try toFloat32(source.baseAddress!, dtype: dtype, count: count, into: out)
    }

    /// Decodes `count` values of `dtype` at `source` into float32. `source` must hold
    /// `dtype.byteCount(elements: count)` bytes (the buffer overload checks it); a count that is
    /// not a whole number of blocks throws.
    public static func toFloat32(_ source: UnsafeRawPointer, dtype: DType, count: Int,
                                 into out: UnsafeMutablePointer<Float>) throws {
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: source, byteCount: count * 4)
        case .f16:
            if Int(bitPattern: source) % 2 == 0 {
                let p = source.assumingMemoryBound(to: Float16.self)
                for i in 0..<count { out[i] = Float(p[i]) }
            } else {
                for i in 0..<count { out[i] = Float(source.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)) }
            }
        case .bf16:
            if Int(bitPattern: source) % 2 == 0 {
                let p = source.assumingMemoryBound(to: UInt16.self)
                for i in 0..<count { out[i] = BFloat16.toFloat(p[i]) }
            } else {
                for i in 0..<count { out[i] = BFloat16.toFloat(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
            }
        case .f64:
            for i in 0..<count { out[i] = Float(source.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K, .iq4_nl, .iq4_xs:
            guard count % dtype.blockSize == 0 else {
                throw TensorError.shapeMismatch("\(count) values are not a whole number of \(dtype.rawValue) blocks of \(dtype.blockSize)")
            }
            BlockDequantization.dequantize(source, dtype: dtype, blocks: count / dtype.blockSize, into: out)
        case .i64, .i32, .i16, .i8, .u8, .bool:
            throw TensorError.unsupportedDType(dtype, "converting integer tensors to float32 weights")
        }
    }

    /// Encodes float32 values as `dtype` into `destination` (which holds `dtype.byteCount(count)` bytes).
    /// Block types: Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 (gguf-py's quantisers, bit for bit); the
    /// k-quants and IQ4 need llama.cpp's search-based quantisers, which bam-mix does not have.
    public static func fromFloat32(_ values: UnsafePointer<Float>, count: Int, dtype: DType,
                                   into destination: UnsafeMutableRawPointer) throws {
        switch dtype {
        case .f32:
            destination.copyMemory(from: values, byteCount: count * 4)
        case .f16:
            for i in 0..<count { destination.storeBytes(of: Float16(values[i]), toByteOffset: 2 * i, as: Float16.self) }
        case .bf16:
            for i in 0..<count { destination.storeBytes(of: BFloat16.fromFloat(values[i]), toByteOffset: 2 * i, as: UInt16.self) }
        case .f64:
            for i in 0..<count { destination.storeBytes(of: Double(values[i]), toByteOffset: 8 * i, as: Double.self) }
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1:
            guard count % dtype.blockSize == 0 else {
                throw TensorError.shapeMismatch("\(count) values are not a whole number of \(dtype.rawValue) blocks of \(dtype.blockSize)")
            }
            BlockQuantization.quantize(values, dtype: dtype, blocks: count / dtype.blockSize, into: destination)
        default:
            throw TensorError.unsupportedDType(dtype, "writing float32 weights")
        }
    }

    /// Rounds float32 values in place to what `dtype` can hold (the values a cast would store).
    public static func round(_ values: UnsafeMutablePointer<Float>, count: Int, to dtype: DType) {
        switch dtype {
        case .f16: for i in 0..<count { values[i] = Float(Float16(values[i])) }
        case .bf16: for i in 0..<count { values[i] = BFloat16.toFloat(BFloat16.fromFloat(values[i])) }
        default: break
        }
    }
}

public enum TensorError: Error, CustomStringConvertible {
    case unsupportedDType(DType, String)
    case shapeMismatch(String)

    public var description: String {
        switch self {
        case let .unsupportedDType(d, what): "unsupported dtype \(d.rawValue) for \(what)"
        case let .shapeMismatch(s): s
        }
    }
}
