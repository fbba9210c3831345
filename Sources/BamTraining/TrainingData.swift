import BamModels
import BamTensors
import BamTokenizers
import Foundation

/// One domain of training text: a name, a sampling weight and its files.
public struct TrainingDomain: Sendable, Equatable {
    public var name: String
    public var files: [URL]
    /// Relative sampling weight (normalised over the domains).
    public var weight: Double
    /// Held-out text for this domain; when nil, the last `validationFraction` of each file is held out.
    public var validationFiles: [URL]?

    public init(name: String, files: [URL], weight: Double = 1, validationFiles: [URL]? = nil) {
        self.name = name
        self.files = files
        self.weight = weight
        self.validationFiles = validationFiles
    }

    /// Parses `NAME=FILE[:WEIGHT]` (docs/cli.md: `--data math=FILE:0.3`); a bare `FILE` is domain
    /// `defaultName`. The weight is what follows the last colon when it is a number.
    public static func parse(_ s: String, defaultName: String) throws -> TrainingDomain {
        var name = defaultName, rest = Substring(s)
        if let eq = s.firstIndex(of: "="), !s[..<eq].contains("/") {
            name = String(s[..<eq])
            rest = s[s.index(after: eq)...]
        }
        var weight = 1.0
        if let colon = rest.lastIndex(of: ":"), let w = Double(rest[rest.index(after: colon)...]) {
            guard w > 0, w.isFinite else { throw BamError.usage("the domain weight of `\(s)`", expected: "a positive number", found: "\(w)") }
            weight = w
            rest = rest[..<colon]
        }
        guard !name.isEmpty, !rest.isEmpty else {
            throw BamError.usage("training domain", expected: "NAME=FILE[:WEIGHT] (e.g. math=data/math.txt:0.3) or FILE", found: "`\(s)`")
        }
        return TrainingDomain(name: name, files: [URL(fileURLWithPath: String(rest))], weight: weight)
    }
}

/// Token streams for training and validation, with seeded window sampling.
///
/// Each text file becomes one token stream (the model's tokenizer, special tokens as its
/// post-processor adds them). Training windows are T + 1 consecutive tokens (T inputs, each
/// predicting the next) at a uniformly random start; the domain is drawn by weight, then the file
/// in proportion to its number of window starts. Validation uses consecutive non-overlapping
/// windows of each domain's held-out stream, in order, the same ones every time.
public final class TrainingData: @unchecked Sendable {
    public struct Domain: Sendable {
        public var name: String
        public var weight: Double
        /// One token stream per training file.
        public var train: [[Int32]]
        /// One token stream per held-out file (or held-out tail of a training file).
        public var validation: [[Int32]]

        public init(name: String, weight: Double = 1, train: [[Int32]], validation: [[Int32]]) {
            self.name = name
            self.weight = weight
            self.train = train
            self.validation = validation
        }
    }

    public let domains: [Domain]

    public init(domains: [Domain]) throws {
        guard !domains.isEmpty else { throw BamError.usage("no training data: \(TrainField.domains) is empty", expected: "at least one domain", found: "none") }
        var kept: [Domain] = []
        for var d in domains {
            guard d.weight > 0 else { throw BamError.usage("domain `\(d.name)` has weight \(d.weight); weights must be positive") }
            // A stream of fewer than 2 tokens holds no (input, next token) pair.
            d.train = d.train.filter { $0.count >= 2 }
            guard !d.train.isEmpty else {
                throw BamError.usage("domain `\(d.name)` has no training text (every file tokenises to fewer than 2 tokens)")
            }
            kept.append(d)
        }
        self.domains = kept
    }

    /// Tokenises every file; holds out the last `validationFraction` of each training file when a
    /// domain has no validation files of its own.
    public convenience init(specs: [TrainingDomain], tokenizer: Tokenizer, validationFraction: Double = 0.05) throws {
        func tokens(_ url: URL) throws -> [Int32] {
            let text: String
            do { text = try String(contentsOf: url, encoding: .utf8) } catch {
                throw BamError.io("cannot read as UTF-8 text (\(error.localizedDescription))", file: url.path)
            }
            return tokenizer.encode(text, addSpecialTokens: true).map { Int32($0) }
        }
        var domains: [Domain] = []
        for spec in specs {
            if let i = domains.firstIndex(where: { $0.name == spec.name }) {
                throw BamError.usage("domain `\(spec.name)` is given twice (at positions \(i + 1) and \(domains.count + 1)); give each name once")
            }
            var train = try spec.files.map(tokens)
            var validation: [[Int32]]
            if let v = spec.validationFiles {
                validation = try v.map(tokens)
            } else {
                validation = []
                for (i, stream) in train.enumerated() {
                    let held = Int((Double(stream.count) * validationFraction).rounded())
                    guard held >= 2, stream.count - held >= 2 else {
                        throw BamError.usage("too few tokens to hold out \(Int(validationFraction * 100))% for validation", file: spec.files[i].path,
                                             expected: "enough for 2 training and 2 held-out tokens", found: "\(stream.count) tokens",
                                             hint: "give more text or \(TrainField.validationFiles)")
                    }
                    validation.append(Array(stream.suffix(held)))
                    train[i] = Array(stream.prefix(stream.count - held))
                }
            }
            domains.append(Domain(name: spec.name, weight: spec.weight, train: train, validation: validation))
        }
        try self.init(domains: domains)
    }

