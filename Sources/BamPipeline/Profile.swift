import BamMixing
import BamModels
import Foundation

/// One mixture the pipeline builds and finetunes.
public struct MixtureRecipe: Sendable {
    public var name: String
    public var method: MixMethod
    public var attention: AttentionExpertKind = .expertKV
    public var attentionRouting: AttentionRouting = .soft
    public var attentionTopK = 2
    /// The FFN router recipe (`mix --ffn-routing`): the method's own, or BTX's on a BAM mix.
    public var ffnRouting: FFNRoutingRecipe = .paper
    /// Finetuning steps relative to the profile's.
    public var stepScale = 1.0
    /// Compute-matched variant: finetune for as many steps as give this mixture the training
    /// FLOPs the named mixture spends in the profile's steps (the BAM paper's compute matching).
    public var matchComputeOf: String? = nil
    /// Upcycling only: Drop-Upcycling's ratio (`mix --drop-ratio`, arXiv 2502.19261); 0 is plain
    /// upcycling with the pipeline's symmetry-breaking noise.
    public var dropRatio = 0.0

    public init(name: String, method: MixMethod, attention: AttentionExpertKind = .expertKV,
                attentionRouting: AttentionRouting = .soft, attentionTopK: Int = 2, stepScale: Double = 1) {
        self.name = name
        self.method = method
        self.attention = attention
        self.attentionRouting = attentionRouting
        self.attentionTopK = attentionTopK
        self.stepScale = stepScale
    }

    /// A recipe with another FFN routing (`mix --ffn-routing`).
    public static func routed(_ name: String, method: MixMethod, _ routing: FFNRoutingRecipe) -> MixtureRecipe {
        var r = MixtureRecipe(name: name, method: method)
        r.ffnRouting = routing
        return r
    }

    public static let btx = MixtureRecipe(name: "BTX", method: .btx)
    public static let bamExpertKV = MixtureRecipe(name: "BAM expert-KV", method: .bam)
    public static let bamSharedKV = MixtureRecipe(name: "BAM shared-KV", method: .bam, attention: .sharedKV)
    public static let upcycle = MixtureRecipe(name: "upcycled", method: .upcycle)
    /// BAM's attention experts with BTX's FFN routing and loss (`mix --method bam --ffn-routing btx`).
    public static let bamBTXRouting = routed("BAM expert-KV, BTX FFN routing", method: .bam, .btx)
    /// BTX's routing ablations (arXiv 2403.07816, section 4): the same BTX mixture with Switch
    /// top-1 (capacity factor 1.5), sampled top-1 (Gumbel-softmax) or soft routing of its FFNs.
    public static let btxSwitch = routed("BTX, Switch routing", method: .btx, .switch)
    public static let btxSampleTop1 = routed("BTX, sample top-1 routing", method: .btx, .sampleTop1)
    public static let btxSoft = routed("BTX, soft routing", method: .btx, .soft)
    /// Drop-Upcycling with the paper's recommended ratio 0.5.
    public static let dropUpcycle: MixtureRecipe = {
        var r = MixtureRecipe(name: "Drop-Upcycling (r = 0.5)", method: .upcycle)
        r.dropRatio = 0.5
        return r
    }()
}

/// Everything the pipeline does, sized: the seed's shape, the corpora, the Branch-Train budgets,
/// the mixtures and their MoE-finetuning budget, and the evaluation. `demo` and `quick` run on the
/// shipped checkpoints; `reproduce` trains its own seed and experts (tools/reproduce).
public struct PipelineProfile: Sendable {
    public var name: String
    // The seed: a parallel-block (Cohere-style) model, so BAM's concurrent branches apply.
    public var hidden = 128
    public var layers = 4
    public var heads = 4
    public var kvHeads = 2
    public var intermediate = 384
    public var maxPositions = 512
    // Corpora (bytes per domain).
    public var trainBytes = 4_000_000
    public var heldoutBytes = 200_000
    public var corpusSeed: UInt64 = 1
    // Branch-Train.
    public var seedSteps = 1500
    public var expertSteps = 400
    public var trainBatch = 16
    public var trainSeq = 256
    public var seedLR = 3e-3
    public var expertLR = 1e-3
    // Mix + MoE finetuning (the same token budget for every mixture unless its recipe scales it).
    // BAM with BTX's FFN routing beside the paper's BAM: the paper's un-renormalised top-1 gates
    // against BTX's renormalised top-2 on the same attention experts (docs/mixing.md).
    public var mixtures: [MixtureRecipe] = [.btx, .bamExpertKV, .bamBTXRouting, .bamSharedKV, .upcycle]
    public var finetuneSteps = 300
    public var finetuneBatch = 8
    public var finetuneSeq = 256
    public var finetuneLR = 1e-3
    // Evaluation. BTM ensembles of the dense experts, one per top-k (tf-idf routing per context).
    public var btmTopKs = [1]
    public var evalContext = 256
    public var evalChunks = 24
    public var routeChunks = 4

