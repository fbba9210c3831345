import BamFormats
import BamModels
import BamTensors
import Foundation

// The training forward and backward of every model bam-mix runs (dense, Mixtral/BTX, BAM), over a
// batch of B sequences of T tokens (N = B*T rows). The forward saves what the backward needs in
// explicit buffers (`Activations`); the backward is the forward's list of ops in reverse and
// accumulates parameter gradients into `grads`, a TransformerWeights of the same structure as the
// parameters (tied lm_head: one tensor, so both uses accumulate into the embedding's gradient).
//
// Block (docs/methods.md; Transformer.swift does the same for inference):
//   sequential: x += Attn(norm1(x)); x += FFN(norm2(x))
//   parallel:   x += Attn(norm(x)) + FFN(norm(x))
// Attn = one attention, or BAM's MoA(h) = sum_j g_j(h) MHA_j(h);
// FFN  = one SwiGLU, or the mixture sum_{i in TopK} g_i(h) FFN_i(h).

/// How the router losses enter the training objective (docs/methods.md):
/// L = L_NLL + sum over FFN mixture layers (alpha * L_aux + beta * L_z). The attention router of a
/// BAM model has no auxiliary loss.
public struct LossOptions: Sendable, Equatable, Codable {
    public var aux: AuxLossKind
    public var auxAlpha: Double
    public var zBeta: Double

    public init(aux: AuxLossKind = .btx, auxAlpha: Double = 0.01, zBeta: Double = 0.001) {
        self.aux = aux
        self.auxAlpha = auxAlpha
        self.zBeta = zBeta
    }
}

/// The losses of one batch.
public struct BatchLosses: Sendable {
    /// Mean next-token cross-entropy over the scored positions (nats).
    public var lm: Double
    /// Router losses summed over the FFN mixture layers (unweighted).
    public var router: RouterLossValues
    /// lm + alpha * aux + beta * z: what the backward pass differentiates.
    public var total: Double
    /// Positions with a target.
    public var scored: Int
    /// Per FFN mixture layer: the fraction of routed (token, slot) pairs each expert received, count_i / (N K).
    public var expertLoad: [[Double]]
    /// Per mixture-of-attention layer: the mean attention gate of each expert (padding left out).
    public var attentionLoad: [[Double]]
}

/// Where sampled top-1 routing (FeedForwardRouting.sampleTop1) takes its Gumbel noise in a
/// training forward pass.
public enum GumbelNoiseSource: Sendable {
    /// Drawn from a SplitMix64 seeded by (seed, step, micro-batch, FFN layer), at the temperature
    /// max(0.5, exp(-r step)): the same noise for every run with that seed, also a resumed one.
    case seeded(seed: UInt64, step: Int, microBatch: Int)
    /// Given per layer (T * E values for each of the L layers, in layer order) with its
    /// temperature: tests feeding the noise a PyTorch run used.
    case given([[Float]], temperature: Float)
}

extension GumbelNoiseSource {
    /// Layer l's noise for N tokens over E experts, and its temperature (`decay`: the routing's r).
    /// The seeded stream is bam_mix_torch's `data.gumbel_noise` too, so both finetunes sample alike.
    public func sample(layer l: Int, N: Int, E: Int, decay: Double) throws -> GumbelSample {
        switch self {
        case let .seeded(seed, step, microBatch):
            // One stream per (seed, step, micro-batch, layer), mixed so neighbouring ones are unrelated.
            var rng = SplitMix64(seed: seed ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(microBatch) &* 0xC2B2_AE3D_27D4_EB4F)
                                 ^ (UInt64(l) &* 0x1656_67B1_9E37_79F9))
            return GumbelSample(T: N, E: E, temperature: FeedForwardRouting.gumbelTemperature(decay: decay, step: step), rng: &rng)
        case let .given(layers, temperature):
            guard l < layers.count, layers[l].count == N * E else {
                throw BamError.usage("given Gumbel noise: layer \(l) needs \(N) x \(E) values, found \(l < layers.count ? layers[l].count : 0)")
            }
            return GumbelSample(noise: layers[l], temperature: temperature)
        }
    }
}

