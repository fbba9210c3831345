import BamModels
import Crypto
import Foundation

/// What a mix wrote, for the CLI to report.
public struct MixReport: Sendable {
    public var output: URL
    public var formatName: String
    public var experts: Int
    public var tensors: Int
    public var bytesWritten: Int
    public var notes: [String]
    public var seconds: Double
    /// Per FFN mixture layer, the factor every expert's down projection was multiplied by (1: none).
    public var expertScales: [Double]
    /// The FFN routing and router losses written, in words.
    public var routingSummary: String
}

/// Builds BTX, BAM and upcycled models from dense experts (docs/methods.md), streaming: tensors are
/// read memory-mapped and written one chunk at a time, so resident memory is bounded by a few
/// chunks per expert plus the writer's buffer, whatever the number of layers.
public enum Mixer {
    /// Elements per streamed chunk (4 MiB of f32; a multiple of Q8_0's block of 32).
    static let chunkElements = 1 << 20

    public static func run(_ requestedOptions: MixOptions, log: (String) -> Void = { _ in }) throws -> MixReport {
        let start = DispatchTime.now()
        var options = requestedOptions
        try validateOptions(options)
        try resolveRouter(&options, log: log)
        if FileManager.default.fileExists(atPath: options.output.path) {
            throw BamError.usage("the output already exists (bam-mix never overwrites a model)", file: options.output.path,
                                 hint: "choose a new \(MixField.output) \(options.writesGGUF ? "file" : "directory")")
        }
        let experts = try options.experts.map { try Checkpoint.open($0) }
        let outputType = try MixValidation.validate(experts, options: options)
        // The tensors are mixed in float32 and stored as `dtype`; a block-type GGUF output is mixed
        // into F32 first and quantised by the GGUF converter.
        let dtype: DType = outputType.isQuantized ? .f32 : outputType
        options.dtype = dtype
        let weights = try averagingWeights(options, count: experts.count)
        let inputTypes = experts.map { MixDType.weightTypes($0).map(\.rawValue).sorted().joined(separator: "+") }
        log("validated \(experts.count) expert(s) (\(inputTypes.joined(separator: ", "))): \(experts[0].config.architectureName), \(experts[0].config.layers) layers, output dtype \(outputType.rawValue)")
        let plan = try MixPlan.make(experts: experts, options: options) { out in
            try RouterInitializer.routers(for: out, experts: experts, options: options, log: log)
        }
        for n in plan.notes { log(n) }
        log("writing \(plan.formatName) with \(plan.outputConfig.moe?.experts ?? 1) experts to \(options.output.path)")

        // Content hashes of the sources, computed on another core while the mix streams.
        let hashes = SourceHashes(experts: experts)
        let entries = plan.tensors.map { entry(for: $0, experts: experts, weights: weights, dtype: dtype) }
        let provenance = { () -> Data in
            var sources: [JSONValue] = []
            for (i, e) in experts.enumerated() {
                sources.append(.object(JSONObject([
                    ("index", .int(i)), ("path", .string(e.path.path)),
                    ("files", .object(JSONObject(hashes.result(i).map { ($0.0, .string("sha256:" + $0.1)) }))),
                ])))
            }
            var opts = JSONObject()
            opts["method"] = .string(options.method.rawValue)
            opts["top_k"] = .int(plan.outputConfig.moe?.topK ?? 0)
            opts["renormalize"] = .bool(plan.outputConfig.moe?.renormalize ?? true)
            opts["ffn_routing"] = .string(options.ffnRouting.rawValue)
            // The expert weight scale is in the weights themselves (w2); recorded here so the
            // checkpoint says how its experts differ from their sources.
            opts["expert_scales"] = .array(plan.expertScales.map { .double($0) })
            opts["router"] = .string(options.router.rawValue)
            if requestedOptions.router != options.router { opts["router_requested"] = .string(requestedOptions.router.rawValue) }
            opts["router_scale"] = .double(Double(options.routerScale))
            opts["seed"] = .int(Int(truncatingIfNeeded: options.seed))
            opts["weights"] = .array(weights.map { .double($0) })
            opts["dtype"] = .string(outputType.rawValue)
            opts["block"] = .string(options.block.rawValue)
            if options.method == .bam {
                opts["attention"] = .string(options.attention.rawValue)
                opts["attention_routing"] = .string(options.attentionRouting.rawValue)
            }
            if options.method == .upcycle {
                opts["num_experts"] = .int(options.numExperts ?? 0)
                opts["noise"] = .double(Double(options.upcycleNoise))
                opts["drop_ratio"] = .double(options.dropRatio)
            }
            let doc = JSONValue.object(JSONObject([
                ("tool", "bam-mix"), ("format", .string(plan.formatName)), ("options", .object(opts)),
                ("sources", .array(sources)),
            ]))
            return Data((doc.serialized() + "\n").utf8)
        }
        var notes = plan.notes
        var bytes = entries.reduce(0) { $0 + $1.byteCount }
        if options.writesGGUF {
            let report = try writeGGUF(plan: plan, entries: entries, experts: experts, type: outputType, options: options,
                                       provenance: provenance)
            notes += report.notes
            bytes = (try? FileManager.default.attributesOfItem(atPath: options.output.path)[.size] as? Int) ?? bytes
        } else {
            // The provenance file is produced after the tensors, once the hashes are done.
            var extraData: [String: () throws -> Data] = ["bam_mix_provenance.json": provenance]
            // A BAM mixture carries its transformers model code (auto_map in config.json), so
            // `from_pretrained(out, trust_remote_code=True)` loads it with no extra step.
            if plan.config["model_type"]?.stringValue == "bam" {
                for file in BamModelCode.files { extraData[file.name] = { Data(file.text.utf8) } }
            }
            try CheckpointWriter.write(directory: options.output, config: plan.config, entries: entries,
                                       shardSize: options.shardSize, extraFiles: sideFiles(of: experts[0]),
                                       extraData: extraData)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return MixReport(output: options.output, formatName: plan.formatName + (options.writesGGUF ? " as GGUF" : ""), experts: experts.count,
                         tensors: entries.count, bytesWritten: bytes, notes: notes, seconds: seconds,
                         expertScales: plan.expertScales, routingSummary: plan.routingSummary)
    }

    /// The tokenizer and generation files the mixture carries: an HF expert's own, or for a GGUF
    /// expert the tokenizer.json / tokenizer_config.json rebuilt from its vocabulary (never files
    /// that merely sit in the same folder as the .gguf).
    static func sideFiles(of expert: Checkpoint) -> [String: URL] {
        guard expert.container == .gguf else { return CheckpointWriter.sideFiles(of: expert.directory) }
        return CheckpointWriter.sideFiles(of: expert.tokenizerURL?.deletingLastPathComponent())
    }

    /// A GGUF mixture: the HF mixture is written into a temporary directory beside the output
    /// (so disk use peaks at the HF mixture plus the GGUF), then converted the way `convert` does
    /// (the same tensor names, types and metadata as llama.cpp's converter) into `type`, with the
    /// first GGUF expert's `tokenizer.*` keys and the provenance record as `bam.mix_provenance`.
    static func writeGGUF(plan: MixPlan, entries: [TensorWriteEntry], experts: [Checkpoint], type: DType, options: MixOptions,
                          provenance: () throws -> Data) throws -> GGUFConversionReport {
        let fm = FileManager.default
        let out = options.output
        // A temporary name of the output's (TemporaryOutputs): a run killed while staging leaves
        // a name the next writer of this output recognises and removes; SIGINT removes it at once.
        let staging = out.deletingLastPathComponent()
            .appendingPathComponent(TemporaryOutputs.temporaryName(for: out.lastPathComponent, suffix: "hf"))
        TemporaryOutputs.register(staging)
        defer { try? fm.removeItem(at: staging); TemporaryOutputs.unregister(staging) }
        try CheckpointWriter.write(directory: staging, config: plan.config, entries: entries, extraFiles: sideFiles(of: experts[0]))
        let staged = try Checkpoint.open(staging.path)
        let tokenizerSource = (experts[0].store as? GGUFStore)?.file
        let record = String(decoding: try provenance(), as: UTF8.self)
        return try GGUFConverter.hfToGGUF(staged, output: out, dtype: type, tokenizerFrom: tokenizerSource,
                                          extraMetadata: [("general.name", .string(out.deletingPathExtension().lastPathComponent)),
                                                          ("bam.mix_provenance", .string(record))])
    }

    /// `RouterInit.auto` made concrete from the FFN routing recipe: `zero` for the top K < E of a
    /// softmax without renormalisation (the fresh mixture keeps expert 0's FFN, scaled back by
    /// E/K), `random` (the papers' routers) for everything else.
    static func resolveRouter(_ o: inout MixOptions, log: (String) -> Void) throws {
        guard o.router == .auto else { return }
        let E = o.method == .upcycle ? (o.numExperts ?? 0) : o.experts.count
        guard case let .topK(k, renormalize: false) = try ResolvedRecipe.resolve(o, experts: E).routing, k < E else {
            o.router = .random
            return
        }
        if o.routerScale != 1 {
            throw BamError.usage("\(MixField.routerScale) multiplies random or data-based routers, and \(MixField.router, "auto") starts un-renormalised top-\(k) gates from zero routers",
                                 hint: "add \(MixField.router, "random") to scale the paper's random routers")
        }
        o.router = .zero
        let first = URL(fileURLWithPath: o.experts.first ?? "").lastPathComponent
        log("routers: zero (--router auto, for un-renormalised top-\(k) gates): every token's FFN is \(k == 1 ? "expert 0's (\(first))" : "the mean of experts 0 ... \(k - 1)'s") until finetuning teaches the routers, so put the seed first; --router random gives the paper's random routers")
    }

    static func validateOptions(_ o: MixOptions) throws {
        switch o.method {
        case .upcycle:
            guard o.experts.count == 1 else {
                throw BamError.usage("\(MixField.method, "upcycle") copies one dense model: \(MixField.experts) must hold exactly one",
                                     expected: "1 expert", found: "\(o.experts.count)")
            }
            guard let n = o.numExperts, n >= 2 else {
                throw BamError.usage("\(MixField.method, "upcycle") needs \(MixField.numExperts)", expected: "at least 2",
                                     found: o.numExperts.map(String.init) ?? "none")
            }
            guard o.upcycleNoise >= 0, o.upcycleNoise.isFinite else {
                throw BamError.usage("\(MixField.upcycleNoise)", expected: "a non-negative number", found: "\(o.upcycleNoise)")
            }
            guard o.dropRatio >= 0, o.dropRatio <= 1 else {
                throw BamError.usage("\(MixField.dropRatio) (Drop-Upcycling's r; the paper uses 0.5)", expected: "0...1", found: "\(o.dropRatio)")
            }
            if o.dropRatio > 0 && o.upcycleNoise > 0 {
                throw BamError.usage("\(MixField.dropRatio) and \(MixField.upcycleNoise) are two ways to make upcycled experts differ; choose one")
            }
        case .btx, .bam:
            guard o.experts.count >= 2 else {
                throw BamError.usage("\(MixField.method, o.method.rawValue) mixes several dense models given in \(MixField.experts)",
                                     expected: "at least 2 experts", found: "\(o.experts.count)", hint: "use \(MixField.method, "upcycle") for one")
            }
            if o.numExperts != nil {
                throw BamError.usage("\(MixField.numExperts) is for \(MixField.method, "upcycle"); BTX and BAM use one expert per entry of \(MixField.experts)")
            }
            if o.dropRatio != 0 || o.upcycleNoise != 0 {
                throw BamError.usage("\(MixField.dropRatio) and \(MixField.upcycleNoise) re-initialise upcycled copies; they apply to \(MixField.method, "upcycle") only")
            }
        }
        guard o.routerScale > 0, o.routerScale.isFinite else {
            throw BamError.usage("\(MixField.routerScale)", expected: "a positive number", found: "\(o.routerScale)")
        }
        if o.router == .zero && o.routerScale != 1 {
            throw BamError.usage("\(MixField.routerScale) multiplies the initial routers; it does nothing to \(MixField.router, "zero") ones")
        }
        if o.router == .domain || o.router == .generated {
            guard o.routerDataTokens >= 1 else {
                throw BamError.usage("\(MixField.routerDataTokens)", expected: "a positive number", found: "\(o.routerDataTokens)")
            }
        }
        if o.router != .domain && !o.routerData.isEmpty {
            throw BamError.usage("\(MixField.routerData) gives the training text of \(MixField.router, "domain"); it does nothing with \(MixField.router, o.router.rawValue)")
        }
        if o.method != .bam && (o.attention != .expertKV || o.attentionRouting != .soft) {
            throw BamError.usage("\(MixField.attention) and \(MixField.attentionRouting) apply to \(MixField.method, "bam") only")
        }
    }

    static func averagingWeights(_ o: MixOptions, count: Int) throws -> [Double] {
        guard let w = o.weights else { return Array(repeating: 1 / Double(count), count: count) }
        guard w.count == count else {
            throw BamError.usage("\(MixField.weights) needs one value per expert", expected: "\(count) values", found: "\(w.count)")
        }
        guard w.allSatisfy({ $0 >= 0 && $0.isFinite }), w.reduce(0, +) > 0 else {
            throw BamError.usage("\(MixField.weights)", expected: "non-negative values with a positive sum", found: "\(w)")
        }
        let s = w.reduce(0, +)
        return w.map { $0 / s }
    }

    /// The streaming producer of one output tensor.
    static func entry(for p: PlannedTensor, experts: [Checkpoint], weights: [Double], dtype: DType) -> TensorWriteEntry {
        let spec = p.spec
        let count = spec.shape.reduce(1, *)
        return TensorWriteEntry(name: spec.name, dtype: dtype, shape: spec.shape) { write in
            switch p.recipe {
            case let .computed(t):
                try TensorWriteEntry.float(spec.name, t, as: dtype).produce(write)
            case let .copy(e, source):
                let store = experts[e].store
                let info = try sourceInfo(store, source, spec)
                if info.dtype == dtype {
                    // Exact byte copy, chunk by chunk.
                    let bytes = try store.bytes(source)
                    let chunk = dtype.byteCount(elements: chunkElements)!
                    var offset = 0
                    while offset < bytes.count {
                        let n = min(chunk, bytes.count - offset)
                        try write(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]))
                        offset += n
                        store.release(source)
                    }
                } else {
                    try streamFloat(count: count, dtype: dtype, write: write) { range, out in
                        try decode(store, source, info, range, into: out)
                    }
                    store.release(source)
                }
            case let .scaledCopy(e, source, scale):
                let store = experts[e].store
                let info = try sourceInfo(store, source, spec)
                try streamFloat(count: count, dtype: dtype, write: write) { range, out in
                    try decode(store, source, info, range, into: out)
                    for i in 0..<range.count { out[i] *= scale }
                }
                store.release(source)
            case let .noisyCopy(e, source, relative, seed, scale):
                let store = experts[e].store
                _ = try sourceInfo(store, source, spec)
                let t = try store.tensor(source).copy()
                var ss: Double = 0
                for i in 0..<t.count { ss += Double(t.data[i]) * Double(t.data[i]) }
                let std = relative * Float((ss / Double(max(1, t.count))).squareRoot())
                var rng = SplitMix64(seed: seed)
                for i in 0..<t.count { t.data[i] = (t.data[i] + rng.normal() * std) * scale }
                try TensorWriteEntry.float(spec.name, t, as: dtype).produce(write)
                store.release(source)
            case let .dropUpcycled(e, source, drop, scale):
                let store = experts[e].store
                _ = try sourceInfo(store, source, spec)
                let t = try store.tensor(source).copy()
                drop.apply(to: t)
                if scale != 1 { for i in 0..<t.count { t.data[i] *= scale } }
                try TensorWriteEntry.float(spec.name, t, as: dtype).produce(write)
                store.release(source)
            case let .average(source):
                let infos = try experts.map { try sourceInfo($0.store, source, spec) }
                let acc = UnsafeMutablePointer<Double>.allocate(capacity: chunkElements)
                let tmp = UnsafeMutablePointer<Float>.allocate(capacity: chunkElements)
                defer { acc.deallocate(); tmp.deallocate() }
                try streamFloat(count: count, dtype: dtype, write: write) { range, out in
                    let n = range.count
                    acc.update(repeating: 0, count: n)
                    for (e, expert) in experts.enumerated() {
                        try decode(expert.store, source, infos[e], range, into: tmp)
                        let w = weights[e]
                        for i in 0..<n { acc[i] += w * Double(tmp[i]) }
                    }
                    for i in 0..<n { out[i] = Float(acc[i]) }
                }
                for expert in experts { expert.store.release(source) }
            }
        }
    }

    static func sourceInfo(_ store: any TensorStore, _ name: String, _ spec: ParameterSpec) throws -> TensorInfo {
        guard let info = store.info(name) else { throw BamError.format(store.location, at: .tensor(name), "the tensor is missing") }
        guard info.shape == spec.shape else {
            throw BamError.mismatch("`\(spec.name)` needs another shape", file: info.file, at: .tensor(name),
                                    expected: "\(spec.shape)", found: "\(info.shape)")
        }
        return info
    }

    /// Decodes elements `range` of a stored tensor into float32.
    static func decode(_ store: any TensorStore, _ name: String, _ info: TensorInfo, _ range: Range<Int>,
                       into out: UnsafeMutablePointer<Float>) throws {
        let bytes = try store.bytes(name)
        let offset = info.dtype.byteCount(elements: range.lowerBound)!
        try DTypeConversion.toFloat32(bytes.baseAddress! + offset, dtype: info.dtype, count: range.count, into: out)
    }

    /// Produces a float tensor chunk by chunk (`fill` writes float32 values of a range) and writes it as `dtype`.
    static func streamFloat(count: Int, dtype: DType, write: (UnsafeRawBufferPointer) throws -> Void,
                            fill: (Range<Int>, UnsafeMutablePointer<Float>) throws -> Void) throws {
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: chunkElements)
        let encoded = UnsafeMutableRawPointer.allocate(byteCount: chunkElements * 8, alignment: 16)
        defer { floats.deallocate(); encoded.deallocate() }
        var start = 0
        while start < count {
            let n = min(chunkElements, count - start)
            try fill(start..<(start + n), floats)
            let b = dtype.byteCount(elements: n)!
            try DTypeConversion.fromFloat32(floats, count: n, dtype: dtype, into: encoded)
            try write(UnsafeRawBufferPointer(start: encoded, count: b))
            start += n
        }
    }
}

