import BamModels
import Foundation

/// `bam-mix mix --check-text`: is a fresh mixture usable at once? The perplexity of a reference
/// (expert 0, by convention the seed) and of the mixture on the same chunks of a text, and how
/// much the mixture's FFN gates scale its experts' outputs (docs/mixing.md, "Mixtures usable at once").
public struct MixCheck: Sendable {
    public var reference: PerplexityResult
    public var mixture: PerplexityResult
    /// Per FFN mixture layer, the mean over the first chunk's tokens of the sum of the chosen gates.
    public var gateMass: [Double]
    /// Per layer, the factor the mixture's expert down projections carry (empty: none).
    public var expertScales: [Double]

    /// mixture / reference perplexity - 1 (0.03: the mixture is 3 % worse).
    public var relativeChange: Double { mixture.ppl / reference.ppl - 1 }

    /// Scores `reference` and `mixture` (checkpoint paths) on `text`, llama.cpp-style chunks of
    /// `contextLength` tokens (at most `maxChunks`), through the mixture's tokenizer.
    public static func run(text: String, reference: String, mixture: String, expertScales: [Double] = [],
                           contextLength: Int = 256, maxChunks: Int? = 16) throws -> MixCheck {
        let mixed = try Checkpoint.open(mixture)
        let ref = try Checkpoint.open(reference)
        let tokenizer = try mixed.loadTokenizer()
        let tokens = perplexityTokens(text, tokenizer: tokenizer)
        let ctx = min(contextLength, mixed.config.maxPositions, ref.config.maxPositions)
        let plan = try PerplexityPlan(tokens: tokens, options: PerplexityOptions(
            contextLength: ctx, maxChunks: maxChunks, scoring: .half, bosToken: tokenizer.addsBOS ? tokenizer.bosTokenId : nil))
        let refResult = try perplexity(model: try Transformer.load(ref), plan: plan)
        let model = try Transformer.load(mixed)
        let mixResult = try perplexity(model: model, plan: plan)
        var mass: [Int: (sum: Double, count: Int)] = [:]
        let chunk = plan.chunks[0]
        _ = try model.forward(tokens: chunk, cache: model.makeCache(capacity: chunk.count), outputRows: 0..<0) { event in
            if case let .feedForwardRouting(layer, d) = event {
                var s = 0.0
                for w in d.weights { s += Double(w) }
                mass[layer, default: (0, 0)].sum += s
                mass[layer, default: (0, 0)].count += d.T
            }
        }
        let gateMass = mass.keys.sorted().map { mass[$0]!.sum / Double(max(1, mass[$0]!.count)) }
        return MixCheck(reference: refResult, mixture: mixResult, gateMass: gateMass, expertScales: expertScales)
    }

    /// What `mix --check-text` prints.
    public var lines: [String] {
        func ppl(_ r: PerplexityResult) -> String { String(format: "%.3f ± %.3f", r.ppl, r.pplStderr) }
        var out = [
            "check: \(reference.tokensScored) tokens scored (\(reference.chunks) chunks of \(reference.ctx), second halves)",
            "  expert 0 perplexity \(ppl(reference))",
            "  mixture  perplexity \(ppl(mixture)) (" + String(format: "%+.1f %%", 100 * relativeChange) + " against expert 0)",
        ]
        if !gateMass.isEmpty {
            let mean = gateMass.reduce(0, +) / Double(gateMass.count)
            var line = String(format: "  FFN gates sum to %.3f per token on average (layers %.3f ... %.3f)", mean,
                              gateMass.min()!, gateMass.max()!)
            if expertScales.count == gateMass.count, expertScales.contains(where: { $0 != 1 }) {
                let effective = zip(gateMass, expertScales).map { $0 * $1 }
                line += String(format: "; with the experts' scaling the FFN outputs are %.3f times their experts' (layers %.3f ... %.3f)",
                               effective.reduce(0, +) / Double(effective.count), effective.min()!, effective.max()!)
            }
            out.append(line)
        }
        if relativeChange > 0.05 {
            out.append("  WARNING: the fresh mixture is more than 5 % worse than expert 0 on this text; it needs finetuning before use")
        }
        return out
    }
}