/// A model being trained: parameters, gradients, activations and the forward/backward passes.
public final class TrainingModel {
    public let config: ModelConfig
    /// The parameters; the optimiser updates them in place.
    public let weights: TransformerWeights
    public var losses: LossOptions
    /// Sampled top-1 routing's noise for the next forward passes; nil routes as inference does
    /// (argmax), which is what validation wants. The Trainer sets it per training micro-batch.
    public var gumbelNoise: GumbelNoiseSource?
    /// The trainable parameters (checkpoint order) with their gradients.
    public let trainable: [(spec: ParameterSpec, parameter: Tensor, gradient: Tensor)]
    /// dL/dparameter of every trainable parameter, by the parameter's identity (a tied lm_head is
    /// the embedding object, so both uses accumulate into one gradient); frozen ones are absent.
    private let gradients: [ObjectIdentifier: Tensor]
    let rope: RopeTable
    /// The config's pad_token_id: its input embedding gets no gradient (torch's padding_idx).
    let paddingToken: Int32?
    /// FFN mixture experts (by their gate weight) that some backward pass since the last
    /// `zeroGradients` routed tokens through.
    private var usedExperts = Set<ObjectIdentifier>()

    private(set) var acts: Activations?
    private var scratch: BackwardBuffers?
    private var inputs: [Int32] = []
    private var targets: [Int32] = []
    /// (N) the tokens of the last forward pass that are not padding (nil: all are).
    private var tokenMask: [Bool]?
    private var scored = 0
    private var readyForBackward = false

    /// `isTrainable` picks the parameters that get gradients (all by default).
    public init(config: ModelConfig, weights: TransformerWeights, losses: LossOptions = LossOptions(),
                isTrainable: (ParameterSpec) -> Bool = { _ in true }) {
        self.config = config
        self.weights = weights
        self.losses = losses
        var gradients: [ObjectIdentifier: Tensor] = [:]
        var trainable: [(spec: ParameterSpec, parameter: Tensor, gradient: Tensor)] = []
        for (spec, t) in weights.namedParameters(config: config) where isTrainable(spec) {
            let g = Tensor(shape: spec.shape)
            gradients[ObjectIdentifier(t)] = g
            trainable.append((spec, t, g))
        }
        self.gradients = gradients
        self.trainable = trainable
        rope = RopeTable(headSize: config.headDim, theta: config.ropeTheta, style: config.ropeStyle, scaling: config.ropeScaling)
        paddingToken = config.raw["pad_token_id"]?.intValue.map { Int32($0) }
    }

    /// Sets every gradient to zero (the explicit call before a step's first backward).
    public func zeroGradients() {
        for (_, _, g) in trainable {
            let gP = SendablePointer(g.data)
            BLASThreads.parallelRanges(g.count, minimumPerChunk: 1 << 16) { r in zeroGradient(gP.pointer + r.lowerBound, count: r.count) }
        }
        usedExperts.removeAll()
    }

    /// Parameters that received no gradient since `zeroGradients`: the FFN experts no token was
    /// routed to. torch leaves the .grad of such separate expert modules None and AdamW then skips
    /// them entirely (no moment update, no weight decay, no step count); `AdamW.update(lr:skipping:)`
    /// does the same (AdamWOptions.skipIdleExperts).
    public var idleParameters: Set<ObjectIdentifier> {
        var idle = Set<ObjectIdentifier>()
        for block in weights.blocks {
            guard case let .mixture(_, experts, _) = block.feedForward else { continue }
            for ex in experts where !usedExperts.contains(ObjectIdentifier(ex.gate)) {
                for t in [ex.gate, ex.up, ex.down, ex.gateBias, ex.upBias, ex.downBias] {
                    if let t { idle.insert(ObjectIdentifier(t)) }
                }
            }
        }
        return idle
    }

    /// The gradient buffer of a parameter, or nil when it is frozen (or absent, for an optional bias).
    @inline(__always) private func grad(_ w: Tensor?) -> UnsafeMutablePointer<Float>? {
        guard let w else { return nil }
        return gradients[ObjectIdentifier(w)]?.data
    }

    /// The logits (B*T, V) of the last forward pass without targets. (With targets the buffer holds
    /// the cross-entropy's gradient with respect to them, which `backward` consumes.)
    public var logits: Tensor? { acts?.logits }

