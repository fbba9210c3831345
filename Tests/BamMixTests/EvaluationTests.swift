import BamEvaluation
import BamMixing
import BamModels
import BamPlots
import BamTokenizers
import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Two small domain texts (Tests/Fixtures/eval) and the tiny Llama experts of the mixing tests.
enum EvalFixtures {
    static let prose = Fixtures.url("eval/prose.txt").path
    static let code = Fixtures.url("eval/code.txt").path
    static let domains = [DomainSpec(name: "prose", file: prose), DomainSpec(name: "code", file: code)]
    static let options = CompareOptions(contextLength: 64, maxChunks: 6)

    /// Perplexity of one checkpoint the way `bam-mix perplexity --text-file` computes it.
    static func perplexityOf(_ path: String, text: String, options: CompareOptions = options) throws -> PerplexityResult {
        let ckpt = try Checkpoint.open(path)
        let tokenizer = try ckpt.loadTokenizer()
        let tokens = perplexityTokens(try readTextFile(text), tokenizer: tokenizer)
        return try perplexity(model: try Transformer.load(ckpt), tokens: tokens, options: PerplexityOptions(
            contextLength: options.contextLength, maxChunks: options.maxChunks, scoring: options.scoring,
            bosToken: tokenizer.addsBOS ? tokenizer.bosTokenId : nil))
    }

    /// A copy of an expert directory with its tokenizer.json rewritten by `edit`.
    static func copy(_ expert: String, to dir: URL, editTokenizer edit: (String) -> String) throws -> String {
        try FileManager.default.copyItem(at: URL(fileURLWithPath: expert), to: dir)
        let tok = dir.appendingPathComponent("tokenizer.json")
        try Data(edit(try String(contentsOf: tok, encoding: .utf8)).utf8).write(to: tok)
        return dir.path
    }

    static func parseXML(_ s: String) throws -> XMLDocument { try XMLDocument(xmlString: s, options: []) }

    /// The values of attribute `name` on every element of the document.
    static func attributeValues(_ doc: XMLDocument, _ name: String) throws -> [String] {
        try doc.nodes(forXPath: "//@\(name)").compactMap(\.stringValue)
    }
}

@Suite("Evaluation: compare, BTM, routes")
struct EvaluationTests {
    @Test("compare gives each model the perplexity `perplexity` gives it, on the same chunks")
    func compareMatchesPerplexity() throws {
        let dir = try TemporaryDirectory()
        let btx = try MixFixtures.mix({ var o = MixOptions(method: .btx, experts: MixFixtures.llama, output: $0); o.seed = 3; return o }, in: dir)
        let models = [("seed", MixFixtures.llama[0]), ("e1", MixFixtures.llama[1]), ("btx", btx.path.path)]
        var steps: [CompareProgress] = []
        let report = try compareModels(models.map { ModelSpec(name: $0.0, source: .checkpoint($0.1)) },
                                       domains: EvalFixtures.domains, options: EvalFixtures.options) { steps.append($0) }
        #expect(report.models.map(\.name) == ["seed", "e1", "btx"])
        #expect(report.domains.map(\.chunks) == [6, 6])
        #expect(report.domains.map(\.tokensScored) == [6 * 31, 6 * 31])
        for (m, (name, path)) in models.enumerated() {
            let model = report.models[m]
            #expect(!model.ownTokenization)
            for domain in EvalFixtures.domains {
                let expected = try EvalFixtures.perplexityOf(path, text: domain.file)
                let got = try #require(model.result(domain.name))
                #expect(got.ppl == expected.ppl, "\(name) on \(domain.name)")
                #expect(got.pplStderr == expected.pplStderr)
                #expect(got.tokensScored == expected.tokensScored)
            }
            let ppls = model.results.map(\.ppl)
            #expect(abs(model.averagePPL - (ppls[0] + ppls[1]) / 2) < 1e-12)
            #expect(model.peakMemoryBytes > 0)
            #expect(model.tokensPerSecond > 0)
        }
        let btxStats = ModelStatistics(config: btx.config, context: 64)
        #expect(report.models[2].totalParameters == btxStats.totalParameters)
        #expect(report.models[2].activeParameters == btxStats.activeParameters)
        #expect(report.models[2].kind.hasPrefix("mixtral (FFN E=3 top-2"))
        // Progress counts every chunk of every model and domain once, in order.
        #expect(steps.last?.done == 3 * 12 && steps.last?.total == 3 * 12)
        #expect(zip(steps, steps.dropFirst()).allSatisfy { $0.done < $1.done })
        // The JSON schema: documented keys, and it decodes back to the same report.
        let data = try JSONEncoder().encode(report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["schema"] as? String == "bam-mix.compare/1")
        let first = try #require((object["models"] as? [[String: Any]])?.first)
        for key in ["name", "spec", "kind", "own_tokenization", "total_parameters", "active_parameters", "flops_per_token",
                    "results", "average_ppl", "average_ppl_stderr", "tokens_per_second", "peak_memory_bytes", "memory_method"] {
            #expect(first[key] != nil, "models[0].\(key)")
        }
        #expect(try JSONDecoder().decode(ComparisonReport.self, from: data) == report)
        // Best per column: the lowest perplexity.
        let lowest = report.models.indices.min { report.models[$0].averagePPL < report.models[$1].averagePPL }!
        #expect(report.best({ $0.averagePPL }, .lower, perplexity: true) == [lowest])
        #expect(report.best({ Double($0.totalParameters) }, .lower, perplexity: false) == [0, 1])
    }

