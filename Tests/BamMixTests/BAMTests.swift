import BamMixing
import BamModels
import Foundation
import Testing

@Suite("BAM: mixing, format and the exact special cases")
struct BAMTests {
    func logits(_ ckpt: Checkpoint, _ ids: [Int]) throws -> [Float] {
        let m = try Transformer.load(ckpt)
        return try m.forward(tokens: ids, cache: m.makeCache(capacity: ids.count)).array
    }

    let ids = [5, 17, 99, 3, 42, 42, 7, 120, 64, 8, 31, 2]

    @Test("BAM expert-KV of Cohere (parallel) experts: our logits equal the PyTorch reference's")
    func cohereExpertKV() throws {
        let dir = try TemporaryDirectory()
        // The fixture's mix is unscaled (tools/make_mix_fixtures.py); MethodsTests checks the scaling.
        let ckpt = try MixFixtures.mix({
            var o = MixOptions(method: .bam, experts: MixFixtures.cohere, output: $0)
            o.seed = 10; o.router = .random; o.expertScaling = .none; return o
        }, in: dir)
        #expect(ckpt.config.moa == MoAConfig(experts: 3, kind: .expertKV, routing: .soft, topK: 3))
        #expect(ckpt.config.moe?.topK == 1 && ckpt.config.moe?.renormalize == false)
        #expect(ckpt.config.parallelBlock)
        try MixFixtures.expectMatchesReference(ckpt, fixture: "bam_cohere_expert_kv")
    }

