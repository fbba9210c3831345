import BamTensors

extension MixOptions {
    /// The options as errors name them (`BamError.Option`, e.g. `MixOptions.numExperts`): a
    /// refused combination names the options a library caller set; the CLI words each as its flag.
    public enum Field {
        public static let method = BamError.Option(\MixOptions.method, "method")
        public static let experts = BamError.Option(\MixOptions.experts, "experts")
        public static let output = BamError.Option(\MixOptions.output, "output")
        public static let topK = BamError.Option(\MixOptions.topK, "topK")
        public static let renormalize = BamError.Option(\MixOptions.renormalize, "renormalize")
        public static let router = BamError.Option(\MixOptions.router, "router")
        public static let routerScale = BamError.Option(\MixOptions.routerScale, "routerScale")
        public static let routerPrompts = BamError.Option(\MixOptions.routerPrompts, "routerPrompts")
        public static let routerBaseExpert = BamError.Option(\MixOptions.routerBaseExpert, "routerBaseExpert")
        public static let seed = BamError.Option(\MixOptions.seed, "seed")
        public static let weights = BamError.Option(\MixOptions.weights, "weights")
        public static let attention = BamError.Option(\MixOptions.attention, "attention")
        public static let attentionRouting = BamError.Option(\MixOptions.attentionRouting, "attentionRouting")
        public static let attentionTopK = BamError.Option(\MixOptions.attentionTopK, "attentionTopK")
        public static let block = BamError.Option(\MixOptions.block, "block")
        public static let numExperts = BamError.Option(\MixOptions.numExperts, "numExperts")
        public static let upcycleNoise = BamError.Option(\MixOptions.upcycleNoise, "upcycleNoise")
        public static let dropRatio = BamError.Option(\MixOptions.dropRatio, "dropRatio")
        public static let ffnRouting = BamError.Option(\MixOptions.ffnRouting, "ffnRouting")
        public static let capacityFactor = BamError.Option(\MixOptions.capacityFactor, "capacityFactor")
        public static let gumbelDecay = BamError.Option(\MixOptions.gumbelDecay, "gumbelDecay")
        public static let auxLoss = BamError.Option(\MixOptions.auxLoss, "auxLoss")
        public static let routerAuxLossCoef = BamError.Option(\MixOptions.routerAuxLossCoef, "routerAuxLossCoef")
        public static let routerZLossCoef = BamError.Option(\MixOptions.routerZLossCoef, "routerZLossCoef")
        public static let expertScaling = BamError.Option(\MixOptions.expertScaling, "expertScaling")
        public static let routerData = BamError.Option(\MixOptions.routerData, "routerData")
        public static let routerDataTokens = BamError.Option(\MixOptions.routerDataTokens, "routerDataTokens")
        public static let dtype = BamError.Option(\MixOptions.dtype, "dtype")
        public static let shardSize = BamError.Option(\MixOptions.shardSize, "shardSize")
        public static let allowTokenizerMismatch = BamError.Option(\MixOptions.allowTokenizerMismatch, "allowTokenizerMismatch")
        public static let all = [method, experts, output, topK, renormalize, router, routerScale, routerPrompts, routerBaseExpert,
                                 seed, weights, attention, attentionRouting, attentionTopK, block, numExperts,
                                 upcycleNoise, dropRatio, ffnRouting, capacityFactor, gumbelDecay, auxLoss, routerAuxLossCoef, routerZLossCoef,
                                 expertScaling, routerData, routerDataTokens, dtype, shardSize,
                                 allowTokenizerMismatch]
    }
}

/// Short spelling inside this module.
typealias MixField = MixOptions.Field
