import BamModels
import BamPlots
import BamTokenizers
import Foundation

// `compare`: per-domain perplexity of several models on exactly the same token chunks, with the
// models' size, compute and measured speed and memory (docs/evaluation.md has the JSON schema).

public struct CompareOptions: Sendable {
    public var contextLength = 512
    public var maxChunks: Int? = nil
    public var scoring: PerplexityScoring = .half
    /// Replace each chunk's first token with BOS when the tokenizer adds one (llama.cpp).
    public var replaceWithBOS = true
    /// BTM top-k for ensembles whose spec has no `k=`.
    public var btmTopK = 1
    /// The type every model's matrices are kept in (`--weights`).
    public var weights: WeightLoading = .stored
    /// The type every model's KV cache keeps (`--kv-cache`).
    public var kvCache: KVCacheType = .f32

    public init(contextLength: Int = 512, maxChunks: Int? = nil, scoring: PerplexityScoring = .half,
                replaceWithBOS: Bool = true, btmTopK: Int = 1, weights: WeightLoading = .stored, kvCache: KVCacheType = .f32) {
        self.weights = weights
        self.kvCache = kvCache
        self.contextLength = contextLength
        self.maxChunks = maxChunks
        self.scoring = scoring
        self.replaceWithBOS = replaceWithBOS
        self.btmTopK = btmTopK
    }
}

/// One model's perplexity on one domain.
public struct DomainPerplexity: Sendable, Codable, Equatable {
    public var domain: String
    public var ppl: Double
    public var pplStderr: Double
    public var nllMean: Double
    public var tokensScored: Int
    public var chunks: Int
    public var seconds: Double
    public var tokensPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case domain, ppl, pplStderr = "ppl_stderr", nllMean = "nll_mean", tokensScored = "tokens_scored", chunks,
             seconds, tokensPerSecond = "tokens_per_second"
    }
}

public struct ComparedModel: Sendable, Codable, Equatable {
    public var name: String
    public var spec: String
    public var kind: String
    public var tokenizer: String
    /// True when this model's tokenizer differs from the reference tokenisation (the one most
    /// models share): it was scored on its own tokens, so its perplexity is per *its* token and
    /// not directly comparable with the others'.
    public var ownTokenization: Bool
    public var totalParameters: Int
    public var activeParameters: Int
    public var flopsPerToken: Double
    public var results: [DomainPerplexity]
    /// The arithmetic mean of the per-domain perplexities (the papers' "Avg" column) and its
    /// standard error sqrt(sum_d se_d^2) / D (domains independent).
    public var averagePPL: Double
    public var averagePPLStderr: Double
    /// Evaluated tokens (chunks x ctx, all domains) per second of forward passes.
    public var tokensPerSecond: Double
    public var evalSeconds: Double
    public var loadSeconds: Double
    /// Peak resident memory of the process while this model was loaded and evaluated, and the
    /// resident size just before it was loaded (the difference is what the model added).
    public var peakMemoryBytes: Int
    public var memoryBeforeBytes: Int
    public var memoryMethod: String
    /// BTM only: how many scored positions chose each expert.
    public var btmSelections: [Int]?

    enum CodingKeys: String, CodingKey {
        case name, spec, kind, tokenizer, ownTokenization = "own_tokenization", totalParameters = "total_parameters",
             activeParameters = "active_parameters", flopsPerToken = "flops_per_token", results,
             averagePPL = "average_ppl", averagePPLStderr = "average_ppl_stderr",
             tokensPerSecond = "tokens_per_second", evalSeconds = "eval_seconds", loadSeconds = "load_seconds",
             peakMemoryBytes = "peak_memory_bytes", memoryBeforeBytes = "memory_before_bytes",
             memoryMethod = "memory_method", btmSelections = "btm_selections"
    }

    public func result(_ domain: String) -> DomainPerplexity? { results.first { $0.domain == domain } }
}

public struct ComparedDomain: Sendable, Codable, Equatable {
    public var name: String
    public var file: String
    public var bytes: Int
    /// Tokens of the reference tokenisation (with BOS when it adds one), chunks and scored tokens.
    public var tokens: Int
    public var chunks: Int
    public var tokensScored: Int

    enum CodingKeys: String, CodingKey {
        case name, file, bytes, tokens, chunks, tokensScored = "tokens_scored"
    }
}

