import BamTensors

extension TrainingOptions {
    /// The options as errors name them (`BamError.Option`, e.g. `TrainingOptions.sequenceLength`);
    /// the CLI words each as its flag (`--seq`).
    public enum Field {
        public static let steps = BamError.Option(\TrainingOptions.steps, "steps")
        public static let batchSize = BamError.Option(\TrainingOptions.batchSize, "batchSize")
        public static let sequenceLength = BamError.Option(\TrainingOptions.sequenceLength, "sequenceLength")
        public static let accumulation = BamError.Option(\TrainingOptions.accumulation, "accumulation")
        public static let seed = BamError.Option(\TrainingOptions.seed, "seed")
        public static let learningRate = BamError.Option(\TrainingOptions.learningRate, "learningRate")
        public static let warmupSteps = BamError.Option(\TrainingOptions.warmupSteps, "warmupSteps")
        public static let minLRFraction = BamError.Option(\TrainingOptions.minLRFraction, "minLRFraction")
        public static let weightDecay = BamError.Option(\AdamWOptions.weightDecay, "weightDecay")
        public static let beta1 = BamError.Option(\AdamWOptions.beta1, "beta1")
        public static let beta2 = BamError.Option(\AdamWOptions.beta2, "beta2")
        public static let gradClip = BamError.Option(\TrainingOptions.gradClip, "gradClip")
        public static let train = BamError.Option(\TrainingOptions.train, "train")
        public static let auxAlpha = BamError.Option(\LossOptions.auxAlpha, "auxAlpha")
        public static let zBeta = BamError.Option(\LossOptions.zBeta, "zBeta")
        public static let evalEvery = BamError.Option(\TrainingOptions.evalEvery, "evalEvery")
        public static let evalWindows = BamError.Option(\TrainingOptions.evalWindows, "evalWindows")
        public static let checkpointEvery = BamError.Option(\TrainingOptions.checkpointEvery, "checkpointEvery")
        public static let outputDirectory = BamError.Option(\TrainingOptions.outputDirectory, "outputDirectory")
        public static let logURL = BamError.Option(\TrainingOptions.logURL, "logURL")
        public static let saveDType = BamError.Option(\TrainingOptions.saveDType, "saveDType")
        public static let finalTrainingState = BamError.Option(\TrainingOptions.finalTrainingState, "finalTrainingState")
        public static let resume = BamError.Option(\TrainingOptions.resume, "resume")
        public static let dumpBatches = BamError.Option(\TrainingOptions.dumpBatches, "dumpBatches")
        /// The training text: `TrainingData(domains:)`, and a domain's held-out files.
        public static let domains = BamError.Option(owner: "TrainingData", name: "domains")
        public static let validationFiles = BamError.Option(\TrainingDomain.validationFiles, "validationFiles")
        public static let all = [steps, batchSize, sequenceLength, accumulation, seed, learningRate, warmupSteps, minLRFraction,
                                 weightDecay, beta1, beta2, gradClip, train, auxAlpha, zBeta, evalEvery, evalWindows,
                                 checkpointEvery, outputDirectory, logURL, saveDType, finalTrainingState, resume, dumpBatches,
                                 domains, validationFiles]
    }
}

/// Short spelling inside this module.
typealias TrainField = TrainingOptions.Field
