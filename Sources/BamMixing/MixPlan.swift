import BamModels
import Foundation

/// How one output tensor is made from the experts.
enum Recipe {
    /// Expert `expert`'s tensor `source`, copied byte for byte (or cast exactly to the output dtype).
    case copy(expert: Int, source: String)
    /// Expert `expert`'s tensor plus Gaussian noise of std `relative` x the tensor's RMS (upcycling).
    case noisyCopy(expert: Int, source: String, relative: Float, seed: UInt64)
    /// The weighted mean of every expert's `source` (methods.md: non-expert parameters).
    case average(source: String)
    /// A tensor computed in memory (routers).
    case computed(Tensor)
}

struct PlannedTensor {
    var spec: ParameterSpec
    var recipe: Recipe
}

/// The whole output: its config and, for every tensor of that config, where it comes from.
struct MixPlan {
    var config: JSONObject
    var outputConfig: ModelConfig
    var tensors: [PlannedTensor]
    /// "Mixtral" or "BAM"; says which format was written.
    var formatName: String
    var notes: [String]
}

extension MixPlan {
    /// Builds the output config (Mixtral when Mixtral can express the result, else bam-mix's BAM
    /// format) and maps each of its tensors to a recipe.
    static func make(experts: [Checkpoint], options: MixOptions, routers: (ModelConfig) throws -> [String: Tensor]) throws -> MixPlan {
        let seed = experts[0].config
        let E = options.method == .upcycle ? (options.numExperts ?? 0) : experts.count
        guard E >= 1 else { throw BamError.usage("--method upcycle needs --num-experts N (N >= 2)") }
        var notes: [String] = []
        let isBAM = options.method == .bam
        let topK = options.topK ?? (isBAM ? 1 : 2)
        guard topK >= 1, topK <= E else { throw BamError.usage("--top-k \(topK) must be between 1 and the number of experts (\(E))") }
        let renormalize = options.renormalize ?? !isBAM
        if seed.mlpBias {
            throw BamError.unsupported("\(experts[0].path.path): the experts' MLPs have biases (mlp_bias); MoE experts in Mixtral and BAM checkpoints have none — bam-mix cannot mix them without dropping the biases")
        }
        let parallel = options.block == .parallel || seed.parallelBlock
        if options.block == .parallel && !seed.parallelBlock {
            notes.append("WARNING: --block parallel turns the experts' sequential blocks into parallel ones (the post-attention norms are dropped): the mixed model computes a different function from its experts until it is finetuned")
        }
        // Mixtral expresses exactly: Llama/Mistral-style sequential blocks, RMSNorm, rotate-half RoPE,
        // no biases, renormalised top-k FFN routing, one attention.
        let mixtralCompatible = !isBAM && [.llama, .mistral].contains(seed.family) && !parallel && !seed.qkvBias && !seed.oBias
            && seed.norm == .rms && renormalize && seed.logitScale == 1
        var cfg = seed.raw
        for k in ["auto_map", "transformers_version", "_name_or_path", "bam_sources"] { cfg[k] = nil }
        cfg["num_local_experts"] = .int(E)
        cfg["num_experts_per_tok"] = .int(topK)
        cfg["router_aux_loss_coef"] = .double(options.routerAuxLossCoef)
        cfg["output_router_logits"] = false
        cfg["router_jitter_noise"] = 0.0
        if let d = options.dtype { cfg["torch_dtype"] = nil; cfg["dtype"] = .string(d.torchName) }
        let formatName: String
        if mixtralCompatible {
            formatName = "Mixtral (MixtralForCausalLM)"
            cfg["architectures"] = .array(["MixtralForCausalLM"])
            cfg["model_type"] = "mixtral"
            for k in ["attention_bias", "mlp_bias", "pretraining_tp"] { cfg[k] = nil }
            if cfg["sliding_window"] == nil { cfg["sliding_window"] = .null }
        } else {
            formatName = "BAM (bam-mix's format, docs/bam-format.md)"
            if !isBAM {
                notes.append("Mixtral cannot express these experts (\(seed.family.rawValue) with \(parallel ? "parallel blocks" : "sequential blocks")\(seed.qkvBias || seed.oBias ? ", attention biases" : "")\(seed.norm == .layer ? ", LayerNorm" : "")\(renormalize ? "" : ", un-renormalised routing")); writing the BAM format with one averaged attention (attention_experts \"dense\"), which bam-mix and transformers (with trust_remote_code) run")
            }
            cfg["architectures"] = .array(["BamForCausalLM"])
            cfg["model_type"] = "bam"
            // transformers loads the checkpoint with trust_remote_code through the model code that
            // Mixer writes beside it (BamModelCode).
            cfg["auto_map"] = .object(JSONObject(BamModelCode.autoMap.map { ($0.key, .string($0.value)) }))
            cfg["base_model_type"] = .string(seed.baseFamily.rawValue)
            cfg["router_renormalize"] = .bool(renormalize)
            cfg["router_z_loss_coef"] = .double(options.routerZLossCoef)
            cfg["parallel_block"] = .bool(parallel)
            if isBAM {
                cfg["attention_experts"] = .string(options.attention.rawValue)
                cfg["attention_routing"] = .string(options.attentionRouting.rawValue)
                if options.attentionRouting == .topK {
                    guard options.attentionTopK >= 1, options.attentionTopK <= E else {
                        throw BamError.usage("--attention-top-k \(options.attentionTopK) must be between 1 and \(E)")
                    }
                    cfg["num_attention_experts_per_tok"] = .int(options.attentionTopK)
                }
            } else {
                cfg["attention_experts"] = "dense"
            }
        }
        cfg["bam_sources"] = .array(experts.map { .string($0.path.path) })
        let out = try ModelConfig(json: cfg, file: "the mixed config")
        let routerTensors = try routers(out)

        // Dense source names of the MoE / MoA tensors.
        func denseAttentionName(_ spec: ParameterSpec) -> String {
            // model.layers.L.self_attn.experts.J.q_proj.weight -> model.layers.L.self_attn.q_proj.weight
            spec.name.replacingOccurrences(of: ".experts.\(spec.expert!).", with: ".")
        }
        func denseMLPName(_ spec: ParameterSpec) -> String {
            let w = spec.name.split(separator: ".").dropLast().last!   // w1, w2, w3
            let p = ["w1": "gate", "w3": "up", "w2": "down"][String(w)]!
            return ParameterNames.mlp(spec.layer!, p)
        }
        var tensors: [PlannedTensor] = []
        for spec in out.parameterSpecs {
            let recipe: Recipe
            switch spec.role {
            case .attentionRouter, .ffnRouter:
                guard let t = routerTensors[spec.name] else { throw BamError.usage("internal: no router for \(spec.name)") }
                recipe = .computed(t)
            case .feedForward where spec.expert != nil:
                let e = spec.expert!
                if options.method == .upcycle {
                    recipe = options.upcycleNoise > 0
                        ? .noisyCopy(expert: 0, source: denseMLPName(spec), relative: options.upcycleNoise,
                                     seed: options.seed &+ UInt64(spec.layer! * 1000 + e * 10 + (spec.name.hasSuffix("w1.weight") ? 1 : spec.name.hasSuffix("w2.weight") ? 2 : 3)))
                        : .copy(expert: 0, source: denseMLPName(spec))
                } else {
                    recipe = .copy(expert: e, source: denseMLPName(spec))
                }
            case .attention where spec.expert != nil, .attentionBias where spec.expert != nil:
                recipe = .copy(expert: spec.expert!, source: denseAttentionName(spec))
            default:
                // Embeddings, norms, lm_head, dense attention, shared K/V: the (weighted) average.
                recipe = .average(source: spec.name)
            }
            tensors.append(PlannedTensor(spec: spec, recipe: recipe))
        }
        return MixPlan(config: cfg, outputConfig: out, tensors: tensors, formatName: formatName, notes: notes)
    }
}
