import ArgumentParser
import BamMixing
import BamEvaluation
import BamModels
import Foundation

extension MixMethod: ExpressibleByArgument {}
extension RouterInit: ExpressibleByArgument {}
extension FFNRoutingRecipe: ExpressibleByArgument {}
extension RouterAuxLoss: ExpressibleByArgument {}
extension ExpertScaling: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "auto": self = .auto
        case "none": self = .none
        default:
            guard let x = Double(argument), x > 0, x.isFinite else { return nil }
            self = .factor(x)
        }
    }
}
extension BlockChoice: ExpressibleByArgument {}
extension AttentionExpertKind: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "expert-kv", "expert_kv": self = .expertKV
        case "shared-kv", "shared_kv": self = .sharedKV
        default: return nil
        }
    }
}
extension AttentionRouting: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "soft": self = .soft
        case "top-k", "top_k", "topk": self = .topK
        default: return nil
        }
    }
}

struct MixCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mix",
        abstract: "Mix dense experts into a BTX (Mixtral), BAM or sparse-upcycled model.",
        discussion: """
        btx: the experts' FFNs become MoE experts; attention, embeddings, norms and lm_head are the (weighted) average.
             The output is a MixtralForCausalLM directory when Mixtral can express the experts (Llama/Mistral, no
             biases); otherwise bam-mix's BAM format with one averaged attention.
        bam: attention becomes a soft mixture of attention experts too (--attention expert-kv: own Q, K, V, O per
             expert; shared-kv: own Q, O with averaged shared K, V). FFN top-1 without renormalisation by default;
             --ffn-routing btx gives it BTX's FFN routing and loss instead.
        upcycle: one dense model's FFN copied --num-experts times (--noise adds symmetry-breaking noise,
             --drop-ratio R re-initialises a fraction R of each copy's intermediate dimensions: Drop-Upcycling).
        Router recipe: config.json states the FFN routing and the router losses `bam-mix finetune` trains with
        (btx/upcycle: BTX's balancing loss 0.01, no z-loss; bam: Switch loss 0.01 + z-loss 0.001).
        Un-renormalised gates (bam) scale each FFN output by about K/E with fresh routers; --expert-scaling auto
        (default) multiplies each expert's down projection by E/K so a trained model keeps its FFN outputs'
        size (arXiv 2410.07524), and --router auto (default) starts such gates from zero routers: every token
        goes to expert 0 (put the seed first), so the fresh mixture keeps its FFN until finetuning teaches the
        routers (--router random: the papers' random routers). --check-text FILE measures the result against
        expert 0 at once.
        Experts may be HF directories or GGUF files of any type bam-mix reads (F32/F16/BF16, Q4_0..Q8_0, Q2_K..Q6_K,
        IQ4_NL, IQ4_XS; mixed types across experts too), dequantised while mixing. --out NAME.gguf writes one GGUF
        file (via a temporary HF directory beside it).
        Everything is checked before any byte is written; the output is written to a temporary directory and
        renamed when complete. A provenance record (method, options, each source's files and SHA-256) is kept
        in bam_mix_provenance.json.
        """)

    @Option(help: "btx, bam or upcycle.")
    var method: MixMethod

    @Option(name: .customLong("expert"), help: "A dense expert PATH (repeat; the seed may be one of them).")
    var experts: [String] = []

    @Option(help: "Output: an HF directory, or a file ending in .gguf for one GGUF file (must not exist).")
    var out: String

    @Option(name: .customLong("top-k"), help: "FFN experts per token (default: 2 for btx/upcycle, 1 for bam).")
    var topK: Int?

    @Flag(inversion: .prefixedNo, help: "Renormalise the chosen FFN gates (default: yes for btx, no for bam).")
    var renormalize: Bool?

    @Option(help: "Router initialisation: auto (default: zero for un-renormalised top-k gates, e.g. bam's, so that the fresh mixture keeps expert 0's FFN; random otherwise), random (N(0, 0.02^2), seeded; the papers'), zero (uniform), hidden or cheap-embed (mergekit's prompt-based modes), domain (each expert's mean hidden state over --router-data), generated (the same over text each expert samples itself; no data needed).")
    var router: RouterInit = .auto

    @Option(name: .customLong("router-scale"), help: "A factor on the initial routers: random entries N(0, (0.02 F)^2), data-based rows of length F (default 1). Tokens choose the same experts; a small F makes the fresh gates nearly uniform.")
    var routerScale: Float = 1

    @Option(name: .customLong("router-data"), help: "EXPERT_INDEX=FILE: that expert's training text, for --router domain. Repeat per expert.")
    var routerData: [String] = []

    @Option(name: .customLong("router-data-tokens"), help: "--router domain: tokens of each --router-data file averaged over (its first ones); --router generated: tokens each expert samples.")
    var routerDataTokens = 8192

    @Option(name: .customLong("ffn-routing"), help: "paper (default: the method's own FFN routing and router losses), btx (bam only: top-2 renormalised with BTX's loss), or BTX's routing ablation with the method's losses: switch (top-1, capacity factor; overflow tokens skip the FFN), sample-top1 (Gumbel-softmax top-1 while finetuning, argmax at inference), soft (every expert, softmax gates). switch, sample-top1 and soft write the BAM format.")
    var ffnRouting: FFNRoutingRecipe = .paper

    @Option(name: .customLong("capacity-factor"), help: "--ffn-routing switch: each expert takes at most ceil(F * tokens / experts) tokens of a forward pass (default 1.5).")
    var capacityFactor: Double?

    @Option(name: .customLong("gumbel-decay"), help: "--ffn-routing sample-top1: r in the Gumbel-softmax temperature max(0.5, exp(-r * step)) (default 1e-4).")
    var gumbelDecay: Double?

    @Option(name: .customLong("expert-scaling"), help: "auto (default: E/K for un-renormalised gates, else 1), none, or a factor multiplying each expert's down projection (arXiv 2410.07524).")
    var expertScaling: ExpertScaling = .auto

    @Option(name: .customLong("check-text"), help: "After mixing, the perplexity of expert 0 and of the mixture on this text (held-out text of the experts' domains).")
    var checkText: String?

    @Option(name: .customLong("check-ctx"), help: "--check-text: context length of each scored chunk.")
    var checkContext = 256

    @Option(name: .customLong("check-chunks"), help: "--check-text: at most this many chunks.")
    var checkChunks = 16

    @Option(name: .customLong("router-prompts"), help: "EXPERT_INDEX=FILE: prompts for the prompt-based routers (one per line; lines starting with ! are negative). Repeat per expert.")
    var routerPrompts: [String] = []

    @Option(name: .customLong("router-base-expert"), help: "The expert whose forward pass computes `hidden` router vectors.")
    var routerBaseExpert = 0

    @Option(help: "Seed for random routers and upcycling noise.")
    var seed: UInt64 = 0

    @Option(help: "Comma-separated weights of the averaged parameters, one per expert (default uniform).")
    var weights: String?

    @Option(help: "bam: expert-kv (default) or shared-kv.")
    var attention: AttentionExpertKind = .expertKV

    @Option(name: .customLong("attention-routing"), help: "bam: soft (default, every expert) or top-k.")
    var attentionRouting: AttentionRouting = .soft

    @Option(name: .customLong("attention-top-k"), help: "bam with --attention-routing top-k: attention experts per token.")
    var attentionTopK = 2

    @Option(help: "keep (default) the experts' block type, or parallel (converts sequential blocks; changes the function until finetuned).")
    var block: BlockChoice = .keep

    @Option(name: .customLong("num-experts"), help: "upcycle: number of FFN copies.")
    var numExperts: Int?

    @Option(help: "upcycle: Gaussian noise added to each copy, as a fraction of the tensor's RMS (default 0: exact copies).")
    var noise: Float = 0

    @Option(name: .customLong("drop-ratio"), help: "upcycle: Drop-Upcycling's r: per expert, floor(r F) intermediate dimensions re-initialised from the statistics of the weights they replace (arXiv 2502.19261; the paper uses 0.5).")
    var dropRatio: Double = 0

    @Option(help: "Output dtype: keep (default: the widest float type the experts' weights are stored in, bf16 when every expert is quantised), f32, f16 or bf16; a .gguf output also takes q8_0, q4_0, q4_1, q5_0, q5_1.")
    var dtype: String = "keep"

    @Option(name: .customLong("shard-size"), help: "Maximum bytes per output safetensors shard (default: one file).")
    var shardSize: Int?

    @Flag(name: .customLong("allow-tokenizer-mismatch"), help: "Mix experts whose tokenizer.json files differ.")
    var allowTokenizerMismatch = false

    @Option(name: .customLong("aux-loss"), help: "Router balancing loss stored in the config: btx, switch or none (default: the recipe's).")
    var auxLoss: RouterAuxLoss?

    @Option(name: .customLong("aux-loss-coef"), help: "Coefficient of the balancing loss stored in the config (default: the recipe's, 0.01).")
    var auxLossCoef: Double?

    @Option(name: .customLong("z-loss-coef"), help: "Router z-loss coefficient stored in the config (default: the recipe's; btx 0, bam 0.001).")
    var zLossCoef: Double?

    func run() throws {
        var o = MixOptions(method: method, experts: experts, output: URL(fileURLWithPath: out))
        o.topK = topK
        o.renormalize = renormalize
        o.router = router
        o.routerScale = routerScale
        for p in routerPrompts {
            let parts = p.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let i = Int(parts[0]) else {
                throw ValidationError("--router-prompts takes EXPERT_INDEX=FILE, got \(p)")
            }
            o.routerPrompts[i] = URL(fileURLWithPath: String(parts[1]))
        }
        for p in routerData {
            let parts = p.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let i = Int(parts[0]) else {
                throw ValidationError("--router-data takes EXPERT_INDEX=FILE, got \(p)")
            }
            o.routerData[i] = URL(fileURLWithPath: String(parts[1]))
        }
        o.routerDataTokens = routerDataTokens
        o.ffnRouting = ffnRouting
        o.capacityFactor = capacityFactor
        o.gumbelDecay = gumbelDecay
        o.expertScaling = expertScaling
        o.dropRatio = dropRatio
        o.auxLoss = auxLoss
        o.routerBaseExpert = routerBaseExpert
        o.seed = seed
        if let weights {
            o.weights = try weights.split(separator: ",").map {
                guard let v = Double($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--weights: `\($0)` is not a number") }
                return v
            }
        }
        o.attention = attention
        o.attentionRouting = attentionRouting
        o.attentionTopK = attentionTopK
        o.block = block
        o.numExperts = numExperts
        o.upcycleNoise = noise
        if dtype != "keep" {
            guard let d = DType(userName: dtype) else { throw ValidationError("--dtype must be keep, f32, f16 or bf16 (or, for a .gguf output, q8_0, q4_0, q4_1, q5_0, q5_1)") }
            o.dtype = d
        }
        o.shardSize = shardSize
        o.allowTokenizerMismatch = allowTokenizerMismatch
        o.routerAuxLossCoef = auxLossCoef
        o.routerZLossCoef = zLossCoef
        // Read the check text before mixing: a missing file is an error before anything is written.
        let check = try checkText.map { path -> String in
            guard let t = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("--check-text \(path): cannot read the file as UTF-8 text")
            }
            return t
        }
        let report = try Mixer.run(o) { printError($0) }
        print("wrote \(report.formatName): \(report.tensors) tensors, \(formatBytes(report.bytesWritten)) from \(report.experts) expert(s) to \(report.output.path) in \(String(format: "%.2f", report.seconds)) s")
        print("  \(report.routingSummary)")
        if let check {
            let r = try MixCheck.run(text: check, reference: experts[0], mixture: report.output.path,
                                     expertScales: report.expertScales, contextLength: checkContext, maxChunks: checkChunks)
            for line in r.lines { print("  " + line) }
        }
    }
}
