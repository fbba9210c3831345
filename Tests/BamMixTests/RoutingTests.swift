import BamEvaluation
import BamFormats
import BamMixing
import BamModels
import BamTensors
import BamTraining
import Foundation
import Testing

/// The routing fixtures of tools/make_training_fixtures.py (ROUTING_FIXTURES): BAM models with a
/// padded batch, Switch routing that drops tokens, sampled top-1 with PyTorch's Gumbel noise, and
/// soft routing — the loss, its parts and every gradient.
enum RoutingFixtures {
    static let names = ["bam_padded_btx", "bam_padded_switch_loss", "bam_switch_capacity", "bam_sample_top1", "bam_soft_ffn"]

    struct Batch {
        var inputs: [Int32]
        var targets: [Int32]
        var mask: [Bool]?
        var noise: GumbelNoiseSource?
    }

    static func file(_ name: String, _ f: String) -> URL { TrainingFixtures.directory(name).appendingPathComponent(f) }

    static func batch(_ name: String) throws -> Batch {
        let dir = TrainingFixtures.directory(name)
        let inputs = try NumPy.readInts(file(name, "inputs.npy")).values.map { Int32($0) }
        let targets = try NumPy.readInts(file(name, "targets.npy")).values.map { Int32($0) }
        var mask: [Bool]? = nil
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("mask.npy").path) {
            mask = try NumPy.readInts(file(name, "mask.npy")).values.map { $0 != 0 }
        }
        var noise: GumbelNoiseSource? = nil
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("gumbel.npy").path) {
            let (shape, values) = try NumPy.readFloat(file(name, "gumbel.npy"))
            let per = shape[1] * shape[2]
            let layers = (0..<shape[0]).map { Array(values[($0 * per)..<(($0 + 1) * per)]) }
            let t = try readJSONFile(file(name, "expected.json"))["temperature"]!.doubleValue!
            noise = .given(layers, temperature: Float(t))
        }
        return Batch(inputs: inputs, targets: targets, mask: mask, noise: noise)
    }
}

@Suite("FFN routing variants and padding against PyTorch (bam_mix_torch)")
struct RoutingFixtureTests {
    @Test("loss, router losses and every gradient equal PyTorch's", arguments: RoutingFixtures.names)
    func gradients(name: String) throws {
        let e = try TrainingFixtures.expected(name)
        let model = try TrainingFixtures.model(name, losses: e.losses)
        let batch = try RoutingFixtures.batch(name)
        model.gumbelNoise = batch.noise
        model.zeroGradients()
        let l = try model.forward(inputs: batch.inputs, targets: batch.targets, B: e.B, T: e.T, tokenMask: batch.mask)
        #expect(abs(l.total - e.loss) <= 1e-5 * abs(e.loss), "\(name): loss \(l.total) vs PyTorch \(e.loss)")
        #expect(abs(l.lm - e.lmLoss) <= 1e-5 * abs(e.lmLoss), "\(name): LM loss \(l.lm) vs \(e.lmLoss)")
        for (ours, theirs, what) in [(l.router.btx, e.router.btx, "btx"), (l.router.switchLoss, e.router.switchLoss, "switch"),
                                     (l.router.z, e.router.z, "z")] {
            #expect(abs(ours - theirs) <= 1e-5 * max(1, abs(theirs)), "\(name): \(what) loss \(ours) vs \(theirs)")
        }
        try model.backward()
        try TrainingFixtures.expectGradients(model, name)
    }

    @Test("the padded fixtures' router losses change when padding is counted (the mask matters)")
    func maskMatters() throws {
        for name in ["bam_padded_btx", "bam_padded_switch_loss"] {
            let e = try TrainingFixtures.expected(name)
            let model = try TrainingFixtures.model(name, losses: e.losses)
            let batch = try RoutingFixtures.batch(name)
            let masked = try model.forward(inputs: batch.inputs, targets: batch.targets, B: e.B, T: e.T, tokenMask: batch.mask)
            let unmasked = try model.forward(inputs: batch.inputs, targets: batch.targets, B: e.B, T: e.T)
            #expect(masked.lm == unmasked.lm, "padding is never scored")
            #expect(abs(masked.router.z - unmasked.router.z) > 1e-4 * masked.router.z, "\(name): z-loss with and without padding")
        }
    }

