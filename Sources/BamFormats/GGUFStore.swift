import BamTensors
import Foundation

/// A GGUF model presented as an HF checkpoint: tensors under their transformers names and in HF
/// order ([out, in]), Mixtral's stacked experts split back into one tensor per expert, the `llama`
/// architecture's Q/K RoPE permutation undone, and a `ModelConfig` synthesised from the
/// architecture's metadata keys.
///
/// `info(name).dtype` is the stored type (F32, F16, BF16, or a ggml block type: Q4_0 ... Q8_0,
/// Q2_K ... Q8_K, IQ4_NL, IQ4_XS); `bytes(name)` returns that type's bytes in HF layout (whole rows
/// of blocks are permuted and sliced, never split) and `tensor(name)` decodes to float32 (block
/// types dequantised on load). Other ggml types (IQ1-IQ3, TQ, MXFP4, ...) are refused by name
/// when the file is opened.
public final class GGUFStore: TensorStore, @unchecked Sendable {
    public let location: String
    public let file: GGUFFile
    /// `general.architecture`: llama, qwen2 or bam.
    public let architecture: String
    public let config: ModelConfig
    /// The config.json-like object the config was built from (written out by GGUF -> HF).
    public let configJSON: JSONObject
    public let names: [String]

    private struct Source {
        let tensor: GGUFTensorInfo
        let info: TensorInfo
        /// For a slice of a stacked expert tensor: which expert.
        let expert: Int?
        /// Heads for the Q/K un-permutation (llama only).
        let permuteHeads: Int?
    }

    private let sources: [String: Source]
    private let lock = NSLock()
    /// Un-permuted copies of Q/K, each an object so that a borrower (`bytesOwner`) keeps it alive
    /// after `release` drops the store's reference.
    private var materialised: [String: OwnedBytes] = [:]

    public static let supportedArchitectures = ["llama", "qwen2", "bam"]

    /// The ggml types a GGUFStore serves, for messages.
    public static var readableTypes: String {
        DType.allCases.filter { $0.isFloatingPoint && $0 != .f64 }.map(\.rawValue).joined(separator: ", ")
    }

    public convenience init(path: String) throws {
        try self.init(file: GGUFFile(path: path))
    }

