import BamFormats
import Foundation

/// Writes a model as an HF directory (config.json + safetensors, sharded when asked) atomically:
/// everything goes into a temporary directory beside the target, which is renamed into place only
/// when complete, so an interrupted run never leaves a directory that looks like a model.
public enum CheckpointWriter {
    /// Creates `directory` (which must not exist, unless `replace`) holding `entries`, config.json
    /// and any `extraFiles` (name -> source file to copy, e.g. tokenizer.json), `extraTensors`
    /// (name -> a further safetensors file, e.g. a training run's optimiser state) and `extraData`
    /// (name -> contents, produced after the tensors are written).
    public static func write(directory: URL, config: JSONObject, entries: [TensorWriteEntry], shardSize: Int? = nil,
                             extraFiles: [String: URL] = [:], extraTensors: [String: [TensorWriteEntry]] = [:],
                             extraData: [String: () throws -> Data] = [:], replace: Bool = false) throws {
        let fm = FileManager.default
        let parent = directory.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        if fm.fileExists(atPath: directory.path) && !replace {
            throw BamError.usage("the output directory already exists (bam-mix never overwrites a model)", file: directory.path,
                                 hint: "choose a new output directory")
        }
        // A run killed earlier may have left its temporary (or the set-aside previous output).
        TemporaryOutputs.cleanUpDeadRuns(for: directory)
        let tmp = parent.appendingPathComponent(TemporaryOutputs.temporaryName(for: directory.lastPathComponent,
                                                                               suffix: String(UInt32.random(in: 0...UInt32.max))))
        TemporaryOutputs.register(tmp)
        defer { TemporaryOutputs.unregister(tmp) }
        try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
        var done = false
        defer { if !done { try? fm.removeItem(at: tmp) } }
        try SafetensorsWriter.writeSharded(entries, directory: tmp, shardSize: shardSize)
        try Data((JSONValue.object(config).serialized() + "\n").utf8).write(to: tmp.appendingPathComponent("config.json"))
        for (name, src) in extraFiles.sorted(by: { $0.key < $1.key }) {
            try fm.copyItem(at: src, to: tmp.appendingPathComponent(name))
        }
        for (name, tensors) in extraTensors.sorted(by: { $0.key < $1.key }) {
            try SafetensorsWriter.write(tensors, to: tmp.appendingPathComponent(name))
        }
        for (name, data) in extraData.sorted(by: { $0.key < $1.key }) {
            try data().write(to: tmp.appendingPathComponent(name))
        }
        try TemporaryOutputs.replaceDirectory(directory, with: tmp)
        done = true
    }

    /// A model's parameters as write entries, cast to `dtype`.
    public static func entries(weights: TransformerWeights, config: ModelConfig, dtype: DType = .f32) -> [TensorWriteEntry] {
        weights.namedParameters(config: config).map { spec, tensor in
            TensorWriteEntry.float(spec.name, tensor, as: spec.shape.count == 1 && dtype == .q8_0 ? .f32 : dtype)
        }
    }

    /// Saves a model (training checkpoints, random benchmark models), copying the side files
    /// (tokenizer, generation config) of `sideFilesFrom` when given.
    public static func save(weights: TransformerWeights, config: ModelConfig, to directory: URL, dtype: DType = .f32,
                            shardSize: Int? = nil, sideFilesFrom: URL? = nil, extraTensors: [String: [TensorWriteEntry]] = [:],
                            extraData: [String: () throws -> Data] = [:], replace: Bool = false) throws {
        var json = config.raw
        json["torch_dtype"] = nil
        json["dtype"] = .string(dtype.torchName)
        try write(directory: directory, config: json, entries: entries(weights: weights, config: config, dtype: dtype),
                  shardSize: shardSize, extraFiles: sideFiles(of: sideFilesFrom), extraTensors: extraTensors,
                  extraData: extraData, replace: replace)
    }

    /// The tokenizer and generation files of a model directory, by name, and the model code that a
    /// BAM checkpoint's `auto_map` names (so a checkpoint trained from a mix loads in transformers too).
    public static func sideFiles(of directory: URL?) -> [String: URL] {
        guard let directory else { return [:] }
        var out: [String: URL] = [:]
        for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                     "tokenizer.model", "vocab.json", "merges.txt", "configuration_bam.py", "modeling_bam.py"] {
            let u = directory.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: u.path) { out[name] = u }
        }
        return out
    }
}

