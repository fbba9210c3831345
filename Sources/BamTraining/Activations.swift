import BamFormats
import BamModels
import BamTensors

// The buffers of one training batch (B sequences of T tokens, N = B*T rows), llm.c style: every
// field's shape in a comment; allocated once per batch shape and reused across steps.

/// Output and statistics of a norm.
final class NormActivations {
    /// The row statistics the backward pass needs, per norm kind.
    enum Statistics {
        case rms(rstd: Tensor)                  // (N)
        case layer(mean: Tensor, rstd: Tensor)  // (N), (N)
    }
    let out: Tensor       // (N, C) normalised and weighted
    let statistics: Statistics

    init(N: Int, C: Int, kind: NormKind) {
        out = Tensor(shape: [N, C])
        switch kind {
        case .rms: statistics = .rms(rstd: Tensor(shape: [N]))
        case .layer: statistics = .layer(mean: Tensor(shape: [N]), rstd: Tensor(shape: [N]))
        }
    }

    var byteCount: Int {
        switch statistics {
        case let .rms(rstd): out.byteCount + rstd.byteCount
        case let .layer(mean, rstd): out.byteCount + mean.byteCount + rstd.byteCount
        }
    }
}

/// A router's logits and decision (probabilities, gates, chosen experts).
final class RouterActivations {
    let logits: Tensor              // (N, E)
    /// Set by the forward pass, read by the backward pass that follows it.
    var decision: RoutingDecision?  // probabilities, weights (N, E); chosen (N)[K]

    init(N: Int, E: Int) { logits = Tensor(shape: [N, E]) }

    var byteCount: Int { logits.byteCount * 4 }

    /// The decision of the forward pass this backward pass belongs to.
    var savedDecision: RoutingDecision {
        guard let decision else { preconditionFailure("a router's backward pass ran before its forward pass") }
        return decision
    }
}

/// One attention's queries and attention (a dense model's attention, or one expert's).
final class AttentionActivations {
    let q: Tensor         // (N, Q) after RoPE
    let att: Tensor       // (N, Q) softmax(q k^T / sqrt(HS)) v: the input of o_proj
    let probs: Tensor     // (B, NH, T, T) attention weights

    init(config c: ModelConfig, B: Int, T: Int) {
        q = Tensor(shape: [B * T, c.qDim])
        att = Tensor(shape: [B * T, c.qDim])
        probs = Tensor(shape: [B, c.heads, T, T])
    }

    var byteCount: Int { q.byteCount + att.byteCount + probs.byteCount }
}

/// Keys and values after RoPE (one attention's own, or a shared-KV mixture's shared ones).
final class KeyValueActivations {
    let k: Tensor         // (N, KV) after RoPE
    let v: Tensor         // (N, KV)

    init(config c: ModelConfig, N: Int) {
        k = Tensor(shape: [N, c.kvDim])
        v = Tensor(shape: [N, c.kvDim])
    }

    var byteCount: Int { k.byteCount + v.byteCount }
}

/// One FFN expert over the rows routed to it (all N rows for a dense FFN). Sized per batch by
/// the routing, so the buffers grow on demand.
final class FeedForwardActivations {
    var members: [Int] = []   // (n) token rows routed here, in order (mixtures only)
    var rows = 0              // n
    let input = Scratch()     // (n, C) gathered inputs (mixtures only; a dense FFN reads xn)
    let gate = Scratch()      // (n, F) gate projection, before silu
    let up = Scratch()        // (n, F)
    let hidden = Scratch()    // (n, F) silu(gate) * up: the input of down_proj
    let out = Scratch()       // (n, C) expert output before the gate (mixtures only)

    var byteCount: Int { [input, gate, up, hidden, out].reduce(0) { $0 + $1.capacity * 4 } }
}

// A block's weights paired with the buffers its forward pass saves, one case per variant: built
// from the weights (`LayerActivations.init`), so the training passes switch on one value and find
// the weights and the buffers of that variant together.

/// Where a mixture of attention's keys and values come from, with their saved values.
enum KeyValuePass {
    /// One K/V projection read by every expert.
    case shared(KeyValueWeights<Tensor>, KeyValueActivations)
    /// Each expert's own (index = expert).
    case perExpert([(KeyValueWeights<Tensor>, KeyValueActivations)])
}

