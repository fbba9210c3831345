import BamModels
import Foundation

/// How one output tensor is made from the experts.
enum Recipe {
    /// Expert `expert`'s tensor `source`, copied byte for byte (or cast exactly to the output dtype).
    case copy(expert: Int, source: String)
    /// Expert `expert`'s tensor times `scale` (expert weight scaling of a down projection).
    case scaledCopy(expert: Int, source: String, scale: Float)
    /// Expert `expert`'s tensor plus Gaussian noise of std `relative` x the tensor's RMS (upcycling),
    /// times `scale`.
    case noisyCopy(expert: Int, source: String, relative: Float, seed: UInt64, scale: Float)
    /// Drop-Upcycling: expert `expert`'s tensor with the intermediate dimensions `DropUpcycling`
    /// picks re-initialised, times `scale`.
    case dropUpcycled(expert: Int, source: String, drop: DropUpcycling, scale: Float)
    /// The weighted mean of every expert's `source` (docs/methods.md: non-expert parameters).
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
    /// Per layer, the factor every expert's down projection was multiplied by (1: none).
    var expertScales: [Double]
    /// The FFN routing in words ("top-1 of 4, not renormalised").
    var routingSummary: String
}

/// The FFN routing and router losses a mix writes (docs/mixing.md, "Router recipes").
struct ResolvedRecipe {
    var routing: FeedForwardRouting
    var losses: RouterLossRecipe

    /// The method's recipe, then the options' overrides.
    static func resolve(_ o: MixOptions, experts E: Int) throws -> ResolvedRecipe {
        let methodLosses: RouterLossRecipe = o.method == .bam ? .bam : .btx
        var r: ResolvedRecipe
        switch (o.method, o.ffnRouting) {
        case (.bam, .paper): r = ResolvedRecipe(routing: .topK(k: 1, renormalize: false), losses: .bam)
        case (.bam, .btx), (.btx, .paper), (.upcycle, .paper): r = ResolvedRecipe(routing: .topK(k: min(2, E), renormalize: true), losses: .btx)
        case (.btx, .btx), (.upcycle, .btx):
            throw BamError.usage("\(MixField.ffnRouting, "btx") puts BTX's FFN routing on a BAM mix; \(MixField.method, o.method.rawValue) routes that way already")
        case (_, .switch): r = ResolvedRecipe(routing: .switch(capacityFactor: o.capacityFactor ?? 1.5), losses: methodLosses)
        case (_, .sampleTop1): r = ResolvedRecipe(routing: .sampleTop1(gumbelDecay: o.gumbelDecay ?? 1e-4), losses: methodLosses)
        case (_, .soft): r = ResolvedRecipe(routing: .soft, losses: methodLosses)
        }
        if o.capacityFactor != nil && o.ffnRouting != .switch {
            throw BamError.usage("\(MixField.capacityFactor) applies to \(MixField.ffnRouting, "switch") only")
        }
        if o.gumbelDecay != nil && o.ffnRouting != .sampleTop1 {
            throw BamError.usage("\(MixField.gumbelDecay) applies to \(MixField.ffnRouting, "sample-top1") only")
        }
        if let c = o.capacityFactor, !(c > 0 && c.isFinite) {
            throw BamError.usage("\(MixField.capacityFactor)", expected: "a positive number", found: "\(c)")
        }
        if let g = o.gumbelDecay, !(g >= 0 && g.isFinite) {
            throw BamError.usage("\(MixField.gumbelDecay)", expected: "a number not negative", found: "\(g)")
        }
        switch r.routing {
        case let .topK(k, renormalize):
            let k = o.topK ?? k
            guard k >= 1, k <= E else {
                throw BamError.usage("\(MixField.topK) must be between 1 and the number of experts", expected: "1 ... \(E)", found: "\(k)")
            }
            r.routing = .topK(k: k, renormalize: o.renormalize ?? renormalize)
        case .switch, .sampleTop1, .soft:
            if o.topK != nil || o.renormalize != nil {
                throw BamError.usage("\(MixField.topK) and \(MixField.renormalize) apply to top-k routing; \(MixField.ffnRouting, o.ffnRouting.rawValue) sends each token to \(r.routing.expertsPerToken(experts: E)) expert(s) with its own gates")
            }
        }
        if let a = o.auxLoss { r.losses.auxLoss = a }
        if let a = o.routerAuxLossCoef { r.losses.auxLossCoef = a }
        if let z = o.routerZLossCoef { r.losses.zLossCoef = z }
        guard r.losses.auxLossCoef >= 0, r.losses.zLossCoef >= 0, r.losses.auxLossCoef.isFinite, r.losses.zLossCoef.isFinite else {
            throw BamError.usage("\(MixField.routerAuxLossCoef) and \(MixField.routerZLossCoef) must be finite and not negative",
                                 found: "\(r.losses.auxLossCoef) and \(r.losses.zLossCoef)")
        }
        return r
    }