/// SHA-256 of every file of each expert's checkpoint, computed on a background queue.
final class SourceHashes: @unchecked Sendable {
    /// One entry per expert, each written by its own background task. The tasks run at once, so
    /// each stores under `lock`: writing different elements of one array from several threads is
    /// still a data race on the array (ThreadSanitizer caught it in `tools/test --sanitize`).
    private var results: [[(String, String)]]
    private let lock = NSLock()
    private let group = DispatchGroup()

    init(experts: [Checkpoint]) {
        results = Array(repeating: [], count: experts.count)
        let files: [[URL]] = experts.map { e in
            if e.container == .gguf { return [e.path] }
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: e.path.path)) ?? []).filter {
                !$0.hasPrefix(".") && ($0.hasSuffix(".safetensors") || $0.hasSuffix(".json") || $0.hasSuffix(".bin") || $0 == "tokenizer.model")
            }.sorted()
            return names.map { e.path.appendingPathComponent($0) }
        }
        for (i, list) in files.enumerated() {
            DispatchQueue.global(qos: .utility).async(group: group) {
                var out: [(String, String)] = []
                for url in list {
                    guard let mapped = try? MappedFile(path: url.path) else { continue }
                    var hasher = SHA256()
                    var offset = 0
                    let step = 16 << 20
                    while offset < mapped.size {
                        let n = min(step, mapped.size - offset)
                        hasher.update(bufferPointer: mapped.bytes(at: offset, count: n))
                        mapped.release(offset: offset, count: n)
                        offset += n
                    }
                    out.append((url.lastPathComponent, hasher.finalize().map { String(format: "%02x", $0) }.joined()))
                }
                self.lock.lock()
                self.results[i] = out
                self.lock.unlock()
            }
        }
    }

    func result(_ i: Int) -> [(String, String)] {
        group.wait()
        lock.lock()
        defer { lock.unlock() }
        return results[i]
    }
}
