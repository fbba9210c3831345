import BamFormats
import BamTensors
import Foundation

// The weights of every model bam-mix runs, as one structure: a dense model is a mixture with
// one attention expert and one FFN expert and no routers; a Mixtral/BTX model has one attention
// and an FFN mixture; a BAM model has mixtures on both sides. Tensor names are the checkpoint's
// own (transformers' names for Llama/Mixtral; docs/bam-format.md for BAM), so there is no rename table:
// `ParameterNames` says where each tensor lives and `TransformerWeights.load` checks that no
// tensor is missing or left over.

/// One attention expert (or a dense model's attention).
public final class AttentionWeights: @unchecked Sendable {
    public var q: Tensor          // (NH*HS, C)
    public var k: Tensor?         // (NKV*HS, C); nil when K is shared across experts
    public var v: Tensor?         // (NKV*HS, C); nil when V is shared
    public var o: Tensor          // (C, NH*HS)
    public var qBias: Tensor?     // (NH*HS)
    public var kBias: Tensor?     // (NKV*HS)
    public var vBias: Tensor?     // (NKV*HS)
    public var oBias: Tensor?     // (C)

    public init(q: Tensor, k: Tensor?, v: Tensor?, o: Tensor, qBias: Tensor? = nil, kBias: Tensor? = nil,
                vBias: Tensor? = nil, oBias: Tensor? = nil) {
        self.q = q; self.k = k; self.v = v; self.o = o
        self.qBias = qBias; self.kBias = kBias; self.vBias = vBias; self.oBias = oBias
    }
}

/// One SwiGLU feed-forward expert: down(silu(gate x) * up x).
public final class FeedForwardWeights: @unchecked Sendable {
    public var gate: Tensor       // (F, C)   Mixtral's w1
    public var up: Tensor         // (F, C)   Mixtral's w3
    public var down: Tensor       // (C, F)   Mixtral's w2
    public var gateBias: Tensor?  // (F)
    public var upBias: Tensor?    // (F)
    public var downBias: Tensor?  // (C)

    public init(gate: Tensor, up: Tensor, down: Tensor, gateBias: Tensor? = nil, upBias: Tensor? = nil, downBias: Tensor? = nil) {
        self.gate = gate; self.up = up; self.down = down
        self.gateBias = gateBias; self.upBias = upBias; self.downBias = downBias
    }
}

/// The attention side of a block: one expert (dense, BTX) or a mixture of attention (BAM).
public final class AttentionLayerWeights: @unchecked Sendable {
    public var router: Tensor?            // (E, C); nil for a single expert
    public var experts: [AttentionWeights]
    public var sharedK: Tensor?           // (NKV*HS, C)  shared-KV BAM
    public var sharedV: Tensor?           // (NKV*HS, C)
    public var sharedKBias: Tensor?       // (NKV*HS)
    public var sharedVBias: Tensor?       // (NKV*HS)

    public init(router: Tensor?, experts: [AttentionWeights], sharedK: Tensor? = nil, sharedV: Tensor? = nil,
                sharedKBias: Tensor? = nil, sharedVBias: Tensor? = nil) {
        self.router = router; self.experts = experts
        self.sharedK = sharedK; self.sharedV = sharedV; self.sharedKBias = sharedKBias; self.sharedVBias = sharedVBias
    }

    public var sharesKV: Bool { sharedK != nil }
    /// Key/value sets the cache keeps for this layer: one per expert, or one shared.
    public var kvSets: Int { sharesKV ? 1 : experts.count }
}

/// The FFN side of a block: one expert (dense) or a mixture of experts (BTX, BAM).
public final class FeedForwardLayerWeights: @unchecked Sendable {
    public var router: Tensor?            // (E, C)
    public var experts: [FeedForwardWeights]

    public init(router: Tensor?, experts: [FeedForwardWeights]) {
        self.router = router
        self.experts = experts
    }
}