    @Test("a model with another tokenizer is scored on its own tokens and flagged; an equivalent tokenizer file is not")
    func ownTokenization() throws {
        let dir = try TemporaryDirectory()
        // Swapping the ids of "e" and "t" tokenises differently (valid ids, same vocabulary size).
        let swapped = try EvalFixtures.copy(MixFixtures.llama[1], to: dir.file("swapped")) { json in
            let e = "\"e\": ", t = "\"t\": "
            var lines = json.components(separatedBy: "\n")
            let ie = lines.firstIndex { $0.trimmingCharacters(in: .whitespaces).hasPrefix(e) }!
            let it = lines.firstIndex { $0.trimmingCharacters(in: .whitespaces).hasPrefix(t) }!
            let idE = lines[ie].split(separator: ":")[1], idT = lines[it].split(separator: ":")[1]
            lines[ie] = "      \(e.dropLast(1))\(idT)"
            lines[it] = "      \(t.dropLast(1))\(idE)"
            return lines.joined(separator: "\n")
        }
        // The same tokenizer, re-serialised (another file, the same ids): shares the reference chunks.
        let reformatted = try EvalFixtures.copy(MixFixtures.llama[2], to: dir.file("reformatted")) { $0 + "\n\n" }
        let specs = [ModelSpec(name: "seed", source: .checkpoint(MixFixtures.llama[0])),
                     ModelSpec(name: "swapped", source: .checkpoint(swapped)),
                     ModelSpec(name: "e2", source: .checkpoint(reformatted))]
        let report = try compareModels(specs, domains: EvalFixtures.domains, options: EvalFixtures.options)
        #expect(report.models.map(\.ownTokenization) == [false, true, false])
        let expected = try EvalFixtures.perplexityOf(swapped, text: EvalFixtures.prose)
        #expect(report.models[1].result("prose")?.ppl == expected.ppl)
        #expect(report.models[2].result("prose")?.ppl == (try EvalFixtures.perplexityOf(MixFixtures.llama[2], text: EvalFixtures.prose)).ppl)
        // Own-tokenisation models are not candidates for the best perplexity.
        #expect(!report.best({ $0.averagePPL }, .lower, perplexity: true).contains(1))
    }

    @Test("perplexity tokenises special-token strings in the text as text, as llama-perplexity (parse_special = false)")
    func perplexityTokenisation() throws {
        let tokenizer = try Tokenizer(jsonData: Data(ByteLevelTokenizerBuilder.tokenizerJSON().utf8))
        #expect(tokenizer.encode("x<s>y") == [256, 120, 256, 121])   // HF: the special token is recognised
        #expect(perplexityTokens("x<s>y", tokenizer: tokenizer) == [256, 120, 60, 115, 62, 121])
        #expect(tokenizer.encode("x<s>y", addSpecialTokens: false, parseSpecialTokens: false) == [120, 60, 115, 62, 121])
    }

