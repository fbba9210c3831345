import ArgumentParser
import BamEvaluation
import BamModels
import BamTokenizers
import Foundation

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Architecture, block type, dimensions, experts, dtypes, parameter counts and FLOPs of a model.")

    @Argument(help: "Model PATH (HF directory, .gguf file, or PyTorch .bin directory).")
    var path: String

    @Option(help: "Context length for FLOPs per token and KV-cache size.")
    var ctx: Int = 512

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    @OptionGroup var runOptions: RunOptions

    struct Report: Encodable {
        var path: String
        var container: String
        var architecture: String
        var modelType: String
        var baseModelType: String
        var block: String
        var vocabSize: Int
        var hiddenSize: Int
        var intermediateSize: Int
        var layers: Int
        var heads: Int
        var kvHeads: Int
        var headDim: Int
        var norm: String
        var rope: String
        var tiedEmbeddings: Bool
        var ffnExperts: Int?
        var ffnTopK: Int?
        var ffnRenormalize: Bool?
        var attentionExperts: Int?
        var attentionExpertKind: String?
        var attentionRouting: String?
        var attentionTopK: Int?
        var dtypes: [String: Int]
        /// `--weights` and the bytes the weights keep resident when run that way.
        var weights: String
        var residentWeightBytes: Int
        var statistics: ModelStatistics
        /// `--kv-cache`, the type the KV-cache sizes are counted in.
        var kvCache: String
        var kvCacheBytesAtContext: Int
        var tokenizer: String

        enum CodingKeys: String, CodingKey {
            case path, container, architecture, modelType = "model_type", baseModelType = "base_model_type", block,
                 vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size", layers,
                 heads, kvHeads = "kv_heads", headDim = "head_dim", norm, rope, tiedEmbeddings = "tied_embeddings",
                 ffnExperts = "ffn_experts", ffnTopK = "ffn_top_k", ffnRenormalize = "ffn_renormalize",
                 attentionExperts = "attention_experts", attentionExpertKind = "attention_expert_kind",
                 attentionRouting = "attention_routing", attentionTopK = "attention_top_k", dtypes, weights,
                 residentWeightBytes = "resident_weight_bytes", statistics, kvCache = "kv_cache",
                 kvCacheBytesAtContext = "kv_cache_bytes_at_context", tokenizer
        }
    }

    func run() throws {
        let ckpt = try Checkpoint.open(path)
        let c = ckpt.config
        var dtypes: [String: Int] = [:]
        for n in ckpt.store.names { if let i = ckpt.store.info(n) { dtypes[i.dtype.rawValue, default: 0] += 1 } }
        let stats = ModelStatistics(config: c, context: ctx, kvCache: runOptions.kvCache)
        let report = Report(
            path: ckpt.path.path, container: ckpt.container.rawValue, architecture: c.architectureName,
            modelType: c.family.rawValue, baseModelType: c.baseFamily.rawValue, block: c.blockDescription,
            vocabSize: c.vocabSize, hiddenSize: c.hidden, intermediateSize: c.intermediate, layers: c.layers,
            heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, norm: c.norm == .rms ? "RMSNorm" : "LayerNorm",
            rope: "\(c.ropeStyle.rawValue), theta \(c.ropeTheta)\(c.ropeScaling == .none ? "" : ", scaled")",
            tiedEmbeddings: c.tieEmbeddings, ffnExperts: c.moe?.experts, ffnTopK: c.moe?.topK,
            ffnRenormalize: c.moe?.renormalize, attentionExperts: c.moa?.experts,
            attentionExpertKind: c.moa?.kind.rawValue, attentionRouting: c.moa?.routing.rawValue,
            attentionTopK: c.moa.map { $0.routing == .soft ? $0.experts : $0.topK }, dtypes: dtypes,
            weights: runOptions.weights.description,
            residentWeightBytes: ModelMemory.inferenceBytes(config: c, store: ckpt.store, loading: runOptions.weights),
            statistics: stats, kvCache: runOptions.kvCache.rawValue, kvCacheBytesAtContext: stats.kvCacheBytesPerToken * ctx,
            tokenizer: tokenizerDescription(ckpt))
        if json {
            try emitJSON(report)
            return
        }
        var lines: [(String, String)] = [
            ("path", "\(report.path) (\(report.container))"),
            ("architecture", "\(report.architecture) (model_type \(report.modelType)\(c.family == .bam ? ", mixed from \(report.baseModelType)" : ""))"),
            ("block", report.block),
            ("dimensions", "vocab \(c.vocabSize), hidden \(c.hidden), FFN \(c.intermediate), \(c.layers) layers, \(c.heads) heads (\(c.kvHeads) KV), head dim \(c.headDim)"),
            ("norm / rope", "\(report.norm) eps \(c.normEps); \(report.rope)"),
            ("embeddings", c.tieEmbeddings ? "tied to lm_head" : "separate lm_head"),
        ]
        if let moe = c.moe {
            lines.append(("FFN experts", "\(moe.experts), \(moe.routing.summary(experts: moe.experts))"))
        }
        if let moa = c.moa {
            lines.append(("attention experts", "\(moa.experts), \(moa.kind == .expertKV ? "expert-KV" : "shared-KV"), \(moa.routing == .soft ? "soft routing" : "top-\(moa.topK) routing")"))
        }
        lines += [
            ("dtypes", dtypes.keys.sorted().map { "\($0) x\(dtypes[$0]!)" }.joined(separator: ", ")),
            ("resident weights", "\(formatBytes(report.residentWeightBytes)) with --weights \(report.weights) (matrices in that type, norms/biases/routers f32)"),
            ("parameters", "\(formatCount(stats.totalParameters)) total, \(formatCount(stats.activeParameters)) active per token"),
            ("FLOPs/token", String(format: "%.3g at context %d", stats.flopsPerToken, ctx)),
            ("KV cache", "\(formatBytes(stats.kvCacheBytesPerToken)) per token, \(formatBytes(report.kvCacheBytesAtContext)) at context \(ctx) with --kv-cache \(report.kvCache)"),
            ("tokenizer", report.tokenizer),
        ]
        let width = lines.map(\.0.count).max() ?? 0
        for (k, v) in lines { print(k.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + v) }
    }
}

func tokenizerDescription(_ ckpt: Checkpoint) -> String {
    if case .none = ckpt.tokenizerSource { return "none (no tokenizer.json, no GGUF vocabulary)" }
    do {
        let t = try loadTokenizer(for: ckpt)
        return "\(t.kindDescription), \(t.vocabSize) tokens\(t.addsBOS ? ", adds BOS \(t.bosTokenId.map(String.init) ?? "?")" : "")"
    } catch {
        return "unreadable: \(error)"
    }
}
