import BamTensors
import Foundation

// The one table of a model's parameters. `ModelConfig.parameterSpecs` lists every tensor the
// architecture implies — its key, shape, role, layer and expert — in checkpoint order, and each
// key spells its own names: the transformers checkpoint name (`hfName`) and the GGUF name
// (`ggufName`). Loading and writing checkpoints, the training parameter list, mixing and the GGUF
// converter all read names from here; the name parsers below are derived from the same spellings
// (a name is matched against the spellings of every kind of key), so no second mapping exists.

/// A projection of an attention: queries, keys, values or the output.
public enum AttentionProjection: String, Sendable, CaseIterable {
    case q, k, v, o
}

/// A projection of a SwiGLU FFN: down(silu(gate x) * up x).
public enum FeedForwardProjection: String, Sendable, CaseIterable {
    case gate, up, down

    /// Mixtral's expert names: w1 = gate, w3 = up, w2 = down.
    public var mixtralName: String {
        switch self {
        case .gate: "w1"
        case .up: "w3"
        case .down: "w2"
        }
    }
}

/// A linear layer's weight matrix or its bias vector.
public enum ParameterKind: String, Sendable, CaseIterable {
    case weight, bias
}

/// Which tensor of a model a parameter is, whatever a file format calls it.
public enum ParameterKey: Hashable, Sendable {
    case embedding
    case finalNorm
    case lmHead
    case inputNorm(layer: Int)
    /// Sequential blocks only.
    case postAttentionNorm(layer: Int)
    /// BAM's attention router (E, C).
    case attentionRouter(layer: Int)
    /// A projection of layer `layer`'s attention: of its one attention, or of a shared-KV mixture's
    /// shared keys/values (`expert` nil), or of attention expert `expert`.
    case attention(layer: Int, expert: Int?, AttentionProjection, ParameterKind)
    /// The FFN mixture's router (E, C).
    case ffnRouter(layer: Int)
    /// A projection of layer `layer`'s one FFN (`expert` nil) or of FFN expert `expert`.
    case feedForward(layer: Int, expert: Int?, FeedForwardProjection, ParameterKind)

    public var layer: Int? {
        switch self {
        case .embedding, .finalNorm, .lmHead: nil
        case let .inputNorm(l), let .postAttentionNorm(l), let .attentionRouter(l), let .ffnRouter(l): l
        case let .attention(l, _, _, _), let .feedForward(l, _, _, _): l
        }
    }

    public var expert: Int? {
        switch self {
        case let .attention(_, e, _, _), let .feedForward(_, e, _, _): e
        default: nil
        }
    }

    /// The same kind of key at another layer and expert (nil expert for kinds without one).
    func at(layer l: Int, expert e: Int?) -> ParameterKey {
        switch self {
        case .embedding, .finalNorm, .lmHead: self
        case .inputNorm: .inputNorm(layer: l)
        case .postAttentionNorm: .postAttentionNorm(layer: l)
        case .attentionRouter: .attentionRouter(layer: l)
        case .ffnRouter: .ffnRouter(layer: l)
        case let .attention(_, x, p, k): .attention(layer: l, expert: x == nil ? nil : e, p, k)
        case let .feedForward(_, x, p, k): .feedForward(layer: l, expert: x == nil ? nil : e, p, k)
        }
    }

    // MARK: spellings

    /// The transformers checkpoint name: Llama/Mistral/Qwen2/Cohere names for dense parts, Mixtral's
    /// `block_sparse_moe` for FFN mixtures, and bam-mix's BAM names (`self_attn.experts.E.*`,
    /// `self_attn.gate`) for mixtures of attention (docs/bam-format.md).
    public var hfName: String {
        switch self {
        case .embedding: return "model.embed_tokens.weight"
        case .finalNorm: return "model.norm.weight"
        case .lmHead: return "lm_head.weight"
        case let .inputNorm(l): return "model.layers.\(l).input_layernorm.weight"
        case let .postAttentionNorm(l): return "model.layers.\(l).post_attention_layernorm.weight"
        case let .attentionRouter(l): return "model.layers.\(l).self_attn.gate.weight"
        case let .attention(l, nil, p, k): return "model.layers.\(l).self_attn.\(p.rawValue)_proj.\(k.rawValue)"
        case let .attention(l, e?, p, k): return "model.layers.\(l).self_attn.experts.\(e).\(p.rawValue)_proj.\(k.rawValue)"
        case let .ffnRouter(l): return "model.layers.\(l).block_sparse_moe.gate.weight"
        case let .feedForward(l, nil, p, k): return "model.layers.\(l).mlp.\(p.rawValue)_proj.\(k.rawValue)"
        case let .feedForward(l, e?, p, k): return "model.layers.\(l).block_sparse_moe.experts.\(e).\(p.mixtralName).\(k.rawValue)"
        }
    }