public struct ComparisonReport: Sendable, Codable, Equatable {
    public var schema = "bam-mix.compare/1"
    public var ctx: Int
    public var scoring: PerplexityScoring
    public var maxChunks: Int?
    public var domains: [ComparedDomain]
    public var models: [ComparedModel]
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case schema, ctx, scoring, maxChunks = "max_chunks", domains, models, seconds
    }

    /// Which way a column improves.
    public enum Better: Sendable { case lower, higher }

    /// The models with the best `value` (all of them on a tie; none when every model has the same
    /// value, which marks nothing). Models with their own tokenisation take no part in perplexity
    /// columns: their numbers are per a different token.
    public func best(_ value: (ComparedModel) -> Double?, _ better: Better, perplexity: Bool) -> Set<Int> {
        var values: [(Int, Double)] = []
        for (i, m) in models.enumerated() {
            if perplexity && m.ownTokenization { continue }
            guard let v = value(m), v.isFinite else { continue }
            values.append((i, v))
        }
        guard let target = better == .lower ? values.map(\.1).min() : values.map(\.1).max() else { return [] }
        let winners = Set(values.filter { $0.1 == target }.map(\.0))
        return winners.count == values.count && values.count > 1 ? [] : winners
    }

    /// The grouped bar chart of `compare --svg`: perplexity per domain (groups) and model (bars),
    /// with ± one standard error, the average as the last group.
    public func perplexityChart(title: String? = nil) -> BarChart {
        let categories = domains.map(\.name) + (domains.count > 1 ? ["average"] : [])
        let series = models.map { m -> BarChart.Series in
            var values: [Double?] = domains.map { m.result($0.name)?.ppl }
            var errors: [Double?] = domains.map { m.result($0.name)?.pplStderr }
            if domains.count > 1 {
                values.append(m.averagePPL)
                errors.append(m.averagePPLStderr)
            }
            return BarChart.Series(name: m.name + (m.ownTokenization ? " (own tokens)" : ""), values: values, errors: errors)
        }
        return BarChart(title: title ?? "Perplexity per domain (ctx \(ctx), \(scoring.rawValue) scoring; lower is better)",
                        xLabel: "domain", yLabel: "perplexity", categories: categories, series: series)
    }
}

/// Where `compareModels` is; `done` and `total` count chunks over all models and domains.
public struct CompareProgress: Sendable {
    public var model: String
    public var domain: String
    public var done: Int
    public var total: Int
    public var runningPPL: Double
}

