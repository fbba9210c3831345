import BamFormats
import BamTensors
import Foundation

// The weights of every model bam-mix runs, typed by variant: a block is sequential (with its
// post-attention norm) or parallel; its attention side is one attention or BAM's mixture of
// attention experts (with keys/values per expert or shared); its FFN side is one SwiGLU or a
// mixture behind a router. Inference (Transformer.swift) and training (TrainingModel.swift) switch
// on these same values. Which tensors exist and what they are called comes from the config's
// parameter table (`ModelConfig.parameterSpecs`): `load` reads exactly those, `assemble` builds the
// structure from them and `parameters` walks it back, so names are written nowhere here.
//
// The structure is generic over the type of its matrices (`Linear`): training, mixing and writing
// hold float32 tensors (`TransformerWeights`); inference holds `WeightMatrix`es that stay in the
// type the file stores them in (`InferenceWeights`, InferenceWeights.swift), so a bf16 or Q8_0
// checkpoint runs from its mapping without a float32 copy. Norms, biases and routers are small
// vectors or E x C matrices: they are float32 tensors in both.

/// The type of a model's matrices: `Tensor` (float32, training) or `WeightMatrix` (stored type,
/// inference). A class, so that a tied lm_head is the same object as the embedding.
public protocol LinearWeight: AnyObject, Sendable {}
extension Tensor: LinearWeight {}
extension WeightMatrix: LinearWeight {}

/// The query and output projections of one attention (a dense model's, or one BAM expert's).
public final class QueryOutputWeights<Linear: LinearWeight>: Sendable {
    public let q: Linear          // (NH*HS, C)
    public let o: Linear          // (C, NH*HS)
    public let qBias: Tensor?     // (NH*HS)  attention_bias / Qwen2
    public let oBias: Tensor?     // (C)      attention_bias

    public init(q: Linear, o: Linear, qBias: Tensor? = nil, oBias: Tensor? = nil) {
        self.q = q; self.o = o; self.qBias = qBias; self.oBias = oBias
    }
}

/// The key and value projections of one attention, or the ones a shared-KV mixture's experts share.
public final class KeyValueWeights<Linear: LinearWeight>: Sendable {
    public let k: Linear          // (NKV*HS, C)
    public let v: Linear          // (NKV*HS, C)
    public let kBias: Tensor?     // (NKV*HS)
    public let vBias: Tensor?     // (NKV*HS)

    public init(k: Linear, v: Linear, kBias: Tensor? = nil, vBias: Tensor? = nil) {
        self.k = k; self.v = v; self.kBias = kBias; self.vBias = vBias
    }
}

/// Where a mixture of attention experts gets its keys and values.
public enum AttentionKeyValues<Linear: LinearWeight>: Sendable {
    /// One K/V projection (and one cache set) read by every expert's queries.
    case shared(KeyValueWeights<Linear>)
    /// Expert e projects its own (cache set e); one entry per expert.
    case perExpert([KeyValueWeights<Linear>])

    /// Key/value sets the cache keeps for the layer.
    public var sets: Int {
        switch self {
        case .shared: 1
        case let .perExpert(kv): kv.count
        }
    }
}

/// The attention side of a block.
public enum AttentionSide<Linear: LinearWeight>: Sendable {
    /// One multi-head attention (dense models, Mixtral/BTX).
    case single(QueryOutputWeights<Linear>, KeyValueWeights<Linear>)
    /// BAM's mixture of attention: router (E, C), each expert's Q/O, the keys/values, and how many
    /// experts' outputs a token mixes (`topK`: E for the paper's soft routing; the gates are the
    /// softmax renormalised over them).
    case mixture(router: Tensor, experts: [QueryOutputWeights<Linear>], kv: AttentionKeyValues<Linear>, topK: Int)
}

/// One SwiGLU feed-forward network: down(silu(gate x) * up x).
public final class FeedForwardWeights<Linear: LinearWeight>: Sendable {
    public let gate: Linear       // (F, C)   Mixtral's w1
    public let up: Linear         // (F, C)   Mixtral's w3
    public let down: Linear       // (C, F)   Mixtral's w2
    public let gateBias: Tensor?  // (F)      mlp_bias
    public let upBias: Tensor?    // (F)
    public let downBias: Tensor?  // (C)

    public init(gate: Linear, up: Linear, down: Linear, gateBias: Tensor? = nil, upBias: Tensor? = nil, downBias: Tensor? = nil) {
        self.gate = gate; self.up = up; self.down = down
        self.gateBias = gateBias; self.upBias = upBias; self.downBias = downBias
    }
}

