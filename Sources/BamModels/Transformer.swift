import BamFormats
import BamTensors
import Foundation

/// How a forward pass uses the cores (docs/architecture.md: decide per region, keep the choice in one place).
public struct ExecutionOptions: Sendable {
    /// Parallel blocks: run the attention branch and the FFN branch concurrently on Dispatch
    /// workers (each with single-threaded BLAS), instead of one after the other with all BLAS threads.
    public var concurrentBranches: Bool
    /// Mixture layers: run experts concurrently (single-threaded BLAS each) instead of one after
    /// the other with multi-threaded BLAS. `nil` decides per call from the token count.
    public var fanOutExperts: Bool?

    public init(concurrentBranches: Bool = true, fanOutExperts: Bool? = nil) {
        self.concurrentBranches = concurrentBranches
        self.fanOutExperts = fanOutExperts
    }

    /// Reads BAM_MIX_BRANCHES=sequential|concurrent and BAM_MIX_EXPERTS=sequential|concurrent
    /// (benchmarks compare the two settings in the same binary).
    public static var fromEnvironment: ExecutionOptions {
        let env = ProcessInfo.processInfo.environment
        var o = ExecutionOptions()
        if env["BAM_MIX_BRANCHES"] == "sequential" { o.concurrentBranches = false }
        switch env["BAM_MIX_EXPERTS"] {
        case "sequential": o.fanOutExperts = false
        case "concurrent": o.fanOutExperts = true
        default: break
        }
        return o
    }

    /// Small token counts (decode) gain from running experts side by side; large ones (prefill)
    /// already keep every core busy inside each GEMM.
    func fanOut(tokens T: Int) -> Bool { fanOutExperts ?? (T <= 16) }
}

/// A decoder-only transformer: dense (Llama, Mistral, Qwen2, Cohere), Mixtral/BTX, or BAM.
/// Sequential blocks: x += Attn(norm1(x)); x += FFN(norm2(x)).
/// Parallel blocks:   x += Attn(norm(x)) + FFN(norm(x))   (Cohere, BAM's parallel attention block).
public final class Transformer: @unchecked Sendable {
    public let config: ModelConfig
    /// Matrices in the type the kernels read (WeightMatrix), everything else float32.
    public let weights: InferenceWeights
    public var options: ExecutionOptions
    /// The type `makeCache` keeps keys and values in.
    public var kvCacheType: KVCacheType
    let rope: RopeTable
    /// Activation buffers reused across forward calls.
    let pool = BufferPool()

    public init(config: ModelConfig, weights: InferenceWeights, options: ExecutionOptions = .fromEnvironment,
                kvCache: KVCacheType = .f32) {
        self.config = config
        self.weights = weights
        self.options = options
        kvCacheType = kvCache
        rope = RopeTable(headSize: config.headDim, theta: config.ropeTheta, style: config.ropeStyle, scaling: config.ropeScaling)
    }

    /// Runs float32 weights made in memory (training, tests), borrowing them.
    public convenience init(config: ModelConfig, weights: TransformerWeights, options: ExecutionOptions = .fromEnvironment,
                            kvCache: KVCacheType = .f32) {
        self.init(config: config, weights: weights.borrowedAsMatrices(config: config), options: options, kvCache: kvCache)
    }

    /// Loads a checkpoint with its matrices kept as `weights` says (default: the stored type, used
    /// in place from the file mapping), after checking the machine can hold them; its caches keep
    /// `kvCache`.
    public static func load(_ checkpoint: Checkpoint, weights loading: WeightLoading = .stored, kvCache: KVCacheType = .f32,
                            options: ExecutionOptions = .fromEnvironment) throws -> Transformer {
        try ModelMemory.requireFits(inference: checkpoint, loading: loading)
        let w = try InferenceWeights.load(config: checkpoint.config, store: checkpoint.store, loading: loading)
        return Transformer(config: checkpoint.config, weights: w, options: options, kvCache: kvCache)
    }

    public func makeCache(capacity: Int) -> KVCache { KVCache(config: config, capacity: capacity, type: kvCacheType) }