/// The attention side of a block in a training pass.
enum AttentionPass {
    /// One attention: its weights and saved values.
    case single(QueryOutputWeights<Tensor>, KeyValueWeights<Tensor>, AttentionActivations, KeyValueActivations)
    /// BAM's mixture of attention.
    case mixture(AttentionMixturePass)
}

final class AttentionMixturePass {
    let router: Tensor                      // (E, C)
    let routerActivations: RouterActivations
    let experts: [QueryOutputWeights<Tensor>]
    let activations: [AttentionActivations] // per expert
    let outputs: [Tensor]                   // per expert (N, C): o_proj output before the gate
    let kv: KeyValuePass
    let topK: Int

    init(router: Tensor, experts: [QueryOutputWeights<Tensor>], kv: AttentionKeyValues<Tensor>, topK: Int, config c: ModelConfig, B: Int, T: Int) {
        let N = B * T
        self.router = router
        routerActivations = RouterActivations(N: N, E: experts.count)
        self.experts = experts
        activations = experts.map { _ in AttentionActivations(config: c, B: B, T: T) }
        outputs = experts.map { _ in Tensor(shape: [N, c.hidden]) }
        switch kv {
        case let .shared(w): self.kv = .shared(w, KeyValueActivations(config: c, N: N))
        case let .perExpert(ws): self.kv = .perExpert(ws.map { ($0, KeyValueActivations(config: c, N: N)) })
        }
        self.topK = topK
    }

    /// The keys and values expert e reads.
    func keysValues(_ e: Int) -> KeyValueActivations {
        switch kv {
        case let .shared(_, a): a
        case let .perExpert(pairs): pairs[e].1
        }
    }

    var byteCount: Int {
        let kvBytes: Int
        switch kv {
        case let .shared(_, a): kvBytes = a.byteCount
        case let .perExpert(pairs): kvBytes = pairs.reduce(0) { $0 + $1.1.byteCount }
        }
        return routerActivations.byteCount + activations.reduce(0) { $0 + $1.byteCount } + outputs.reduce(0) { $0 + $1.byteCount } + kvBytes
    }
}

/// The feed-forward side of a block in a training pass.
enum FeedForwardPass {
    case single(FeedForwardWeights<Tensor>, FeedForwardActivations)
    case mixture(router: Tensor, RouterActivations, experts: [FeedForwardWeights<Tensor>], [FeedForwardActivations], routing: FeedForwardRouting)
}

/// How a block combines its sides in a training pass, with what a sequential block saves.
enum LayoutPass {
    /// norm2 = post_attention_layernorm over mid = x + Attn(norm1(x)).
    case sequential(postAttentionNorm: Tensor, residualMid: Tensor, norm2: NormActivations)
    case parallel
}

/// Everything one block saves, with the block's weights.
final class LayerActivations {
    let B: Int, T: Int, N: Int
    let inputNorm: Tensor               // (C) the block's input_layernorm weight
    let norm1: NormActivations          // input_layernorm of the block input
    let layout: LayoutPass
    let attention: AttentionPass
    let feedForward: FeedForwardPass

    init(block: BlockWeights<Tensor>, config c: ModelConfig, B: Int, T: Int) {
        self.B = B; self.T = T; N = B * T
        inputNorm = block.inputNorm
        norm1 = NormActivations(N: N, C: c.hidden, kind: c.norm)
        switch block.attention {
        case let .single(qo, kv):
            attention = .single(qo, kv, AttentionActivations(config: c, B: B, T: T), KeyValueActivations(config: c, N: B * T))
        case let .mixture(router, experts, kv, topK):
            attention = .mixture(AttentionMixturePass(router: router, experts: experts, kv: kv, topK: topK, config: c, B: B, T: T))
        }
        switch block.layout {
        case let .sequential(norm):
            layout = .sequential(postAttentionNorm: norm, residualMid: Tensor(shape: [B * T, c.hidden]),
                                 norm2: NormActivations(N: B * T, C: c.hidden, kind: c.norm))
        case .parallel:
            layout = .parallel
        }
        switch block.feedForward {
        case let .single(w):
            feedForward = .single(w, FeedForwardActivations())
        case let .mixture(router, experts, routing):
            feedForward = .mixture(router: router, RouterActivations(N: B * T, E: experts.count), experts: experts,
                                   experts.map { _ in FeedForwardActivations() }, routing: routing)
        }
    }