    public init(name: String) { self.name = name }

    /// `bam-mix demo`: about 13 minutes on two cores (12 min 35 s on an EPYC Zen 3, 2026-12-02).
    public static var demo: PipelineProfile { PipelineProfile(name: "demo") }

    /// `bam-mix demo --quick`: the same pipeline on a small budget (CI's smoke test, about 3 minutes on two cores: 2 min 52 s on the same machine).
    public static var quick: PipelineProfile {
        var p = PipelineProfile(name: "quick")
        p.finetuneSteps = 60
        p.finetuneBatch = 8
        p.finetuneSeq = 256
        p.evalChunks = 16
        p.routeChunks = 1
        p.heldoutBytes = 60_000
        p.trainBytes = 400_000
        return p
    }

    /// A seconds-long run of every stage, for the tests.
    public static var micro: PipelineProfile {
        var p = PipelineProfile(name: "micro")
        p.hidden = 32
        p.layers = 2
        p.heads = 2
        p.kvHeads = 1
        p.intermediate = 48
        p.maxPositions = 128
        p.trainBytes = 40_000
        p.heldoutBytes = 8_000
        p.seedSteps = 4
        p.expertSteps = 2
        p.trainBatch = 2
        p.trainSeq = 32
        p.finetuneSteps = 2
        p.finetuneBatch = 2
        p.finetuneSeq = 32
        p.evalContext = 32
        p.evalChunks = 2
        p.routeChunks = 1
        return p
    }

    /// tools/reproduce: per run seed, its own seed model and experts trained from scratch (the
    /// demo's shapes and Branch-Train budgets, so run seed 1 rebuilds the shipped checkpoints),
    /// twice the demo's finetuning tokens and evaluation windows, and the papers' ablations
    /// (compute-matched BTX, top-k attention routing, BTX's FFN routing variants, BAM with BTX's
    /// FFN routing, Drop-Upcycling, BTM top-2). About 1-1.5 hours per seed on two cores (54 min
    /// to 1 h 45 min on an EPYC Zen 3, the longer ones sharing it with other work); every finished model is
    /// cached in the seed's folder, so a run can be completed over several.
    public static var reproduce: PipelineProfile {
        var p = PipelineProfile(name: "reproduce")
        p.finetuneSteps = 600
        p.evalChunks = 48
        p.mixtures = reproductionMixtures
        p.btmTopKs = [1, 2]
        return p
    }

    /// The reproduction's mixtures: the seven of the papers' comparisons, then the ablations.
    public static let reproductionMixtures: [MixtureRecipe] = [
        .btx, .bamExpertKV, .bamBTXRouting, .bamSharedKV, .upcycle,
        { var r = MixtureRecipe(name: "BTX compute-matched", method: .btx); r.matchComputeOf = "BAM expert-KV"; return r }(),
        MixtureRecipe(name: "BAM expert-KV, top-1 attention", method: .bam, attentionRouting: .topK, attentionTopK: 1),
        MixtureRecipe(name: "BAM expert-KV, top-2 attention", method: .bam, attentionRouting: .topK, attentionTopK: 2),
        .btxSwitch, .btxSampleTop1, .btxSoft, .dropUpcycle,
    ]

    /// `demo --reproduce --quick`: every model of the reproduction on the micro budget (seconds
    /// per model), a smoke test that each row runs end to end; its numbers mean nothing.
    public static var reproduceQuick: PipelineProfile {
        var p = micro
        p.name = "reproduce-quick"
        p.mixtures = reproductionMixtures
        p.btmTopKs = [1, 2]
        return p
    }
}