    public init(file: GGUFFile) throws {
        self.file = file
        location = file.path
        let path = file.path
        guard let arch = file.architecture else {
            throw BamError.format(path, at: .key("general.architecture"), "cannot tell what model the GGUF holds", expected: "a string", found: file["general.architecture"]?.summary ?? "no such key")
        }
        guard Self.supportedArchitectures.contains(arch) else {
            throw BamError.unsupported("not a GGUF architecture bam-mix reads", file: path, at: .key("general.architecture"),
                                       expected: Self.supportedArchitectures.joined(separator: ", "), found: arch)
        }
        architecture = arch
        if file.tensor("rope_freqs.weight") != nil {
            throw BamError.unsupported("the GGUF carries Llama 3.1-style RoPE scaling factors, which bam-mix cannot map back to rope_scaling", file: path,
                                       at: .tensor("rope_freqs.weight"), hint: "convert from the HF checkpoint instead")
        }
        for t in file.tensors {
            guard let d = t.type.dtype, d.isFloatingPoint else {
                throw BamError.unsupported("bam-mix cannot decode this ggml type", file: path, at: .tensor(t.name), expected: Self.readableTypes,
                                           found: t.type.name,
                                           hint: "re-quantize the model to one of those (e.g. `llama-quantize --allow-requantize IN.gguf OUT.gguf Q4_K_M`)")
            }
        }

        let experts = file["\(arch).expert_count"]?.intValue ?? 0
        guard let heads = file["\(arch).attention.head_count"]?.intValue, heads > 0 else {
            throw BamError.config(path, key: "\(arch).attention.head_count", "missing or not a positive integer")
        }
        let kvHeads = file["\(arch).attention.head_count_kv"]?.intValue ?? heads

        var sources: [String: Source] = [:]
        var names: [String] = []
        for t in file.tensors {
            guard let target = GGUFTensorNames.hf(fromGGUF: t.name, experts: experts) else {
                throw BamError.unsupported("GGUF tensor `\(t.name)` has no HF counterpart in bam-mix's `\(arch)` mapping (docs/gguf.md lists the names)", file: path)
            }
            let dtype = t.type.dtype!
            switch target {
            case let .single(hf):
                var permute: Int? = nil
                if arch == "llama" {
                    if t.name.hasPrefix("blk."), t.name.contains(".attn_q.") { permute = heads }
                    if t.name.hasPrefix("blk."), t.name.contains(".attn_k.") { permute = kvHeads }
                }
                let shape = t.shape
                if let h = permute { try GGUFRopePermutation.check(rows: shape[0], heads: h, tensor: t.name, file: path) }
                sources[hf] = Source(tensor: t, info: TensorInfo(name: hf, dtype: dtype, shape: shape, byteCount: t.byteCount, file: path),
                                     expert: nil, permuteHeads: permute)
                names.append(hf)
            case let .stacked(hfNames):
                guard t.dims.count == 3, t.dims[2] == experts, experts > 0 else {
                    throw BamError.mismatch("stacked expert tensor `\(t.name)` has dims \(t.dims); [cols, rows, \(arch).expert_count = \(experts)] expected", file: path)
                }
                let per = t.byteCount / experts
                for (e, hf) in hfNames.enumerated() {
                    sources[hf] = Source(tensor: t, info: TensorInfo(name: hf, dtype: dtype, shape: [t.dims[1], t.dims[0]], byteCount: per, file: path),
                                         expert: e, permuteHeads: nil)
                    names.append(hf)
                }
            }
        }
        for n in names where sources[n] == nil { throw BamError.format(path, "internal: \(n) unmapped") }
        if Set(names).count != names.count {
            throw BamError.format(path, "GGUF holds two tensors that map to the same HF name (e.g. stacked and per-expert Mixtral experts together)")
        }
        self.sources = sources
        self.names = names
        let json = try GGUFConfigSynthesis.configJSON(file: file, architecture: arch, tensorNames: Set(names),
                                                      shapes: { sources[$0]?.info.shape })
        configJSON = json
        config = try ModelConfig(json: json, file: "\(path) (metadata)")
    }

    /// The mapping keeps mapped tensors valid (release only advises the kernel); an un-permuted
    /// copy is kept by its own object.
    public func bytesOwner(_ name: String) -> AnyObject {
        lock.lock()
        defer { lock.unlock() }
        return materialised[name] ?? self
    }

    public func info(_ name: String) -> TensorInfo? { sources[name]?.info }

    public func bytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let s = sources[name] else { throw BamError.format(location, at: .tensor(name), "the tensor is missing") }
        let raw = file.bytes(s.tensor)
        if let e = s.expert {
            return UnsafeRawBufferPointer(rebasing: raw[(e * s.info.byteCount)..<((e + 1) * s.info.byteCount)])
        }
        guard let heads = s.permuteHeads else { return raw }
        lock.lock()
        defer { lock.unlock() }
        if let m = materialised[name] { return UnsafeRawBufferPointer(m.bytes) }
        let rows = s.info.shape[0]
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(s.info.byteCount, 1), alignment: 64)
        if s.info.byteCount > 0 {
            GGUFRopePermutation.permuteRows(raw.baseAddress!, buf.baseAddress!, rows: rows, rowBytes: s.info.byteCount / rows,
                                            heads: heads, toGGUF: false)
        }
        let view = UnsafeMutableRawBufferPointer(rebasing: buf[0..<s.info.byteCount])
        materialised[name] = OwnedBytes(view)
        return UnsafeRawBufferPointer(view)
    }

    public func tensor(_ name: String) throws -> Tensor {
        guard let s = sources[name] else { throw BamError.format(location, at: .tensor(name), "the tensor is missing") }
        if s.permuteHeads == nil {
            let t = try decodeFloat32(name, owner: self)
            // A decoded (not borrowed) tensor no longer needs the mapped pages: dropping them keeps
            // a quantised model's resident memory at its float32 weights, not those plus the file.
            if s.info.dtype != .f32 { release(name) }
            return t
        }
        // A permuted tensor is decoded into its own storage, so release() may free the permuted bytes.
        let raw = try bytes(name)
        let t = Tensor(shape: s.info.shape)
        try decodeChecked(raw, s.info, into: t.data)
        release(name)
        return t
    }

    /// Drops the store's permuted copy (if any; freed once no holder of `bytesOwner(name)` is
    /// left) and lets the kernel drop the mapped pages.
    public func release(_ name: String) {
        guard let s = sources[name] else { return }
        lock.lock()
        materialised.removeValue(forKey: name)
        lock.unlock()
        if s.expert == nil { file.release(s.tensor) }
    }
}

