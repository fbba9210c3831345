import BamModels
import BamTokenizers
import Foundation

/// What `--model` names: one checkpoint, or a BTM ensemble of checkpoints (docs/evaluation.md).
///
///     SPEC   := PATH | "btm=" ITEM ("," ITEM)* | ITEM "," ITEM ("," ITEM)*
///     ITEM   := PATH ["@" TRAIN_TEXT] | "k=" (N | "all")
///
/// A list (the `btm=` prefix, or any comma) is a BTM ensemble; `PATH@TRAIN_TEXT` gives an
/// expert's training text (needed for the tf-idf routing unless k = all), `k=N` its top-k
/// (default: the command's `--btm-top-k`, 1 unless given). `compare` takes `NAME=SPEC`, where
/// the NAME `btm` always means an ensemble (`--model btm=PATH1@T1,PATH2@T2`).
public struct ModelSpec: Sendable, Equatable {
    public struct BTMExpert: Sendable, Equatable {
        public var path: String
        public var trainingText: String?
        public init(path: String, trainingText: String? = nil) {
            self.path = path
            self.trainingText = trainingText
        }
    }

    public enum Source: Sendable, Equatable {
        case checkpoint(String)
        /// topK nil: the command's default; Int.max: every expert ("k=all").
        case btm(experts: [BTMExpert], topK: Int?)
    }

    public var name: String
    public var source: Source

    public init(name: String, source: Source) {
        self.name = name
        self.source = source
    }

    /// Parses SPEC (see the type's comment); `name` defaults to the path's last component.
    public static func parse(_ spec: String, name: String? = nil) throws -> ModelSpec {
        let s = spec.trimmingCharacters(in: .whitespaces)
        guard !s.isEmpty else { throw BamError.usage("model spec", expected: "PATH or btm=PATH1@TRAIN1,PATH2@TRAIN2", found: "an empty spec") }
        let isBTM = s.hasPrefix("btm=") || s.contains(",")
        guard isBTM else {
            return ModelSpec(name: name ?? URL(fileURLWithPath: s).lastPathComponent, source: .checkpoint(s))
        }
        let list = s.hasPrefix("btm=") ? String(s.dropFirst(4)) : s
        var experts: [BTMExpert] = []
        var topK: Int? = nil
        for item in list.split(separator: ",", omittingEmptySubsequences: false).map({ String($0).trimmingCharacters(in: .whitespaces) }) {
            guard !item.isEmpty else { throw BamError.usage("model spec `\(spec)`: an empty item between commas", expected: "PATH[@TRAIN_TEXT] or k=N", found: "an empty item") }
            if item.hasPrefix("k=") {
                let v = item.dropFirst(2)
                if v == "all" { topK = Int.max } else if let k = Int(v), k >= 1 { topK = k } else {
                    throw BamError.usage("model spec `\(spec)`", expected: "k=N with N >= 1, or k=all", found: item)
                }
                continue
            }
            if let at = item.lastIndex(of: "@") {
                let path = String(item[..<at]), text = String(item[item.index(after: at)...])
                guard !path.isEmpty, !text.isEmpty else {
                    throw BamError.usage("model spec `\(spec)`", expected: "PATH@TRAIN_TEXT", found: item)
                }
                experts.append(BTMExpert(path: path, trainingText: text))
            } else {
                experts.append(BTMExpert(path: item))
            }
        }
        guard !experts.isEmpty else { throw BamError.usage("model spec `\(spec)`: a BTM ensemble needs an expert", expected: "at least one expert PATH", found: "none") }
        return ModelSpec(name: name ?? "btm", source: .btm(experts: experts, topK: topK))
    }

    /// Parses `NAME=SPEC` (compare's form); without `=` the name is the path's last component.
    public static func parseNamed(_ s: String) throws -> ModelSpec {
        guard let eq = s.firstIndex(of: "=") else { return try parse(s) }
        let name = String(s[..<eq]).trimmingCharacters(in: .whitespaces)
        let rest = String(s[s.index(after: eq)...])
        guard !name.isEmpty else { throw BamError.usage("named model spec", expected: "NAME=PATH with a non-empty NAME", found: s) }
        // `btm=PATH1@T1,...` in compare (the issue's form): the name "btm" always means an ensemble,
        // even of one expert; any other name needs `NAME=btm=...` or a comma for that.
        if name == "btm" && !rest.hasPrefix("btm=") { return try parse("btm=" + rest, name: name) }
        return try parse(rest, name: name)
    }

    /// The spec as it would be written on the command line.
    public var specString: String {
        switch source {
        case .checkpoint(let p): return p
        case .btm(let experts, let k):
            var items = experts.map { e in e.trainingText.map { "\(e.path)@\($0)" } ?? e.path }
            if let k { items.append(k == Int.max ? "k=all" : "k=\(k)") }
            return "btm=" + items.joined(separator: ",")
        }
    }
}

/// A named text file: compare's and routes' `--domain NAME=FILE`.
public struct DomainSpec: Sendable, Equatable {
    public var name: String
    public var file: String

    public init(name: String, file: String) {
        self.name = name
        self.file = file
    }

    public static func parse(_ s: String) throws -> DomainSpec {
        guard let eq = s.firstIndex(of: "=") else {
            let url = URL(fileURLWithPath: s)
            return DomainSpec(name: url.deletingPathExtension().lastPathComponent, file: s)
        }
        let name = String(s[..<eq]), file = String(s[s.index(after: eq)...])
        guard !name.isEmpty, !file.isEmpty else { throw BamError.usage("domain spec", expected: "NAME=FILE", found: s) }
        return DomainSpec(name: name, file: file)
    }

    public func readText() throws -> String { try readTextFile(file) }
}

