import ArgumentParser
import BamEvaluation
import BamModels
import BamTokenizers
import Foundation

struct RoutesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes",
        abstract: "Routing statistics of a mixture model per domain and layer: expert load, top-2 pairs, attention weights.",
        discussion: """
        Each domain text is tokenised and run through the model in windows of --ctx tokens (each from an empty cache,
        every token routed). Per layer: the share of tokens each FFN expert receives as first choice (top-1) and
        among its top-k (share of all assignments), the mean router probability, the distribution of each token's
        two most probable experts (the BTX paper's pairs), and for BAM the mean weight of each attention expert.
        --svg draws a heatmap (layers x experts per domain); --html writes a page with the heatmap, the first
        --sample-tokens tokens of each domain coloured by their expert at --layer (hover: every layer), and the
        pair tables; --tokens-svg draws the coloured tokens alone. See docs/evaluation.md.
        """)

    @Option(help: "A mixture model PATH (BTX/Mixtral or BAM).")
    var model: String

    @Option(name: .customLong("domain"), help: "NAME=FILE: a UTF-8 text (repeat).")
    var domains: [String] = []

    @Option(help: "Tokens per window.")
    var ctx: Int = 512

    @Option(help: "At most this many windows per domain.")
    var chunks: Int?

    @Option(name: .customLong("sample-tokens"), help: "Tokens of each domain shown one by one.")
    var sampleTokens: Int = 64

    @OptionGroup var runOptions: RunOptions

    @Option(help: "The layer whose choice colours the sample tokens (default: the last).")
    var layer: Int?

    @Flag(name: .customLong("no-bos"), help: "Do not replace each window's first token with BOS.")
    var noBOS = false

    @Option(help: "Write the JSON report to this file (- for stdout, then nothing else goes to stdout).")
    var json: String?

    @Option(help: "Write the heatmap (layers x experts per domain) as SVG to this file.")
    var svg: String?

    @Option(help: "Write an HTML report (heatmap, coloured tokens, pair tables) to this file.")
    var html: String?

    @Option(name: .customLong("tokens-svg"), help: "Write the coloured per-token sample as SVG to this file.")
    var tokensSVG: String?

    func validate() throws {
        if domains.isEmpty { throw ValidationError("give at least one --domain NAME=FILE") }
        if ctx < 1 { throw ValidationError("--ctx must be at least 1") }
        if sampleTokens < 0 { throw ValidationError("--sample-tokens must be at least 0") }
    }

    func run() throws {
        let spec = try ModelSpec.parse(model)
        guard case .checkpoint = spec.source else {
            throw BamError.unsupported("routes analyses the routers inside one mixture model; a BTM ensemble (\(model)) has no routers — its per-context expert choices are reported by `compare` (btm_selections)")
        }
        let ckpt = try Checkpoint.open(model)
        if let layer, layer < 0 || layer >= ckpt.config.layers {
            throw ValidationError("--layer must be in 0..<\(ckpt.config.layers), got \(layer)")
        }
        let tokenizer = try ckpt.loadTokenizer()
        let transformer = try Transformer.load(ckpt, weights: runOptions.weights, kvCache: runOptions.kvCache)
        let quiet = json == "-"
        var bar: Progress? = nil
        var current = ""
        let report: RoutingReport
        do {
            report = try analyseRouting(model: transformer, modelName: URL(fileURLWithPath: model).lastPathComponent,
                                        tokenizer: tokenizer, domains: try domains.map { try DomainSpec.parse($0) },
                                        options: RoutesOptions(contextLength: ctx, maxChunks: chunks, sampleTokens: sampleTokens,
                                                               replaceWithBOS: !noBOS)) { domain, done, total in
                if quiet { return }
                if domain != current {
                    bar?.finish()
                    current = domain
                    bar = Progress(title: "routes \(domain)", total: total)
                }
                bar?.update(done: done, detail: domain)
            }
            bar?.finish()
        } catch {
            bar?.fail()
            throw error
        }
        if let json { try emitJSON(report, to: json == "-" ? nil : json) }
        if let svg { try writeOutput(report.heatmap().svg(), to: svg) }
        if let html { try writeOutput(report.htmlReport(layer: layer), to: html) }
        if let tokensSVG { try writeOutput(report.tokenText(layer: layer).svg(), to: tokensSVG) }
        if !quiet { printSummary(report) }
    }

    func printSummary(_ r: RoutingReport) {
        print("\(r.model): \(r.kind), \(r.layers) layers, windows of \(r.ctx) tokens")
        for d in r.domains {
            print("\n\(d.name): \(d.tokens) tokens in \(d.chunks) window(s)")
            if let E = r.ffnExperts {
                let K = r.ffnTopK ?? 1
                // Switch routing drops tokens over an expert's capacity: a column says how many.
                let drops = d.layers.contains { ($0.ffn?.dropped ?? 0) > 0 } || r.ffnRouting?.hasPrefix("Switch") == true
                var t = Table(header: ["layer"] + (0..<E).map { "E\($0) top1" } + (K > 1 ? (0..<E).map { "E\($0) top\(K)" } : [])
                              + ["top pair"] + (drops ? ["dropped"] : []))
                for l in d.layers {
                    guard let f = l.ffn else { continue }
                    let top1 = f.top1Fraction.map { Table.Cell(String(format: "%.3f", $0)) }
                    let topk = K > 1 ? f.topKFraction.map { Table.Cell(String(format: "%.3f", $0)) } : []
                    let pair = f.top2Pairs.first.map { "E\($0.experts[0])+E\($0.experts[1]) \(String(format: "%.2f", $0.fraction))" } ?? "-"
                    let dropped = drops ? [Table.Cell("\(f.dropped) (\(String(format: "%.1f", 100 * f.droppedFraction))%)")] : []
                    t.rows.append([Table.Cell("\(l.layer)")] + top1 + topk + [Table.Cell(pair)] + dropped)
                }
                print("FFN routing (share of tokens)\(r.ffnRouting.map { ", \($0)" } ?? ""):")
                print(t.render())
                if drops {
                    let total = d.layers.reduce(0) { $0 + ($1.ffn?.dropped ?? 0) }
                    print("dropped: \(total) token-layer(s) skipped the FFN over capacity (capacity per window of \(r.ctx) tokens)")
                }
            }
            if let E = r.attentionExperts {
                var t = Table(header: ["layer"] + (0..<E).map { "E\($0) weight" })
                for l in d.layers {
                    guard let a = l.attention else { continue }
                    t.rows.append([Table.Cell("\(l.layer)")] + a.meanWeight.map { Table.Cell(String(format: "%.3f", $0)) })
                }
                print("Attention routing (mean weight):")
                print(t.render())
            }
        }
    }
}
