import BamTensors
import Foundation

/// What a conversion did beyond the obvious, for the CLI to print (one line each).
public struct GGUFConversionReport: Sendable {
    public var notes: [String] = []
    public var tensorsWritten = 0
}

/// HF checkpoint <-> GGUF file, the way llama.cpp's convert_hf_to_gguf.py lays GGUFs out, so that
/// llama.cpp runs what bam-mix writes and bam-mix reads what llama.cpp's converter writes.
/// docs/gguf.md lists the keys, names and type rules.
public enum GGUFConverter {
    /// GGML_QUANT_VERSION, which convert_hf_to_gguf.py writes into every file.
    static let quantizationVersion: UInt32 = 2

    /// The types `hfToGGUF` writes the 2-D weights in: plain floats and the block types bam-mix
    /// quantises (bit-identical to gguf-py's quantisers).
    public static let writableTypes: [DType] = [.f32, .f16, .bf16] + BlockQuantization.writable

    /// Writes `ckpt` (an HF checkpoint, or a GGUF being re-quantised) as one GGUF file. `dtype` nil
    /// keeps the checkpoint's own type (f64 and types bam-mix cannot write -> f32); a float or
    /// block type casts the 2-D weights, while 1-D tensors, biases and MoE routers stay F32 as in
    /// llama.cpp, and a block type falls back to F16 for rows that are not whole blocks.
    /// `tokenizerFrom` supplies the `tokenizer.*` keys from a GGUF (mixes of GGUF experts);
    /// `extraMetadata` adds keys or replaces the ones the converter writes.
    @discardableResult
    public static func hfToGGUF(_ ckpt: Checkpoint, output: URL, dtype: DType?, tokenizerFrom: GGUFFile? = nil,
                                extraMetadata: [(String, GGUFValue)] = []) throws -> GGUFConversionReport {
        var report = GGUFConversionReport()
        if let d = dtype, !writableTypes.contains(d) {
            throw BamError.usage("GGUF output dtype must be one of \(writableTypes.map { $0.rawValue.lowercased() }.joined(separator: ", ")), not \(d.rawValue.lowercased())\(d.isQuantized ? " (bam-mix has no quantiser for it; use llama-quantize on an F32 or F16 GGUF)" : "")")
        }
        let cfg = ckpt.config
        let store = ckpt.store
        let arch: String
        switch cfg.family {
        case .llama, .mistral, .mixtral: arch = "llama"
        case .qwen2: arch = "qwen2"
        case .bam: arch = "bam"
        case .cohere:
            throw BamError.unsupported("converting Cohere (parallel-block) models to GGUF is not implemented; bam-mix writes the llama, qwen2 and bam GGUF architectures", file: ckpt.path.path)
        }
        if arch != "bam", case .llama3 = cfg.ropeScaling {
            throw BamError.unsupported("Llama 3.1-style rope_scaling needs llama.cpp's `rope_freqs` tensor, which bam-mix does not write yet", file: ckpt.path.path)
        }
        let permute = arch == "llama"

        // The type most 2-D weights are stored in decides "keep" and general.file_type.
        var sourceBytes: [DType: Int] = [:]
        for n in store.names { if let i = store.info(n), i.shape.count >= 2 { sourceBytes[i.dtype, default: 0] += i.count } }
        var keep = sourceBytes.max { $0.value < $1.value }?.key ?? .f32
        if !writableTypes.contains(keep) { keep = .f32 }
        let base = dtype ?? keep

        // Plan the GGUF tensors in the order their first HF tensor appears. A GGUF tensor is written
        // from pieces: whole HF tensors, or row ranges of one (fused experts).
        struct Piece { var name: String; var rows: Range<Int>? }
        struct Planned {
            var name: String
            var shape: [Int]          // row-major, as written (outermost first)
            var pieces: [Piece]
            var permuteHeads: Int?
            var dtype: DType
        }
        var planned: [Planned] = []
        var index: [String: Int] = [:]
        var stacks: [String: [Int: String]] = [:]
        func add(_ p: Planned) throws {
            guard index[p.name] == nil else { throw BamError.mismatch("\(store.location): two tensors map to GGUF `\(p.name)`") }
            index[p.name] = planned.count
            planned.append(p)
        }
        for n in store.names {
            if GGUFTensorNames.isIgnorable(n) {
                report.notes.append("skipped buffer `\(n)`")
                continue
            }
            guard let info = store.info(n) else { continue }
            guard let dest = GGUFTensorNames.gguf(fromHF: n) else {
                throw BamError.unsupported("\(store.location): tensor `\(n)` has no GGUF name in bam-mix's `\(arch)` mapping (docs/gguf.md lists the names it knows)")
            }
            switch dest {
            case let .single(g):
                var heads: Int? = nil
                if permute, g.hasPrefix("blk.") {
                    if g.contains(".attn_q.") { heads = cfg.heads }
                    if g.contains(".attn_k.") { heads = cfg.kvHeads }
                }
                let shape = info.shape.isEmpty ? [1] : info.shape
                if let h = heads { try GGUFRopePermutation.check(rows: shape[0], heads: h, tensor: n, file: store.location) }
                try add(Planned(name: g, shape: shape, pieces: [Piece(name: n, rows: nil)], permuteHeads: heads, dtype: .f32))
            case let .expert(g, _, _, e):
                guard info.shape.count == 2 else {
                    throw BamError.mismatch("\(store.location): expert tensor `\(n)` has shape \(info.shape); a 2-D [out, in] weight expected")
                }
                if index[g] == nil { try add(Planned(name: g, shape: info.shape, pieces: [], permuteHeads: nil, dtype: .f32)) }
                guard stacks[g, default: [:]][e] == nil else { throw BamError.mismatch("\(store.location): expert \(e) of `\(g)` appears twice") }
                stacks[g, default: [:]][e] = n
            case let .fusedGateUp(layer):
                guard info.shape.count == 3, info.shape[1] % 2 == 0 else {
                    throw BamError.mismatch("\(store.location): `\(n)` has shape \(info.shape); [E, 2 * intermediate, hidden] expected")
                }
                let (e, twoI, h) = (info.shape[0], info.shape[1], info.shape[2])
                let i = twoI / 2
                try add(Planned(name: "blk.\(layer).ffn_gate_exps.weight", shape: [e, i, h],
                                pieces: (0..<e).map { Piece(name: n, rows: ($0 * twoI)..<($0 * twoI + i)) }, permuteHeads: nil, dtype: .f32))
                try add(Planned(name: "blk.\(layer).ffn_up_exps.weight", shape: [e, i, h],
                                pieces: (0..<e).map { Piece(name: n, rows: ($0 * twoI + i)..<($0 * twoI + twoI)) }, permuteHeads: nil, dtype: .f32))
            case let .fusedDown(layer):
                guard info.shape.count == 3 else {
                    throw BamError.mismatch("\(store.location): `\(n)` has shape \(info.shape); [E, hidden, intermediate] expected")
                }
                try add(Planned(name: "blk.\(layer).ffn_down_exps.weight", shape: info.shape, pieces: [Piece(name: n, rows: nil)],
                                permuteHeads: nil, dtype: .f32))
            }
        }
        for (g, members) in stacks {
            let i = index[g]!
            let count = members.count
            if let e = cfg.moe?.experts, e != count {
                throw BamError.mismatch("\(store.location): `\(g)` gathers \(count) experts, but the config has num_local_experts = \(e)")
            }
            var pieces: [Piece] = []
            for e in 0..<count {
                guard let n = members[e] else { throw BamError.mismatch("\(store.location): expert \(e) of `\(g)` is missing") }
                guard store.info(n)?.shape == planned[i].shape else {
                    throw BamError.mismatch("\(store.location): expert tensor `\(n)` has shape \(store.info(n)?.shape ?? []); the other experts have \(planned[i].shape)")
                }
                pieces.append(Piece(name: n, rows: nil))
            }
            planned[i].pieces = pieces
            planned[i].shape = [count] + planned[i].shape
        }

        // Types, as convert_hf_to_gguf.py chooses them.
        var fellBack = 0
        for i in planned.indices {
            let p = planned[i]
            let isRouter = p.name.contains(".ffn_gate_inp.") || p.name.contains(".attn_gate_inp.")
            if p.shape.count <= 1 || p.name.hasSuffix("_norm.weight") || !p.name.hasSuffix(".weight") || isRouter {
                planned[i].dtype = .f32
            } else if base.isQuantized, p.shape.last! % base.blockSize != 0 {
                planned[i].dtype = .f16
                fellBack += 1
            } else {
                planned[i].dtype = base
            }
        }
        if fellBack > 0 { report.notes.append("\(fellBack) tensor(s) have rows that are not whole \(base.rawValue) blocks of \(base.blockSize) and were written as F16 (as llama.cpp's converter does)") }

        let entries: [TensorWriteEntry] = planned.map { p in
            TensorWriteEntry(name: p.name, dtype: p.dtype, shape: p.shape) { write in
                for piece in p.pieces {
                    try GGUFConverter.writeTensor(store: store, name: piece.name, rows: piece.rows, as: p.dtype,
                                                  permuteHeads: p.permuteHeads, write: write)
                }
            }
        }
        report.tensorsWritten = entries.count

        var meta = try architectureMetadata(ckpt, arch: arch, fileType: base)
        if let g = tokenizerFrom ?? (store as? GGUFStore)?.file {
            for k in g.keys where k.hasPrefix("tokenizer.") { meta.append((k, g[k]!)) }
        } else if let tok = try GGUFTokenizer.ggufMetadata(directory: ckpt.directory, vocabSize: cfg.vocabSize) {
            meta += tok
        } else {
            report.notes.append("no tokenizer.json in \(ckpt.directory.path): the GGUF has no vocabulary (llama.cpp needs one to run it)")
        }
        let replaced = Set(extraMetadata.map(\.0))
        meta = meta.filter { !replaced.contains($0.0) } + extraMetadata
        try GGUFWriter.write(metadata: meta, tensors: entries, to: output)
        return report
    }