public final class BlockWeights: @unchecked Sendable {
    public var inputNorm: Tensor          // (C)  input_layernorm
    public var postAttentionNorm: Tensor? // (C)  post_attention_layernorm (sequential blocks only)
    public var attention: AttentionLayerWeights
    public var feedForward: FeedForwardLayerWeights

    public init(inputNorm: Tensor, postAttentionNorm: Tensor?, attention: AttentionLayerWeights,
                feedForward: FeedForwardLayerWeights) {
        self.inputNorm = inputNorm
        self.postAttentionNorm = postAttentionNorm
        self.attention = attention
        self.feedForward = feedForward
    }
}

public final class TransformerWeights: @unchecked Sendable {
    public var embed: Tensor              // (V, C)
    public var blocks: [BlockWeights]     // (L)
    public var finalNorm: Tensor          // (C)
    public var lmHead: Tensor             // (V, C); the same object as `embed` when tied

    public init(embed: Tensor, blocks: [BlockWeights], finalNorm: Tensor, lmHead: Tensor) {
        self.embed = embed
        self.blocks = blocks
        self.finalNorm = finalNorm
        self.lmHead = lmHead
    }
}

/// Tensor names of each parameter (transformers naming; BAM per docs/bam-format.md).
public enum ParameterNames {
    public static let embed = "model.embed_tokens.weight"
    public static let finalNorm = "model.norm.weight"
    public static let lmHead = "lm_head.weight"
    public static func layer(_ l: Int) -> String { "model.layers.\(l)" }
    public static func inputNorm(_ l: Int) -> String { "\(layer(l)).input_layernorm.weight" }
    public static func postAttentionNorm(_ l: Int) -> String { "\(layer(l)).post_attention_layernorm.weight" }

    /// Dense attention projection `p` in q, k, v, o; `kind` is weight or bias.
    public static func attention(_ l: Int, _ p: String, _ kind: String = "weight") -> String {
        "\(layer(l)).self_attn.\(p)_proj.\(kind)"
    }
    /// BAM attention expert e's projection.
    public static func attentionExpert(_ l: Int, _ e: Int, _ p: String, _ kind: String = "weight") -> String {
        "\(layer(l)).self_attn.experts.\(e).\(p)_proj.\(kind)"
    }
    public static func attentionRouter(_ l: Int) -> String { "\(layer(l)).self_attn.gate.weight" }

    /// Dense MLP projection `p` in gate, up, down.
    public static func mlp(_ l: Int, _ p: String, _ kind: String = "weight") -> String {
        "\(layer(l)).mlp.\(p)_proj.\(kind)"
    }
    /// Mixtral expert e: w1 = gate, w3 = up, w2 = down.
    public static func moeExpert(_ l: Int, _ e: Int, _ w: String) -> String {
        "\(layer(l)).block_sparse_moe.experts.\(e).\(w).weight"
    }
    public static func moeRouter(_ l: Int) -> String { "\(layer(l)).block_sparse_moe.gate.weight" }

    public static let mixtralNames = ["gate": "w1", "up": "w3", "down": "w2"]
}

/// A parameter's name, expected shape and role, in checkpoint order.
public struct ParameterSpec: Sendable, Equatable {
    public enum Role: String, Sendable {
        case embedding, norm, attention, attentionBias, sharedKV, attentionRouter, feedForward, feedForwardBias, ffnRouter, lmHead
    }
    public var name: String
    public var shape: [Int]
    public var role: Role
    public var layer: Int?
    public var expert: Int?

    public var isRouter: Bool { role == .attentionRouter || role == .ffnRouter }
    /// Parameters excluded from weight decay by default (norms and biases).
    public var isNormOrBias: Bool { role == .norm || role == .attentionBias || role == .feedForwardBias }
}