    /// Runs `tokens` at positions cache.length ..< cache.length + T, appends their keys and values
    /// to `cache`, and returns the logits of the rows in `outputRows` (positions relative to the
    /// first new token; default all): (rows, V). Only those rows pass through the final norm and
    /// the output projection (perplexity scores half a chunk, generation one token).
    public func forward(tokens: [Int], cache: KVCache, outputRows: Range<Int>? = nil,
                        observer: ((ForwardEvent) -> Void)? = nil) throws -> Tensor {
        let h = try finalHidden(tokens: tokens, cache: cache, outputRows: outputRows, observer: observer)
        return logits(normalizedHidden: h)
    }

    /// The final-normed hidden states (rows, C) of `outputRows`: everything of `forward` but the
    /// output projection, for callers that project in blocks (perplexity keeps memory flat that way).
    public func finalHidden(tokens: [Int], cache: KVCache, outputRows: Range<Int>? = nil,
                            observer: ((ForwardEvent) -> Void)? = nil) throws -> Tensor {
        let T = tokens.count
        let C = config.hidden, V = config.vocabSize
        let rows = outputRows ?? 0..<T
        guard T > 0 else { throw BamError.usage("forward needs at least one token") }
        guard rows.lowerBound >= 0, rows.upperBound <= T else {
            throw BamError.usage("output rows \(rows) outside the \(T) tokens")
        }
        try config.checkSequenceLength(cache.length + T)
        for (i, id) in tokens.enumerated() where id < 0 || id >= V {
            throw BamError.usage("token id \(id) at position \(i) is outside the vocabulary (0..<\(V))")
        }
        try cache.reserve(additional: T)
        // Tabulate RoPE for every position now: the table is then only read, also by concurrent experts.
        rope.ensure(cache.length + T)
        let arena = Arena(pool: pool)
        let x = arena.take(T * C)                   // (T, C) residual stream
        // The embedding is a row gather (widened or dequantized when stored below f32).
        for (t, id) in tokens.enumerated() { weights.embed.rowsToFloat32(id..<(id + 1), into: x + t * C) }

        let xn = arena.take(T * C)                  // (T, C) normalised input of a branch
        let attnOut = arena.take(T * C)             // (n, C), n = the layer's query rows
        let ffnOut = arena.take(T * C)              // (n, C)
        let last = weights.blocks.count - 1
        for (l, block) in weights.blocks.enumerated() {
            observer?(.hidden(layer: l, x: x, T: T, C: C))
            // The last layer's output is only read at `rows`, so only those rows go through its
            // queries, attention, output projection and FFN; its keys and values are still projected
            // for every token, because the cache keeps them for the tokens that follow (llama.cpp
            // prunes its last layer the same way). Generation's prefill needs one row, perplexity
            // half a chunk: an 8-layer model skips most of an eighth of the work. Not with an
            // observer, which wants every token's routing and hidden states.
            let queryRows = l == last && observer == nil && !rows.isEmpty ? rows : 0..<T
            let n = queryRows.count, xq = x + queryRows.lowerBound * C   // the query rows of the residual stream
            norm(xn, x, block.inputNorm, T: T)
            let layerArena = Arena(pool: pool)   // freed (back to the pool) at the end of each layer
            switch block.layout {
            case .parallel:
                // Both branches read the same normalised input and write their own buffers.
                let attention = attentionPlan(attnOut, xn, block.attention, layer: l, T: T, queryRows: queryRows, cache: cache,
                                              arena: layerArena, observer: observer)
                let feedForward = feedForwardPlan(ffnOut, xn + queryRows.lowerBound * C, block.feedForward, layer: l, T: n,
                                                  arena: layerArena, observer: observer)
                run([attention, feedForward], T: n, concurrent: options.concurrentBranches)
                addResidual(xq, attnOut, ffnOut, count: n * C)
            case let .sequential(postAttentionNorm):
                run([attentionPlan(attnOut, xn, block.attention, layer: l, T: T, queryRows: queryRows, cache: cache, arena: layerArena,
                                   observer: observer)],
                    T: n, concurrent: false)
                addResidual(xq, attnOut, nil, count: n * C)
                norm(xn, xq, postAttentionNorm, T: n)
                run([feedForwardPlan(ffnOut, xn, block.feedForward, layer: l, T: n, arena: layerArena, observer: observer)],
                    T: n, concurrent: false)
                addResidual(xq, ffnOut, nil, count: n * C)
            }
        }
        cache.advance(T)
        let h = Tensor(shape: [rows.count, C])
        if rows.count > 0 { norm(h.data, x + rows.lowerBound * C, weights.finalNorm, T: rows.count) }
        return h
    }

