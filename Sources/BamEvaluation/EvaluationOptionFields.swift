import BamTensors

// The evaluation options as errors name them (`BamError.Option`); the CLI words each as its flag.

extension PerplexityOptions {
    public enum Field {
        public static let contextLength = BamError.Option(\PerplexityOptions.contextLength, "contextLength")
        public static let maxChunks = BamError.Option(\PerplexityOptions.maxChunks, "maxChunks")
        public static let all = [contextLength, maxChunks]
    }
}

extension RoutesOptions {
    public enum Field {
        public static let contextLength = BamError.Option(\RoutesOptions.contextLength, "contextLength")
        public static let all = [contextLength]
    }
}

extension CompareOptions {
    public enum Field {
        public static let contextLength = BamError.Option(\CompareOptions.contextLength, "contextLength")
        /// `compareModels(_:domains:)`'s models and domain texts.
        public static let models = BamError.Option(owner: "compareModels", name: "specs")
        public static let domains = BamError.Option(owner: "compareModels", name: "domains")
        public static let all = [contextLength, models, domains]
    }
}