extension ModelConfig {
    /// Every tensor a checkpoint of this architecture holds, in the order transformers would save it.
    public var parameterSpecs: [ParameterSpec] {
        let C = hidden, F = intermediate, V = vocabSize, Q = qDim, KV = kvDim
        var s: [ParameterSpec] = [ParameterSpec(name: ParameterNames.embed, shape: [V, C], role: .embedding)]
        for l in 0..<layers {
            s.append(ParameterSpec(name: ParameterNames.inputNorm(l), shape: [C], role: .norm, layer: l))
            // Attention
            func proj(_ name: (String, String) -> String, _ e: Int?, includeKV: Bool) {
                var ps: [(String, [Int], Bool)] = [("q", [Q, C], qkvBias)]
                if includeKV { ps += [("k", [KV, C], qkvBias), ("v", [KV, C], qkvBias)] }
                ps.append(("o", [C, Q], oBias))
                for (p, shape, hasBias) in ps {
                    s.append(ParameterSpec(name: name(p, "weight"), shape: shape, role: .attention, layer: l, expert: e))
                    if hasBias {
                        s.append(ParameterSpec(name: name(p, "bias"), shape: [shape[0]], role: .attentionBias, layer: l, expert: e))
                    }
                }
            }
            if let moa {
                s.append(ParameterSpec(name: ParameterNames.attentionRouter(l), shape: [moa.experts, C], role: .attentionRouter, layer: l))
                let shared = moa.kind == .sharedKV
                if shared {
                    for p in ["k", "v"] {
                        s.append(ParameterSpec(name: ParameterNames.attention(l, p), shape: [KV, C], role: .sharedKV, layer: l))
                        if qkvBias {
                            s.append(ParameterSpec(name: ParameterNames.attention(l, p, "bias"), shape: [KV], role: .attentionBias, layer: l))
                        }
                    }
                }
                for e in 0..<moa.experts {
                    proj({ ParameterNames.attentionExpert(l, e, $0, $1) }, e, includeKV: !shared)
                }
            } else {
                proj({ ParameterNames.attention(l, $0, $1) }, nil, includeKV: true)
            }
            if !parallelBlock {
                s.append(ParameterSpec(name: ParameterNames.postAttentionNorm(l), shape: [C], role: .norm, layer: l))
            }
            // Feed-forward
            if let moe {
                s.append(ParameterSpec(name: ParameterNames.moeRouter(l), shape: [moe.experts, C], role: .ffnRouter, layer: l))
                for e in 0..<moe.experts {
                    s.append(ParameterSpec(name: ParameterNames.moeExpert(l, e, "w1"), shape: [F, C], role: .feedForward, layer: l, expert: e))
                    s.append(ParameterSpec(name: ParameterNames.moeExpert(l, e, "w2"), shape: [C, F], role: .feedForward, layer: l, expert: e))
                    s.append(ParameterSpec(name: ParameterNames.moeExpert(l, e, "w3"), shape: [F, C], role: .feedForward, layer: l, expert: e))
                }
            } else {
                for (p, shape) in [("gate", [F, C]), ("up", [F, C]), ("down", [C, F])] {
                    s.append(ParameterSpec(name: ParameterNames.mlp(l, p), shape: shape, role: .feedForward, layer: l))
                    if mlpBias {
                        s.append(ParameterSpec(name: ParameterNames.mlp(l, p, "bias"), shape: [shape[0]], role: .feedForwardBias, layer: l))
                    }
                }
            }
        }
        s.append(ParameterSpec(name: ParameterNames.finalNorm, shape: [C], role: .norm))
        if !tieEmbeddings { s.append(ParameterSpec(name: ParameterNames.lmHead, shape: [V, C], role: .lmHead)) }
        return s
    }
}