    /// The output projection (and Cohere's logit scale) of final-normed hidden rows: (rows, V).
    public func logits(normalizedHidden h: Tensor, rows: Range<Int>? = nil) -> Tensor {
        let C = config.hidden, V = config.vocabSize
        let r = rows ?? 0..<h.rows
        let out = Tensor(shape: [r.count, V])
        guard r.count > 0 else { return out }
        linearForward(out.data, h.data + r.lowerBound * C, weights.lmHead, nil, T: r.count)
        if config.logitScale != 1 {
            for i in 0..<out.count { out.data[i] *= config.logitScale }
        }
        return out
    }

    func norm(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ w: Tensor, T: Int) {
        let C = config.hidden, eps = config.normEps, kind = config.norm
        let o = SendablePointer(out), i = SendablePointer(UnsafeMutablePointer(mutating: inp)), wp = SendablePointer(w.data)
        // Rows are independent; each worker normalises its own rows.
        BLASThreads.parallelRanges(T, minimumPerChunk: 32) { r in
            let (out, inp) = (o.pointer + r.lowerBound * C, i.pointer + r.lowerBound * C)
            switch kind {
            case .rms: rmsnormForward(out, inp, wp.pointer, T: r.count, C: C, eps: eps)
            case .layer: layernormForward(out, inp, wp.pointer, T: r.count, C: C, eps: eps)
            }
        }
    }

    /// x += a (+ b), split across workers for long sequences.
    func addResidual(_ x: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, count: Int) {
        let xp = SendablePointer(x), ap = SendablePointer(UnsafeMutablePointer(mutating: a))
        let bp = b.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        BLASThreads.parallelRanges(count, minimumPerChunk: 1 << 15) { r in
            if let bp {
                for i in r { xp.pointer[i] += ap.pointer[i] + bp.pointer[i] }
            } else {
                for i in r { xp.pointer[i] += ap.pointer[i] }
            }
        }
    }

    // MARK: branches as units of work

    /// A branch of a block (its attention or its FFN) cut into independent units of work — one per
    /// expert — that each write only their own buffers (and their own KV-cache set), plus a final
    /// step that combines them. Routing decisions are made while planning, on the calling thread.
    struct BranchPlan {
        /// Units with their estimated cost (FLOPs), used to start the largest first.
        var tasks: [(cost: Double, run: () -> Void)]
        var finish: () -> Void
    }

    /// Runs the plans of a block. With `concurrent` (a parallel block's two branches at once), every
    /// unit of both branches goes into one Dispatch fan-out, largest first, so two cores stay busy
    /// however uneven the branches are; otherwise the branches run one after the other, each
    /// fanning its experts out when `ExecutionOptions` says that wins for T tokens.
    ///
    /// A decode step whose units cannot be shared out evenly runs its branches one after the other
    /// even when `concurrent`: whole units on the workers then leave one worker idle while the other
    /// finishes, where one after the other a lone FFN expert's products are split across all of
    /// them. BAM's four attention experts and its FFN expert cost about the same once the cache is
    /// long (five equal units on two workers: 3 against 2); concurrent decode after 1024 positions
    /// was 1.12x its floor against 1.05-1.09x one after the other (BamBench bam --past 1024,
    /// EPYC Zen 3).
    func run(_ plans: [BranchPlan], T: Int, concurrent: Bool) {
        let tasks = plans.flatMap(\.tasks)
        if concurrent && (T > WeightMatrix.fusedRowLimit || Self.sharesEvenly(tasks.map(\.cost), workers: BLASThreads.defaultCount)) {
            // Largest first (LPT scheduling): Dispatch hands iterations out in order, so the big
            // units start early and the small ones fill the gaps.
            let ordered = UnsafeSendableBox(tasks.sorted { $0.cost > $1.cost }.map(\.run))
            BLASThreads.fanOut(ordered.value.count) { i in ordered.value[i]() }
        } else {
            for plan in plans {
                if plan.tasks.count > 1 && options.fanOut(tokens: T) {
                    let tasks = UnsafeSendableBox(plan.tasks.sorted { $0.cost > $1.cost }.map(\.run))
                    BLASThreads.fanOut(tasks.value.count) { i in tasks.value[i]() }
                } else {
                    for task in plan.tasks { task.run() }
                }
            }
        }
        for plan in plans { plan.finish() }
    }