    /// Bytes of activations saved for the backward pass plus the backward scratch buffers.
    public var activationBytes: Int { (acts?.byteCount ?? 0) + (scratch?.byteCount ?? 0) }
    /// Bytes of gradient buffers.
    public var gradientBytes: Int { trainable.reduce(0) { $0 + $1.gradient.byteCount } }

    // MARK: forward

    /// Runs B sequences of T tokens. `inputs` (B*T) are token ids; `targets` (B*T) are the ids to
    /// predict at each position (-1: not scored), or nil for logits only. `tokenMask` (B*T): false
    /// at padding (positions past the end of a short stream), which the router statistics, the
    /// balancing losses, the z-loss and Switch's capacity leave out; nil: no padding. Saves every
    /// activation the backward pass needs.
    @discardableResult
    public func forward(inputs: [Int32], targets: [Int32]?, B: Int, T: Int, tokenMask: [Bool]? = nil) throws -> BatchLosses {
        let N = B * T, C = config.hidden, V = config.vocabSize
        guard B > 0, T > 0, inputs.count == N else {
            throw BamError.usage("training forward: \(inputs.count) input ids for a batch of \(B) x \(T)")
        }
        if let targets, targets.count != N {
            throw BamError.usage("training forward: \(targets.count) targets for a batch of \(B) x \(T)")
        }
        if let tokenMask, tokenMask.count != N {
            throw BamError.usage("training forward: a token mask of \(tokenMask.count) for a batch of \(B) x \(T)")
        }
        try config.checkSequenceLength(T)
        for (i, id) in inputs.enumerated() where id < 0 || Int(id) >= V {
            throw BamError.usage("token id \(id) at batch position \(i) is outside the vocabulary (0..<\(V))")
        }
        for (i, id) in (targets ?? []).enumerated() where Int(id) >= V {
            throw BamError.usage("target id \(id) at batch position \(i) is outside the vocabulary (0..<\(V))")
        }
        let acts: Activations
        if let a = self.acts, a.B == B, a.T == T {
            acts = a
        } else {
            acts = Activations(weights: weights, config: config, B: B, T: T)
            self.acts = acts
            scratch = nil
        }
        self.inputs = inputs
        self.targets = targets ?? [Int32](repeating: -1, count: N)
        self.tokenMask = tokenMask
        readyForBackward = false

        var router = RouterLossValues()
        var expertLoad: [[Double]] = []
        var attentionLoad: [[Double]] = []
        inputs.withUnsafeBufferPointer { encoderForward(acts.residuals[0].data, $0.baseAddress!, weights.embed.data, N: N, C: C) }
        for (l, a) in acts.layers.enumerated() {
            let x = acts.residuals[l].data, out = acts.residuals[l + 1].data
            normForward(a.norm1, x, a.inputNorm)
            attentionForward(acts.attnOut.data, a, xn: a.norm1.out.data)
            if case let .mixture(m) = a.attention, let d = m.routerActivations.decision {
                // Over the tokens, padding left out like the FFN routers' statistics.
                let counted = (0..<N).filter { tokenMask?[$0] ?? true }
                attentionLoad.append((0..<d.E).map { e in
                    counted.reduce(0.0) { $0 + Double(d.weights[$1 * d.E + e]) } / Double(max(1, counted.count))
                })
            }
            switch a.layout {
            case let .sequential(postAttentionNorm, mid, norm2):
                for i in 0..<(N * C) { mid.data[i] = x[i] + acts.attnOut.data[i] }
                normForward(norm2, mid.data, postAttentionNorm)
                try feedForwardForward(acts.ffnOut.data, a, xn: norm2.out.data, layer: l)
                for i in 0..<(N * C) { out[i] = mid.data[i] + acts.ffnOut.data[i] }
            case .parallel:
                try feedForwardForward(acts.ffnOut.data, a, xn: a.norm1.out.data, layer: l)
                for i in 0..<(N * C) { out[i] = x[i] + acts.attnOut.data[i] + acts.ffnOut.data[i] }
            }
            if case let .mixture(_, ra, experts, _, routing) = a.feedForward, let d = ra.decision {
                let K = routing.expertsPerToken(experts: experts.count)
                router = router + routerLossesForward(d, topK: K)
                expertLoad.append(routerStatistics(d, topK: K).f)
            }
        }
        normForward(acts.finalNorm, acts.residuals[config.layers].data, weights.finalNorm)
        matmulForward(acts.logits.data, acts.finalNorm.out.data, weights.lmHead.data, nil, N: N, C: C, OC: V)
        if config.logitScale != 1 {
            let s = config.logitScale
            for i in 0..<acts.logits.count { acts.logits.data[i] *= s }
        }
        var lm = 0.0
        scored = 0
        if targets != nil {
            // The logits become dlosses/dlogits here (fused classifier); `backward` scales them.
            scored = self.targets.withUnsafeBufferPointer {
                crossEntropyForwardBackward(acts.losses, acts.logits.data, $0.baseAddress!, N: N, V: V)
            }
            for n in 0..<N { lm += acts.losses[n] }
            lm /= Double(max(scored, 1))
            readyForBackward = scored > 0
        }
        let total = lm + losses.auxAlpha * router.aux(losses.aux) + losses.zBeta * router.z
        return BatchLosses(lm: lm, router: router, total: total, scored: scored, expertLoad: expertLoad,
                           attentionLoad: attentionLoad)
    }

