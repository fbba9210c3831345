import Foundation

// ggml's block types (ggml-common.h defines the block structs; ggml-quants.c the reference
// quantisers and dequantisers; gguf-py's quants.py re-implements them in NumPy). bam-mix decodes
// every type that GGUF files in the wild commonly hold; the dequantised values equal gguf-py's bit
// for bit (Tests/Fixtures/gguf/quant_types.gguf holds gguf-py's values).
//
// Each block type is an enum with `dequantize(_:blocks:into:)` over whole blocks, written as the
// ggml reference loops are (same operations in the same order, so the float32 results are the
// same), over raw pointers without per-element closures: they run at load over hundreds of MB.
// Callers check byte lengths first (`DTypeConversion.toFloat32` with a buffer does it).

/// A ggml block type that bam-mix decodes.
public protocol BlockFormat {
    static var dtype: DType { get }
    /// Decodes `blocks` consecutive blocks at `source` (any alignment) into `blocks * blockSize` floats.
    static func dequantize(_ source: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>)
}

/// A block type that bam-mix can also encode (bit-identical to gguf-py's `quantize`).
public protocol BlockQuantizer: BlockFormat {
    /// Encodes `blocks * blockSize` floats at `x` as `blocks` blocks at `out`.
    static func quantize(_ x: UnsafePointer<Float>, blocks: Int, into out: UnsafeMutableRawPointer)
}

extension BlockFormat {
    public static var blockSize: Int { dtype.blockSize }
    public static var blockBytes: Int { dtype.blockBytes }

    /// Decodes `count` values (a whole number of blocks).
    public static func dequantize(_ source: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(count % blockSize == 0, "\(count) values are not whole \(dtype.rawValue) blocks")
        dequantize(source, blocks: count / blockSize, into: out)
    }
}

extension BlockQuantizer {
    /// Encodes `count` values (a whole number of blocks).
    public static func quantize(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        precondition(count % blockSize == 0, "\(count) values are not whole \(dtype.rawValue) blocks")
        quantize(x, blocks: count / blockSize, into: out)
    }
}

/// ggml_half at byte offset `offset` (IEEE binary16, little-endian, unaligned), as float32.
@inline(__always) func loadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
}

@inline(__always) func storeHalf(_ v: Float, _ p: UnsafeMutableRawPointer, _ offset: Int) {
    p.storeBytes(of: Float16(v).bitPattern.littleEndian, toByteOffset: offset, as: UInt16.self)
}

@inline(__always) func byte(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
    p.load(fromByteOffset: offset, as: UInt8.self)
}

/// Decoding of every block type, split across workers for large inputs.
public enum BlockDequantization {
    /// Inputs of at least this many values are split across Dispatch workers (about 1 MB of
    /// Q4 blocks: below that the hand-off costs more than it saves).
    public static let parallelValues = 1 << 21

    public static func dequantize(_ source: UnsafeRawPointer, dtype: DType, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        let per = dtype.blockSize, bytes = dtype.blockBytes
        guard blocks * per >= parallelValues else {
            return serial(source, dtype: dtype, blocks: blocks, into: out)
        }
        let src = SendableRawPointer(source), dst = SendablePointer(out)
        BLASThreads.parallelRanges(blocks, minimumPerChunk: (1 << 18) / per) { r in
            serial(src.pointer + r.lowerBound * bytes, dtype: dtype, blocks: r.count, into: dst.pointer + r.lowerBound * per)
        }
    }

    /// One thread, in order.
    public static func serial(_ source: UnsafeRawPointer, dtype: DType, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .q4_0: Q4_0.dequantize(source, blocks: blocks, into: out)
        case .q4_1: Q4_1.dequantize(source, blocks: blocks, into: out)
        case .q5_0: Q5_0.dequantize(source, blocks: blocks, into: out)
        case .q5_1: Q5_1.dequantize(source, blocks: blocks, into: out)
        case .q8_0: Q8_0.dequantize(source, blocks: blocks, into: out)
        case .q2_K: Q2_K.dequantize(source, blocks: blocks, into: out)
        case .q3_K: Q3_K.dequantize(source, blocks: blocks, into: out)
        case .q4_K: Q4_K.dequantize(source, blocks: blocks, into: out)
        case .q5_K: Q5_K.dequantize(source, blocks: blocks, into: out)
        case .q6_K: Q6_K.dequantize(source, blocks: blocks, into: out)
        case .q8_K: Q8_K.dequantize(source, blocks: blocks, into: out)
        case .iq4_nl: IQ4_NL.dequantize(source, blocks: blocks, into: out)
        case .iq4_xs: IQ4_XS.dequantize(source, blocks: blocks, into: out)
        default: preconditionFailure("\(dtype.rawValue) is not a block type")
        }
    }
}

/// Encoding into the block types bam-mix can write.
public enum BlockQuantization {
    /// The block types `quantize` accepts (gguf-py's NumPy quantisers exist for these; the
    /// k-quants and IQ4 need llama.cpp's search-based quantisers).
    public static let writable: [DType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1]

    public static func quantize(_ x: UnsafePointer<Float>, dtype: DType, blocks: Int, into out: UnsafeMutableRawPointer) {
        switch dtype {
        case .q8_0: Q8_0.quantize(x, blocks: blocks, into: out)
        case .q4_0: Q4_0.quantize(x, blocks: blocks, into: out)
        case .q4_1: Q4_1.quantize(x, blocks: blocks, into: out)
        case .q5_0: Q5_0.quantize(x, blocks: blocks, into: out)
        case .q5_1: Q5_1.quantize(x, blocks: blocks, into: out)
        default: preconditionFailure("bam-mix cannot quantise to \(dtype.rawValue)")
        }
    }
}
