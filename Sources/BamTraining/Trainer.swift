import BamFormats
import BamModels
import BamTensors
import BamTokenizers
import Foundation

/// Parameter groups that `--train` selects (a parameter trains when any selected group holds it).
public enum ParameterGroup: String, Sendable, CaseIterable, Codable {
    /// Every parameter.
    case all
    /// The FFN routers and the BAM attention routers (the new parameters of a mix).
    case routers
    /// FFN and attention experts (projections and their biases, shared K/V included).
    case experts
    /// The attention side: projections, biases, shared K/V and the attention router.
    case attention
    /// The FFN side: expert projections, biases and the FFN router.
    case ffn
    /// Token embeddings and the output projection.
    case embeddings
    /// Norm weights.
    case norms

    public func contains(_ spec: ParameterSpec) -> Bool {
        switch self {
        case .all: true
        case .routers: spec.isRouter
        case .experts: [.attention, .attentionBias, .sharedKV, .feedForward, .feedForwardBias].contains(spec.role)
        case .attention: [.attention, .attentionBias, .sharedKV, .attentionRouter].contains(spec.role)
        case .ffn: [.feedForward, .feedForwardBias, .ffnRouter].contains(spec.role)
        case .embeddings: spec.role == .embedding || spec.role == .lmHead
        case .norms: spec.role == .norm
        }
    }
}

/// Everything a training run is told (the CLI's flags; the demo sets them in code).
public struct TrainingOptions: Sendable {
    /// Total optimiser steps (a resumed run continues up to this many).
    public var steps = 100
    /// Sequences per micro-batch (B) and tokens per sequence (T).
    public var batchSize = 4
    public var sequenceLength = 256
    /// Micro-batches whose gradients are averaged into one step.
    public var accumulation = 1
    public var seed: UInt64 = 0
    /// Peak learning rate, linear warm-up steps (nil: 10% of the steps, at most 100) and the
    /// floor of the cosine decay as a fraction of the peak.
    public var learningRate = 3e-4
    public var warmupSteps: Int? = nil
    public var minLRFraction = 0.1
    public var adam = AdamWOptions()
    /// Clip the global gradient norm to this value (0: no clipping).
    public var gradClip = 1.0
    public var train: [ParameterGroup] = [.all]
    /// The router losses; nil trains with the recipe the checkpoint's config.json states
    /// (`ModelConfig.routerLossRecipe`), which is what `mix` wrote for the method.
    public var losses: LossOptions? = nil
    /// Validation every this many steps (0: only before the first and after the last step), over
    /// at most `evalWindows` windows per domain.
    public var evalEvery = 0
    public var evalWindows = 32
    /// Save a checkpoint every this many steps (0: only at the end).
    public var checkpointEvery = 0
    /// Where checkpoints go (nil: nothing is written).
    public var outputDirectory: URL? = nil
    /// JSONL log (one line per step and per validation).
    public var logURL: URL? = nil
    /// Weights dtype of the checkpoints (f32 keeps training exact; resume needs f32).
    public var saveDType: DType = .f32
    /// Write the optimiser state beside the final checkpoint too (intermediate ones always have it).
    public var finalTrainingState = true
    /// Continue from a checkpoint written by a run (its weights, optimiser state, step and RNG).
    public var resume: URL? = nil
    /// Write the token batches the run trains on to this .npy file at the end: int32 of shape
    /// [steps, accumulation, 2, B, T], [s, a, 0] the inputs and [s, a, 1] the targets (-1: not
    /// scored) of micro-batch a of the run's step s — what another trainer (bam_mix_torch's
    /// finetune, --batches) needs to train on exactly the same tokens.
    public var dumpBatches: URL? = nil

    public init() {}

    public var schedule: LearningRateSchedule {
        LearningRateSchedule(peak: learningRate, warmupSteps: warmupSteps ?? min(100, steps / 10), totalSteps: steps,
                             minFraction: minLRFraction)
    }

