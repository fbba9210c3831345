import BamEvaluation
import BamFormats
import BamPlots
import BamTensors
import Foundation

/// tools/reproduce: the whole pipeline from scratch for several run seeds (each its own seed
/// model, experts, mixtures and finetuning), then the table of mean ± standard error across
/// seeds, the papers' orderings tested on paired differences, and the plots. Only numbers that
/// the seeds determine go into the document (no timings), so it regenerates bit-for-bit.
public struct Reproduction {
    public let profile: PipelineProfile
    public let output: URL
    public let seeds: [UInt64]
    let log: (String) -> Void
    let progress: (String, Int, Int) -> Void

    /// Marks the hand-written discussion in a published document; `publish` keeps what follows it.
    public static let discussionMarker = "<!-- discussion: written by hand after reading the numbers above; tools/reproduce keeps it when it regenerates this file -->"

    public init(profile: PipelineProfile, output: URL, seeds: [UInt64], log: @escaping (String) -> Void,
                progress: @escaping (String, Int, Int) -> Void = { _, _, _ in }) {
        self.profile = profile
        self.output = output
        self.seeds = seeds
        self.log = log
        self.progress = progress
    }

    func runDirectory(_ seed: UInt64) -> URL { output.appendingPathComponent("seed-\(seed)") }

    /// Runs every seed whose results.json is missing (a finished seed is not redone), then
    /// aggregates. Returns the files written.
    public func run() throws -> [URL] {
        // One profile per folder: every stage reuses what it finds, so another profile's seed
        // models, mixtures or results would silently stand in for this one's.
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let marker = output.appendingPathComponent("profile.txt")
        if let existing = try? String(contentsOf: marker, encoding: .utf8) {
            let name = existing.trimmingCharacters(in: .whitespacesAndNewlines)
            guard name == profile.name else {
                throw BamError.usage("this folder holds the runs of another pipeline profile (its profile.txt)", file: output.path,
                                     expected: profile.name, found: name, hint: "give this run another output folder")
            }
        } else {
            try writeFileAtomically(Data((profile.name + "\n").utf8), to: marker)
        }
        var runs: [RunResults] = []
        for seed in seeds {
            let dir = runDirectory(seed)
            let resultsFile = dir.appendingPathComponent("results.json")
            // A finished seed is reused only if it has every model of the profile (a run of an
            // earlier version of the profile is completed: its finished models are kept).
            let missing = (try? JSONDecoder().decode(RunResults.self, from: Data(contentsOf: resultsFile)))
                .map { run in Self.modelNames(profile).filter { name in !run.comparison.models.contains { $0.name == name } } }
            if let missing, missing.isEmpty {
                log("seed \(seed): reusing \(resultsFile.path)")
            } else {
                if let missing { log("seed \(seed): \(resultsFile.path) lacks \(missing.joined(separator: ", ")); completing the run") }
                log("run seed \(seed) into \(dir.path)")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                _ = try Pipeline(profile: profile, output: dir, log: log, progress: progress).runFromScratch(seed: seed)
            }
            runs.append(try JSONDecoder().decode(RunResults.self, from: Data(contentsOf: resultsFile)))
        }
        return try aggregate(runs)
    }

    /// Every model a run of `profile` evaluates: the seed, the experts, the BTM ensembles, the mixtures.
    static func modelNames(_ profile: PipelineProfile) -> [String] {
        ShippedCheckpoints.names.map(\.name) + profile.btmTopKs.map { Pipeline.btmName(topK: $0) } + profile.mixtures.map(\.name)
    }

    /// Mean and standard error of the mean (sample standard deviation / sqrt(n); nil for one value).
    static func meanStderr(_ xs: [Double]) -> (mean: Double, stderr: Double?) {
        let n = Double(xs.count)
        let mean = xs.reduce(0, +) / n
        guard xs.count > 1 else { return (mean, nil) }
        let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        return (mean, (variance / n).squareRoot())
    }

    static func format(_ m: (mean: Double, stderr: Double?), digits: Int = 3) -> String {
        var mean = String(format: "%.\(digits)f", m.mean)
        if mean.hasPrefix("-"), Double(mean) == 0 { mean.removeFirst() }   // no "-0.000"
        guard let se = m.stderr else { return mean }
        return mean + " ± " + String(format: "%.\(digits)f", se)
    }

