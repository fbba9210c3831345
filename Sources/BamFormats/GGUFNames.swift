import BamTensors
import Foundation

/// Tensor names between HF (transformers) and GGUF (llama.cpp's gguf-py `tensor_mapping.py`), for
/// the architectures bam-mix writes: `llama` (Llama, Mistral, Mixtral), `qwen2`, and this
/// project's own `bam` (docs/gguf.md).
///
/// GGUF names are `token_embd`, `output_norm`, `output`, and per block `blk.N.<part>[.E]`, each
/// with a `.weight` or `.bias` suffix. Mixtral experts are stacked into one 3-D tensor per block
/// and projection (`ffn_gate_exps` etc.), as current llama.cpp writes them; older files with one
/// tensor per expert (`blk.N.ffn_gate.E.weight`) are read too.
enum GGUFTensorNames {
    /// HF per-layer suffix (without `.weight`/`.bias`) <-> GGUF block part.
    static let blockParts: [(hf: String, gguf: String)] = [
        ("input_layernorm", "attn_norm"),
        ("post_attention_layernorm", "ffn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
        ("block_sparse_moe.gate", "ffn_gate_inp"),
        // BAM's attention router (docs/gguf.md).
        ("self_attn.gate", "attn_gate_inp"),
    ]

    /// Mixtral expert projections: HF `w1|w3|w2` <-> the stacked GGUF tensor.
    static let expertParts: [(hf: String, gguf: String)] = [("w1", "ffn_gate_exps"), ("w3", "ffn_up_exps"), ("w2", "ffn_down_exps")]
    /// The per-expert GGUF layout of older llama.cpp Mixtral files.
    static let legacyExpertParts: [(hf: String, gguf: String)] = [("w1", "ffn_gate"), ("w3", "ffn_up"), ("w2", "ffn_down")]
    /// BAM attention experts: HF `self_attn.experts.E.<proj>` <-> GGUF `blk.N.<part>.E`.
    static let attentionExpertParts: [(hf: String, gguf: String)] = [
        ("q_proj", "attn_q"), ("k_proj", "attn_k"), ("v_proj", "attn_v"), ("o_proj", "attn_output"),
    ]

    static let topLevel: [(hf: String, gguf: String)] = [
        ("model.embed_tokens", "token_embd"), ("model.norm", "output_norm"), ("lm_head", "output"),
    ]

    /// What a GGUF tensor holds in HF terms.
    enum Target: Equatable {
        /// One HF tensor.
        case single(String)
        /// A stacked [E, rows, cols] tensor: expert e is HF tensor names[e].
        case stacked([String])
    }

    /// Splits `name` into its stem and `.weight`/`.bias` suffix.
    static func splitSuffix(_ name: String) -> (String, String)? {
        for s in [".weight", ".bias"] where name.hasSuffix(s) { return (String(name.dropLast(s.count)), s) }
        return nil
    }

    /// The HF name(s) of a GGUF tensor, or nil when it has none (e.g. `rope_freqs`).
    static func hf(fromGGUF name: String, experts: Int) -> Target? {
        guard let (stem, suffix) = splitSuffix(name) else { return nil }
        for (h, g) in topLevel where g == stem { return .single(h + suffix) }
        let parts = stem.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0 else { return nil }
        let prefix = "model.layers.\(layer)."
        if parts.count == 3 {
            let part = parts[2]
            for (h, g) in blockParts where g == part { return .single(prefix + h + suffix) }
            for (h, g) in expertParts where g == part {
                return .stacked((0..<experts).map { "\(prefix)block_sparse_moe.experts.\($0).\(h)\(suffix)" })
            }
            return nil
        }
        if parts.count == 4, let e = Int(parts[3]), e >= 0 {
            let part = parts[2]
            // Legacy per-expert FFN tensors (only when the file has FFN experts), else BAM attention experts.
            if experts > 0 {
                for (h, g) in legacyExpertParts where g == part { return .single("\(prefix)block_sparse_moe.experts.\(e).\(h)\(suffix)") }
            }
            for (h, g) in attentionExpertParts where g == part { return .single("\(prefix)self_attn.experts.\(e).\(h)\(suffix)") }
        }
        return nil
    }

    /// Where an HF tensor goes in GGUF.
    enum Destination: Equatable {
        case single(String)
        /// Expert `expert` of the stacked tensor `name` (layer `layer`, projection `hf` w1/w2/w3).
        case expert(name: String, layer: Int, hf: String, expert: Int)
        /// transformers 5's fused Mixtral experts: `mlp.experts.gate_up_proj` [E, 2I, H] (gate rows
        /// first in each expert) -> ffn_gate_exps + ffn_up_exps; `mlp.experts.down_proj` [E, H, I]
        /// -> ffn_down_exps (docs/gguf.md).
        case fusedGateUp(layer: Int)
        case fusedDown(layer: Int)
    }

    static func gguf(fromHF name: String) -> Destination? {
        if let (layer, kind) = FusedMixtralTensor.parse(name) {
            switch kind {
            case .router: return .single("blk.\(layer).ffn_gate_inp.weight")
            case .gateUp: return .fusedGateUp(layer: layer)
            case .down: return .fusedDown(layer: layer)
            }
        }
        guard let (stem, suffix) = splitSuffix(name) else { return nil }
        for (h, g) in topLevel where h == stem { return .single(g + suffix) }
        let prefix = "model.layers."
        guard stem.hasPrefix(prefix) else { return nil }
        let rest = stem.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0 else { return nil }
        let part = String(rest[rest.index(after: dot)...])
        for (h, g) in blockParts where h == part { return .single("blk.\(layer).\(g)\(suffix)") }
        let p = part.split(separator: ".").map(String.init)
        if p.count == 4, p[0] == "block_sparse_moe", p[1] == "experts", let e = Int(p[2]), e >= 0, suffix == ".weight" {
            for (h, g) in expertParts where h == p[3] {
                return .expert(name: "blk.\(layer).\(g).weight", layer: layer, hf: h, expert: e)
            }
        }
        if p.count == 4, p[0] == "self_attn", p[1] == "experts", let e = Int(p[2]), e >= 0 {
            for (h, g) in attentionExpertParts where h == p[3] { return .single("blk.\(layer).\(g).\(e)\(suffix)") }
        }
        return nil
    }

    /// HF tensors that are buffers, not weights, and are dropped on conversion.
    static func isIgnorable(_ hfName: String) -> Bool {
        hfName.hasSuffix("rotary_emb.inv_freq") || hfName.hasSuffix(".masked_bias") || hfName.hasSuffix("attn.bias")
    }
}

/// llama.cpp's Q/K row permutation for the `llama` architecture (convert_hf_to_gguf.py
/// `LlamaModel.permute`): HF keeps each head's rotary pairs half a head apart (rotate-half), ggml's
/// llama RoPE rotates adjacent pairs, so conversion reorders the rows of every head:
///   HF -> GGUF: w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols)
/// i.e. GGUF row h*HS + 2*b + a holds HF row h*HS + a*HS/2 + b (a in {0, 1}, b < HS/2).
/// Works on raw bytes, whatever the dtype, as long as a row is whole blocks (Q8_0 rows are).
enum GGUFRopePermutation {
    /// Copies `rows` rows of `rowBytes` bytes from `src` to `dst` with the permutation applied
    /// (`toGGUF`) or undone.
    static func permuteRows(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, rows: Int, rowBytes: Int,
                            heads: Int, toGGUF: Bool) {
        let hs = rows / heads
        let half = hs / 2
        for h in 0..<heads {
            for a in 0..<2 {
                for b in 0..<half {
                    let hfRow = h * hs + a * half + b
                    let ggRow = h * hs + 2 * b + a
                    let (from, to) = toGGUF ? (hfRow, ggRow) : (ggRow, hfRow)
                    (dst + to * rowBytes).copyMemory(from: src + from * rowBytes, byteCount: rowBytes)
                }
            }
        }
    }

    static func check(rows: Int, heads: Int, tensor: String, file: String) throws {
        guard heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else {
            throw BamError.mismatch("\(file): tensor `\(tensor)` has \(rows) rows, which \(heads) heads of even size cannot split (the Q/K RoPE permutation needs that)")
        }
    }
}

/// Shortest decimal for a Float32 value, as a Double (so 1e-5 stored as f32 reads back as 1e-05,
/// not 9.999999747378752e-06, in config.json).
func ggufShortestDouble(_ f: Float) -> Double { Double(String(describing: f)) ?? Double(f) }