/// Reads a UTF-8 text file with an error that names it.
public func readTextFile(_ path: String) throws -> String {
    do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
        throw BamError.io("cannot read as UTF-8 text (\(error.localizedDescription))", file: path)
    }
}

/// A model spec whose checkpoints are open (headers and configs read, weights not yet loaded).
/// `load` builds the `ScoringModel`; `compare` loads one model at a time.
public final class OpenedModel: @unchecked Sendable {
    public let spec: ModelSpec
    public let checkpoints: [Checkpoint]
    /// The checkpoint whose tokenizer tokenises this model's inputs (a BTM's first expert).
    public var primary: Checkpoint { checkpoints[0] }
    public let defaultBTMTopK: Int

    public init(spec: ModelSpec, defaultBTMTopK: Int = 1) throws {
        self.spec = spec
        self.defaultBTMTopK = defaultBTMTopK
        switch spec.source {
        case .checkpoint(let p):
            checkpoints = [try Checkpoint.open(p)]
        case .btm(let experts, _):
            checkpoints = try experts.map { try Checkpoint.open($0.path) }
            let identity = checkpoints[0].tokenizerIdentity()
            for (i, c) in checkpoints.enumerated().dropFirst() {
                guard c.config.vocabSize == checkpoints[0].config.vocabSize else {
                    throw BamError.mismatch("BTM \(spec.name): \(c.path.path) has a vocabulary of \(c.config.vocabSize), \(checkpoints[0].path.path) of \(checkpoints[0].config.vocabSize); BTM averages next-token probabilities, so the experts must share one vocabulary")
                }
                guard c.tokenizerIdentity() == identity else {
                    throw BamError.mismatch("BTM \(spec.name): expert \(i + 1) (\(c.path.path)) has a different tokenizer from expert 1 (\(checkpoints[0].path.path)); BTM experts must share the tokenizer")
                }
            }
        }
    }

    public var isBTM: Bool { if case .btm = spec.source { return true } else { return false } }

    /// The BTM top-k in force (nil for a single checkpoint).
    public var btmTopK: Int? {
        guard case .btm(let experts, let k) = spec.source else { return nil }
        return min(k ?? defaultBTMTopK, experts.count)
    }

    /// "llama", "mixtral (E=4, top-2)", "bam (...)", "btm (3 llama experts, top-1)".
    public var kind: String {
        switch spec.source {
        case .checkpoint: return Self.describe(primary.config)
        case .btm(let experts, _):
            return "btm (\(experts.count) \(primary.config.family.rawValue) experts, top-\(btmTopK!))"
        }
    }

    static func describe(_ c: ModelConfig) -> String {
        var parts: [String] = []
        if let moe = c.moe { parts.append("FFN E=\(moe.experts) top-\(moe.topK)") }
        if let moa = c.moa {
            parts.append("attention E=\(moa.experts) \(moa.kind == .expertKV ? "expert-KV" : "shared-KV") \(moa.routing == .soft ? "soft" : "top-\(moa.topK)")")
        }
        return c.family.rawValue + (parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")")
    }

    /// Parameter and compute accounting. A BTM ensemble holds every expert (total = sum), and
    /// each prediction runs its top-k experts (active and FLOPs = k times one expert's).
    public func statistics(context: Int) -> ModelStatistics {
        var s = ModelStatistics(config: primary.config, context: context)
        if let k = btmTopK {
            let each = checkpoints.map { ModelStatistics(config: $0.config, context: context) }
            s.totalParameters = each.reduce(0) { $0 + $1.totalParameters }
            s.activeParameters = k * (each.map(\.activeParameters).max() ?? 0)
            s.flopsPerToken = Double(k) * (each.map(\.flopsPerToken).max() ?? 0)
            s.kvCacheBytesPerToken = k * (each.map(\.kvCacheBytesPerToken).max() ?? 0)
        }
        return s
    }

    /// The tokenizer (the checkpoint's; for BTM the experts' shared one).
    public func loadTokenizer() throws -> Tokenizer { try primary.loadTokenizer() }

    /// Loads the weights and returns the model to score with. `documentLength` is the BTM tf-idf
    /// document size (compare and perplexity pass the context length).
    /// `weights` is the type the matrices are kept in (`--weights`), `kvCache` the type of the
    /// KV cache (`--kv-cache`).
    public func load(documentLength: Int, tokenizer: Tokenizer? = nil, weights: WeightLoading = .stored,
                     kvCache: KVCacheType = .f32) throws -> any ScoringModel {
        switch spec.source {
        case .checkpoint:
            return try Transformer.load(primary, weights: weights, kvCache: kvCache)
        case .btm(let experts, _):
            let k = btmTopK!
            var router: TFIDFRouter? = nil
            if k < experts.count {
                let missing = experts.filter { $0.trainingText == nil }.map(\.path)
                guard missing.isEmpty else {
                    throw BamError.usage("BTM \(spec.name) with top-\(k) of \(experts.count) experts needs every expert's training text for the tf-idf routing; missing for \(missing.joined(separator: ", ")): write PATH@TRAIN.txt (or use k=all for the uniform average)")
                }
                let tok = try tokenizer ?? loadTokenizer()
                // Training texts are tokenised without BOS (it would be a token of no expert's data)
                // and with special-token strings as text, as the evaluated texts are.
                let training = try experts.map {
                    tok.encode(try readTextFile($0.trainingText!), addSpecialTokens: false, parseSpecialTokens: false)
                }
                router = try TFIDFRouter(trainingTokens: training, vocabularySize: primary.config.vocabSize,
                                         documentLength: documentLength)
            }
            let models: [any ScoringModel] = try checkpoints.map { try Transformer.load($0, weights: weights, kvCache: kvCache) }
            return try BTMEnsemble(experts: models, router: router, topK: k)
        }
    }
}