    private func normForward(_ n: NormActivations, _ inp: UnsafePointer<Float>, _ w: Tensor) {
        let N = n.out.rows, C = config.hidden
        switch n.statistics {
        case let .rms(rstd): rmsnormForward(n.out.data, inp, w.data, T: N, C: C, eps: config.normEps, rstd: rstd.data)
        case let .layer(mean, rstd): layernormForward(n.out.data, inp, w.data, T: N, C: C, eps: config.normEps, mean: mean.data, rstd: rstd.data)
        }
    }

    /// q, k, v of one attention after RoPE, and its causal attention: everything before o_proj.
    /// `kv` nil: the keys and values are a shared-KV mixture's, already in `keysValues`.
    private func attentionCore(_ a: LayerActivations, _ w: QueryOutputWeights<Tensor>, _ ea: AttentionActivations,
                               ownKV kv: KeyValueWeights<Tensor>?, _ keysValues: KeyValueActivations, xn: UnsafePointer<Float>) {
        let c = config, N = a.N, C = c.hidden, Q = c.qDim, KV = c.kvDim
        let shape = CausalAttentionShape(B: a.B, T: a.T, NH: c.heads, NKV: c.kvHeads, HS: c.headDim)
        matmulForward(ea.q.data, xn, w.q.data, w.qBias?.data, N: N, C: C, OC: Q)
        ropeForward(ea.q.data, rope, B: a.B, T: a.T, heads: c.heads)
        if let kv {
            matmulForward(keysValues.k.data, xn, kv.k.data, kv.kBias?.data, N: N, C: C, OC: KV)
            matmulForward(keysValues.v.data, xn, kv.v.data, kv.vBias?.data, N: N, C: C, OC: KV)
            ropeForward(keysValues.k.data, rope, B: a.B, T: a.T, heads: c.kvHeads)
        }
        causalAttentionForward(ea.att.data, ea.probs.data, ea.q.data, keysValues.k.data, keysValues.v.data, shape: shape)
    }

