import BamFormats
import Foundation

/// Parameter and compute accounting for `inspect` and `compare`.
public struct ModelStatistics: Sendable, Codable, Equatable {
    public var totalParameters: Int
    /// Parameters that touch each token: every attention expert of a soft MoA (all of them run),
    /// the chosen K of E FFN experts, the routers, embeddings row and lm_head.
    public var activeParameters: Int
    /// Forward FLOPs per token at the given context (see `flopsPerToken`).
    public var flopsPerToken: Double
    public var context: Int
    /// KV-cache bytes per position (of the cache type asked for, float32 by default), all layers:
    /// E times the dense amount for expert-KV BAM.
    public var kvCacheBytesPerToken: Int

    enum CodingKeys: String, CodingKey {
        case totalParameters = "total_parameters", activeParameters = "active_parameters",
             flopsPerToken = "flops_per_token", context, kvCacheBytesPerToken = "kv_cache_bytes_per_token"
    }

    public init(config c: ModelConfig, context: Int, kvCache: KVCacheType = .f32) {
        let specs = c.parameterSpecs
        totalParameters = specs.reduce(0) { $0 + $1.shape.reduce(1, *) }
        var active = 0
        for s in specs {
            let n = s.shape.reduce(1, *)
            switch (s.key, c.attention, c.feedForward) {
            case let (.feedForward(_, _?, _, _), _, .mixture(moe)):
                // K of E experts' FFNs per token.
                active += n * moe.topK / moe.experts
            case let (.attention(_, _?, p, _), .mixture(moa), _) where moa.routing == .topK && (p == .q || p == .o):
                // Soft MoA runs every expert; top-k MoA runs K query/output projections (keys and
                // values of every expert are still computed, see docs/bam-format.md).
                active += n * moa.topK / moa.experts
            default:
                active += n
            }
        }
        activeParameters = active
        flopsPerToken = Self.flopsPerToken(config: c, context: context)
        self.context = context
        kvCacheBytesPerToken = KVCache.bytesPerPosition(config: c, type: kvCache)
    }

    /// Forward FLOPs per token, counting a multiply-add as 2 FLOPs, with the terms of the BAM
    /// paper's Table 10 (after Kaplan et al. 2020, Table 1), per layer:
    ///   attention expert: QKV 2·C·(Q + 2·KV) (= 6d² for full multi-head attention),
    ///                     attention 2·n_ctx·Q, output 2·Q·C;
    ///   BAM: times the number of attention experts a token uses, plus 2·E·C for the router
    ///        (shared-KV computes the K/V projections once);
    ///   FFN: 2·3·K·C·F (SwiGLU's three matrices for each of the K chosen experts), plus 2·E·C router;
    /// and 2·C·V for the output projection.
    public static func flopsPerToken(config c: ModelConfig, context nctx: Int) -> Double {
        let C = Double(c.hidden), F = Double(c.intermediate), Q = Double(c.qDim), KV = Double(c.kvDim)
        let V = Double(c.vocabSize), n = Double(nctx)
        let attention: Double
        switch c.attention {
        case let .mixture(moa):
            let used = Double(moa.expertsPerToken)
            let E = Double(moa.experts)
            let perExpertQO = 2 * C * Q + 2 * n * Q + 2 * Q * C
            let kv = 2 * C * 2 * KV
            attention = used * perExpertQO + Double(moa.keyValueSets) * kv + 2 * E * C
        case .single:
            attention = 2 * C * (Q + 2 * KV) + 2 * n * Q + 2 * Q * C
        }
        var ffn = 2 * 3 * C * F
        switch c.feedForward {
        case .single: break
        case let .mixture(moe): ffn = Double(moe.topK) * ffn + 2 * Double(moe.experts) * C
        }
        return Double(c.layers) * (attention + ffn) + 2 * C * V
    }
}