    /// Streams one HF tensor (or the row range `rows` of it, viewed as [rows, last dim]) as `dtype`,
    /// with the Q/K permutation applied when `permuteHeads` is set.
    static func writeTensor(store: any TensorStore, name: String, rows: Range<Int>? = nil, as dtype: DType, permuteHeads: Int?,
                            write: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let info = store.info(name) else { throw BamError.format(store.location, "missing tensor `\(name)`") }
        defer { store.release(name) }
        let cols = max(info.shape.last ?? 1, 1)
        let r = rows ?? 0..<(info.count / cols)
        let n = r.count * cols
        guard let srcRow = info.dtype.byteCount(elements: cols), let bytes = dtype.byteCount(elements: n) else {
            throw BamError.usage("tensor `\(name)` with rows of \(cols) values cannot be stored as \(dtype.rawValue)")
        }
        let all = try store.bytes(name)
        guard r.upperBound * srcRow <= all.count else { throw BamError.format(store.location, "tensor `\(name)`: rows \(r) out of range") }
        var raw = UnsafeRawBufferPointer(rebasing: all[(r.lowerBound * srcRow)..<(r.upperBound * srcRow)])
        var owned: UnsafeMutableRawBufferPointer? = nil
        defer { owned?.deallocate() }
        if info.dtype != dtype, n > 0 {
            let f = UnsafeMutablePointer<Float>.allocate(capacity: n)
            defer { f.deallocate() }
            var part = info
            part.shape = [r.count, cols]
            try store.decodeChecked(raw, part, into: f)
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
            owned = buf
            try DTypeConversion.fromFloat32(f, count: n, dtype: dtype, into: buf.baseAddress!)
            raw = UnsafeRawBufferPointer(buf)
        }
        guard let heads = permuteHeads, bytes > 0 else { return try write(raw) }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
        defer { out.deallocate() }
        GGUFRopePermutation.permuteRows(raw.baseAddress!, out.baseAddress!, rows: r.count, rowBytes: bytes / r.count, heads: heads, toGGUF: true)
        try write(UnsafeRawBufferPointer(out))
    }

