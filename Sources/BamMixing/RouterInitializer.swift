import BamModels
import BamTokenizers
import Foundation

/// The routers of a mix, and the residual streams the data-based ones were computed from.
struct InitializedRouters {
    /// Router name -> (E, C).
    var tensors: [String: Tensor]
    /// Per layer, residual-stream rows (C each) entering that layer on the router's own data
    /// (`hidden`: each prompt's last token; `domain`: positions of every expert's text); nil for
    /// routers computed without running a model. Expert scaling measures the gates on them.
    var calibration: [[[Float]]]?
}

/// Router matrices (E, C) for every router of the output config (docs/mixing.md, "Router initialisation").
enum RouterInitializer {
    /// mergekit warns when a layer's gate matrix has a condition number above 5.
    static let conditionThreshold = 5.0

    /// transformers initialises nn.Linear (and so Mixtral's gate) as N(0, initializer_range²), 0.02.
    static let randomStd: Float = 0.02

    /// Positions per expert (domain) kept for calibration.
    static let calibrationPerExpert = 256

    static func routers(for out: ModelConfig, experts: [Checkpoint], options: MixOptions,
                        log: (String) -> Void) throws -> InitializedRouters {
        let routerSpecs = out.parameterSpecs.filter(\.isRouter)
        let E = out.moe?.experts ?? 1
        let C = out.hidden
        var result: [String: Tensor] = [:]
        var calibration: [[[Float]]]? = nil
        switch options.router {
        case .auto:
            throw BamError.usage("internal: \(MixField.router, "auto") reached the router initialiser unresolved (Mixer.resolveRouter)")
        case .random:
            for (i, spec) in routerSpecs.enumerated() {
                var rng = SplitMix64(seed: options.seed &* 0x9E37_79B9 &+ UInt64(i) &+ 1)
                let t = Tensor(shape: spec.shape)
                for j in 0..<t.count { t.data[j] = rng.normal() * randomStd * options.routerScale }
                result[spec.name] = t
            }
        case .zero:
            for spec in routerSpecs { result[spec.name] = Tensor(shape: spec.shape) }
        case .hidden, .cheapEmbed, .domain, .generated:
            var samples = [[[Float]]](repeating: [], count: out.layers)
            let vectors: [[[Float]]]
            switch options.router {
            case .domain:
                vectors = try domainVectors(experts: experts, options: options, E: E, C: C, layers: out.layers, samples: &samples, log: log)
            case .generated:
                vectors = try generatedVectors(experts: experts, options: options, E: E, C: C, layers: out.layers, samples: &samples, log: log)
            default:
                vectors = try promptVectors(experts: experts, options: options, E: E, C: C, layers: out.layers, samples: &samples, log: log)
            }
            if samples.contains(where: { !$0.isEmpty }) { calibration = samples }
            for spec in routerSpecs {
                let t = Tensor(shape: spec.shape)
                for e in 0..<E {
                    for i in 0..<C { t.data[e * C + i] = vectors[spec.layer!][e][i] * options.routerScale }
                }
                result[spec.name] = t
            }
            warnIfDegenerate(vectors, log: log)
        }
        return InitializedRouters(tensors: result, calibration: calibration)
    }