    @Test("model specs: paths, BTM lists with training texts and k, compare's NAME=SPEC")
    func modelSpecs() throws {
        #expect(try ModelSpec.parse("/m/a") == ModelSpec(name: "a", source: .checkpoint("/m/a")))
        #expect(try ModelSpec.parse("btm=/a@ta.txt,/b@tb.txt,k=2") == ModelSpec(name: "btm", source: .btm(
            experts: [.init(path: "/a", trainingText: "ta.txt"), .init(path: "/b", trainingText: "tb.txt")], topK: 2)))
        #expect(try ModelSpec.parse("/a,/b,k=all").source == .btm(experts: [.init(path: "/a"), .init(path: "/b")], topK: Int.max))
        #expect(try ModelSpec.parseNamed("seed=/m/seed") == ModelSpec(name: "seed", source: .checkpoint("/m/seed")))
        #expect(try ModelSpec.parseNamed("btm=/a@t") == ModelSpec(name: "btm", source: .btm(experts: [.init(path: "/a", trainingText: "t")], topK: nil)))
        #expect(try ModelSpec.parseNamed("ens=btm=/a,/b").name == "ens")
        #expect(try ModelSpec.parseNamed("ens=/a,/b").source == .btm(experts: [.init(path: "/a"), .init(path: "/b")], topK: nil))
        let round = try ModelSpec.parse("btm=/a@ta.txt,/b,k=3")
        #expect(try ModelSpec.parse(round.specString) == round)
        for (bad, found) in [("btm=", "an empty item"), ("btm=/a,,/b", "an empty item"), ("btm=/a,k=0", "k=0"), ("btm=/a@", "/a@"),
                             ("=x", "=x"), ("", "an empty spec")] {
            let e = bamError { _ = try ModelSpec.parseNamed(bad) }
            #expect(e?.kind == .usage && e?.found == found && e?.expected != nil, "\(bad): \(String(describing: e))")
        }
    }

    @Test("BTM of one expert is that expert")
    func btmOneExpert() throws {
        let spec = try ModelSpec.parse("btm=\(MixFixtures.llama[1])@\(EvalFixtures.code)")
        let opened = try OpenedModel(spec: spec)
        let model = try opened.load(documentLength: 64)
        for domain in EvalFixtures.domains {
            let tokenizer = try opened.loadTokenizer()
            let tokens = tokenizer.encode(try domain.readText(), addSpecialTokens: true)
            let got = try perplexity(model: model, tokens: tokens, options: PerplexityOptions(contextLength: 64, maxChunks: 6))
            let expected = try EvalFixtures.perplexityOf(MixFixtures.llama[1], text: domain.file)
            #expect(got.ppl == expected.ppl)
            #expect(got.pplStderr == expected.pplStderr)
        }
        #expect(opened.statistics(context: 64) == ModelStatistics(config: opened.primary.config, context: 64))
    }

    @Test("BTM with k = all experts averages the experts' probabilities (naive softmax of full logits)")
    func btmUniform() throws {
        let spec = try ModelSpec.parse("btm=" + MixFixtures.llama.joined(separator: ",") + ",k=all")
        let opened = try OpenedModel(spec: spec)
        let ensemble = try #require(try opened.load(documentLength: 64) as? BTMEnsemble)
        #expect(ensemble.router == nil && ensemble.topK == 3)
        let tokens = try opened.loadTokenizer().encode(try readTextFile(EvalFixtures.prose), addSpecialTokens: true)
        let chunk = Array(tokens[64..<128])
        let positions = 0..<63
        let got = try ensemble.negativeLogLikelihoods(chunk, positions: positions)
        // Naive: every expert's full (T, V) logits, softmax in Double, mean of the probabilities.
        let experts = try MixFixtures.llama.map { try Transformer.load(try Checkpoint.open($0)) }
        let logits = try experts.map { try $0.forward(tokens: chunk, cache: $0.makeCache(capacity: chunk.count)) }
        let V = experts[0].config.vocabSize
        var maxDiff = 0.0
        for p in positions {
            var mean = 0.0
            for l in logits {
                let row = (0..<V).map { Double(l.data[p * V + $0]) }
                let m = row.max()!
                let z = row.reduce(0) { $0 + exp($1 - m) }
                mean += exp(row[chunk[p + 1]] - m) / z / Double(experts.count)
            }
            maxDiff = max(maxDiff, abs(-log(mean) - got[p]))
        }
        #expect(maxDiff < 1e-5, "max |NLL diff| \(maxDiff)")
        // The ensemble's statistics: every expert stored, all three run per token.
        let stats = opened.statistics(context: 64)
        let one = ModelStatistics(config: experts[0].config, context: 64)
        #expect(stats.totalParameters == 3 * one.totalParameters && stats.activeParameters == 3 * one.activeParameters)
    }

    @Test("tf-idf routing: the incremental prefix similarities equal the naive twin, and top-1 BTM uses the chosen expert")
    func btmRouting() throws {
        let experts = Array(MixFixtures.llama[1...2])
        let spec = ModelSpec(name: "btm", source: .btm(experts: [.init(path: experts[0], trainingText: EvalFixtures.prose),
                                                                  .init(path: experts[1], trainingText: EvalFixtures.code)], topK: 1))
        let opened = try OpenedModel(spec: spec)
        let ensemble = try #require(try opened.load(documentLength: 64) as? BTMEnsemble)
        let router = try #require(ensemble.router)
        // idf and centroids as defined: documents of 64 tokens, smoothed idf.
        let tokenizer = try opened.loadTokenizer()
        let proseTokens = tokenizer.encode(try readTextFile(EvalFixtures.prose), addSpecialTokens: false)
        #expect(router.documentCounts[0] == (proseTokens.count + 63) / 64)
        let n = Double(router.documentCounts.reduce(0, +))
        let unseen = (0..<router.vocabularySize).first { v in !proseTokens.contains(v) && !tokenizer.encode(try! readTextFile(EvalFixtures.code), addSpecialTokens: false).contains(v) }!
        #expect(abs(router.idf[unseen] - (log(1 + n) + 1)) < 1e-12)
        #expect(router.centroids[0][unseen] == 0)

        for text in [EvalFixtures.prose, EvalFixtures.code] {
            let tokens = Array(tokenizer.encode(try readTextFile(text), addSpecialTokens: true).prefix(64))
            let fast = router.prefixSimilarities(tokens)
            for p in tokens.indices {
                let naive = router.similarities(context: Array(tokens[0...p]))
                for e in 0..<2 { #expect(abs(fast[p][e] - naive[e]) < 1e-12, "prefix \(p), expert \(e)") }
                #expect(TFIDFRouter.topK(fast[p], k: 1) == TFIDFRouter.topK(naive, k: 1))
            }
            // Each scored position's NLL is its chosen expert's.
            let models = try experts.map { try Transformer.load(try Checkpoint.open($0)) }
            let positions = 32..<63
            let nll = try models.map { try $0.negativeLogLikelihoods(tokens, positions: positions) }
            let got = try ensemble.negativeLogLikelihoods(tokens, positions: positions)
            let chosen = ensemble.choices(tokens, positions: positions)
            for (i, p) in positions.enumerated() {
                let e = TFIDFRouter.topK(router.similarities(context: Array(tokens[0...p])), k: 1)[0]
                #expect(chosen[i] == [e])
                #expect(got[i] == nll[e][i])
            }
        }
        // Prose contexts mostly pick the prose expert, code contexts the code expert.
        let proseChunk = Array(tokenizer.encode(try readTextFile(EvalFixtures.prose)).prefix(64))
        let codeChunk = Array(tokenizer.encode(try readTextFile(EvalFixtures.code)).prefix(64))
        #expect(ensemble.choices(proseChunk, positions: 32..<63).filter { $0 == [0] }.count > 20)
        #expect(ensemble.choices(codeChunk, positions: 32..<63).filter { $0 == [1] }.count > 20)
        // Routing needs the training texts.
        let noTexts = ModelSpec(name: "b", source: .btm(experts: experts.map { .init(path: $0) }, topK: 1))
        #expect(throws: BamError.self) { _ = try OpenedModel(spec: noTexts).load(documentLength: 64) }
    }

    @Test("compare scores a BTM ensemble beside its experts")
    func compareWithBTM() throws {
        let e = MixFixtures.llama
        let specs = [try ModelSpec.parseNamed("e1=\(e[1])"),
                     try ModelSpec.parseNamed("btm=\(e[1])@\(EvalFixtures.prose),\(e[2])@\(EvalFixtures.code)")]
        let report = try compareModels(specs, domains: EvalFixtures.domains, options: EvalFixtures.options)
        let btm = report.models[1]
        #expect(btm.kind == "btm (2 llama experts, top-1)")
        #expect(btm.btmSelections?.reduce(0, +) == 2 * 6 * 31)
        #expect(btm.totalParameters == 2 * report.models[0].totalParameters)
        #expect(btm.activeParameters == report.models[0].activeParameters)
    }

    @Test("routes: FFN and attention shares sum to 1 per layer; the sample decodes to the text")
    func routes() throws {
        let dir = try TemporaryDirectory()
        let btx = try MixFixtures.mix({ var o = MixOptions(method: .btx, experts: MixFixtures.llama, output: $0); o.seed = 5; return o }, in: dir)
        let bamDir = try TemporaryDirectory()
        let bam = try MixFixtures.mix({ var o = MixOptions(method: .bam, experts: MixFixtures.llama, output: $0); o.seed = 6; return o }, in: bamDir)
        for ckpt in [btx, bam] {
            let tokenizer = try ckpt.loadTokenizer()
            let report = try analyseRouting(model: try Transformer.load(ckpt), modelName: "m", tokenizer: tokenizer,
                                            domains: EvalFixtures.domains, options: RoutesOptions(contextLength: 64, maxChunks: 4, sampleTokens: 20))
            let E = 3, K = ckpt.config.moe!.topK
            #expect(report.ffnExperts == E && report.ffnTopK == K)
            #expect(report.attentionExperts == ckpt.config.moa?.experts)
            for d in report.domains {
                #expect(d.tokens == 4 * 64 && d.chunks == 4)
                #expect(d.layers.count == 2)
                for l in d.layers {
                    let f = try #require(l.ffn)
                    // Shares of counts are exact; the mean probability sums Float32 softmax rows.
                    for shares in [f.top1Fraction, f.topKFraction, f.top2Pairs.map(\.fraction)] {
                        #expect(abs(shares.reduce(0, +) - 1) < 1e-12)
                    }
                    #expect(abs(f.meanProbability.reduce(0, +) - 1) < 1e-6)
                    #expect(f.top2Pairs.allSatisfy { $0.experts.count == 2 && $0.experts[0] < $0.experts[1] })
                    if let a = l.attention {
                        #expect(abs(a.meanWeight.reduce(0, +) - 1) < 1e-5)
                        #expect(abs(a.top1Fraction.reduce(0, +) - 1) < 1e-12)
                    }
                    if K == 2 { #expect(abs(f.meanGate.reduce(0, +) - 1) < 1e-5) }
                }
                #expect(d.sample.count == 20)
                #expect(d.sample.allSatisfy { $0.ffnExperts?.count == 2 && $0.ffnExperts?[0].count == K })
                // The pieces concatenate to the decoded sample (this tokenizer has no decoder, so
                // decode joins tokens with spaces, as HF tokenizers does).
                #expect(d.sample.map(\.text).joined() == tokenizer.decode(d.sample.map(\.id)))
                #expect(d.sample.map(\.id) == Array(tokenizer.encode(try readTextFile(d.file)).prefix(20)))
            }
            // The heatmap and token figures are well-formed XML naming every domain.
            let heat = try EvalFixtures.parseXML(report.heatmap().svg())
            let series = try EvalFixtures.attributeValues(heat, "data-series")
            #expect(series.contains("prose · FFN") && series.contains("code · FFN"))
            #expect(series.contains("prose · attention") == (ckpt.config.moa != nil))
            let tokens = try EvalFixtures.parseXML(report.tokenText().svg())
            #expect(try EvalFixtures.attributeValues(tokens, "data-series") == ["prose", "code"])
            #expect(try tokens.nodes(forXPath: "//*[@class='token']").count == 40)
            let html = try EvalFixtures.parseXML(report.htmlReport())
            #expect(try html.nodes(forXPath: "//*[local-name()='span' and @title]").count >= 40)
            let json = try JSONEncoder().encode(report)
            #expect(try JSONDecoder().decode(RoutingReport.self, from: json) == report)
        }
        // A dense model has no routers.
        let dense = try Checkpoint.open(MixFixtures.llama[0])
        #expect(throws: BamError.self) {
            _ = try analyseRouting(model: try Transformer.load(dense), modelName: "d", tokenizer: try dense.loadTokenizer(),
                                   domains: EvalFixtures.domains)
        }
    }
}

