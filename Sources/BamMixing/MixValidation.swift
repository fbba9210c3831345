import BamModels
import BamTokenizers
import Foundation

/// Checks, before any byte is written, that the experts can be mixed: all dense, same
/// architecture, same tensors with the same shapes, same tokenizer, same dtype (or an explicit
/// --dtype). Errors name the first difference with both values and both paths.
enum MixValidation {
    static func validate(_ experts: [Checkpoint], options: MixOptions) throws -> DType {
        guard let first = experts.first else { throw BamError.usage("mix needs at least one --expert") }
        for (i, e) in experts.enumerated() where !e.config.isDense {
            throw BamError.mismatch("expert \(i) (\(e.path.path)) is already a mixture (model_type \(e.config.family.rawValue)); mix dense experts — branch-trained copies of one seed")
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
                throw BamError.mismatch("experts differ in architecture: `\(key)` is \(x) in \(first.path.path) but \(y) in \(e.path.path) (expert \(i)); every expert must be a branch of the same seed")
            }
            for spec in a.parameterSpecs {
                let ia = first.store.info(spec.name), ib = e.store.info(spec.name)
                guard let ia, let ib else {
                    throw BamError.mismatch("tensor `\(spec.name)` is \(ia == nil ? "missing" : "present") in \(ia?.file ?? first.path.path) but \(ib == nil ? "missing" : "present") in \(ib?.file ?? e.path.path)")
                }
                if ia.shape != ib.shape {
                    throw BamError.mismatch("tensor `\(spec.name)` has shape \(ia.shape) in \(ia.file) but \(ib.shape) in \(ib.file)")
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
            throw BamError.mismatch("tokenizers differ: \(describe(experts[0])) and \(describe(experts[i])) are not identical; experts must share a vocabulary — pass --allow-tokenizer-mismatch only if you know the ids mean the same tokens")
        }
        // Dtype of the stored float tensors.
        if let d = options.dtype { return d }
        let dtypes = experts.map { c in Set(c.store.names.compactMap { c.store.info($0)?.dtype }) }
        for (i, d) in dtypes.enumerated() where d != dtypes[0] {
            throw BamError.mismatch("experts are stored in different dtypes: \(dtypes[0].map(\.rawValue).sorted()) in \(experts[0].path.path) but \(d.map(\.rawValue).sorted()) in \(experts[i].path.path); choose the output dtype with --dtype f32|f16|bf16")
        }
        guard dtypes[0].count == 1, let only = dtypes[0].first, only != .q8_0 else {
            if dtypes[0].contains(.q8_0) { return .f32 }
            throw BamError.mismatch("\(experts[0].path.path) mixes dtypes \(dtypes[0].map(\.rawValue).sorted()); choose the output dtype with --dtype")
        }
        return only
    }
}