    /// The GGUF name (llama.cpp's gguf-py `tensor_mapping.py` for the parts llama.cpp knows;
    /// `attn_gate_inp` and `attn_*.E` for BAM's attention mixture, docs/gguf.md). FFN experts are
    /// slots of one stacked tensor per layer and projection, as current llama.cpp writes them.
    public var ggufName: GGUFTensorName {
        switch self {
        case .embedding: return .tensor("token_embd.weight")
        case .finalNorm: return .tensor("output_norm.weight")
        case .lmHead: return .tensor("output.weight")
        case let .inputNorm(l): return .tensor("blk.\(l).attn_norm.weight")
        case let .postAttentionNorm(l): return .tensor("blk.\(l).ffn_norm.weight")
        case let .attentionRouter(l): return .tensor("blk.\(l).attn_gate_inp.weight")
        case let .attention(l, nil, p, k): return .tensor("blk.\(l).\(Self.ggufPart(p)).\(k.rawValue)")
        case let .attention(l, e?, p, k): return .tensor("blk.\(l).\(Self.ggufPart(p)).\(e).\(k.rawValue)")
        case let .ffnRouter(l): return .tensor("blk.\(l).ffn_gate_inp.weight")
        case let .feedForward(l, nil, p, k): return .tensor("blk.\(l).ffn_\(p.rawValue).\(k.rawValue)")
        case let .feedForward(l, e?, p, k): return .stacked("blk.\(l).ffn_\(p.rawValue)_exps.\(k.rawValue)", expert: e)
        }
    }

    /// The per-expert GGUF name older llama.cpp Mixtral files use (`blk.N.ffn_gate.E.weight`); read only.
    var legacyGGUFName: String? {
        guard case let .feedForward(l, e?, p, k) = self else { return nil }
        return "blk.\(l).ffn_\(p.rawValue).\(e).\(k.rawValue)"
    }

    private static func ggufPart(_ p: AttentionProjection) -> String {
        switch p {
        case .q: "attn_q"
        case .k: "attn_k"
        case .v: "attn_v"
        case .o: "attn_output"
        }
    }

    // MARK: parsing, derived from the spellings

    /// One key of every kind that can appear in a file (layer 0, expert 0). FFN experts have no
    /// biases in any format bam-mix reads (Mixtral and BAM experts are bias-free).
    static let templates: [ParameterKey] = {
        var t: [ParameterKey] = [.embedding, .finalNorm, .lmHead, .inputNorm(layer: 0), .postAttentionNorm(layer: 0),
                                 .attentionRouter(layer: 0), .ffnRouter(layer: 0)]
        for p in AttentionProjection.allCases {
            for k in ParameterKind.allCases { t += [.attention(layer: 0, expert: nil, p, k), .attention(layer: 0, expert: 0, p, k)] }
        }
        for p in FeedForwardProjection.allCases {
            for k in ParameterKind.allCases { t.append(.feedForward(layer: 0, expert: nil, p, k)) }
            t.append(.feedForward(layer: 0, expert: 0, p, .weight))
        }
        return t
    }()

    /// A name with its whole-number segments (layer, expert) replaced by `#`, and those numbers in order.
    static func pattern(_ name: String) -> (pattern: String, numbers: [Int]) {
        var numbers: [Int] = []
        let segments = name.split(separator: ".", omittingEmptySubsequences: false).map { s -> String in
            if !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(s) {
                numbers.append(n)
                return "#"
            }
            return String(s)
        }
        return (segments.joined(separator: "."), numbers)
    }

    /// Pattern -> template, for each naming scheme.
    private static let hfPatterns: [String: ParameterKey] = Dictionary(uniqueKeysWithValues: templates.map { (pattern($0.hfName).pattern, $0) })
    private static let ggufPatterns: [String: ParameterKey] = Dictionary(uniqueKeysWithValues: templates.map { (pattern($0.ggufName.name).pattern, $0) })
    private static let legacyGGUFPatterns: [String: ParameterKey] = Dictionary(uniqueKeysWithValues: templates.compactMap { t in
        t.legacyGGUFName.map { (pattern($0).pattern, t) }
    })

    /// Instantiates a template with the numbers read from a name: the layer first, then the expert.
    private static func instantiate(_ template: ParameterKey, _ numbers: [Int]) -> ParameterKey? {
        let wanted = (template.layer == nil ? 0 : 1) + (template.expert == nil ? 0 : 1)
        guard numbers.count == wanted else { return nil }
        return template.at(layer: numbers.first ?? 0, expert: numbers.count > 1 ? numbers[1] : nil)
    }