    /// Whether units of these costs, dealt largest first each to the least loaded of `workers`,
    /// keep the most loaded within 10 % of an even share.
    static func sharesEvenly(_ costs: [Double], workers: Int) -> Bool {
        guard workers > 1, costs.count > 1 else { return true }
        let load = BLASThreads.deal(costs, over: workers).load
        return load.max()! <= 1.1 * costs.reduce(0, +) / Double(workers)
    }

    /// Multiply-adds of one attention expert for T new tokens after `past` cached ones.
    func attentionCost(T: Int, past: Int, projectsKV: Bool = true) -> Double {
        let C = Double(config.hidden), Q = Double(config.qDim), KV = Double(config.kvDim), t = Double(T)
        return t * C * (2 * Q + (projectsKV ? 2 * KV : 0)) + 2 * t * Double(past + T) * Q
    }

    /// Multiply-adds of one SwiGLU expert over `rows` tokens.
    func feedForwardCost(rows: Int) -> Double { 3 * Double(rows) * Double(config.hidden) * Double(config.intermediate) }

    // MARK: attention side

    /// out (n, C) = Attn(xn) at the n query rows `rows` of the T tokens in xn (T, C): one
    /// attention, or BAM's mixture of attention MoA(x) = sum_j g_j(x) MHA_j(x), g = softmax(W_attn x)
    /// (soft) or over the top-k (docs/methods.md). Keys and values are projected for all T tokens.
    func attentionPlan(_ out: UnsafeMutablePointer<Float>, _ xn: UnsafePointer<Float>, _ side: AttentionSide<WeightMatrix>,
                       layer l: Int, T: Int, queryRows rows: Range<Int>, cache: KVCache, arena: Arena,
                       observer: ((ForwardEvent) -> Void)?) -> BranchPlan {
        let C = config.hidden, KV = config.kvDim, n = rows.count
        let router: Tensor, experts: [QueryOutputWeights<WeightMatrix>], kv: AttentionKeyValues<WeightMatrix>, topK: Int
        switch side {
        case let .single(qo, ownKV):
            let expertArena = arena.child()
            return BranchPlan(tasks: [(attentionCost(T: T, past: cache.length), {
                self.attentionExpert(out, xn, qo, keys: .project(ownKV, set: 0), layer: l, gate: nil, T: T, queryRows: rows,
                                     cache: cache, arena: expertArena)
            })], finish: {})
        case let .mixture(r, e, k, top):
            (router, experts, kv, topK) = (r, e, k, top)
        }
        let E = experts.count
        // The gates weight each query row's attention output: routed at the query rows only.
        let logits = arena.take(n * E)
        linearForward(logits, xn + rows.lowerBound * C, router.data, nil, T: n, C: C, OC: E)
        // Soft routing is top-E with the softmax renormalised over all experts, i.e. g = p.
        let decision = route(logits: logits, T: n, E: E, topK: topK, renormalize: true)
        observer?(.attentionRouting(layer: l, decision))
        let keys: (Int) -> ExpertKeys, projectsKV: Bool
        switch kv {
        case let .shared(w):
            // Shared-KV: one K and one V projection, one cache set, read by every expert's queries.
            let k = arena.take(T * KV), v = arena.take(T * KV)
            linearForward([k, v], xn, [w.k, w.v], [w.kBias?.data, w.vBias?.data], T: T)
            rope.apply(k, T: T, heads: config.kvHeads, start: cache.length)
            cache.store(layer: l, set: 0, k: k, v: v, T: T)
            keys = { _ in .cached(set: 0) }
            projectsKV = false
        case let .perExpert(ws):
            keys = { e in .project(ws[e], set: e) }
            projectsKV = true
        }
        // Expert e's gate per query row; a top-k expert no token chose still writes its keys and
        // values (later tokens may choose it and attend over the whole prefix). Each expert writes
        // its own output buffer; `finish` sums them.
        let outs = (0..<E).map { _ in arena.take(n * C) }
        let cost = attentionCost(T: T, past: cache.length, projectsKV: projectsKV)
        let tasks: [(cost: Double, run: () -> Void)] = (0..<E).map { e in
            let gate = (0..<n).map { t in decision.weights[t * E + e] }
            let expertArena = arena.child()
            let expertKeys = keys(e)
            return (cost, {
                self.attentionExpert(outs[e], xn, experts[e], keys: expertKeys, layer: l, gate: gate, T: T, queryRows: rows,
                                     cache: cache, arena: expertArena)
            })
        }
        return BranchPlan(tasks: tasks, finish: {
            let o = SendablePointer(out), parts = UnsafeSendableBox(outs)
            BLASThreads.parallelRanges(n * C, minimumPerChunk: 1 << 15) { r in
                for i in r {
                    var acc: Float = 0
                    for e in 0..<E { acc += parts.value[e][i] }
                    o.pointer[i] = acc
                }
            }
        })
    }

