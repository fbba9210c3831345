import BamModels
import BamTraining
import Foundation

/// Issue 8's benchmark: one training step (forward, backward, gradient clipping, AdamW) of the
/// 58M-parameter dense Llama at batch 4 x 256 tokens, float32, with the time split into forward,
/// backward and optimiser, achieved GFLOP/s next to the sgemm ceiling of the same run, and the
/// memory a step holds (parameters, gradients, AdamW moments, activations) and the peak RSS.
/// tools/bench_training_torch.py runs PyTorch's step on the same checkpoint and prints the ratio.
///
///   BamBench train [--steps N] [--batch B] [--seq T] [--model DIR] [--json]
func runTrainBench(arguments: [String]) throws {
    let steps = option(arguments, "--steps").flatMap(Int.init) ?? 5
    let B = option(arguments, "--batch").flatMap(Int.init) ?? 4
    let T = option(arguments, "--seq").flatMap(Int.init) ?? 256
    let json = arguments.contains("--json")
    let dir = try option(arguments, "--model").map { URL(fileURLWithPath: $0) } ?? ensureModel(.llama58m)
    let ckpt = try Checkpoint.open(dir.path)
    let config = ckpt.config
    let model = TrainingModel(config: config, weights: try TransformerWeights.load(config: config, store: ckpt.store),
                              losses: LossOptions(aux: .none, auxAlpha: 0, zBeta: 0))
    let optimizer = AdamW(parameters: model.trainable, options: AdamWOptions())
    var rng = SplitMix64(seed: 42)
    func batch() -> (inputs: [Int32], targets: [Int32]) {
        let tokens = (0..<(B * (T + 1))).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) }
        var inputs: [Int32] = [], targets: [Int32] = []
        for b in 0..<B {
            inputs += tokens[(b * (T + 1))..<(b * (T + 1) + T)]
            targets += tokens[(b * (T + 1) + 1)...(b * (T + 1) + T)]
        }
        return (inputs, targets)
    }
    var forward: [Double] = [], backward: [Double] = [], optimise: [Double] = [], loss = 0.0
    // Step 0 is a warm-up (page faults of the mapped weights, first allocations), not timed.
    for step in 0...steps {
        let x = batch()
        model.zeroGradients()
        let f = try seconds { loss = try model.forward(inputs: x.inputs, targets: x.targets, B: B, T: T).total }
        let b = try seconds { try model.backward() }
        let o = seconds {
            let norm = gradientNorm(model.trainable.map(\.gradient))
            optimizer.update(lr: 1e-4, gradientScale: clipCoefficient(norm: norm, maxNorm: 1))
        }
        if step > 0 { forward.append(f); backward.append(b); optimise.append(o) }
    }
    func median(_ a: [Double]) -> Double { a.sorted()[a.count / 2] }
    let stepSeconds = zip(zip(forward, backward), optimise).map { $0.0 + $0.1 + $1 }
    let perStep = median(stepSeconds)
    let flops = 3 * passFLOPs(config: config, T: T, scoredRows: T) * Double(B)
    let rss = peakRSS()
    let memory = (parameters: config.parameterSpecs.reduce(0) { $0 + $1.shape.reduce(1, *) } * 4, gradients: model.gradientBytes,
                  adam: optimizer.stateBytes, activations: model.activationBytes)
    let total = memory.parameters + memory.gradients + memory.adam + memory.activations
    if json {
        let o: [String: Any] = ["seconds_per_step": perStep, "best_step": stepSeconds.min()!, "forward": median(forward), "backward": median(backward),
                                "optimizer": median(optimise), "tokens_per_second": Double(B * T) / perStep, "loss": loss,
                                "threads": BLASThreads.defaultCount, "memory_bytes": total, "peak_rss": rss]
        try printJSON(o)
        return
    }
    let ceiling = gemmCeiling()
    print("training benchmark: \(dir.lastPathComponent), batch \(B) x \(T) tokens, \(steps) steps (median), \(BLASThreads.defaultCount) threads, OpenBLAS kernels \(BLASThreads.kernels)")
    print(String(format: "  seconds per step            %.3f  (forward %.3f, backward %.3f, clip + AdamW %.3f)",
                 perStep, median(forward), median(backward), median(optimise)))
    print(String(format: "  tokens/s                    %.0f", Double(B * T) / perStep))
    print(String(format: "  achieved GFLOP/s            %.1f  (%.2f of the sgemm ceiling; 3x the forward's GEMM FLOPs)",
                 flops / perStep / 1e9, flops / perStep / 1e9 / ceiling))
    print(String(format: "  sgemm ceiling GFLOP/s       %.1f", ceiling))
    print(String(format: "  memory per step             %.0f MB: parameters %.0f, gradients %.0f, AdamW moments %.0f, activations %.0f (target < 3000)",
                 Double(total) / 1e6, Double(memory.parameters) / 1e6, Double(memory.gradients) / 1e6, Double(memory.adam) / 1e6,
                 Double(memory.activations) / 1e6))
    print(String(format: "  peak RSS                    %.0f MB", Double(rss) / 1e6))
    print(String(format: "  loss (random weights)       %.4f", loss))
}