    /// The orderings the papers report, as (better, worse): BAM expert-KV < BAM shared-KV < BTX <
    /// seed, soft attention routing better than top-k, and BAM against BTX given BAM's compute.
    static let orderings: [(String, String)] = [
        ("BAM expert-KV", "BAM shared-KV"), ("BAM shared-KV", "BTX"), ("BAM expert-KV", "BTX"), ("BTX", "seed"),
        ("BAM expert-KV", "BTX compute-matched"), ("BAM expert-KV", "BAM expert-KV, top-1 attention"),
        ("BAM expert-KV", "BAM expert-KV, top-2 attention"), ("BTX", "upcycled"), ("BAM expert-KV", "BTM (top-1)"),
    ]

    /// Ablations against their baseline, as (variant, baseline): the question is which way each
    /// goes here, not a claim of the papers.
    static let ablations: [(String, String)] = [
        ("BAM expert-KV, BTX FFN routing", "BAM expert-KV"), ("BAM expert-KV, BTX FFN routing", "BTX"),
        ("BTX, Switch routing", "BTX"), ("BTX, sample top-1 routing", "BTX"), ("BTX, soft routing", "BTX"),
        ("Drop-Upcycling (r = 0.5)", "upcycled"), ("BTM (top-2)", "BTM (top-1)"), ("BTX", "BTM (top-2)"),
    ]

    /// What the set-up section says about each ablation row the runs contain.
    static let rowDescriptions: [(String, String)] = [
        ("BAM expert-KV, BTX FFN routing", "*BAM expert-KV, BTX FFN routing* has BAM's attention experts with BTX's FFN routing and loss (`mix --method bam --ffn-routing btx`: top-2, renormalised)."),
        ("BTX, Switch routing", "*BTX, Switch routing*, *sample top-1 routing* and *soft routing* are BTX with the routing variants of the BTX paper's ablation (`mix --ffn-routing switch|sample-top1|soft`: Switch top-1 with capacity factor 1.5, overflow tokens skipping the FFN; top-1 sampled by Gumbel-softmax while finetuning, argmax at evaluation; every expert weighted by the softmax), its losses unchanged."),
        ("Drop-Upcycling (r = 0.5)", "*Drop-Upcycling (r = 0.5)* is the upcycled mixture with half of each expert's FFN dimensions re-initialised from the statistics of the weights they replace (`mix --method upcycle --drop-ratio 0.5`) instead of the noise."),
        ("BTM (top-2)", "*BTM (top-k)* is the dense experts as an ensemble, the k experts whose training text best matches each context (tf-idf) averaged."),
    ]