    var byteCount: Int {
        var n = norm1.byteCount
        switch attention {
        case let .single(_, _, a, kv): n += a.byteCount + kv.byteCount
        case let .mixture(m): n += m.byteCount
        }
        switch layout {
        case let .sequential(_, mid, norm2): n += mid.byteCount + norm2.byteCount
        case .parallel: break
        }
        switch feedForward {
        case let .single(_, a): n += a.byteCount
        case let .mixture(_, r, _, acts, _): n += r.byteCount + acts.reduce(0) { $0 + $1.byteCount }
        }
        return n
    }
}

/// The saved activations of a whole forward pass.
final class Activations {
    let B: Int, T: Int, N: Int
    let residuals: [Tensor]           // (L+1) x (N, C): the embeddings, then each block's output
    let layers: [LayerActivations]    // (L)
    let attnOut: Tensor               // (N, C) the attention side's output (consumed at once)
    let ffnOut: Tensor                // (N, C) the FFN side's output (consumed at once)
    let finalNorm: NormActivations    // model.norm
    let logits: Tensor                // (N, V) logitScale * finalNorm W_lm^T; with targets, dCE/dlogits in place
    let losses: UnsafeMutablePointer<Double>  // (N) per-position cross-entropy

    init(weights: TransformerWeights, config c: ModelConfig, B: Int, T: Int) {
        self.B = B; self.T = T; N = B * T
        residuals = (0...c.layers).map { _ in Tensor(shape: [B * T, c.hidden]) }
        layers = weights.blocks.map { LayerActivations(block: $0, config: c, B: B, T: T) }
        attnOut = Tensor(shape: [B * T, c.hidden])
        ffnOut = Tensor(shape: [B * T, c.hidden])
        finalNorm = NormActivations(N: B * T, C: c.hidden, kind: c.norm)
        logits = Tensor(shape: [B * T, c.vocabSize])
        losses = .allocate(capacity: B * T)
        losses.initialize(repeating: 0, count: B * T)

    }

    deinit { losses.deallocate() }

    var byteCount: Int {
        residuals.reduce(0) { $0 + $1.byteCount } + layers.reduce(0) { $0 + $1.byteCount } + attnOut.byteCount * 2
            + finalNorm.byteCount + logits.byteCount + N * 8
    }
}

/// Gradient buffers of activations, shared by all layers (the backward pass visits one layer at a time).
final class BackwardBuffers {
    let dres: Tensor      // (N, C) dL/d residual stream
    let dxn: Tensor       // (N, C) dL/d a block's normalised input
    let dy: Tensor        // (N, C) dL/d an expert's output (gated copy of dout)
    let dxg: Tensor       // (N, C) dL/d an FFN expert's gathered input
    let dq: Tensor        // (N, Q)
    let dk: Tensor        // (N, KV)
    let dv: Tensor        // (N, KV)
    let datt: Tensor      // (N, Q)
    let dscores: Tensor   // (B*NKV, T, T) attention backward scratch
    let dh: Tensor        // (N, F) dL/d silu(gate) * up
    let dgate: Tensor     // (N, F)
    let dup: Tensor       // (N, F)
    let dgates: Tensor    // (N, E) dL/d router gates
    let dprobs: Tensor    // (N, E) dL/d router probabilities
    let drouter: Tensor   // (N, E) dL/d router logits

    init(config c: ModelConfig, B: Int, T: Int) {
        let N = B * T, C = c.hidden, F = c.intermediate
        var E = 1
        if case let .mixture(moe) = c.feedForward { E = max(E, moe.experts) }
        if case let .mixture(moa) = c.attention { E = max(E, moa.experts) }
        dres = Tensor(shape: [N, C]); dxn = Tensor(shape: [N, C]); dy = Tensor(shape: [N, C]); dxg = Tensor(shape: [N, C])
        dq = Tensor(shape: [N, c.qDim]); dk = Tensor(shape: [N, c.kvDim]); dv = Tensor(shape: [N, c.kvDim])
        datt = Tensor(shape: [N, c.qDim])
        dscores = Tensor(shape: [B * c.kvHeads, T, T])
        dh = Tensor(shape: [N, F]); dgate = Tensor(shape: [N, F]); dup = Tensor(shape: [N, F])
        dgates = Tensor(shape: [N, E]); dprobs = Tensor(shape: [N, E]); drouter = Tensor(shape: [N, E])
    }

    var byteCount: Int {
        [dres, dxn, dy, dxg, dq, dk, dv, datt, dscores, dh, dgate, dup, dgates, dprobs, drouter].reduce(0) { $0 + $1.byteCount }
    }
}
