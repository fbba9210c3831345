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
        """)

    @Option(help: "Output directory (created; an existing one is reused, finished stages are not redone).")
    var out = "demo-out"

    @Option(help: "Directory of the shipped checkpoints.")
    var checkpoints = "checkpoints"

    @Flag(help: "A small budget: under two minutes on two cores.")
    var quick = false

    @Flag(name: .customLong("rebuild-checkpoints"), help: "Train the seed and the experts from scratch into --checkpoints (tools/make_checkpoints).")
    var rebuildCheckpoints = false

    @Option(help: "Seed of the mixing and finetuning (and of the from-scratch training).")
    var seed: UInt64 = 1

    func run() throws {
        let profile: PipelineProfile = quick ? .quick : .demo
        let output = URL(fileURLWithPath: out).standardizedFileURL
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        var bar: Progress? = nil
        var stage = ""
        let pipeline = Pipeline(profile: profile, output: output, log: { line in
            bar?.finish()
            bar = nil
            stage = ""
            printError(line)
        }, progress: { what, done, total in
            if what != stage {
                bar?.finish()
                stage = what
                bar = Progress(title: what, total: total)
            }
            bar?.update(done: done)
        })
        let started = Date()
        if rebuildCheckpoints {
            try pipeline.buildCorpora()
            let dir = URL(fileURLWithPath: checkpoints).standardizedFileURL
            let built = try pipeline.branchTrain(into: dir, seed: seed)
            bar?.finish()
            for url in built {
                // The shipped files: weights, config and tokenizer only (no optimiser state).
                for extra in ["training_state.json", "training_state.safetensors"] {
                    try? FileManager.default.removeItem(at: url.appendingPathComponent(extra))
                }
            }
            print("trained the seed and experts into \(dir.path) in \(formatDuration(Date().timeIntervalSince(started)))")
            return
        }
        let result = try pipeline.runDemo(checkpoints: URL(fileURLWithPath: checkpoints).standardizedFileURL, seed: seed)
        bar?.finish()
        print()
        print(result.comparison.table().render(colour: terminalColour))
        for line in result.comparison.notes() { print(line) }
        print()
        let failed = result.checks.filter { !$0.passed }
        print("claims: \(result.checks.count - failed.count) of \(result.checks.count) hold")
        for c in result.checks { print("  \(c.passed ? "yes" : "NO ") \(c.claim) (\(c.detail))") }
        print()
        print("wrote \(result.artifacts.map(\.lastPathComponent).joined(separator: ", ")) to \(output.path) in \(formatDuration(result.seconds))")
    }
}