    /// Checks the numbers (flags) before anything is loaded.
    public func validate() throws {
        /// Refuses `option` unless `ok`, saying what it must be and what it is.
        func check(_ ok: Bool, _ option: BamError.Option, expected: String, found: Any, _ what: BamError.Text? = nil) throws {
            if !ok { throw BamError.usage(what ?? "\(option)", expected: expected, found: "\(found)") }
        }
        try check(steps >= 1, TrainField.steps, expected: "at least 1", found: steps)
        try check(batchSize >= 1, TrainField.batchSize, expected: "at least 1", found: batchSize)
        try check(sequenceLength >= 1, TrainField.sequenceLength, expected: "at least 1", found: sequenceLength)
        try check(accumulation >= 1, TrainField.accumulation, expected: "at least 1", found: accumulation)
        try check(learningRate > 0 && learningRate.isFinite, TrainField.learningRate, expected: "a positive number", found: learningRate)
        try check((warmupSteps ?? 0) >= 0, TrainField.warmupSteps, expected: "not negative", found: warmupSteps ?? 0)
        try check(minLRFraction >= 0 && minLRFraction <= 1, TrainField.minLRFraction, expected: "0...1", found: minLRFraction)
        try check(adam.weightDecay >= 0, TrainField.weightDecay, expected: "not negative", found: adam.weightDecay)
        try check(adam.beta1 >= 0 && adam.beta1 < 1 && adam.beta2 >= 0 && adam.beta2 < 1, TrainField.beta1,
                  expected: "[0, 1) each", found: "\(adam.beta1) and \(adam.beta2)", "AdamW's \(TrainField.beta1) and \(TrainField.beta2)")
        try check(gradClip >= 0, TrainField.gradClip, expected: "not negative (0 turns clipping off)", found: gradClip)
        if let losses {
            try check(losses.auxAlpha >= 0 && losses.zBeta >= 0, TrainField.auxAlpha, expected: "not negative",
                      found: "\(losses.auxAlpha) and \(losses.zBeta)", "\(TrainField.auxAlpha) and \(TrainField.zBeta)")
        }
        try check(evalEvery >= 0, TrainField.evalEvery, expected: "not negative", found: evalEvery)
        try check(checkpointEvery >= 0, TrainField.checkpointEvery, expected: "not negative", found: checkpointEvery)
        try check(evalWindows >= 1, TrainField.evalWindows, expected: "at least 1", found: evalWindows)
        try check(!train.isEmpty, TrainField.train, expected: "at least one parameter group", found: "none")
    }
}

/// One optimiser step, as logged.
public struct StepRecord: Sendable, Codable {
    public var step: Int
    /// Total loss (LM + alpha * aux + beta * z), mean over the micro-batches.
    public var loss: Double
    public var lmLoss: Double
    /// The selected balancing loss (unweighted, summed over layers); 0 for dense models.
    public var auxLoss: Double
    public var btxLoss: Double
    public var switchLoss: Double
    public var zLoss: Double
    public var lr: Double
    /// Global gradient norm before clipping.
    public var gradNorm: Double
    public var tokens: Int
    public var seconds: Double
    public var tokensPerSecond: Double
    /// Per FFN mixture layer, the fraction of routed tokens each expert received.
    public var expertLoad: [[Double]]
    /// Per BAM attention layer, the mean attention gate of each expert.
    public var attentionLoad: [[Double]]

    enum CodingKeys: String, CodingKey {
        case step, loss, lmLoss = "lm_loss", auxLoss = "aux_loss", btxLoss = "btx_loss", switchLoss = "switch_loss",
             zLoss = "z_loss", lr, gradNorm = "grad_norm", tokens, seconds, tokensPerSecond = "tokens_per_second",
             expertLoad = "expert_load", attentionLoad = "attention_load"
    }
}

/// A validation pass: mean next-token loss over the held-out windows.
public struct ValidationRecord: Sendable, Codable {
    public var step: Int
    /// Mean over all scored held-out tokens of all domains.
    public var loss: Double
    /// Per domain.
    public var domains: [String: Double]
    public var tokens: Int