@Suite("SVG plots")
struct PlotTests {
    static let awkward = "a<b & \"c\" 'd'\u{1}"

    @Test("grouped bar chart: valid XML, one group per series, a bar per category with its value on hover")
    func barChart() throws {
        let chart = BarChart(title: "PPL \(Self.awkward)", xLabel: "domain", yLabel: "perplexity", categories: ["code", "law", Self.awkward],
                             series: [.init(name: "seed", values: [8.6, 8.9, 14.1], errors: [0.1, 0.2, nil]),
                                      .init(name: Self.awkward, values: [3.4, nil, 5.3])])
        let doc = try EvalFixtures.parseXML(chart.svg())
        #expect(try EvalFixtures.attributeValues(doc, "data-series") == ["seed", "a<b & \"c\" 'd'\u{FFFD}"])
        let bars = try doc.nodes(forXPath: "//*[@class='series'][1]/*[local-name()='rect']")
        #expect(bars.count == 3)
        let titles = try doc.nodes(forXPath: "//*[local-name()='rect']/*[local-name()='title']").compactMap(\.stringValue)
        #expect(titles.contains("seed, code: 8.6 ± 0.1"))
        #expect(try doc.nodes(forXPath: "//*[@class='series'][2]/*[local-name()='rect']").count == 2)
    }

