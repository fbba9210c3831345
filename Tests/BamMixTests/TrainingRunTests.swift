import BamFormats
import BamMixing
import BamModels
import BamTokenizers
import BamTraining
import Foundation
import Testing

/// A small deterministic corpus of sentences from a toy grammar: character-level structure that a
/// tiny model learns in a few hundred steps.
private func toyCorpus(sentences: Int, seed: UInt64) -> String {
    var g = SplitMix64(seed: seed)
    let subjects = ["the cat", "a dog", "the bird", "my friend", "the old man", "a child"]
    let verbs = ["sees", "likes", "finds", "eats", "wants", "draws"]
    let objects = ["the ball", "a red apple", "the small house", "some bread", "the green tree", "a blue cup"]
    func pick(_ a: [String]) -> String { a[Int(g.next() % UInt64(a.count))] }
    return (0..<sentences).map { _ in "\(pick(subjects)) \(pick(verbs)) \(pick(objects))." }.joined(separator: " ")
}

private func writeCorpus(_ dir: TemporaryDirectory, _ name: String, sentences: Int, seed: UInt64) throws -> URL {
    let url = dir.file(name)
    try toyCorpus(sentences: sentences, seed: seed).write(to: url, atomically: true, encoding: .utf8)
    return url
}

/// Every tensor of a checkpoint directory, by name.
private func tensors(_ dir: URL) throws -> [String: [Float]] {
    let ckpt = try Checkpoint.open(dir.path)
    var out: [String: [Float]] = [:]
    for n in ckpt.store.names { out[n] = try ckpt.store.tensor(n).array }
    return out
}

@Suite("Training runs: a dense model learns a toy corpus; checkpoints, resume, logs, parameter groups")
struct TrainingRunTests {
    let seed = MixFixtures.expert("llama_seed")

