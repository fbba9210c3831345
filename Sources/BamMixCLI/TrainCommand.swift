import ArgumentParser
import BamEvaluation
import BamModels
import BamTraining
import Foundation

extension AuxLossKind: ExpressibleByArgument {}

/// The flags `train` and `finetune` share (docs/training.md explains each).
struct TrainingFlags: ParsableArguments {
    @Option(help: "Model PATH to start from (an HF directory with tokenizer.json, or a .gguf file).")
    var model: String

    @Option(help: "Output directory for the checkpoints (must not exist unless it is the --resume directory).")
    var out: String

    @Option(help: "Optimiser steps (a resumed run continues up to this many).")
    var steps = 100

    @Option(help: "Sequences per micro-batch.")
    var batch = 4

    @Option(help: "Tokens per sequence.")
    var seq = 256

    @Option(help: "Micro-batches whose gradients are averaged into one step.")
    var accumulate = 1

    @Option(help: "Seed of the window sampling.")
    var seed: UInt64 = 0

    @Option(help: "Linear warm-up steps (default: 10% of the steps, at most 100).")
    var warmup: Int?

    @Option(name: .customLong("min-lr-fraction"), help: "The cosine decay ends at this fraction of the peak learning rate.")
    var minLRFraction = 0.1

    @Option(name: .customLong("weight-decay"), help: "AdamW decoupled weight decay (not applied to norms and biases).")
    var weightDecay = 0.1

    @Flag(name: .customLong("decay-norms-and-biases"), help: "Apply weight decay to norms and biases too.")
    var decayNormsAndBiases = false

    @Option(help: "AdamW beta1.")
    var beta1 = 0.9

    @Option(help: "AdamW beta2.")
    var beta2 = 0.95

    @Option(name: .customLong("grad-clip"), help: "Clip the global gradient norm to this (0: off).")
    var gradClip = 1.0

    @Option(name: .customLong("eval-every"), help: "Validation loss every N steps (0: before and after training only).")
    var evalEvery = 0

    @Option(name: .customLong("eval-windows"), help: "Held-out windows of --seq tokens per domain in each validation.")
    var evalWindows = 32

    @Option(name: .customLong("val-fraction"), help: "Fraction of each --data file held out for validation when no --val-data is given.")
    var valFraction = 0.05

    @Option(name: .customLong("checkpoint-every"), help: "Save a checkpoint (with optimiser state) every N steps (0: at the end only).")
    var checkpointEvery = 0

    @Option(help: "Continue the run saved in DIR (weights, AdamW moments, step, sampler state).")
    var resume: String?

    @Option(help: "JSONL log: one line per step (loss, aux losses, lr, tokens/s, expert load) and per validation.")
    var log: String?

    @Option(help: "Weights dtype of the checkpoints: f32 (default; needed to resume), f16 or bf16.")
    var dtype = "f32"

    @Flag(name: .customLong("no-final-state"), help: "Leave the optimiser state out of the final checkpoint (smaller; it cannot be resumed).")
    var noFinalState = false

    @Option(name: .customLong("print-every"), help: "A progress line (step, mean loss since the last line, tokens/s, ETA) every N steps when stderr is not a terminal (default: about 20 lines a run).")
    var printEvery = 0

    @Option(name: .customLong("dump-batches"), help: "Write the run's token batches to F.npy (int32 [steps, accumulation, 2, B, T]: inputs, targets) at the end, for another trainer to train on the same tokens.")
    var dumpBatches: String?

    func validate() throws {
        guard let d = DType(userName: dtype), [DType.f32, .f16, .bf16].contains(d) else {
            throw ValidationError("--dtype must be f32, f16 or bf16, found \(dtype)")
        }
    }

