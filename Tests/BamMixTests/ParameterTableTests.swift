@testable import BamFormats
import BamModels
import Foundation
import Testing

/// The parameter table and the variant types: one source of names, structure that matches it.
@Suite("Parameter table: names, GGUF names and the weight structure come from one place")
struct ParameterTableTests {
    /// Reference checkpoints covering every variant: dense with biases, tied embeddings, a Mixtral
    /// FFN mixture, BAM expert-KV and shared-KV, soft and top-k, parallel and sequential.
    static let checkpoints = [
        "models/llama_biases_f16", "models/qwen2_tied", "models/cohere_parallel", "models/mixtral_legacy",
        "bam/expert_kv_soft_parallel", "bam/shared_kv_topk_sequential", "bam/llama_bias_shared_kv_soft_sequential",
        "bam/mistral_renormalize_k2_sequential",
    ]

    @Test("every table entry's HF and GGUF names parse back to its key", arguments: checkpoints)
    func roundTrip(fixture: String) throws {
        let config = try Checkpoint.open(Fixtures.url(fixture).path).config
        let specs = config.parameterSpecs
        #expect(Set(specs.map(\.key)).count == specs.count, "\(fixture): a key appears twice")
        for spec in specs {
            #expect(ParameterKey(hfName: spec.name) == spec.key, "\(fixture): \(spec.name)")
            switch spec.ggufName {
            case let .tensor(name):
                #expect(ParameterKey.parse(ggufName: name, legacyExperts: false) == .parameter(spec.key), "\(fixture): \(name)")
            case let .stacked(name, e):
                guard case let .feedForward(l, e2?, p, k) = spec.key, e2 == e else {
                    Issue.record("\(fixture): \(spec.name) is stacked in GGUF but is not an FFN expert")
                    continue
                }
                #expect(ParameterKey.parse(ggufName: name, legacyExperts: false) == .stackedExperts(layer: l, p, k), "\(fixture): \(name)")
            }
        }
    }

    @Test("the table lists exactly the tensors transformers saved, and the weights walk back to it", arguments: checkpoints)
    func tableMatchesCheckpoint(fixture: String) throws {
        let ckpt = try Checkpoint.open(Fixtures.url(fixture).path)
        let specs = ckpt.config.parameterSpecs
        #expect(Set(specs.map(\.name)) == Set(ckpt.store.names.filter { !$0.hasSuffix("rotary_emb.inv_freq") }))
        let weights = try TransformerWeights.load(config: ckpt.config, store: ckpt.store)
        let named = weights.namedParameters(config: ckpt.config)
        #expect(named.map { $0.0 } == specs)
        for (spec, tensor) in named {
            #expect(tensor.shape == spec.shape, "\(fixture): \(spec.name)")
            #expect(try tensor.array == ckpt.store.tensor(spec.name).array, "\(fixture): \(spec.name) is not the tensor of that name")
        }
    }

    @Test("the weights' variant cases follow the config's")
    func variants() throws {
        let shared = try Checkpoint.open(Fixtures.url("bam/shared_kv_topk_sequential").path)
        let c = shared.config
        guard case let .mixture(moa) = c.attention, case let .mixture(moe) = c.feedForward else {
            Issue.record("a BAM config with mixtures on both sides expected")
            return
        }
        #expect(c.blockLayout == .sequential && moa.kind == .sharedKV && moa.routing == .topK)
        let w = try TransformerWeights.load(config: c, store: shared.store)
        for block in w.blocks {
            guard case .sequential = block.layout, case let .mixture(_, experts, .shared, topK) = block.attention,
                  case let .mixture(_, ffn, routing) = block.feedForward else {
                Issue.record("sequential block, shared-KV attention mixture and FFN mixture expected")
                continue
            }
            #expect(experts.count == moa.experts && topK == moa.topK && ffn.count == moe.experts && routing == moe.routing)
        }
        let dense = try Checkpoint.open(Fixtures.url("models/cohere_parallel").path)
        #expect(dense.config.blockLayout == .parallel && dense.config.attention == .single && dense.config.feedForward == .single)
        for block in try TransformerWeights.load(config: dense.config, store: dense.store).blocks {
            guard case .parallel = block.layout, case .single = block.attention, case .single = block.feedForward else {
                Issue.record("parallel block with one attention and one FFN expected")
                continue
            }
        }
    }

    @Test("HF <-> GGUF names, including stacked, legacy per-expert and BAM attention-expert names")
    func ggufNames() {
        #expect(GGUFTensorNames.gguf(fromHF: "model.layers.3.self_attn.q_proj.weight") == .single("blk.3.attn_q.weight"))
        #expect(GGUFTensorNames.gguf(fromHF: "model.layers.1.self_attn.experts.0.o_proj.bias") == .single("blk.1.attn_output.0.bias"))
        #expect(GGUFTensorNames.gguf(fromHF: "model.layers.2.self_attn.gate.weight") == .single("blk.2.attn_gate_inp.weight"))
        #expect(GGUFTensorNames.gguf(fromHF: "model.layers.0.post_attention_layernorm.weight") == .single("blk.0.ffn_norm.weight"))
        #expect(GGUFTensorNames.gguf(fromHF: "model.layers.0.block_sparse_moe.experts.2.w3.weight")
                == .expert(name: "blk.0.ffn_up_exps.weight", layer: 0, hf: "w3", expert: 2))
        #expect(GGUFTensorNames.gguf(fromHF: "model.layers.4.mlp.gate.weight") == .single("blk.4.ffn_gate_inp.weight"))
        #expect(GGUFTensorNames.gguf(fromHF: "lm_head.weight") == .single("output.weight"))
        // Not a bam-mix parameter: no GGUF name (and no leading zeros in layer numbers).
        #expect(GGUFTensorNames.gguf(fromHF: "model.layers.01.input_layernorm.weight") == nil)
        #expect(GGUFTensorNames.gguf(fromHF: "model.layers.0.block_sparse_moe.experts.0.w1.bias") == nil)
        #expect(GGUFTensorNames.gguf(fromHF: "model.layers.0.input_layernorm.bias") == nil)

        #expect(GGUFTensorNames.hf(fromGGUF: "token_embd.weight", experts: 0) == .single("model.embed_tokens.weight"))
        #expect(GGUFTensorNames.hf(fromGGUF: "blk.5.attn_k.bias", experts: 0) == .single("model.layers.5.self_attn.k_proj.bias"))
        #expect(GGUFTensorNames.hf(fromGGUF: "blk.0.attn_v.2.weight", experts: 3) == .single("model.layers.0.self_attn.experts.2.v_proj.weight"))
        #expect(GGUFTensorNames.hf(fromGGUF: "blk.1.ffn_down_exps.weight", experts: 2)
                == .stacked(["model.layers.1.block_sparse_moe.experts.0.w2.weight", "model.layers.1.block_sparse_moe.experts.1.w2.weight"]))
        // Older per-expert Mixtral tensors only when the file has FFN experts.
        #expect(GGUFTensorNames.hf(fromGGUF: "blk.0.ffn_gate.1.weight", experts: 2) == .single("model.layers.0.block_sparse_moe.experts.1.w1.weight"))
        #expect(GGUFTensorNames.hf(fromGGUF: "blk.0.ffn_gate.1.weight", experts: 0) == nil)
        #expect(GGUFTensorNames.hf(fromGGUF: "rope_freqs.weight", experts: 0) == nil)
        #expect(GGUFTensorNames.hf(fromGGUF: "blk.-1.attn_q.weight", experts: 0) == nil)
    }
}