    /// out (N, C) = Attn(xn): one attention, or MoA(xn) = sum_j g_j(xn) * MHA_j(xn) where every
    /// expert runs on every token (its keys and values serve later tokens that choose it) and
    /// g = softmax (soft) or the renormalised top-k of the softmax (docs/methods.md).
    private func attentionForward(_ out: UnsafeMutablePointer<Float>, _ a: LayerActivations, xn: UnsafePointer<Float>) {
        let c = config, N = a.N, C = c.hidden, Q = c.qDim, KV = c.kvDim
        switch a.attention {
        case let .single(w, kv, ea, kva):
            attentionCore(a, w, ea, ownKV: kv, kva, xn: xn)
            matmulForward(out, ea.att.data, w.o.data, w.oBias?.data, N: N, C: Q, OC: C)
        case let .mixture(m):
            let E = m.experts.count
            let ra = m.routerActivations
            matmulForward(ra.logits.data, xn, m.router.data, nil, N: N, C: C, OC: E)
            let decision = route(logits: ra.logits.data, T: N, E: E, topK: m.topK, renormalize: true)
            ra.decision = decision
            if case let .shared(w, kva) = m.kv {
                // Shared-KV: one K and one V projection read by every expert's queries.
                matmulForward(kva.k.data, xn, w.k.data, w.kBias?.data, N: N, C: C, OC: KV)
                matmulForward(kva.v.data, xn, w.v.data, w.vBias?.data, N: N, C: C, OC: KV)
                ropeForward(kva.k.data, rope, B: a.B, T: a.T, heads: c.kvHeads)
            }
            for (e, ex) in m.experts.enumerated() {
                let ownKV: KeyValueWeights<Tensor>?
                switch m.kv {
                case .shared: ownKV = nil
                case let .perExpert(pairs): ownKV = pairs[e].0
                }
                attentionCore(a, ex, m.activations[e], ownKV: ownKV, m.keysValues(e), xn: xn)
                // y_j = o_proj_j(att_j) (bias included), kept for dL/dg_j = <dout, y_j>.
                let y = m.outputs[e]
                matmulForward(y.data, m.activations[e].att.data, ex.o.data, ex.oBias?.data, N: N, C: Q, OC: C)
                for t in 0..<N {
                    let g = decision.weights[t * E + e]
                    let src = y.data + t * C, dst = out + t * C
                    if e == 0 {
                        for i in 0..<C { dst[i] = g * src[i] }
                    } else {
                        for i in 0..<C { dst[i] += g * src[i] }
                    }
                }
            }
        }
    }

    /// out (N, C) = FFN(xn): one SwiGLU, or sum_{i in TopK} g_i(xn) FFN_i(xn) with each expert's
    /// tokens gathered into one GEMM (tokens Switch routing dropped go to no expert).
    private func feedForwardForward(_ out: UnsafeMutablePointer<Float>, _ a: LayerActivations, xn: UnsafePointer<Float>,
                                    layer l: Int) throws {
        let N = a.N, C = config.hidden
        switch a.feedForward {
        case let .single(w, fa):
            fa.rows = N
            ffnExpertForward(out, fa, w, xn, n: N)
        case let .mixture(router, ra, experts, acts, routing):
            let E = experts.count
            matmulForward(ra.logits.data, xn, router.data, nil, N: N, C: C, OC: E)
            let decision = routing.route(logits: ra.logits.data, T: N, E: E, tokenMask: tokenMask,
                                         sample: try gumbelSample(routing, layer: l, N: N, E: E))
            ra.decision = decision
            var members = [[Int]](repeating: [], count: E)
            for t in 0..<N { for e in decision.dispatched(t) { members[e].append(t) } }
            zeroGradient(out, count: N * C)
            for e in 0..<E {
                let fa = acts[e]
                fa.members = members[e]
                let n = members[e].count
                fa.rows = n
                guard n > 0 else { continue }
                let inp = fa.input.reserve(n * C), y = fa.out.reserve(n * C)
                for (r, t) in members[e].enumerated() { (inp + r * C).update(from: xn + t * C, count: C) }
                ffnExpertForward(y, fa, experts[e], inp, n: n)
                for (r, t) in members[e].enumerated() {
                    let g = decision.weights[t * E + e]
                    let src = y + r * C, dst = out + t * C
                    for i in 0..<C { dst[i] += g * src[i] }
                }
            }
        }
    }

    /// The Gumbel noise of layer l's sampled top-1 router in this forward pass (nil: another
    /// routing, or no noise source — inference routing).
    private func gumbelSample(_ routing: FeedForwardRouting, layer l: Int, N: Int, E: Int) throws -> GumbelSample? {
        guard case let .sampleTop1(decay) = routing, let source = gumbelNoise else { return nil }
        return try source.sample(layer: l, N: N, E: E, decay: decay)
    }

    /// out (n, C) = down(silu(gate x) * up x) (+ biases) for n rows of x (n, C).
    private func ffnExpertForward(_ out: UnsafeMutablePointer<Float>, _ fa: FeedForwardActivations, _ w: FeedForwardWeights<Tensor>,
                                  _ x: UnsafePointer<Float>, n: Int) {
        let C = config.hidden, F = config.intermediate
        let gate = fa.gate.reserve(n * F), up = fa.up.reserve(n * F), h = fa.hidden.reserve(n * F)
        matmulForward(gate, x, w.gate.data, w.gateBias?.data, N: n, C: C, OC: F)
        matmulForward(up, x, w.up.data, w.upBias?.data, N: n, C: C, OC: F)
        swigluForwardParallel(h, gate, up, count: n * F)
        matmulForward(out, h, w.down.data, w.downBias?.data, N: n, C: F, OC: C)
    }