    /// Per layer and expert, the L2-normalised router row from the expert's prompts (mergekit's
    /// `get_gate_params`): the positive prompts' vector minus the negative prompts' vector, where a
    /// set's vector is, for `hidden`, the mean over its prompts of the residual stream entering the
    /// layer at the last token and, for `cheap-embed`, the L2-normalised sum of its token embeddings
    /// (mergekit's `get_cheap_embedding` normalises each set before the subtraction).
    static func promptVectors(experts: [Checkpoint], options: MixOptions, E: Int, C: Int, layers: Int,
                              samples: inout [[[Float]]], log: (String) -> Void) throws -> [[[Float]]] {
        let promptExperts = options.method == .upcycle ? E : experts.count
        for e in 0..<promptExperts where options.routerPrompts[e] == nil {
            throw BamError.usage("\(MixField.router, options.router.rawValue) needs prompts for every expert", at: .expert(e),
                                 hint: "add expert \(e)'s prompt file to \(MixField.routerPrompts) (one prompt per line; lines starting with ! are negative prompts)")
        }
        guard options.routerBaseExpert >= 0, options.routerBaseExpert < experts.count else {
            throw BamError.usage("\(MixField.routerBaseExpert) is not an expert index", expected: "0 ... \(experts.count - 1)", found: "\(options.routerBaseExpert)")
        }
        let base = experts[options.routerBaseExpert]
        if case .none = base.tokenizerSource {
            throw BamError.usage("\(MixField.router, options.router.rawValue) tokenises prompts, but the base expert has no tokenizer (no tokenizer.json, no GGUF vocabulary)",
                                 file: base.path.path)
        }
        let tokenizer = try base.loadTokenizer()
        let model = options.router == .hidden ? try Transformer.load(base) : nil
        let embed = try base.store.tensor(ParameterNames.embed)
        log("computing \(options.router.rawValue) router vectors with \(base.path.lastPathComponent)")

        // One vector per layer (hidden) or one shared (cheap-embed) for a list of prompts.
        var collected = [[[Float]]](repeating: [], count: layers)
        func vectors(_ prompts: [String]) throws -> [[Double]] {
            var sum = [[Double]](repeating: [Double](repeating: 0, count: C), count: layers)
            for p in prompts {
                let ids = tokenizer.encode(p, addSpecialTokens: true)
                guard !ids.isEmpty else { continue }
                if let model {
                    // The residual stream entering each layer at the last token (hidden_states[:-1]).
                    _ = try model.forward(tokens: ids, cache: model.makeCache(capacity: ids.count), outputRows: 0..<0) { event in
                        if case let .hidden(layer, x, T, C) = event {
                            for i in 0..<C { sum[layer][i] += Double(x[(T - 1) * C + i]) }
                            collected[layer].append(Array(UnsafeBufferPointer(start: x + (T - 1) * C, count: C)))
                        }
                    }
                } else {
                    for id in ids where id < embed.rows {
                        for i in 0..<C { sum[0][i] += Double(embed.data[id * C + i]) }
                    }
                }
            }
            if model != nil {
                let n = Double(max(1, prompts.count))
                return sum.map { $0.map { $0 / n } }
            }
            return Array(repeating: normalized(sum[0]), count: layers)
        }
        var out: [[[Float]]] = Array(repeating: [], count: layers)
        for e in 0..<E {
            let file = options.routerPrompts[options.method == .upcycle ? e : e]!
            let text = try String(contentsOf: file, encoding: .utf8)
            var positive: [String] = [], negative: [String] = []
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                let l = String(line).trimmingCharacters(in: .whitespaces)
                if l.isEmpty { continue }
                if l.hasPrefix("!") { negative.append(String(l.dropFirst())) } else { positive.append(l) }
            }
            guard !positive.isEmpty else { throw BamError.usage("no positive prompts", file: file.path) }
            var v = try vectors(positive)
            if !negative.isEmpty {
                let n = try vectors(negative)
                for l in 0..<layers { for i in 0..<C { v[l][i] -= n[l][i] } }
            }
            for l in 0..<layers { out[l].append(normalized(v[l]).map { Float($0) }) }
        }
        samples = collected
        return out
    }

    /// v / max(|v|, 1e-8) (mergekit clamps the norm the same way).
    static func normalized(_ v: [Double]) -> [Double] {
        let norm = max(1e-8, v.reduce(0) { $0 + $1 * $1 }.squareRoot())
        return v.map { $0 / norm }
    }

    /// Per layer and expert, the domain-embedding router row: the mean over the first
    /// `routerDataTokens` tokens of the expert's training text of the residual stream entering the
    /// layer (the router base expert's forward pass, as for `hidden`), minus the mean of those
    /// vectors over the experts, L2-normalised. The common part every domain shares says nothing
    /// about which expert a token belongs to; removing it is what mergekit's negative prompts do by
    /// hand. One expert alone keeps its uncentred mean.
    static func domainVectors(experts: [Checkpoint], options: MixOptions, E: Int, C: Int, layers: Int,
                              samples: inout [[[Float]]], log: (String) -> Void) throws -> [[[Float]]] {
        for e in 0..<E where options.routerData[e] == nil {
            throw BamError.usage("\(MixField.router, "domain") needs each expert's training text", at: .expert(e),
                                 hint: "add expert \(e)'s text file to \(MixField.routerData)")
        }
        for e in options.routerData.keys where e < 0 || e >= E {
            throw BamError.usage("\(MixField.routerData) names an expert that does not exist", at: .expert(e), expected: "experts 0 ... \(E - 1)", found: "\(e)")
        }
        let base = try baseExpert(experts, options: options)
        guard let tokURL = base.tokenizerURL else {
            throw BamError.usage("\(MixField.router, "domain") tokenises the experts' text, but the base expert has no tokenizer.json", file: base.path.path)
        }
        let tokenizer = try Tokenizer.load(url: tokURL.deletingLastPathComponent())
        log("computing domain router vectors with \(base.path.lastPathComponent) over \(options.routerDataTokens) tokens per expert")
        var documents: [[[Int]]] = []
        for e in 0..<E {
            let file = options.routerData[e]!
            let text: String
            do { text = try String(contentsOf: file, encoding: .utf8) } catch {
                throw BamError.io("cannot read the training text of expert \(e) (\(error.localizedDescription))", file: file.path)
            }
            let ids = Array(tokenizer.encode(text, addSpecialTokens: true).prefix(options.routerDataTokens))
            guard !ids.isEmpty else { throw BamError.usage("no tokens (expert \(e)'s training text is empty)", file: file.path) }
            documents.append([ids])
        }
        return try meanStreamVectors(documents: documents, base: base, C: C, layers: layers, samples: &samples)
    }

    /// Self-generated domain embeddings: the `domain` router rows computed on text each expert
    /// samples itself (from BOS, temperature 1, no truncation, `routerDataTokens` tokens in
    /// sequences of up to 256), instead of its training text. An expert trained on a domain
    /// generates that domain's text, so its samples stand in for the data it was trained on; no
    /// text has to be supplied (data-free generation, as in LLM-QAT, arXiv 2305.17888, which
    /// trains on its model's own samples).
    static func generatedVectors(experts: [Checkpoint], options: MixOptions, E: Int, C: Int, layers: Int,
                                 samples: inout [[[Float]]], log: (String) -> Void) throws -> [[[Float]]] {
        guard options.method != .upcycle else {
            throw BamError.usage("\(MixField.router, "generated") routes by the text each expert generates, and upcycled copies of one model generate the same text",
                                 hint: "use \(MixField.router, "random") (or prompts with \(MixField.router, "hidden")) for \(MixField.method, "upcycle")")
        }
        let base = try baseExpert(experts, options: options)
        if case .none = base.tokenizerSource {
            throw BamError.usage("\(MixField.router, "generated") starts each sample at the tokenizer's BOS, but the base expert has no tokenizer", file: base.path.path)
        }
        guard let bos = try base.loadTokenizer().bosTokenId else {
            throw BamError.usage("\(MixField.router, "generated") starts each sample at the tokenizer's BOS token, and this tokenizer has none", file: base.path.path,
                                 hint: "use \(MixField.router, "domain") with each expert's text")
        }
        let length = max(1, min(256, base.config.maxPositions - 1, (base.config.slidingWindow ?? Int.max) - 1))
        log("generating \(options.routerDataTokens) tokens per expert (sequences of \(length) from BOS, temperature 1) for the generated router vectors")
        var documents: [[[Int]]] = []
        for e in 0..<E {
            let model = try Transformer.load(experts[e])
            var docs: [[Int]] = []
            var count = 0
            while count < options.routerDataTokens {
                let n = min(length, options.routerDataTokens - count)
                let seed = options.seed &* 0x9E37_79B9_7F4A_7C15 &+ (UInt64(e) << 32) &+ UInt64(docs.count)
                let ids = try model.generate(prompt: [bos], options: SamplingOptions(temperature: 1, seed: seed, maxTokens: n))
                docs.append([bos] + ids)
                count += ids.count
            }
            documents.append(docs)
        }
        return try meanStreamVectors(documents: documents, base: base, C: C, layers: layers, samples: &samples)
    }

    /// The router base expert (`routerBaseExpert`), checked.
    static func baseExpert(_ experts: [Checkpoint], options: MixOptions) throws -> Checkpoint {
        guard options.routerBaseExpert >= 0, options.routerBaseExpert < experts.count else {
            throw BamError.usage("\(MixField.routerBaseExpert) is not an expert index", expected: "0 ... \(experts.count - 1)", found: "\(options.routerBaseExpert)")
        }
        return experts[options.routerBaseExpert]
    }

    /// Per layer and expert: the mean of the residual stream entering the layer over every position
    /// of the expert's documents (the base expert's forward pass, each document in windows of up
    /// to 512 tokens from an empty cache), centred across the experts and L2-normalised. About
    /// `calibrationPerExpert` positions per expert are kept in `samples` for expert scaling.
    static func meanStreamVectors(documents: [[[Int]]], base: Checkpoint, C: Int, layers: Int,
                                  samples: inout [[[Float]]]) throws -> [[[Float]]] {
        let E = documents.count
        let model = try Transformer.load(base)
        let window = min(512, base.config.maxPositions, base.config.slidingWindow ?? Int.max)
        var means: [[[Double]]] = []   // (E, layers, C)
        for docs in documents {
            let total = docs.reduce(0) { $0 + $1.count }
            var sum = [[Double]](repeating: [Double](repeating: 0, count: C), count: layers)
            var kept = [[[Float]]](repeating: [], count: layers)
            // Every how many positions one is kept for calibration (about calibrationPerExpert of them).
            let keepEvery = max(1, total / calibrationPerExpert)
            var position = 0
            for ids in docs {
                for start in stride(from: 0, to: ids.count, by: window) {
                    let chunk = Array(ids[start..<min(ids.count, start + window)])
                    _ = try model.forward(tokens: chunk, cache: model.makeCache(capacity: chunk.count), outputRows: 0..<0) { event in
                        if case let .hidden(layer, x, T, C) = event {
                            for t in 0..<T {
                                for i in 0..<C { sum[layer][i] += Double(x[t * C + i]) }
                                if (position + t) % keepEvery == 0 { kept[layer].append(Array(UnsafeBufferPointer(start: x + t * C, count: C))) }
                            }
                        }
                    }
                    position += chunk.count
                }
            }
            for l in 0..<layers { samples[l] += kept[l] }
            means.append(sum.map { $0.map { $0 / Double(max(1, total)) } })
        }
        var out: [[[Float]]] = Array(repeating: [], count: layers)
        for l in 0..<layers {
            var centre = [Double](repeating: 0, count: C)
            if E > 1 { for e in 0..<E { for i in 0..<C { centre[i] += means[e][l][i] / Double(E) } } }
            for e in 0..<E { out[l].append(normalized(zip(means[e][l], centre).map { $0 - $1 }).map { Float($0) }) }
        }
        return out
    }

    /// mergekit's `warn_degenerate_gates`: a layer whose gate matrix has condition number > 5
    /// routes some experts poorly; the prompts are probably too similar.
    static func warnIfDegenerate(_ vectors: [[[Float]]], log: (String) -> Void) {
        var bad: [Int] = []
        for (l, rows) in vectors.enumerated() where conditionNumber(rows) > conditionThreshold { bad.append(l) }
        if !bad.isEmpty {
            log("WARNING: the router matrices of layer(s) \(bad.map(String.init).joined(separator: ", ")) are ill-conditioned (condition number > \(conditionThreshold)); the experts' prompts may be too similar and some experts will be underused")
        }
    }

    /// Condition number of an (E, C) matrix with E <= C: sqrt of the ratio of the extreme
    /// eigenvalues of its Gram matrix G G^T, found by Jacobi rotations (E is small).
    static func conditionNumber(_ rows: [[Float]]) -> Double {
        let n = rows.count
        guard n > 1 else { return 1 }
        var a = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n { for j in 0..<n { a[i][j] = zip(rows[i], rows[j]).reduce(0) { $0 + Double($1.0) * Double($1.1) } } }
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in 0..<n where i != j { off += a[i][j] * a[i][j] } }
            if off < 1e-22 { break }
            for p in 0..<(n - 1) {
                for q in (p + 1)..<n where abs(a[p][q]) > 1e-300 {
                    let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = a[k][p], akq = a[k][q]
                        a[k][p] = c * akp - s * akq
                        a[k][q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p][k], aqk = a[q][k]
                        a[p][k] = c * apk - s * aqk
                        a[q][k] = s * apk + c * aqk
                    }
                }
            }
        }
        let eig = (0..<n).map { max(0, a[$0][$0]) }
        guard let mn = eig.min(), let mx = eig.max(), mn > 0 else { return .infinity }
        return (mx / mn).squareRoot()
    }
}
