import BamEvaluation
import BamModels
import Foundation

/// Issue 5's benchmarks on a parallel-block BAM model (4 experts, expert-KV, soft attention,
/// FFN top-1) of the 58M dense shape:
///  - decode ms/token and 512-token prefill seconds with the attention and FFN branches run
///    concurrently (Dispatch) vs one after the other, in the same process;
///  - prefill throughput as achieved GFLOP/s (ModelStatistics' FLOPs formula) over the sgemm
///    ceiling measured in the same run (target >= 0.6);
///  - the decode floor (`decodeFloor`): a token's weights and KV cache read once with one
///    hand-off, measured right before and after each decode run, which shows how far each mode is from the
///    memory-bound limit; and what one hand-off costs.
func runBAMBench(arguments: [String]) throws {
    let kind = option(arguments, "--attention") == "shared-kv" ? "shared_kv" : "expert_kv"
    let decodeTokens = option(arguments, "--decode").flatMap(Int.init) ?? 64
    let rounds = max(1, option(arguments, "--rounds").flatMap(Int.init) ?? 3)
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
        // Every row's final hidden state, so that the last layer runs for all 512 tokens (with
        // one output row it would run only for that row): the FLOPs below count all of them.
        return try seconds { _ = try model.finalHidden(tokens: prompt, cache: cache, outputRows: 0..<512) }
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
    // What one decode token must read: every attention expert (soft routing), one FFN expert
    // (top-1), the routers and the output projection.
    let matrices = try decodeMatrices(model.weights)
    // And its KV cache: every attention expert's set (expert-KV) or the one shared set, at the
    // average number of positions a timed token attends to.
    let stats = ModelStatistics(config: config, context: 512, kvCache: cacheType)
    let cacheReads = try kvCacheStandIns(config: config, bytesPerPosition: stats.kvCacheBytesPerToken,
                                         positions: past + decodeTokens / 2, type: cacheType)
    var results: [Bool: (prefill: Double, decode: Double)] = [:]
    func use(concurrent: Bool) {
        // BAM_MIX_EXPERTS still chooses how each branch's experts run.
        model.options = ExecutionOptions.fromEnvironment
        model.options.concurrentBranches = concurrent
    }
    func floorNow() -> Double { decodeFloor(matrices + cacheReads, head: model.weights.lmHead, passes: 16) }
    // Each round's own ratios too: this VM's memory bandwidth drifts by tens of percent within
    // seconds, so the medians of ratios taken within a round are steadier than ratios of bests.
    // Each decode run is bracketed by floor measurements (its ratio is over the mean of the floor
    // just before and just after), and the two modes take turns going first.
    var perRound: [(concurrent: Double, sequential: Double, speedUp: Double)] = []
    var floors: [Double] = []
    _ = try prefill()   // warm-up
    for round in 0..<rounds {
        for concurrent in [true, false] {
            use(concurrent: concurrent)
            let p = try prefill(), old = results[concurrent] ?? (.infinity, .infinity)
            results[concurrent] = (min(old.prefill, p), old.decode)
        }
        var before = floorNow()
        floors.append(before)
        var overFloor: [Bool: Double] = [:], decodeTimes: [Bool: Double] = [:]
        for concurrent in round % 2 == 0 ? [true, false] : [false, true] {
            use(concurrent: concurrent)
            let d = try decode(), after = floorNow()
            floors.append(after)
            overFloor[concurrent] = d / ((before + after) / 2)
            decodeTimes[concurrent] = d
            before = after
            results[concurrent]!.decode = min(results[concurrent]!.decode, d)
        }
        perRound.append((overFloor[true]!, overFloor[false]!, decodeTimes[false]! / decodeTimes[true]!))
    }
    let floor = floors.min()!
    func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    let ceiling = gemmCeiling()
    let handOffPolling = handOffCost(serialMicroseconds: 50), handOffParked = handOffCost(serialMicroseconds: 500, rounds: 500)
    // FLOPs of the prefill: the formula's per-token count with the attention term at the average
    // causal context (T/2), without the output projection (only one row is projected).
    let perToken = ModelStatistics.flopsPerToken(config: config, context: 256) - 2 * Double(config.hidden * config.vocabSize)
    let conc = results[true]!, seq = results[false]!
    let achieved = perToken * 512 / conc.prefill / 1e9
    print("BAM benchmark: parallel block, 4 \(kind) attention experts (soft), FFN top-1, 58M dense shape, \(formatParams(stats.totalParameters)) params, \(cacheType) KV cache, decode after \(past) positions, \(BLASThreads.defaultCount) threads, best of \(rounds)")
    print(String(format: "  decode ms/token     concurrent %.2f   sequential %.2f   speed-up %.2fx (target >= 1.2)",
                 conc.decode * 1e3, seq.decode * 1e3, seq.decode / conc.decode))
    let weightBytes = Double((matrices + [model.weights.lmHead]).reduce(0) { $0 + $1.residentBytes })
    let kvBytes = Double(cacheReads.reduce(0) { $0 + $1.residentBytes })
    print(String(format: "  decode floor        %.2f ms/token: its %.0f MB of weights and %.1f MB of KV cache read once by the decode kernels on every worker, one hand-off, mean of 16 passes (least of the runs); concurrent %.2fx it, sequential %.2fx",
                 floor * 1e3, weightBytes / 1e6, kvBytes / 1e6, conc.decode / floor, seq.decode / floor))
    print(String(format: "  per round, median   speed-up %.2fx; concurrent %.2fx the floor, sequential %.2fx (each over the floors measured just before and after it; %d rounds)",
                 median(perRound.map(\.speedUp)), median(perRound.map(\.concurrent)), median(perRound.map(\.sequential)), perRound.count))
    print(String(format: "  hand-off            %.4f ms each after 0.05 ms of serial work (helpers polling), %.4f ms after 0.5 ms (parked; BAM_MIX_SPIN_US) (decode: 1 per layer + 1 concurrent, 4 per layer + 1 sequential)",
                 handOffPolling * 1e3, handOffParked * 1e3))
    print(String(format: "  512-token prefill s concurrent %.3f   sequential %.3f   speed-up %.2fx (target >= 1.0)",
                 conc.prefill, seq.prefill, seq.prefill / conc.prefill))
    print(String(format: "  prefill GFLOP/s     %.1f of a %.1f sgemm ceiling = %.2f (target >= 0.6)", achieved, ceiling, achieved / ceiling))
    print("  KV cache per token  \(stats.kvCacheBytesPerToken) bytes (dense: \(KVCache.bytesPerPosition(config: try ModelConfig(json: BenchShape.llama58m.config), type: cacheType)))")
}

func formatParams(_ n: Int) -> String { String(format: "%.0fM", Double(n) / 1e6) }