extension ModelConfig {
    /// A Llama config.json for a model of the given shape (benchmarks, tests, the demo's seed).
    public static func llamaJSON(vocab: Int, hidden: Int, intermediate: Int, layers: Int, heads: Int, kvHeads: Int? = nil,
                                 maxPositions: Int = 2048, ropeTheta: Double = 10000, tie: Bool = false,
                                 bos: Int? = 1, eos: Int? = 2) -> JSONObject {
        var o = JSONObject([
            ("architectures", .array(["LlamaForCausalLM"])),
            ("model_type", "llama"),
            ("vocab_size", .int(vocab)),
            ("hidden_size", .int(hidden)),
            ("intermediate_size", .int(intermediate)),
            ("num_hidden_layers", .int(layers)),
            ("num_attention_heads", .int(heads)),
            ("num_key_value_heads", .int(kvHeads ?? heads)),
            ("max_position_embeddings", .int(maxPositions)),
            ("rms_norm_eps", 1e-5),
            ("rope_theta", .double(ropeTheta)),
            ("hidden_act", "silu"),
            ("tie_word_embeddings", .bool(tie)),
            ("attention_bias", false),
            ("mlp_bias", false),
            ("torch_dtype", "float32"),
        ])
        if let bos { o["bos_token_id"] = .int(bos) }
        if let eos { o["eos_token_id"] = .int(eos) }
        return o
    }

    /// The dense architectures a fresh model can be created in (`bam-mix init`, the pipeline's seed).
    public enum SeedArchitecture: String, CaseIterable, Sendable { case llama, mistral, qwen2, cohere }

    /// The config of a freshly initialised dense model: `llamaJSON`'s fields, re-labelled for the
    /// architecture (Cohere: parallel block, LayerNorm, `logit_scale`), with `initializer_range` 0.02.
    public static func seedJSON(_ architecture: SeedArchitecture, vocab: Int, hidden: Int, intermediate: Int, layers: Int,
                                heads: Int, kvHeads: Int? = nil, maxPositions: Int = 2048, ropeTheta: Double = 10000,
                                tie: Bool, logitScale: Double = 1, bos: Int?, eos: Int?) -> JSONObject {
        var json = llamaJSON(vocab: vocab, hidden: hidden, intermediate: intermediate, layers: layers, heads: heads,
                             kvHeads: kvHeads, maxPositions: maxPositions, ropeTheta: ropeTheta, tie: tie, bos: bos, eos: eos)
        switch architecture {
        case .llama: break
        case .mistral:
            json["architectures"] = .array(["MistralForCausalLM"]); json["model_type"] = "mistral"
            json["sliding_window"] = .null
            json["attention_bias"] = nil; json["mlp_bias"] = nil
        case .qwen2:
            json["architectures"] = .array(["Qwen2ForCausalLM"]); json["model_type"] = "qwen2"
            json["use_sliding_window"] = false
            json["attention_bias"] = nil; json["mlp_bias"] = nil
        case .cohere:
            json["architectures"] = .array(["CohereForCausalLM"]); json["model_type"] = "cohere"
            json["rms_norm_eps"] = nil; json["mlp_bias"] = nil
            json["layer_norm_eps"] = 1e-5
            json["logit_scale"] = .double(logitScale)
            json["use_qk_norm"] = false
        }
        json["initializer_range"] = 0.02
        return json
    }
}

extension TransformerWeights {
    /// Random weights (normal, std `scale`; norms 1), for benchmarks and tests.
    public static func random(config: ModelConfig, seed: UInt64, scale: Float = 0.02) -> TransformerWeights {
        var rng = SplitMix64(seed: seed)
        var tensors: [ParameterKey: Tensor] = [:]
        for spec in config.parameterSpecs {
            let t = Tensor(shape: spec.shape)
            if spec.role == .norm {
                t.fill(1)
            } else {
                for i in 0..<t.count { t.data[i] = rng.normal() * scale }
            }
            tensors[spec.key] = t
        }
        return assemble(config: config, tensors)
    }
}

/// A small, fast, seedable generator (SplitMix64) so that every random initialisation in bam-mix
/// is reproducible from its seed on every platform.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The whole generator state: `SplitMix64(seed: g.state)` continues exactly where `g` is (training resume).
    public private(set) var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Standard normal (Box-Muller).
    public mutating func normal() -> Float {
        let u1 = max(uniform(), 1e-12)
        let u2 = uniform()
        return (-2 * logf(u1)).squareRoot() * cosf(2 * Float.pi * u2)
    }
}