    @Test("padding positions' ids change neither the loss nor any gradient beyond rounding; counting padding does")
    func paddingIsInert() throws {
        let name = "bam_padded_btx"
        let e = try TrainingFixtures.expected(name)
        let batch = try RoutingFixtures.batch(name)
        func run(_ inputs: [Int32]) throws -> (Double, [[Float]]) {
            let model = try TrainingFixtures.model(name, losses: e.losses)
            model.zeroGradients()
            let l = try model.forward(inputs: inputs, targets: batch.targets, B: e.B, T: e.T, tokenMask: batch.mask)
            try model.backward()
            return (l.total, model.trainable.map { Array(UnsafeBufferPointer(start: $0.gradient.data, count: $0.gradient.count)) })
        }
        var other = batch.inputs
        for (i, keep) in batch.mask!.enumerated() where !keep { other[i] = Int32(7 + i % 5) }
        let (a, ga) = try run(batch.inputs), (b, gb) = try run(other)
        // Equal up to float32 rounding: padding's own routing changes how many rows each expert's
        // GEMMs sum over (and so their summation order), nothing else.
        #expect(abs(a - b) <= 1e-6 * abs(a), "loss \(a) vs \(b)")
        let model = try TrainingFixtures.model(name, losses: e.losses)
        for (i, (x, y)) in zip(ga, gb).enumerated() {
            let d = zip(x, y).map { abs($0 - $1) }.max() ?? 0, scale = x.map { abs($0) }.max() ?? 0
            #expect(d <= 1e-5 * scale, "\(model.trainable[i].spec.name): max difference \(d) of max \(scale)")
        }
        // Counting padding instead (no mask) moves the router gradients well beyond rounding.
        let unmasked = try TrainingFixtures.model(name, losses: e.losses)
        unmasked.zeroGradients()
        try unmasked.forward(inputs: other, targets: batch.targets, B: e.B, T: e.T)
        try unmasked.backward()
        let router = unmasked.trainable.firstIndex { $0.spec.name.hasSuffix("block_sparse_moe.gate.weight") }!
        let moved = zip(ga[router], UnsafeBufferPointer(start: unmasked.trainable[router].gradient.data, count: ga[router].count))
            .map { abs($0 - $1) }.max()!
        #expect(moved > 1e-3 * (ga[router].map { abs($0) }.max()!), "the mask matters for \(unmasked.trainable[router].spec.name)")
    }

    @Test("inference routes each sequence as the training forward does (Switch on one sequence, sampled top-1 by argmax, soft)",
          arguments: ["bam_switch_capacity", "bam_sample_top1", "bam_soft_ffn"])
    func inferenceMatchesTraining(name: String) throws {
        let e = try TrainingFixtures.expected(name)
        let model = try TrainingFixtures.model(name, losses: e.losses)
        let batch = try RoutingFixtures.batch(name)
        let ids = Array(batch.inputs[0..<e.T])
        // One sequence (B = 1): Switch's capacity then counts the same T tokens in both.
        try model.forward(inputs: ids, targets: nil, B: 1, T: e.T)
        let inference = Transformer(config: model.config, weights: model.weights)
        var dropped = 0
        let want = try inference.forward(tokens: ids.map { Int($0) }, cache: inference.makeCache(capacity: e.T)) { event in
            if case let .feedForwardRouting(_, d) = event { dropped += d.droppedCount }
        }
        let (maxDiff, firstBad) = compare(model.logits!.data, want.data, count: e.T * model.config.vocabSize, tolerance: 1e-5)
        #expect(firstBad == nil, "\(name): max |training - inference| = \(maxDiff)")
        if name == "bam_switch_capacity" { #expect(dropped > 0, "capacity 1.0 drops tokens of this sequence") }
    }
}

@Suite("FFN routing variants: the kernels")
struct RoutingKernelTests {
    /// Logits (T, 2) choosing expert 0 for every token but token 3.
    static let choices = [0, 0, 0, 1, 0, 0]
    static func logits(_ choices: [Int]) -> [Float] { choices.flatMap { $0 == 0 ? [1, 0] : [0, 1] as [Float] } }

