import Foundation

/// How a weight matrix's values are stored, which decides the kernels that read it.
public enum WeightStorage: Sendable, Hashable, CustomStringConvertible {
    case f32, f16, bf16
    /// ggml's Q8_0 (blocks of 32: a half scale and 32 int8). Decode quantizes the activations to
    /// Q8_0 as well and multiplies in integers, as llama.cpp does.
    case q8_0
    /// ggml's 4- and 5-bit blocks of 32 (Q4_0, Q4_1, Q5_0, Q5_1) and its k-quant super-blocks of
    /// 256 that llama-quantize's Q2_K, Q3_K_*, Q4_K_M, Q5_K_M and Q6_K files are made of: decode
    /// multiplies them by activations quantized to Q8_0 (blocks of 32) or Q8_K (Q2_K..Q6_K) in
    /// integers, as llama.cpp does.
    case q4_0, q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K, q6_K
    /// ggml's non-linear 4-bit types (codes index a 16-level codebook): IQ4_NL with Q8_0
    /// activations, IQ4_XS (super-blocks of 256, the imatrix quantizations' common 4-bit type)
    /// with Q8_K ones.
    case iq4_nl, iq4_xs
    /// Any other floating type that `DTypeConversion.toFloat32` decodes (ggml's block types, f64):
    /// rows are dequantized to float32 when used and then take the f32 paths. A type that earns
    /// fused kernels of its own becomes a case above.
    case dequantized(DType)

    /// The storage for a stored dtype; integer dtypes are not weights.
    public init(_ dtype: DType) throws {
        switch dtype {
        case .f32: self = .f32
        case .f16: self = .f16
        case .bf16: self = .bf16
        case .q8_0: self = .q8_0
        case .q4_0: self = .q4_0
        case .q4_1: self = .q4_1
        case .q5_1: self = .q5_1
        case .q5_0: self = .q5_0
        case .q2_K: self = .q2_K
        case .q3_K: self = .q3_K
        case .q4_K: self = .q4_K
        case .q5_K: self = .q5_K
        case .iq4_nl: self = .iq4_nl
        case .iq4_xs: self = .iq4_xs
        case .q6_K: self = .q6_K
        default:
            guard dtype.isFloatingPoint else {
                throw BamError.unsupported("a weight matrix stored as \(dtype.rawValue): expected a floating-point or block-quantized type (F32, F16, BF16, Q8_0, ...)")
            }
            self = .dequantized(dtype)
        }
    }

    public var dtype: DType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_1: .q5_1
        case .q5_0: .q5_0
        case .q2_K: .q2_K
        case .q3_K: .q3_K
        case .q4_K: .q4_K
        case .q5_K: .q5_K
        case .iq4_nl: .iq4_nl
        case .iq4_xs: .iq4_xs
        case .q6_K: .q6_K
        case let .dequantized(d): d
        }
    }

    public var description: String { dtype.rawValue }
}

/// A linear layer's weight W (rows = OC outputs, columns = C inputs), row-major, kept in the type
/// it is stored in: f32, f16, bf16, Q8_0, or another block type read through a row dequantizer.
/// The bytes are either borrowed from a file mapping (zero copy; the owner keeps the mapping
/// alive) or owned (a conversion made at load). `linearForward(_:_:_:_:T:)` multiplies by it.
///
/// A class, as `Tensor` is: weights are shared between the model, the mixer and writers without
/// copies, and immutable once made.
public final class WeightMatrix: @unchecked Sendable {
    public let rows: Int       // OC
    public let columns: Int    // C
    public let storage: WeightStorage
    /// Bytes per row (rows are contiguous: row r starts at `data + r * rowBytes`).
    public let rowBytes: Int
    public let data: UnsafeRawPointer
    private let backing: Backing

    private enum Backing {
        case borrowed(AnyObject)
        case owned(UnsafeMutableRawPointer)
    }

    /// Borrows `data` (rows * columns values of `dtype`), which must stay valid while `owner`
    /// lives. f32 data must be 4-byte aligned, since sgemm reads it as floats; the other types are
    /// read with unaligned loads.
    public init(rows: Int, columns: Int, dtype: DType, borrowing data: UnsafeRawPointer, owner: AnyObject) throws {
        let storage = try WeightStorage(dtype)
        self.rowBytes = try Self.rowBytes(rows: rows, columns: columns, storage: storage)
        if storage == .f32, Int(bitPattern: data) % MemoryLayout<Float>.alignment != 0 {
            throw BamError.unsupported("an F32 weight matrix at a misaligned address (\(data)): sgemm reads it as floats; copy it with init(rows:columns:dtype:copying:)")
        }
        self.rows = rows
        self.columns = columns
        self.storage = storage
        self.data = data
        self.backing = .borrowed(owner)
        try validateDequantizer()
    }

