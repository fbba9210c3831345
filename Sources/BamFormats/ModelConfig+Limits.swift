import BamTensors
import Foundation

/// Caps on the sizes a config.json (or a GGUF's metadata) may state, checked when the config is
/// parsed, before anything is sized from it. They sit far above every released model (the
/// largest have vocabularies of ~256k, hidden sizes of ~16k-25k, ~130 layers, 256 experts) and
/// far below what would overflow the parameter and FLOP arithmetic, so a hostile or corrupt
/// config is a clear error rather than an integer-overflow trap or an allocation that runs until
/// the process is killed. docs/reliability.md lists them.
extension ModelConfig {
    public enum Limits {
        public static let vocabSize = 1 << 24            // 16,777,216 tokens
        public static let hiddenSize = 1 << 17           // 131,072
        public static let intermediateSize = 1 << 20     // 1,048,576
        public static let layers = 1 << 12               // 4,096
        public static let heads = 1 << 12                // attention and key/value heads
        public static let headDim = 1 << 12
        public static let experts = 1 << 12              // FFN and attention experts
        /// Layers x experts: bounds the number of tensors a config implies (a parameter table
        /// is listed before any weight is read).
        public static let layerExperts = 1 << 17
        public static let maxPositions = 1 << 24          // max_position_embeddings, sliding_window
        /// An upper bound on the parameter count (about 17.6 trillion).
        public static let parameters = 1 << 44
    }

    /// Throws a config error naming the first size that is over its cap, or a parameter bound over
    /// `Limits.parameters`. Called at the end of `init(json:file:)`.
    func checkLimits(file: String) throws {
        func cap(_ key: String, _ value: Int, _ limit: Int) throws {
            guard value <= limit else {
                throw BamError.config(file, key: key, "above bam-mix's limit — a corrupt or hostile config (no released model comes close)",
                                      expected: "at most \(limit)", found: "\(value)")
            }
        }
        try cap("vocab_size", vocabSize, Limits.vocabSize)
        try cap("hidden_size", hidden, Limits.hiddenSize)
        try cap("intermediate_size", intermediate, Limits.intermediateSize)
        try cap("num_hidden_layers", layers, Limits.layers)
        try cap("num_attention_heads", heads, Limits.heads)
        try cap("num_key_value_heads", kvHeads, Limits.heads)
        try cap("head_dim", headDim, Limits.headDim)
        try cap("max_position_embeddings", maxPositions, Limits.maxPositions)
        guard maxPositions > 0 else {
            throw BamError.config(file, key: "max_position_embeddings", expected: "a positive integer", found: "\(maxPositions)")
        }
        if let w = slidingWindow { try cap("sliding_window", w, Limits.maxPositions) }
        let experts = statedExperts
        try cap("num_local_experts", experts, Limits.experts)
        try cap("num_hidden_layers x num_local_experts", layers * experts, Limits.layerExperts)
        guard ropeTheta.isFinite, ropeTheta > 0 else {
            throw BamError.config(file, key: "rope_theta", expected: "a positive finite number", found: "\(ropeTheta)")
        }
        guard normEps.isFinite, normEps >= 0 else {
            throw BamError.config(file, key: norm == .rms ? "rms_norm_eps" : "layer_norm_eps", expected: "a finite number >= 0", found: "\(normEps)")
        }
        guard logitScale.isFinite else { throw BamError.config(file, key: "logit_scale", expected: "a finite number", found: "\(logitScale)") }
        let bound = parameterUpperBound
        guard bound <= Double(Limits.parameters) else {
            throw BamError.config(file, key: "hidden_size", "the sizes imply more parameters than bam-mix's limit — a corrupt or hostile config",
                                  expected: String(format: "at most %.3g parameters", Double(Limits.parameters)),
                                  found: String(format: "up to %.3g", bound))
        }
    }

    /// The expert count the config states (1 for a dense model), read from the raw keys so that it
    /// does not depend on how the mixture is represented.
    var statedExperts: Int { max(1, raw["num_local_experts"]?.intValue ?? 1) }

    /// A generous upper bound on the parameter count, in floating point so it cannot overflow:
    /// every layer as if it had an expert copy of both attention (with biases) and SwiGLU FFN,
    /// plus routers, norms, and untied embeddings.
    public var parameterUpperBound: Double {
        let c = Double(hidden), f = Double(intermediate), v = Double(vocabSize), e = Double(statedExperts)
        let q = Double(heads) * Double(headDim), kv = Double(kvHeads) * Double(headDim)
        let attention = e * (2 * c * q + 2 * c * kv + 2 * q + 2 * kv + c)
        let ffn = e * (3 * c * f + 2 * f + c)
        let perLayer = attention + ffn + 2 * e * c + 4 * c
        return Double(layers) * perLayer + 2 * v * c + 2 * c
    }
}