    /// Where an attention expert's keys and values come from.
    enum ExpertKeys {
        /// Projected from xn with these weights and written to cache set `set`.
        case project(KeyValueWeights<WeightMatrix>, set: Int)
        /// Already in cache set `set` (a shared-KV mixture's, projected once for all experts).
        case cached(set: Int)
    }

    /// One attention expert: k, v projections (+ biases) of all T tokens unless cached, RoPE, the
    /// new keys/values into the cache set; q projections of the query rows `rows`, causal GQA
    /// attention for them, and the output projection into `out` (rows.count, C). With `gate` (one
    /// per query row) the attention output rows are scaled by the gate before the output projection
    /// (linear, so this equals scaling the expert's output; the output bias is scaled too).
    func attentionExpert(_ out: UnsafeMutablePointer<Float>, _ xn: UnsafePointer<Float>, _ w: QueryOutputWeights<WeightMatrix>,
                         keys: ExpertKeys, layer l: Int, gate: [Float]?, T: Int, queryRows rows: Range<Int>, cache: KVCache,
                         arena: Arena) {
        let C = config.hidden, Q = config.qDim, KV = config.kvDim
        let past = cache.length, n = rows.count
        let q = arena.take(n * Q)
        let set: Int
        switch keys {
        case let .project(kv, s):
            set = s
            let k = arena.take(T * KV), v = arena.take(T * KV)
            if n == T {
                // Q, K and V read the same input: one call, so decode splits all three with one hand-off.
                linearForward([q, k, v], xn, [w.q, kv.k, kv.v], [w.qBias?.data, kv.kBias?.data, kv.vBias?.data], T: T)
            } else {
                linearForward([k, v], xn, [kv.k, kv.v], [kv.kBias?.data, kv.vBias?.data], T: T)
                linearForward(q, xn + rows.lowerBound * C, w.q, w.qBias?.data, T: n)
            }
            rope.apply(k, T: T, heads: config.kvHeads, start: past)
            cache.store(layer: l, set: set, k: k, v: v, T: T)
        case let .cached(s):
            set = s
            linearForward(q, xn + rows.lowerBound * C, w.q, w.qBias?.data, T: n)
        }
        // The query rows sit at positions past + rows; each sees the keys up to its own position,
        // all of which are in the cache now.
        rope.apply(q, T: n, heads: config.heads, start: past + rows.lowerBound)
        let att = arena.take(n * Q)
        let shape = AttentionShape(T: n, past: past + rows.lowerBound, NH: config.heads, NKV: config.kvHeads, HS: config.headDim,
                                   S: cache.capacity)
        attentionForward(att, q, cache: cache.view(layer: l, set: set, scratch: arena.take, shape: shape),
                         scores: arena.take(shape.scoresCount), shape: shape)
        if let gate {
            for t in 0..<n {
                let g = gate[t]
                let row = att + t * Q
                for i in 0..<Q { row[i] *= g }
            }
        }
        linearForward(out, att, w.o, nil, T: n)
        if let b = w.oBias {
            for t in 0..<n {
                let g = gate?[t] ?? 1
                let row = out + t * C
                for i in 0..<C { row[i] += g * b.data[i] }
            }
        }
    }

