import BamModels
import BamPlots
import BamTokenizers
import Foundation

// `routes`: how a mixture model routes the tokens of each domain (docs/evaluation.md).
// Dimensions: L layers, E experts, K FFN top-k, T tokens.

public struct RoutesOptions: Sendable {
    /// Tokens per window; every window is run from an empty cache, as perplexity's chunks are.
    public var contextLength = 512
    /// At most this many windows per domain (nil: the whole text).
    public var maxChunks: Int? = nil
    /// Tokens of the per-token sample (from the start of each domain's text).
    public var sampleTokens = 64
    /// Replace each window's first token with BOS when the tokenizer adds one (as perplexity does).
    public var replaceWithBOS = true

    public init(contextLength: Int = 512, maxChunks: Int? = nil, sampleTokens: Int = 64, replaceWithBOS: Bool = true) {
        self.contextLength = contextLength
        self.maxChunks = maxChunks
        self.sampleTokens = sampleTokens
        self.replaceWithBOS = replaceWithBOS
    }
}

/// One layer's FFN routing over a domain's tokens.
public struct FeedForwardRoutingStats: Sendable, Codable, Equatable {
    /// Fraction of tokens whose first choice is expert e (sums to 1).
    public var top1Fraction: [Double]
    /// Fraction of all (token, slot) assignments of the top-K going to expert e (sums to 1);
    /// K times it is the fraction of tokens that have e among their K.
    public var topKFraction: [Double]
    /// Mean router probability of expert e (the dense softmax; sums to 1).
    public var meanProbability: [Double]
    /// Mean gate the expert's output is scaled by, over all tokens (0 where not chosen).
    public var meanGate: [Double]
    /// The distribution of each token's two most probable experts (an unordered pair), largest
    /// first; fractions sum to 1. Present when E >= 2.
    public var top2Pairs: [ExpertPairShare]
    /// Tokens that skipped the FFN (Switch routing: their expert was at capacity in their window);
    /// 0 for every other routing. The fractions above are of the router's choices, dropped tokens included.
    public var dropped: Int
    /// `dropped` over all tokens.
    public var droppedFraction: Double

    enum CodingKeys: String, CodingKey {
        case top1Fraction = "top1_fraction", topKFraction = "topk_fraction", meanProbability = "mean_probability",
             meanGate = "mean_gate", top2Pairs = "top2_pairs", dropped, droppedFraction = "dropped_fraction"
    }
}

public struct ExpertPairShare: Sendable, Codable, Equatable {
    public var experts: [Int]
    public var fraction: Double
}

/// One layer's attention routing (BAM's mixture of attention).
public struct AttentionRoutingStats: Sendable, Codable, Equatable {
    /// Mean weight g_j(x) each attention expert's output gets (soft: the softmax; top-k: the
    /// renormalised gate, 0 where not chosen); sums to 1.
    public var meanWeight: [Double]
    /// Fraction of tokens whose largest weight is expert j.
    public var top1Fraction: [Double]

    enum CodingKeys: String, CodingKey { case meanWeight = "mean_weight", top1Fraction = "top1_fraction" }
}

public struct LayerRouting: Sendable, Codable, Equatable {
    public var layer: Int
    public var ffn: FeedForwardRoutingStats?
    public var attention: AttentionRoutingStats?
}

/// One token of the per-token sample.
public struct SampleToken: Sendable, Codable, Equatable {
    public var id: Int
    /// The token's text (decoded in context, so multi-byte characters split over tokens show
    /// on the token that completes them).
    public var text: String
    /// Per layer: the chosen FFN experts, most probable first.
    public var ffnExperts: [[Int]]?
    /// Per layer: the FFN router probabilities (E), rounded to 4 decimals.
    public var ffnProbabilities: [[Double]]?
    /// Per layer: the attention experts' weights (E), rounded to 4 decimals.
    public var attentionWeights: [[Double]]?

    enum CodingKeys: String, CodingKey {
        case id, text, ffnExperts = "ffn_experts", ffnProbabilities = "ffn_probabilities",
             attentionWeights = "attention_weights"
    }
}

public struct DomainRouting: Sendable, Codable, Equatable {
    public var name: String
    public var file: String
    public var tokens: Int
    public var chunks: Int
    public var layers: [LayerRouting]
    public var sample: [SampleToken]
}

