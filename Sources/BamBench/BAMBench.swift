import BamEvaluation
import BamModels
import Foundation

/// Issue 5's benchmarks on a parallel-block BAM model (4 experts, expert-KV, soft attention,
/// FFN top-1) of the 58M dense shape:
///  - decode ms/token and 512-token prefill seconds with the attention and FFN branches run
///    concurrently (Dispatch) vs one after the other, in the same process;
///  - prefill throughput as achieved GFLOP/s (ModelStatistics' FLOPs formula) over the sgemm
///    ceiling measured in the same run (target >= 0.6);
///  - the decode floor (`decodeFloor`): a token's weights read once with one hand-off, which
///    shows how far each mode is from the memory-bound limit, and what one hand-off costs.
func runBAMBench(arguments: [String]) throws {
    let kind = option(arguments, "--attention") == "shared-kv" ? "shared_kv" : "expert_kv"
    let decodeTokens = option(arguments, "--decode").flatMap(Int.init) ?? 64
    let rounds = option(arguments, "--rounds").flatMap(Int.init) ?? 3
    let cacheType = try kvCacheType(arguments)
    // Positions in the cache before the timed decode (llama-bench's depth).
    let past = max(1, option(arguments, "--past").flatMap(Int.init) ?? 64)
    var json = BenchShape.llama58m.config
    json["model_type"] = "bam"
    json["architectures"] = .array(["BamForCausalLM"])
    json["base_model_type"] = "llama"
    json["num_local_experts"] = 4
    json["num_experts_per_tok"] = 1
    json["router_renormalize"] = false
    json["attention_experts"] = .string(kind)
    json["attention_routing"] = "soft"
    json["parallel_block"] = true
    let config = try ModelConfig(json: json)
    let model = Transformer(config: config, weights: .random(config: config, seed: 3, scale: 0.02), kvCache: cacheType)
    var rng = SplitMix64(seed: 5)
    let prompt = (0..<512).map { _ in Int(rng.next() % 32000) }

    func prefill() throws -> Double {
        let cache = model.makeCache(capacity: 512)
        return try seconds { _ = try model.finalHidden(tokens: prompt, cache: cache, outputRows: 511..<512) }
    }
    func decode() throws -> Double {
        let cache = model.makeCache(capacity: past + decodeTokens)
        _ = try model.finalHidden(tokens: (0..<past).map { prompt[$0 % prompt.count] }, cache: cache, outputRows: (past - 1)..<past)
        var next = 7
        return try seconds {
            for _ in 0..<decodeTokens {
                let logits = try model.forward(tokens: [next], cache: cache)
                next = Int(logits.data[0].bitPattern % 32000)
            }
        } / Double(decodeTokens)
    }
    var results: [Bool: (prefill: Double, decode: Double)] = [:]
    _ = try prefill()   // warm-up
    for _ in 0..<rounds {
        for concurrent in [true, false] {
            model.options = ExecutionOptions(concurrentBranches: concurrent)
            let p = try prefill(), d = try decode()
            let old = results[concurrent] ?? (.infinity, .infinity)
            results[concurrent] = (min(old.prefill, p), min(old.decode, d))
        }
    }
    let ceiling = gemmCeiling()
    // What one decode token must read: every attention expert (soft routing), one FFN expert
    // (top-1; all experts have the same size), the routers and the output projection.
    var matrices: [WeightMatrix] = []
    for block in model.weights.blocks {
        switch block.attention {
        case let .single(qo, kv): matrices += [qo.q, qo.o, kv.k, kv.v]
        case let .mixture(router, experts, kv, _):
            matrices.append(try WeightMatrix(router))
            for e in experts { matrices += [e.q, e.o] }
            switch kv {
            case let .shared(w): matrices += [w.k, w.v]
            case let .perExpert(ws): for w in ws { matrices += [w.k, w.v] }
            }
        }
        let f: FeedForwardWeights<WeightMatrix>
        switch block.feedForward {
        case let .single(w): f = w
        case let .mixture(router, experts, _):
            matrices.append(try WeightMatrix(router))
            f = experts[0]
        }
        matrices += [f.gate, f.up, f.down]
    }
    let floor = decodeFloor(matrices, head: model.weights.lmHead)
    let handOffPolling = handOffCost(serialMicroseconds: 50), handOffParked = handOffCost(serialMicroseconds: 500, rounds: 500)
    let stats = ModelStatistics(config: config, context: 512, kvCache: cacheType)
    // FLOPs of the prefill: the formula's per-token count with the attention term at the average
    // causal context (T/2), without the output projection (only one row is projected).
    let perToken = ModelStatistics.flopsPerToken(config: config, context: 256) - 2 * Double(config.hidden * config.vocabSize)
    let conc = results[true]!, seq = results[false]!
    let achieved = perToken * 512 / conc.prefill / 1e9
    print("BAM benchmark: parallel block, 4 \(kind) attention experts (soft), FFN top-1, 58M dense shape, \(formatParams(stats.totalParameters)) params, \(cacheType) KV cache, decode after \(past) positions, \(BLASThreads.defaultCount) threads, best of \(rounds)")
    print(String(format: "  decode ms/token     concurrent %.2f   sequential %.2f   speed-up %.2fx (target >= 1.2)",
                 conc.decode * 1e3, seq.decode * 1e3, seq.decode / conc.decode))
    let weightBytes = Double((matrices + [model.weights.lmHead]).reduce(0) { $0 + $1.residentBytes })
    print(String(format: "  decode floor        %.2f ms/token: its %.0f MB of weights read once by the decode kernels on every worker, one hand-off; concurrent %.2fx it, sequential %.2fx",
                 floor * 1e3, weightBytes / 1e6, conc.decode / floor, seq.decode / floor))
    // The floor counts weights only; each token also reads the KV cache (every attention expert's
    // set with expert-KV), on average past + decode/2 positions here. Reading those bytes at the
    // floor's own rate is what the token adds to the floor: shown so the remaining gap can be
    // told apart from the cache's traffic (an estimate from the measured rate, not a measurement).
    let kvBytes = Double(stats.kvCacheBytesPerToken) * (Double(past) + Double(decodeTokens) / 2)
    let withCache = floor * (1 + kvBytes / weightBytes)
    print(String(format: "  KV cache read       %.1f MB per decode token on average (%.1f %% of the weights); the floor plus reading it at the floor's rate %.2f ms: concurrent %.2fx it, sequential %.2fx",
                 kvBytes / 1e6, 100 * kvBytes / weightBytes, withCache * 1e3, conc.decode / withCache, seq.decode / withCache))
    print(String(format: "  hand-off            %.4f ms each after 0.05 ms of serial work (helpers polling), %.4f ms after 0.5 ms (parked; BAM_MIX_SPIN_US) (decode: 1 per layer + 1 concurrent, 4 per layer + 1 sequential)",
                 handOffPolling * 1e3, handOffParked * 1e3))
    print(String(format: "  512-token prefill s concurrent %.3f   sequential %.3f   speed-up %.2fx (target >= 1.0)",
                 conc.prefill, seq.prefill, seq.prefill / conc.prefill))
    print(String(format: "  prefill GFLOP/s     %.1f of a %.1f sgemm ceiling = %.2f (target >= 0.6)", achieved, ceiling, achieved / ceiling))
    print("  KV cache per token  \(stats.kvCacheBytesPerToken) bytes (dense: \(KVCache.bytesPerPosition(config: try ModelConfig(json: BenchShape.llama58m.config), type: cacheType)))")
}

func formatParams(_ n: Int) -> String { String(format: "%.0fM", Double(n) / 1e6) }