    // MARK: backward

    /// Accumulates d(lossScale * total loss)/dθ of the last forward pass into the gradients (call
    /// `zeroGradients` first; gradient accumulation passes lossScale = 1 / micro-batches).
    public func backward(lossScale: Float = 1) throws {
        guard readyForBackward, let acts else {
            throw BamError.usage("backward needs a forward pass with targets (at least one scored position) first")
        }
        readyForBackward = false
        let N = acts.N, C = config.hidden, V = config.vocabSize
        let s: BackwardBuffers
        if let b = scratch {
            s = b
        } else {
            s = BackwardBuffers(config: config, B: acts.B, T: acts.T)
            scratch = s
        }
        // Classifier: loss = lossScale * mean over scored rows of CE(logitScale * x W^T). The forward
        // left dCE/dlogits in the logits buffer; the chain rule adds 1/scored, lossScale and the
        // logit scale, folded into the GEMMs' alpha.
        zeroGradient(s.dxn.data, count: N * C)
        matmulBackward(s.dxn.data, grad(weights.lmHead), nil, acts.logits.data, acts.finalNorm.out.data,
                       weights.lmHead.data, N: N, C: C, OC: V, scale: lossScale / Float(scored) * config.logitScale)
        zeroGradient(s.dres.data, count: N * C)
        normBackward(s.dres.data, grad(weights.finalNorm), s.dxn.data, acts.residuals[config.layers].data,
                     weights.finalNorm, acts.finalNorm)
        // s.dres = dL/d(output of the block) on entry to each layer, dL/d(its input) on exit.
        for l in stride(from: config.layers - 1, through: 0, by: -1) {
            let a = acts.layers[l]
            let x = acts.residuals[l].data
            zeroGradient(s.dxn.data, count: N * C)
            switch a.layout {
            case let .sequential(postAttentionNorm, mid, norm2):
                try feedForwardBackward(s.dxn.data, s.dres.data, a, xn: norm2.out.data, lossScale: lossScale, s)
                normBackward(s.dres.data, grad(postAttentionNorm), s.dxn.data, mid.data, postAttentionNorm, norm2)
                zeroGradient(s.dxn.data, count: N * C)
                attentionBackward(s.dxn.data, s.dres.data, a, xn: a.norm1.out.data, s)
            case .parallel:
                // Parallel block: both branches read the same normalised input, so their input
                // gradients add before the one norm's backward.
                try feedForwardBackward(s.dxn.data, s.dres.data, a, xn: a.norm1.out.data, lossScale: lossScale, s)
                attentionBackward(s.dxn.data, s.dres.data, a, xn: a.norm1.out.data, s)
            }
            normBackward(s.dres.data, grad(a.inputNorm), s.dxn.data, x, a.inputNorm, a.norm1)
        }
        if let dwte = grad(weights.embed) {
            inputs.withUnsafeBufferPointer { encoderBackward(dwte, s.dres.data, $0.baseAddress!, N: N, C: C, paddingToken: paddingToken) }
        }
    }

    private func normBackward(_ dinp: UnsafeMutablePointer<Float>, _ dweight: UnsafeMutablePointer<Float>?,
                              _ dout: UnsafePointer<Float>, _ inp: UnsafePointer<Float>, _ w: Tensor, _ n: NormActivations) {
        let N = n.out.rows, C = config.hidden
        switch n.statistics {
        case let .rms(rstd): rmsnormBackward(dinp, dweight, dout, inp, w.data, rstd.data, N: N, C: C)
        case let .layer(mean, rstd): layernormBackward(dinp, dweight, nil, dout, inp, w.data, mean.data, rstd.data, N: N, C: C)
        }
    }

