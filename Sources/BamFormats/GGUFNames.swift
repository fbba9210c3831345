import BamTensors
import Foundation

/// Tensor names between HF (transformers) and GGUF, for the architectures bam-mix writes: `llama`
/// (Llama, Mistral, Mixtral), `qwen2`, and this project's own `bam` (docs/gguf.md). Both spellings
/// of every parameter come from `ParameterKey` (ParameterTable.swift); this type only adds what is
/// specific to converting files: stacked experts, transformers 5's fused Mixtral tensors and
/// buffers that are not weights.
///
/// GGUF names are `token_embd`, `output_norm`, `output`, and per block `blk.N.<part>[.E]`, each
/// with a `.weight` or `.bias` suffix. Mixtral experts are stacked into one 3-D tensor per block
/// and projection (`ffn_gate_exps` etc.), as current llama.cpp writes them; older files with one
/// tensor per expert (`blk.N.ffn_gate.E.weight`) are read too.
enum GGUFTensorNames {
    /// What a GGUF tensor holds in HF terms.
    enum Target: Equatable {
        /// One HF tensor.
        case single(String)
        /// A stacked [E, rows, cols] tensor: expert e is HF tensor names[e].
        case stacked([String])
    }

    /// The HF name(s) of a GGUF tensor, or nil when it has none (e.g. `rope_freqs`). `experts` is
    /// the file's expert count; per-expert FFN names of older files are only read when it is > 0.
    static func hf(fromGGUF name: String, experts: Int) -> Target? {
        switch ParameterKey.parse(ggufName: name, legacyExperts: experts > 0) {
        case nil: return nil
        case let .parameter(key)?: return .single(key.hfName)
        case let .stackedExperts(layer, p, kind)?:
            return .stacked((0..<experts).map { ParameterKey.feedForward(layer: layer, expert: $0, p, kind).hfName })
        }
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
            case .router: return .single(ParameterKey.ffnRouter(layer: layer).ggufName.name)
            case .gateUp: return .fusedGateUp(layer: layer)
            case .down: return .fusedDown(layer: layer)
            }
        }
        guard let key = ParameterKey(hfName: name) else { return nil }
        switch key.ggufName {
        case let .tensor(g): return .single(g)
        case let .stacked(g, e):
            guard case let .feedForward(layer, _, p, _) = key else { return nil }
            return .expert(name: g, layer: layer, hf: p.mixtralName, expert: e)
        }
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
            throw BamError.mismatch("tensor `\(tensor)` has \(rows) rows, which \(heads) heads of even size cannot split (the Q/K RoPE permutation needs that)", file: file)
        }
    }
}

/// Shortest decimal for a Float32 value, as a Double (so 1e-5 stored as f32 reads back as 1e-05,
/// not 9.999999747378752e-06, in config.json).
func ggufShortestDouble(_ f: Float) -> Double { Double(String(describing: f)) ?? Double(f) }