    enum CodingKeys: String, CodingKey { case step, loss = "val_loss", domains = "val_loss_by_domain", tokens = "val_tokens" }
}

/// What a run did: the loss curve, validation losses, throughput and memory.
public struct TrainingReport: Sendable, Codable {
    public var steps: [StepRecord]
    public var validation: [ValidationRecord]
    public var seconds: Double
    public var tokensPerSecond: Double
    public var trainableParameters: Int
    public var memory: MemoryReport
    public var outputDirectory: String?
    /// Unigram entropy of the held-out tokens (nats): the loss of a frequency-only model.
    public var unigramEntropy: Double

    enum CodingKeys: String, CodingKey {
        case steps, validation, seconds, tokensPerSecond = "tokens_per_second", trainableParameters = "trainable_parameters",
             memory, outputDirectory = "output_directory", unigramEntropy = "unigram_entropy"
    }
}

/// Bytes a training step holds, by kind.
public struct MemoryReport: Sendable, Codable {
    public var parameters: Int
    public var gradients: Int
    public var optimizerState: Int
    public var activations: Int
    public var total: Int { parameters + gradients + optimizerState + activations }

    enum CodingKeys: String, CodingKey { case parameters, gradients, optimizerState = "optimizer_state", activations }
}

/// What a run reports while it goes.
public enum TrainingEvent: Sendable {
    case step(StepRecord, total: Int)
    case validation(ValidationRecord)
    case checkpoint(URL, step: Int)
}

/// A training run: the model, its optimiser, the data and the sampling state.
public final class Trainer {
    /// The model's config, stating the router losses this run trains with (so do its checkpoints).
    public let config: ModelConfig
    public let model: TrainingModel
    public let optimizer: AdamW
    public let options: TrainingOptions
    /// The router losses: `options.losses`, or the checkpoint's recipe.
    public let losses: LossOptions
    public let data: TrainingData
    /// The directory whose tokenizer and generation files every checkpoint copies.
    let sideFiles: URL?
    public private(set) var step = 0
    var rng: SplitMix64
    var tokensSeen = 0
    private var log: FileHandle?
    /// The sampled micro-batches of each step, kept when `options.dumpBatches` is set.
    private var sampled: [[(inputs: [Int32], targets: [Int32])]] = []

    /// Loads `checkpoint` (or the run to resume) and prepares the optimiser.
    public init(checkpoint: Checkpoint, data: TrainingData, options: TrainingOptions) throws {
        try options.validate()
        // A resumed run continues from the weights of the run's checkpoint.
        var source = checkpoint
        if let resume = options.resume, resume.standardizedFileURL.path != checkpoint.path.standardizedFileURL.path {
            source = try Checkpoint.open(resume.path)
        }
        losses = options.losses ?? LossOptions(recipe: source.config.routerLossRecipe)
        config = source.config.withRouterLossRecipe(losses.recipe)
        if options.sequenceLength > config.maxPositions {
            throw BamError.usage("\(TrainField.sequenceLength) exceeds the model's max_position_embeddings", expected: "at most \(config.maxPositions)",
                                 found: "\(options.sequenceLength)")
        }
        // Training-time randomness HF models can ask for is not implemented: refuse rather than
        // train something other than what the config describes.
        if let jitter = config.moe?.routerJitterNoise, jitter != 0 {
            throw BamError.unsupported("config `router_jitter_noise` = \(jitter): router jitter is not implemented in bam-mix training; set it to 0 in config.json", file: source.path.path)
        }
        for key in ["attention_dropout", "hidden_dropout", "resid_pdrop", "embd_pdrop"] {
            if let p = config.raw[key]?.doubleValue, p != 0 {
                throw BamError.unsupported("config `\(key)` = \(p): dropout is not implemented in bam-mix training; set it to 0 in config.json", file: source.path.path)
            }
        }
        // Weights, gradients and two AdamW moments: 16 bytes a parameter before activations.
        try ModelMemory.requireFits(config: config, bytesPerParameter: 16, purpose: "training")
        let weights = try TransformerWeights.load(config: config, store: source.store)
        let groups = options.train
        model = TrainingModel(config: config, weights: weights, losses: losses) { spec in groups.contains { $0.contains(spec) } }
        guard !model.trainable.isEmpty else {
            throw BamError.usage("\(TrainField.train, groups.map(\.rawValue).joined(separator: ",")) selects no parameter of this \(config.architectureName) model (a dense model has no routers)")
        }
        optimizer = AdamW(parameters: model.trainable, options: options.adam)
        self.options = options
        self.data = data
        // A GGUF's tokenizer is rebuilt into a cache directory; checkpoints (HF directories) copy it from there.
        sideFiles = source.container == .gguf ? source.tokenizerURL?.deletingLastPathComponent() : source.directory
        rng = SplitMix64(seed: options.seed)
        if let resume = options.resume { try restoreState(from: resume) }
    }