    /// general.* and `<arch>.*` keys (llama.cpp's names and types: counts u32, floats f32).
    static func architectureMetadata(_ ckpt: Checkpoint, arch: String, fileType: DType) throws -> [(String, GGUFValue)] {
        let cfg = ckpt.config
        var m: [(String, GGUFValue)] = []
        // A size GGUF's u32 cannot hold is refused, never clamped (a clamped vocab_size is a
        // different model). ModelConfig's limits keep real configs far below 2^32.
        func u32(_ k: String, _ v: Int) throws {
            guard let x = UInt32(exactly: v) else {
                throw BamError.unsupported("\(k) = \(v) does not fit GGUF's uint32 `\(arch).\(k)`; refusing to write a clamped value", file: ckpt.path.path)
            }
            m.append(("\(arch).\(k)", .uint32(x)))
        }
        func f32(_ k: String, _ v: Double) { m.append(("\(arch).\(k)", .float32(Float(v)))) }
        let raw = cfg.raw
        m.append(("general.architecture", .string(arch)))
        var name = ckpt.directory.lastPathComponent
        if let n = raw["_name_or_path"]?.stringValue, !n.isEmpty { name = (n as NSString).lastPathComponent }
        m.append(("general.name", .string(name)))
        // llama.cpp's enum llama_ftype (LLAMA_FTYPE_MOSTLY_*).
        let ft: UInt32 = switch fileType {
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .q5_0: 8
        case .q5_1: 9
        case .bf16: 32
        default: 0
        }
        m.append(("general.file_type", .uint32(ft)))
        m.append(("general.quantization_version", .uint32(quantizationVersion)))
        try u32("vocab_size", cfg.vocabSize)
        try u32("context_length", cfg.maxPositions)
        try u32("embedding_length", cfg.hidden)
        try u32("block_count", cfg.layers)
        try u32("feed_forward_length", cfg.intermediate)
        try u32("attention.head_count", cfg.heads)
        try u32("attention.head_count_kv", cfg.kvHeads)
        try u32("rope.dimension_count", cfg.headDim)
        // convert_hf_to_gguf.py writes these whenever config.json names head_dim.
        if cfg.headDim * cfg.heads != cfg.hidden || raw["head_dim"]?.intValue != nil {
            try u32("attention.key_length", cfg.headDim)
            try u32("attention.value_length", cfg.headDim)
        }
        // Take floats from config.json itself where present (the parsed config holds Float).
        let theta = raw["rope_theta"]?.doubleValue ?? raw["rope_parameters"]?["rope_theta"]?.doubleValue ?? Double(cfg.ropeTheta)
        f32("rope.freq_base", theta)
        if cfg.norm == .rms {
            f32("attention.layer_norm_rms_epsilon", raw["rms_norm_eps"]?.doubleValue ?? Double(cfg.normEps))
        } else {
            f32("attention.layer_norm_epsilon", raw["layer_norm_eps"]?.doubleValue ?? Double(cfg.normEps))
        }
        if case let .linear(factor) = cfg.ropeScaling {
            m.append(("\(arch).rope.scaling.type", "linear"))
            f32("rope.scaling.factor", Double(factor))
        }
        if let moe = cfg.moe {
            try u32("expert_count", moe.experts)
            try u32("expert_used_count", moe.topK)
        }
        if arch == "bam" {
            m.append(("bam.base_architecture", .string(cfg.baseFamily.rawValue)))
            if let moe = cfg.moe {
                m.append(("bam.router_renormalize", .bool(moe.renormalize)))
                m.append(("bam.router_aux_loss_coef", .float64(moe.routerAuxLossCoef)))
                m.append(("bam.router_z_loss_coef", .float64(moe.routerZLossCoef)))
                m.append(("bam.router_jitter_noise", .float64(moe.routerJitterNoise)))
            }
            if let moa = cfg.moa {
                m.append(("bam.attention.expert_kind", .string(moa.kind.rawValue)))
                m.append(("bam.attention.routing", .string(moa.routing.rawValue)))
                m.append(("bam.attention.expert_used_count", .uint32(UInt32(moa.topK))))
            }
            m.append(("bam.parallel_block", .bool(cfg.parallelBlock)))
            m.append(("bam.attention.bias", .bool(cfg.qkvBias)))
            if cfg.logitScale != 1 { m.append(("bam.logit_scale", .float32(cfg.logitScale))) }
            m.append(("bam.hf_config", .string(JSONValue.object(raw).serialized(indent: nil))))
        }
        if cfg.moe != nil {
            // The router recipe (RouterRecipe.swift) as `bam.<key>`, for Mixtral files too (llama.cpp
            // ignores keys it does not know): the keys config.json states, so absent ones stay absent.
            for k in RouterRecipeKeys.all where !m.contains(where: { $0.0 == "bam.\(k)" }) {
                guard let v = raw[k], !v.isNull else { continue }
                if let s = v.stringValue {
                    m.append(("bam.\(k)", .string(s)))
                } else if let b = v.boolValue {
                    m.append(("bam.\(k)", .bool(b)))
                } else if let x = v.doubleValue {
                    m.append(("bam.\(k)", .float64(x)))
                } else {
                    throw BamError.config(ckpt.path.path, key: k, "expected a string, a boolean or a number, found \(v.serialized(indent: nil))")
                }
            }
        }
        return m
    }

