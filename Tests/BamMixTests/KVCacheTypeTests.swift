@testable import BamModels
import BamTensors
import Foundation
import Testing

/// `--kv-cache f16`: keys and values stored as IEEE half, the attention computed in float32.
@Suite("f16 KV cache")
struct KVCacheTypeTests {
    /// Models with `logits_kv_f16.npy`: transformers' logits with a cache that rounds keys and
    /// values to float16 (tools/make_kv_cache_fixtures.py).
    static let models = ["llama_gqa_classic_rope", "llama_biases_f16", "mixtral_legacy"]

    static func halfCacheLogits(_ name: String) throws -> [Float] {
        try NumPy.readFloat(Fixtures.url("models/\(name)/logits_kv_f16.npy")).values
    }

    @Test("prefill logits within 1e-4 of transformers with a float16 cache, and not those of the float32 cache", arguments: models)
    func prefill(name: String) throws {
        let ref = try ReferenceModel(name)
        let want = try Self.halfCacheLogits(name)
        let model = try Transformer.load(ref.checkpoint, kvCache: .f16)
        let cache = model.makeCache(capacity: ref.ids.count)
        #expect(cache.type == .f16)
        let got = try model.forward(tokens: ref.ids, cache: cache).array
        let (maxDiff, firstBad) = compare(got, want, tolerance: 1e-4)
        #expect(firstBad == nil, "\(name): max |diff| \(maxDiff)")
        // The f16 rounding moves the logits by more than the tolerance, so the check above
        // tells the two cache types apart.
        #expect(compare(got, ref.logits, tolerance: 1e-4).firstBad != nil, "\(name): the f16 cache gave the float32 cache's logits")
    }

    @Test("token-by-token decode with an f16 cache, grown on the way, equals transformers with a float16 cache", arguments: models)
    func decode(name: String) throws {
        let ref = try ReferenceModel(name)
        let want = try Self.halfCacheLogits(name)
        let model = try Transformer.load(ref.checkpoint, kvCache: .f16)
        let cache = model.makeCache(capacity: 2)
        var rows = try model.forward(tokens: Array(ref.ids.prefix(3)), cache: cache).array
        for t in 3..<ref.ids.count { rows += try model.forward(tokens: [ref.ids[t]], cache: cache).array }
        #expect(cache.length == ref.ids.count && cache.capacity >= ref.ids.count)
        let (maxDiff, firstBad) = compare(rows, want, tolerance: 1e-4)
        #expect(firstBad == nil, "\(name): max |diff| \(maxDiff)")
    }

    @Test("BAM with an f16 cache (one key/value set per attention expert, or one shared): decode equals prefill",
          arguments: ["expert_kv_soft_parallel", "shared_kv_topk_sequential"])
    func bamDecode(name: String) throws {
        let ref = try ReferenceModel(name)
        let model = try Transformer.load(ref.checkpoint, kvCache: .f16)
        let prefill = try model.forward(tokens: ref.ids, cache: model.makeCache(capacity: ref.ids.count)).array
        let cache = model.makeCache(capacity: 2)
        var rows = try model.forward(tokens: Array(ref.ids.prefix(2)), cache: cache).array
        for t in 2..<ref.ids.count { rows += try model.forward(tokens: [ref.ids[t]], cache: cache).array }
        let (maxDiff, firstBad) = compare(rows, prefill, tolerance: 1e-4)
        #expect(firstBad == nil, "\(name): max |diff| \(maxDiff)")
        // Against the float32 reference the f16 cache stays close (f16 keeps 11 bits).
        #expect(compare(prefill, ref.logits, tolerance: 1e-2).firstBad == nil)
    }