    @Test("Switch capacity drops the tokens past ceil(factor * N / E) in token order; padding takes none")
    func switchCapacityHandWorked() {
        let l = Self.logits(Self.choices)
        // N = 6, E = 2, factor 1: capacity 3. Expert 0's queue: tokens 0, 1, 2, 4, 5 -> 4 and 5 dropped.
        #expect(switchCapacity(factor: 1, tokens: 6, experts: 2) == 3)
        let d = l.withUnsafeBufferPointer { routeSwitch(logits: $0.baseAddress!, T: 6, E: 2, capacity: 3) }
        #expect(d.dropped == [false, false, false, false, true, true])
        #expect(d.droppedCount == 2)
        #expect(d.chosen.map { $0 } == Self.choices.map { [$0] }, "the router's choice stays for the losses")
        #expect(d.dispatched(4) == [] && d.dispatched(3) == [1])
        // Token 1 is padding: N = 5 counted, capacity ceil(5 / 2) = 3; expert 0 takes 0, 2, 4; 5 is dropped.
        let mask = [true, false, true, true, true, true]
        let routing = FeedForwardRouting.switch(capacityFactor: 1)
        let m = l.withUnsafeBufferPointer { routing.route(logits: $0.baseAddress!, T: 6, E: 2, tokenMask: mask) }
        #expect(m.dropped == [false, true, false, false, false, true])
        #expect(m.droppedCount == 1, "padding is not counted as dropped")
        // The naive twin (one-hot, cumulative sum, compare) agrees on both.
        #expect(switchDroppedNaive(chosen: Self.choices, E: 2, capacity: 3, tokenMask: nil) == d.dropped)
        #expect(switchDroppedNaive(chosen: Self.choices, E: 2, capacity: 3, tokenMask: mask) == m.dropped)
        // Factor 1.5 (BTX's): capacity ceil(1.5 * 6 / 2) = 5: nothing dropped.
        let wide = l.withUnsafeBufferPointer { FeedForwardRouting.switch(capacityFactor: 1.5).route(logits: $0.baseAddress!, T: 6, E: 2) }
        #expect(wide.dropped.allSatisfy { !$0 })
    }

    @Test("Switch dropping against its naive twin on random routings")
    func switchTwin() {
        var rng = SplitMix64(seed: 5)
        for trial in 0..<50 {
            let T = 1 + Int(rng.next() % 40), E = 2 + Int(rng.next() % 4)
            let l = (0..<(T * E)).map { _ in rng.normal() }
            let mask = (0..<T).map { _ in rng.uniform() > 0.2 }
            let factor = [0.5, 1.0, 1.25, 1.5][trial % 4]
            let d = l.withUnsafeBufferPointer { FeedForwardRouting.switch(capacityFactor: factor).route(logits: $0.baseAddress!, T: T, E: E, tokenMask: mask) }
            let capacity = switchCapacity(factor: factor, tokens: mask.filter { $0 }.count, experts: E)
            #expect(d.dropped == switchDroppedNaive(chosen: d.chosen.map { $0[0] }, E: E, capacity: capacity, tokenMask: mask))
            var load = [Int](repeating: 0, count: E)
            for t in 0..<T where !d.dropped[t] { load[d.chosen[t][0]] += 1 }
            #expect(load.allSatisfy { $0 <= capacity })
        }
    }

    @Test("sampled top-1: the same noise for the same seed, argmax with gate 1 at inference, temperature max(0.5, exp(-r t))")
    func sampleTop1Reproducible() {
        var a = SplitMix64(seed: 11), b = SplitMix64(seed: 11), c = SplitMix64(seed: 12)
        let ga = GumbelSample(T: 8, E: 3, temperature: 1, rng: &a), gb = GumbelSample(T: 8, E: 3, temperature: 1, rng: &b)
        let gc = GumbelSample(T: 8, E: 3, temperature: 1, rng: &c)
        #expect(ga.noise == gb.noise && ga.noise != gc.noise)
        #expect(ga.noise.allSatisfy { $0.isFinite })
        let logits: [Float] = [0.1, 2.0, -1.0, 3.0, 3.0, 0.0]
        let d = logits.withUnsafeBufferPointer { FeedForwardRouting.sampleTop1(gumbelDecay: 1e-4).route(logits: $0.baseAddress!, T: 2, E: 3) }
        #expect(d.chosen == [[1], [0]], "argmax, ties to the lower index")
        #expect(d.weights == [0, 1, 0, 1, 0, 0] && d.relaxed == nil)
        #expect(FeedForwardRouting.gumbelTemperature(decay: 1e-4, step: 0) == 1)
        #expect(abs(FeedForwardRouting.gumbelTemperature(decay: 1e-4, step: 1000) - Float(exp(-0.1))) < 1e-7)
        #expect(FeedForwardRouting.gumbelTemperature(decay: 1e-4, step: 100_000) == 0.5)
    }