    /// The key of a transformers checkpoint name, or nil for a name no bam-mix model has.
    public init?(hfName name: String) {
        let (p, numbers) = Self.pattern(name)
        // The round trip keeps the parse exact (no `model.layers.01.` for layer 1).
        guard let t = Self.hfPatterns[p], let key = Self.instantiate(t, numbers), key.hfName == name else { return nil }
        self = key
    }

    /// What a GGUF tensor name holds: one parameter, or (stacked FFN experts) the template of the
    /// parameter each expert slot holds.
    public enum GGUFTarget: Equatable, Sendable {
        case parameter(ParameterKey)
        /// Expert e's slot holds `expert(e)` — given as layer and projection.
        case stackedExperts(layer: Int, FeedForwardProjection, ParameterKind)
    }

    /// Parses a GGUF tensor name (`legacyExperts`: also read older files' per-expert FFN names).
    public static func parse(ggufName name: String, legacyExperts: Bool) -> GGUFTarget? {
        let (p, numbers) = pattern(name)
        if let t = ggufPatterns[p] {
            if case let .feedForward(_, _?, proj, kind) = t {
                guard numbers.count == 1 else { return nil }
                return .stackedExperts(layer: numbers[0], proj, kind)
            }
            return instantiate(t, numbers).map(GGUFTarget.parameter)
        }
        if legacyExperts, let t = legacyGGUFPatterns[p] {
            return instantiate(t, numbers).map(GGUFTarget.parameter)
        }
        return nil
    }
}

/// Where a parameter lives in a GGUF file.
public enum GGUFTensorName: Hashable, Sendable {
    case tensor(String)
    /// Slot `expert` of a tensor stacking every expert's matrix, [E, rows, cols] (`ffn_*_exps`).
    case stacked(String, expert: Int)

    /// The GGUF tensor's name.
    public var name: String {
        switch self {
        case let .tensor(n), let .stacked(n, _): n
        }
    }
}

/// A parameter's key, names, expected shape and role: one row of the parameter table.
public struct ParameterSpec: Sendable, Equatable {
    public enum Role: String, Sendable {
        case embedding, norm, attention, attentionBias, sharedKV, attentionRouter, feedForward, feedForwardBias, ffnRouter, lmHead
    }
    public var key: ParameterKey
    public var shape: [Int]
    public var role: Role

    public init(key: ParameterKey, shape: [Int], role: Role) {
        self.key = key
        self.shape = shape
        self.role = role
    }

    /// The transformers checkpoint name.
    public var name: String { key.hfName }
    /// The GGUF name.
    public var ggufName: GGUFTensorName { key.ggufName }
    public var layer: Int? { key.layer }
    public var expert: Int? { key.expert }

    public var isRouter: Bool { role == .attentionRouter || role == .ffnRouter }
    /// Parameters excluded from weight decay by default (norms and biases).
    public var isNormOrBias: Bool { role == .norm || role == .attentionBias || role == .feedForwardBias }
    /// Matrices a forward pass multiplies activations by (projections, routers, the output head) —
    /// the entries a storage-typed weight (f16, bf16, quantised) can stand for. The embedding is
    /// gathered by row instead (and is also the output head when the embeddings are tied).
    public var isLinearWeight: Bool {
        switch role {
        case .attention, .sharedKV, .feedForward, .attentionRouter, .ffnRouter, .lmHead: true
        case .embedding, .norm, .attentionBias, .feedForwardBias: false
        }
    }
}

