import BamCorpora
import BamEvaluation
import BamModels
import BamPlots
import BamTraining
import Foundation

/// The shipped checkpoints `bam-mix demo` starts from (tools/make_checkpoints rebuilds them).
public enum ShippedCheckpoints {
    public static let names: [(name: String, directory: String, domain: CorpusDomain)] = [
        ("seed", "seed", .general), ("math expert", "math", .math), ("code expert", "code", .code),
        ("knowledge expert", "knowledge", .knowledge),
    ]
}

/// Finetuning summary per mixture (results.json).
public struct FinetuneSummary: Sendable, Codable {
    public var name: String
    public var method: String
    public var steps: Int
    public var tokens: Int
    public var seconds: Double
    public var validationLoss: [Double]
    public var lossCurve: [Double]

    enum CodingKeys: String, CodingKey {
        case name, method, steps, tokens, seconds, validationLoss = "validation_loss", lossCurve = "loss_curve"
    }
}

/// results.json of a run.
public struct RunResults: Sendable, Codable {
    public var schema = "bam-mix.demo/1"
    public var profile: String
    public var seed: UInt64
    public var comparison: ComparisonReport
    public var finetuning: [FinetuneSummary]
    public var checks: [PipelineCheck]
    public var seconds: Double
}

extension Pipeline {
    /// `bam-mix demo`: the shipped seed and experts -> every mixture -> finetune -> compare.
    public func runDemo(checkpoints: URL, seed: UInt64 = 1) throws -> PipelineResult {
        let start = Date()
        let experts = try ShippedCheckpoints.names.map { entry -> URL in
            let url = checkpoints.appendingPathComponent(entry.directory)
            guard FileManager.default.fileExists(atPath: url.appendingPathComponent("config.json").path) else {
                throw BamError.usage("the demo starts from the shipped checkpoints (checkpoints/seed, math, code, knowledge), and this one is missing", file: url.path,
                                     hint: "run it from the repository root or set \(Pipeline.checkpointsOption) (tools/make_checkpoints rebuilds them)")
            }
            return url
        }
        try buildCorpora()
        return try finish(experts: experts, seed: seed, started: start)
    }

    /// tools/reproduce: everything from scratch for one run seed (own seed model and experts).
    public func runFromScratch(seed: UInt64) throws -> PipelineResult {
        let start = Date()
        try buildCorpora()
        let experts = try branchTrain(into: output.appendingPathComponent("experts"), seed: seed)
        return try finish(experts: experts, seed: seed, started: start)
    }

    func finish(experts: [URL], seed: UInt64, started: Date) throws -> PipelineResult {
        let mixtures = try mixAndFinetune(experts: experts, seed: seed)
        let dense = zip(ShippedCheckpoints.names, experts).map { (name: $0.name, path: $1, domain: $0.domain) }
        let report = try evaluate(dense: dense, mixtures: mixtures.map { ($0.recipe.name, $0.path) })
        var routing: [RoutingReport] = []
        // Routing plots of the main mixtures (BTX, BAM expert-KV and its BTX-routed twin), not of
        // every ablation.
        for m in mixtures where m.recipe.method != .upcycle && m.recipe.attentionRouting == .soft && m.recipe.matchComputeOf == nil
            && (m.recipe.ffnRouting == .paper || m.recipe.ffnRouting == .btx) {
            if m.recipe.method == .btx || m.recipe.attention == .expertKV {
                routing.append(try routes(name: m.recipe.name, path: m.path))
            }
        }
        let checks = Self.checks(report, seed: "seed", experts: Array(dense.dropFirst().map { ($0.name, $0.domain) }),
                                 mixtures: mixtures.map(\.recipe.name))
        let curves = mixtures.map { m in
            (name: m.recipe.name, steps: m.report.steps.map(\.step), loss: m.report.steps.map(\.lmLoss))
        }
        let summaries = mixtures.map { m in
            FinetuneSummary(name: m.recipe.name, method: m.recipe.method.rawValue, steps: m.report.steps.count,
                            tokens: m.report.steps.reduce(0) { $0 + $1.tokens }, seconds: m.report.seconds,
                            validationLoss: m.report.validation.map(\.loss), lossCurve: m.report.steps.map(\.lmLoss))
        }
        let seconds = Date().timeIntervalSince(started)
        let artifacts = try writeArtifacts(report: report, curves: curves, routing: routing, checks: checks,
                                           results: RunResults(profile: profile.name, seed: seed, comparison: report,
                                                               finetuning: summaries, checks: checks, seconds: seconds))
        return PipelineResult(comparison: report, lossCurves: curves, routing: routing, checks: checks, artifacts: artifacts,
                              seconds: seconds)
    }

