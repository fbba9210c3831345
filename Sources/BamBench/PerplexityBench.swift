import BamEvaluation
import BamModels
import Foundation

/// Issue 2's benchmark: llama.cpp-style perplexity (ctx 512, half scoring) on the 58M Llama shape,
/// seconds per 512-token pass, tokens/s and achieved GFLOP/s next to the sgemm ceiling measured
/// in the same run, and peak memory against the f32 weight bytes.
func runPerplexityBench(arguments: [String]) throws {
    let chunks = option(arguments, "--chunks").flatMap(Int.init) ?? 6
    let dir = try option(arguments, "--model").map { URL(fileURLWithPath: $0) } ?? ensureModel(.llama58m)
    let ctx = 512
    let ckpt = try Checkpoint.open(dir.path)
    let config = ckpt.config
    let model = try Transformer.load(ckpt)
    if ProcessInfo.processInfo.environment["BAM_MIX_BENCH_DEBUG"] != nil {
        print("RSS after load \(peakRSS() / 1_000_000) MB")
        var sum: Float = 0
        for m in model.weights.matrices {
            for i in stride(from: 0, to: m.residentBytes, by: 4096) { sum += Float(m.data.load(fromByteOffset: i, as: UInt8.self)) }
        }
        print("RSS after touching weights \(peakRSS() / 1_000_000) MB \(sum)")
        _ = try model.forward(tokens: [1, 2, 3], cache: model.makeCache(capacity: 3))
        print("RSS after tiny forward \(peakRSS() / 1_000_000) MB")
    }
    var rng = SplitMix64(seed: 42)
    let tokens = (0..<(ctx * (chunks + 1))).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }
    // Warm-up chunk (page faults of the mapped weights, BLAS thread start-up), not timed.
    _ = try perplexity(model: model, tokens: Array(tokens.prefix(ctx)), options: PerplexityOptions(contextLength: ctx, bosToken: 1))
    let result = try perplexity(model: model, tokens: Array(tokens.suffix(ctx * chunks)),
                                options: PerplexityOptions(contextLength: ctx, bosToken: 1))
    let rss = peakRSS()
    let weightBytes = config.parameterSpecs.reduce(0) { $0 + $1.shape.reduce(1, *) } * 4
    let perPass = result.seconds / Double(result.chunks)
    let flops = passFLOPs(config: config, T: ctx, scoredRows: ctx / 2 - 1)
    let achieved = flops / perPass / 1e9
    let ceiling = gemmCeiling()
    print("perplexity benchmark: \(dir.lastPathComponent), ctx \(ctx), \(result.chunks) chunks, \(BLASThreads.defaultCount) threads, OpenBLAS kernels \(BLASThreads.kernels)")
    print(String(format: "  seconds per 512-token pass  %.3f", perPass))
    print(String(format: "  tokens/s                    %.0f", Double(ctx) / perPass))
    print(String(format: "  achieved GFLOP/s            %.1f  (%.2f of the sgemm ceiling)", achieved, achieved / ceiling))
    print(String(format: "  sgemm ceiling GFLOP/s       %.1f  (2048^3, same run)", ceiling))
    print(String(format: "  peak RSS                    %.0f MB = %.2fx the f32 weights (%.0f MB)",
                 Double(rss) / 1e6, Double(rss) / Double(weightBytes), Double(weightBytes) / 1e6))
    print(String(format: "  PPL (random weights)        %.2f", result.ppl))
}

/// FLOPs one forward pass performs (what the GEMMs compute): linear layers for T tokens,
/// attention as computed (full T x T score and value products per head), and the output
/// projection for the scored rows only.
func passFLOPs(config c: ModelConfig, T: Int, scoredRows: Int) -> Double {
    let C = Double(c.hidden), F = Double(c.intermediate), Q = Double(c.qDim), KV = Double(c.kvDim)
    let t = Double(T)
    var perLayer = 2 * t * C * (Q + 2 * KV) + 2 * t * Q * C + 2 * 2 * t * t * Q
    let ffn = 2 * t * 3 * C * F
    perLayer += c.moe.map { Double($0.topK) * ffn } ?? ffn
    return Double(c.layers) * perLayer + 2 * Double(scoredRows) * C * Double(c.vocabSize)
}
