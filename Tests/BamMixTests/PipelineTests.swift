import BamEvaluation
import BamModels
import BamPipeline
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@Suite("The demo pipeline, end to end on a micro budget")
struct PipelineTests {
    @Test("from scratch: corpora, seed, experts, five mixtures finetuned, compare, routes, artifacts")
    func fromScratch() throws {
        let dir = try TemporaryDirectory()
        var lines: [String] = []
        let pipeline = Pipeline(profile: .micro, output: dir.url, log: { lines.append($0) })
        let result = try pipeline.runFromScratch(seed: 3)
        // Seed, three experts, BTM and the five mixtures, on four domains.
        #expect(result.comparison.models.map(\.name) == ["seed", "math expert", "code expert", "knowledge expert", "BTM (top-1)",
                                                         "BTX", "BAM expert-KV", "BAM expert-KV, BTX FFN routing", "BAM shared-KV", "upcycled"])
        #expect(result.comparison.domains.map(\.name) == ["math", "code", "knowledge", "general"])
        for m in result.comparison.models {
            #expect(m.results.count == 4 && m.results.allSatisfy { $0.ppl.isFinite && $0.ppl > 1 })
        }
        // The mixtures have the shapes their methods say.
        let bam = try Checkpoint.open(dir.url.appendingPathComponent("models/bam-expert-kv").path).config
        #expect(bam.moa?.kind == .expertKV && bam.moe?.experts == 4 && bam.parallelBlock)
        let btx = try Checkpoint.open(dir.url.appendingPathComponent("models/btx").path).config
        #expect(btx.family == .bam && btx.moa == nil && btx.moe?.topK == 2, "Cohere-style experts: BTX in the BAM format with one attention")
        // Claims are computed (whether they hold at this budget is not the point here).
        #expect(result.checks.count == 3 + 5 * 3)
        // Artifacts: JSON that decodes, SVGs that parse.
        let json = try Data(contentsOf: dir.url.appendingPathComponent("results.json"))
        let decoded = try JSONDecoder().decode(RunResults.self, from: json)
        #expect(decoded.finetuning.count == 5 && decoded.finetuning.allSatisfy { $0.lossCurve.count == 2 })
        for name in ["perplexity.svg", "finetune-loss.svg", "routes-btx.svg", "routes-bam-expert-kv.svg"] {
            let data = try Data(contentsOf: dir.url.appendingPathComponent(name))
            let parser = XMLParser(data: data)
            #expect(parser.parse(), "\(name) is well-formed XML")
        }
        #expect(try String(contentsOf: dir.url.appendingPathComponent("results.md"), encoding: .utf8).contains("| BAM expert-KV |"))
        // Run again into the same directory: finished stages are reused, not redone or refused.
        lines = []
        let again = try Pipeline(profile: .micro, output: dir.url, log: { lines.append($0) }).runFromScratch(seed: 3)
        // 5 finetunings, 10 evaluations (4 dense models, BTM, 5 mixtures), 3 routing reports.
        #expect(lines.filter { $0.contains("reusing") }.count == 5 + 10 + 3)
        #expect(again.comparison.models.map { $0.results.map(\.ppl) } == result.comparison.models.map { $0.results.map(\.ppl) })
        // A run interrupted during the evaluation (one model's result missing) evaluates only that one.
        try FileManager.default.removeItem(at: ResultCache(directory: dir.url.appendingPathComponent("evaluations")).file("BAM shared-KV"))
        lines = []
        let resumed = try Pipeline(profile: .micro, output: dir.url, log: { lines.append($0) }).runFromScratch(seed: 3)
        #expect(lines.filter { $0.hasPrefix("compare ") && $0.contains("reusing") }.count == 9)
        #expect(!lines.contains { $0.hasPrefix("compare BAM shared-KV: reusing") })
        #expect(resumed.comparison.models.map(\.name) == result.comparison.models.map(\.name))
        #expect(resumed.comparison.models.map { $0.results.map(\.ppl) } == result.comparison.models.map { $0.results.map(\.ppl) })
    }

    @Test("result cache: computed once per key, recomputed for another key or a damaged file; an interrupted sequence resumes at the next entry")
    func resultCache() throws {
        let dir = try TemporaryDirectory()
        let cache = ResultCache(directory: dir.url.appendingPathComponent("cache"))
        var calls = 0
        let a = try cache.value("model A", key: "k1") { calls += 1; return [1.5, 2.5] }
        let b = try cache.value("model A", key: "k1") { calls += 1; return [9.0] }
        #expect(a == [1.5, 2.5] && b == a && calls == 1)
        let c = try cache.value("model A", key: "k2") { calls += 1; return [3.0] }
        #expect(c == [3.0] && calls == 2, "another key (the model or the settings changed) is recomputed")
        try Data("{\"key\": \"k2\", \"val".utf8).write(to: cache.file("model A"))
        let d = try cache.value("model A", key: "k2") { calls += 1; return [4.0] }
        #expect(d == [4.0] && calls == 3, "a damaged file is recomputed, not trusted")
        #expect(cache.cached("model A", key: "k2", as: [Double].self) == [4.0])

        var computed: [String] = []
        func runAll(interruptAt: String?) throws -> [Int] {
            try ["m1", "m2", "m3"].map { name in
                try cache.value(name, key: "k") {
                    if name == interruptAt { throw BamError.io("interrupted") }
                    computed.append(name)
                    return name.count
                }
            }
        }
        var interrupted = false
        do { _ = try runAll(interruptAt: "m2") } catch { interrupted = true }
        #expect(interrupted && computed == ["m1"])
        #expect(!FileManager.default.fileExists(atPath: cache.file("m2").path), "a failed entry leaves no file")
        computed = []
        #expect(try runAll(interruptAt: nil) == [2, 2, 2])
        #expect(computed == ["m2", "m3"], "the rerun starts at the entry that was interrupted")

        // Fingerprints follow the files: a rewritten file changes its directory's fingerprint.
        let model = dir.url.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        try Data("12345".utf8).write(to: model.appendingPathComponent("weights"))
        let before = ResultCache.fingerprint(of: model)
        #expect(before.hasPrefix("weights:5:"))
        try Data("123456".utf8).write(to: model.appendingPathComponent("weights"))
        #expect(ResultCache.fingerprint(of: model) != before)
        #expect(ResultCache.fingerprint(of: model.appendingPathComponent("weights")).hasPrefix("weights:6:"))
        #expect(ResultCache.fingerprint(of: dir.url.appendingPathComponent("absent")) == "missing")
    }

    @Test("reproduction: two seeds, mean ± s.e. table and orderings, bit-for-bit again from scratch, publish keeps the discussion")
    func reproduction() throws {
        let a = try TemporaryDirectory(), b = try TemporaryDirectory(), docs = try TemporaryDirectory()
        var written: [[URL]] = []
        for dir in [a, b] {
            written.append(try Reproduction(profile: .micro, output: dir.url, seeds: [5, 6], log: { _ in }).run())
        }
        let md = try String(contentsOf: a.url.appendingPathComponent("results.md"), encoding: .utf8)
        #expect(md.contains("| BAM expert-KV vs BAM shared-KV |") && md.contains("| BTX vs seed |"))
        #expect(md.contains(" ± ") && md.contains("| seed 5 | seed 6 |"))
        // The per-seed averages in the table are the runs' own.
        let run5 = try JSONDecoder().decode(RunResults.self, from: Data(contentsOf: a.url.appendingPathComponent("seed-5/results.json")))
        let btx5 = try #require(run5.comparison.models.first { $0.name == "BTX" })
        #expect(md.contains(String(format: "%.3f", btx5.averagePPL)))
        // Everything from scratch twice: the same document and plots, byte for byte.
        for (x, y) in zip(written[0], written[1]) {
            #expect(x.lastPathComponent == y.lastPathComponent)
            #expect(try Data(contentsOf: x) == Data(contentsOf: y), "\(x.lastPathComponent) differs between two identical runs")
        }
        #expect(md.contains("Routing of seed 5's mixtures") && md.contains("routes-btx.svg"))
        // A seed kept as its results.json alone (committed in an earlier session) has no routing
        // plots: the next seed's are linked, under its number.
        let seed5 = b.url.appendingPathComponent("seed-5")
        for name in try FileManager.default.contentsOfDirectory(atPath: seed5.path) where name != "results.json" {
            try FileManager.default.removeItem(at: seed5.appendingPathComponent(name))
        }
        _ = try Reproduction(profile: .micro, output: b.url, seeds: [5, 6], log: { _ in }).run()
        let reused = try String(contentsOf: b.url.appendingPathComponent("results.md"), encoding: .utf8)
        #expect(reused.contains("Routing of seed 6's mixtures") && reused.contains("routes-btx.svg"))
        // Publishing over a document with a discussion keeps the discussion and replaces the rest.
        let target = docs.url.appendingPathComponent("results.md")
        try Data(("old numbers\n" + Reproduction.discussionMarker + "\nOur reading of the numbers.\n").utf8).write(to: target)
        _ = try Reproduction(profile: .micro, output: a.url, seeds: [5, 6], log: { _ in }).publish(to: docs.url)
        let published = try String(contentsOf: target, encoding: .utf8)
        #expect(published.hasSuffix(Reproduction.discussionMarker + "\nOur reading of the numbers.\n"))
        #expect(!published.contains("old numbers") && published.contains("| BTX vs seed |"))
        #expect(FileManager.default.fileExists(atPath: docs.url.appendingPathComponent("results/perplexity.svg").path))
        // A finished seed whose results lack a model of the profile (here a second BTM) is
        // completed: only the missing model is evaluated, every other result is reused.
        var more = PipelineProfile.micro
        more.btmTopKs = [1, 2]
        var log: [String] = []
        _ = try Reproduction(profile: more, output: a.url, seeds: [5], log: { log.append($0) }).run()
        #expect(log.contains { $0.contains("lacks BTM (top-2)") })
        #expect(log.filter { $0.hasPrefix("compare ") && $0.contains("reusing") }.count == 10)
        let completed = try JSONDecoder().decode(RunResults.self, from: Data(contentsOf: a.url.appendingPathComponent("seed-5/results.json")))
        #expect(completed.comparison.models.map(\.name).contains("BTM (top-2)"))
        #expect(completed.comparison.models.first { $0.name == "BTX" }?.averagePPL == btx5.averagePPL)
        // A folder holds one profile's runs: another profile is refused before anything is reused.
        #expect(throws: BamError.self) {
            _ = try Reproduction(profile: .reproduceQuick, output: a.url, seeds: [5], log: { _ in }).run()
        }
    }
}