public struct RoutingReport: Sendable, Codable, Equatable {
    public var schema = "bam-mix.routes/1"
    public var model: String
    public var kind: String
    public var layers: Int
    public var ffnExperts: Int?
    public var ffnTopK: Int?
    /// The FFN routing in words (FeedForwardRouting.summary); Switch's capacity applies per window of `ctx` tokens.
    public var ffnRouting: String?
    public var attentionExperts: Int?
    public var ctx: Int
    public var domains: [DomainRouting]

    enum CodingKeys: String, CodingKey {
        case schema, model, kind, layers, ffnExperts = "ffn_experts", ffnTopK = "ffn_top_k", ffnRouting = "ffn_routing",
             attentionExperts = "attention_experts", ctx, domains
    }
}

/// Accumulates one layer's routing decisions.
struct LayerAccumulator {
    var tokens = 0
    var top1: [Int]
    var topK: [Int]
    var assignments = 0
    var probability: [Double]
    var gate: [Double]
    var pairs: [Int: Int] = [:]   // key a * E + b, a < b
    var dropped = 0

    init(E: Int) {
        top1 = [Int](repeating: 0, count: E)
        topK = top1
        probability = [Double](repeating: 0, count: E)
        gate = probability
    }

    mutating func add(_ d: RoutingDecision) {
        let E = d.E
        dropped += d.droppedCount
        for t in 0..<d.T {
            tokens += 1
            let chosen = d.chosen[t]
            if let first = chosen.first { top1[first] += 1 }
            for e in chosen { topK[e] += 1 }
            assignments += chosen.count
            var a = -1, b = -1
            for e in 0..<E {
                let p = d.probabilities[t * E + e]
                probability[e] += Double(p)
                gate[e] += Double(d.weights[t * E + e])
                // The two most probable experts, ties to the lower index (as `route` orders them).
                if a < 0 || p > d.probabilities[t * E + a] { b = a; a = e } else if b < 0 || p > d.probabilities[t * E + b] { b = e }
            }
            if E >= 2 { pairs[min(a, b) * E + max(a, b), default: 0] += 1 }
        }
    }

    func feedForward(E: Int) -> FeedForwardRoutingStats {
        let n = Double(max(1, tokens))
        let pairShares = pairs.map { ExpertPairShare(experts: [$0.key / E, $0.key % E], fraction: Double($0.value) / n) }
            .sorted { $0.fraction != $1.fraction ? $0.fraction > $1.fraction : $0.experts.lexicographicallyPrecedes($1.experts) }
        return FeedForwardRoutingStats(
            top1Fraction: top1.map { Double($0) / n }, topKFraction: topK.map { Double($0) / Double(max(1, assignments)) },
            meanProbability: probability.map { $0 / n }, meanGate: gate.map { $0 / n }, top2Pairs: pairShares,
            dropped: dropped, droppedFraction: Double(dropped) / n)
    }

    func attention() -> AttentionRoutingStats {
        let n = Double(max(1, tokens))
        return AttentionRoutingStats(meanWeight: gate.map { $0 / n }, top1Fraction: top1.map { Double($0) / n })
    }
}

