import ArgumentParser
import BamEvaluation
import BamModels
import Foundation

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Per-domain perplexity of several models on the same token chunks, with size, FLOPs, speed and memory.",
        discussion: """
        Every model is scored on every domain text with llama.cpp's perplexity (`--scoring half`, the default) or on
        every token (`--scoring full`). Each domain is tokenised once per distinct tokenizer, and models that share
        a tokenisation are scored on exactly the same chunks; a model whose tokenizer differs from the others' is
        scored on its own tokens and flagged (†): its perplexity is per a different token. Each model is loaded once,
        evaluated, and released before the next, so its peak memory is its own.

        The table marks the best value of each column with `*` (lowest perplexity, parameters, FLOPs and memory;
        highest tokens/s). Average = the mean of the per-domain perplexities (the papers' Avg column).

        Models: NAME=PATH, or a Branch-Train-Merge ensemble btm=PATH1@TRAIN1.txt,PATH2@TRAIN2.txt[,k=N]
        (NAME=btm=... for another name). `--json -`, `--markdown -` write to stdout. See docs/evaluation.md.
        """)

    @Option(name: .customLong("model"), help: "NAME=PATH, or btm=PATH1@TRAIN1,PATH2@TRAIN2[,k=N] (repeat).")
    var models: [String] = []

    @Option(name: .customLong("domain"), help: "NAME=FILE: a UTF-8 text to score (repeat).")
    var domains: [String] = []

    @Option(help: "Context length (tokens per chunk).")
    var ctx: Int = 512

    @Option(help: "Evaluate at most this many chunks per domain.")
    var chunks: Int?

    @Option(help: "Which positions are scored: half (llama.cpp) or full.")
    var scoring: PerplexityScoring = .half

    @Flag(name: .customLong("no-bos"), help: "Do not replace each chunk's first token with BOS.")
    var noBOS = false

    @OptionGroup var runOptions: RunOptions

    @Option(name: .customLong("btm-top-k"), help: "BTM ensembles: experts averaged per context (unless the spec has k=N).")
    var btmTopK: Int = 1

    @Option(help: "Write the JSON report to this file (- for stdout, then nothing else goes to stdout).")
    var json: String?

    @Option(help: "Write the table as Markdown to this file (- for stdout).")
    var markdown: String?

    @Option(help: "Write a grouped bar chart of perplexity per domain and model (SVG) to this file.")
    var svg: String?

    func validate() throws {
        if models.isEmpty { throw ValidationError("give at least one --model NAME=PATH") }
        if domains.isEmpty { throw ValidationError("give at least one --domain NAME=FILE") }
        if ctx < 4 { throw ValidationError("--ctx must be at least 4") }
        if btmTopK < 1 { throw ValidationError("--btm-top-k must be at least 1") }
        if json == "-" && markdown == "-" { throw ValidationError("--json - and --markdown - both want stdout; write one of them to a file") }
    }

    func run() throws {
        let specs = try models.map { try ModelSpec.parseNamed($0) }
        let domainSpecs = try domains.map { try DomainSpec.parse($0) }
        let options = CompareOptions(contextLength: ctx, maxChunks: chunks, scoring: scoring, replaceWithBOS: !noBOS,
                                     btmTopK: btmTopK, weights: runOptions.weights,
                                     kvCache: runOptions.kvCache)
        let quiet = json == "-"
        var bar: Progress? = nil
        var currentModel = ""
        let report: ComparisonReport
        do {
            report = try compareModels(specs, domains: domainSpecs, options: options) { p in
                if quiet { return }
                if bar == nil { bar = Progress(title: "compare", total: p.total) }
                if p.model != currentModel {
                    currentModel = p.model
                    if bar?.isInteractive == false { printError("compare: \(p.model)") }
                }
                bar?.update(done: p.done, detail: "\(p.model) / \(p.domain)  PPL \(String(format: "%.3f", p.runningPPL))")
            }
            bar?.finish()
        } catch {
            bar?.fail()
            throw error
        }
        let table = report.table()
        if let json { try emitJSON(report, to: json == "-" ? nil : json) }
        if let markdown { try writeOutput(report.markdownDocument(), to: markdown) }
        if let svg { try writeOutput(report.perplexityChart().svg(), to: svg) }
        if !quiet && markdown != "-" {
            print(table.render(colour: terminalColour))
            for line in report.notes() { print(line) }
        }
    }

}
