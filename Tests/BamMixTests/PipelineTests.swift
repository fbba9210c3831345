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
        #expect(lines.filter { $0.contains("reusing") }.count == 5)
        #expect(again.comparison.models.map { $0.results.map(\.ppl) } == result.comparison.models.map { $0.results.map(\.ppl) })
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
        // Publishing over a document with a discussion keeps the discussion and replaces the rest.
        let target = docs.url.appendingPathComponent("results.md")
        try Data(("old numbers\n" + Reproduction.discussionMarker + "\nOur reading of the numbers.\n").utf8).write(to: target)
        _ = try Reproduction(profile: .micro, output: a.url, seeds: [5, 6], log: { _ in }).publish(to: docs.url)
        let published = try String(contentsOf: target, encoding: .utf8)
        #expect(published.hasSuffix(Reproduction.discussionMarker + "\nOur reading of the numbers.\n"))
        #expect(!published.contains("old numbers") && published.contains("| BTX vs seed |"))
        #expect(FileManager.default.fileExists(atPath: docs.url.appendingPathComponent("results/perplexity.svg").path))
    }
}