    /// Backward of `attentionCore` from datt (N, Q) = dL/d(att): dxn += ..., and the Q (and own
    /// K/V) projections' gradients. With `ownKV` nil the keys' and values' gradients are left
    /// accumulated in s.dk, s.dv (a shared-KV mixture sums them over the experts).
    private func attentionCoreBackward(_ dxn: UnsafeMutablePointer<Float>, _ a: LayerActivations, _ w: QueryOutputWeights<Tensor>,
                                       _ ea: AttentionActivations, ownKV kv: KeyValueWeights<Tensor>?, _ keysValues: KeyValueActivations,
                                       xn: UnsafePointer<Float>, _ s: BackwardBuffers) {
        let c = config, N = a.N, C = c.hidden, Q = c.qDim, KV = c.kvDim
        let shape = CausalAttentionShape(B: a.B, T: a.T, NH: c.heads, NKV: c.kvHeads, HS: c.headDim)
        zeroGradient(s.dq.data, count: N * Q)
        if kv != nil {
            zeroGradient(s.dk.data, count: N * KV)
            zeroGradient(s.dv.data, count: N * KV)
        }
        causalAttentionBackward(s.dq.data, s.dk.data, s.dv.data, s.dscores.data, s.datt.data, ea.probs.data,
                                ea.q.data, keysValues.k.data, keysValues.v.data, shape: shape)
        ropeBackward(s.dq.data, rope, B: a.B, T: a.T, heads: c.heads)
        matmulBackward(dxn, grad(w.q), grad(w.qBias), s.dq.data, xn, w.q.data, N: N, C: C, OC: Q)
        if let kv { keyValueBackward(dxn, a, kv, xn: xn, s) }
    }

    /// Backward of the K and V projections (and the keys' RoPE) from s.dk, s.dv.
    private func keyValueBackward(_ dxn: UnsafeMutablePointer<Float>, _ a: LayerActivations, _ kv: KeyValueWeights<Tensor>,
                                  xn: UnsafePointer<Float>, _ s: BackwardBuffers) {
        let c = config, N = a.N, C = c.hidden, KV = c.kvDim
        ropeBackward(s.dk.data, rope, B: a.B, T: a.T, heads: c.kvHeads)
        matmulBackward(dxn, grad(kv.k), grad(kv.kBias), s.dk.data, xn, kv.k.data, N: N, C: C, OC: KV)
        matmulBackward(dxn, grad(kv.v), grad(kv.vBias), s.dv.data, xn, kv.v.data, N: N, C: C, OC: KV)
    }

    /// dxn += d Attn / d xn; parameter gradients of the attention side. dout (N, C) = dL/dAttn.
    private func attentionBackward(_ dxn: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ a: LayerActivations,
                                   xn: UnsafePointer<Float>, _ s: BackwardBuffers) {
        let c = config, N = a.N, C = c.hidden, Q = c.qDim, KV = c.kvDim
        switch a.attention {
        case let .single(w, kv, ea, kva):
            zeroGradient(s.datt.data, count: N * Q)
            matmulBackward(s.datt.data, grad(w.o), grad(w.oBias), dout, ea.att.data, w.o.data, N: N, C: Q, OC: C)
            attentionCoreBackward(dxn, a, w, ea, ownKV: kv, kva, xn: xn, s)
        case let .mixture(m):
            let decision = m.routerActivations.savedDecision
            let E = m.experts.count
            zeroGradient(s.dgates.data, count: N * E)
            if case .shared = m.kv {
                zeroGradient(s.dk.data, count: N * KV)
                zeroGradient(s.dv.data, count: N * KV)
            }
            for (e, ex) in m.experts.enumerated() {
                let y = m.outputs[e]
                // out = sum_j g_j y_j:  dL/dg_j = <dout, y_j>,  dL/dy_j = g_j dout.
                for t in 0..<N {
                    let gj = decision.weights[t * E + e]
                    let d = dout + t * C, yr = y.data + t * C, dyr = s.dy.data + t * C
                    var dot: Float = 0
                    for i in 0..<C {
                        dot += d[i] * yr[i]
                        dyr[i] = gj * d[i]
                    }
                    s.dgates.data[t * E + e] = dot
                }
                zeroGradient(s.datt.data, count: N * Q)
                matmulBackward(s.datt.data, grad(ex.o), grad(ex.oBias), s.dy.data, m.activations[e].att.data, ex.o.data,
                               N: N, C: Q, OC: C)
                let ownKV: KeyValueWeights<Tensor>?
                switch m.kv {
                case .shared: ownKV = nil
                case let .perExpert(pairs): ownKV = pairs[e].0
                }
                attentionCoreBackward(dxn, a, ex, m.activations[e], ownKV: ownKV, m.keysValues(e), xn: xn, s)
            }
            if case let .shared(w, _) = m.kv {
                // Every expert's queries read the shared keys and values: their gradients were summed above.
                keyValueBackward(dxn, a, w, xn: xn, s)
            }
            zeroGradient(s.drouter.data, count: N * E)
            routerBackward(s.drouter.data, s.dgates.data, nil, decision, renormalize: true)
            matmulBackward(dxn, grad(m.router), nil, s.drouter.data, xn, m.router.data, N: N, C: C, OC: E)
        }
    }