    /// An owned copy of `data` (rows * columns values of `dtype`).
    public init(rows: Int, columns: Int, dtype: DType, copying data: UnsafeRawPointer) throws {
        let storage = try WeightStorage(dtype)
        self.rowBytes = try Self.rowBytes(rows: rows, columns: columns, storage: storage)
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: max(rows * rowBytes, 1), alignment: 64)
        bytes.copyMemory(from: data, byteCount: rows * rowBytes)
        self.rows = rows
        self.columns = columns
        self.storage = storage
        self.data = UnsafeRawPointer(bytes)
        self.backing = .owned(bytes)
        try validateDequantizer()
    }

    /// Owned, uninitialised storage that `fill` writes (conversions).
    private init(rows: Int, columns: Int, storage: WeightStorage, fill: (UnsafeMutableRawPointer, Int) throws -> Void) throws {
        self.rowBytes = try Self.rowBytes(rows: rows, columns: columns, storage: storage)
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: max(rows * rowBytes, 1), alignment: 64)
        do { try fill(bytes, rowBytes) } catch {
            bytes.deallocate()
            throw error
        }
        self.rows = rows
        self.columns = columns
        self.storage = storage
        self.data = UnsafeRawPointer(bytes)
        self.backing = .owned(bytes)
        try validateDequantizer()
    }

    /// A 2-D float32 tensor as an f32 weight, borrowed (the tensor stays alive with it).
    public convenience init(_ tensor: Tensor) throws {
        guard tensor.shape.count == 2 else {
            throw BamError.mismatch("a weight matrix needs a 2-D tensor; found shape \(tensor.shape)")
        }
        try self.init(rows: tensor.shape[0], columns: tensor.shape[1], dtype: .f32, borrowing: tensor.data, owner: tensor)
    }

    deinit {
        if case let .owned(bytes) = backing { bytes.deallocate() }
    }

    private static func rowBytes(rows: Int, columns: Int, storage: WeightStorage) throws -> Int {
        guard rows >= 0, columns >= 0 else { throw BamError.mismatch("a weight matrix of \(rows) x \(columns)") }
        guard let b = storage.dtype.byteCount(elements: columns), rows.multipliedReportingOverflow(by: b).overflow == false else {
            throw BamError.mismatch("a \(storage) weight matrix with \(columns) columns: a row must be a whole number of the type's blocks (Q8_0: 32 values); store this matrix as F32, F16 or BF16")
        }
        return b
    }

    /// A dequantized type must decode (DTypeConversion may not know it yet): tried once on the
    /// first row here, so the kernels' later calls cannot fail.
    private func validateDequantizer() throws {
        guard case let .dequantized(dtype) = storage, rows > 0, columns > 0 else { return }
        let row = UnsafeMutablePointer<Float>.allocate(capacity: columns)
        defer { row.deallocate() }
        do {
            try DTypeConversion.toFloat32(data, dtype: dtype, count: columns, into: row)
        } catch {
            throw BamError.unsupported("a weight matrix stored as \(dtype.rawValue): \(error); convert it to F32, BF16 or Q8_0 at load")
        }
    }

    public var isBorrowed: Bool {
        if case .borrowed = backing { return true }
        return false
    }

    /// The bytes this matrix keeps resident: its stored size, whether mapped or owned.
    public var residentBytes: Int { rows * rowBytes }

    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    /// The f32 data (storage .f32 only).
    var floats: UnsafePointer<Float> { data.assumingMemoryBound(to: Float.self) }

    /// Rows `range` widened or dequantized into `out` (range.count * columns floats, row-major):
    /// the panel conversion of prefill, SIMD through the active kernel family.
    public func rowsToFloat32(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let count = range.count * columns
        let src = row(range.lowerBound)
        let k = WeightKernels.active
        switch storage {
        case .f32: out.update(from: floats + range.lowerBound * columns, count: count)
        case .f16: k.f16ToF32(out, src, count: count)
        case .bf16: k.bf16ToF32(out, src, count: count)
        case .q8_0: k.q8_0ToF32(out, src, count: count)
        case .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs, .dequantized:
            // Rows are contiguous whole blocks, and a type without a kernel was tried at init:
            // the decoder cannot throw here.
            try! DTypeConversion.toFloat32(src, dtype: storage.dtype, count: count, into: out)
        }
    }

    /// The whole matrix as an owned float32 tensor (rows, columns).
    public func toTensor() -> Tensor {
        let t = Tensor(shape: [rows, columns])
        if rows > 0 && columns > 0 { rowsToFloat32(0..<rows, into: t.data) }
        return t
    }

    /// This matrix stored as `dtype` (itself when it already is): widened, narrowed (round to
    /// nearest even) or quantized row by row on every worker. Conversion to a block type other
    /// than Q8_0 goes through `DTypeConversion.fromFloat32`, which throws for types it cannot
    /// write.
    public func converted(to dtype: DType) throws -> WeightMatrix {
        let target = try WeightStorage(dtype)
        if target == storage { return self }
        let columns = self.columns
        return try WeightMatrix(rows: rows, columns: columns, storage: target) { out, outRowBytes in
            let failure = ConversionFailure()
            let dst = SendableRawPointer(UnsafeRawPointer(out))
            BLASThreads.parallelRanges(rows, minimumPerChunk: max(1, (1 << 16) / max(columns, 1))) { range in
                let k = WeightKernels.active
                let panel = UnsafeMutablePointer<Float>.allocate(capacity: range.count * columns)
                defer { panel.deallocate() }
                self.rowsToFloat32(range, into: panel)
                let o = UnsafeMutableRawPointer(mutating: dst.pointer) + range.lowerBound * outRowBytes
                let n = range.count * columns
                switch target {
                case .f32: o.copyMemory(from: panel, byteCount: n * 4)
                case .f16: k.f32ToF16(o, panel, count: n)
                case .bf16: k.f32ToBF16(o, panel, count: n)
                case .q8_0: k.quantizeQ8_0(o, panel, count: n)
                case .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs, .dequantized:
                    let d = target.dtype
                    do { try DTypeConversion.fromFloat32(panel, count: n, dtype: d, into: o) } catch { failure.record(error) }
                }
            }
            if let error = failure.error {
                throw BamError.unsupported("converting a weight matrix to \(dtype.rawValue): \(error)")
            }
        }
    }

    /// The first error of a conversion run on several workers.
    private final class ConversionFailure: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var error: Error?
        func record(_ e: Error) {
            lock.lock(); defer { lock.unlock() }
            if error == nil { error = e }
        }
    }
}

extension WeightMatrix: CustomStringConvertible {
    public var description: String { "WeightMatrix[\(rows), \(columns)] \(storage)\(isBorrowed ? " (borrowed)" : "")" }
}
