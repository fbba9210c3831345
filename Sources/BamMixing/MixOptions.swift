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
    /// N(0, 0.02²) from the seed — transformers' `initializer_range` for nn.Linear, the papers' random routers.
    case random
    /// All zeros: uniform routing (ties broken towards the lower expert index).
    case zero
    /// mergekit's "hidden": the residual stream entering each layer at the prompts' last token.
    case hidden
    /// mergekit's "cheap_embed": the normalised sum of the prompts' token embeddings, same row every layer.
    case cheapEmbed = "cheap-embed"
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
    public var router: RouterInit = .random
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
    /// Output dtype; nil keeps the experts' (which must then agree).
    public var dtype: DType?
    public var shardSize: Int?
    public var allowTokenizerMismatch = false
    public var routerAuxLossCoef = 0.01
    public var routerZLossCoef = 0.001

    public init(method: MixMethod, experts: [String], output: URL) {
        self.method = method
        self.experts = experts
        self.output = output
    }
}
