import BamTensors
import Foundation

/// Architecture families bam-mix runs. The `model_type` of config.json picks one.
public enum ModelFamily: String, Sendable, CaseIterable {
    case llama, mistral, qwen2, cohere, mixtral, bam
}

public enum NormKind: String, Sendable { case rms, layer }

/// BAM attention experts (docs/methods.md): each expert owns Q, K, V, O, or only Q and O with one K/V
/// projection shared by all.
public enum AttentionExpertKind: String, Sendable { case expertKV = "expert_kv", sharedKV = "shared_kv" }

/// BAM attention routing: every expert with a dense softmax (the paper's soft MoA, the default),
/// or the top-k experts per token with the softmax taken over the chosen ones.
public enum AttentionRouting: String, Sendable { case soft, topK = "top_k" }

/// How an FFN mixture picks experts for a token and weighs their outputs (`ffn_routing` and its
/// parameters in config.json; RouterRecipe.swift). Inference and training switch on this value
/// (BamModels/Routing.swift); the kernels are BamTensors' Router.swift and RouterVariants.swift.
public enum FeedForwardRouting: Sendable, Equatable {
    /// softmax -> the K most probable experts. `renormalize`: the chosen probabilities divided by
    /// their sum (Mixtral, BTX); otherwise used as they are (Switch, BAM).
    case topK(k: Int, renormalize: Bool)
    /// Switch top-1 (gate p_i) with at most ceil(capacityFactor * N / E) tokens per expert in a
    /// forward pass of N tokens; overflow tokens skip the FFN (residual only). BTX's ablation, 1.5.
    case `switch`(capacityFactor: Double)
    /// Top-1 sampled by Gumbel-softmax while training (temperature max(0.5, exp(-gumbelDecay * step)),
    /// hard gate 1 with the relaxed sample's gradient), argmax with gate 1 at inference. BTX's ablation, r = 1e-4.
    case sampleTop1(gumbelDecay: Double)
    /// Every expert, weighted by the dense softmax.
    case soft

    /// The config.json name (`ffn_routing`).
    public var kind: FFNRouting {
        switch self {
        case .topK: .topK
        case .switch: .switch
        case .sampleTop1: .sampleTop1
        case .soft: .soft
        }
    }

    /// Experts each token is sent to (at most: Switch drops overflow tokens).
    public func expertsPerToken(experts E: Int) -> Int {
        switch self {
        case let .topK(k, _): k
        case .switch, .sampleTop1: 1
        case .soft: E
        }
    }

    /// Sampled top-1's Gumbel-softmax temperature at optimiser step `step`: max(0.5, exp(-r step)).
    public static func gumbelTemperature(decay r: Double, step: Int) -> Float {
        Float(max(0.5, exp(-r * Double(step))))
    }

    /// "top-2 of 4 renormalised", "Switch top-1 of 4, capacity factor 1.5", ...
    public func summary(experts E: Int) -> String {
        switch self {
        case let .topK(k, renormalize):
            "top-\(k) of \(E)\(renormalize ? " renormalised" : k == E ? "" : " not renormalised")"
        case let .switch(c): "Switch top-1 of \(E), capacity factor \(c)"
        case let .sampleTop1(r): "sampled top-1 of \(E) (Gumbel-softmax, decay \(r); argmax at inference)"
        case .soft: "soft (all \(E) experts, softmax gates)"
        }
    }

    /// The config.json keys of this routing: `ffn_routing`, `num_experts_per_tok` and the
    /// parameters of the kind (keys of other kinds are removed).
    public func write(to config: inout JSONObject, experts E: Int) {
        config[RouterRecipeKeys.routing] = .string(kind.rawValue)
        config["num_experts_per_tok"] = .int(expertsPerToken(experts: E))
        config[RouterRecipeKeys.capacityFactor] = nil
        config[RouterRecipeKeys.gumbelDecay] = nil
        switch self {
        case .topK: break
        case let .switch(c): config[RouterRecipeKeys.capacityFactor] = .double(c)
        case let .sampleTop1(r): config[RouterRecipeKeys.gumbelDecay] = .double(r)
        case .soft: break
        }
    }
}

