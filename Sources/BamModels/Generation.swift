import BamTensors
import Foundation

/// Sampling settings for `Transformer.generate`.
public struct SamplingOptions: Sendable {
    /// 0 picks the most likely token (greedy); otherwise logits are divided by it before sampling.
    public var temperature: Float = 0.8
    /// Keep only the K most likely tokens (0 = all).
    public var topK: Int = 0
    /// Nucleus sampling: the smallest set of tokens whose probability reaches P (1 = all).
    public var topP: Float = 1
    public var seed: UInt64 = 0
    public var maxTokens: Int = 128
    public var stopTokens: Set<Int> = []

    public init(temperature: Float = 0.8, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0, maxTokens: Int = 128,
                stopTokens: Set<Int> = []) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.maxTokens = maxTokens
        self.stopTokens = stopTokens
    }
}

/// Picks a token from one row of logits.
public func sampleToken(_ logits: UnsafePointer<Float>, vocab V: Int, options o: SamplingOptions,
                        rng: inout SplitMix64) -> Int {
    if o.temperature <= 0 {
        var best = 0
        for i in 1..<V where logits[i] > logits[best] { best = i }
        return best
    }
    var candidates = (0..<V).map { ($0, logits[$0] / o.temperature) }
    candidates.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    if o.topK > 0 && o.topK < candidates.count { candidates.removeLast(candidates.count - o.topK) }
    let mx = candidates[0].1
    var probs = candidates.map { Double(expf($0.1 - mx)) }
    let total = probs.reduce(0, +)
    probs = probs.map { $0 / total }
    if o.topP < 1 {
        var cum = 0.0
        var keep = probs.count
        for (i, p) in probs.enumerated() {
            cum += p
            if cum >= Double(o.topP) { keep = i + 1; break }
        }
        probs = Array(probs.prefix(keep))
        candidates = Array(candidates.prefix(keep))
        let s = probs.reduce(0, +)
        probs = probs.map { $0 / s }
    }
    var u = Double(rng.uniform())
    for (i, p) in probs.enumerated() {
        u -= p
        if u < 0 { return candidates[i].0 }
    }
    return candidates[probs.count - 1].0
}

extension Transformer {
    /// Generates up to `options.maxTokens` tokens after `prompt` with the KV cache: one prefill of
    /// the prompt, then one single-token forward per new token. `onToken` sees each new token and
    /// may return false to stop.
    public func generate(prompt: [Int], options: SamplingOptions, onToken: (Int) -> Bool = { _ in true }) throws -> [Int] {
        guard !prompt.isEmpty else { throw BamError.usage("generate needs a non-empty prompt") }
        let cache = makeCache(capacity: prompt.count + options.maxTokens)
        var rng = SplitMix64(seed: options.seed)
        var logits = try forward(tokens: prompt, cache: cache, outputRows: (prompt.count - 1)..<prompt.count)
        var out: [Int] = []
        for _ in 0..<options.maxTokens {
            let next = sampleToken(logits.data, vocab: config.vocabSize, options: options, rng: &rng)
            out.append(next)
            if options.stopTokens.contains(next) || !onToken(next) { break }
            logits = try forward(tokens: [next], cache: cache)
        }
        return out
    }
}