    @Test("the seeded Gumbel noise: the values bam_mix_torch's data.gumbel_noise draws (python/tests/test_data.py), and its temperature")
    func seededNoise() throws {
        let g = try GumbelNoiseSource.seeded(seed: 5, step: 2, microBatch: 1).sample(layer: 3, N: 2, E: 3, decay: 0.1)
        let want: [Float] = [0.8895124197006226, -0.22905971109867096, 3.022806167602539, 1.2952001094818115, 1.5540416240692139,
                             1.0367470979690552]
        #expect(g.noise == want)
        #expect(g.temperature == Float(exp(-0.2)))
        let other = try GumbelNoiseSource.seeded(seed: 5, step: 2, microBatch: 1).sample(layer: 2, N: 2, E: 3, decay: 0.1)
        #expect(other.noise != want, "each layer its own stream")
    }

    @Test("sampled top-1 picks each expert with its softmax probability (the Gumbel-max property), whatever the seed")
    func gumbelMaxFrequencies() {
        let logits: [Float] = [1.0, 0.0, -0.5, 0.5]
        let p = { () -> [Double] in let ex = logits.map { exp(Double($0)) }; let s = ex.reduce(0, +); return ex.map { $0 / s } }()
        let n = 20_000
        for seed in [UInt64(1), 99] {
            var rng = SplitMix64(seed: seed)
            let sample = GumbelSample(T: n, E: 4, temperature: 0.7, rng: &rng)
            let tiled = (0..<n).flatMap { _ in logits }
            let d = tiled.withUnsafeBufferPointer { FeedForwardRouting.sampleTop1(gumbelDecay: 0).route(logits: $0.baseAddress!, T: n, E: 4, sample: sample) }
            var counts = [Double](repeating: 0, count: 4)
            for c in d.chosen { counts[c[0]] += 1 }
            for e in 0..<4 {
                // Binomial standard deviation at n = 20000 is at most 0.0036; 5 of them.
                #expect(abs(counts[e] / Double(n) - p[e]) < 0.018, "seed \(seed) expert \(e): \(counts[e] / Double(n)) vs p \(p[e])")
            }
            #expect(d.relaxed != nil && d.weights.reduce(0, +) == Float(n), "hard gates 1")
        }
    }