/// The FFN mixture-of-experts of a Mixtral/BTX or BAM layer, with its router recipe
/// (RouterRecipe.swift; docs/bam-format.md).
public struct MoEConfig: Sendable, Equatable {
    public var experts: Int            // E
    public var routing: FeedForwardRouting
    /// The balancing loss `router_aux_loss_coef` weighs (`router_aux_loss_kind`; absent: btx, what
    /// bam-mix finetune and the BAM reference used before recipes were stored).
    public var auxLoss: RouterAuxLoss
    public var routerAuxLossCoef: Double
    public var routerZLossCoef: Double
    public var routerJitterNoise: Double

    public init(experts: Int, routing: FeedForwardRouting, auxLoss: RouterAuxLoss = .btx, routerAuxLossCoef: Double = 0.01,
                routerZLossCoef: Double = 0.001, routerJitterNoise: Double = 0) {
        self.experts = experts
        self.routing = routing
        self.auxLoss = auxLoss
        self.routerAuxLossCoef = routerAuxLossCoef
        self.routerZLossCoef = routerZLossCoef
        self.routerJitterNoise = routerJitterNoise
    }

    /// Top-k routing (`renormalize` as in `FeedForwardRouting.topK`).
    public init(experts: Int, topK: Int, renormalize: Bool, auxLoss: RouterAuxLoss = .btx, routerAuxLossCoef: Double = 0.01,
                routerZLossCoef: Double = 0.001, routerJitterNoise: Double = 0) {
        self.init(experts: experts, routing: .topK(k: topK, renormalize: renormalize), auxLoss: auxLoss,
                  routerAuxLossCoef: routerAuxLossCoef, routerZLossCoef: routerZLossCoef, routerJitterNoise: routerJitterNoise)
    }

    /// K: experts per token (at most, for Switch).
    public var topK: Int { routing.expertsPerToken(experts: experts) }
    /// Whether the chosen gates are renormalised (top-k routing's flag; false for the others, whose
    /// gates are p_i, 1 or the whole softmax).
    public var renormalize: Bool {
        switch routing {
        case let .topK(_, renormalize): renormalize
        case .switch, .sampleTop1, .soft: false
        }
    }
}

/// The soft mixture of attention experts of a BAM layer.
public struct MoAConfig: Sendable, Equatable {
    public var experts: Int
    public var kind: AttentionExpertKind
    public var routing: AttentionRouting
    /// Experts per token for `.topK` routing.
    public var topK: Int

    public init(experts: Int, kind: AttentionExpertKind, routing: AttentionRouting, topK: Int) {
        self.experts = experts
        self.kind = kind
        self.routing = routing
        self.topK = topK
    }

    /// Key/value sets a layer computes and caches: one per expert, or one shared.
    public var keyValueSets: Int {
        switch kind {
        case .expertKV: experts
        case .sharedKV: 1
        }
    }

    /// Attention experts a token's output mixes (all of them for soft routing).
    public var expertsPerToken: Int {
        switch routing {
        case .soft: experts
        case .topK: topK
        }
    }
}

/// How a block combines its attention and feed-forward sides (docs/methods.md).
public enum BlockLayout: String, Sendable, Equatable {
    /// x += Attn(norm1(x)); x += FFN(norm2(x)) (Llama, Mistral, Qwen2, Mixtral).
    case sequential
    /// x += Attn(norm(x)) + FFN(norm(x)): one norm, both sides read it (Cohere, BAM's parallel block).
    case parallel
}

/// The attention side of every block of a model.
public enum AttentionVariant: Sendable, Equatable {
    /// One multi-head attention (dense models, Mixtral/BTX).
    case single
    /// BAM's mixture of attention experts.
    case mixture(MoAConfig)
}

/// The feed-forward side of every block of a model.
public enum FeedForwardVariant: Sendable, Equatable {
    /// One SwiGLU FFN (dense models).
    case single
    /// A mixture of SwiGLU experts behind a router (Mixtral/BTX, BAM).
    case mixture(MoEConfig)
}