extension ModelConfig {
    /// Every tensor a checkpoint of this architecture holds, in the order transformers would save it.
    public var parameterSpecs: [ParameterSpec] {
        let C = hidden, F = intermediate, V = vocabSize, Q = qDim, KV = kvDim
        var s: [ParameterSpec] = [ParameterSpec(key: .embedding, shape: [V, C], role: .embedding)]
        func add(_ key: ParameterKey, _ shape: [Int], _ role: ParameterSpec.Role) {
            s.append(ParameterSpec(key: key, shape: shape, role: role))
        }
        /// An attention projection's weight and, when the config has that bias, its bias.
        func projection(_ l: Int, _ e: Int?, _ p: AttentionProjection, role: ParameterSpec.Role) {
            let rows = p == .q ? Q : p == .o ? C : KV
            add(.attention(layer: l, expert: e, p, .weight), [rows, p == .o ? Q : C], role)
            if p == .o ? oBias : qkvBias { add(.attention(layer: l, expert: e, p, .bias), [rows], .attentionBias) }
        }
        for l in 0..<layers {
            add(.inputNorm(layer: l), [C], .norm)
            switch attention {
            case .single:
                for p in AttentionProjection.allCases { projection(l, nil, p, role: .attention) }
            case let .mixture(moa):
                add(.attentionRouter(layer: l), [moa.experts, C], .attentionRouter)
                switch moa.kind {
                case .sharedKV:
                    for p in [AttentionProjection.k, .v] { projection(l, nil, p, role: .sharedKV) }
                    for e in 0..<moa.experts { for p in [AttentionProjection.q, .o] { projection(l, e, p, role: .attention) } }
                case .expertKV:
                    for e in 0..<moa.experts { for p in AttentionProjection.allCases { projection(l, e, p, role: .attention) } }
                }
            }
            switch blockLayout {
            case .sequential: add(.postAttentionNorm(layer: l), [C], .norm)
            case .parallel: break
            }
            switch feedForward {
            case .single:
                for p in FeedForwardProjection.allCases {
                    let shape = p == .down ? [C, F] : [F, C]
                    add(.feedForward(layer: l, expert: nil, p, .weight), shape, .feedForward)
                    if mlpBias { add(.feedForward(layer: l, expert: nil, p, .bias), [shape[0]], .feedForwardBias) }
                }
            case let .mixture(moe):
                add(.ffnRouter(layer: l), [moe.experts, C], .ffnRouter)
                // Mixtral's checkpoint order: w1, w2, w3.
                for e in 0..<moe.experts {
                    for p in [FeedForwardProjection.gate, .down, .up] {
                        add(.feedForward(layer: l, expert: e, p, .weight), p == .down ? [C, F] : [F, C], .feedForward)
                    }
                }
            }
        }
        add(.finalNorm, [C], .norm)
        if !tieEmbeddings { add(.lmHead, [V, C], .lmHead) }
        return s
    }
}

/// Checkpoint names of parameters, for callers that hold a layer number and a projection name
/// (tests, tools). The names come from `ParameterKey.hfName`.
public enum ParameterNames {
    public static let embed = ParameterKey.embedding.hfName
    public static let finalNorm = ParameterKey.finalNorm.hfName
    public static let lmHead = ParameterKey.lmHead.hfName
    public static func inputNorm(_ l: Int) -> String { ParameterKey.inputNorm(layer: l).hfName }
    public static func postAttentionNorm(_ l: Int) -> String { ParameterKey.postAttentionNorm(layer: l).hfName }

    /// The one attention's (or the shared K/V's) projection `p` in q, k, v, o; `kind` weight or bias.
    public static func attention(_ l: Int, _ p: String, _ kind: String = "weight") -> String {
        ParameterKey.attention(layer: l, expert: nil, projection(p), parameterKind(kind)).hfName
    }
    /// BAM attention expert e's projection.
    public static func attentionExpert(_ l: Int, _ e: Int, _ p: String, _ kind: String = "weight") -> String {
        ParameterKey.attention(layer: l, expert: e, projection(p), parameterKind(kind)).hfName
    }
    public static func attentionRouter(_ l: Int) -> String { ParameterKey.attentionRouter(layer: l).hfName }

    /// The one FFN's projection `p` in gate, up, down.
    public static func mlp(_ l: Int, _ p: String, _ kind: String = "weight") -> String {
        guard let proj = FeedForwardProjection(rawValue: p) else { preconditionFailure("no FFN projection `\(p)` (gate, up, down)") }
        return ParameterKey.feedForward(layer: l, expert: nil, proj, parameterKind(kind)).hfName
    }
    /// Mixtral expert e's `w` in w1 (gate), w3 (up), w2 (down).
    public static func moeExpert(_ l: Int, _ e: Int, _ w: String) -> String {
        guard let proj = FeedForwardProjection.allCases.first(where: { $0.mixtralName == w }) else {
            preconditionFailure("no Mixtral expert projection `\(w)` (w1, w2, w3)")
        }
        return ParameterKey.feedForward(layer: l, expert: e, proj, .weight).hfName
    }
    public static func moeRouter(_ l: Int) -> String { ParameterKey.ffnRouter(layer: l).hfName }

    private static func projection(_ p: String) -> AttentionProjection {
        guard let x = AttentionProjection(rawValue: p) else { preconditionFailure("no attention projection `\(p)` (q, k, v, o)") }
        return x
    }
    private static func parameterKind(_ k: String) -> ParameterKind {
        guard let x = ParameterKind(rawValue: k) else { preconditionFailure("no parameter kind `\(k)` (weight, bias)") }
        return x
    }
}