    func options(learningRate: Double, train: [ParameterGroup], losses: LossOptions?) -> TrainingOptions {
        var o = TrainingOptions()
        o.steps = steps
        o.batchSize = batch
        o.sequenceLength = seq
        o.accumulation = accumulate
        o.seed = seed
        o.learningRate = learningRate
        o.warmupSteps = warmup
        o.minLRFraction = minLRFraction
        o.adam = AdamWOptions(beta1: beta1, beta2: beta2, weightDecay: weightDecay, decayNormsAndBiases: decayNormsAndBiases)
        o.gradClip = gradClip
        o.train = train
        o.losses = losses
        o.evalEvery = evalEvery
        o.evalWindows = evalWindows
        o.checkpointEvery = checkpointEvery
        o.outputDirectory = URL(fileURLWithPath: out)
        o.logURL = log.map { URL(fileURLWithPath: $0) }
        o.saveDType = DType(userName: dtype) ?? .f32
        o.finalTrainingState = !noFinalState
        o.resume = resume.map { URL(fileURLWithPath: $0) }
        o.dumpBatches = dumpBatches.map { URL(fileURLWithPath: $0) }
        return o
    }
}

/// Parses `--train all|routers|experts|attention|ffn|embeddings|norms` (comma-separated union).
func parseGroups(_ s: String) throws -> [ParameterGroup] {
    let groups = try s.split(separator: ",").map { part -> ParameterGroup in
        guard let g = ParameterGroup(rawValue: String(part)) else {
            throw ValidationError("--train: `\(part)` is not a parameter group; use \(ParameterGroup.allCases.map(\.rawValue).joined(separator: ", ")) (comma-separated)")
        }
        return g
    }
    if groups.isEmpty { throw ValidationError("--train needs at least one parameter group") }
    return groups
}

/// The domains of `--data` (FILE or NAME=FILE[:WEIGHT]; a name given twice gathers its files;
/// plain files belong to `defaultName`) with the held-out files of `--val-data` (FILE when there is
/// one domain, or NAME=FILE).
func domainSpecs(data: [String], valData: [String], defaultName: String) throws -> [TrainingDomain] {
    var specs: [TrainingDomain] = []
    for d in data {
        let s = try TrainingDomain.parse(d, defaultName: defaultName)
        if let j = specs.firstIndex(where: { $0.name == s.name }) {
            guard s.weight == 1 || s.weight == specs[j].weight else {
                throw ValidationError("domain `\(s.name)` has two weights (\(specs[j].weight) and \(s.weight))")
            }
            specs[j].files += s.files
        } else {
            specs.append(s)
        }
    }
    for v in valData {
        let s = try TrainingDomain.parse(v, defaultName: specs.count == 1 ? specs[0].name : "")
        guard let j = specs.firstIndex(where: { $0.name == s.name }) else {
            throw ValidationError("--val-data `\(v)`: no --data domain is named `\(s.name)`")
        }
        specs[j].validationFiles = (specs[j].validationFiles ?? []) + s.files
    }
    return specs
}

