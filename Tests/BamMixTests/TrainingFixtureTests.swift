import BamFormats
import BamModels
import BamTraining
import Foundation
import Testing

/// The fixtures of tools/make_training_fixtures.py: tiny dense, Mixtral and BAM models with one
/// batch, PyTorch's loss and every parameter gradient (float64), and the losses of ten AdamW steps.
enum TrainingFixtures {
    static let names = [
        "llama", "llama_bias_tied", "cohere", "mixtral", "bam_expert_kv_soft_parallel", "bam_shared_kv_top1_sequential",
        "bam_expert_kv_top2_renorm_sequential", "bam_cohere_bias_shared_kv_parallel",
    ]

    struct Expected {
        var B: Int, T: Int
        var loss: Double, lmLoss: Double
        var router: RouterLossValues
        var losses: LossOptions
        var adam: JSONValue
    }

    static func directory(_ name: String) -> URL { Fixtures.url("training/\(name)") }

    static func expected(_ name: String) throws -> Expected {
        let j = try readJSONFile(directory(name).appendingPathComponent("expected.json"))
        let r = j["router_losses"]!
        let aux = AuxLossKind(rawValue: j["aux"]!.stringValue!)!
        return Expected(B: j["B"]!.intValue!, T: j["T"]!.intValue!, loss: j["loss"]!.doubleValue!,
                        lmLoss: j["lm_loss"]!.doubleValue!,
                        router: RouterLossValues(btx: r["btx"]!.doubleValue!, switchLoss: r["switch"]!.doubleValue!, z: r["z"]!.doubleValue!),
                        losses: LossOptions(aux: aux, auxAlpha: j["alpha"]!.doubleValue!, zBeta: j["beta"]!.doubleValue!),
                        adam: j["adamw"] ?? .null)   // routing fixtures have no AdamW steps
    }

    /// Rows of B windows of T + 1 tokens as (inputs, targets) of B*T each.
    static func batch(_ windows: ArraySlice<Int>, B: Int, T: Int) -> (inputs: [Int32], targets: [Int32]) {
        var inputs: [Int32] = [], targets: [Int32] = []
        let w = Array(windows)
        for b in 0..<B {
            for t in 0..<T {
                inputs.append(Int32(w[b * (T + 1) + t]))
                targets.append(Int32(w[b * (T + 1) + t + 1]))
            }
        }
        return (inputs, targets)
    }

    static func model(_ name: String, losses: LossOptions) throws -> TrainingModel {
        let ckpt = try Checkpoint.open(directory(name).path)
        let weights = try TransformerWeights.load(config: ckpt.config, store: ckpt.store)
        return TrainingModel(config: ckpt.config, weights: weights, losses: losses)
    }

    /// Every trainable parameter's gradient of `model` against the fixture's grads.safetensors
    /// (relative error <= 1e-4 of each tensor's largest PyTorch gradient).
    static func expectGradients(_ model: TrainingModel, _ name: String) throws {
        let grads = try SafetensorsFile(path: directory(name).appendingPathComponent("grads.safetensors").path)
        // The largest gradient element of the model sets the float32 rounding level: a tensor whose
        // true gradient is zero (an expert no token chose; a top-1 attention router, whose gate
        // p / p is constantly 1) holds only rounding noise in PyTorch's float64-with-float32-casts
        // result, so there both must be zero to within 1e-6 of that scale.
        var globalMax: Float = 0
        for e in grads.entries {
            let ref = try grads.bytes(e.info.name).bindMemory(to: Float.self)
            for x in ref { globalMax = max(globalMax, abs(x)) }
        }
        let zeroLevel = 1e-6 * globalMax
        var worst = (name: "", error: 0.0)
        var checked = 0
        for (spec, _, g) in model.trainable {
            guard let entry = grads.entry(spec.name) else {
                Issue.record("\(name): PyTorch has no gradient for \(spec.name)")
                continue
            }
            #expect(entry.info.shape == spec.shape)
            let ref = try grads.bytes(spec.name).bindMemory(to: Float.self)
            var maxRef: Float = 0, maxOurs: Float = 0, maxDiff: Float = 0
            for i in 0..<g.count {
                maxRef = max(maxRef, abs(ref[i]))
                maxOurs = max(maxOurs, abs(g.data[i]))
                maxDiff = max(maxDiff, abs(g.data[i] - ref[i]))
            }
            if maxRef <= zeroLevel {
                #expect(maxOurs <= zeroLevel, "\(name): \(spec.name) should be zero (PyTorch: max \(maxRef)), ours has max \(maxOurs)")
            } else {
                let error = Double(maxDiff / maxRef)
                if error > worst.error || worst.name.isEmpty { worst = (spec.name, error) }
            }
            checked += 1
        }
        #expect(checked == grads.entries.count, "\(name): compared \(checked) of \(grads.entries.count) gradients")
        #expect(worst.error <= 1e-4, "\(name): worst gradient \(worst.name): max |ours - PyTorch| / max |PyTorch| = \(worst.error)")
    }
}