    /// Writes an HF directory (config.json, safetensors, tokenizer.json + tokenizer_config.json when
    /// the vocabulary can be rebuilt) from a GGUF checkpoint: Q/K un-permuted, experts unstacked.
    /// `dtype` nil writes the GGUF's main type (a block type becomes F32, which holds the dequantised
    /// values exactly; f16 and bf16 do not). The
    /// directory is built beside `outputDirectory` under a temporary name and renamed when complete.
    @discardableResult
    public static func ggufToHF(_ ckpt: Checkpoint, outputDirectory: URL, dtype: DType?) throws -> GGUFConversionReport {
        var report = GGUFConversionReport()
        guard let store = ckpt.store as? GGUFStore else {
            throw BamError.usage("the input is not a GGUF checkpoint; GGUF -> HF conversion needs a .gguf input", file: ckpt.path.path)
        }
        if let d = dtype, ![.f32, .f16, .bf16].contains(d) {
            throw BamError.usage("an HF (safetensors) output cannot hold this type", expected: "f32, f16 or bf16", found: d.rawValue.lowercased(),
                                 hint: "use \(GGUFConverter.dtypeOption, "f32") to keep quantised weights' values exactly")
        }
        var target = dtype ?? GGUFConfigSynthesis.dominantDType(store.file) ?? .f32
        if ![.f32, .f16, .bf16].contains(target) { target = .f32 }

        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: outputDirectory.path, isDirectory: &isDir) {
            let contents = (try? fm.contentsOfDirectory(atPath: outputDirectory.path)) ?? []
            guard isDir.boolValue, contents.isEmpty else {
                throw BamError.usage("the output already exists and is not an empty directory; choose a new output directory", file: outputDirectory.path)
            }
        }
        let parent = outputDirectory.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        TemporaryOutputs.cleanUpDeadRuns(for: outputDirectory)
        let tmp = parent.appendingPathComponent(TemporaryOutputs.temporaryName(for: outputDirectory.lastPathComponent))
        try? fm.removeItem(at: tmp)
        TemporaryOutputs.register(tmp)
        defer { TemporaryOutputs.unregister(tmp) }
        try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
        var done = false
        defer { if !done { try? fm.removeItem(at: tmp) } }