    @Test("a dense Llama's validation loss falls well below the unigram entropy; the checkpoint loads and keeps the config")
    func denseLearns() throws {
        let dir = try TemporaryDirectory()
        let text = try writeCorpus(dir, "toy.txt", sentences: 1500, seed: 1)
        var o = TrainingOptions()
        o.steps = 200
        o.batchSize = 8
        o.sequenceLength = 48
        o.learningRate = 1e-2
        o.warmupSteps = 10
        o.evalEvery = 100
        o.evalWindows = 16
        o.losses = LossOptions(aux: .none, auxAlpha: 0, zBeta: 0)
        o.outputDirectory = dir.file("trained")
        o.logURL = dir.file("log.jsonl")
        o.finalTrainingState = false
        let report = try train(modelPath: seed, data: [TrainingDomain(name: "toy", files: [text])], options: o)
        let first = report.validation.first!.loss, last = report.validation.last!.loss
        let h = report.unigramEntropy
        #expect(report.validation.count == 3)
        #expect(last < 0.6 * h, "validation loss \(first) -> \(last); unigram entropy \(h)")
        #expect(first > h, "an untrained model is worse than unigram frequencies (\(first) vs \(h))")

        // The checkpoint: an HF directory with the seed's config and tokenizer, no training state.
        let out = dir.file("trained")
        let ckpt = try Checkpoint.open(out.path)
        #expect(ckpt.config.hidden == 32 && ckpt.config.family == .llama)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("tokenizer.json").path))
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("training_state.json").path))
        // Its forward agrees with the trained model's last validation: score the held-out text again.
        let model = try Transformer.load(ckpt)
        let tokenizer = try Tokenizer.load(url: out)
        let ids = tokenizer.encode(try String(contentsOf: text, encoding: .utf8), addSpecialTokens: true)
        let tail = Array(ids.suffix(49))
        let nll = try model.negativeLogLikelihoods(tail, positions: 0..<48)
        #expect(nll.reduce(0, +) / 48 < 0.6 * h)

        // The log: one line per step and per validation.
        let lines = try String(contentsOf: dir.file("log.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 200 + 3)
        let step = try JSONParser.parse(String(lines[1]))
        for key in ["step", "loss", "lm_loss", "aux_loss", "z_loss", "lr", "grad_norm", "tokens_per_second", "expert_load", "type"] {
            #expect(step[key] != nil, "the step record has `\(key)`")
        }
        #expect(step["type"]?.stringValue == "step")
        #expect(try JSONParser.parse(String(lines[0]))["type"]?.stringValue == "validation")
        #expect(report.memory.gradients > 0 && report.memory.optimizerState == 2 * report.memory.gradients)
    }

    @Test("a run stopped after 3 steps and resumed to 6 ends with the same weights as 6 steps in one go")
    func resumeIsExact() throws {
        let dir = try TemporaryDirectory()
        let text = try writeCorpus(dir, "toy.txt", sentences: 300, seed: 2)
        var o = TrainingOptions()
        o.steps = 6
        o.batchSize = 2
        o.sequenceLength = 16
        o.learningRate = 3e-3
        o.warmupSteps = 2
        o.accumulation = 2
        o.seed = 5
        o.losses = LossOptions(aux: .none, auxAlpha: 0, zBeta: 0)
        let data = [TrainingDomain(name: "toy", files: [text])]
        o.outputDirectory = dir.file("straight")
        let straight = try train(modelPath: seed, data: data, options: o)

        var first = o
        first.outputDirectory = dir.file("resumed")
        first.checkpointEvery = 3
        first.steps = 3
        let part1 = try train(modelPath: seed, data: data, options: first)
        #expect(FileManager.default.fileExists(atPath: dir.file("resumed/training_state.safetensors").path))
        var second = o
        second.outputDirectory = dir.file("resumed")
        second.resume = dir.file("resumed")
        let part2 = try train(modelPath: seed, data: data, options: second)
        #expect(part2.steps.map(\.step) == [4, 5, 6])
        #expect((part1.steps + part2.steps).map(\.loss) == straight.steps.map(\.loss))
        #expect(try tensors(dir.file("resumed")) == tensors(dir.file("straight")))
        // A finished run's directory is not silently overwritten by a new run.
        #expect(throws: BamError.self) { try train(modelPath: seed, data: data, options: first) }
    }

    @Test("--dump-batches writes the token batches the run trained on, int32 [steps, accumulation, 2, B, T]")
    func dumpBatches() throws {
        let dir = try TemporaryDirectory()
        let text = try writeCorpus(dir, "toy.txt", sentences: 100, seed: 7)
        var o = TrainingOptions()
        o.steps = 3
        o.batchSize = 2
        o.sequenceLength = 8
        o.accumulation = 2
        o.seed = 9
        o.losses = LossOptions(aux: .none, auxAlpha: 0, zBeta: 0)
        o.outputDirectory = dir.file("out")
        o.dumpBatches = dir.file("batches.npy")
        let specs = [TrainingDomain(name: "toy", files: [text])]
        _ = try train(modelPath: seed, data: specs, options: o)
        let (shape, values) = try NumPy.readInts(dir.file("batches.npy"))
        #expect(shape == [3, 2, 2, 2, 8])
        // The same windows drawn again from the same seed: step by step, micro-batch by micro-batch, inputs then targets.
        let data = try TrainingData(specs: specs, tokenizer: try Tokenizer.load(url: URL(fileURLWithPath: seed)))
        var rng = SplitMix64(seed: 9)
        var expected: [Int] = []
        for _ in 0..<(3 * 2) {
            let b = data.sampleBatch(B: 2, T: 8, rng: &rng)
            expected += b.inputs.map(Int.init) + b.targets.map(Int.init)
        }
        #expect(values == expected)
    }

    @Test("finetuning a BAM mix with --train routers changes only the routers and logs the expert load per layer")
    func routersOnly() throws {
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({ var m = MixOptions(method: .bam, experts: MixFixtures.llama, output: $0); m.seed = 3; return m }, in: dir)
        let a = try writeCorpus(dir, "a.txt", sentences: 200, seed: 3)
        let b = try writeCorpus(dir, "b.txt", sentences: 200, seed: 4)
        var o = TrainingOptions()
        o.steps = 4
        o.batchSize = 2
        o.sequenceLength = 16
        o.learningRate = 1e-2
        o.train = [.routers]
        o.losses = LossOptions(aux: .switch, auxAlpha: 0.01, zBeta: 0.001)
        o.outputDirectory = dir.file("finetuned")
        o.logURL = dir.file("log.jsonl")
        let report = try train(modelPath: ckpt.path.path,
                               data: [TrainingDomain(name: "a", files: [a], weight: 3), TrainingDomain(name: "b", files: [b])], options: o)
        let E = ckpt.config.moe!.experts
        for r in report.steps {
            #expect(r.expertLoad.count == ckpt.config.layers && r.expertLoad.allSatisfy { $0.count == E })
            #expect(r.expertLoad.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-9 })
            #expect(r.attentionLoad.count == ckpt.config.layers)
            #expect(r.switchLoss > 0 && r.zLoss > 0 && r.auxLoss == r.switchLoss)
        }
        #expect(Set(report.validation.last!.domains.keys) == ["a", "b"])
        let before = try tensors(ckpt.path), after = try tensors(dir.file("finetuned"))
        #expect(Set(before.keys) == Set(after.keys))
        for (name, values) in before {
            let isRouter = name.hasSuffix("self_attn.gate.weight") || name.hasSuffix("block_sparse_moe.gate.weight")
            #expect((after[name]! != values) == isRouter, "\(name): changed \(after[name]! != values)")
        }
    }

    @Test("data: NAME=FILE:WEIGHT parsing, held-out split, seeded windows, domain weights")
    func data() throws {
        let spec = try TrainingDomain.parse("math=data/m.txt:0.3", defaultName: "x")
        #expect(spec.name == "math" && spec.files == [URL(fileURLWithPath: "data/m.txt")] && spec.weight == 0.3)
        #expect(try TrainingDomain.parse("plain.txt", defaultName: "train").name == "train")
        #expect(try TrainingDomain.parse("dir/with=sign/f.txt", defaultName: "d").name == "d")
        let weight = bamError { _ = try TrainingDomain.parse("math=f.txt:-1", defaultName: "x") }
        #expect(weight?.kind == .usage && weight?.expected == "a positive number" && weight?.found == "-1.0")

        let d = try TrainingData(domains: [
            .init(name: "a", weight: 3, train: [Array(0..<100)], validation: [Array(100..<120)]),
            .init(name: "b", weight: 1, train: [Array(1000..<1005), Array(2000..<2100)], validation: [Array(3000..<3003)]),
        ])
        var g1 = SplitMix64(seed: 9), g2 = SplitMix64(seed: 9)
        let x = d.sampleBatch(B: 64, T: 8, rng: &g1), y = d.sampleBatch(B: 64, T: 8, rng: &g2)
        #expect(x.inputs == y.inputs && x.targets == y.targets)
        var fromA = 0
        for w in 0..<64 {
            let first = x.inputs[w * 8]
            if first < 100 { fromA += 1 }
            // Targets are the inputs shifted by one within the stream.
            for t in 0..<7 where x.targets[w * 8 + t] >= 0 { #expect(x.targets[w * 8 + t] == x.inputs[w * 8 + t + 1]) }
        }
        #expect(fromA > 32 && fromA < 64, "weight 3 : 1 gives domain a about 3/4 of the windows, found \(fromA) of 64")
        // Validation: consecutive windows, a short stream padded with unscored targets.
        let vb = d.validationBatches(domain: 1, B: 2, T: 8, maxWindows: 10)
        #expect(vb.count == 1 && vb[0].windows == 1)
        #expect(Array(vb[0].targets.prefix(3)) == [3001, 3002, -1])
        #expect(d.validationBatches(domain: 0, B: 2, T: 8, maxWindows: 10).reduce(0) { $0 + $1.windows } == 3)
    }
}