    /// dxn += d FFN / d xn; parameter gradients of the FFN side, including the router losses'
    /// (scaled by lossScale like the LM loss). dout (N, C) = dL/dFFN.
    private func feedForwardBackward(_ dxn: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ a: LayerActivations,
                                     xn: UnsafePointer<Float>, lossScale: Float, _ s: BackwardBuffers) throws {
        let N = a.N, C = config.hidden
        switch a.feedForward {
        case let .single(w, fa):
            ffnExpertBackward(dxn, dout, fa, w, xn, n: N, s)
        case let .mixture(router, ra, experts, acts, routing):
            let decision = ra.savedDecision
            let E = experts.count
            zeroGradient(s.dgates.data, count: N * E)
            zeroGradient(s.dprobs.data, count: N * E)
            zeroGradient(s.drouter.data, count: N * E)
            for e in 0..<E {
                let fa = acts[e]
                let n = fa.rows
                guard n > 0 else { continue }
                usedExperts.insert(ObjectIdentifier(experts[e].gate))
                let y = fa.out.data
                // out = sum_{i chosen} g_i y_i:  dL/dg_i = <dout, y_i>,  dL/dy_i = g_i dout (gathered rows).
                for (r, t) in fa.members.enumerated() {
                    let gi = decision.weights[t * E + e]
                    let d = dout + t * C, yr = y + r * C, dyr = s.dy.data + r * C
                    var dot: Float = 0
                    for i in 0..<C {
                        dot += d[i] * yr[i]
                        dyr[i] = gi * d[i]
                    }
                    s.dgates.data[t * E + e] = dot
                }
                zeroGradient(s.dxg.data, count: n * C)
                ffnExpertBackward(s.dxg.data, s.dy.data, fa, experts[e], fa.input.data, n: n, s)
                for (r, t) in fa.members.enumerated() {
                    let src = s.dxg.data + r * C, dst = dxn + t * C
                    for i in 0..<C { dst[i] += src[i] }
                }
            }
            routerLossesBackward(s.dgates.data, s.dprobs.data, s.drouter.data, decision, topK: routing.expertsPerToken(experts: E), aux: losses.aux,
                                 alpha: losses.auxAlpha * Double(lossScale), zBeta: losses.zBeta * Double(lossScale))
            try routing.backward(s.drouter.data, s.dgates.data, s.dprobs.data, decision)
            matmulBackward(dxn, grad(router), nil, s.drouter.data, xn, router.data, N: N, C: C, OC: E)
        }
    }

    /// Backward of `ffnExpertForward` for n rows: dx (n, C) += ..., dout (n, C).
    private func ffnExpertBackward(_ dx: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ fa: FeedForwardActivations,
                                   _ w: FeedForwardWeights<Tensor>, _ x: UnsafePointer<Float>, n: Int, _ s: BackwardBuffers) {
        let C = config.hidden, F = config.intermediate
        zeroGradient(s.dh.data, count: n * F)
        matmulBackward(s.dh.data, grad(w.down), grad(w.downBias), dout, fa.hidden.data, w.down.data, N: n, C: F, OC: C)
        zeroGradient(s.dgate.data, count: n * F)
        zeroGradient(s.dup.data, count: n * F)
        swigluBackward(s.dgate.data, s.dup.data, s.dh.data, fa.gate.data, fa.up.data, count: n * F)
        matmulBackward(dx, grad(w.gate), grad(w.gateBias), s.dgate.data, x, w.gate.data, N: n, C: C, OC: F)
        matmulBackward(dx, grad(w.up), grad(w.upBias), s.dup.data, x, w.up.data, N: n, C: C, OC: F)
    }
}