/// A model's architecture, normalised from an HF config.json (or a GGUF's metadata).
/// Field names follow the dimension glossary in BamTensors/Tensor.swift.
public struct ModelConfig: Sendable {
    public var family: ModelFamily
    /// For BAM models: the family of the dense experts it was mixed from (norms, RoPE, biases).
    public var baseFamily: ModelFamily
    public var vocabSize: Int          // V
    public var hidden: Int             // C
    public var intermediate: Int       // F
    public var layers: Int             // L
    public var heads: Int              // NH
    public var kvHeads: Int            // NKV
    public var headDim: Int            // HS
    public var norm: NormKind
    public var normEps: Float
    public var ropeTheta: Float
    public var ropeStyle: RopeStyle
    public var ropeScaling: RopeScaling
    /// Sequential or parallel blocks.
    public var blockLayout: BlockLayout
    public var qkvBias: Bool
    public var oBias: Bool
    public var mlpBias: Bool
    public var tieEmbeddings: Bool
    public var logitScale: Float
    public var maxPositions: Int
    /// Attention window (Mistral/Qwen2 sliding window); sequences longer than it are refused.
    public var slidingWindow: Int?
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    /// One attention or BAM's mixture of attention experts.
    public var attention: AttentionVariant
    /// One FFN or a mixture of FFN experts.
    public var feedForward: FeedForwardVariant
    /// The dtype config.json says the weights are stored in.
    public var storedDType: DType?
    /// The config as read, to be rewritten with changes (mixing, conversion) without losing keys.
    public var raw: JSONObject

    public var qDim: Int { heads * headDim }
    public var kvDim: Int { kvHeads * headDim }

    // Summaries for reports (inspect, compare, routes) and tests. Code that computes switches on
    // `blockLayout`, `attention` and `feedForward` instead, so that each case carries what it needs.

    /// The FFN mixture, or nil for a single FFN.
    public var moe: MoEConfig? {
        switch feedForward {
        case .single: nil
        case let .mixture(m): m
        }
    }
    /// The mixture of attention experts, or nil for a single attention.
    public var moa: MoAConfig? {
        switch attention {
        case .single: nil
        case let .mixture(m): m
        }
    }
    public var parallelBlock: Bool { blockLayout == .parallel }
    public var isDense: Bool { attention == .single && feedForward == .single }

    public var blockDescription: String { blockLayout.rawValue }
}