    /// Writes results.md and results/*.svg into the output directory.
    public func aggregate(_ runs: [RunResults]) throws -> [URL] {
        guard let first = runs.first else { throw BamError.usage("no runs to aggregate") }
        let domains = first.comparison.domains.map(\.name)
        let columns = domains + (domains.count > 1 ? ["average"] : [])
        let models = first.comparison.models.map(\.name)
        // ppl[model][column] -> one value per seed
        func values(_ model: String, _ column: String) -> [Double] {
            runs.compactMap { run -> Double? in
                guard let m = run.comparison.models.first(where: { $0.name == model }) else { return nil }
                return column == "average" ? m.averagePPL : m.result(column)?.ppl
            }
        }
        let assets = output.appendingPathComponent("results")
        try FileManager.default.createDirectory(at: assets, withIntermediateDirectories: true)
        var written: [URL] = []
        func write(_ url: URL, _ text: String) throws {
            try writeFileAtomically(Data(text.utf8), to: url)
            written.append(url)
        }

        var md = "# Reproduction: dense experts vs BTX vs BAM at small scale\n\n"
        md += "Generated by `tools/reproduce` (`bam-mix demo --reproduce --seeds \(seeds.map(String.init).joined(separator: ","))`); "
        md += "every number below is a function of the committed code and these seeds, so the file and its plots regenerate bit-for-bit "
        md += "(with the same binary and thread count, on a CPU that gets the same OpenBLAS kernels: another kernel "
        md += "family sums in another order, so its digits can differ).\n\n"
        md += "## Set-up\n\n"
        md += "For each run seed, from scratch: a \(profile.layers)-layer parallel-block (Cohere-style) seed model, hidden \(profile.hidden), "
        md += "\(profile.heads) attention heads sharing \(profile.kvHeads) KV head(s), FFN \(profile.intermediate), byte-level tokenizer, "
        md += "trained \(profile.seedSteps) steps on the general corpus; three experts branched from it and trained \(profile.expertSteps) steps "
        md += "each on math, code and knowledge (batches of \(profile.trainBatch) x \(profile.trainSeq) tokens). "
        md += "The corpora are the project's generators (docs/corpora.md), \(formatBytes(profile.trainBytes)) of training text per domain. "
        md += "Each mixture is then MoE-finetuned for \(profile.finetuneSteps) steps of \(profile.finetuneBatch) x \(profile.finetuneSeq) tokens "
        md += "on an equal mixture of the four domains (data-matched: the same tokens for every mixture), except "
        md += "*BTX compute-matched*, which gets as many steps as give it the training FLOPs of BAM expert-KV. "
        md += "Top-k attention variants route each token to k attention experts instead of all of them (soft). "
        for (row, text) in Self.rowDescriptions where models.contains(row) { md += text + " " }
        md += "Perplexity: llama.cpp's scoring (second half of each window) on windows of \(profile.evalContext) tokens of each domain's "
        md += "held-out text, at most \(profile.evalChunks) windows, the same windows for every model. "
        md += "Seeds: \(seeds.map(String.init).joined(separator: ", ")) (n = \(runs.count)).\n\n"

        md += "## Held-out perplexity, mean ± standard error across seeds\n\n"
        var table = Table(header: ["model"] + columns)
        for model in models {
            var row = [Table.Cell(model)]
            for c in columns {
                let v = values(model, c)
                let best = models.map { Self.meanStderr(values($0, c)).mean }.min()
                row.append(Table.Cell(v.isEmpty ? "-" : Self.format(Self.meanStderr(v)), best: !v.isEmpty && Self.meanStderr(v).mean == best))
            }
            table.rows.append(row)
        }
        md += table.markdown() + "\n\n(bold: lowest mean in the column.)\n\n"

        md += "## The papers' orderings, on paired differences\n\n"
        md += "Per seed, the difference of perplexities A − B (negative: A is better), then its mean ± standard error across seeds "
        md += "and the number of seeds where A is better. Verdict: *A better* / *B better* when the mean is more than two standard "
        md += "errors from zero, otherwise *not resolved*.\n\n"
        md += pairedTable(Self.orderings, models: models, columns: columns, values: values).markdown() + "\n\n"
        let ablationRows = Self.ablations.filter { models.contains($0.0) && models.contains($0.1) }
        if !ablationRows.isEmpty {
            md += "## Ablations, on paired differences\n\n"
            md += "Each variant A against its baseline B, computed as above (negative: the variant is better).\n\n"
            md += pairedTable(ablationRows, models: models, columns: columns, values: values).markdown() + "\n\n"
        }

        md += "## Per seed (average over the domains)\n\n"
        var perSeed = Table(header: ["model"] + runs.map { "seed \($0.seed)" })
        for model in models {
            perSeed.rows.append([Table.Cell(model)] + runs.map { run in
                Table.Cell(run.comparison.models.first { $0.name == model }.map { String(format: "%.3f", $0.averagePPL) } ?? "-")
            })
        }
        md += perSeed.markdown() + "\n\n"

        // Plots: perplexity bars with the standard error across seeds, the mean finetuning loss.
        let chart = BarChart(title: "Held-out perplexity, mean ± s.e. over \(runs.count) seeds (lower is better)",
                             xLabel: "domain", yLabel: "perplexity", categories: columns,
                             series: models.map { model in
                                 let stats = columns.map { Self.meanStderr(values(model, $0)) }
                                 return BarChart.Series(name: model, values: stats.map { $0.mean }, errors: stats.map { $0.stderr })
                             })
        try write(assets.appendingPathComponent("perplexity.svg"), chart.svg())
        var curves: [LineChart.Series] = []
        for f in first.finetuning {
            let all = runs.compactMap { $0.finetuning.first { $0.name == f.name }?.lossCurve }
            let n = all.map(\.count).min() ?? 0
            guard n > 0 else { continue }
            let mean = (0..<n).map { i in all.reduce(0) { $0 + $1[i] } / Double(all.count) }
            curves.append(LineChart.Series(name: f.name, x: (1...n).map(Double.init), y: mean)
                .trailingMean(window: Pipeline.lossWindow))
        }
        try write(assets.appendingPathComponent("finetune-loss.svg"),
                  LineChart(title: "MoE finetuning: training LM loss, mean over \(runs.count) seeds and the last \(Pipeline.lossWindow) steps",
                            xLabel: "step", yLabel: "loss (nats per token)", series: curves).svg())
        // Routing of the first seed's mixtures whose plots are on disk (the pipeline wrote them). A
        // seed reused from its committed results.json alone (run in an earlier session) has none,
        // so the next seed's are shown, and the text says which seed they are.
        var routeFiles: [String] = [], routeSeed: UInt64?
        for run in runs where routeSeed == nil {
            let dir = runDirectory(run.seed)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            for name in names.sorted() where name.hasPrefix("routes-") && name.hasSuffix(".svg") {
                let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
                try write(assets.appendingPathComponent(name), text)
                routeFiles.append(name)
                routeSeed = run.seed
            }
        }
        md += "## Plots\n\n![perplexity](results/perplexity.svg)\n\n![finetuning loss](results/finetune-loss.svg)\n\n"
        if let routeSeed {
            md += "Routing of seed \(routeSeed)'s mixtures (fraction of tokens per expert, per layer and domain; and per token):\n\n"
            md += routeFiles.map { "- [\($0)](results/\($0))" }.joined(separator: "\n") + "\n\n"
        } else {
            md += "No routing plots: every seed was reused from its results.json alone, which does not keep them (`bam-mix routes --svg` draws them from a seed's mixtures).\n\n"
        }
        md += "## Discussion\n\n" + Self.discussionMarker + "\n"
        try write(output.appendingPathComponent("results.md"), md)
        return written
    }

