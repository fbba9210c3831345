import BamModels
import BamTokenizers
import Foundation

/// Checks, before any byte is written, that the experts can be mixed: all dense, same
/// architecture, same tensors with the same shapes, same tokenizer, same dtype (or an explicit
/// --dtype). Errors name the first difference with both values and both paths.
enum MixValidation {
    static func validate(_ experts: [Checkpoint], options: MixOptions) throws -> DType {
        guard let first = experts.first else { throw BamError.usage("a mix needs at least one expert in \(MixField.experts)", expected: "1 or more", found: "0") }
        for (i, e) in experts.enumerated() where !e.config.isDense {
            throw BamError.mismatch("expert \(i) is already a mixture; mix dense experts — branch-trained copies of one seed", file: e.path.path,
                                    at: .key("model_type"), expected: "a dense model", found: e.config.family.rawValue)
        }
        let a = first.config
        for (i, e) in experts.enumerated().dropFirst() {
            let b = e.config
            let fields: [(String, String, String)] = [
                ("model_type", a.family.rawValue, b.family.rawValue),
                ("vocab_size", "\(a.vocabSize)", "\(b.vocabSize)"),
                ("hidden_size", "\(a.hidden)", "\(b.hidden)"),
                ("intermediate_size", "\(a.intermediate)", "\(b.intermediate)"),
                ("num_hidden_layers", "\(a.layers)", "\(b.layers)"),
                ("num_attention_heads", "\(a.heads)", "\(b.heads)"),
                ("num_key_value_heads", "\(a.kvHeads)", "\(b.kvHeads)"),
                ("head_dim", "\(a.headDim)", "\(b.headDim)"),
                ("rope_theta", "\(a.ropeTheta)", "\(b.ropeTheta)"),
                ("rope_scaling", "\(a.ropeScaling)", "\(b.ropeScaling)"),
                ("tie_word_embeddings", "\(a.tieEmbeddings)", "\(b.tieEmbeddings)"),
                ("attention_bias", "\(a.qkvBias)/\(a.oBias)", "\(b.qkvBias)/\(b.oBias)"),
                ("mlp_bias", "\(a.mlpBias)", "\(b.mlpBias)"),
                ("norm eps", "\(a.normEps)", "\(b.normEps)"),
                ("logit_scale", "\(a.logitScale)", "\(b.logitScale)"),
            ]
            for (key, x, y) in fields where x != y {
                throw BamError.mismatch("expert \(i) differs in architecture from expert 0 (\(first.path.path)); every expert must be a branch of the same seed",
                                        file: e.path.path, at: .key(key), expected: x, found: y)
            }
            for spec in a.parameterSpecs {
                let ia = first.store.info(spec.name), ib = e.store.info(spec.name)
                guard let ia, let ib else {
                    throw BamError.mismatch("expert \(i) and expert 0 (\(ia?.file ?? first.path.path)) disagree on whether the tensor exists", file: ib?.file ?? e.path.path,
                                            at: .tensor(spec.name), expected: ia == nil ? "missing" : "present", found: ib == nil ? "missing" : "present")
                }
                if ia.shape != ib.shape {
                    throw BamError.mismatch("expert \(i)'s shape differs from expert 0's (\(ia.file))", file: ib.file, at: .tensor(spec.name),
                                            expected: "\(ia.shape)", found: "\(ib.shape)")
                }
            }
        }
        // Tokenizer: identical bytes, unless the user says otherwise.
        let hashes = experts.map { $0.tokenizerIdentity() }
        for (i, h) in hashes.enumerated().dropFirst() where h != hashes[0] && !options.allowTokenizerMismatch {
            let describe = { (c: Checkpoint) -> String in
                switch c.tokenizerSource {
                case let .tokenizerJSON(url): url.path
                case .ggufVocabulary: "the vocabulary of \(c.path.path)"
                case .none: "\(c.path.path) (no tokenizer)"
                }
            }
            throw BamError.mismatch("tokenizers differ: \(describe(experts[0])) and \(describe(experts[i])) are not identical; experts must share a vocabulary",
                                    at: .expert(i), hint: "set \(MixField.allowTokenizerMismatch) only if you know the ids mean the same tokens")
        }
        return try MixDType.resolve(experts, requested: options.dtype, gguf: options.writesGGUF)
    }
}

/// The output dtype of a mix: the user's choice, else the widest type the experts' weights are
/// stored in that is not a block type (f32 over f16 / bf16; f16 and bf16 together give f32, which
/// holds both exactly), else bf16 when every expert is quantised (issue 14: quantised GGUF experts
/// are mixed in a float type the user can finetune).
public enum MixDType {
    /// What an HF (safetensors) mixture can hold; a GGUF mixture may also be written in the block
    /// types bam-mix quantises.
    public static let hfTypes: [DType] = [.f32, .f16, .bf16]

    public static func resolve(_ experts: [Checkpoint], requested: DType?, gguf: Bool) throws -> DType {
        if let d = requested {
            let allowed = gguf ? GGUFConverter.writableTypes : hfTypes
            guard allowed.contains(d) else {
                throw BamError.usage("\(MixField.dtype): a \(gguf ? "GGUF" : "HF (safetensors)") mixture cannot hold this type",
                                     expected: allowed.map { $0.rawValue.lowercased() }.joined(separator: ", "), found: d.rawValue.lowercased(),
                                     hint: gguf ? nil : "name the output *.gguf to write a quantised mixture")
            }
            return d
        }
        return widest(experts.map(weightTypes))
    }

    /// The types an expert's weights (tensors of 2 or more dimensions) are stored in. 1-D norms are
    /// left out: llama.cpp keeps them F32 whatever the file type.
    static func weightTypes(_ c: Checkpoint) -> Set<DType> {
        var all = Set<DType>(), weights = Set<DType>()
        for n in c.store.names {
            guard let i = c.store.info(n) else { continue }
            all.insert(i.dtype)
            if i.shape.count >= 2 { weights.insert(i.dtype) }
        }
        return weights.isEmpty ? all : weights
    }

    public static func widest(_ perExpert: [Set<DType>]) -> DType {
        let floats = perExpert.reduce(into: Set<DType>()) { $0.formUnion($1) }.filter { $0.isFloatingPoint && !$0.isQuantized }
        if floats.isEmpty { return .bf16 }
        if floats.contains(.f32) || floats.contains(.f64) { return .f32 }
        if floats == [.f16] { return .f16 }
        if floats == [.bf16] { return .bf16 }
        return .f32
    }
}
