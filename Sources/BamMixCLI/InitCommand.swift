import ArgumentParser
import BamEvaluation
import BamModels
import BamTokenizers
import Foundation

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a freshly initialised dense model (a seed to train from scratch), as an HF directory.",
        discussion: """
        Weights are initialised as transformers does: every linear and embedding N(0, 0.02²), norms 1, biases 0,
        seeded. `--tokenizer byte-level` writes bam-mix's byte-level tokenizer (256 bytes + <s>, </s>, <pad>) and
        sizes the vocabulary to it; a PATH copies that tokenizer.json (the vocabulary follows it).
        Example (the demo's seed): bam-mix init --architecture cohere --hidden 128 --layers 4 --heads 4 --kv-heads 2 \\
            --intermediate 384 --tokenizer byte-level --out seed-init
        """)

    typealias Architecture = ModelConfig.SeedArchitecture

    @Option(help: "llama, mistral, qwen2 or cohere (parallel block, LayerNorm).")
    var architecture: Architecture = .llama
    @Option(help: "Hidden size.") var hidden: Int
    @Option(help: "Number of layers.") var layers: Int
    @Option(help: "Attention heads.") var heads: Int
    @Option(name: .customLong("kv-heads"), help: "Key/value heads (GQA; default: heads).") var kvHeads: Int?
    @Option(help: "FFN intermediate size.") var intermediate: Int
    @Option(help: "Vocabulary size (default: the tokenizer's).") var vocab: Int?
    @Option(help: "byte-level, or a tokenizer.json (or model directory) to copy.") var tokenizer: String = "byte-level"
    @Option(name: .customLong("max-positions"), help: "max_position_embeddings.") var maxPositions = 2048
    @Option(name: .customLong("rope-theta"), help: "RoPE base.") var ropeTheta: Double = 10000
    @Flag(inversion: .prefixedNo, help: "Tie the output projection to the embeddings (default: yes for cohere).") var tie: Bool?
    @Option(name: .customLong("logit-scale"), help: "cohere: logits multiplier.") var logitScale: Double = 1
    @Option(help: "Initialisation seed.") var seed: UInt64 = 0
    @Option(help: "Output directory (must not exist).") var out: String

    func run() throws {
        let dir = URL(fileURLWithPath: out)
        // Tokenizer first: it sizes the vocabulary.
        let tokDir = FileManager.default.temporaryDirectory.appendingPathComponent("bam-mix-init-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tokDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tokDir) }
        if tokenizer == "byte-level" {
            try ByteLevelTokenizerBuilder.write(to: tokDir)
        } else {
            var src = URL(fileURLWithPath: tokenizer)
            if !src.lastPathComponent.hasSuffix(".json") { src = src.appendingPathComponent("tokenizer.json") }
            try FileManager.default.copyItem(at: src, to: tokDir.appendingPathComponent("tokenizer.json"))
            let cfg = src.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
            if FileManager.default.fileExists(atPath: cfg.path) {
                try FileManager.default.copyItem(at: cfg, to: tokDir.appendingPathComponent("tokenizer_config.json"))
            }
        }
        let tok = try Tokenizer.load(url: tokDir)
        let V = vocab ?? tok.vocabSize
        guard V >= tok.vocabSize else { throw ValidationError("--vocab \(V) is smaller than the tokenizer's \(tok.vocabSize) tokens") }
        let json = ModelConfig.seedJSON(architecture, vocab: V, hidden: hidden, intermediate: intermediate, layers: layers,
                                        heads: heads, kvHeads: kvHeads, maxPositions: maxPositions, ropeTheta: ropeTheta,
                                        tie: tie ?? (architecture == .cohere), logitScale: logitScale,
                                        bos: tok.bosTokenId, eos: tok.eosTokenId)
        let config = try ModelConfig(json: json)
        try ModelMemory.requireFits(config: config, bytesPerParameter: 4, purpose: "initialising")
        let weights = TransformerWeights.random(config: config, seed: seed, scale: 0.02)
        try CheckpointWriter.save(weights: weights, config: config, to: dir, sideFilesFrom: tokDir)
        let stats = ModelStatistics(config: config, context: maxPositions)
        print("wrote \(config.architectureName) with \(formatCount(stats.totalParameters)) parameters (vocabulary \(V)) to \(dir.path)")
    }
}

extension ModelConfig.SeedArchitecture: ExpressibleByArgument {}