extension TransformerWeights {
    /// Loads every parameter the config implies from `store`, checking shapes, that nothing is
    /// missing and that nothing is left over (a leftover tensor means the config and the weights
    /// disagree, which would otherwise give silently wrong logits).
    public static func load(config: ModelConfig, store: any TensorStore) throws -> TransformerWeights {
        let specs = config.parameterSpecs
        if config.family == .mixtral, !store.contains(ParameterNames.moeRouter(0)), store.contains("model.layers.0.mlp.experts.gate_up_proj") {
            return try load(config: config, store: FusedMixtralStore(base: store, config: config))
        }
        var byName: [String: Tensor] = [:]
        for spec in specs {
            guard let info = store.info(spec.name) else {
                let hint = spec.name.contains("block_sparse_moe") && store.contains(ParameterNames.mlp(0, "gate"))
                    ? " — the config describes a mixture of experts but the weights are dense" : ""
                throw BamError.format(store.location, "missing tensor `\(spec.name)` (shape \(spec.shape)) that the \(config.architectureName) config implies\(hint)")
            }
            guard info.shape == spec.shape else {
                throw BamError.mismatch("\(info.file): tensor `\(spec.name)` has shape \(info.shape); config.json implies \(spec.shape)")
            }
            byName[spec.name] = try store.tensor(spec.name)
        }
        let expected = Set(specs.map(\.name))
        // Buffers some exporters keep (rotary caches) are not parameters.
        let leftovers = store.names.filter { !expected.contains($0) && !$0.hasSuffix("rotary_emb.inv_freq") }
        if !leftovers.isEmpty {
            let tieHint = config.tieEmbeddings && leftovers.contains(ParameterNames.lmHead) ? " (config says tie_word_embeddings but lm_head.weight is present)" : ""
            throw BamError.mismatch("\(store.location): \(leftovers.count) tensor(s) the \(config.architectureName) config does not account for, e.g. `\(leftovers[0])`\(tieHint)")
        }
        return assemble(config: config) { byName[$0]! } optional: { byName[$0] }
    }

    /// Builds the structure from a name -> tensor lookup (`optional` for biases).
    public static func assemble(config: ModelConfig, _ t: (String) -> Tensor, optional: (String) -> Tensor?) -> TransformerWeights {
        let embed = t(ParameterNames.embed)
        var blocks: [BlockWeights] = []
        for l in 0..<config.layers {
            let attention: AttentionLayerWeights
            if let moa = config.moa {
                let shared = moa.kind == .sharedKV
                let experts = (0..<moa.experts).map { e in
                    AttentionWeights(
                        q: t(ParameterNames.attentionExpert(l, e, "q")),
                        k: shared ? nil : t(ParameterNames.attentionExpert(l, e, "k")),
                        v: shared ? nil : t(ParameterNames.attentionExpert(l, e, "v")),
                        o: t(ParameterNames.attentionExpert(l, e, "o")),
                        qBias: optional(ParameterNames.attentionExpert(l, e, "q", "bias")),
                        kBias: shared ? nil : optional(ParameterNames.attentionExpert(l, e, "k", "bias")),
                        vBias: shared ? nil : optional(ParameterNames.attentionExpert(l, e, "v", "bias")),
                        oBias: optional(ParameterNames.attentionExpert(l, e, "o", "bias")))
                }
                attention = AttentionLayerWeights(
                    router: t(ParameterNames.attentionRouter(l)), experts: experts,
                    sharedK: shared ? t(ParameterNames.attention(l, "k")) : nil,
                    sharedV: shared ? t(ParameterNames.attention(l, "v")) : nil,
                    sharedKBias: shared ? optional(ParameterNames.attention(l, "k", "bias")) : nil,
                    sharedVBias: shared ? optional(ParameterNames.attention(l, "v", "bias")) : nil)
            } else {
                attention = AttentionLayerWeights(router: nil, experts: [AttentionWeights(
                    q: t(ParameterNames.attention(l, "q")), k: t(ParameterNames.attention(l, "k")),
                    v: t(ParameterNames.attention(l, "v")), o: t(ParameterNames.attention(l, "o")),
                    qBias: optional(ParameterNames.attention(l, "q", "bias")),
                    kBias: optional(ParameterNames.attention(l, "k", "bias")),
                    vBias: optional(ParameterNames.attention(l, "v", "bias")),
                    oBias: optional(ParameterNames.attention(l, "o", "bias")))])
            }
            let ffn: FeedForwardLayerWeights
            if let moe = config.moe {
                ffn = FeedForwardLayerWeights(router: t(ParameterNames.moeRouter(l)), experts: (0..<moe.experts).map { e in
                    FeedForwardWeights(gate: t(ParameterNames.moeExpert(l, e, "w1")), up: t(ParameterNames.moeExpert(l, e, "w3")),
                                       down: t(ParameterNames.moeExpert(l, e, "w2")))
                })
            } else {
                ffn = FeedForwardLayerWeights(router: nil, experts: [FeedForwardWeights(
                    gate: t(ParameterNames.mlp(l, "gate")), up: t(ParameterNames.mlp(l, "up")), down: t(ParameterNames.mlp(l, "down")),
                    gateBias: optional(ParameterNames.mlp(l, "gate", "bias")), upBias: optional(ParameterNames.mlp(l, "up", "bias")),
                    downBias: optional(ParameterNames.mlp(l, "down", "bias")))])
            }
            blocks.append(BlockWeights(inputNorm: t(ParameterNames.inputNorm(l)),
                                       postAttentionNorm: config.parallelBlock ? nil : t(ParameterNames.postAttentionNorm(l)),
                                       attention: attention, feedForward: ffn))
        }
        let lmHead = config.tieEmbeddings ? embed : t(ParameterNames.lmHead)
        return TransformerWeights(embed: embed, blocks: blocks, finalNorm: t(ParameterNames.finalNorm), lmHead: lmHead)
    }