/// Runs `model` over each domain's tokens in windows of `contextLength` (each from an empty cache;
/// the last, shorter window included, so every token is routed) and collects the routers'
/// decisions. `tokenizer` decodes the per-token sample.
public func analyseRouting(model: Transformer, modelName: String, tokenizer: Tokenizer, domains: [DomainSpec],
                           options: RoutesOptions = RoutesOptions(),
                           progress: ((_ domain: String, _ done: Int, _ total: Int) -> Void)? = nil) throws -> RoutingReport {
    let c = model.config
    guard c.moe != nil || c.moa != nil else {
        throw BamError.unsupported("\(modelName) is a dense \(c.family.rawValue) model: it has no routers to analyse; `routes` needs a mixture (BTX/Mixtral or BAM, from `bam-mix mix`)")
    }
    guard options.contextLength >= 1 else {
        throw BamError.usage("\(RoutesOptions.Field.contextLength)", expected: "at least 1", found: "\(options.contextLength)")
    }
    try c.checkSequenceLength(options.contextLength)
    let L = c.layers
    let bos = options.replaceWithBOS && tokenizer.addsBOS ? tokenizer.bosTokenId : nil
    var out: [DomainRouting] = []
    for domain in domains {
        let tokens = perplexityTokens(try domain.readText(), tokenizer: tokenizer)
        guard !tokens.isEmpty else { throw BamError.usage("domain `\(domain.name)` (\(domain.file)) has no tokens") }
        var windows = stride(from: 0, to: tokens.count, by: options.contextLength).map {
            Array(tokens[$0..<min(tokens.count, $0 + options.contextLength)])
        }
        if let m = options.maxChunks { windows = Array(windows.prefix(max(1, m))) }
        if let bos { for i in windows.indices { windows[i][0] = bos } }
        var ffn = (0..<L).map { _ in LayerAccumulator(E: c.moe?.experts ?? 0) }
        var attention = (0..<L).map { _ in LayerAccumulator(E: c.moa?.experts ?? 0) }
        let sampleCount = min(options.sampleTokens, windows[0].count)
        var sampleFFN: [RoutingDecision] = [], sampleAttention: [RoutingDecision] = []
        // Parallel blocks report attention and FFN routing from two Dispatch workers at once.
        let lock = NSLock()
        for (w, window) in windows.enumerated() {
            _ = try model.finalHidden(tokens: window, cache: model.makeCache(capacity: window.count), outputRows: 0..<0) { event in
                lock.lock()
                defer { lock.unlock() }
                switch event {
                case .feedForwardRouting(let l, let d):
                    ffn[l].add(d)
                    if w == 0 { sampleFFN.append(d) }
                case .attentionRouting(let l, let d):
                    attention[l].add(d)
                    if w == 0 { sampleAttention.append(d) }
                case .hidden: break
                }
            }
            progress?(domain.name, w + 1, windows.count)
        }
        let sampleIds = Array(windows[0].prefix(sampleCount))
        let texts = decodePieces(sampleIds, tokenizer: tokenizer)
        let sample = sampleIds.enumerated().map { t, id -> SampleToken in
            func round4(_ x: Float) -> Double { (Double(x) * 1e4).rounded() / 1e4 }
            let f = sampleFFN, a = sampleAttention
            return SampleToken(
                id: id, text: texts[t],
                ffnExperts: f.isEmpty ? nil : f.map { $0.dispatched(t) },
                ffnProbabilities: f.isEmpty ? nil : f.map { d in (0..<d.E).map { round4(d.probabilities[t * d.E + $0]) } },
                attentionWeights: a.isEmpty ? nil : a.map { d in (0..<d.E).map { round4(d.weights[t * d.E + $0]) } })
        }
        let layers = (0..<L).map { l in
            LayerRouting(layer: l, ffn: c.moe.map { ffn[l].feedForward(E: $0.experts) },
                         attention: c.moa.map { _ in attention[l].attention() })
        }
        out.append(DomainRouting(name: domain.name, file: domain.file, tokens: windows.reduce(0) { $0 + $1.count },
                                 chunks: windows.count, layers: layers, sample: sample))
    }
    return RoutingReport(model: modelName, kind: OpenedModel.describe(c), layers: L, ffnExperts: c.moe?.experts,
                         ffnTopK: c.moe?.topK, ffnRouting: c.moe.map { $0.routing.summary(experts: $0.experts) },
                         attentionExperts: c.moa?.experts, ctx: options.contextLength, domains: out)
}

/// Each token's text as it appears in the decoded sequence: the difference between decoding the
/// first t+1 tokens and the first t (byte-level tokens that split a UTF-8 character would decode
/// to U+FFFD alone); falls back to decoding the token by itself when the prefixes do not nest.
func decodePieces(_ ids: [Int], tokenizer: Tokenizer) -> [String] {
    var out: [String] = []
    var previous = ""
    for t in ids.indices {
        let current = tokenizer.decode(Array(ids[0...t]))
        if current.hasPrefix(previous) && !previous.hasSuffix("\u{FFFD}") {
            out.append(String(current.dropFirst(previous.count)))
        } else {
            out.append(tokenizer.decode([ids[t]]))
        }
        previous = current
    }
    return out
}

extension RoutingReport {
    func expertNames(_ n: Int) -> [String] { (0..<n).map { "expert \($0)" } }