/// The feed-forward side of a block.
public enum FeedForwardSide<Linear: LinearWeight>: Sendable {
    /// One SwiGLU FFN (dense models).
    case single(FeedForwardWeights<Linear>)
    /// A mixture of experts (Mixtral/BTX, BAM): router (E, C), the experts, and the config's
    /// routing rule (carried here so that whoever runs the side has all it needs).
    case mixture(router: Tensor, experts: [FeedForwardWeights<Linear>], routing: FeedForwardRouting)
}

public final class BlockWeights<Linear: LinearWeight>: Sendable {
    /// How the block combines its sides, with the norm only a sequential block has.
    public enum Layout: Sendable {
        /// x += Attn(norm1(x)); x += FFN(norm2(x)): `postAttentionNorm` is norm2 (C).
        case sequential(postAttentionNorm: Tensor)
        /// x += Attn(norm(x)) + FFN(norm(x)).
        case parallel
    }

    public let inputNorm: Tensor          // (C)  input_layernorm
    public let layout: Layout
    public let attention: AttentionSide<Linear>
    public let feedForward: FeedForwardSide<Linear>

    public init(inputNorm: Tensor, layout: Layout, attention: AttentionSide<Linear>, feedForward: FeedForwardSide<Linear>) {
        self.inputNorm = inputNorm
        self.layout = layout
        self.attention = attention
        self.feedForward = feedForward
    }
}

/// A whole model's weights with matrices of type `Linear`.
public final class ModelWeights<Linear: LinearWeight>: Sendable {
    /// (V, C). A matrix like the others (a row gather reads it), so that a tied lm_head can be the
    /// same object and a bf16/Q8_0 embedding stays in its type.
    public let embed: Linear
    public let blocks: [BlockWeights<Linear>]     // (L)
    public let finalNorm: Tensor                  // (C)
    public let lmHead: Linear                     // (V, C); the same object as `embed` when tied

    public init(embed: Linear, blocks: [BlockWeights<Linear>], finalNorm: Tensor, lmHead: Linear) {
        self.embed = embed
        self.blocks = blocks
        self.finalNorm = finalNorm
        self.lmHead = lmHead
    }
}

/// The float32 weights training, mixing and checkpoint writing work on.
public typealias TransformerWeights = ModelWeights<Tensor>

extension ParameterSpec {
    /// Whether the weights structure holds this parameter as a matrix of its `Linear` type: the
    /// embedding and every projection a forward pass multiplies by, except the routers (small E x C
    /// float32 tensors, so routing decisions are made at full precision in every mode).
    public var isModelMatrix: Bool {
        switch role {
        case .embedding, .lmHead, .attention, .sharedKV, .feedForward: true
        case .attentionRouter, .ffnRouter, .norm, .attentionBias, .feedForwardBias: false
        }
    }
}

extension ModelWeights {
    /// The parameter table of `config` checked against `store`: shapes agree, nothing is missing
    /// and nothing is left over (a leftover tensor means the config and the weights disagree,
    /// which would otherwise give silently wrong logits). Returns the store to read from (the
    /// fused-Mixtral layout is presented under per-expert names).
    static func checkedStore(config: ModelConfig, store: any TensorStore) throws -> any TensorStore {
        let store = try presented(config: config, store: store)
        let specs = config.parameterSpecs
        for spec in specs {
            guard let info = store.info(spec.name) else {
                let denseFFN = ParameterKey.feedForward(layer: 0, expert: nil, .gate, .weight).hfName
                let mixtureFFN = spec.role == .ffnRouter || (spec.role == .feedForward && spec.expert != nil)
                let hint = mixtureFFN && store.contains(denseFFN)
                    ? " — the config describes a mixture of experts but the weights are dense" : ""
                throw BamError.format(store.location, at: .tensor(spec.name), "the tensor the \(config.architectureName) config implies is missing\(hint)", expected: "shape \(spec.shape)", found: "no such tensor")
            }
            guard info.shape == spec.shape else {
                throw BamError.mismatch("the shape differs from the one config.json implies", file: info.file, at: .tensor(spec.name), expected: "\(spec.shape)", found: "\(info.shape)")
            }
        }
        let expected = Set(specs.map(\.name))
        // Buffers some exporters keep (rotary caches) are not parameters.
        let leftovers = store.names.filter { !expected.contains($0) && !$0.hasSuffix("rotary_emb.inv_freq") }
        if !leftovers.isEmpty {
            let lmHead = ParameterKey.lmHead.hfName
            let tieHint = config.tieEmbeddings && leftovers.contains(lmHead) ? " (config says tie_word_embeddings but \(lmHead) is present)" : ""
            throw BamError.mismatch("\(leftovers.count) tensor(s) the \(config.architectureName) config does not account for\(tieHint)", file: store.location,
                                    at: .tensor(leftovers[0]))
        }
        return store
    }