    /// Every parameter under its checkpoint name, in checkpoint order (tied lm_head omitted).
    public func namedParameters(config: ModelConfig) -> [(ParameterSpec, Tensor)] {
        var map: [String: Tensor] = [ParameterNames.embed: embed, ParameterNames.finalNorm: finalNorm]
        if !config.tieEmbeddings { map[ParameterNames.lmHead] = lmHead }
        for (l, b) in blocks.enumerated() {
            map[ParameterNames.inputNorm(l)] = b.inputNorm
            if let p = b.postAttentionNorm { map[ParameterNames.postAttentionNorm(l)] = p }
            let a = b.attention
            func put(_ name: (String, String) -> String, _ w: AttentionWeights) {
                map[name("q", "weight")] = w.q; map[name("o", "weight")] = w.o
                if let k = w.k { map[name("k", "weight")] = k }
                if let v = w.v { map[name("v", "weight")] = v }
                if let x = w.qBias { map[name("q", "bias")] = x }
                if let x = w.kBias { map[name("k", "bias")] = x }
                if let x = w.vBias { map[name("v", "bias")] = x }
                if let x = w.oBias { map[name("o", "bias")] = x }
            }
            if config.moa != nil {
                map[ParameterNames.attentionRouter(l)] = a.router
                for (e, w) in a.experts.enumerated() { put({ ParameterNames.attentionExpert(l, e, $0, $1) }, w) }
                if let k = a.sharedK { map[ParameterNames.attention(l, "k")] = k }
                if let v = a.sharedV { map[ParameterNames.attention(l, "v")] = v }
                if let k = a.sharedKBias { map[ParameterNames.attention(l, "k", "bias")] = k }
                if let v = a.sharedVBias { map[ParameterNames.attention(l, "v", "bias")] = v }
            } else {
                put({ ParameterNames.attention(l, $0, $1) }, a.experts[0])
            }
            let f = b.feedForward
            if config.moe != nil {
                map[ParameterNames.moeRouter(l)] = f.router
                for (e, w) in f.experts.enumerated() {
                    map[ParameterNames.moeExpert(l, e, "w1")] = w.gate
                    map[ParameterNames.moeExpert(l, e, "w3")] = w.up
                    map[ParameterNames.moeExpert(l, e, "w2")] = w.down
                }
            } else {
                let w = f.experts[0]
                map[ParameterNames.mlp(l, "gate")] = w.gate; map[ParameterNames.mlp(l, "up")] = w.up; map[ParameterNames.mlp(l, "down")] = w.down
                if let x = w.gateBias { map[ParameterNames.mlp(l, "gate", "bias")] = x }
                if let x = w.upBias { map[ParameterNames.mlp(l, "up", "bias")] = x }
                if let x = w.downBias { map[ParameterNames.mlp(l, "down", "bias")] = x }
            }
        }
        return config.parameterSpecs.map { ($0, map[$0.name]!) }
    }
}