/// Evaluates every model on every domain (llama.cpp perplexity, the same chunks for every model
/// that shares the reference tokenisation). Each domain is read once and tokenised once per
/// distinct tokenizer; each model is loaded once, evaluated on every domain, and released
/// before the next is loaded (so its peak memory is its own).
public func compareModels(_ specs: [ModelSpec], domains: [DomainSpec], options: CompareOptions = CompareOptions(),
                          progress: ((CompareProgress) -> Void)? = nil) throws -> ComparisonReport {
    let started = DispatchTime.now()
    guard !specs.isEmpty else { throw BamError.usage("\(CompareOptions.Field.models) is empty", expected: "at least one model", found: "none") }
    guard !domains.isEmpty else { throw BamError.usage("\(CompareOptions.Field.domains) is empty", expected: "at least one domain", found: "none") }
    for (i, s) in specs.enumerated() where specs[..<i].contains(where: { $0.name == s.name }) {
        throw BamError.usage("two models are named `\(s.name)`", hint: "give each entry of \(CompareOptions.Field.models) a distinct name")
    }
    for (i, d) in domains.enumerated() where domains[..<i].contains(where: { $0.name == d.name }) {
        throw BamError.usage("two domains are named `\(d.name)`", hint: "give each entry of \(CompareOptions.Field.domains) a distinct name")
    }
    // Optional so that each model's checkpoints (their memory-mapped files) can be dropped once it
    // has been evaluated: mapped pages it touched count as resident until they are unmapped.
    var opened: [OpenedModel?] = try specs.map { try OpenedModel(spec: $0, defaultBTMTopK: options.btmTopK) }
    let texts = try domains.map { try $0.readText() }

    // Tokenise each domain once per distinct tokenizer file, then merge tokenizers that produce
    // identical ids (and BOS) on every domain: those models see exactly the same chunks.
    struct Tokenisation {
        var tokenizer: Tokenizer
        var tokens: [[Int]]
        var bos: Int?
        var models: [Int]
    }
    var tokenisations: [Tokenisation] = []
    var byIdentity: [Data: Int] = [:]
    var modelTokenisation = [Int](repeating: 0, count: opened.count)
    for (i, m) in opened.map({ $0! }).enumerated() {
        guard let identity = m.primary.tokenizerIdentity() else {
            throw BamError.usage("model `\(m.spec.name)` (\(m.primary.path.path)) has no tokenizer.json; compare tokenises the domain texts with each model's tokenizer — add the tokenizer files of the model it came from")
        }
        let j: Int
        if let known = byIdentity[identity] {
            j = known
        } else {
            let tokenizer = try m.loadTokenizer()
            let tokens = texts.map { perplexityTokens($0, tokenizer: tokenizer) }
            let bos = options.replaceWithBOS && tokenizer.addsBOS ? tokenizer.bosTokenId : nil
            if let same = tokenisations.firstIndex(where: { $0.tokens == tokens && $0.bos == bos }) {
                j = same
            } else {
                tokenisations.append(Tokenisation(tokenizer: tokenizer, tokens: tokens, bos: bos, models: []))
                j = tokenisations.count - 1
            }
            byIdentity[identity] = j
        }
        tokenisations[j].models.append(i)
        modelTokenisation[i] = j
    }
    // The reference: the tokenisation most models share (ties: the first model's).
    let reference = tokenisations.indices.max { a, b in
        tokenisations[a].models.count != tokenisations[b].models.count
            ? tokenisations[a].models.count < tokenisations[b].models.count : a > b
    }!

    // Plans (chunks) per tokenisation and domain, built once.
    var plans: [[PerplexityPlan]] = []
    for t in tokenisations {
        plans.append(try zip(domains, t.tokens).map { domain, tokens in
            do {
                return try PerplexityPlan(tokens: tokens, options: PerplexityOptions(
                    contextLength: options.contextLength, maxChunks: options.maxChunks, scoring: options.scoring, bosToken: t.bos))
            } catch var e as BamError {
                // The same error, said of this domain's text.
                e.what = "domain `\(domain.name)`: " + e.what
                e.file = e.file ?? domain.file
                throw e
            }
        })
    }
    let total = opened.indices.reduce(0) { acc, i in acc + plans[modelTokenisation[i]].reduce(0) { $0 + $1.chunks.count } }
    var done = 0

    /// Loads model i, evaluates it on every domain and releases it (the model lives only in here).
    func evaluate(_ i: Int, monitor: PeakMemoryMonitor) throws -> ComparedModel {
        let m = opened[i]!, t = modelTokenisation[i]
        let loadStart = DispatchTime.now()
        let model = try m.load(documentLength: options.contextLength, tokenizer: tokenisations[t].tokenizer, weights: options.weights,
                                kvCache: options.kvCache)
        let loadSeconds = seconds(since: loadStart)
        var results: [DomainPerplexity] = []
        for (d, domain) in domains.enumerated() {
            let before = done
            let r = try perplexity(model: model, plan: plans[t][d]) { chunk, _, ppl in
                done = before + chunk
                progress?(CompareProgress(model: m.spec.name, domain: domain.name, done: done, total: total, runningPPL: ppl))
            }
            results.append(DomainPerplexity(domain: domain.name, ppl: r.ppl, pplStderr: r.pplStderr, nllMean: r.nllMean,
                                            tokensScored: r.tokensScored, chunks: r.chunks, seconds: r.seconds,
                                            tokensPerSecond: r.tokensPerSecond))
        }
        let stats = m.statistics(context: options.contextLength)
        let evalSeconds = results.reduce(0) { $0 + $1.seconds }
        let evaluated = results.reduce(0) { $0 + $1.chunks } * options.contextLength
        let average = results.reduce(0) { $0 + $1.ppl } / Double(results.count)
        let averageStderr = results.reduce(0) { $0 + $1.pplStderr * $1.pplStderr }.squareRoot() / Double(results.count)
        let tokenizer = tokenisations[t].tokenizer
        return ComparedModel(
            name: m.spec.name, spec: m.spec.specString, kind: m.kind,
            tokenizer: tokenizer.kindDescription + ", \(tokenizer.vocabSize) tokens",
            ownTokenization: t != reference, totalParameters: stats.totalParameters,
            activeParameters: stats.activeParameters, flopsPerToken: stats.flopsPerToken, results: results,
            averagePPL: average, averagePPLStderr: averageStderr,
            tokensPerSecond: evalSeconds > 0 ? Double(evaluated) / evalSeconds : 0, evalSeconds: evalSeconds,
            loadSeconds: loadSeconds, peakMemoryBytes: 0, memoryBeforeBytes: monitor.startResident,
            memoryMethod: monitor.method.rawValue, btmSelections: (model as? BTMEnsemble)?.selections)
    }

    var models: [ComparedModel] = []
    for i in opened.indices {
        let monitor = PeakMemoryMonitor()
        monitor.start()
        var result = try evaluate(i, monitor: monitor)
        opened[i] = nil
        // The model has been released; the peak covers its loading and evaluation.
        result.peakMemoryBytes = monitor.stop()
        models.append(result)
    }
    let ref = tokenisations[reference]
    let comparedDomains = domains.enumerated().map { d, domain in
        ComparedDomain(name: domain.name, file: domain.file, bytes: texts[d].utf8.count, tokens: ref.tokens[d].count,
                       chunks: plans[reference][d].chunks.count, tokensScored: plans[reference][d].tokensScored)
    }
    return ComparisonReport(ctx: options.contextLength, scoring: options.scoring, maxChunks: options.maxChunks,
                            domains: comparedDomains, models: models, seconds: seconds(since: started))
}

func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}