    // MARK: feed-forward side

    /// out (T, C) = FFN(xn): one SwiGLU expert, or a mixture
    /// FF_MoE(x) = sum_{i in TopK} g_i(x) FF_i(x) with tokens grouped per expert (one GEMM each).
    func feedForwardPlan(_ out: UnsafeMutablePointer<Float>, _ xn: UnsafePointer<Float>, _ side: FeedForwardSide<WeightMatrix>,
                         layer l: Int, T: Int, arena: Arena, observer: ((ForwardEvent) -> Void)?) -> BranchPlan {
        let C = config.hidden
        let router: Tensor, experts: [FeedForwardWeights<WeightMatrix>], routing: FeedForwardRouting
        switch side {
        case let .single(w):
            let expertArena = arena.child()
            return BranchPlan(tasks: [(feedForwardCost(rows: T), { self.feedForwardExpert(out, xn, w, rows: T, arena: expertArena) })],
                              finish: {})
        case let .mixture(r, e, rule):
            (router, experts, routing) = (r, e, rule)
        }
        let E = experts.count
        let logits = arena.take(T * E)
        linearForward(logits, xn, router.data, nil, T: T, C: C, OC: E)
        let decision = routing.route(logits: logits, T: T, E: E)
        observer?(.feedForwardRouting(layer: l, decision))
        // Group token rows per expert; each active expert gets its gathered inputs (n_e, C) and
        // its own output buffer (n_e, C). A token Switch routing dropped (over capacity) is in no
        // group: its FFN output stays 0 and the residual carries it.
        var members = [[Int]](repeating: [], count: E)
        for t in 0..<T { for e in decision.dispatched(t) { members[e].append(t) } }
        let active = (0..<E).filter { !members[$0].isEmpty }
        var outputs: [(expert: Int, rows: [Int], out: UnsafeMutablePointer<Float>)] = []
        var tasks: [(cost: Double, run: () -> Void)] = []
        for e in active {
            let rows = members[e]
            let inp = arena.take(rows.count * C)
            for (r, t) in rows.enumerated() { (inp + r * C).update(from: xn + t * C, count: C) }
            let o = arena.take(rows.count * C)
            outputs.append((e, rows, o))
            let expertArena = arena.child()
            tasks.append((feedForwardCost(rows: rows.count), {
                self.feedForwardExpert(o, inp, experts[e], rows: rows.count, arena: expertArena)
            }))
        }
        return BranchPlan(tasks: tasks, finish: {
            for i in 0..<(T * C) { out[i] = 0 }
            for (e, rows, src0) in outputs {
                for (r, t) in rows.enumerated() {
                    let g = decision.weights[t * E + e]
                    let src = src0 + r * C, dst = out + t * C
                    for i in 0..<C { dst[i] += g * src[i] }
                }
            }
        })
    }

    /// down(silu(gate x) * up x) for `rows` rows.
    func feedForwardExpert(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: FeedForwardWeights<WeightMatrix>,
                           rows n: Int, arena: Arena) {
        let F = config.intermediate
        let g = arena.take(n * F), u = arena.take(n * F)
        linearForward([g, u], x, [w.gate, w.up], [w.gateBias?.data, w.upBias?.data], T: n)
        let gp = SendablePointer(g), up = SendablePointer(u)
        BLASThreads.parallelRanges(n * F, minimumPerChunk: 1 << 14) { r in
            swigluForward(gp.pointer + r.lowerBound, gp.pointer + r.lowerBound, up.pointer + r.lowerBound, count: r.count)
        }
        linearForward(out, g, w.down, w.downBias?.data, T: n)
    }
}

/// Carries non-Sendable values into a Dispatch region whose iterations only read them (and
/// write disjoint buffers) — the one place such a promise is made.
struct UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