extension ModelConfig {
    public static func load(directory: URL) throws -> ModelConfig {
        let url = directory.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw BamError.format(directory.path, "no config.json — an HF model directory needs one (or pass a .gguf file)")
        }
        guard case let .object(obj) = try readJSONFile(url) else {
            throw BamError.format(url.path, "config.json is not a JSON object")
        }
        return try ModelConfig(json: obj, file: url.path)
    }

    /// Parses an HF config; `file` names the source in errors.
    public init(json obj: JSONObject, file: String = "config.json") throws {
        func err(_ key: String, _ what: BamError.Text = "", expected: String? = nil, found: String? = nil, hint: BamError.Text? = nil) -> BamError {
            BamError.config(file, key: key, what, expected: expected, found: found, hint: hint)
        }
        func int(_ key: String) throws -> Int {
            guard let v = obj[key] else { throw err(key, "missing", expected: "an integer") }
            guard let i = v.intValue, i >= 0 else { throw err(key, expected: "a non-negative integer", found: v.serialized(indent: nil)) }
            return i
        }
        func optInt(_ key: String) throws -> Int? {
            guard let v = obj[key], !v.isNull else { return nil }
            guard let i = v.intValue else { throw err(key, expected: "an integer or null", found: v.serialized(indent: nil)) }
            return i
        }
        func double(_ key: String, default d: Double?) throws -> Double {
            guard let v = obj[key], !v.isNull else {
                if let d { return d }
                throw err(key, "missing", expected: "a number")
            }
            guard let x = v.doubleValue else { throw err(key, expected: "a number", found: v.serialized(indent: nil)) }
            return x
        }
        func bool(_ key: String, default d: Bool) throws -> Bool {
            guard let v = obj[key], !v.isNull else { return d }
            guard let b = v.boolValue else { throw err(key, expected: "true or false", found: v.serialized(indent: nil)) }
            return b
        }
        func string(_ key: String) -> String? { obj[key]?.stringValue }

        guard let modelType = string("model_type") else {
            throw err("model_type", "missing", expected: ModelFamily.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard let family = ModelFamily(rawValue: modelType) else {
            throw err("model_type", "not a model family bam-mix reads", expected: ModelFamily.allCases.map(\.rawValue).joined(separator: ", "), found: modelType)
        }
        self.family = family
        raw = obj

        var base = family
        if family == .bam {
            guard let s = string("base_model_type"), let b = ModelFamily(rawValue: s), b != .bam, b != .mixtral else {
                throw err("base_model_type", "a BAM config must name the dense family it was mixed from", expected: "llama, mistral, qwen2 or cohere", found: obj["base_model_type"]?.serialized(indent: nil) ?? "nothing")
            }
            base = b
        }
        baseFamily = base

        vocabSize = try int("vocab_size")
        hidden = try int("hidden_size")
        intermediate = try int("intermediate_size")
        layers = try int("num_hidden_layers")
        heads = try int("num_attention_heads")
        kvHeads = try optInt("num_key_value_heads") ?? heads
        guard hidden > 0, heads > 0, kvHeads > 0, layers > 0, vocabSize > 0, intermediate > 0 else {
            throw err("hidden_size", "hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads and vocab_size must all be positive")
        }
        guard heads % kvHeads == 0 else {
            throw err("num_key_value_heads", "grouped-query attention needs whole groups", expected: "a divisor of num_attention_heads = \(heads)", found: "\(kvHeads)")
        }
        if let hd = try optInt("head_dim") {
            headDim = hd
        } else {
            guard hidden % heads == 0 else { throw err("num_attention_heads", "no head_dim is given", expected: "a divisor of hidden_size = \(hidden)", found: "\(heads)") }
            headDim = hidden / heads
        }
        guard headDim % 2 == 0, headDim > 0 else { throw err("head_dim", "rotary embeddings rotate pairs", expected: "a positive even number", found: "\(headDim)") }

        if let act = string("hidden_act") ?? string("hidden_activation"), act != "silu" && act != "swish" {
            throw err("hidden_act", "not supported; bam-mix implements SwiGLU with silu", expected: "silu", found: act)
        }

        // RoPE: classic `rope_theta` + `rope_scaling`, or transformers 5's `rope_parameters`.
        var theta: Double? = obj["rope_theta"].flatMap { $0.isNull ? nil : $0.doubleValue }
        var scalingObj: JSONObject? = nil
        var scalingKey = "rope_scaling"
        if let rp = obj["rope_parameters"], !rp.isNull {
            guard let rpo = rp.objectValue else { throw err("rope_parameters", expected: "an object", found: rp.serialized(indent: nil)) }
            if let t = rpo["rope_theta"]?.doubleValue { theta = t }
            scalingObj = rpo
            scalingKey = "rope_parameters"
        }
        if let rs = obj["rope_scaling"], !rs.isNull {
            guard let rso = rs.objectValue else { throw err("rope_scaling", expected: "an object or null", found: rs.serialized(indent: nil)) }
            scalingObj = rso
            scalingKey = "rope_scaling"
        }
        ropeTheta = Float(theta ?? 10000)
        ropeScaling = .none
        if let s = scalingObj {
            let type = s["rope_type"]?.stringValue ?? s["type"]?.stringValue ?? "default"
            func f(_ k: String) throws -> Float {
                guard let v = s[k]?.doubleValue else { throw err("\(scalingKey).\(k)", "missing for rope type `\(type)`", expected: "a number") }
                return Float(v)
            }
            switch type {
            case "default": break
            case "linear": ropeScaling = .linear(factor: try f("factor"))
            case "llama3":
                guard let orig = s["original_max_position_embeddings"]?.intValue else {
                    throw err("\(scalingKey).original_max_position_embeddings", "missing for rope type llama3", expected: "an integer")
                }
                ropeScaling = .llama3(factor: try f("factor"), lowFreqFactor: try f("low_freq_factor"),
                                      highFreqFactor: try f("high_freq_factor"), originalMaxPositions: orig)
            default:
                throw err("\(scalingKey).rope_type", "not a RoPE type bam-mix implements", expected: "default, linear or llama3", found: type)
            }
        }
        if let prf = obj["partial_rotary_factor"]?.doubleValue, prf != 1 {
            throw err("partial_rotary_factor", "bam-mix rotates the whole head", expected: "1", found: "\(prf)")
        }

        maxPositions = try optInt("max_position_embeddings") ?? 4096
        bosTokenId = try optInt("bos_token_id")
        if let e = obj["eos_token_id"] {
            if let i = e.intValue { eosTokenIds = [i] } else { eosTokenIds = (e.arrayValue ?? []).compactMap(\.intValue) }
        } else {
            eosTokenIds = []
        }
        if let d = string("torch_dtype") ?? string("dtype") {
            storedDType = DType(userName: d) ?? (d == "float64" ? .f64 : nil)
        } else {
            storedDType = nil
        }

        slidingWindow = nil
        logitScale = 1
        blockLayout = .sequential
        ropeStyle = .rotateHalf
        norm = .rms
        attention = .single
        feedForward = .single

        switch base {
        case .llama, .mistral, .mixtral:
            normEps = Float(try double("rms_norm_eps", default: 1e-6))
            let ab = try bool("attention_bias", default: false)
            qkvBias = ab
            oBias = ab
            mlpBias = try bool("mlp_bias", default: false)
            tieEmbeddings = try bool("tie_word_embeddings", default: false)
            if base != .llama { slidingWindow = try optInt("sliding_window") }
        case .qwen2:
            normEps = Float(try double("rms_norm_eps", default: 1e-6))
            qkvBias = true
            oBias = false
            mlpBias = false
            tieEmbeddings = try bool("tie_word_embeddings", default: false)
            if try bool("use_sliding_window", default: false) { slidingWindow = try optInt("sliding_window") }
        case .cohere:
            norm = .layer
            normEps = Float(try double("layer_norm_eps", default: 1e-5))
            let ab = try bool("attention_bias", default: false)
            qkvBias = ab
            oBias = ab
            mlpBias = false
            tieEmbeddings = try bool("tie_word_embeddings", default: true)
            logitScale = Float(try double("logit_scale", default: 0.0625))
            blockLayout = .parallel
            ropeStyle = .interleaved
            if try bool("use_qk_norm", default: false) {
                throw err("use_qk_norm", "Command R+ style per-head Q/K LayerNorm is not supported", expected: "false", found: "true")
            }
        case .bam:
            fatalError("unreachable: BAM's base family is checked above")
        }

        // The router recipe (RouterRecipe.swift). Absent keys keep what each family meant before:
        // Mixtral's coefficients default as in transformers (aux 0.001, no z-loss), BAM's as in the
        // BAM reference (0.01, 0.001); the loss kind defaults to btx for both.
        func moeConfig(renormalize: Bool, auxDefault: Double, zDefault: Double) throws -> MoEConfig {
            let e = try int("num_local_experts")
            let k = try int("num_experts_per_tok")
            guard e >= 1, k >= 1, k <= e else { throw err("num_experts_per_tok", expected: "1 ... num_local_experts = \(e)", found: "\(k)") }
            func choice<T: RawRepresentable & CaseIterable>(_ key: String, default d: T) throws -> T where T.RawValue == String {
                guard let v = obj[key], !v.isNull else { return d }
                guard let s = v.stringValue, let x = T(rawValue: s) else {
                    throw err(key, expected: "one of \(T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))", found: v.serialized(indent: nil))
                }
                return x
            }
            let capacityFactor = try double(RouterRecipeKeys.capacityFactor, default: 1.5)
            let gumbelDecay = try double(RouterRecipeKeys.gumbelDecay, default: 1e-4)
            guard capacityFactor > 0, capacityFactor.isFinite, gumbelDecay >= 0, gumbelDecay.isFinite else {
                throw err(RouterRecipeKeys.capacityFactor, "router_capacity_factor must be positive and router_gumbel_decay not negative (both finite), found \(capacityFactor) and \(gumbelDecay)")
            }
            let kind = try choice(RouterRecipeKeys.routing, default: FFNRouting.topK)
            let routing: FeedForwardRouting
            switch kind {
            case .topK: routing = .topK(k: k, renormalize: renormalize)
            case .switch: routing = .switch(capacityFactor: capacityFactor)
            case .sampleTop1: routing = .sampleTop1(gumbelDecay: gumbelDecay)
            case .soft: routing = .soft
            }
            if kind != .topK {
                guard k == routing.expertsPerToken(experts: e) else {
                    throw err("num_experts_per_tok", "ffn_routing \"\(kind.rawValue)\" sends each token to \(routing.expertsPerToken(experts: e)) expert(s), but num_experts_per_tok is \(k); set it to \(routing.expertsPerToken(experts: e))")
                }
                guard !renormalize else {
                    throw err(RouterRecipeKeys.renormalize, "true applies to ffn_routing \"top_k\" only; \"\(kind.rawValue)\" has its own gates — remove the key or set it to false")
                }
            }
            let m = MoEConfig(experts: e, routing: routing,
                              auxLoss: try choice(RouterRecipeKeys.auxLossKind, default: RouterAuxLoss.btx),
                              routerAuxLossCoef: try double(RouterRecipeKeys.auxLossCoef, default: auxDefault),
                              routerZLossCoef: try double(RouterRecipeKeys.zLossCoef, default: zDefault),
                              routerJitterNoise: try double("router_jitter_noise", default: 0))
            guard m.routerAuxLossCoef >= 0, m.routerZLossCoef >= 0 else {
                throw err(RouterRecipeKeys.auxLossCoef, "router_aux_loss_coef and router_z_loss_coef must not be negative")
            }
            // The gate scaling of arXiv 2410.07524 is stored in the expert weights by `bam-mix mix`
            // (docs/mixing.md); a scale applied in the forward pass is not implemented.
            let scale = try double(RouterRecipeKeys.expertOutputScale, default: 1)
            guard scale == 1 else {
                throw BamError.unsupported("\(file): `expert_output_scale` = \(scale) is not implemented in bam-mix's forward pass; bam-mix stores expert scaling in the experts' down projections (`MixOptions.expertScaling`) — multiply each expert's w2 by \(scale) and set the key to 1")
            }
            return m
        }
        if family == .mixtral {
            if try !bool(RouterRecipeKeys.renormalize, default: true) {
                throw err(RouterRecipeKeys.renormalize, "false is not expressible by Mixtral (it renormalises the chosen gates); un-renormalised routing is written in the BAM format")
            }
            if let v = obj[RouterRecipeKeys.routing], !v.isNull, v.stringValue != FFNRouting.topK.rawValue {
                throw err(RouterRecipeKeys.routing, "\(v.serialized(indent: nil)) is not expressible by Mixtral (it routes top-k with renormalised gates); Switch, sampled top-1 and soft routing are written in the BAM format (model_type \"bam\")")
            }
            feedForward = .mixture(try moeConfig(renormalize: true, auxDefault: 0.001, zDefault: 0))
        }
        if family == .bam {
            let m = try moeConfig(renormalize: try bool(RouterRecipeKeys.renormalize, default: false), auxDefault: 0.01, zDefault: 0.001)
            feedForward = .mixture(m)
            let e = m.experts
            let kindName = string("attention_experts")
            if kindName == "dense" {
                // One attention (dense names), as a BTX mix of experts Mixtral cannot express.
                blockLayout = try bool("parallel_block", default: blockLayout == .parallel) ? .parallel : .sequential
                try checkLimits(file: file)
                guard qDim > 0 else { throw err("head_dim", "invalid") }
                return
            }
            guard let kindName, let kind = AttentionExpertKind(rawValue: kindName) else {
                throw err("attention_experts", "must be \"expert_kv\", \"shared_kv\" or \"dense\"")
            }
            let routingName = string("attention_routing") ?? "soft"
            guard let routing = AttentionRouting(rawValue: routingName) else {
                throw err("attention_routing", "`\(routingName)` is not supported; use \"soft\" or \"top_k\"")
            }
            let ak = try optInt("num_attention_experts_per_tok") ?? e
            guard ak >= 1, ak <= e else { throw err("num_attention_experts_per_tok", expected: "1 ... \(e)", found: "\(ak)") }
            attention = .mixture(MoAConfig(experts: e, kind: kind, routing: routing, topK: routing == .soft ? e : ak))
            blockLayout = try bool("parallel_block", default: blockLayout == .parallel) ? .parallel : .sequential
            // Non-Cohere bases keep their own norm; a parallel BAM of a Llama seed keeps RMSNorm.
        }
        try checkLimits(file: file)
        guard qDim > 0 else { throw err("head_dim", "invalid") }
    }

    /// Refuses sequences the model's attention window does not cover (we do not implement
    /// sliding-window attention; within the window it is identical to full attention).
    public func checkSequenceLength(_ n: Int) throws {
        if let w = slidingWindow, n > w {
            throw BamError.unsupported("bam-mix does not implement sliding-window attention, and the window is shorter than the sequence",
                                       at: .key("sliding_window"), expected: "a sequence of at most \(w) tokens", found: "\(n) tokens",
                                       hint: "use a context of at most \(w) tokens")
        }
    }

    /// A short human-readable architecture name (inspect, compare).
    public var architectureName: String {
        if let a = raw["architectures"]?.arrayValue?.first?.stringValue { return a }
        return family.rawValue
    }
}
