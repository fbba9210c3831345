import BamFormats
import BamModels
import BamTensors

// The buffers of one training batch (B sequences of T tokens, N = B*T rows), llm.c style: every
// field's shape in a comment; allocated once per batch shape and reused across steps.

/// Output and statistics of a norm.
final class NormActivations {
    let out: Tensor       // (N, C) normalised and weighted
    let rstd: Tensor      // (N)
    let mean: Tensor?     // (N) LayerNorm only

    init(N: Int, C: Int, layerNorm: Bool) {
        out = Tensor(shape: [N, C])
        rstd = Tensor(shape: [N])
        mean = layerNorm ? Tensor(shape: [N]) : nil
    }

    var byteCount: Int { out.byteCount + rstd.byteCount + (mean?.byteCount ?? 0) }
}

/// A router's logits and decision (probabilities, gates, chosen experts).
final class RouterActivations {
    let logits: Tensor              // (N, E)
    var decision: RoutingDecision?  // probabilities, weights (N, E); chosen (N)[K]

    init(N: Int, E: Int) { logits = Tensor(shape: [N, E]) }

    var byteCount: Int { logits.byteCount * 4 }
}

/// One attention expert (or a dense model's attention).
final class AttentionActivations {
    let q: Tensor         // (N, Q) after RoPE
    let k: Tensor?        // (N, KV) after RoPE; nil when K/V are shared
    let v: Tensor?        // (N, KV)
    let att: Tensor       // (N, Q) softmax(q k^T / sqrt(HS)) v: the input of o_proj
    let probs: Tensor     // (B, NH, T, T) attention weights
    let out: Tensor?      // (N, C) o_proj output before the gate (mixtures only)

    init(config c: ModelConfig, B: Int, T: Int, ownKV: Bool, gated: Bool) {
        let N = B * T
        q = Tensor(shape: [N, c.qDim])
        k = ownKV ? Tensor(shape: [N, c.kvDim]) : nil
        v = ownKV ? Tensor(shape: [N, c.kvDim]) : nil
        att = Tensor(shape: [N, c.qDim])
        probs = Tensor(shape: [B, c.heads, T, T])
        out = gated ? Tensor(shape: [N, c.hidden]) : nil
    }

    var byteCount: Int { [q, k, v, att, probs, out].reduce(0) { $0 + ($1?.byteCount ?? 0) } }
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

/// Everything one block saves.
final class LayerActivations {
    let B: Int, T: Int, N: Int
    let norm1: NormActivations          // input_layernorm of the block input
    let attnRouter: RouterActivations?  // (N, E) BAM attention router
    let sharedK: Tensor?                // (N, KV) after RoPE, shared-KV BAM
    let sharedV: Tensor?                // (N, KV)
    let attention: [AttentionActivations]   // (E attention experts, or 1)
    let residualMid: Tensor?            // (N, C) x + Attn(norm1(x)), sequential blocks
    let norm2: NormActivations?         // post_attention_layernorm, sequential blocks
    let ffnRouter: RouterActivations?   // (N, E) FFN router
    let ffn: [FeedForwardActivations]   // (E FFN experts, or 1)

    init(config c: ModelConfig, B: Int, T: Int) {
        self.B = B; self.T = T; N = B * T
        let layerNorm = c.norm == .layer
        norm1 = NormActivations(N: N, C: c.hidden, layerNorm: layerNorm)
        let moaExperts = c.moa?.experts
        attnRouter = moaExperts.map { RouterActivations(N: B * T, E: $0) }
        let shared = c.moa?.kind == .sharedKV
        sharedK = shared ? Tensor(shape: [B * T, c.kvDim]) : nil
        sharedV = shared ? Tensor(shape: [B * T, c.kvDim]) : nil
        attention = (0..<(moaExperts ?? 1)).map { _ in
            AttentionActivations(config: c, B: B, T: T, ownKV: !shared, gated: moaExperts != nil)
        }
        residualMid = c.parallelBlock ? nil : Tensor(shape: [B * T, c.hidden])
        norm2 = c.parallelBlock ? nil : NormActivations(N: B * T, C: c.hidden, layerNorm: layerNorm)
        ffnRouter = c.moe.map { RouterActivations(N: B * T, E: $0.experts) }
        ffn = (0..<(c.moe?.experts ?? 1)).map { _ in FeedForwardActivations() }
    }

    /// The keys and values attention expert e reads: its own, or the shared ones.
    func keysValues(_ e: Int) -> (k: Tensor, v: Tensor) {
        if let k = sharedK, let v = sharedV { return (k, v) }
        return (attention[e].k!, attention[e].v!)
    }

    var byteCount: Int {
        norm1.byteCount + (attnRouter?.byteCount ?? 0) + (sharedK?.byteCount ?? 0) * 2
            + attention.reduce(0) { $0 + $1.byteCount } + (residualMid?.byteCount ?? 0) + (norm2?.byteCount ?? 0)
            + (ffnRouter?.byteCount ?? 0) + ffn.reduce(0) { $0 + $1.byteCount }
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

    init(config c: ModelConfig, B: Int, T: Int) {
        self.B = B; self.T = T; N = B * T
        residuals = (0...c.layers).map { _ in Tensor(shape: [B * T, c.hidden]) }
        layers = (0..<c.layers).map { _ in LayerActivations(config: c, B: B, T: T) }
        attnOut = Tensor(shape: [B * T, c.hidden])
        ffnOut = Tensor(shape: [B * T, c.hidden])
        finalNorm = NormActivations(N: B * T, C: c.hidden, layerNorm: c.norm == .layer)
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
        let E = max(c.moe?.experts ?? 1, c.moa?.experts ?? 1)
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