    @Test("sampleTop1Backward equals its naive twin (straight-through Jacobians in double)")
    func sampleTop1BackwardTwin() throws {
        var rng = SplitMix64(seed: 3)
        let T = 7, E = 4
        let logits = (0..<(T * E)).map { _ in rng.normal() }
        let sample = GumbelSample(T: T, E: E, temperature: 0.6, rng: &rng)
        let d = logits.withUnsafeBufferPointer { FeedForwardRouting.sampleTop1(gumbelDecay: 0).route(logits: $0.baseAddress!, T: T, E: E, sample: sample) }
        let dg = (0..<(T * E)).map { _ in rng.normal() }, dp = (0..<(T * E)).map { _ in rng.normal() }
        var fast = [Float](repeating: 0, count: T * E), naive = fast
        try sampleTop1Backward(&fast, dg, dp, d)
        sample.noise.withUnsafeBufferPointer { sampleTop1BackwardNaive(&naive, dg, dp, d, noise: $0.baseAddress!) }
        for i in 0..<(T * E) { #expect(abs(fast[i] - naive[i]) <= 1e-5 * max(1, abs(naive[i])), "element \(i): \(fast[i]) vs \(naive[i])") }
        // Without the forward's sample there is nothing to differentiate: a clear error.
        let inference = logits.withUnsafeBufferPointer { FeedForwardRouting.sampleTop1(gumbelDecay: 0).route(logits: $0.baseAddress!, T: T, E: E) }
        #expect(throws: BamError.self) { try sampleTop1Backward(&fast, dg, dp, inference) }
    }

    @Test("router statistics leave padding out: equal to the statistics of the unpadded tokens alone")
    func maskedStatistics() {
        var rng = SplitMix64(seed: 8)
        let T = 9, E = 3
        let logits = (0..<(T * E)).map { _ in rng.normal() }
        let mask = [true, true, false, true, false, true, true, true, false]
        let kept = (0..<T).filter { mask[$0] }
        let keptLogits = kept.flatMap { t in logits[(t * E)..<((t + 1) * E)] }
        let routing = FeedForwardRouting.topK(k: 2, renormalize: true)
        let masked = logits.withUnsafeBufferPointer { routing.route(logits: $0.baseAddress!, T: T, E: E, tokenMask: mask) }
        let alone = keptLogits.withUnsafeBufferPointer { routing.route(logits: $0.baseAddress!, T: kept.count, E: E) }
        let a = routerLossesForward(masked, topK: 2), b = routerLossesForward(alone, topK: 2)
        #expect(abs(a.btx - b.btx) < 1e-12 && abs(a.switchLoss - b.switchLoss) < 1e-12 && abs(a.z - b.z) < 1e-9)
        // The backward: padded rows get nothing, kept rows what the unpadded batch gives them.
        var dg = [Float](repeating: 0, count: T * E), dp = dg, dl = dg
        var dg2 = [Float](repeating: 0, count: kept.count * E), dp2 = dg2, dl2 = dg2
        routerLossesBackward(&dg, &dp, &dl, masked, topK: 2, aux: .btx, alpha: 0.3, zBeta: 0.05)
        routerLossesBackward(&dg2, &dp2, &dl2, alone, topK: 2, aux: .btx, alpha: 0.3, zBeta: 0.05)
        for (r, t) in kept.enumerated() {
            for e in 0..<E {
                #expect(dg[t * E + e] == dg2[r * E + e] && dp[t * E + e] == dp2[r * E + e] && abs(dl[t * E + e] - dl2[r * E + e]) < 1e-7)
            }
        }
        for t in 0..<T where !mask[t] { for e in 0..<E { #expect(dg[t * E + e] == 0 && dp[t * E + e] == 0 && dl[t * E + e] == 0) } }
    }
}

@Suite("FFN routing variants: config.json, mix, formats")
struct RoutingConfigTests {
    static func bamConfig(_ extra: [String: JSONValue]) throws -> ModelConfig {
        var j = try Checkpoint.open(MixFixtures.llama[0]).config.raw
        j["model_type"] = "bam"
        j["base_model_type"] = "llama"
        j["attention_experts"] = "dense"
        j["num_local_experts"] = 3
        j["num_experts_per_tok"] = 1
        for (k, v) in extra { j[k] = v }
        return try ModelConfig(json: j)
    }

    @Test("each ffn_routing parses with its parameters and writes back the same keys")
    func parseAndWrite() throws {
        let cases: [([String: JSONValue], FeedForwardRouting)] = [
            ([:], .topK(k: 1, renormalize: false)),
            (["ffn_routing": "switch"], .switch(capacityFactor: 1.5)),
            (["ffn_routing": "switch", "router_capacity_factor": 1.25], .switch(capacityFactor: 1.25)),
            (["ffn_routing": "sample_top1", "router_gumbel_decay": 0.001], .sampleTop1(gumbelDecay: 0.001)),
            (["ffn_routing": "sample_top1"], .sampleTop1(gumbelDecay: 1e-4)),
            (["ffn_routing": "soft", "num_experts_per_tok": 3], .soft),
        ]
        for (keys, want) in cases {
            let c = try Self.bamConfig(keys)
            #expect(c.moe?.routing == want, "\(keys)")
            var raw = c.raw
            want.write(to: &raw, experts: 3)
            #expect(try ModelConfig(json: raw).moe?.routing == want)
        }
        #expect(try Self.bamConfig(["ffn_routing": "soft", "num_experts_per_tok": 3]).moe?.topK == 3)
        #expect(throws: BamError.self) { try Self.bamConfig(["ffn_routing": "soft", "num_experts_per_tok": 1]) }
        #expect(throws: BamError.self) { try Self.bamConfig(["ffn_routing": "switch", "router_capacity_factor": 0.0]) }
        #expect(throws: BamError.self) { try Self.bamConfig(["ffn_routing": "sample_top1", "router_renormalize": true]) }
    }

    @Test("mix --ffn-routing switch / sample-top1 / soft write the BAM format with the routing; top-k flags are refused")
    func mixWritesRouting() throws {
        for (recipe, want) in [(FFNRoutingRecipe.switch, FeedForwardRouting.switch(capacityFactor: 2)),
                               (.sampleTop1, .sampleTop1(gumbelDecay: 1e-4)), (.soft, .soft)] {
            for method in [MixMethod.btx, .bam] {
                let dir = try TemporaryDirectory()
                let out = try MixFixtures.mix({
                    var o = MixOptions(method: method, experts: MixFixtures.llama, output: $0)
                    o.ffnRouting = recipe
                    if recipe == .switch { o.capacityFactor = 2 }
                    return o
                }, in: dir)
                #expect(out.config.family == .bam, "Mixtral cannot express \(recipe)")
                #expect(out.config.moe?.routing == want)
                #expect(out.config.routerLossRecipe == (method == .bam ? .bam : .btx), "the method's losses")
            }
        }
        let dir = try TemporaryDirectory()
        var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: dir.file("x"))
        o.ffnRouting = .soft
        o.topK = 2
        #expect(throws: BamError.self) { try Mixer.run(o) }
        o.topK = nil
        o.capacityFactor = 1.5
        #expect(throws: BamError.self) { try Mixer.run(o) }
    }

    @Test("a Switch mixture's routing survives HF -> GGUF -> HF")
    func ggufRoundTrip() throws {
        let dir = try TemporaryDirectory()
        let original = try MixFixtures.mix({
            var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: $0)
            o.ffnRouting = .switch; o.capacityFactor = 1.25; return o
        }, in: dir)
        for f in ["tokenizer.json", "tokenizer_config.json"] { try? FileManager.default.removeItem(at: original.path.appendingPathComponent(f)) }
        let gguf = dir.file("m.gguf")
        try GGUFConverter.hfToGGUF(original, output: gguf, dtype: nil)
        let g = try Checkpoint.open(gguf.path)
        #expect(g.config.moe?.routing == .switch(capacityFactor: 1.25))
        try GGUFConverter.ggufToHF(g, outputDirectory: dir.file("back"), dtype: nil)
        #expect(try Checkpoint.open(dir.file("back").path).config.moe?.routing == .switch(capacityFactor: 1.25))
    }
}

@Suite("FFN routing variants: finetune")
struct RoutingFinetuneTests {
    /// `finetune` of a fresh BAM mixture with `recipe` for 3 steps; the step records and the output config.
    static func finetune(_ recipe: FFNRoutingRecipe, seed: UInt64, in dir: TemporaryDirectory, tag: String) throws -> (TrainingReport, ModelConfig) {
        let ckpt = try MixFixtures.mix({
            var m = MixOptions(method: .bam, experts: MixFixtures.llama, output: $0)
            m.ffnRouting = recipe; m.seed = 3; return m
        }, in: dir)
        let text = dir.file("a.txt")
        try String(repeating: "the cat sees a red apple. a dog finds the ball. ", count: 40).write(to: text, atomically: true, encoding: .utf8)
        var o = TrainingOptions()
        o.steps = 3
        o.batchSize = 2
        o.sequenceLength = 16
        o.seed = seed
        o.outputDirectory = dir.file("out-\(tag)")
        o.finalTrainingState = false
        let report = try train(modelPath: ckpt.path.path, data: [TrainingDomain(name: "a", files: [text])], options: o)
        return (report, try Checkpoint.open(dir.file("out-\(tag)").path).config)
    }