/// Presents transformers 5's fused Mixtral layout (`mlp.gate.weight`, `mlp.experts.gate_up_proj`
/// (E, 2F, C) with the gate rows first, `mlp.experts.down_proj` (E, C, F)) under the legacy
/// per-expert names, splitting on access (the MLX "sanitize" step).
final class FusedMixtralStore: TensorStore, @unchecked Sendable {
    let base: any TensorStore
    let config: ModelConfig
    let names: [String]
    private var views: [String: (source: String, offset: Int, shape: [Int])] = [:]

    init(base: any TensorStore, config: ModelConfig) throws {
        self.base = base
        self.config = config
        let E = config.moe!.experts, F = config.intermediate, C = config.hidden
        var names: [String] = []
        var views: [String: (String, Int, [Int])] = [:]
        for n in base.names {
            guard let (l, kind) = FusedMixtralTensor.parse(n) else {
                names.append(n)
                continue
            }
            switch kind {
            case .router:
                views[ParameterNames.moeRouter(l)] = (n, 0, [E, C]); names.append(ParameterNames.moeRouter(l))
            case .gateUp:
                guard base.info(n)?.shape == [E, 2 * F, C] else {
                    throw BamError.mismatch("\(base.location): `\(n)` has shape \(base.info(n)?.shape ?? []); expected \([E, 2 * F, C])")
                }
                for e in 0..<E {
                    views[ParameterNames.moeExpert(l, e, "w1")] = (n, e * 2 * F * C, [F, C])
                    views[ParameterNames.moeExpert(l, e, "w3")] = (n, e * 2 * F * C + F * C, [F, C])
                    names += [ParameterNames.moeExpert(l, e, "w1"), ParameterNames.moeExpert(l, e, "w3")]
                }
            case .down:
                guard base.info(n)?.shape == [E, C, F] else {
                    throw BamError.mismatch("\(base.location): `\(n)` has shape \(base.info(n)?.shape ?? []); expected \([E, C, F])")
                }
                for e in 0..<E {
                    views[ParameterNames.moeExpert(l, e, "w2")] = (n, e * C * F, [C, F])
                    names.append(ParameterNames.moeExpert(l, e, "w2"))
                }
            }
        }
        self.names = names
        self.views = views
    }

    var location: String { base.location }

    func info(_ name: String) -> TensorInfo? {
        guard let v = views[name] else { return base.info(name) }
        guard let b = base.info(v.source) else { return nil }
        let n = v.shape.reduce(1, *)
        return TensorInfo(name: name, dtype: b.dtype, shape: v.shape, byteCount: b.dtype.byteCount(elements: n) ?? 0, file: b.file)
    }

    func bytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let v = views[name], let b = base.info(v.source) else { return try base.bytes(name) }
        let all = try base.bytes(v.source)
        let start = b.dtype.byteCount(elements: v.offset)!
        let count = b.dtype.byteCount(elements: v.shape.reduce(1, *))!
        return UnsafeRawBufferPointer(rebasing: all[start..<(start + count)])
    }

    func tensor(_ name: String) throws -> Tensor {
        guard views[name] != nil else { return try base.tensor(name) }
        return try decodeFloat32(name, owner: self)
    }

    func release(_ name: String) {
        if let v = views[name] { base.release(v.source) } else { base.release(name) }
    }
}