    /// Training tokens of all domains.
    public var trainingTokens: Int { domains.reduce(0) { $0 + $1.train.reduce(0) { $0 + $1.count } } }

    /// A batch of B random windows: inputs, targets and the token mask (B*T) each. A stream
    /// shorter than T + 1 tokens gives a window padded with targets -1 (not scored) and, past its
    /// last token, mask false (padding: no router statistics either).
    public func sampleBatch(B: Int, T: Int, rng: inout SplitMix64) -> (inputs: [Int32], targets: [Int32], mask: [Bool]) {
        var inputs = [Int32](), targets = [Int32](), mask = [Bool]()
        inputs.reserveCapacity(B * T)
        targets.reserveCapacity(B * T)
        let totalWeight = domains.reduce(0) { $0 + $1.weight }
        for _ in 0..<B {
            var r = Double(rng.uniform()) * totalWeight
            var d = domains.count - 1
            for (i, dom) in domains.enumerated() {
                if r < dom.weight { d = i; break }
                r -= dom.weight
            }
            let streams = domains[d].train
            // A stream of n tokens has n - T starts for a full window of T + 1 tokens (at least one).
            let starts = streams.map { max(1, $0.count - T) }
            var s = Int(rng.next() % UInt64(starts.reduce(0, +)))
            var f = 0
            while s >= starts[f] { s -= starts[f]; f += 1 }
            append(window: streams[f], start: s, T: T, inputs: &inputs, targets: &targets, mask: &mask)
        }
        return (inputs, targets, mask)
    }

    /// Appends tokens[start ..< start+T] as inputs and tokens[start+1 ... start+T] as targets,
    /// padding past the end of the stream (input 0, target -1, mask false).
    private func append(window stream: [Int32], start: Int, T: Int, inputs: inout [Int32], targets: inout [Int32],
                        mask: inout [Bool]) {
        for t in 0..<T {
            let i = start + t
            inputs.append(i < stream.count ? stream[i] : 0)
            targets.append(i + 1 < stream.count ? stream[i + 1] : -1)
            mask.append(i < stream.count)
        }
    }

    /// The fixed validation windows of domain `d`: consecutive windows of T + 1 tokens (stride T)
    /// over each held-out stream, at most `maxWindows`, as batches of at most B windows.
    public func validationBatches(domain d: Int, B: Int, T: Int, maxWindows: Int)
        -> [(inputs: [Int32], targets: [Int32], mask: [Bool], windows: Int)] {
        var windows: [([Int32], Int)] = []
        outer: for stream in domains[d].validation where stream.count >= 2 {
            var start = 0
            while start + 1 < stream.count {
                if windows.count >= maxWindows { break outer }
                windows.append((stream, start))
                start += T
            }
        }
        var batches: [(inputs: [Int32], targets: [Int32], mask: [Bool], windows: Int)] = []
        for chunk in stride(from: 0, to: windows.count, by: B) {
            var inputs = [Int32](), targets = [Int32](), mask = [Bool]()
            let part = windows[chunk..<min(windows.count, chunk + B)]
            for (stream, start) in part { append(window: stream, start: start, T: T, inputs: &inputs, targets: &targets, mask: &mask) }
            // A short last batch is padded with unscored windows so every batch has the same shape.
            for _ in part.count..<B {
                inputs += [Int32](repeating: 0, count: T)
                targets += [Int32](repeating: -1, count: T)
                mask += [Bool](repeating: false, count: T)
            }
            batches.append((inputs, targets, mask, part.count))
        }
        return batches
    }

    /// Entropy (nats) of the unigram distribution of the validation tokens: the loss of a model that
    /// knows only token frequencies, the baseline a trained model must beat.
    public func unigramEntropy() -> Double {
        var counts: [Int32: Int] = [:]
        var total = 0
        for d in domains { for s in d.validation { for t in s.dropFirst() { counts[t, default: 0] += 1; total += 1 } } }
        var h = 0.0
        for (_, c) in counts { let p = Double(c) / Double(total); h -= p * log(p) }
        return h
    }
}
