import BamModels
import BamTensors
import Foundation

/// Prefill as `generate` runs it — one forward of a T-token prompt into a fresh KV cache, the
/// logits of the last row only — on random token ids, as llama-bench's pp512 does:
///
///   BamBench prefill [--model DIR] [--tokens 512] [--weights stored] [--rounds 5] [--json]
///
/// Two figures, because they differ by 5-15 %: the first pass after load (what `generate --json`
/// reports for a prompt: it first-touches the activation buffers and the KV cache, fresh pages
/// the kernel faults in and zeroes), and the best of the later passes (warm: the buffers reused),
/// which is what llama-bench times — it runs a warm-up pass before it measures pp512, and
/// llama.cpp allocates its KV cache and compute buffers when it creates the context.
/// tools/bench_decode.py compares the warm figure with llama-bench's pp512. Also the model's
/// multiply-adds against the sgemm ceiling measured in the same run (a dense model's
/// projections, the block-causal attention products, one row of the output head; the last
/// layer at its one output row but for its keys and values).
func runPrefillBench(arguments: [String]) throws {
    let dir = try option(arguments, "--model").map { URL(fileURLWithPath: $0) } ?? ensureModel(.llama58m)
    let T = option(arguments, "--tokens").flatMap(Int.init) ?? 512
    let rounds = option(arguments, "--rounds").flatMap(Int.init) ?? 5
    let loading = try WeightLoading(parsing: option(arguments, "--weights") ?? "stored")
    let json = arguments.contains("--json")
    guard T >= 1, rounds >= 1 else { throw BamError.usage("prefill: --tokens and --rounds must be at least 1") }
    let ckpt = try Checkpoint.open(dir.path)
    let c = ckpt.config
    var loaded: Transformer?
    let loadSeconds = try seconds { loaded = try Transformer.load(ckpt, weights: loading) }
    let model = loaded!
    var rng = SplitMix64(seed: 11)
    let ids = (0..<T).map { _ in Int(rng.next() % UInt64(c.vocabSize)) }
    func pass() throws -> Double {
        try seconds {
            let cache = model.makeCache(capacity: T + 1)
            _ = try model.forward(tokens: ids, cache: cache, outputRows: (T - 1)..<T)
        }
    }
    let first = try pass()
    var warm = Double.infinity
    for _ in 0..<rounds { warm = min(warm, try pass()) }
    // Multiply-adds of the work done (a mixture's routed experts are not counted): per token of
    // each layer but the last, q, k, v, o, the SwiGLU FFN, and attention over the visible keys
    // (about T/2 on average); the last layer's k and v for every token and the rest for the one
    // output row only (the forward pass prunes it so); one row of the output head.
    let C = Double(c.hidden), Q = Double(c.qDim), KV = Double(c.kvDim), F = Double(c.intermediate), t = Double(T)
    let keysValues = C * 2 * KV, rest = C * 2 * Q + 3 * C * F
    let perLayer = t * (keysValues + rest + 2 * Q * t / 2)
    let lastLayer = t * keysValues + rest + 2 * Q * t
    let flops = 2 * (Double(c.layers - 1) * perLayer + lastLayer + C * Double(c.vocabSize))
    let ceiling = gemmCeiling()
    if json {
        let out: [String: Any] = ["model": dir.lastPathComponent, "tokens": T, "weights": loading.description,
                                  "load_seconds": loadSeconds, "first_seconds": first, "warm_seconds": warm,
                                  "first_tokens_per_second": Double(T) / first, "warm_tokens_per_second": Double(T) / warm,
                                  "sgemm_ceiling_gflops": ceiling]
        try printJSON(out)
        return
    }
    print("prefill benchmark: \(dir.lastPathComponent), \(T) tokens, weights \(loading), \(BLASThreads.defaultCount) workers, "
          + "OpenBLAS \(BLASThreads.kernels); load \(String(format: "%.3f", loadSeconds)) s")
    for (name, s) in [("first pass", first), ("warm, best of \(rounds)", warm)] {
        print("  " + name.padding(toLength: 18, withPad: " ", startingAt: 0)
              + String(format: " %.4f s  %.0f tok/s  %.1f GFLOP/s (dense work done) = %.2f of the sgemm ceiling, %.1f GFLOP/s",
                       s, Double(T) / s, flops / s / 1e9, flops / s / 1e9 / ceiling, ceiling))
    }
}