    /// `store` under the table's names: transformers 5's fused-Mixtral layout is presented under
    /// per-expert names; everything else is itself.
    static func presented(config: ModelConfig, store: any TensorStore) throws -> any TensorStore {
        if case let .mixture(moe) = config.feedForward, config.family == .mixtral,
           !store.contains(ParameterKey.ffnRouter(layer: 0).hfName), store.contains("model.layers.0.mlp.experts.gate_up_proj") {
            return try FusedMixtralStore(base: store, config: config, experts: moe.experts)
        }
        return store
    }

    /// Builds the structure from one entry per row of `config.parameterSpecs`: `matrices` holds
    /// the rows with `isModelMatrix`, `vectors` the others (norms, routers, biases). Biases are
    /// looked up and present exactly when the table has them.
    public static func assemble(config: ModelConfig, matrices: [ParameterKey: Linear], vectors: [ParameterKey: Tensor]) -> ModelWeights {
        func m(_ key: ParameterKey) -> Linear {
            guard let x = matrices[key] else {
                preconditionFailure("no matrix for `\(key.hfName)`, which the \(config.architectureName) parameter table lists")
            }
            return x
        }
        func t(_ key: ParameterKey) -> Tensor {
            guard let x = vectors[key] else {
                preconditionFailure("no tensor for `\(key.hfName)`, which the \(config.architectureName) parameter table lists")
            }
            return x
        }
        var blocks: [BlockWeights<Linear>] = []
        for l in 0..<config.layers {
            func queryOutput(_ e: Int?) -> QueryOutputWeights<Linear> {
                QueryOutputWeights(q: m(.attention(layer: l, expert: e, .q, .weight)), o: m(.attention(layer: l, expert: e, .o, .weight)),
                                   qBias: vectors[.attention(layer: l, expert: e, .q, .bias)],
                                   oBias: vectors[.attention(layer: l, expert: e, .o, .bias)])
            }
            func keyValue(_ e: Int?) -> KeyValueWeights<Linear> {
                KeyValueWeights(k: m(.attention(layer: l, expert: e, .k, .weight)), v: m(.attention(layer: l, expert: e, .v, .weight)),
                                kBias: vectors[.attention(layer: l, expert: e, .k, .bias)],
                                vBias: vectors[.attention(layer: l, expert: e, .v, .bias)])
            }
            func feedForward(_ e: Int?) -> FeedForwardWeights<Linear> {
                FeedForwardWeights(gate: m(.feedForward(layer: l, expert: e, .gate, .weight)),
                                   up: m(.feedForward(layer: l, expert: e, .up, .weight)),
                                   down: m(.feedForward(layer: l, expert: e, .down, .weight)),
                                   gateBias: vectors[.feedForward(layer: l, expert: e, .gate, .bias)],
                                   upBias: vectors[.feedForward(layer: l, expert: e, .up, .bias)],
                                   downBias: vectors[.feedForward(layer: l, expert: e, .down, .bias)])
            }
            let attention: AttentionSide<Linear>
            switch config.attention {
            case .single:
                attention = .single(queryOutput(nil), keyValue(nil))
            case let .mixture(moa):
                let kv: AttentionKeyValues<Linear>
                switch moa.kind {
                case .sharedKV: kv = .shared(keyValue(nil))
                case .expertKV: kv = .perExpert((0..<moa.experts).map { keyValue($0) })
                }
                attention = .mixture(router: t(.attentionRouter(layer: l)), experts: (0..<moa.experts).map { queryOutput($0) }, kv: kv,
                                     topK: moa.expertsPerToken)
            }
            let ffn: FeedForwardSide<Linear>
            switch config.feedForward {
            case .single: ffn = .single(feedForward(nil))
            case let .mixture(moe):
                ffn = .mixture(router: t(.ffnRouter(layer: l)), experts: (0..<moe.experts).map { feedForward($0) }, routing: moe.routing)
            }
            let layout: BlockWeights<Linear>.Layout
            switch config.blockLayout {
            case .sequential: layout = .sequential(postAttentionNorm: t(.postAttentionNorm(layer: l)))
            case .parallel: layout = .parallel
            }
            blocks.append(BlockWeights(inputNorm: t(.inputNorm(layer: l)), layout: layout, attention: attention, feedForward: ffn))
        }
        let embed = m(.embedding)
        let lmHead = config.tieEmbeddings ? embed : m(.lmHead)
        return ModelWeights(embed: embed, blocks: blocks, finalNorm: t(.finalNorm), lmHead: lmHead)
    }

