import BamFormats
import BamTensors
import Foundation

// The weights inference runs on: every matrix a `WeightMatrix` in the type decode and prefill
// read it in, norms/biases/routers float32. Memory is then the file's size (or the chosen type's),
// not a float32 copy of it: f32, f16, bf16 and Q8_0 matrices are borrowed from the mapping.

/// The matrices of an inference model, in the type the kernels read them in.
public typealias InferenceWeights = ModelWeights<WeightMatrix>

/// Which type an inference model keeps its matrices in (`--weights`).
public enum WeightLoading: Sendable, Equatable, CustomStringConvertible {
    /// Each matrix as the file stores it, used in place from the mapping (zero copy): F32, F16,
    /// BF16, Q8_0 and the 2-6-bit block types of llama-quantize's files (Q4_0, Q4_1, Q5_0, Q5_1,
    /// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS) through their fused kernels (decode quantizes
    /// the activations per block, as llama.cpp does; prefill multiplies exactly dequantized float32
    /// panels; docs/performance.md, "Block-quantized weights").
    case stored
    /// Every matrix converted at load to this type (F32, F16, BF16 or Q8_0), e.g. an f32
    /// checkpoint run as Q8_0.
    case converted(DType)

    /// The types `converted` accepts: those with fused decode kernels.
    public static let kernelTypes: [DType] = [.f32, .bf16, .f16, .q8_0]

    /// Parses `--weights`: "stored" or one of `kernelTypes` (f32, bf16, f16, q8_0; any case).
    public init(parsing text: String) throws {
        if text.lowercased() == "stored" {
            self = .stored
            return
        }
        guard let d = Self.kernelTypes.first(where: { $0.rawValue.lowercased() == text.lowercased() }) else {
            throw BamError.usage("--weights \(text): expected stored, f32, bf16, f16 or q8_0")
        }
        self = .converted(d)
    }

    /// The type a matrix stored as `dtype` is kept in.
    public func residentType(stored dtype: DType) -> DType {
        switch self {
        case let .converted(d): d
        case .stored: dtype
        }
    }

    public var description: String {
        switch self {
        case .stored: "stored"
        case let .converted(d): d.rawValue.lowercased()
        }
    }
}

extension InferenceWeights {
    /// Loads the model's matrices as `loading` says (borrowed from `store`'s mapping when the type
    /// is kept, which the matrices then keep alive) and every other parameter as float32; checked
    /// against the config as `TransformerWeights.load` is.
    public static func load(config: ModelConfig, store: any TensorStore, loading: WeightLoading = .stored) throws -> InferenceWeights {
        let store = try checkedStore(config: config, store: store)
        var matrices: [ParameterKey: WeightMatrix] = [:]
        var vectors: [ParameterKey: Tensor] = [:]
        for spec in config.parameterSpecs {
            if spec.isModelMatrix {
                // The embedding is gathered a row per token: its pages fault in as rows are used
                // (its whole table would add its size to the resident memory), unless it is also
                // the output head.
                let whole = spec.role != .embedding || config.tieEmbeddings
                matrices[spec.key] = try loadMatrix(spec, store: store, loading: loading, prefault: whole)
            } else {
                vectors[spec.key] = try store.tensor(spec.name)
            }
        }
        return assemble(config: config, matrices: matrices, vectors: vectors)
    }

    /// One matrix: borrowed when kept in its stored type (its pages mapped now when `prefault`,
    /// see `prefaultMappedPages`), else converted (row panels on every worker) into an owned copy,
    /// after which the source pages are released.
    static func loadMatrix(_ spec: ParameterSpec, store: any TensorStore, loading: WeightLoading,
                           prefault: Bool) throws -> WeightMatrix {
        guard let info = store.info(spec.name), spec.shape.count == 2 else {
            throw BamError.format(store.location, "missing matrix `\(spec.name)`")
        }
        let raw = try store.bytes(spec.name)
        let (rows, columns) = (spec.shape[0], spec.shape[1])
        guard let expected = info.dtype.byteCount(elements: rows * columns), raw.count == expected else {
            throw BamError.format(info.file, "tensor `\(spec.name)` (\(info.dtype.rawValue), shape \(info.shape)) has \(raw.count) bytes; expected \(info.dtype.byteCount(elements: rows * columns).map(String.init) ?? "whole blocks")")
        }
        let base = raw.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!
        let stored: WeightMatrix
        do {
            if info.dtype == .f32, Int(bitPattern: base) % MemoryLayout<Float>.alignment != 0 {
                // safetensors only aligns its data section to 8 bytes by convention; a misaligned
                // f32 tensor is copied (sgemm reads floats).
                stored = try WeightMatrix(rows: rows, columns: columns, dtype: .f32, copying: base)
            } else {
                stored = try WeightMatrix(rows: rows, columns: columns, dtype: info.dtype, borrowing: base,
                                          owner: store.bytesOwner(spec.name))
            }
        } catch let e as BamError {
            throw BamError(e.kind, "\(info.file): tensor `\(spec.name)`: \(e.message)")
        }
        let target = loading.residentType(stored: info.dtype)
        if target == info.dtype {
            if prefault && stored.isBorrowed { prefaultMappedPages(raw) }
            return stored
        }
        let converted: WeightMatrix
        do {
            converted = try stored.converted(to: target)
        } catch let e as BamError {
            throw BamError(e.kind, "\(info.file): tensor `\(spec.name)` as \(target.rawValue): \(e.message)")
        }
        store.release(spec.name)
        return converted
    }

    /// Bytes the weights keep resident: every matrix at its stored size (mapped or owned) and the
    /// float32 vectors.
    public var residentBytes: Int {
        matrices.reduce(0) { $0 + $1.residentBytes } + vectors.reduce(0) { $0 + $1.byteCount }
    }
}

extension TransformerWeights {
    /// The same weights as `WeightMatrix`es borrowing these float32 tensors (zero copy; a tied
    /// lm_head stays the embedding's object), for running weights made in memory (training,
    /// tests, benchmarks).
    public func borrowedAsMatrices(config: ModelConfig) -> InferenceWeights {
        var matrices: [ParameterKey: WeightMatrix] = [:]
        var vectors: [ParameterKey: Tensor] = [:]
        for (spec, t) in namedParameters(config: config) {
            if spec.isModelMatrix {
                // The table's matrices are 2-D and a Tensor's storage is float-aligned, so
                // borrowing cannot fail.
                matrices[spec.key] = try! WeightMatrix(t)
            } else {
                vectors[spec.key] = t
            }
        }
        return .assemble(config: config, matrices: matrices, vectors: vectors)
    }
}