    @Test("BAM shared-KV with top-k attention routing (sequential Llama): our logits equal the reference's")
    func llamaSharedKVTopK() throws {
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({
            var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: $0)
            o.attention = .sharedKV; o.attentionRouting = .topK; o.attentionTopK = 2; o.seed = 11; o.router = .random; o.expertScaling = .none
            return o
        }, in: dir)
        #expect(ckpt.config.moa == MoAConfig(experts: 3, kind: .sharedKV, routing: .topK, topK: 2))
        try MixFixtures.expectMatchesReference(ckpt, fixture: "bam_llama_shared_kv_topk")
        // The shared K and V are the average of the experts'.
        let experts = try MixFixtures.llama.map { try Checkpoint.open($0) }
        let k = try ckpt.store.tensor(ParameterNames.attention(0, "k"))
        let sources = try experts.map { try $0.store.tensor(ParameterNames.attention(0, "k")) }
        for i in stride(from: 0, to: k.count, by: 37) {
            #expect(k.data[i] == Float(sources.reduce(0.0) { $0 + Double($1.data[i]) / 3 }))
        }
    }

    @Test("N copies of one model, mixed with BAM (soft attention, renormalised FFN), equal that model",
          arguments: [("llama_seed", RouterInit.random), ("llama_seed", .zero), ("cohere_seed", .random), ("cohere_seed", .zero)])
    func copiesEqualDense(seedName: String, router: RouterInit) throws {
        let path = MixFixtures.expert(seedName)
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({
            var o = MixOptions(method: .bam, experts: [path, path, path], output: $0)
            o.router = router; o.renormalize = true; o.seed = 3; return o
        }, in: dir)
        let dense = try logits(Checkpoint.open(path), ids)
        let mixed = try logits(ckpt, ids)
        let (maxDiff, firstBad) = compare(mixed, dense, tolerance: 2e-5)
        #expect(firstBad == nil, "\(seedName) \(router): max |diff| \(maxDiff)")
    }

    @Test("N copies of one model, mixed with BAM's own routing (FFN top-1, not renormalised) and mix's defaults, equal that model",
          arguments: ["llama_seed", "cohere_seed"])
    func copiesEqualDenseWithDefaults(seedName: String) throws {
        // The default router (auto) starts these gates from zero routers: every token takes expert 0
        // with gate 1/3, which the default expert scaling (x3 in w2) gives back. With random routers
        // the same copies would leave gates of about 0.4 scaled by 1/0.4 on average only.
        let path = MixFixtures.expert(seedName)
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({ MixOptions(method: .bam, experts: [path, path, path], output: $0) }, in: dir)
        #expect(ckpt.config.moe?.topK == 1 && ckpt.config.moe?.renormalize == false)
        let router = try ckpt.store.tensor(ParameterNames.moeRouter(0))
        #expect(router.array.allSatisfy { $0 == 0 })
        let provenance = try readJSONFile(ckpt.path.appendingPathComponent("bam_mix_provenance.json"))
        #expect(provenance["options"]?["router"]?.stringValue == "zero")
        #expect(provenance["options"]?["router_requested"]?.stringValue == "auto")
        let dense = try logits(Checkpoint.open(path), ids)
        let mixed = try logits(ckpt, ids)
        let (maxDiff, firstBad) = compare(mixed, dense, tolerance: 2e-5)
        #expect(firstBad == nil, "\(seedName): max |diff| \(maxDiff)")
    }

    @Test("BAM with a single averaged attention and renormalised top-k FFN routing equals the BTX (Mixtral) forward")
    func bamEqualsBTX() throws {
        let dir = try TemporaryDirectory()
        let btx = try MixFixtures.mix({ var o = MixOptions(method: .btx, experts: MixFixtures.llama, output: $0); o.seed = 7; return o }, in: dir)
        // Rebuild it as a BAM model whose three attention experts are all the averaged attention.
        var json = btx.config.raw
        json["model_type"] = "bam"
        json["architectures"] = .array(["BamForCausalLM"])
        json["base_model_type"] = "llama"
        json["router_renormalize"] = true
        json["attention_experts"] = "expert_kv"
        json["attention_routing"] = "soft"
        json["parallel_block"] = false
        let config = try ModelConfig(json: json)
        let store = MemoryStore()
        var r = TestRandom(seed: 4)
        for spec in config.parameterSpecs {
            if spec.role == .attentionRouter {
                store.set(spec.name, r.tensor(spec.shape, scale: 0.5))
            } else if let e = spec.expert, spec.role == .attention {
                _ = e
                store.set(spec.name, try btx.store.tensor(spec.name.replacingOccurrences(of: ".experts.\(e).", with: ".")))
            } else {
                store.set(spec.name, try btx.store.tensor(spec.name))
            }
        }
        let bam = Transformer(config: config, weights: try TransformerWeights.load(config: config, store: store))
        let a = try bam.forward(tokens: ids, cache: bam.makeCache(capacity: ids.count)).array
        let b = try logits(btx, ids)
        let (maxDiff, firstBad) = compare(a, b, tolerance: 2e-5)
        #expect(firstBad == nil, "max |diff| \(maxDiff)")
    }

    @Test("btx and bam mixes of the same experts differ only where the methods say")
    func tensorLists() throws {
        let dir = try TemporaryDirectory()
        let btx = try MixFixtures.mix({ MixOptions(method: .btx, experts: MixFixtures.llama, output: $0) }, in: dir)
        let dir2 = try TemporaryDirectory()
        // Unscaled, so the FFN experts are byte copies in both (MethodsTests checks the scaling).
        let bam = try MixFixtures.mix({ var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: $0); o.expertScaling = .none; return o }, in: dir2)
        let a = Set(btx.store.names), b = Set(bam.store.names)
        let onlyBTX = a.subtracting(b), onlyBAM = b.subtracting(a)
        // BTX keeps one averaged attention; BAM replaces it with per-expert copies and a router.
        #expect(onlyBTX.allSatisfy { $0.contains(".self_attn.") && $0.hasSuffix("_proj.weight") && !$0.contains(".experts.") })
        #expect(onlyBTX.count == 2 * 4)
        #expect(onlyBAM.allSatisfy { $0.contains(".self_attn.experts.") || $0.hasSuffix(".self_attn.gate.weight") })
        #expect(onlyBAM.count == 2 * (3 * 4 + 1))
        for name in a.intersection(b).sorted() where !name.hasSuffix("block_sparse_moe.gate.weight") {
            let x = Array(try btx.store.bytes(name)), y = Array(try bam.store.bytes(name))
            #expect(x == y, "\(name) is the same in both")
        }
        // BAM's attention experts are the experts' own attention, byte for byte.
        let e2 = try Checkpoint.open(MixFixtures.llama[2])
        let copied = Array(try bam.store.bytes("model.layers.1.self_attn.experts.2.v_proj.weight"))
        let original = Array(try e2.store.bytes("model.layers.1.self_attn.v_proj.weight"))
        #expect(copied == original)
    }

    @Test("--block parallel converts sequential experts (and says the function changes)")
    func parallelConversion() throws {
        let dir = try TemporaryDirectory()
        var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: dir.file("p"))
        o.block = .parallel
        var log: [String] = []
        _ = try Mixer.run(o) { log.append($0) }
        #expect(log.contains { $0.contains("WARNING") && $0.contains("different function") })
        let ckpt = try Checkpoint.open(dir.file("p").path)
        #expect(ckpt.config.parallelBlock)
        #expect(!ckpt.store.contains(ParameterNames.postAttentionNorm(0)))
        let out = try logits(ckpt, ids)
        let finite = out.allSatisfy { $0.isFinite }
        #expect(finite)
    }

    @Test("inspect statistics: expert-KV caches E times the dense KV, shared-KV the same as dense")
    func kvCacheSizes() throws {
        let dir = try TemporaryDirectory()
        let dense = try Checkpoint.open(MixFixtures.llama[0]).config
        let ekv = try MixFixtures.mix({ MixOptions(method: .bam, experts: MixFixtures.llama, output: $0) }, in: dir).config
        let dir2 = try TemporaryDirectory()
        let skv = try MixFixtures.mix({ var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: $0); o.attention = .sharedKV; return o }, in: dir2).config
        let d = ModelStatistics(config: dense, context: 64), e = ModelStatistics(config: ekv, context: 64), s = ModelStatistics(config: skv, context: 64)
        #expect(e.kvCacheBytesPerToken == 3 * d.kvCacheBytesPerToken)
        #expect(s.kvCacheBytesPerToken == d.kvCacheBytesPerToken)
        // Soft MoA: every attention parameter is active; FFN: 1 of 3 experts.
        #expect(e.activeParameters < e.totalParameters)
        #expect(e.flopsPerToken > s.flopsPerToken && s.flopsPerToken > d.flopsPerToken)
    }
}
