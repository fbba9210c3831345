@testable import BamModels
import Foundation
import Testing

/// Tiny transformers models with the logits transformers computed for them (tools/make_model_fixtures.py).
let referenceModels = [
    "llama_gqa_classic_rope", "llama_tied_bf16", "llama_head_dim_sharded", "llama_biases_f16", "llama3_rope_scaling",
    "mistral", "qwen2_tied", "cohere_parallel", "mixtral_legacy", "mixtral_fused",
]

/// Tiny BAM models with the logits of the PyTorch reference (tools/make_bam_fixtures.py).
let bamReferenceModels = [
    "expert_kv_soft_parallel", "shared_kv_soft_parallel", "expert_kv_topk_sequential", "shared_kv_topk_sequential",
    "qwen2_expert_kv_soft_parallel", "llama_bias_shared_kv_soft_sequential", "cohere_expert_kv_soft_parallel",
    "mistral_renormalize_k2_sequential",
]

struct ReferenceModel {
    let checkpoint: Checkpoint
    let ids: [Int]
    let logits: [Float]   // (T, V)

    init(_ name: String) throws {
        let dir = bamReferenceModels.contains(name) ? Fixtures.url("bam/\(name)") : Fixtures.url("models/\(name)")
        checkpoint = try Checkpoint.open(dir.path)
        ids = try NumPy.readInts(dir.appendingPathComponent("ids.npy")).values
        logits = try NumPy.readFloat(dir.appendingPathComponent("logits.npy")).values
    }
}

@Suite("Forward pass equals transformers")
struct ForwardTests {
    @Test("prefill logits within 1e-4 of transformers (and of the BAM reference)", arguments: referenceModels + bamReferenceModels)
    func prefill(name: String) throws {
        let ref = try ReferenceModel(name)
        let model = try Transformer.load(ref.checkpoint)
        let out = try model.forward(tokens: ref.ids, cache: model.makeCache(capacity: ref.ids.count))
        #expect(out.shape == [ref.ids.count, ref.checkpoint.config.vocabSize])
        let (maxDiff, firstBad) = compare(out.array, ref.logits, tolerance: 1e-4)
        #expect(firstBad == nil, "\(name): max |diff| \(maxDiff), first at \(firstBad.map { "row \($0 / out.shape[1]) col \($0 % out.shape[1])" } ?? "-")")
    }

    @Test("token-by-token decode with the KV cache equals prefill", arguments: referenceModels + bamReferenceModels)
    func decode(name: String) throws {
        let ref = try ReferenceModel(name)
        let model = try Transformer.load(ref.checkpoint)
        let V = ref.checkpoint.config.vocabSize
        // Start with a short prefill so the cache grows past its initial capacity on the way.
        let cache = model.makeCache(capacity: 2)
        var rows = try model.forward(tokens: Array(ref.ids.prefix(3)), cache: cache).array
        for t in 3..<ref.ids.count {
            rows += try model.forward(tokens: [ref.ids[t]], cache: cache).array
        }
        #expect(cache.length == ref.ids.count)
        let (maxDiff, firstBad) = compare(rows, ref.logits, tolerance: 1e-4)
        #expect(firstBad == nil, "\(name): max |diff| \(maxDiff) at row \((firstBad ?? 0) / V)")
    }

    /// The last layer runs its queries, attention and FFN at the output rows only (its keys and
    /// values for every token): those rows must still equal transformers', and the cache must hold
    /// every token's keys and values, which the next token's logits show.
    @Test("only the requested output rows are computed, they equal transformers', and the cache is whole",
          arguments: referenceModels + bamReferenceModels)
    func outputRows(name: String) throws {
        let ref = try ReferenceModel(name)
        let model = try Transformer.load(ref.checkpoint)
        let V = ref.checkpoint.config.vocabSize, T = ref.ids.count
        for rows in [0..<1, 3..<(T - 2), (T - 1)..<T] {
            let part = try model.forward(tokens: ref.ids, cache: model.makeCache(capacity: T), outputRows: rows)
            #expect(part.shape == [rows.count, V])
            let (maxDiff, firstBad) = compare(part.array, Array(ref.logits[(rows.lowerBound * V)..<(rows.upperBound * V)]),
                                              tolerance: 1e-4)
            #expect(firstBad == nil, "\(name) rows \(rows): max |diff| \(maxDiff)")
        }
        // Prefill all but the last token keeping only its last row (as generation does), then the
        // last token: its logits read the pruned layer's keys and values of every earlier token.
        let cache = model.makeCache(capacity: T)
        _ = try model.forward(tokens: Array(ref.ids.prefix(T - 1)), cache: cache, outputRows: (T - 2)..<(T - 1))
        let next = try model.forward(tokens: [ref.ids[T - 1]], cache: cache)
        let (maxDiff, firstBad) = compare(next.array, Array(ref.logits[((T - 1) * V)...]), tolerance: 1e-4)
        #expect(firstBad == nil, "\(name) next token after a pruned prefill: max |diff| \(maxDiff)")
    }

    @Test("parallel-block branches give the same logits run concurrently or one after the other")
    func branchConcurrency() throws {
        let ref = try ReferenceModel("cohere_parallel")
        let model = try Transformer.load(ref.checkpoint, options: ExecutionOptions(concurrentBranches: true, fanOutExperts: true))
        let a = try model.forward(tokens: ref.ids, cache: model.makeCache(capacity: 20)).array
        model.options = ExecutionOptions(concurrentBranches: false, fanOutExperts: false)
        let b = try model.forward(tokens: ref.ids, cache: model.makeCache(capacity: 20)).array
        #expect(a == b)
    }