    @Test("more series than colours: later series are dashed (lines) or hatched (bars), none looks like another")
    func manySeries() throws {
        let names = (0..<18).map { "model \($0)" }
        let styles = names.indices.map(Palette.series)
        #expect(Set(styles.map { "\($0.colour) \($0.variant)" }).count == 18)
        #expect(styles[10].colour == styles[0].colour && styles[10].variant == 1)

        let line = LineChart(title: "loss", xLabel: "step", yLabel: "loss",
                             series: names.map { .init(name: $0, x: [0, 1], y: [2, 1]) })
        let doc = try EvalFixtures.parseXML(line.svg())
        // (Attributes through XPath: the SVG namespace hides them from attribute(forName:).)
        func attribute(_ d: XMLDocument, _ path: String) throws -> [String] { try d.nodes(forXPath: path).compactMap(\.stringValue) }
        #expect(try doc.nodes(forXPath: "//*[local-name()='polyline']").count == 18)
        #expect(try attribute(doc, "(//*[local-name()='polyline'])[1]/@stroke-dasharray") == [])
        #expect(try attribute(doc, "(//*[local-name()='polyline'])[11]/@stroke-dasharray") == ["7 3"])
        #expect(try attribute(doc, "(//*[local-name()='polyline'])[11]/@stroke") == ["#4e79a7"])
        #expect(try attribute(doc, "(//*[local-name()='polyline'])[1]/@stroke") == ["#4e79a7"])

        let bars = BarChart(title: "ppl", xLabel: "domain", yLabel: "perplexity", categories: ["code"],
                            series: names.map { .init(name: $0, values: [1.5], errors: nil) })
        let b = try EvalFixtures.parseXML(bars.svg())
        #expect(try attribute(b, "//*[@data-series='model 10']/*[local-name()='rect']/@fill") == ["url(#hatch-1-4e79a7)"])
        #expect(try attribute(b, "//*[@data-series='model 0']/*[local-name()='rect']/@fill") == ["#4e79a7"])
        // The pattern it names exists, filled with the first series' colour.
        #expect(try attribute(b, "//*[local-name()='pattern'][@id='hatch-1-4e79a7']/*[local-name()='rect']/@fill") == ["#4e79a7"])
        // Its legend swatch uses the same fill.
        #expect(try b.nodes(forXPath: "//*[local-name()='rect'][@fill='url(#hatch-1-4e79a7)']").count == 2)
    }

