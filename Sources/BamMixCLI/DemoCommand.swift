import ArgumentParser
import BamEvaluation
import BamModels
import BamPipeline
import Foundation

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The main job on the shipped checkpoints: mix, finetune briefly, compare, write the table and plots.",
        discussion: """
        Starting from the seed and the three domain experts in checkpoints/ (math, code, knowledge; trained with
        `bam-mix train` by tools/make_checkpoints), it generates the domain corpora, builds BTX, BAM expert-KV,
        BAM shared-KV and an upcycled mixture, MoE-finetunes each on the same token budget (equal parts of the
        four domains), evaluates the seed, the experts, a BTM ensemble and the mixtures on every domain's
        held-out text, and writes results.md, results.json, perplexity.svg, finetune-loss.svg and routing
        plots into --out. `--quick` is the same on a small budget (CI's smoke test).
        `--rebuild-checkpoints` trains the seed and experts from scratch into --checkpoints instead.
        `--reproduce` is tools/reproduce's longer experiment: for each of --seeds, a seed model and experts trained
        from scratch, the mixtures of the papers' comparisons and the ablations (compute-matched BTX, top-k
        attention routing, BTX's FFN routing variants, BAM with BTX's FFN routing, Drop-Upcycling, BTM top-2),
        then the table of mean ± standard error across seeds and the plots (results.md, results/*.svg in --out;
        --publish DIR copies them into DIR, keeping the hand-written discussion of an existing DIR/results.md).
        Every finished model (its training, evaluation and routing) is kept in --out/seed-N, so an interrupted
        run continues at the next model. `--reproduce --quick` runs every model of it on a micro budget (a smoke
        test; its numbers mean nothing).
        """)

    @Option(help: "Output directory (created; an existing one is reused, finished stages are not redone; default demo-out, or reproduce-out with --reproduce, reproduce-quick-out with --reproduce --quick).")
    var out: String? = nil

    @Option(help: "Directory of the shipped checkpoints (default: checkpoints).")
    var checkpoints: String? = nil

    @Flag(help: "A small budget: about three minutes on two cores (with --reproduce: every model on a micro budget, a smoke test).")
    var quick = false

    @Flag(name: .customLong("rebuild-checkpoints"), help: "Train the seed and the experts from scratch into --checkpoints (tools/make_checkpoints).")
    var rebuildCheckpoints = false

    @Option(help: "Seed of the mixing and finetuning (and of --rebuild-checkpoints' training); default 1.")
    var seed: UInt64? = nil

    @Flag(help: "The reproduction experiment (tools/reproduce): everything from scratch for each of --seeds.")
    var reproduce = false

    @Option(help: "Run seeds of --reproduce, comma-separated (default 1,2,3).")
    var seeds: String? = nil

    @Option(help: "With --reproduce: copy results.md and results/ into this directory (e.g. docs).")
    var publish: String? = nil

    func validate() throws {
        if reproduce && rebuildCheckpoints {
            throw ValidationError("--reproduce trains its own seed and experts; it does not combine with --rebuild-checkpoints")
        }
        if quick && rebuildCheckpoints {
            throw ValidationError("--rebuild-checkpoints trains with the full demo's budgets; it does not combine with --quick")
        }
        if reproduce {
            if seed != nil { throw ValidationError("--reproduce takes its run seeds from --seeds, not --seed") }
            if checkpoints != nil { throw ValidationError("--reproduce trains its own seed and experts; --checkpoints does not apply") }
            if runSeeds == nil { throw ValidationError("--seeds must be comma-separated non-negative integers, got '\(seeds ?? "")'") }
        } else {
            if publish != nil { throw ValidationError("--publish goes with --reproduce") }
            if seeds != nil { throw ValidationError("--seeds goes with --reproduce (the demo takes one --seed)") }
        }
    }

    var runSeeds: [UInt64]? {
        let parts = (seeds ?? "1,2,3").split(separator: ",").map { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        return parts.isEmpty || parts.contains(nil) ? nil : parts.map { $0! }
    }

    func run() throws {
        let profile: PipelineProfile = reproduce ? (quick ? .reproduceQuick : .reproduce) : quick ? .quick : .demo
        let output = URL(fileURLWithPath: out ?? (reproduce ? (quick ? "reproduce-quick-out" : "reproduce-out") : "demo-out")).standardizedFileURL
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        var bar: Progress? = nil
        var stage = ""
        let log: (String) -> Void = { line in
            bar?.finish()
            bar = nil
            stage = ""
            printError(line)
        }
        let progress: (String, Int, Int) -> Void = { what, done, total in
            if what != stage {
                bar?.finish()
                stage = what
                bar = Progress(title: what, total: total)
            }
            bar?.update(done: done)
            // A stage such as the seed's training runs for many minutes: without a terminal, a
            // line at most once a minute.
            bar?.reportIfDue(done: done)
        }
        let started = Date()
        if reproduce, let runSeeds {
            let reproduction = Reproduction(profile: profile, output: output, seeds: runSeeds, log: log, progress: progress)
            let written = try reproduction.run()
            bar?.finish()
            print("wrote \(written.map { $0.path.replacingOccurrences(of: output.path + "/", with: "") }.joined(separator: ", ")) to \(output.path) in \(formatDuration(Date().timeIntervalSince(started)))")
            if let publish {
                let doc = try reproduction.publish(to: URL(fileURLWithPath: publish).standardizedFileURL)
                print("published \(doc.path) and its plots")
            }
            return
        }
        let pipeline = Pipeline(profile: profile, output: output, log: log, progress: progress)
        if rebuildCheckpoints {
            try pipeline.buildCorpora()
            let dir = URL(fileURLWithPath: checkpoints ?? "checkpoints").standardizedFileURL
            let built = try pipeline.branchTrain(into: dir, seed: seed ?? 1)
            bar?.finish()
            for url in built {
                // The shipped files: weights, config and tokenizer only (no optimiser state).
                for extra in ["training_state.json", "training_state.safetensors"] {
                    try? FileManager.default.removeItem(at: url.appendingPathComponent(extra))
                }
                try? FileManager.default.removeItem(at: url.deletingLastPathComponent().appendingPathComponent(url.lastPathComponent + ".report.json"))
            }
            print("trained the seed and experts into \(dir.path) in \(formatDuration(Date().timeIntervalSince(started)))")
            return
        }
        let result = try pipeline.runDemo(checkpoints: URL(fileURLWithPath: checkpoints ?? "checkpoints").standardizedFileURL, seed: seed ?? 1)
        bar?.finish()
        print()
        print(result.comparison.table().render(colour: terminalColour))
        for line in result.comparison.notes() { print(line) }
        print()
        let failed = result.checks.filter { !$0.passed }
        print("claims: \(result.checks.count - failed.count) of \(result.checks.count) hold"
              + (quick ? " (--quick is a smoke-test budget, \(profile.finetuneSteps) finetuning steps; the claims are the full demo's)" : ""))
        for c in result.checks { print("  \(c.passed ? "yes" : "NO ") \(c.claim) (\(c.detail))") }
        print()
        print("wrote \(result.artifacts.map(\.lastPathComponent).joined(separator: ", ")) to \(output.path) in \(formatDuration(result.seconds))")
    }
}