    /// Experts per token (at most, for Switch).
    func topK(experts E: Int) -> Int { routing.expertsPerToken(experts: E) }

    /// Renormalised top-k gates (the one routing Mixtral expresses).
    var renormalize: Bool { if case .topK(_, true) = routing { true } else { false } }

    /// True when a token's gates always sum to 1 (renormalised, every expert chosen, sampled top-1's
    /// gate 1, soft's whole softmax); false for gates p_i of some experts (top-k, Switch).
    func gatesSumToOne(experts E: Int) -> Bool {
        switch routing {
        case let .topK(k, renormalize): renormalize || k == E
        case .switch: E == 1
        case .sampleTop1, .soft: true
        }
    }
}

/// 4.0 -> "4", 0.25 -> "0.25", 1.2345 -> "1.23".
func formatScale(_ x: Double) -> String {
    x == x.rounded() ? String(Int(x)) : String(format: "%.3g", x)
}

/// "x3.27" or "x3.27 (layers 3.22 ... 3.31)".
func formatScales(_ xs: [Double]) -> String {
    let lo = xs.min() ?? 1, hi = xs.max() ?? 1
    if formatScale(lo) == formatScale(hi) { return "x" + formatScale(lo) }
    return "x" + formatScale(xs.reduce(0, +) / Double(xs.count)) + " (layers " + formatScale(lo) + " ... " + formatScale(hi) + ")"
}