    @Test("trailing mean of a loss curve: the mean of the last `window` values, fewer at the start")
    func trailingMean() {
        let s = LineChart.Series(name: "loss", x: [1, 2, 3, 4, 5], y: [1, 2, 3, 4, 9]).trailingMean(window: 2)
        #expect(s.points.map(\.y) == [1, 1.5, 2.5, 3.5, 6.5])
        #expect(s.points.map(\.x) == [1, 2, 3, 4, 5])
        #expect(LineChart.Series(name: "a", x: [0, 1], y: [4, 2]).trailingMean(window: 1).points.map(\.y) == [4, 2])
    }

    @Test("line chart and heatmap: valid XML with every series")
    func lineAndHeatmap() throws {
        let line = LineChart(title: "loss", xLabel: "step", yLabel: "loss",
                             series: [.init(name: "bam", x: [0, 10, 20], y: [4, 3, 2.5]),
                                      .init(name: "btx", x: (0..<500).map(Double.init), y: (0..<500).map { 4 - Double($0) / 200 })])
        let doc = try EvalFixtures.parseXML(line.svg())
        #expect(try EvalFixtures.attributeValues(doc, "data-series") == ["bam", "btx"])
        #expect(try doc.nodes(forXPath: "//*[local-name()='polyline']").count == 2)
        #expect(try doc.nodes(forXPath: "//*[local-name()='circle']").count == 3)   // markers only on short series
        var log = line
        log.logY = true
        _ = try EvalFixtures.parseXML(log.svg())

        let heat = Heatmap(title: "h", rowLabels: ["layer 0", "layer 1"], columnLabels: ["E0", "E1", "E2"], xLabel: "expert",
                           yLabel: "layer", valueLabel: "share",
                           panels: [.init(title: "code", values: [[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]]),
                                    .init(title: Self.awkward, values: [[1, 0, 0], [0, 0, 1]])])
        let h = try EvalFixtures.parseXML(heat.svg())
        #expect(try EvalFixtures.attributeValues(h, "data-series").count == 2)
        #expect(try h.nodes(forXPath: "//*[@data-row]").count == 12)
    }