    /// `routes --svg`: one heatmap panel per domain (rows = layers, columns = experts) of the
    /// FFN top-k share, and for BAM one more panel per domain of the mean attention weight.
    public func heatmap() -> Heatmap {
        let E = max(ffnExperts ?? 0, attentionExperts ?? 0)
        var panels: [Heatmap.Panel] = []
        for d in domains {
            if ffnExperts != nil {
                panels.append(Heatmap.Panel(title: "\(d.name) · FFN", values: d.layers.map { l in pad(l.ffn?.topKFraction ?? [], E) }))
            }
        }
        for d in domains {
            if attentionExperts != nil {
                panels.append(Heatmap.Panel(title: "\(d.name) · attention", values: d.layers.map { l in pad(l.attention?.meanWeight ?? [], E) }))
            }
        }
        var h = Heatmap(
            title: "Routing of \(model): " + (attentionExperts != nil ? "FFN top-\(ffnTopK ?? 0) share and mean attention weight" : "FFN top-\(ffnTopK ?? 0) share")
                + " per layer and expert",
            rowLabels: (0..<layers).map { "layer \($0)" }, columnLabels: (0..<E).map { "E\($0)" },
            xLabel: "expert", yLabel: "layer", valueLabel: "share", panels: panels)
        h.minimum = 0
        h.columnsOfPanels = max(1, min(4, domains.count))
        return h
    }

    private func pad(_ v: [Double], _ n: Int) -> [Double] { v + [Double](repeating: .nan, count: max(0, n - v.count)) }

    /// The per-token sample, coloured by each token's top-1 FFN expert at `layer` (default: the
    /// last layer), with every layer's choice in the hover text.
    public func tokenText(layer: Int? = nil) -> TokenText {
        let l = layer ?? (layers - 1)
        let E = ffnExperts ?? attentionExperts ?? 0
        let useFFN = ffnExperts != nil
        let blocks = domains.map { d in
            TokenText.Block(label: d.name, tokens: d.sample.map { s in
                var tip = "id \(s.id) \(debugQuoted(s.text))"
                if let experts = s.ffnExperts, let probs = s.ffnProbabilities {
                    for (i, chosen) in experts.enumerated() {
                        tip += "\nlayer \(i) FFN: " + chosen.map { "E\($0) \(formatNumber(probs[i][$0], digits: 3))" }.joined(separator: ", ")
                    }
                }
                if let weights = s.attentionWeights {
                    for (i, w) in weights.enumerated() {
                        tip += "\nlayer \(i) attention: " + w.enumerated().map { "E\($0) \(formatNumber($1, digits: 3))" }.joined(separator: ", ")
                    }
                }
                let category: Int?
                if useFFN { category = s.ffnExperts?[safe: l]?.first } else {
                    category = s.attentionWeights?[safe: l].map { w in w.indices.max { w[$0] < w[$1] } ?? 0 }
                }
                return TokenText.Token(text: s.text, category: category, tooltip: tip)
            })
        }
        return TokenText(title: "Per-token routing of \(model), layer \(l) (\(useFFN ? "top-1 FFN expert" : "largest attention weight")); hover for every layer",
                         legend: expertNames(E), blocks: blocks)
    }

    /// The HTML report of `routes --html`: the heatmap, the per-token sample, and per domain a
    /// table of the top-2 expert pairs per layer.
    public func htmlReport(layer: Int? = nil) -> String {
        var page = HTMLPage(title: "Routing of \(model)")
        page.paragraph("\(kind); \(layers) layers; windows of \(ctx) tokens. " + domains.map { "\($0.name): \($0.tokens) tokens" }.joined(separator: ", "))
        page.heading("Expert share per layer")
        page.svg(heatmap().svg())
        page.heading("Per-token routing")
        page.fragment(tokenText(layer: layer).htmlFragment())
        if ffnExperts != nil {
            page.heading("Top-2 expert pairs (share of tokens)")
            for d in domains {
                page.fragment("<h3>\(xmlEscaped(d.name))</h3>\n")
                let pairs = Set(d.layers.flatMap { $0.ffn?.top2Pairs.map(\.experts) ?? [] }).sorted { $0.lexicographicallyPrecedes($1) }
                page.table(header: ["layer"] + pairs.map { "E\($0[0])+E\($0[1])" }, rows: d.layers.map { l in
                    ["\(l.layer)"] + pairs.map { p in
                        formatNumber(l.ffn?.top2Pairs.first { $0.experts == p }?.fraction ?? 0, digits: 3)
                    }
                })
            }
        }
        return page.document()
    }
}

func debugQuoted(_ s: String) -> String {
    var out = "\""
    for ch in s.unicodeScalars {
        switch ch {
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        case "\"": out += "\\\""
        default: out.unicodeScalars.append(ch)
        }
    }
    return out + "\""
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