    @Test("an f16 cache takes half the bytes of a float32 one, and inspect's per-token count says so")
    func bytes() throws {
        let ref = try ReferenceModel("expert_kv_soft_parallel")
        let config = ref.checkpoint.config
        var counts: [KVCacheType: Int] = [:]
        for type in KVCacheType.allCases {
            let model = try Transformer.load(ref.checkpoint, kvCache: type)
            let cache = model.makeCache(capacity: 64)
            #expect(cache.byteCount == 0, "nothing is allocated before the first forward call")
            _ = try model.forward(tokens: Array(ref.ids.prefix(3)), cache: cache)
            #expect(cache.capacity == 64)
            counts[type] = cache.byteCount
        }
        #expect(counts[.f16]! * 2 == counts[.f32]!)
        #expect(counts[.f32]! == 64 * KVCache.bytesPerPosition(config: config))
        #expect(ModelStatistics(config: config, context: 64, kvCache: .f16).kvCacheBytesPerToken * 2
                == ModelStatistics(config: config, context: 64).kvCacheBytesPerToken)
    }

    @Test("a capacity asked for up front that no machine holds (generate with --max-tokens 2^40) allocates only what is used")
    func absurdCapacity() throws {
        let ref = try ReferenceModel("llama_gqa_classic_rope")
        let model = try Transformer.load(ref.checkpoint, kvCache: .f16)
        var seen = 0
        let out = try model.generate(prompt: Array(ref.ids.prefix(4)), options: SamplingOptions(temperature: 0, maxTokens: 1 << 40)) { _ in
            seen += 1
            return seen < 3
        }
        #expect(out.count == 3)
        let cache = model.makeCache(capacity: Int.max)
        _ = try model.forward(tokens: Array(ref.ids.prefix(4)), cache: cache)
        #expect(cache.capacity == 4 && cache.length == 4)
    }

    @Test("a cache the machine cannot hold is refused before anything is allocated, with the numbers and what to do")
    func refused() throws {
        let config = try ReferenceModel("llama_gqa_classic_rope").checkpoint.config
        for (type, positions) in [(KVCacheType.f32, 1 << 50), (.f16, Int.max)] {
            let cache = KVCache(config: config, capacity: 8, type: type)
            do {
                try cache.reserve(additional: positions)
                Issue.record("\(type): reserving \(positions) positions did not throw")
            } catch let e as BamError {
                #expect(e.message.contains("the KV cache of this model needs") && e.message.contains("refused before allocating"),
                        "\(e.message)")
                #expect(e.message.contains("--kv-cache f16") == (type == .f32), "\(e.message)")
            }
            #expect(cache.capacity == 0 && cache.byteCount == 0)
        }
    }

    /// (T, past, NH, NKV, HS): decode rows within one chunk of values and over several; prefill
    /// blocks; GQA groups of 2, of 4 over one key/value head (cut into slices of query heads when
    /// there are more workers), and of 18 (more query rows than the fused kernel takes at once);
    /// head sizes of 8 (the kernels' tails) and 64 and 128 (whole vectors).
    @Test("attention over an f16 cache equals the naive attention over the rounded keys and values",
          arguments: [(5, 4, 4, 2, 8), (1, 37, 4, 2, 8), (1, 150, 4, 2, 64), (1, 127, 4, 1, 8), (1, 70, 18, 1, 8),
                      (1, 9, 36, 2, 128), (300, 21, 4, 2, 8), (257, 3, 4, 1, 64)])
    func kernel(sizes: (Int, Int, Int, Int, Int)) {
        var r = TestRandom(seed: 16)
        let (T, past, NH, NKV, HS) = sizes
        let S = T + past + 3
        let q = r.tensor([T, NH, HS]), k = r.tensor([NKV, S, HS]), v = r.tensor([NKV, S, HS])
        let halfK = UnsafeMutableRawPointer.allocate(byteCount: k.count * 2, alignment: 64)
        let halfV = UnsafeMutableRawPointer.allocate(byteCount: v.count * 2, alignment: 64)
        defer { halfK.deallocate(); halfV.deallocate() }
        for i in 0..<k.count {
            halfK.storeBytes(of: Float16(k.data[i]), toByteOffset: 2 * i, as: Float16.self)
            halfV.storeBytes(of: Float16(v.data[i]), toByteOffset: 2 * i, as: Float16.self)
            // The naive twin reads the values the cache holds.
            k.data[i] = Float(Float16(k.data[i])); v.data[i] = Float(Float16(v.data[i]))
        }
        let shape = AttentionShape(T: T, past: past, NH: NH, NKV: NKV, HS: HS, S: S)
        let o1 = Tensor(shape: [T, NH, HS]), o2 = Tensor(shape: [T, NH, HS])
        let scores = Tensor(shape: [shape.scoresCount]), scratch = Tensor(shape: [KeyValueCache.f16ScratchCount(shape)])
        attentionForward(o1.data, q.data, cache: .f16(keys: halfK, values: halfV, scratch: scratch.data), scores: scores.data, shape: shape)
        attentionForwardNaive(o2.data, q.data, k.data, v.data, shape: shape)
        expectTwins(o1.data, o2.data, count: o1.count, tolerance: 1e-5, "f16-cache attention T \(T) past \(past)")
    }
}
