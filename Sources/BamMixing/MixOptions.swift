import BamModels
import Foundation

/// What `bam-mix mix` builds (docs/methods.md).
public enum MixMethod: String, Sendable, CaseIterable {
    /// Branch-Train-MiX: FFNs become MoE experts, everything else is averaged.
    case btx
    /// Branch-Attend-Mix: attention becomes a soft mixture of attention experts too.
    case bam
    /// Sparse upcycling: one dense model's FFN copied N times.
    case upcycle
}

/// How each router matrix (E, C) starts.
public enum RouterInit: String, Sendable, CaseIterable {
    /// The default: `zero` where the FFN gates are the top K < E of a softmax, not renormalised
    /// (BAM's own routing), `random` everywhere else (`Mixer.resolveRouter`). Zero routers give
    /// every expert the same probability and the top-K tie goes to the lowest indices, so with the
    /// experts scaled by E/K (`ExpertScaling.auto`) a fresh mixture keeps expert 0's FFN in every
    /// layer (the mean of experts 0 ... K-1 for K > 1) instead of sending each token of each layer
    /// to a random expert (docs/mixing.md, "Mixtures usable at once"). Switch routing is excluded:
    /// on a tie its capacity would make most tokens skip the FFN.
    case auto
    /// N(0, 0.02²) from the seed — transformers' `initializer_range` for nn.Linear, the papers' random routers.
    case random
    /// All zeros: uniform routing (ties broken towards the lower expert index).
    case zero
    /// mergekit's "hidden": the residual stream entering each layer at the prompts' last token.
    case hidden
    /// mergekit's "cheap_embed": the normalised sum of the prompts' token embeddings, same row every layer.
    case cheapEmbed = "cheap-embed"
    /// Domain embeddings, in the spirit of Nexus (arXiv 2408.15901) and FlexOlmo (arXiv 2507.07024):
    /// each expert's row is the mean residual stream entering the layer over the expert's own
    /// training text (`routerData`), centred across experts and L2-normalised.
    case domain
    /// Self-generated domain embeddings: `domain` computed on text each expert samples itself
    /// (from BOS, temperature 1) instead of its training text, so no data is needed.
    case generated
}

/// Which FFN routing recipe a mix writes (docs/mixing.md, "Router recipes").
public enum FFNRoutingRecipe: String, Sendable, CaseIterable {
    /// The method's own: BTX and upcycling top-2 renormalised with BTX's balancing loss (alpha 0.01,
    /// no z-loss); BAM top-1 without renormalisation with the Switch loss (0.01) and the z-loss (0.001).
    case paper
    /// BTX's FFN routing and loss on a BAM mix (top-2 renormalised, BTX loss 0.01, no z-loss): the
    /// combination docs/results.md's ablation found best at small finetuning budgets.
    case btx
    /// BTX's routing ablation (arXiv 2403.07816, section 4), with the method's router losses:
    /// Switch top-1 with a capacity factor (`capacityFactor`, 1.5); overflow tokens skip the FFN.
    case `switch`
    /// Top-1 sampled by Gumbel-softmax while finetuning (temperature max(0.5, exp(-r t)),
    /// `gumbelDecay` r = 1e-4), argmax at inference.
    case sampleTop1 = "sample-top1"
    /// Every expert, weighted by the router's softmax.
    case soft
}

/// Expert weight scaling for un-renormalised gates (arXiv 2410.07524, section 3): softmax -> top-K
/// without renormalisation multiplies each FFN output by gates that sum to about K/E with fresh
/// routers, so the experts are scaled by E/K to give a trained model's FFN its size back. bam-mix
/// stores the scale in each expert's down projection (w2), where it scales the SwiGLU output exactly.
public enum ExpertScaling: Sendable, Equatable {
    /// E/K when the gates are not renormalised and K < E; 1 otherwise (renormalised gates sum to 1).
    case auto
    /// No scaling.
    case none
    /// This factor.
    case factor(Double)
}

public enum BlockChoice: String, Sendable, CaseIterable {
    /// Keep the experts' block type (parallel stays parallel, sequential stays sequential).
    case keep
    /// Make every block parallel (y = x + Attn(norm(x)) + FFN(norm(x))). For a sequential family this
    /// changes the function (the post-attention norm is dropped) until the model is finetuned.
    case parallel
}

public struct MixOptions: Sendable {
    public var method: MixMethod
    public var experts: [String]
    public var output: URL
    /// FFN experts per token (BTX default 2, BAM default 1).
    public var topK: Int?
    /// Renormalise the chosen FFN gates (BTX default true, BAM default false).
    public var renormalize: Bool?
    public var router: RouterInit = .auto
    /// A factor on the initial routers: `random` entries are N(0, (0.02 routerScale)²), the unit
    /// rows of the data-based routers become rows of length routerScale. The top-k choice of a
    /// token does not change with it; a small factor makes the fresh gates nearly uniform, the
    /// assumption of arXiv 2410.07524's E/K scaling (Switch Transformer also scales its router
    /// initialisation down, for stability).
    public var routerScale: Float = 1
    /// expert index -> prompt file (one prompt per line; lines starting with `!` are negative prompts).
    public var routerPrompts: [Int: URL] = [:]
    /// The expert whose forward pass computes `hidden` router vectors (mergekit uses its base model).
    public var routerBaseExpert = 0
    public var seed: UInt64 = 0
    /// Weights of the averaged parameters (default uniform); normalised to sum 1.
    public var weights: [Double]?
    public var attention: AttentionExpertKind = .expertKV
    public var attentionRouting: AttentionRouting = .soft
    public var attentionTopK = 2
    public var block: BlockChoice = .keep
    /// Upcycling: number of FFN copies.
    public var numExperts: Int?
    /// Upcycling: Gaussian noise added to each copy, as a fraction of the tensor's RMS (0 = exact copies).
    public var upcycleNoise: Float = 0
    /// Upcycling: Drop-Upcycling's ratio r (arXiv 2502.19261): per expert, floor(r F) intermediate
    /// dimensions re-initialised from the statistics of the weights they replace (0 = plain copies).
    public var dropRatio: Double = 0
    /// The FFN routing recipe (the method's own by default).
    public var ffnRouting: FFNRoutingRecipe = .paper
    /// `--ffn-routing switch`: the capacity factor (nil: 1.5, BTX's).
    public var capacityFactor: Double?
    /// `--ffn-routing sample-top1`: the temperature decay r (nil: 1e-4, BTX's).
    public var gumbelDecay: Double?
    /// Overrides of the recipe's router losses (nil: the recipe's).
    public var auxLoss: RouterAuxLoss?
    public var routerAuxLossCoef: Double?
    public var routerZLossCoef: Double?
    public var expertScaling: ExpertScaling = .auto
    /// expert index -> a text file of that expert's training data (`--router domain`).
    public var routerData: [Int: URL] = [:]
    /// Tokens of each `routerData` file the domain router averages over (its first ones).
    public var routerDataTokens = 8192
    /// Output dtype; nil picks the widest float type the experts' weights are stored in (bf16
    /// when all are quantised; MixDType). A GGUF output may also take q8_0, q4_0, q4_1, q5_0, q5_1.
    public var dtype: DType?
    public var shardSize: Int?
    public var allowTokenizerMismatch = false

    /// An output path ending in `.gguf` writes one GGUF file; anything else an HF directory.
    public var writesGGUF: Bool { output.pathExtension.lowercased() == "gguf" }

    public init(method: MixMethod, experts: [String], output: URL) {
        self.method = method
        self.experts = experts
        self.output = output
    }
}