    /// Every matrix of the structure once (a tied lm_head is the embedding), for sizes and page-ins.
    public var matrices: [Linear] {
        var all: [Linear] = [embed]
        if lmHead !== embed { all.append(lmHead) }
        func add(_ w: QueryOutputWeights<Linear>) { all += [w.q, w.o] }
        func add(_ w: KeyValueWeights<Linear>) { all += [w.k, w.v] }
        func add(_ w: FeedForwardWeights<Linear>) { all += [w.gate, w.up, w.down] }
        for b in blocks {
            switch b.attention {
            case let .single(qo, kv):
                add(qo); add(kv)
            case let .mixture(_, experts, kv, _):
                experts.forEach(add)
                switch kv {
                case let .shared(w): add(w)
                case let .perExpert(ws): ws.forEach(add)
                }
            }
            switch b.feedForward {
            case let .single(w): add(w)
            case let .mixture(_, experts, _): experts.forEach(add)
            }
        }
        return all
    }

    /// Every float32 tensor that is not a matrix (norms, routers, biases).
    public var vectors: [Tensor] {
        var all: [Tensor] = [finalNorm]
        func biases(_ w: QueryOutputWeights<Linear>) { all += [w.qBias, w.oBias].compactMap { $0 } }
        func biases(_ w: KeyValueWeights<Linear>) { all += [w.kBias, w.vBias].compactMap { $0 } }
        func biases(_ w: FeedForwardWeights<Linear>) { all += [w.gateBias, w.upBias, w.downBias].compactMap { $0 } }
        for b in blocks {
            all.append(b.inputNorm)
            if case let .sequential(norm) = b.layout { all.append(norm) }
            switch b.attention {
            case let .single(qo, kv):
                biases(qo); biases(kv)
            case let .mixture(router, experts, kv, _):
                all.append(router)
                experts.forEach(biases)
                switch kv {
                case let .shared(w): biases(w)
                case let .perExpert(ws): ws.forEach(biases)
                }
            }
            switch b.feedForward {
            case let .single(w): biases(w)
            case let .mixture(router, experts, _):
                all.append(router)
                experts.forEach(biases)
            }
        }
        return all
    }
}

extension TransformerWeights {
    /// Loads every parameter the config implies from `store` as float32 (checked as
    /// `checkedStore` says).
    public static func load(config: ModelConfig, store: any TensorStore) throws -> TransformerWeights {
        let store = try checkedStore(config: config, store: store)
        var tensors: [ParameterKey: Tensor] = [:]
        for spec in config.parameterSpecs { tensors[spec.key] = try store.tensor(spec.name) }
        return assemble(config: config, tensors)
    }

    /// Builds the structure from one tensor per entry of `config.parameterSpecs` (by key).
    public static func assemble(config: ModelConfig, _ tensors: [ParameterKey: Tensor]) -> TransformerWeights {
        assemble(config: config, matrices: tensors, vectors: tensors)
    }

