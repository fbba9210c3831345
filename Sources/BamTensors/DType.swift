import Foundation

/// Element types that checkpoints store. Computation is always float32; these are what we read
/// from and write to disk.
public enum DType: String, Sendable, CaseIterable, Codable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"
    /// ggml's Q8_0: blocks of 32 values, an f16 scale followed by 32 int8 (GGUF only).
    case q8_0 = "Q8_0"

    /// Bytes per element (Q8_0 has none: use `byteCount(elements:)`).
    public var size: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        case .q8_0: 0
        }
    }

    public var isFloatingPoint: Bool { [.f64, .f32, .f16, .bf16, .q8_0].contains(self) }

    /// Bytes needed for `elements` values, or nil when the count is not representable
    /// (overflow, or not a whole number of Q8_0 blocks).
    public func byteCount(elements: Int) -> Int? {
        if self == .q8_0 {
            guard elements % Q8_0.blockSize == 0 else { return nil }
            let (b, o) = (elements / Q8_0.blockSize).multipliedReportingOverflow(by: Q8_0.blockBytes)
            return o ? nil : b
        }
        let (b, o) = elements.multipliedReportingOverflow(by: size)
        return o ? nil : b
    }

    /// Parses a user-facing name such as `f16`, `bf16`, `q8_0`.
    public init?(userName: String) {
        switch userName.lowercased() {
        case "f32", "float32", "fp32": self = .f32
        case "f16", "float16", "fp16", "half": self = .f16
        case "bf16", "bfloat16": self = .bf16
        case "q8_0", "q8": self = .q8_0
        default: return nil
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
    /// Decodes `count` values of `dtype` at `source` into float32.
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
        case .q8_0:
            Q8_0.dequantize(source, count: count, into: out)
        case .i64, .i32, .i16, .i8, .u8, .bool:
            throw TensorError.unsupportedDType(dtype, "converting integer tensors to float32 weights")
        }
    }

    /// Encodes float32 values as `dtype` into `destination` (which holds `dtype.byteCount(count)` bytes).
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
        case .q8_0:
            Q8_0.quantize(values, count: count, into: destination)
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

/// ggml's Q8_0 block layout (ggml-common.h: `block_q8_0 { ggml_half d; int8_t qs[32]; }`):
/// d = max|x| / 127, q = round(x / d), x ~ d * q.
public enum Q8_0 {
    public static let blockSize = 32
    public static let blockBytes = 34

    public static func quantize(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        precondition(count % blockSize == 0)
        for b in 0..<(count / blockSize) {
            let src = x + b * blockSize
            var amax: Float = 0
            for j in 0..<blockSize { amax = max(amax, abs(src[j])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            let base = out + b * blockBytes
            base.storeBytes(of: Float16(d), toByteOffset: 0, as: Float16.self)
            for j in 0..<blockSize {
                // ggml rounds half away from zero (roundf).
                let q = (src[j] * id).rounded(.toNearestOrAwayFromZero)
                base.storeBytes(of: Int8(max(-128, min(127, q))), toByteOffset: 2 + j, as: Int8.self)
            }
        }
    }

    public static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / blockSize) {
            let base = src + b * blockBytes
            let d = Float(base.loadUnaligned(fromByteOffset: 0, as: Float16.self))
            for j in 0..<blockSize {
                out[b * blockSize + j] = d * Float(base.loadUnaligned(fromByteOffset: 2 + j, as: Int8.self))
            }
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