    /// Per pair (A, B) and column: the mean ± s.e. of the per-seed differences A − B, the seeds
    /// where A is better, and the verdict (more than two standard errors from zero).
    func pairedTable(_ pairs: [(String, String)], models: [String], columns: [String],
                     values: (String, String) -> [Double]) -> Table {
        var table = Table(header: ["A vs B"] + columns)
        for (a, b) in pairs where models.contains(a) && models.contains(b) {
            var row = [Table.Cell("\(a) vs \(b)")]
            for c in columns {
                let pa = values(a, c), pb = values(b, c)
                guard pa.count == pb.count, !pa.isEmpty else { row.append(Table.Cell("-")); continue }
                let diffs = zip(pa, pb).map { $0 - $1 }
                let m = Self.meanStderr(diffs)
                let wins = diffs.filter { $0 < 0 }.count
                var verdict = "not resolved"
                if let se = m.stderr, se > 0 {
                    if m.mean + 2 * se < 0 { verdict = "A better" } else if m.mean - 2 * se > 0 { verdict = "B better" }
                } else if m.stderr == nil {
                    verdict = m.mean < 0 ? "A better (1 seed)" : "B better (1 seed)"
                }
                row.append(Table.Cell("\(Self.format(m)) (\(wins)/\(diffs.count)) \(verdict)"))
            }
            table.rows.append(row)
        }
        return table
    }

    /// Copies results.md and results/ into `directory` (e.g. docs/), keeping the hand-written
    /// discussion of an existing results.md there.
    public func publish(to directory: URL) throws -> URL {
        let fm = FileManager.default
        let target = directory.appendingPathComponent("results.md")
        var text = try String(contentsOf: output.appendingPathComponent("results.md"), encoding: .utf8)
        if let old = try? String(contentsOf: target, encoding: .utf8), let r = old.range(of: Self.discussionMarker) {
            let kept = old[r.upperBound...]
            if let mine = text.range(of: Self.discussionMarker) { text = String(text[..<mine.upperBound]) + kept }
        }
        let assets = directory.appendingPathComponent("results")
        try fm.createDirectory(at: assets, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: output.appendingPathComponent("results").path).sorted() {
            let data = try Data(contentsOf: output.appendingPathComponent("results").appendingPathComponent(name))
            try writeFileAtomically(data, to: assets.appendingPathComponent(name))
        }
        try writeFileAtomically(Data(text.utf8), to: target)
        return target
    }
}