@Suite("Training against PyTorch: loss, every gradient, ten AdamW steps")
struct TrainingFixtureTests {
    @Test("loss and every parameter gradient equal PyTorch's (relative error <= 1e-4)", arguments: TrainingFixtures.names)
    func gradients(name: String) throws {
        let e = try TrainingFixtures.expected(name)
        let model = try TrainingFixtures.model(name, losses: e.losses)
        let (_, tokens) = try NumPy.readInts(TrainingFixtures.directory(name).appendingPathComponent("tokens.npy"))
        let batch = TrainingFixtures.batch(tokens[...], B: e.B, T: e.T)
        model.zeroGradients()
        let l = try model.forward(inputs: batch.inputs, targets: batch.targets, B: e.B, T: e.T)
        #expect(abs(l.total - e.loss) <= 1e-5 * abs(e.loss), "\(name): loss \(l.total) vs PyTorch \(e.loss)")
        #expect(abs(l.lm - e.lmLoss) <= 1e-5 * abs(e.lmLoss), "\(name): LM loss \(l.lm) vs \(e.lmLoss)")
        for (ours, theirs, what) in [(l.router.btx, e.router.btx, "btx"), (l.router.switchLoss, e.router.switchLoss, "switch"),
                                     (l.router.z, e.router.z, "z")] {
            #expect(abs(ours - theirs) <= 1e-5 * max(1, abs(theirs)), "\(name): \(what) loss \(ours) vs \(theirs)")
        }
        try model.backward()
        try TrainingFixtures.expectGradients(model, name)
    }

    @Test("the training forward's logits equal Transformer.forward's", arguments: TrainingFixtures.names)
    func logitsMatchInference(name: String) throws {
        let e = try TrainingFixtures.expected(name)
        let model = try TrainingFixtures.model(name, losses: e.losses)
        let (_, tokens) = try NumPy.readInts(TrainingFixtures.directory(name).appendingPathComponent("tokens.npy"))
        let batch = TrainingFixtures.batch(tokens[...], B: e.B, T: e.T)
        try model.forward(inputs: batch.inputs, targets: nil, B: e.B, T: e.T)
        let inference = Transformer(config: model.config, weights: model.weights)
        let V = model.config.vocabSize
        for b in 0..<e.B {
            let ids = batch.inputs[(b * e.T)..<((b + 1) * e.T)].map { Int($0) }
            let want = try inference.forward(tokens: ids, cache: inference.makeCache(capacity: e.T))
            let (maxDiff, firstBad) = compare(model.logits!.data + b * e.T * V, want.data, count: e.T * V, tolerance: 1e-5)
            #expect(firstBad == nil, "\(name) sequence \(b): max |training - inference| = \(maxDiff)")
        }
    }

    @Test("ten AdamW steps (warm-up, cosine, clipping, accumulation, frozen groups) give PyTorch's losses",
          arguments: TrainingFixtures.names)
    func adamSteps(name: String) throws {
        let e = try TrainingFixtures.expected(name)
        let a = e.adam
        let steps = a["steps"]!.intValue!, accumulation = a["accumulation"]!.intValue!
        var o = TrainingOptions()
        o.steps = steps
        o.batchSize = e.B
        o.sequenceLength = e.T
        o.accumulation = accumulation
        o.learningRate = a["lr"]!.doubleValue!
        o.warmupSteps = a["warmup"]!.intValue!
        o.minLRFraction = a["min_fraction"]!.doubleValue!
        o.adam = AdamWOptions(beta1: a["beta1"]!.doubleValue!, beta2: a["beta2"]!.doubleValue!, eps: a["eps"]!.doubleValue!,
                              weightDecay: a["weight_decay"]!.doubleValue!, skipIdleExperts: a["idle_experts"]!.stringValue! == "skip")
        o.gradClip = a["grad_clip"]!.doubleValue!
        o.train = [ParameterGroup(rawValue: a["train"]!.stringValue!)!]
        o.losses = e.losses
        let data = try TrainingData(domains: [.init(name: "unused", weight: 1, train: [[0, 1, 2]], validation: [[0, 1]])])
        let trainer = try Trainer(checkpoint: Checkpoint.open(TrainingFixtures.directory(name).path), data: data, options: o)
        let (_, windows) = try NumPy.readInts(TrainingFixtures.directory(name).appendingPathComponent("steps.npy"))
        let perBatch = e.B * (e.T + 1)
        let wantLosses = a["losses"]!.arrayValue!.map { $0.doubleValue! }
        let wantNorms = a["grad_norms"]!.arrayValue!.map { $0.doubleValue! }
        for s in 0..<steps {
            let batches = (0..<accumulation).map { m in
                let start = (s * accumulation + m) * perBatch
                return TrainingFixtures.batch(windows[start..<(start + perBatch)], B: e.B, T: e.T)
            }
            let r = try trainer.trainStep(batches: batches)
            let loss = wantLosses[s], norm = wantNorms[s]
            let lossError = abs(r.loss - loss) / abs(loss), normError = abs(r.gradNorm - norm) / norm
            #expect(lossError <= 1e-4, "\(name) step \(s + 1): loss \(r.loss) vs PyTorch \(loss)")
            #expect(normError <= 1e-4, "\(name) step \(s + 1): gradient norm \(r.gradNorm) vs PyTorch \(norm)")
        }
    }
}