    @Test("finetune trains Switch, sampled top-1 and soft mixtures and keeps their routing", arguments: [FFNRoutingRecipe.switch, .sampleTop1, .soft])
    func trains(_ recipe: FFNRoutingRecipe) throws {
        let dir = try TemporaryDirectory()
        let (report, config) = try Self.finetune(recipe, seed: 1, in: dir, tag: "a")
        #expect(report.steps.count == 3 && report.steps.allSatisfy { $0.loss.isFinite && $0.gradNorm > 0 })
        #expect(config.moe?.routing.kind.rawValue == recipe.rawValue.replacingOccurrences(of: "-", with: "_"))
    }

    @Test("sampled top-1 finetuning is reproducible per seed and differs across seeds")
    func sampledReproducible() throws {
        let a = try Self.finetune(.sampleTop1, seed: 5, in: TemporaryDirectory(), tag: "a").0.steps.map(\.loss)
        let b = try Self.finetune(.sampleTop1, seed: 5, in: TemporaryDirectory(), tag: "b").0.steps.map(\.loss)
        #expect(a == b)
        // Another seed draws other windows too; the Gumbel noise alone: same windows, other noise.
        let d = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({
            var m = MixOptions(method: .bam, experts: MixFixtures.llama, output: $0)
            m.ffnRouting = .sampleTop1; m.seed = 3; return m
        }, in: d)
        let weights = try TransformerWeights.load(config: ckpt.config, store: ckpt.store)
        let model = TrainingModel(config: ckpt.config, weights: weights, losses: LossOptions(recipe: ckpt.config.routerLossRecipe))
        let V = Int32(ckpt.config.vocabSize)
        let inputs = (0..<32).map { Int32($0 * 7) % V }, targets = (0..<32).map { Int32($0 * 7 + 1) % V }
        // The per-layer share of tokens each expert got (the sampled choices' fingerprint) and the loss.
        func loss(_ noise: GumbelNoiseSource?) throws -> (Double, [[Double]]) {
            model.gumbelNoise = noise
            let l = try model.forward(inputs: inputs, targets: targets, B: 2, T: 16)
            return (l.total, l.expertLoad)
        }
        let s1 = try loss(.seeded(seed: 1, step: 0, microBatch: 0)), s1b = try loss(.seeded(seed: 1, step: 0, microBatch: 0))
        let s2 = try loss(.seeded(seed: 2, step: 0, microBatch: 0)), argmax = try loss(nil)
        #expect(s1.1 == s1b.1 && s1.0 == s1b.0)
        #expect(s1.1 != s2.1, "another seed samples other experts")
        #expect(s1.1 != argmax.1, "sampling is not the argmax")
    }
}

@Suite("FFN routing variants: routes")
struct RoutingRoutesTests {
    @Test("routes counts the tokens Switch routing dropped over each expert's capacity per window")
    func droppedTokens() throws {
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({
            var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: $0)
            o.ffnRouting = .switch; o.capacityFactor = 0.5; o.seed = 6; return o
        }, in: dir)
        let model = try Transformer.load(ckpt)
        let report = try analyseRouting(model: model, modelName: "m", tokenizer: try ckpt.loadTokenizer(), domains: EvalFixtures.domains,
                                        options: RoutesOptions(contextLength: 64, maxChunks: 4, sampleTokens: 20))
        #expect(report.ffnRouting == "Switch top-1 of 3, capacity factor 0.5")
        // Capacity ceil(0.5 * 64 / 3) = 11 per expert and window: at most 33 of 64 tokens pass.
        let capacity = switchCapacity(factor: 0.5, tokens: 64, experts: 3)
        #expect(capacity == 11)
        for d in report.domains {
            for l in d.layers {
                let f = try #require(l.ffn)
                // Each window drops what its experts' choices exceed the capacity by.
                #expect(f.dropped >= d.chunks * (64 - 3 * capacity), "layer \(l.layer): \(f.dropped) dropped")
                #expect(abs(f.droppedFraction - Double(f.dropped) / Double(d.tokens)) < 1e-12)
                #expect(abs(f.top1Fraction.reduce(0, +) - 1) < 1e-9, "the shares are of the router's choices, dropped included")
            }
            // A dropped token of the sample lists no expert.
            #expect(d.sample.contains { $0.ffnExperts?.contains([]) == true })
        }
        // Top-k routing drops nothing.
        let plainDir = try TemporaryDirectory()
        let topK = try MixFixtures.mix({ var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: $0); o.seed = 6; return o },
                                       in: plainDir)
        let plain = try analyseRouting(model: try Transformer.load(topK), modelName: "m", tokenizer: try topK.loadTokenizer(),
                                       domains: EvalFixtures.domains, options: RoutesOptions(contextLength: 64, maxChunks: 2, sampleTokens: 8))
        #expect(plain.domains.allSatisfy { $0.layers.allSatisfy { $0.ffn?.dropped == 0 } })
    }
}