extension MixPlan {
    /// Builds the output config (Mixtral when Mixtral can express the result, else bam-mix's BAM
    /// format) and maps each of its tensors to a recipe.
    static func make(experts: [Checkpoint], options: MixOptions, routers: (ModelConfig) throws -> InitializedRouters) throws -> MixPlan {
        let seed = experts[0].config
        let E = options.method == .upcycle ? (options.numExperts ?? 0) : experts.count
        guard E >= 1 else {
            throw BamError.usage("\(MixField.method, "upcycle") needs \(MixField.numExperts)", expected: "at least 2", found: "\(E)")
        }
        var notes: [String] = []
        let isBAM = options.method == .bam
        let recipe = try ResolvedRecipe.resolve(options, experts: E)
        let topK = recipe.topK(experts: E), renormalize = recipe.renormalize
        if case let .factor(x) = options.expertScaling, !(x > 0 && x.isFinite) {
            throw BamError.usage("\(MixField.expertScaling): the factor", expected: "a positive number", found: "\(x)")
        }
        if seed.mlpBias {
            throw BamError.unsupported("the experts' MLPs have biases; MoE experts in Mixtral and BAM checkpoints have none — bam-mix cannot mix them without dropping the biases",
                                       file: experts[0].path.path, at: .key("mlp_bias"), expected: "false", found: "true")
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
        recipe.routing.write(to: &cfg, experts: E)
        recipe.losses.write(to: &cfg)
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
            MixtralRopeKeys.write(to: &cfg)
        } else {
            formatName = "BAM (bam-mix's format, docs/bam-format.md)"
            if !isBAM {
                notes.append("Mixtral cannot express these experts (\(seed.family.rawValue) with \(parallel ? "parallel blocks" : "sequential blocks")\(seed.qkvBias || seed.oBias ? ", attention biases" : "")\(seed.norm == .layer ? ", LayerNorm" : "")\(renormalize ? "" : recipe.routing.kind == .topK ? ", un-renormalised routing" : ", \(recipe.routing.kind.rawValue) routing")); writing the BAM format with one averaged attention (attention_experts \"dense\"), which bam-mix and transformers (with trust_remote_code) run")
            }
            cfg["architectures"] = .array(["BamForCausalLM"])
            cfg["model_type"] = "bam"
            // transformers loads the checkpoint with trust_remote_code through the model code that
            // Mixer writes beside it (BamModelCode).
            cfg["auto_map"] = .object(JSONObject(BamModelCode.autoMap.map { ($0.key, .string($0.value)) }))
            cfg["base_model_type"] = .string(seed.baseFamily.rawValue)
            cfg["router_renormalize"] = .bool(renormalize)
            cfg["parallel_block"] = .bool(parallel)
            if isBAM {
                cfg["attention_experts"] = .string(options.attention.rawValue)
                cfg["attention_routing"] = .string(options.attentionRouting.rawValue)
                if options.attentionRouting == .topK {
                    guard options.attentionTopK >= 1, options.attentionTopK <= E else {
                        throw BamError.usage("\(MixField.attentionTopK)", expected: "1 ... \(E)", found: "\(options.attentionTopK)")
                    }
                    cfg["num_attention_experts_per_tok"] = .int(options.attentionTopK)
                }
            } else {
                cfg["attention_experts"] = "dense"
            }
        }
        cfg["bam_sources"] = .array(experts.map { .string($0.path.path) })
        let out = try ModelConfig(json: cfg, file: "the mixed config")
        let initialized = try routers(out)
        let routerTensors = initialized.tensors

        // Expert weight scaling (ExpertScaleEstimate.swift; docs/mixing.md, "Mixtures usable at once").
        var gateMass = [Double](repeating: 1, count: out.layers)
        if !recipe.gatesSumToOne(experts: E) {
            let weights = options.method == .upcycle ? [1.0] : try Mixer.averagingWeights(options, count: experts.count)
            for l in 0..<out.layers {
                // The norm in front of the FFN (averaged like every norm of the mix).
                let name = out.parallelBlock ? ParameterNames.inputNorm(l) : ParameterNames.postAttentionNorm(l)
                let norm = Tensor(shape: [out.hidden])
                for (e, w) in weights.enumerated() {
                    let t = try experts[e].store.tensor(name)
                    for i in 0..<norm.count { norm.data[i] += Float(w) * t.data[i] }
                }
                let router = routerTensors[ParameterNames.moeRouter(l)]!
                if let rows = initialized.calibration?[l], !rows.isEmpty {
                    gateMass[l] = ExpertScaleEstimate.measuredGateMass(router: router, residuals: rows, normWeight: norm, norm: out.norm,
                                                                       eps: out.normEps, topK: topK)
                } else {
                    gateMass[l] = ExpertScaleEstimate.expectedGateMass(
                        router: router, inputLength: ExpertScaleEstimate.inputLength(normWeight: norm),
                        topK: topK, seed: options.seed &+ UInt64(l) &* 0x9E37_79B9)
                }
            }
        }
        let expertScales: [Double] = gateMass.map { m in
            switch options.expertScaling {
            case .none: 1
            case let .factor(x): x
            case .auto: recipe.gatesSumToOne(experts: E) ? 1 : 1 / m
            }
        }
        let routingSummary = "FFN \(recipe.routing.summary(experts: E)), \(recipe.losses.summary)"
            + (expertScales.allSatisfy { $0 == 1 } ? "" : ", experts scaled \(formatScales(expertScales))")
        // A trained model's FFN output is multiplied by the chosen gates; say so when the scale does
        // not make up for them (docs/mixing.md, "Mixtures usable at once").
        let effective = zip(gateMass, expertScales).map { $0 * $1 }
        if effective.contains(where: { abs($0 - 1) > 0.05 }) {
            notes.append("WARNING: FFN top-\(topK) without renormalisation multiplies each token's FFN output by its gate\(topK > 1 ? "s" : ""): the fresh routers' gates sum to about \(formatScales(gateMass).dropFirst()) per token, so with the experts scaled \(formatScales(expertScales)) the trained FFNs' outputs become about \(formatScales(effective).dropFirst()) times their size until the model is finetuned (--expert-scaling auto makes up for it; --check-text FILE measures the cost)")
        } else if !recipe.gatesSumToOne(experts: E) && options.router == .cheapEmbed && options.expertScaling == .auto {
            notes.append("note: --expert-scaling auto estimates the gates' mass for FFN inputs of random direction; cheap-embed routers are built from the embeddings of the prompts and can be sharper — measure with --check-text FILE, or route with --renormalize")
        }

        // An expert's tensor comes from the same projection of the expert model's one attention / FFN.
        func denseSource(_ key: ParameterKey) -> String {
            switch key {
            case let .attention(l, _, p, k): ParameterKey.attention(layer: l, expert: nil, p, k).hfName
            case let .feedForward(l, _, p, k): ParameterKey.feedForward(layer: l, expert: nil, p, k).hfName
            default: key.hfName
            }
        }
        var tensors: [PlannedTensor] = []
        for spec in out.parameterSpecs {
            let recipe: Recipe
            switch spec.key {
            case .attentionRouter, .ffnRouter:
                guard let t = routerTensors[spec.name] else { throw BamError.usage("internal: no router for \(spec.name)") }
                recipe = .computed(t)
            case let .feedForward(layer, e?, p, _):
                let source = denseSource(spec.key)
                let part: DropUpcycling.Part = switch p { case .gate: .gate; case .up: .up; case .down: .down }
                // Expert weight scaling multiplies the down projection only: SwiGLU's output is
                // linear in w2, so the expert's output is scaled exactly.
                let scale = Float(p == .down ? expertScales[layer] : 1)
                if options.method == .upcycle && options.dropRatio > 0 {
                    let drop = DropUpcycling(ratio: options.dropRatio, intermediate: out.intermediate, part: part,
                                             seed: options.seed, layer: layer, expert: e)
                    recipe = .dropUpcycled(expert: 0, source: source, drop: drop, scale: scale)
                } else if options.method == .upcycle && options.upcycleNoise > 0 {
                    // Mixtral's w1, w2, w3 number the noise streams of an expert's three matrices.
                    let offset = UInt64(layer * 1000 + e * 10) + part.noiseIndex
                    recipe = .noisyCopy(expert: 0, source: source, relative: options.upcycleNoise,
                                        seed: options.seed &+ offset, scale: scale)
                } else {
                    let from = options.method == .upcycle ? 0 : e
                    recipe = scale == 1 ? .copy(expert: from, source: source) : .scaledCopy(expert: from, source: source, scale: scale)
                }
            case let .attention(_, e?, _, _):
                recipe = .copy(expert: e, source: denseSource(spec.key))
            default:
                // Embeddings, norms, lm_head, dense attention, shared K/V: the (weighted) average.
                recipe = .average(source: spec.name)
            }
            tensors.append(PlannedTensor(spec: spec, recipe: recipe))
        }
        return MixPlan(config: cfg, outputConfig: out, tensors: tensors, formatName: formatName, notes: notes,
                       expertScales: expertScales, routingSummary: routingSummary)
    }
}
