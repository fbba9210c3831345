import ArgumentParser
import BamEvaluation
import BamFormats
import BamMixing
import BamPipeline
import BamTensors
import BamTraining

/// How the command line words a library error: the same fields and sentence, with each option of
/// the library's API (`MixOptions.numExperts`) named by the flag that sets it (`--num-experts`).
/// An option without a flag here keeps its API name, so a missing entry degrades the wording but
/// never hides the option.
enum ErrorWording {
    static let flags: [BamError.Option: String] = {
        typealias M = MixOptions.Field
        typealias T = TrainingOptions.Field
        return [
            M.method: "--method", M.experts: "--expert", M.output: "--out", M.topK: "--top-k",
            M.renormalize: "--renormalize", M.router: "--router", M.routerScale: "--router-scale", M.routerPrompts: "--router-prompts",
            M.routerBaseExpert: "--router-base-expert", M.seed: "--seed", M.weights: "--weights",
            M.attention: "--attention", M.attentionRouting: "--attention-routing", M.attentionTopK: "--attention-top-k",
            M.block: "--block", M.numExperts: "--num-experts", M.upcycleNoise: "--noise", M.dropRatio: "--drop-ratio",
            M.ffnRouting: "--ffn-routing", M.capacityFactor: "--capacity-factor", M.gumbelDecay: "--gumbel-decay", M.auxLoss: "--aux-loss", M.routerAuxLossCoef: "--aux-loss-coef",
            M.routerZLossCoef: "--z-loss-coef", M.expertScaling: "--expert-scaling", M.routerData: "--router-data",
            M.routerDataTokens: "--router-data-tokens", M.dtype: "--dtype", M.shardSize: "--shard-size",
            M.allowTokenizerMismatch: "--allow-tokenizer-mismatch",

            T.steps: "--steps", T.batchSize: "--batch", T.sequenceLength: "--seq", T.accumulation: "--accumulate",
            T.seed: "--seed", T.learningRate: "--lr", T.warmupSteps: "--warmup", T.minLRFraction: "--min-lr-fraction",
            T.weightDecay: "--weight-decay", T.beta1: "--beta1", T.beta2: "--beta2", T.gradClip: "--grad-clip",
            T.train: "--train", T.auxAlpha: "--aux-alpha", T.zBeta: "--z-loss", T.evalEvery: "--eval-every",
            T.evalWindows: "--eval-windows", T.checkpointEvery: "--checkpoint-every", T.outputDirectory: "--out",
            T.logURL: "--log", T.saveDType: "--dtype", T.finalTrainingState: "--no-final-state", T.resume: "--resume",
            T.dumpBatches: "--dump-batches", T.domains: "--data", T.validationFiles: "--val-data",

            PerplexityOptions.Field.contextLength: "--ctx", PerplexityOptions.Field.maxChunks: "--chunks",
            RoutesOptions.Field.contextLength: "--ctx",
            CompareOptions.Field.contextLength: "--ctx", CompareOptions.Field.models: "--model",
            CompareOptions.Field.domains: "--domain",
            GGUFConverter.dtypeOption: "--dtype",
            Pipeline.checkpointsOption: "--checkpoints",
        ]
    }()

    /// `--num-experts`, or with a value `--method upcycle`.
    static func word(_ option: BamError.Option, value: String?) -> String {
        guard let flag = flags[option] else { return BamError.Option.apiWording(option, value: value) }
        return value.map { "\(flag) \($0)" } ?? flag
    }

    static func message(_ error: BamError) -> String { error.rendered(optionWording: word) }
}

/// What ArgumentParser prints for a BamError: `Error: ` and the CLI's wording; exit code 1.
struct CommandLineError: Error, CustomStringConvertible {
    let error: BamError
    var description: String { ErrorWording.message(error) }
}