    func writeArtifacts(report: ComparisonReport, curves: [(name: String, steps: [Int], loss: [Double])],
                        routing: [RoutingReport], checks: [PipelineCheck], results: RunResults) throws -> [URL] {
        var written: [URL] = []
        func write(_ name: String, _ text: String) throws {
            let url = output.appendingPathComponent(name)
            try writeFileAtomically(Data(text.utf8), to: url)
            written.append(url)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try write("results.json", String(decoding: try encoder.encode(results), as: UTF8.self) + "\n")
        try write("perplexity.svg", report.perplexityChart(title: "Held-out perplexity per domain (lower is better)").svg())
        let loss = LineChart(title: "MoE finetuning: training LM loss, mean over the last \(Self.lossWindow) steps", xLabel: "step",
                             yLabel: "loss (nats per token)",
                             series: curves.map { LineChart.Series(name: $0.name, x: $0.steps.map(Double.init), y: $0.loss)
                                 .trailingMean(window: Self.lossWindow) })
        try write("finetune-loss.svg", loss.svg())
        var routeFiles: [String] = []
        for r in routing {
            let slug = r.model.lowercased().replacingOccurrences(of: " ", with: "-").replacingOccurrences(of: ",", with: "")
            try write("routes-\(slug).svg", r.heatmap().svg())
            try write("routes-\(slug)-tokens.svg", r.tokenText().svg())
            routeFiles += ["routes-\(slug).svg", "routes-\(slug)-tokens.svg"]
        }
        var md = "# bam-mix \(profile.name): dense experts vs BTX vs BAM\n\n"
        md += "Seed and experts: \(profile.layers)-layer parallel-block (Cohere-style) models, hidden \(profile.hidden), byte-level tokenizer. "
        md += "Every mixture is finetuned for \(profile.finetuneSteps) steps of \(profile.finetuneBatch) x \(profile.finetuneSeq) tokens "
        md += "on an equal mixture of the four domains (compute-matched variants: more steps). "
        md += "Perplexity on each domain's held-out text, windows of \(profile.evalContext) tokens (\(profile.evalChunks) at most).\n\n"
        md += report.markdownDocument() + "\n"
        md += "## Claims\n\nThe domains are the three specialities; `general` is the seed's own training text, where the seed is the model to beat, so the table reports it and no claim is made.\n\n" + checks.map { "- \($0.passed ? "yes" : "NO"): \($0.claim) (\($0.detail))" }.joined(separator: "\n") + "\n\n"
        md += "## Finetuning\n\n| mixture | steps | tokens | seconds | validation loss |\n|---|---:|---:|---:|---|\n"
        for f in results.finetuning {
            md += "| \(f.name) | \(f.steps) | \(f.tokens) | \(String(format: "%.1f", f.seconds)) | "
                + f.validationLoss.map { String(format: "%.3f", $0) }.joined(separator: " -> ") + " |\n"
        }
        md += "\nPlots: `perplexity.svg`, `finetune-loss.svg`" + routeFiles.map { ", `\($0)`" }.joined() + ".\n"
        try write("results.md", md)
        return written
    }
}

extension Pipeline {
    /// `runDemo(checkpoints:)`'s folder of shipped checkpoints, as errors name it (the CLI's `--checkpoints`).
    public static let checkpointsOption = BamError.Option(owner: "Pipeline.runDemo", name: "checkpoints")
}
