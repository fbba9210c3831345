import BamModels
import BamTokenizers
import Foundation

/// The ids perplexity scores for a text, tokenised as `llama-perplexity` does: the whole text at
/// once, BOS first when the tokenizer adds one, and special-token strings written in the text
/// (a literal `<s>`) taken as text (llama.cpp tokenises with `parse_special = false`).
public func perplexityTokens(_ text: String, tokenizer: Tokenizer) -> [Int] {
    tokenizer.encode(text, addSpecialTokens: true, parseSpecialTokens: false)
}

/// Which positions of each chunk are scored.
public enum PerplexityScoring: String, Sendable, Codable, CaseIterable {
    /// llama.cpp's `llama-perplexity`: the second half of each chunk (positions n_ctx/2 ..< n_ctx-1
    /// predicting the next token), so every scored token has at least n_ctx/2 tokens of context.
    case half
    /// Every token after the first of each chunk.
    case full
}

public struct PerplexityOptions: Sendable {
    public var contextLength: Int = 512
    /// At most this many chunks (nil: every whole chunk of the text).
    public var maxChunks: Int? = nil
    public var scoring: PerplexityScoring = .half
    /// The token that replaces each chunk's first token (llama.cpp does this when the vocabulary
    /// adds BOS); nil leaves chunks as they are.
    public var bosToken: Int? = nil

    public init(contextLength: Int = 512, maxChunks: Int? = nil, scoring: PerplexityScoring = .half, bosToken: Int? = nil) {
        self.contextLength = contextLength
        self.maxChunks = maxChunks
        self.scoring = scoring
        self.bosToken = bosToken
    }
}

/// The result, with the field names `perplexity --json` prints (docs/cli.md).
public struct PerplexityResult: Sendable, Codable, Equatable {
    public var ppl: Double
    public var pplStderr: Double
    public var nllMean: Double
    public var tokensScored: Int
    public var chunks: Int
    public var ctx: Int
    public var scoring: PerplexityScoring
    public var seconds: Double
    public var tokensPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case ppl, pplStderr = "ppl_stderr", nllMean = "nll_mean", tokensScored = "tokens_scored", chunks, ctx,
             scoring, seconds, tokensPerSecond = "tokens_per_second"
    }
}

/// Running sums from which llama.cpp's estimate and its standard error are computed.
public struct NLLAccumulator: Sendable {
    public private(set) var sum: Double = 0
    public private(set) var sumSquares: Double = 0
    public private(set) var count = 0

    public init() {}

    public mutating func add(_ nll: Double) {
        sum += nll
        sumSquares += nll * nll
        count += 1
    }

    public mutating func add(_ values: [Double]) { for v in values { add(v) } }

    public var mean: Double { count > 0 ? sum / Double(count) : .nan }
    public var perplexity: Double { exp(mean) }

    /// llama.cpp (tools/perplexity): the standard error of the mean NLL, sqrt(var / (n - 1)),
    /// propagated to PPL by the derivative of exp: PPL * stderr(NLL).
    public var perplexityStandardError: Double {
        guard count > 1 else { return .nan }
        let m = mean
        let variance = sumSquares / Double(count) - m * m
        guard variance > 0 else { return 0 }
        return perplexity * (variance / Double(count - 1)).squareRoot()
    }
}

/// The chunks llama.cpp evaluates: floor(tokens / n_ctx) non-overlapping windows, each with its
/// first token replaced by BOS when the vocabulary adds one.
public struct PerplexityPlan: Sendable {
    public let chunks: [[Int]]
    public let scored: Range<Int>
    public let options: PerplexityOptions

    public init(tokens: [Int], options: PerplexityOptions) throws {
        let n = options.contextLength
        guard n >= 4 else { throw BamError.usage("\(PerplexityOptions.Field.contextLength)", expected: "at least 4", found: "\(n)") }
        var count = tokens.count / n
        guard count > 0 else {
            throw BamError.usage("the text is shorter than one context", expected: "at least \(n) tokens", found: "\(tokens.count) tokens",
                                 hint: "use a longer text or a smaller \(PerplexityOptions.Field.contextLength)")
        }
        if let m = options.maxChunks { count = min(count, max(1, m)) }
        chunks = (0..<count).map { c in
            var chunk = Array(tokens[(c * n)..<((c + 1) * n)])
            if let bos = options.bosToken { chunk[0] = bos }
            return chunk
        }
        scored = options.scoring == .half ? (n / 2)..<(n - 1) : 0..<(n - 1)
        self.options = options
    }

    public var tokensScored: Int { chunks.count * scored.count }
}

/// llama.cpp-compatible perplexity (docs/evaluation.md). `progress` is called after each chunk with the
/// number done and the running estimate.
public func perplexity(model: any ScoringModel, tokens: [Int], options: PerplexityOptions,
                       progress: ((_ done: Int, _ total: Int, _ runningPPL: Double) -> Void)? = nil) throws -> PerplexityResult {
    try perplexity(model: model, plan: PerplexityPlan(tokens: tokens, options: options), progress: progress)
}

/// Perplexity over the chunks of a plan built beforehand (`compare` builds each domain's plan
/// once and scores every model on it).
public func perplexity(model: any ScoringModel, plan: PerplexityPlan,
                       progress: ((_ done: Int, _ total: Int, _ runningPPL: Double) -> Void)? = nil) throws -> PerplexityResult {
    let options = plan.options
    let start = DispatchTime.now()
    var acc = NLLAccumulator()
    for (i, chunk) in plan.chunks.enumerated() {
        let nll = try model.negativeLogLikelihoods(chunk, positions: plan.scored)
        for v in nll where !v.isFinite {
            throw BamError(.numeric, "chunk \(i + 1): a non-finite log-likelihood (\(v)); the model produces NaN or infinite logits — check the weights with `bam-mix inspect`")
        }
        acc.add(nll)
        progress?(i + 1, plan.chunks.count, acc.perplexity)
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    let evaluated = plan.chunks.count * options.contextLength
    return PerplexityResult(ppl: acc.perplexity, pplStderr: acc.perplexityStandardError, nllMean: acc.mean,
                            tokensScored: acc.count, chunks: plan.chunks.count, ctx: options.contextLength,
                            scoring: options.scoring, seconds: seconds,
                            tokensPerSecond: seconds > 0 ? Double(evaluated) / seconds : 0)
}