    @Test("token text as SVG and HTML escapes every token")
    func tokenText() throws {
        let text = TokenText(title: "t", legend: ["expert 0", "expert 1"], blocks: [
            .init(label: "code", tokens: [.init(text: "if", category: 0, tooltip: "E0"), .init(text: " a<b", category: 1, tooltip: "<&>"),
                                          .init(text: "\n", category: nil, tooltip: "newline"), .init(text: Self.awkward, category: 0, tooltip: "x")])])
        let svg = try EvalFixtures.parseXML(text.svg())
        #expect(try svg.nodes(forXPath: "//*[@class='token']").count == 4)
        var page = HTMLPage(title: "routes & <stuff>")
        page.fragment(text.htmlFragment())
        page.svg(text.svg())
        page.table(header: ["a", "b"], rows: [["<", "&"]])
        let html = try EvalFixtures.parseXML(page.document())
        #expect(try html.nodes(forXPath: "//*[local-name()='span' and @title]").count == 4)
    }

    @Test("nice ticks and number formatting")
    func ticks() {
        #expect(niceTicks(0, 14.1) == [0, 5, 10, 15])
        #expect(zip(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]).allSatisfy { abs($0 - $1) < 1e-12 } && niceTicks(0, 1).count == 6)
        #expect(formatNumber(12.3456) == "12.35")
        #expect(formatNumber(0.5) == "0.5")
        #expect(xmlEscaped("<a&'\"\u{0}>") == "&lt;a&amp;&apos;&quot;\u{FFFD}&gt;")
    }
}