    @Test("a decode step gives the same logits with concurrent or sequential branches", arguments: ["cohere_parallel", "expert_kv_soft_parallel"])
    func decodeBranchConcurrency(name: String) throws {
        let ref = try ReferenceModel(name)
        let model = try Transformer.load(ref.checkpoint)
        var last: [[Float]] = []
        for concurrent in [true, false] {
            model.options = ExecutionOptions(concurrentBranches: concurrent)
            let cache = model.makeCache(capacity: ref.ids.count)
            _ = try model.forward(tokens: Array(ref.ids.dropLast()), cache: cache)
            last.append(try model.forward(tokens: [ref.ids.last!], cache: cache).array)
        }
        let (maxDiff, firstBad) = compare(last[0], last[1], tolerance: 1e-5)
        #expect(firstBad == nil, "max |diff| \(maxDiff)")
        // And both are the reference's last row.
        let V = ref.checkpoint.config.vocabSize, n = ref.ids.count
        #expect(compare(last[0], Array(ref.logits[((n - 1) * V)..<(n * V)]), tolerance: 1e-4).firstBad == nil)
    }

    @Test("a decode step's units run side by side only when they share out evenly over the workers")
    func evenShares() {
        // BAM's FFN expert and four attention experts over a short cache: 3.31 and 3.45 against 3.38 each.
        #expect(Transformer.sharesEvenly([2.16, 1.15, 1.15, 1.15, 1.15], workers: 2))
        // The same after 1024 positions: five equal units, three on one worker.
        #expect(!Transformer.sharesEvenly([2.16, 2.13, 2.13, 2.13, 2.13], workers: 2))
        // A dense parallel block's attention beside its twice as large FFN.
        #expect(!Transformer.sharesEvenly([1.0, 2.0], workers: 2))
        #expect(Transformer.sharesEvenly([1.0, 2.0], workers: 1))
        #expect(Transformer.sharesEvenly([5.0], workers: 2))
    }

    @Test("experts fanned out over workers give the logits of experts run one after the other",
          arguments: ["expert_kv_soft_parallel", "shared_kv_topk_sequential", "mixtral_legacy"])
    func expertFanOut(name: String) throws {
        let ref = try ReferenceModel(name)
        let model = try Transformer.load(ref.checkpoint, options: ExecutionOptions(concurrentBranches: true, fanOutExperts: true))
        let a = try model.forward(tokens: ref.ids, cache: model.makeCache(capacity: 20)).array
        model.options = ExecutionOptions(concurrentBranches: false, fanOutExperts: false)
        let b = try model.forward(tokens: ref.ids, cache: model.makeCache(capacity: 20)).array
        // The same products, summed in a different order.
        let (maxDiff, firstBad) = compare(a, b, tolerance: 1e-5)
        #expect(firstBad == nil, "max |diff| \(maxDiff)")
    }

    @Test("token ids outside the vocabulary are refused")
    func badIds() throws {
        let ref = try ReferenceModel("llama_gqa_classic_rope")
        let model = try Transformer.load(ref.checkpoint)
        #expect(throws: BamError.self) { try model.forward(tokens: [1, 128], cache: model.makeCache(capacity: 2)) }
        #expect(throws: BamError.self) { try model.forward(tokens: [-1], cache: model.makeCache(capacity: 2)) }
    }

    @Test("Mistral refuses sequences longer than its sliding window")
    func slidingWindow() throws {
        let ref = try ReferenceModel("mistral")
        let model = try Transformer.load(ref.checkpoint)
        let error = #expect(throws: BamError.self) {
            try model.forward(tokens: Array(repeating: 1, count: 65), cache: model.makeCache(capacity: 65))
        }
        #expect(error?.kind == .unsupported && error?.location == .key("sliding_window"))
        #expect(error?.expected == "a sequence of at most 64 tokens" && error?.found == "65 tokens")
    }
}

@Suite("Generation with the KV cache")
struct GenerationTests {
    @Test("greedy generation equals re-running the whole sequence and taking the argmax", arguments: ["llama_gqa_classic_rope", "mixtral_legacy", "expert_kv_soft_parallel"])
    func greedy(name: String) throws {
        let ref = try ReferenceModel(name)
        let model = try Transformer.load(ref.checkpoint)
        let prompt = Array(ref.ids.prefix(5))
        let out = try model.generate(prompt: prompt, options: SamplingOptions(temperature: 0, maxTokens: 6))
        #expect(out.count == 6)
        var seq = prompt
        for t in out {
            let logits = try model.forward(tokens: seq, cache: model.makeCache(capacity: seq.count), outputRows: (seq.count - 1)..<seq.count)
            var best = 0
            for i in 0..<logits.count where logits.data[i] > logits.data[best] { best = i }
            #expect(best == t)
            seq.append(t)
        }
    }

    @Test("sampling is reproducible from the seed and respects top-k")
    func sampling() throws {
        let ref = try ReferenceModel("llama_gqa_classic_rope")
        let model = try Transformer.load(ref.checkpoint)
        let o = SamplingOptions(temperature: 1.5, topK: 3, seed: 11, maxTokens: 12)
        let a = try model.generate(prompt: [1, 2, 3], options: o)
        let b = try model.generate(prompt: [1, 2, 3], options: o)
        #expect(a == b)
        // With top-1 sampling is greedy whatever the temperature.
        let g = try model.generate(prompt: [1, 2, 3], options: SamplingOptions(temperature: 0, maxTokens: 5))
        let k1 = try model.generate(prompt: [1, 2, 3], options: SamplingOptions(temperature: 2, topK: 1, seed: 5, maxTokens: 5))
        #expect(g == k1)
    }
}