    /// Every tensor of the structure by key (the tied lm_head omitted): the inverse of `assemble`.
    public func parameters(tiedEmbeddings: Bool) -> [ParameterKey: Tensor] {
        var map: [ParameterKey: Tensor] = [.embedding: embed, .finalNorm: finalNorm]
        if !tiedEmbeddings { map[.lmHead] = lmHead }
        for (l, b) in blocks.enumerated() {
            map[.inputNorm(layer: l)] = b.inputNorm
            switch b.layout {
            case let .sequential(norm): map[.postAttentionNorm(layer: l)] = norm
            case .parallel: break
            }
            func put(_ e: Int?, _ w: QueryOutputWeights<Tensor>) {
                map[.attention(layer: l, expert: e, .q, .weight)] = w.q
                map[.attention(layer: l, expert: e, .o, .weight)] = w.o
                map[.attention(layer: l, expert: e, .q, .bias)] = w.qBias
                map[.attention(layer: l, expert: e, .o, .bias)] = w.oBias
            }
            func put(_ e: Int?, _ w: KeyValueWeights<Tensor>) {
                map[.attention(layer: l, expert: e, .k, .weight)] = w.k
                map[.attention(layer: l, expert: e, .v, .weight)] = w.v
                map[.attention(layer: l, expert: e, .k, .bias)] = w.kBias
                map[.attention(layer: l, expert: e, .v, .bias)] = w.vBias
            }
            func put(_ e: Int?, _ w: FeedForwardWeights<Tensor>) {
                map[.feedForward(layer: l, expert: e, .gate, .weight)] = w.gate
                map[.feedForward(layer: l, expert: e, .up, .weight)] = w.up
                map[.feedForward(layer: l, expert: e, .down, .weight)] = w.down
                map[.feedForward(layer: l, expert: e, .gate, .bias)] = w.gateBias
                map[.feedForward(layer: l, expert: e, .up, .bias)] = w.upBias
                map[.feedForward(layer: l, expert: e, .down, .bias)] = w.downBias
            }
            switch b.attention {
            case let .single(qo, kv):
                put(nil, qo)
                put(nil, kv)
            case let .mixture(router, experts, kv, _):
                map[.attentionRouter(layer: l)] = router
                for (e, w) in experts.enumerated() { put(e, w) }
                switch kv {
                case let .shared(w): put(nil, w)
                case let .perExpert(ws): for (e, w) in ws.enumerated() { put(e, w) }
                }
            }
            switch b.feedForward {
            case let .single(w): put(nil, w)
            case let .mixture(router, experts, _):
                map[.ffnRouter(layer: l)] = router
                for (e, w) in experts.enumerated() { put(e, w) }
            }
        }
        return map
    }

    /// Every parameter with its table entry, in checkpoint order (tied lm_head omitted).
    public func namedParameters(config: ModelConfig) -> [(ParameterSpec, Tensor)] {
        let map = parameters(tiedEmbeddings: config.tieEmbeddings)
        let specs = config.parameterSpecs
        precondition(map.count == specs.count, "the weights hold \(map.count) tensors; the \(config.architectureName) parameter table lists \(specs.count)")
        return specs.map { spec in
            guard let t = map[spec.key] else { preconditionFailure("the weights have no `\(spec.name)`, which the parameter table lists") }
            return (spec, t)
        }
    }
}

/// Presents transformers 5's fused Mixtral layout (`mlp.gate.weight`, `mlp.experts.gate_up_proj`
/// (E, 2F, C) with the gate rows first, `mlp.experts.down_proj` (E, C, F)) under the legacy
/// per-expert names, splitting on access (the MLX "sanitize" step).
final class FusedMixtralStore: TensorStore, @unchecked Sendable {
    let base: any TensorStore
    let names: [String]
    private var views: [String: (source: String, offset: Int, shape: [Int])] = [:]

    init(base: any TensorStore, config: ModelConfig, experts E: Int) throws {
        self.base = base
        let F = config.intermediate, C = config.hidden
        var names: [String] = []
        var views: [String: (String, Int, [Int])] = [:]
        func expert(_ l: Int, _ e: Int, _ p: FeedForwardProjection) -> String {
            ParameterKey.feedForward(layer: l, expert: e, p, .weight).hfName
        }
        for n in base.names {
            guard let (l, kind) = FusedMixtralTensor.parse(n) else {
                names.append(n)
                continue
            }
            switch kind {
            case .router:
                let router = ParameterKey.ffnRouter(layer: l).hfName
                views[router] = (n, 0, [E, C]); names.append(router)
            case .gateUp:
                guard base.info(n)?.shape == [E, 2 * F, C] else {
                    throw BamError.mismatch("stacked experts' shape", file: base.location, at: .tensor(n), expected: "\([E, 2 * F, C])", found: "\(base.info(n)?.shape ?? [])")
                }
                for e in 0..<E {
                    views[expert(l, e, .gate)] = (n, e * 2 * F * C, [F, C])
                    views[expert(l, e, .up)] = (n, e * 2 * F * C + F * C, [F, C])
                    names += [expert(l, e, .gate), expert(l, e, .up)]
                }
            case .down:
                guard base.info(n)?.shape == [E, C, F] else {
                    throw BamError.mismatch("stacked experts' shape", file: base.location, at: .tensor(n), expected: "\([E, C, F])", found: "\(base.info(n)?.shape ?? [])")
                }
                for e in 0..<E {
                    views[expert(l, e, .down)] = (n, e * C * F, [C, F])
                    names.append(expert(l, e, .down))
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

    func bytesOwner(_ name: String) -> AnyObject { base.bytesOwner(views[name]?.source ?? name) }
}
