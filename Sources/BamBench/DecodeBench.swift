import BamModels
import BamTensors
import Foundation

/// Issue 15's decode benchmark: one token at a time with the KV cache (what `generate` does after
/// the prompt), for each `--weights` type, next to the bandwidth floor of the same bytes (every
/// matrix a token reads and its KV cache, read once by the same fused kernels with one hand-off:
/// `decodeFloor`). tools/bench_decode.py runs it beside llama-bench tg128 on GGUFs of the same
/// model.
///
///   BamBench decode [--model DIR] [--tokens 128] [--past 1] [--weights f32,bf16,q8_0] [--kv-cache f32|f16] [--rounds 3] [--json]
///
/// `--past N` decodes after an N-token prompt (llama-bench's `-d`, depth): each token then also
/// reads N + its position of keys and values from the KV cache.
///
/// Without --model, the 58M Llama shape (random f32 weights). Prints, per type: ms/token, tokens/s,
/// the floor (weights and KV cache, measured in the same rounds) and decode's time over it, and the
/// resident weight bytes; with --json, one JSON array
/// of the same figures (tools/bench_decode.py's decode-at-depth column reads it).
func runDecodeBench(arguments: [String]) throws {
    let dir = try option(arguments, "--model").map { URL(fileURLWithPath: $0) } ?? ensureModel(.llama58m)
    let tokens = option(arguments, "--tokens").flatMap(Int.init) ?? 128
    let rounds = option(arguments, "--rounds").flatMap(Int.init) ?? 3
    let cacheType = try kvCacheType(arguments)
    let past = max(1, option(arguments, "--past").flatMap(Int.init) ?? 1)
    let json = arguments.contains("--json")
    let types = try (option(arguments, "--weights") ?? "f32,bf16,q8_0").split(separator: ",").map { try WeightLoading(parsing: String($0)) }
    let ckpt = try Checkpoint.open(dir.path)
    let config = ckpt.config
    var rows: [[String: Any]] = []
    if !json { print("decode benchmark: \(dir.lastPathComponent), \(tokens) tokens after a \(past)-token prompt, \(cacheType) KV cache, best of \(rounds); "
          + "\(BLASThreads.defaultCount) workers, kernel family \(WeightKernels.active.family.rawValue) (CPU: \(KernelFamily.cpuFeatures.joined(separator: " "))); "
          + "shared machine: numbers are noisy") }
    for loading in types {
        let model = try Transformer.load(ckpt, weights: loading, kvCache: cacheType)
        var rng = SplitMix64(seed: 7)
        let ids = (0..<(tokens + past)).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }
        func run() throws -> Double {
            let cache = model.makeCache(capacity: tokens + past)
            _ = try model.finalHidden(tokens: Array(ids[0..<past]), cache: cache, outputRows: (past - 1)..<past)
            return try seconds {
                for t in past..<(past + tokens) { _ = try model.forward(tokens: [ids[t]], cache: cache) }
            } / Double(tokens)
        }
        _ = try run()   // page-in of the mapped weights, buffer pool, thread start-up
        // The floor: every matrix a token reads (`decodeMatrices`: for a mixture, the experts its
        // routing picks per token), the output projection split by rows, and the KV cache at the
        // average number of positions a timed token attends to. Measured in every round right
        // after the decode run, so that both meet the machine's drifting memory bandwidth alike.
        let w = model.weights
        let matrices = try decodeMatrices(w)
        let cacheReads = try kvCacheStandIns(config: config, bytesPerPosition: KVCache.bytesPerPosition(config: config, type: cacheType),
                                             positions: past + tokens / 2, type: cacheType)
        var best = Double.infinity, floor = Double.infinity
        for _ in 0..<rounds {
            best = min(best, try run())
            floor = min(floor, decodeFloor(matrices + cacheReads, head: w.lmHead, passes: 16))
        }
        let read = (matrices + [w.lmHead]).reduce(0) { $0 + $1.residentBytes }
        let cacheRead = cacheReads.reduce(0) { $0 + $1.residentBytes }
        rows.append(["model": dir.lastPathComponent, "weights": loading.description, "kv_cache": cacheType.rawValue,
                     "past": past, "tokens": tokens, "seconds_per_token": best, "tokens_per_second": 1 / best,
                     "floor_seconds": floor, "bytes_read": read, "kv_cache_bytes_read": cacheRead, "resident_bytes": w.residentBytes])
        if json { continue }
        print("  --weights " + loading.description.padding(toLength: 6, withPad: " ", startingAt: 0) + String(format: " %7.2f ms/token  %7.1f tok/s   floor %6.2f ms (%.0f MB of weights + %.1f MB of KV cache, %.1f GB/s)  decode/floor %.2fx   resident %.0f MB",
                     best * 1e3, 1 / best, floor * 1e3, Double(read) / 1e6, Double(cacheRead) / 1e6, Double(read + cacheRead) / floor / 1e9,
                     best / floor, Double(w.residentBytes) / 1e6))
    }
    if json { try printJSON(rows) }
}