        var config = store.configJSON
        config["torch_dtype"] = .string(target.torchName)
        try writeFileAtomically(Data(JSONValue.object(config).serialized().utf8), to: tmp.appendingPathComponent("config.json"))

        let entries: [TensorWriteEntry] = store.names.map { n in
            let info = store.info(n)!
            return TensorWriteEntry(name: n, dtype: target, shape: info.shape) { write in
                defer { store.release(n) }
                if info.dtype == target { return try write(store.bytes(n)) }
                let t = try store.tensor(n)
                if target == .f32 { return try write(UnsafeRawBufferPointer(start: t.data, count: t.byteCount)) }
                let bytes = target.byteCount(elements: t.count)!
                let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
                defer { buf.deallocate() }
                if t.count > 0 { try DTypeConversion.fromFloat32(t.data, count: t.count, dtype: target, into: buf.baseAddress!) }
                try write(UnsafeRawBufferPointer(rebasing: buf[0..<bytes]))
            }
        }
        try SafetensorsWriter.writeSharded(entries, directory: tmp, shardSize: 5_000_000_000)
        report.tensorsWritten = entries.count

        do {
            let (tok, tcfg) = try GGUFTokenizer.hfTokenizer(from: store.file)
            try writeFileAtomically(Data(JSONValue.object(tok).serialized().utf8), to: tmp.appendingPathComponent("tokenizer.json"))
            try writeFileAtomically(Data(JSONValue.object(tcfg).serialized().utf8), to: tmp.appendingPathComponent("tokenizer_config.json"))
        } catch let e as BamError {
            report.notes.append("no tokenizer.json written: \(e.message)")
        }

        try TemporaryOutputs.replaceDirectory(outputDirectory, with: tmp)
        done = true
        return report
    }
}

extension GGUFConverter {
    /// The `dtype` parameter of the conversions, as errors name it (the CLI words it `--dtype`).
    public static let dtypeOption = BamError.Option(owner: "GGUFConverter", name: "dtype")
}