    // MARK: steps

    /// One optimiser step on `accumulation` micro-batches sampled from the data.
    public func trainStep() throws -> StepRecord {
        let batches = (0..<options.accumulation).map { _ -> (inputs: [Int32], targets: [Int32], mask: [Bool]?) in
            let b = data.sampleBatch(B: options.batchSize, T: options.sequenceLength, rng: &rng)
            return (b.inputs, b.targets, b.mask)
        }
        if options.dumpBatches != nil { sampled.append(batches.map { (inputs: $0.inputs, targets: $0.targets) }) }
        return try trainStep(batches: batches)
    }

    /// One optimiser step on the given micro-batches (B*T inputs and targets each): their mean
    /// loss's gradient (each backward scaled by 1 / micro-batches), clipping, AdamW with the
    /// scheduled rate. Batches without padding.
    public func trainStep(batches: [(inputs: [Int32], targets: [Int32])]) throws -> StepRecord {
        try trainStep(batches: batches.map { (inputs: $0.inputs, targets: $0.targets, mask: nil) })
    }

    /// One optimiser step on micro-batches with their token masks (false: padding, which the
    /// router statistics leave out; nil: none).
    public func trainStep(batches: [(inputs: [Int32], targets: [Int32], mask: [Bool]?)]) throws -> StepRecord {
        let o = options
        let B = o.batchSize, T = o.sequenceLength
        let started = DispatchTime.now().uptimeNanoseconds
        model.zeroGradients()
        var lm = 0.0, total = 0.0, router = RouterLossValues()
        var expertLoad: [[Double]] = [], attentionLoad: [[Double]] = []
        let scale = 1 / Double(batches.count)
        defer { model.gumbelNoise = nil }
        for (i, batch) in batches.enumerated() {
            // Sampled top-1 routing draws its Gumbel noise per step and micro-batch (validation routes by argmax).
            model.gumbelNoise = .seeded(seed: o.seed, step: step, microBatch: i)
            let l = try model.forward(inputs: batch.inputs, targets: batch.targets, B: B, T: T, tokenMask: batch.mask)
            guard l.total.isFinite else {
                throw BamError(.numeric, at: .step(step + 1), "the loss is not finite", expected: "a finite loss", found: "\(l.total) (LM \(l.lm))",
                               hint: "lower \(TrainField.learningRate) or raise \(TrainField.warmupSteps)")
            }
            try model.backward(lossScale: Float(scale))
            lm += l.lm * scale
            total += l.total * scale
            router = router + RouterLossValues(btx: l.router.btx * scale, switchLoss: l.router.switchLoss * scale, z: l.router.z * scale)
            expertLoad = accumulate(expertLoad, l.expertLoad, scale)
            attentionLoad = accumulate(attentionLoad, l.attentionLoad, scale)
        }
        let norm = gradientNorm(model.trainable.map(\.gradient))
        guard norm.isFinite else {
            throw BamError(.numeric, at: .step(step + 1), "the gradient norm is not finite", found: "\(norm)", hint: "lower \(TrainField.learningRate)")
        }
        let lr = o.schedule.rate(at: step)
        optimizer.update(lr: lr, gradientScale: o.gradClip > 0 ? clipCoefficient(norm: norm, maxNorm: o.gradClip) : 1,
                         skipping: o.adam.skipIdleExperts ? model.idleParameters : [])
        step += 1
        let tokens = B * T * batches.count
        tokensSeen += tokens
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        return StepRecord(step: step, loss: total, lmLoss: lm, auxLoss: router.aux(losses.aux), btxLoss: router.btx,
                          switchLoss: router.switchLoss, zLoss: router.z, lr: lr, gradNorm: norm, tokens: tokensSeen,
                          seconds: seconds, tokensPerSecond: Double(tokens) / seconds, expertLoad: expertLoad,
                          attentionLoad: attentionLoad)
    }