/// Runs a training job with a progress bar and prints the summary.
func runTraining(kind: String, flags: TrainingFlags, data: [TrainingDomain], options: TrainingOptions,
                 check: (ModelConfig) throws -> Void) throws {
    let source = try Checkpoint.open(flags.model)
    try check(source.config)
    let progress = Progress(title: kind, total: options.steps)
    var meter = TrainingProgressMeter(total: options.steps, every: flags.printEvery)
    var lastValidation: ValidationRecord?
    let report: TrainingReport
    do {
        report = try train(modelPath: flags.model, data: data, options: options, validationFraction: flags.valFraction) { event in
            switch event {
            case let .step(r, _):
                var detail = String(format: "loss %.4f  lr %.2e  ", r.loss, r.lr) + "\(formatCount(Int(r.tokensPerSecond))) tok/s"
                if let v = lastValidation { detail += String(format: "  val %.4f", v.loss) }
                progress.update(done: r.step, detail: detail)
                // Without a terminal (a log file, CI) the bar is not drawn: a line every N steps instead.
                if let line = meter.add(r, now: Double(DispatchTime.now().uptimeNanoseconds) / 1e9), !progress.isInteractive {
                    var text = "\(kind): step \(line.step)/\(line.total)  " + String(format: "loss %.4f", line.meanLoss)
                        + (line.steps > 1 ? " (mean of \(line.steps) steps)" : "") + String(format: "  lr %.2e  ", line.lr)
                        + "\(formatCount(Int(line.tokensPerSecond))) tok/s  ETA \(formatDuration(line.etaSeconds))"
                    if let v = lastValidation { text += String(format: "  val %.4f (step %d)", v.loss, v.step) }
                    printError(text)
                }
            case let .validation(v):
                lastValidation = v
                if !progress.isInteractive {
                    printError("\(kind): validation at step \(v.step): " + String(format: "loss %.4f", v.loss)
                               + (v.domains.count > 1 ? "  (" + v.domains.sorted { $0.key < $1.key }.map { "\($0.key) " + String(format: "%.4f", $0.value) }.joined(separator: ", ") + ")" : ""))
                }
            case .checkpoint:
                break
            }
        }
        progress.finish()
    } catch {
        progress.fail()
        throw error
    }
    let tokens = report.steps.last?.tokens ?? 0
    print("\(kind): \(report.steps.count) steps, \(formatCount(tokens)) tokens seen, "
          + String(format: "%.1f s, %.0f tokens/s", report.seconds, report.tokensPerSecond))
    // Smoothed: one batch's loss is too noisy to compare (docs/training.md, "Output").
    if let total = report.smoothedLoss, let lm = report.smoothedLMLoss {
        let what = report.steps.count < 10 ? "first and last step" : "mean of the first and last \(total.steps) steps, 10 % each"
        print(String(format: "  training loss   %.4f -> %.4f (LM %.4f -> %.4f; ", total.first, total.last, lm.first, lm.last) + what + ")")
    }
    if let first = report.validation.first, let last = report.validation.last {
        print(String(format: "  validation loss %.4f -> %.4f (unigram entropy of the held-out text %.4f)", first.loss, last.loss,
                     report.unigramEntropy))
        for (name, loss) in last.domains.sorted(by: { $0.key < $1.key }) where last.domains.count > 1 {
            print("    \(name) " + String(format: "%.4f", loss))
        }
    }
    let m = report.memory
    print("  memory: parameters \(formatBytes(m.parameters)), gradients \(formatBytes(m.gradients)), AdamW state \(formatBytes(m.optimizerState)), activations \(formatBytes(m.activations)) (total \(formatBytes(m.total)))")
    if let out = report.outputDirectory { print("  saved \(out)") }
    if let log = flags.log { print("  log \(log)") }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Continued pre-training of a dense model on text (the Branch-Train step).",
        discussion: """
        Every --data file is tokenised with the model's tokenizer into one token stream; training samples random
        windows of --seq tokens (seeded). The last --val-fraction of each file is held out (or --val-data) and its
        loss reported before, during (--eval-every) and after training. AdamW (decoupled weight decay, not on norms
        and biases), linear warm-up then cosine decay to --min-lr-fraction of --lr, global-norm clipping.
        Checkpoints are HF directories (config unchanged, tokenizer copied) with training_state.{json,safetensors}
        beside them for --resume. See docs/training.md.
        """)

    @OptionGroup var flags: TrainingFlags

    @Option(parsing: .upToNextOption, help: "Training text files (FILE..., or NAME=FILE[:WEIGHT] domains).")
    var data: [String] = []

    @Option(name: .customLong("val-data"), parsing: .upToNextOption, help: "Held-out text files, FILE or NAME=FILE (instead of holding out --val-fraction of --data).")
    var valData: [String] = []

    @Option(help: "Peak learning rate.")
    var lr = 3e-4

    @Option(help: "Parameter groups to train: all, routers, experts, attention, ffn, embeddings, norms (comma-separated).")
    var train = "all"

    func validate() throws {
        if data.isEmpty { throw ValidationError("give at least one --data FILE") }
    }

    func run() throws {
        let specs = try domainSpecs(data: data, valData: valData, defaultName: "train")
        let options = flags.options(learningRate: lr, train: try parseGroups(train), losses: LossOptions(aux: .none, auxAlpha: 0, zBeta: 0))
        try runTraining(kind: "train", flags: flags, data: specs, options: options) { config in
            guard config.isDense else {
                throw BamError.usage("\(flags.model) is a mixture (\(config.architectureName)); `train` continues pre-training dense models — use `bam-mix finetune` for BTX/BAM models (it adds the router losses)")
            }
        }
    }
}

struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "MoE finetuning of a mixed (BTX / BAM) model: LM loss + load balancing (+ z-loss).",
        discussion: """
        --data NAME=FILE[:WEIGHT] (repeat) names the domains; windows are drawn from the domains by weight
        (uniform by default, as BAM's 25% each). Loss: next-token cross-entropy + sum over FFN mixture layers of
        alpha * balance + beta * z, where balance is BTX's E * sum u_i P_i (u = mean gate, P = mean probability) or
        the Switch/HF form E * sum f_i P_i (f = hard fraction of routed tokens); z = mean logsumexp(router logits)^2.
        The loss kind and coefficients come from the checkpoint's config.json (router_aux_loss_kind,
        router_aux_loss_coef, router_z_loss_coef: what `mix` wrote for the method); --aux-loss, --aux-alpha and
        --z-loss override them, and the checkpoints written state what was used. BAM attention routers have no
        auxiliary loss. --train routers trains only the routers. The JSONL log adds
        the expert load of every layer. See docs/training.md.
        """)

    @OptionGroup var flags: TrainingFlags

    @Option(parsing: .upToNextOption, help: "Domains: NAME=FILE[:WEIGHT] (repeat the name for several files).")
    var data: [String] = []

    @Option(name: .customLong("val-data"), parsing: .upToNextOption, help: "Held-out text per domain: NAME=FILE (instead of --val-fraction of --data).")
    var valData: [String] = []

    @Option(help: "Peak learning rate.")
    var lr = 1e-4

    @Option(help: "Parameter groups to train: all, routers, experts, attention, ffn, embeddings, norms (comma-separated).")
    var train = "all"

    @Option(name: .customLong("aux-loss"), help: "Load-balancing loss: btx, switch or none (default: the checkpoint's router_aux_loss_kind).")
    var auxLoss: AuxLossKind?

    @Option(name: .customLong("aux-alpha"), help: "Coefficient of the load-balancing loss (default: the checkpoint's router_aux_loss_coef).")
    var auxAlpha: Double?

    @Option(name: .customLong("z-loss"), help: "Coefficient of the router z-loss (default: the checkpoint's router_z_loss_coef).")
    var zLoss: Double?

    func validate() throws {
        if data.isEmpty { throw ValidationError("give at least one --data NAME=FILE") }
    }

    func run() throws {
        let specs = try domainSpecs(data: data, valData: valData, defaultName: "data")
        // The router losses: the checkpoint's recipe (what `mix` wrote for the method; a resumed run's
        // checkpoint states what the run used), each flag overriding its field.
        let recipeSource = try Checkpoint.open(flags.resume ?? flags.model).config
        let (losses, description) = LossOverrides(aux: auxLoss, auxAlpha: auxAlpha, zBeta: zLoss).resolve(recipeSource)
        let options = flags.options(learningRate: lr, train: try parseGroups(train), losses: losses)
        try runTraining(kind: "finetune", flags: flags, data: specs, options: options) { config in
            guard !config.isDense else {
                throw BamError.usage("\(flags.model) is a dense model; `finetune` trains mixtures (BTX/BAM) — use `bam-mix train` for dense models")
            }
            printError("finetune: \(description)")
            if let moe = config.moe {
                // The routing is the checkpoint's (sampled top-1 samples while training, argmax in validation).
                printError("finetune: FFN routing \(moe.routing.summary(experts: moe.experts)) (from the checkpoint's config.json)")
            }
        }
    }
}