/// Builds a config.json-like object from a GGUF's metadata (the keys llama.cpp's
/// convert_hf_to_gguf.py writes, and bam-mix's `bam.*` keys, docs/gguf.md).
enum GGUFConfigSynthesis {
    static func configJSON(file: GGUFFile, architecture arch: String, tensorNames: Set<String>,
                           shapes: (String) -> [Int]?) throws -> JSONObject {
        let path = file.path
        func key(_ k: String) -> String { "\(arch).\(k)" }
        func int(_ k: String) -> Int? { file[key(k)]?.intValue }
        func required(_ k: String) throws -> Int {
            guard let v = file[key(k)] else { throw BamError.config(path, key: key(k), "missing", expected: "an integer") }
            guard let i = v.intValue, i >= 0 else { throw BamError.config(path, key: key(k), expected: "a non-negative integer", found: v.summary) }
            return i
        }
        func float(_ k: String) -> Double? {
            guard let v = file[key(k)] else { return nil }
            if case let .float32(f) = v { return ggufShortestDouble(f) }
            return v.doubleValue
        }

        // BAM files carry the original config.json; the architecture keys below take precedence.
        var obj = JSONObject()
        if arch == "bam", let s = file["bam.hf_config"]?.stringValue {
            guard case let .object(o)? = try? JSONParser.parse(s) else {
                throw BamError.config(path, key: "bam.hf_config", "is not a JSON object")
            }
            obj = o
        }

        let hidden = try required("embedding_length")
        let heads = try required("attention.head_count")
        let layers = try required("block_count")
        let experts = int("expert_count") ?? 0
        var vocab = int("vocab_size") ?? file["tokenizer.ggml.tokens"]?.arrayValue?.count
        if vocab == nil, let s = shapes("model.embed_tokens.weight") { vocab = s[0] }
        guard let vocab else { throw BamError.config(path, key: key("vocab_size"), "missing, and there is neither a vocabulary nor token_embd to infer it from") }

        switch arch {
        case "llama":
            obj["architectures"] = .array([.string(experts > 0 ? "MixtralForCausalLM" : "LlamaForCausalLM")])
            obj["model_type"] = .string(experts > 0 ? "mixtral" : "llama")
        case "qwen2":
            obj["architectures"] = .array([.string("Qwen2ForCausalLM")])
            obj["model_type"] = "qwen2"
        default:
            obj["architectures"] = .array([.string("BamForCausalLM")])
            obj["model_type"] = "bam"
            guard let base = file["bam.base_architecture"]?.stringValue else {
                throw BamError.config(path, key: "bam.base_architecture", "missing (the dense family the BAM model was mixed from)")
            }
            obj["base_model_type"] = .string(base)
        }
        obj["vocab_size"] = .int(vocab)
        obj["hidden_size"] = .int(hidden)
        obj["intermediate_size"] = .int(try required("feed_forward_length"))
        obj["num_hidden_layers"] = .int(layers)
        obj["num_attention_heads"] = .int(heads)
        obj["num_key_value_heads"] = .int(int("attention.head_count_kv") ?? heads)
        // head_dim: the explicit key, else the rotary width when it differs from hidden / heads.
        if let hd = int("attention.key_length") ?? int("rope.dimension_count"), hd != hidden / max(heads, 1) || hidden % max(heads, 1) != 0 {
            obj["head_dim"] = .int(hd)
        }
        if let ctx = int("context_length") { obj["max_position_embeddings"] = .int(ctx) }
        if let eps = float("attention.layer_norm_rms_epsilon") { obj["rms_norm_eps"] = .double(eps) }
        if let eps = float("attention.layer_norm_epsilon") { obj["layer_norm_eps"] = .double(eps) }
        if let theta = float("rope.freq_base") { obj["rope_theta"] = .double(theta) }
        if let t = file[key("rope.scaling.type")]?.stringValue, t != "none" {
            guard t == "linear", let f = float("rope.scaling.factor") else {
                throw BamError.unsupported("GGUF RoPE scaling `\(t)` is not supported (bam-mix implements linear scaling from GGUF)", file: path)
            }
            obj["rope_scaling"] = .object(JSONObject([("type", "linear"), ("rope_type", "linear"), ("factor", .double(f))]))
        }
        obj["hidden_act"] = "silu"
        obj["tie_word_embeddings"] = .bool(!tensorNames.contains("lm_head.weight"))
        if arch == "llama" {
            obj["attention_bias"] = .bool(tensorNames.contains("model.layers.0.self_attn.q_proj.bias"))
        }
        if experts > 0 {
            obj["num_local_experts"] = .int(experts)
            obj["num_experts_per_tok"] = .int(int("expert_used_count") ?? min(2, experts))
        }
        if experts > 0 {
            // bam-mix's router recipe keys (GGUFConvert writes them for Mixtral files too).
            for k in RouterRecipeKeys.all {
                switch file["bam.\(k)"] {
                case let .string(s)?: obj[k] = .string(s)
                case let .bool(b)?: obj[k] = .bool(b)
                case let v?: if let x = v.doubleValue { obj[k] = .double(x) }
                case nil: break
                }
            }
        }
        if arch == "bam" {
            if let b = file["bam.router_renormalize"]?.boolValue { obj["router_renormalize"] = .bool(b) }
            if let s = file["bam.attention.expert_kind"]?.stringValue { obj["attention_experts"] = .string(s) }
            if let s = file["bam.attention.routing"]?.stringValue { obj["attention_routing"] = .string(s) }
            if let k = file["bam.attention.expert_used_count"]?.intValue { obj["num_attention_experts_per_tok"] = .int(k) }
            if let b = file["bam.parallel_block"]?.boolValue { obj["parallel_block"] = .bool(b) }
            if let b = file["bam.attention.bias"]?.boolValue { obj["attention_bias"] = .bool(b) }
            if let x = float("logit_scale") { obj["logit_scale"] = .double(x) }
            for k in ["router_aux_loss_coef", "router_z_loss_coef", "router_jitter_noise"] {
                if let x = float(k) { obj[k] = .double(x) }
            }
        }
        if let b = file["tokenizer.ggml.bos_token_id"]?.intValue { obj["bos_token_id"] = .int(b) }
        if let e = file["tokenizer.ggml.eos_token_id"]?.intValue { obj["eos_token_id"] = .int(e) }
        // Block types decode to float32, which is what transformers would hold.
        if let d = dominantDType(file) { obj["torch_dtype"] = .string(d.isQuantized ? DType.f32.torchName : d.torchName) }
        if let name = file["general.name"]?.stringValue, obj["_name_or_path"] == nil { obj["_name_or_path"] = .string(name) }
        return obj
    }

    /// The type of most of the 2-D weights (1-D norms are F32 in llama.cpp's files whatever the
    /// file type, so they do not count).
    static func dominantDType(_ file: GGUFFile) -> DType? {
        var bytes: [DType: Int] = [:]
        for t in file.tensors where t.dims.count >= 2 { if let d = t.type.dtype { bytes[d, default: 0] += t.count } }
        if bytes.isEmpty { for t in file.tensors { if let d = t.type.dtype { bytes[d, default: 0] += t.count } } }
        return bytes.max { $0.value < $1.value }?.key
    }
}