    private func accumulate(_ a: [[Double]], _ b: [[Double]], _ scale: Double) -> [[Double]] {
        if a.isEmpty { return b.map { $0.map { $0 * scale } } }
        return zip(a, b).map { x, y in zip(x, y).map { $0 + $1 * scale } }
    }

    /// Mean next-token loss over each domain's fixed validation windows (forward passes only).
    public func validate() throws -> ValidationRecord {
        let B = options.batchSize, T = options.sequenceLength
        var sum = 0.0, count = 0
        var domains: [String: Double] = [:]
        for (d, domain) in data.domains.enumerated() {
            var dSum = 0.0, dCount = 0
            for batch in data.validationBatches(domain: d, B: B, T: T, maxWindows: options.evalWindows) {
                let l = try model.forward(inputs: batch.inputs, targets: batch.targets, B: B, T: T, tokenMask: batch.mask)
                dSum += l.lm * Double(l.scored)
                dCount += l.scored
            }
            if dCount > 0 { domains[domain.name] = dSum / Double(dCount) }
            sum += dSum
            count += dCount
        }
        guard count > 0 else { throw BamError.usage("no validation tokens: the held-out split is empty") }
        return ValidationRecord(step: step, loss: sum / Double(count), domains: domains, tokens: count)
    }

    /// Runs until `options.steps`, validating, logging and checkpointing as told.
    public func run(progress: (TrainingEvent) -> Void = { _ in }) throws -> TrainingReport {
        let o = options
        if let out = o.outputDirectory, FileManager.default.fileExists(atPath: out.path),
           o.resume?.standardizedFileURL.path != out.standardizedFileURL.path {
            throw BamError.usage("the output directory already exists", file: out.path,
                                 hint: "choose a new \(TrainField.outputDirectory) (or set \(TrainField.resume) to it to continue that run)")
        }
        if let url = o.logURL { log = try openLog(url, append: o.resume != nil) }
        defer { try? log?.close(); log = nil }
        if config.moe != nil { try write(RouterLossRecord(losses), type: "router_losses") }
        var steps: [StepRecord] = [], validation: [ValidationRecord] = []
        func validateNow() throws {
            let v = try validate()
            validation.append(v)
            try write(v, type: "validation")
            progress(.validation(v))
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let firstStep = step
        if step == 0 { try validateNow() }
        while step < o.steps {
            let r = try trainStep()
            steps.append(r)
            try write(r, type: "step")
            progress(.step(r, total: o.steps))
            if o.evalEvery > 0 && step % o.evalEvery == 0 && step < o.steps { try validateNow() }
            if let out = o.outputDirectory, o.checkpointEvery > 0, step % o.checkpointEvery == 0, step < o.steps {
                try save(to: out, trainingState: true)
                progress(.checkpoint(out, step: step))
            }
        }
        try validateNow()
        if let out = o.outputDirectory {
            try save(to: out, trainingState: o.finalTrainingState)
            progress(.checkpoint(out, step: step))
        }
        if let url = o.dumpBatches { try writeBatchDump(to: url) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let tokens = (step - firstStep) * o.batchSize * o.sequenceLength * o.accumulation
        return TrainingReport(steps: steps, validation: validation, seconds: seconds,
                              tokensPerSecond: steps.isEmpty ? 0 : Double(tokens) / steps.reduce(0) { $0 + $1.seconds },
                              trainableParameters: model.trainable.reduce(0) { $0 + $1.parameter.count }, memory: memory,
                              outputDirectory: o.outputDirectory?.path, unigramEntropy: data.unigramEntropy())
    }

    /// Parameters, gradients, optimiser state and activations, in bytes.
    public var memory: MemoryReport {
        MemoryReport(parameters: model.weights.namedParameters(config: config).reduce(0) { $0 + $1.1.byteCount },
                     gradients: model.gradientBytes, optimizerState: optimizer.stateBytes, activations: model.activationBytes)
    }

    /// The batches of the steps this run took, as `TrainingOptions.dumpBatches` describes.
    private func writeBatchDump(to url: URL) throws {
        let B = options.batchSize, T = options.sequenceLength, A = options.accumulation
        var values: [Int32] = []
        values.reserveCapacity(sampled.count * A * 2 * B * T)
        for step in sampled {
            for batch in step { values += batch.inputs; values += batch.targets }
        }
        try NumPy.write(int32: values, shape: [sampled.count, A, 2, B, T], to: url)
    }

    // MARK: log

    private func openLog(_ url: URL, append: Bool) throws -> FileHandle {
        let fm = FileManager.default
        try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !append || !fm.fileExists(atPath: url.path) {
            guard fm.createFile(atPath: url.path, contents: nil) else { throw BamError.io("cannot create the log file", file: url.path) }
        }
        let h = try FileHandle(forWritingTo: url)
        try h.seekToEnd()
        return h
    }

    /// One JSONL line: {"type": ..., fields...}.
    private func write<T: Encodable>(_ record: T, type: String) throws {
        guard let log else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = try encoder.encode(record)
        line.removeLast()  // the closing brace; the type goes last
        line += Data(",\"type\":\"\(type)\"}\n".utf8)
        try log.write(contentsOf: line)
    }

    // MARK: checkpoints and resume

    static let stateTensorsFile = "training_state.safetensors"
    static let stateFile = "training_state.json"

    /// Writes the model as an HF directory (config unchanged but for the router losses the run used,
    /// tokenizer files copied), replacing
    /// `directory` atomically, with the optimiser moments, step and RNG state beside it when asked.
    public func save(to directory: URL, trainingState: Bool) throws {
        var tensors: [String: [TensorWriteEntry]] = [:]
        var extra: [String: () throws -> Data] = [:]
        if trainingState {
            tensors[Self.stateTensorsFile] = zip(model.trainable, zip(optimizer.m, optimizer.v)).flatMap { p, mv in
                [TensorWriteEntry.float("exp_avg." + p.spec.name, mv.0), TensorWriteEntry.float("exp_avg_sq." + p.spec.name, mv.1)]
            }
            let state = TrainingState(step: step, rngState: String(rng.state), tokens: tokensSeen, seed: String(options.seed),
                                      steps: options.steps, learningRate: options.learningRate,
                                      train: options.train.map(\.rawValue), weightsDType: options.saveDType.rawValue,
                                      parameterSteps: Dictionary(uniqueKeysWithValues: zip(model.trainable.map(\.spec.name), optimizer.steps)))
            extra[Self.stateFile] = {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                return try encoder.encode(state) + Data("\n".utf8)
            }
        }
        try CheckpointWriter.save(weights: model.weights, config: config, to: directory, dtype: options.saveDType,
                                  sideFilesFrom: sideFiles, extraTensors: tensors, extraData: extra, replace: true)
    }

    private func restoreState(from directory: URL) throws {
        let jsonURL = directory.appendingPathComponent(Self.stateFile)
        guard let json = try? Data(contentsOf: jsonURL) else {
            throw BamError.usage("\(TrainField.resume) needs a checkpoint written by training with its training state, and this directory has no \(Self.stateFile)",
                                 file: directory.path)
        }
        let state: TrainingState
        do { state = try JSONDecoder().decode(TrainingState.self, from: json) } catch {
            throw BamError.format(jsonURL.path, "not a training state (\(error))")
        }
        guard state.weightsDType == DType.f32.rawValue else {
            throw BamError.unsupported("the checkpoint holds \(state.weightsDType) weights; resuming needs the float32 checkpoints training writes by default", file: directory.path)
        }
        guard let rngState = UInt64(state.rngState) else { throw BamError.format(jsonURL.path, "rng_state is not an unsigned integer") }
        guard state.train == options.train.map(\.rawValue) else {
            throw BamError.mismatch("resume with the parameter groups the run was started with (\(TrainField.train))", file: directory.path,
                                    expected: state.train.joined(separator: ","), found: options.train.map(\.rawValue).joined(separator: ","))
        }
        let file = try SafetensorsFile(path: directory.appendingPathComponent(Self.stateTensorsFile).path)
        for (i, p) in model.trainable.enumerated() {
            for (prefix, t) in [("exp_avg.", optimizer.m[i]), ("exp_avg_sq.", optimizer.v[i])] {
                let name = prefix + p.spec.name
                guard let info = file.entry(name)?.info, info.shape == t.shape, info.dtype == .f32 else {
                    throw BamError.mismatch("the tensor is missing or not float32 of the parameter's shape", file: file.path, at: .tensor(name),
                                            expected: "float32 \(t.shape)", found: file.entry(name).map { "\($0.info.dtype.rawValue.lowercased()) \($0.info.shape)" } ?? "missing",
                                            hint: "was the run started with other \(TrainField.train) groups or another model?")
                }
                let raw = try file.bytes(name)
                UnsafeMutableRawPointer(t.data).copyMemory(from: raw.baseAddress!, byteCount: t.byteCount)
            }
        }
        optimizer.restore(steps: try model.trainable.map { p in
            guard let n = state.parameterSteps[p.spec.name] else {
                throw BamError.format(jsonURL.path, "parameter_steps has no entry for `\(p.spec.name)`")
            }
            return n
        })
        step = state.step
        rng = SplitMix64(seed: rngState)
        tokensSeen = state.tokens
    }
}

/// training_state.json: what besides the weights and moments a resumed run needs.
struct TrainingState: Codable {
    var step: Int
    /// SplitMix64 state as a decimal string (JSON numbers lose 64-bit integers in many readers).
    var rngState: String
    var tokens: Int
    var seed: String
    var steps: Int
    var learningRate: Double
    var train: [String]
    var weightsDType: String
    /// AdamW updates per parameter (experts no token reached in a step skip it).
    var parameterSteps: [String: Int]

    enum CodingKeys: String, CodingKey {
        case step, rngState = "rng_state", tokens, seed, steps, learningRate = "learning_rate", train,
             weightsDType = "weights_dtype", parameterSteps = "parameter_steps"
    }
}

/// Loads the model at `modelPath`, tokenises `data` with its tokenizer and trains (the library
/// entry point behind `bam-mix train` and `finetune`, and what the demo calls).
public func train(modelPath: String, data specs: [TrainingDomain], options: TrainingOptions, validationFraction: Double = 0.05,
                  progress: (TrainingEvent) -> Void = { _ in }) throws -> TrainingReport {
    try options.validate()
    let checkpoint = try Checkpoint.open(options.resume?.path ?? modelPath)
    if case .none = checkpoint.tokenizerSource {
        throw BamError.usage("the model has no tokenizer (no tokenizer.json, no GGUF vocabulary); training tokenises text with the model's own tokenizer", file: checkpoint.path.path)
    }
    let tokenizer = try checkpoint.loadTokenizer()
    let data = try TrainingData(specs: specs, tokenizer: tokenizer, validationFraction: validationFraction)
    let trainer = try Trainer(checkpoint: checkpoint, data: data, options: options)
    return try trainer.run(progress: progress)
}
