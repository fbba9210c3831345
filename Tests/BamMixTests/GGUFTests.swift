@testable import BamFormats
import BamTokenizers
import Foundation
import Testing

// Fixtures come from tools/make_format_fixtures.py (gguf-py, transformers and llama.cpp's own
// convert_hf_to_gguf.py, run by hand); the tests need neither Python nor the network.

enum FormatFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static func gguf(_ p: String) -> URL { root.appendingPathComponent("gguf").appendingPathComponent(p) }
    static func pytorch(_ p: String) -> URL { root.appendingPathComponent("pytorch").appendingPathComponent(p) }
}

/// A temporary directory removed when the object dies.
final class FormatTempDir {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("bam-mix-formats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
}

/// SplitMix64 floats for tiny random models.
struct FormatRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func float() -> Float { (Float(next() >> 40) / Float(1 << 24) - 0.5) * 2 }
}

func readJSONObject(_ url: URL) throws -> JSONObject {
    guard let o = try readJSONFile(url).objectValue else { throw BamError.format(url.path, "not an object") }
    return o
}

/// Expects `body` to throw a BamError whose message contains every needle.
func expectBamError(_ needles: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error mentioning \(needles)", sourceLocation: sourceLocation)
    } catch let e as BamError {
        for n in needles { #expect(e.message.contains(n), "message was: \(e.message)", sourceLocation: sourceLocation) }
    } catch {
        Issue.record("unexpected error type \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
}

/// Tiny HF checkpoints written in the test (config.json + model.safetensors), for round trips.
enum TinyHF {
    static let V = 64, C = 32, NH = 4, NKV = 2, HS = 8, F = 64, L = 2, E = 2

    static func tensorShapes(_ family: String, bias: Bool = false, vocab: Int = V) -> [(String, [Int])] {
        var out: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, C])]
        for l in 0..<L {
            let p = "model.layers.\(l)."
            out.append((p + "input_layernorm.weight", [C]))
            if family == "bam" {
                out.append((p + "self_attn.gate.weight", [E, C]))
                for e in 0..<E {
                    let q = p + "self_attn.experts.\(e)."
                    out += [(q + "q_proj.weight", [NH * HS, C]), (q + "k_proj.weight", [NKV * HS, C]),
                            (q + "v_proj.weight", [NKV * HS, C]), (q + "o_proj.weight", [C, NH * HS])]
                }
            } else {
                out += [(p + "self_attn.q_proj.weight", [NH * HS, C]), (p + "self_attn.k_proj.weight", [NKV * HS, C]),
                        (p + "self_attn.v_proj.weight", [NKV * HS, C]), (p + "self_attn.o_proj.weight", [C, NH * HS])]
                if family == "qwen2" || bias {
                    out += [(p + "self_attn.q_proj.bias", [NH * HS]), (p + "self_attn.k_proj.bias", [NKV * HS]),
                            (p + "self_attn.v_proj.bias", [NKV * HS])]
                    if bias { out.append((p + "self_attn.o_proj.bias", [C])) }
                }
            }
            out.append((p + "post_attention_layernorm.weight", [C]))
            if family == "mixtral" || family == "bam" {
                out.append((p + "block_sparse_moe.gate.weight", [E, C]))
                for e in 0..<E {
                    let q = p + "block_sparse_moe.experts.\(e)."
                    out += [(q + "w1.weight", [F, C]), (q + "w2.weight", [C, F]), (q + "w3.weight", [F, C])]
                }
            } else {
                out += [(p + "mlp.gate_proj.weight", [F, C]), (p + "mlp.up_proj.weight", [F, C]), (p + "mlp.down_proj.weight", [C, F])]
            }
        }
        out.append(("model.norm.weight", [C]))
        out.append(("lm_head.weight", [vocab, C]))
        return out
    }

    static func config(_ family: String, dtype: DType, bias: Bool, vocab: Int = V) -> JSONObject {
        var c = JSONObject([
            ("architectures", .array([.string(["llama": "LlamaForCausalLM", "mixtral": "MixtralForCausalLM", "qwen2": "Qwen2ForCausalLM", "bam": "BamForCausalLM"][family]!)])),
            ("model_type", .string(family)), ("vocab_size", .int(vocab)), ("hidden_size", .int(C)),
            ("intermediate_size", .int(F)), ("num_hidden_layers", .int(L)), ("num_attention_heads", .int(NH)),
            ("num_key_value_heads", .int(NKV)), ("max_position_embeddings", 256), ("rms_norm_eps", 1e-5),
            ("rope_theta", 10000.0), ("hidden_act", "silu"), ("tie_word_embeddings", false),
            ("bos_token_id", 1), ("eos_token_id", 2), ("torch_dtype", .string(dtype.torchName)),
        ])
        if bias { c["attention_bias"] = true }
        if family == "mixtral" || family == "bam" {
            c["num_local_experts"] = .int(E)
            c["num_experts_per_tok"] = 1
        }
        if family == "bam" {
            c["base_model_type"] = "llama"
            c["router_renormalize"] = false
            c["attention_experts"] = "expert_kv"
            c["attention_routing"] = "soft"
            c["parallel_block"] = false
            c["router_aux_loss_coef"] = 0.01
            c["router_z_loss_coef"] = 0.001
            c["bam_expert_sources"] = .array(["a/llama-code", "b/llama-math"])
        }
        return c
    }

    /// Writes the model and returns its directory.
    @discardableResult
    static func write(_ family: String, dtype: DType, to dir: URL, seed: UInt64 = 7, bias: Bool = false,
                      vocab: Int = V, tokenizer: URL? = nil) throws -> URL {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var rng = FormatRandom(state: seed)
        var entries: [TensorWriteEntry] = []
        for (name, shape) in tensorShapes(family, bias: bias, vocab: vocab) {
            let t = Tensor(shape: shape)
            for i in 0..<t.count { t.data[i] = rng.float() }
            entries.append(.float(name, t, as: dtype))
        }
        try SafetensorsWriter.write(entries, to: dir.appendingPathComponent("model.safetensors"))
        try Data(JSONValue.object(config(family, dtype: dtype, bias: bias, vocab: vocab)).serialized().utf8)
            .write(to: dir.appendingPathComponent("config.json"))
        if let tokenizer {
            for f in ["tokenizer.json", "tokenizer_config.json"] {
                try FileManager.default.copyItem(at: tokenizer.appendingPathComponent(f), to: dir.appendingPathComponent(f))
            }
        }
        return dir
    }
}

/// Every tensor of `a` is in `b` with the same dtype, shape and bytes (and nothing else is in `b`).
func expectSameTensors(_ a: any TensorStore, _ b: any TensorStore, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(Set(a.names) == Set(b.names), "names differ: \(Set(a.names).symmetricDifference(Set(b.names)).sorted())", sourceLocation: sourceLocation)
    for n in a.names {
        guard let ia = a.info(n), let ib = b.info(n) else { continue }
        #expect(ia.shape == ib.shape, "\(n): shape \(ia.shape) vs \(ib.shape)", sourceLocation: sourceLocation)
        #expect(ia.dtype == ib.dtype, "\(n): dtype \(ia.dtype) vs \(ib.dtype)", sourceLocation: sourceLocation)
        let ba = try a.bytes(n), bb = try b.bytes(n)
        #expect(ba.elementsEqual(bb), "\(n): bytes differ", sourceLocation: sourceLocation)
    }
}

/// Hand-assembled GGUF bytes, for the corrupt-file suite.
struct GGUFBytes {
    var bytes: [UInt8] = Array("GGUF".utf8)
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    mutating func pad(_ a: Int = 32) { while bytes.count % a != 0 { bytes.append(0) } }

    /// A valid v3 file with one string key and one F32 [n] tensor, with hooks to break it.
    static func simple(version: UInt32 = 3, tensorCount: UInt64 = 1, kvCount: UInt64 = 1, keyLength: UInt64? = nil,
                       nDims: UInt32 = 1, dims: [UInt64] = [8], type: UInt32 = 0, offset: UInt64 = 0,
                       dataBytes: Int = 32) -> [UInt8] {
        var b = GGUFBytes()
        b.u32(version)
        b.u64(tensorCount)
        b.u64(kvCount)
        b.u64(keyLength ?? 12)
        b.bytes += Array("general.name".utf8)
        b.u32(8)
        b.str("x")
        b.str("t")
        b.u32(nDims)
        for d in dims { b.u64(d) }
        b.u32(type)
        b.u64(offset)
        b.pad()
        b.bytes += [UInt8](repeating: 0, count: dataBytes)
        return b.bytes
    }
}

@Suite("GGUF reading (gguf-py fixtures)")
struct GGUFReaderTests {
    @Test("reads every metadata value type, including nested arrays")
    func metadataTypes() throws {
        let f = try GGUFFile(path: FormatFixtures.gguf("all_types.gguf").path)
        #expect(f.version == 3)
        #expect(f.architecture == "test")
        #expect(f["test.u8"] == .uint8(200))
        #expect(f["test.i8"] == .int8(-100))
        #expect(f["test.u16"] == .uint16(60000))
        #expect(f["test.i16"] == .int16(-30000))
        #expect(f["test.u32"] == .uint32(4_000_000_000))
        #expect(f["test.i32"] == .int32(-2_000_000_000))
        #expect(f["test.f32"] == .float32(0.15625))
        #expect(f["test.bool"] == .bool(true))
        #expect(f["test.string"] == .string("héllo, wörld"))
        #expect(f["test.u64"] == .uint64((1 << 63) + 5))
        #expect(f["test.i64"] == .int64(-(1 << 62)))
        #expect(f["test.f64"] == .float64(1.0 / 3.0))
        #expect(f["test.array_i32"]?.arrayValue?.compactMap(\.intValue) == [1, -2, 3])
        #expect(f["test.array_str"]?.stringArray == ["a", "bc", ""])
        #expect(f["test.array_nested"] == .array(.array, [.array(.int32, [.int32(1), .int32(2)]), .array(.int32, [.int32(3)])]))
    }

    @Test("reads F32, F16, BF16 and Q8_0 tensors as gguf-py wrote them")
    func tensorTypes() throws {
        let f = try GGUFFile(path: FormatFixtures.gguf("all_types.gguf").path)
        let expected = try readJSONObject(FormatFixtures.gguf("all_types.json"))
        #expect(f.tensors.count == 4)
        for (name, e) in expected.pairs {
            guard let t = f.tensor(name) else { Issue.record("missing \(name)"); continue }
            let shape = e["shape"]!.arrayValue!.compactMap(\.intValue)
            #expect(t.shape == shape, "\(name)")
            #expect(t.type.name == e["type"]!.stringValue!, "\(name)")
            #expect(t.offset % f.alignment == 0)
            let want = e["values"]!.arrayValue!.map { Float($0.doubleValue!) }
            var got = [Float](repeating: 0, count: t.count)
            try got.withUnsafeMutableBufferPointer {
                try DTypeConversion.toFloat32(f.bytes(t).baseAddress!, dtype: t.type.dtype!, count: t.count, into: $0.baseAddress!)
            }
            #expect(got == want, "\(name): first difference at \(got.indices.first { got[$0] != want[$0] } ?? -1)")
        }
    }

    @Test("Q8_0 quantisation and dequantisation match gguf-py's bytes and values")
    func q8Reference() throws {
        let r = try readJSONObject(FormatFixtures.gguf("q8_0_reference.json"))
        let input = r["input"]!.arrayValue!.map { Float($0.doubleValue!) }
        let hex = r["quantized_hex"]!.stringValue!
        let want = stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
            let s = hex.index(hex.startIndex, offsetBy: i)
            return UInt8(hex[s..<hex.index(s, offsetBy: 2)], radix: 16)!
        }
        var got = [UInt8](repeating: 0, count: want.count)
        input.withUnsafeBufferPointer { x in got.withUnsafeMutableBytes { Q8_0.quantize(x.baseAddress!, count: input.count, into: $0.baseAddress!) } }
        for b in 0..<(want.count / 34) where got[(b * 34)..<(b * 34 + 34)] != want[(b * 34)..<(b * 34 + 34)] {
            Issue.record("block \(b): ours \(got[(b * 34)..<(b * 34 + 34)].map { $0 }) gguf-py \(want[(b * 34)..<(b * 34 + 34)].map { $0 })")
        }
        let deq = r["dequantized"]!.arrayValue!.map { Float($0.doubleValue!) }
        var ours = [Float](repeating: 0, count: input.count)
        want.withUnsafeBytes { q in ours.withUnsafeMutableBufferPointer { Q8_0.dequantize(q.baseAddress!, count: input.count, into: $0.baseAddress!) } }
        #expect(ours == deq)
    }
}

@Suite("GGUF writing")
struct GGUFWriterTests {
    @Test("metadata of every type and tensors survive a write and read, aligned")
    func roundTrip() throws {
        let dir = try FormatTempDir()
        let url = dir.file("w.gguf")
        let meta: [(String, GGUFValue)] = [
            ("general.architecture", "test"), ("a.u8", .uint8(1)), ("a.i8", .int8(-1)), ("a.u16", .uint16(2)),
            ("a.i16", .int16(-2)), ("a.u32", .uint32(3)), ("a.i32", .int32(-3)), ("a.f32", .float32(1.5)),
            ("a.bool", .bool(false)), ("a.str", "ü"), ("a.u64", .uint64(.max)), ("a.i64", .int64(.min)),
            ("a.f64", .float64(-0.1)), ("a.empty", .array(.string, [])),
            ("a.nested", .array(.array, [.array(.string, ["x"]), .array(.string, [])])),
        ]
        let t1 = Tensor(shape: [3, 5], values: (0..<15).map(Float.init))
        let t2 = Tensor(shape: [2, 64], values: (0..<128).map { Float($0) / 7 })
        try GGUFWriter.write(metadata: meta, tensors: [.float("one", t1, as: .f16), .float("two", t2, as: .q8_0), .float("three", t1, as: .bf16)],
                             to: url, alignment: 64)
        let f = try GGUFFile(path: url.path)
        #expect(f.alignment == 64)
        #expect(f["general.alignment"] == .uint32(64))
        for (k, v) in meta { #expect(f[k] == v, "\(k)") }
        #expect(f.keys == ["general.alignment"] + meta.map(\.0))
        #expect(f.tensors.map(\.name) == ["one", "two", "three"])
        #expect(f.tensors.map(\.dims) == [[5, 3], [64, 2], [5, 3]])
        #expect(f.tensors.allSatisfy { $0.offset % 64 == 0 })
        #expect(f.dataOffset % 64 == 0)
        let q = f.tensor("two")!
        var back = [Float](repeating: 0, count: 128)
        back.withUnsafeMutableBufferPointer { Q8_0.dequantize(f.bytes(q).baseAddress!, count: 128, into: $0.baseAddress!) }
        #expect(zip(back, t2.array).allSatisfy { abs($0 - $1) <= 18.2 / 127 / 2 + 1e-3 })
    }

    @Test("refuses names ggml cannot hold, duplicate keys and rows that are not whole Q8_0 blocks")
    func refusals() throws {
        let dir = try FormatTempDir()
        let t = Tensor(shape: [2, 3])
        expectBamError(["at most 63"]) {
            try GGUFWriter.write(metadata: [], tensors: [.float(String(repeating: "n", count: 64), t)], to: dir.file("a.gguf"))
        }
        expectBamError(["given twice"]) {
            try GGUFWriter.write(metadata: [("k", .uint8(1)), ("k", .uint8(2))], tensors: [], to: dir.file("b.gguf"))
        }
        expectBamError(["block size 32"]) {
            try GGUFWriter.write(metadata: [], tensors: [.float("q", t, as: .q8_0)], to: dir.file("c.gguf"))
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("c.gguf").path), "nothing left behind")
    }
}

@Suite("corrupt GGUF files are errors, never crashes")
struct GGUFCorruptTests {
    /// The error reading `bytes` as a GGUF file throws; it names the file. `needles` are for the
    /// messages whose subject has no field of its own (the `what` clause).
    @discardableResult
    func expectFailure(_ bytes: [UInt8], _ needles: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> BamError? {
        let dir = try FormatTempDir()
        let url = dir.file("bad.gguf")
        try Data(bytes).write(to: url)
        let e = bamError(sourceLocation: sourceLocation) { _ = try GGUFFile(path: url.path) }
        #expect(e?.file == url.path, sourceLocation: sourceLocation)
        for n in needles { #expect(e?.message.contains(n) == true, "message: \(e?.message ?? "")", sourceLocation: sourceLocation) }
        return e
    }

    @Test("the hand-built baseline is valid") func baseline() throws {
        let dir = try FormatTempDir()
        let url = dir.file("ok.gguf")
        try Data(GGUFBytes.simple()).write(to: url)
        let f = try GGUFFile(path: url.path)
        #expect(f.tensors.first?.dims == [8])
        #expect(f["general.name"] == "x")
    }

    @Test("bad magic") func badMagic() throws {
        var b = GGUFBytes.simple()
        b[0] = UInt8(ascii: "X")
        let e = try expectFailure(b)
        #expect(e?.kind == .format && e?.location == .byte(0) && e?.expected == "`GGUF`" && e?.found == "`XGUF`")
    }

    @Test("unsupported versions") func badVersion() throws {
        let seven = try expectFailure(GGUFBytes.simple(version: 7))
        #expect(seven?.kind == .format && seven?.location == .byte(4) && seven?.expected == "version 2 or 3" && seven?.found == "version 7")
        let one = try expectFailure(GGUFBytes.simple(version: 1))
        #expect(one?.kind == .unsupported && one?.found == "version 1" && one?.hint != nil)
        let swapped = try expectFailure(GGUFBytes.simple(version: UInt32(3).byteSwapped), ["big-endian"])
        #expect(swapped?.kind == .unsupported && swapped?.found == "version 3 byte-swapped")
    }

    @Test("counts that cannot fit in the file") func counts() throws {
        let cap = try expectFailure(GGUFBytes.simple(tensorCount: 1 << 40), ["tensor count"])
        #expect(cap?.location == .byte(8) && cap?.expected == "at most \(GGUFFile.maxTensors)" && cap?.found == "\(1 << 40)")
        let many = try expectFailure(GGUFBytes.simple(tensorCount: 100_000), ["tensor count", "truncated"])
        #expect(many?.location == .byte(8) && many?.expected == "at least \(100_000 * 24) bytes")
        let keys = try expectFailure(GGUFBytes.simple(kvCount: 5000), ["metadata key count"])
        #expect(keys?.location == .byte(16))
        let cut = try expectFailure(Array(GGUFBytes.simple().prefix(10)), ["truncated"])
        #expect(cut?.location == .byte(8) && cut?.expected == "8 bytes" && cut?.found == "2 bytes left")
    }

    @Test("a string length past the end of the file") func stringPastEOF() throws {
        let past = try expectFailure(GGUFBytes.simple(keyLength: 60_000), ["metadata key #0", "past the end"])
        #expect(past?.location == .byte(24) && past?.expected == "60000 bytes")
        let long = try expectFailure(GGUFBytes.simple(keyLength: 1 << 20), ["metadata key #0"])
        #expect(long?.location == .byte(24) && long?.expected == "at most 65535 bytes" && long?.found == "\(1 << 20) bytes")
        let huge = try expectFailure(GGUFBytes.simple(keyLength: .max), ["metadata key #0"])
        #expect(huge?.found == "\(UInt64.max) bytes")
    }

    @Test("an array whose count runs past the end") func arrayPastEOF() throws {
        var b = GGUFBytes()
        b.u32(3); b.u64(0); b.u64(1)
        b.str("a.arr"); b.u32(9); b.u32(4); b.u64(1 << 30)
        try expectFailure(b.bytes, ["a.arr", "element count"])
    }

    @Test("unaligned tensor offsets") func unaligned() throws {
        let e = try expectFailure(GGUFBytes.simple(offset: 4, dataBytes: 64), ["data offset"])
        #expect(e?.location == .tensor("t") && e?.expected == "a multiple of the alignment 32" && e?.found == "4")
    }

    @Test("unknown tensor types") func unknownType() throws {
        for type: UInt32 in [4, 1000] {
            let e = try expectFailure(GGUFBytes.simple(type: type), ["unknown ggml tensor type"])
            #expect(e?.location == .tensor("t") && e?.found == GGMLType(rawValue: type).name && e?.hint != nil)
        }
    }

    @Test("more than 4 dimensions") func tooManyDims() throws {
        for (n, dims) in [(UInt32(5), [UInt64(1), 1, 1, 1, 8]), (0, [])] {
            let e = try expectFailure(GGUFBytes.simple(nDims: n, dims: dims), ["dimension count"])
            #expect(e?.location == .tensor("t") && e?.expected == "1 to 4" && e?.found == "\(n)")
        }
    }

    @Test("dimensions whose product overflows") func overflow() throws {
        try expectFailure(GGUFBytes.simple(nDims: 2, dims: [1 << 40, 1 << 40]), ["overflow"])
        let big = try expectFailure(GGUFBytes.simple(nDims: 1, dims: [.max]))
        #expect(big?.location == .tensor("t") && big?.expected == "at most 2^63-1" && big?.found == "\(UInt64.max)")
        try expectFailure(GGUFBytes.simple(nDims: 2, dims: [1 << 31, 1 << 31]), ["more bytes than are addressable"])
        try expectFailure(GGUFBytes.simple(nDims: 2, dims: [1 << 20, 1 << 10]), ["past the end"])
    }

    @Test("tensor data past the end of the file") func dataPastEOF() throws {
        let e = try expectFailure(GGUFBytes.simple(dataBytes: 16), ["past the end of the data section"])
        #expect(e?.location == .tensor("t") && e?.expected == "bytes [0, 0 + 32)")
        try expectFailure(GGUFBytes.simple(offset: 64, dataBytes: 64), ["truncated"])
    }

    @Test("Q8_0 rows that are not whole blocks, bools that are not 0 or 1") func misc() throws {
        let blocks = try expectFailure(GGUFBytes.simple(dims: [8], type: 8))
        #expect(blocks?.location == .tensor("t") && blocks?.expected == "a multiple of Q8_0's block size 32" && blocks?.found == "8")
        var b = GGUFBytes()
        b.u32(3); b.u64(0); b.u64(1)
        b.str("a.b"); b.u32(7); b.bytes.append(2)
        let bool = try expectFailure(b.bytes)
        #expect(bool?.expected == "0 or 1" && bool?.found == "2")
        var c = GGUFBytes()
        c.u32(3); c.u64(0); c.u64(1)
        c.str("a.b"); c.u32(13); c.bytes.append(0)
        let type = try expectFailure(c.bytes, ["unknown value type"])
        #expect(type?.location == .key("a.b") && type?.expected == "0-12" && type?.found == "13")
    }

    @Test("deeply nested arrays are refused") func nesting() throws {
        var b = GGUFBytes()
        b.u32(3); b.u64(0); b.u64(1)
        b.str("a.deep"); b.u32(9)
        for _ in 0..<20 { b.u32(9); b.u64(1) }
        b.u32(0); b.u64(0)
        try expectFailure(b.bytes, ["nested deeper"])
    }

    @Test("every truncation of a valid file fails cleanly") func truncations() throws {
        let path = FormatFixtures.gguf("all_types.gguf").path
        let full = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let f = try GGUFFile(path: path)
        // Cutting only the zero padding after the last tensor leaves a complete file.
        let end = f.dataOffset + f.tensors.map { $0.offset + $0.byteCount }.max()!
        let dir = try FormatTempDir()
        let url = dir.file("t.gguf")
        for n in stride(from: 0, to: end, by: 7) {
            try Data(full.prefix(n)).write(to: url)
            #expect(throws: BamError.self) { _ = try GGUFFile(path: url.path) }
        }
    }
}

@Suite("GGUF as an HF checkpoint, against llama.cpp's own converter")
struct GGUFLlamaCppTests {
    @Test("llama.cpp's tiny Llama GGUF reads back to the HF tensors bit for bit (Q/K un-permuted)")
    func llama() throws {
        let ck = try Checkpoint.open(FormatFixtures.gguf("tiny_llama.llamacpp.gguf").path)
        #expect(ck.container == .gguf)
        let hf = try Checkpoint.open(FormatFixtures.gguf("tiny_llama").path)
        try expectSameTensors(hf.store, ck.store)
        let a = ck.config, b = hf.config
        #expect(a.family == .llama)
        let da: [Int] = [a.vocabSize, a.hidden, a.intermediate, a.layers, a.heads, a.kvHeads, a.headDim, a.maxPositions]
        let db: [Int] = [b.vocabSize, b.hidden, b.intermediate, b.layers, b.heads, b.kvHeads, b.headDim, b.maxPositions]
        #expect(da == db)
        #expect(a.normEps == b.normEps && a.ropeTheta == b.ropeTheta && a.tieEmbeddings == b.tieEmbeddings)
        #expect(a.bosTokenId == 1 && a.eosTokenIds == [2])
        #expect(ck.config.raw["rms_norm_eps"] == .double(1e-05))
    }

    @Test("llama.cpp's tiny Mixtral GGUF (bf16, stacked experts) reads back to the HF tensors")
    func mixtral() throws {
        let ck = try Checkpoint.open(FormatFixtures.gguf("tiny_mixtral.llamacpp.gguf").path)
        let hf = try Checkpoint.open(FormatFixtures.gguf("tiny_mixtral").path)
        #expect(ck.config.family == .mixtral)
        #expect(ck.config.moe?.experts == 2 && ck.config.moe?.topK == 1)
        #expect(Set(ck.store.names) == Set(hf.store.names))
        for n in hf.store.names {
            let a = try hf.store.tensor(n), b = try ck.store.tensor(n)
            #expect(a.shape == b.shape, "\(n)")
            #expect(a.array == b.array, "\(n)")   // bf16 widened to f32 by llama.cpp is exact
            if hf.store.info(n)!.shape.count == 2, !n.contains("gate.weight") {
                #expect(try hf.store.bytes(n).elementsEqual(ck.store.bytes(n)), "\(n): raw bf16 bytes")
            }
        }
    }

    /// Our converter writes the same tensors (names, types, dims, bytes) and architecture keys as
    /// llama.cpp's convert_hf_to_gguf.py.
    func compareWithLlamaCpp(_ model: String, dtype: DType) throws {
        let dir = try FormatTempDir()
        let out = dir.file("ours.gguf")
        try GGUFConverter.hfToGGUF(try Checkpoint.open(FormatFixtures.gguf(model).path), output: out, dtype: dtype)
        let ours = try GGUFFile(path: out.path)
        let theirs = try GGUFFile(path: FormatFixtures.gguf("\(model).llamacpp.gguf").path)
        #expect(Set(ours.tensors.map(\.name)) == Set(theirs.tensors.map(\.name)))
        for t in theirs.tensors {
            guard let o = ours.tensor(t.name) else { continue }
            #expect(o.dims == t.dims && o.type == t.type, "\(t.name): ours \(o.dims) \(o.type), llama.cpp \(t.dims) \(t.type)")
            #expect(ours.bytes(o).elementsEqual(theirs.bytes(t)), "\(t.name): data differs")
        }
        for k in theirs.keys where k.hasPrefix("llama.") || k == "general.architecture" || k == "general.file_type" {
            #expect(ours[k] == theirs[k], "\(k): ours \(ours[k]?.summary ?? "absent"), llama.cpp \(theirs[k]!.summary)")
        }
        for k in ["tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.bos_token_id",
                  "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token",
                  "tokenizer.ggml.add_eos_token"] {
            #expect(ours[k] == theirs[k], "\(k)")
        }
        // Token types agree except that we mark <unk> UNKNOWN (SentencePiece's type) where llama.cpp's
        // HF path writes CONTROL.
        let ot = ours["tokenizer.ggml.token_type"]!.arrayValue!.compactMap(\.intValue)
        let tt = theirs["tokenizer.ggml.token_type"]!.arrayValue!.compactMap(\.intValue)
        #expect(ot.count == tt.count)
        for i in 0..<min(ot.count, tt.count) where ot[i] != tt[i] {
            #expect(i == 0 && ot[i] == 2 && tt[i] == 3, "token \(i): type \(ot[i]) vs \(tt[i])")
        }
    }

    @Test("hfToGGUF of the tiny Llama matches llama.cpp's f32 conversion") func oursVsLlamaCppLlama() throws {
        try compareWithLlamaCpp("tiny_llama", dtype: .f32)
    }

    @Test("hfToGGUF of the tiny Mixtral matches llama.cpp's bf16 conversion") func oursVsLlamaCppMixtral() throws {
        try compareWithLlamaCpp("tiny_mixtral", dtype: .bf16)
    }
}

@Suite("HF -> GGUF -> HF round trips")
struct GGUFRoundTripTests {
    static let cases: [(String, DType)] = [
        ("llama", .f32), ("llama", .f16), ("llama", .bf16), ("mixtral", .f32), ("mixtral", .bf16),
        ("qwen2", .f16), ("bam", .bf16), ("bam", .f32),
    ]

    @Test("bit-identical tensors and an equivalent config", arguments: 0..<cases.count)
    func roundTrip(_ i: Int) throws {
        let (family, dtype) = Self.cases[i]
        let dir = try FormatTempDir()
        let src = try TinyHF.write(family, dtype: dtype, to: dir.file("src"), seed: UInt64(i + 1))
        let original = try Checkpoint.open(src.path)
        let gguf = dir.file("m.gguf")
        try GGUFConverter.hfToGGUF(original, output: gguf, dtype: nil)
        let g = try Checkpoint.open(gguf.path)
        #expect(g.container == .gguf)
        let arch = try GGUFFile(path: gguf.path).architecture
        #expect(arch == ["llama": "llama", "mixtral": "llama", "qwen2": "qwen2", "bam": "bam"][family])
        try GGUFConverter.ggufToHF(g, outputDirectory: dir.file("back"), dtype: nil)
        let back = try Checkpoint.open(dir.file("back").path)
        try expectSameTensors(original.store, back.store)
        let a = original.config, b = back.config
        #expect(a.family == b.family && a.baseFamily == b.baseFamily)
        let da: [Int] = [a.vocabSize, a.hidden, a.intermediate, a.layers, a.heads, a.kvHeads, a.headDim]
        let db: [Int] = [b.vocabSize, b.hidden, b.intermediate, b.layers, b.heads, b.kvHeads, b.headDim]
        #expect(da == db)
        #expect(a.normEps == b.normEps && a.ropeTheta == b.ropeTheta && a.qkvBias == b.qkvBias && a.tieEmbeddings == b.tieEmbeddings)
        #expect(a.moe == b.moe && a.moa == b.moa)
        #expect(b.storedDType == dtype)
        if family == "bam" {
            #expect(back.config.raw["bam_expert_sources"] == .array(["a/llama-code", "b/llama-math"]), "provenance survives")
        }
    }

    /// The BAM checkpoints of Tests/Fixtures/bam (tools/make_bam_fixtures.py): every layout
    /// (expert_kv / shared_kv, biases, cohere / qwen2 / mistral bases, tied embeddings) round-trips.
    static let bamFixtures: [String] = {
        let dir = FormatFixtures.root.appendingPathComponent("bam")
        let all = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return all.filter { FileManager.default.fileExists(atPath: dir.appendingPathComponent("\($0)/config.json").path) }.sorted()
    }()

    @Test("BAM fixture checkpoints round-trip through the `bam` GGUF architecture", arguments: bamFixtures)
    func bamFixture(_ name: String) throws {
        let dir = try FormatTempDir()
        let original = try Checkpoint.open(FormatFixtures.root.appendingPathComponent("bam/\(name)").path)
        try GGUFConverter.hfToGGUF(original, output: dir.file("m.gguf"), dtype: nil)
        let g = try Checkpoint.open(dir.file("m.gguf").path)
        #expect(g.config.family == .bam && g.config.baseFamily == original.config.baseFamily)
        #expect(g.config.moa == original.config.moa && g.config.moe == original.config.moe)
        #expect(g.config.parallelBlock == original.config.parallelBlock && g.config.logitScale == original.config.logitScale)
        try GGUFConverter.ggufToHF(g, outputDirectory: dir.file("back"), dtype: nil)
        let back = try Checkpoint.open(dir.file("back").path)
        try expectSameTensors(original.store, back.store)
        var a = original.config.raw, b = back.config.raw
        for k in ["torch_dtype", "auto_map"] { a[k] = nil; b[k] = nil }
        for (k, v) in a.pairs { #expect(b[k] == v, "config key \(k): \(v.serialized(indent: nil)) became \(b[k]?.serialized(indent: nil) ?? "absent")") }
    }

    @Test("fused Mixtral tensor names: exactly the router, gate_up_proj and down_proj of a numbered layer")
    func fusedMixtralNames() {
        #expect(FusedMixtralTensor.parse("model.layers.0.mlp.gate.weight")! == (0, .router))
        #expect(FusedMixtralTensor.parse("model.layers.17.mlp.experts.gate_up_proj")! == (17, .gateUp))
        #expect(FusedMixtralTensor.parse("model.layers.3.mlp.experts.down_proj")! == (3, .down))
        for other in ["model.layers.x.mlp.gate.weight", "model.layers..mlp.gate.weight", "model.layers.+1.mlp.gate.weight",
                      "model.layers.0.mlp.gate.weight.extra", "model.layers.0.block_sparse_moe.gate.weight",
                      "model.layers.0.mlp.gate_proj.weight", "layers.0.mlp.experts.down_proj", "model.embed_tokens.weight"] {
            #expect(FusedMixtralTensor.parse(other) == nil, "\(other)")
        }
    }

    @Test("transformers 5's fused Mixtral experts convert like the legacy layout")
    func fusedMixtral() throws {
        let dir = try FormatTempDir()
        let legacyDir = try TinyHF.write("mixtral", dtype: .bf16, to: dir.file("legacy"))
        let legacy = try Checkpoint.open(legacyDir.path)
        // The same weights in the fused layout.
        var entries: [TensorWriteEntry] = []
        for n in legacy.store.names where !n.contains("block_sparse_moe") {
            entries.append(.float(n, try legacy.store.tensor(n), as: .bf16))
        }
        let (E, F, C) = (TinyHF.E, TinyHF.F, TinyHF.C)
        for l in 0..<TinyHF.L {
            let p = "model.layers.\(l).block_sparse_moe."
            entries.append(.float("model.layers.\(l).mlp.gate.weight", try legacy.store.tensor(p + "gate.weight"), as: .bf16))
            let gu = Tensor(shape: [E, 2 * F, C]), down = Tensor(shape: [E, C, F])
            for e in 0..<E {
                let w1 = try legacy.store.tensor(p + "experts.\(e).w1.weight"), w3 = try legacy.store.tensor(p + "experts.\(e).w3.weight")
                let w2 = try legacy.store.tensor(p + "experts.\(e).w2.weight")
                (gu.data + e * 2 * F * C).update(from: w1.data, count: F * C)
                (gu.data + e * 2 * F * C + F * C).update(from: w3.data, count: F * C)
                (down.data + e * C * F).update(from: w2.data, count: C * F)
            }
            entries.append(.float("model.layers.\(l).mlp.experts.gate_up_proj", gu, as: .bf16))
            entries.append(.float("model.layers.\(l).mlp.experts.down_proj", down, as: .bf16))
        }
        let fusedDir = dir.file("fused")
        try FileManager.default.createDirectory(at: fusedDir, withIntermediateDirectories: true)
        try SafetensorsWriter.write(entries, to: fusedDir.appendingPathComponent("model.safetensors"))
        try FileManager.default.copyItem(at: legacyDir.appendingPathComponent("config.json"), to: fusedDir.appendingPathComponent("config.json"))
        try GGUFConverter.hfToGGUF(legacy, output: dir.file("a.gguf"), dtype: nil)
        try GGUFConverter.hfToGGUF(try Checkpoint.open(fusedDir.path), output: dir.file("b.gguf"), dtype: nil)
        let a = try GGUFFile(path: dir.file("a.gguf").path), b = try GGUFFile(path: dir.file("b.gguf").path)
        #expect(Set(a.tensors.map(\.name)) == Set(b.tensors.map(\.name)))
        for t in a.tensors {
            guard let u = b.tensor(t.name) else { continue }
            #expect(t.dims == u.dims && t.type == u.type && a.bytes(t).elementsEqual(b.bytes(u)), "\(t.name)")
        }
    }

    @Test("the GGUF store itself presents the HF tensors (no round trip needed)")
    func storeView() throws {
        let dir = try FormatTempDir()
        let src = try TinyHF.write("mixtral", dtype: .f32, to: dir.file("src"), bias: false)
        let original = try Checkpoint.open(src.path)
        try GGUFConverter.hfToGGUF(original, output: dir.file("m.gguf"), dtype: nil)
        let g = try Checkpoint.open(dir.file("m.gguf").path)
        try expectSameTensors(original.store, g.store)
        let f = try GGUFFile(path: dir.file("m.gguf").path)
        #expect(f.tensor("blk.0.ffn_gate_exps.weight")?.dims == [TinyHF.C, TinyHF.F, TinyHF.E])
        #expect(f.tensor("blk.0.ffn_down_exps.weight")?.dims == [TinyHF.F, TinyHF.C, TinyHF.E])
        #expect(f.tensor("blk.0.ffn_gate_inp.weight")?.dims == [TinyHF.C, TinyHF.E])
        #expect(f["general.file_type"] == .uint32(0))
        // The permutation really happened: GGUF attn_q rows are not HF's.
        let q = try original.store.tensor("model.layers.0.self_attn.q_proj.weight")
        var raw = [Float](repeating: 0, count: q.count)
        raw.withUnsafeMutableBytes { $0.copyMemory(from: f.bytes(f.tensor("blk.0.attn_q.weight")!)) }
        #expect(raw != q.array)
        #expect(Array(raw[TinyHF.C..<(2 * TinyHF.C)]) == Array(q.array[(TinyHF.HS / 2 * TinyHF.C)..<(TinyHF.HS / 2 * TinyHF.C + TinyHF.C)]),
                "GGUF row 1 is HF row HS/2 of head 0")
    }

    @Test("Q8_0 output: 2-D weights quantised like gguf-py, norms and routers kept F32")
    func q8() throws {
        let dir = try FormatTempDir()
        let src = try TinyHF.write("mixtral", dtype: .f32, to: dir.file("src"))
        let original = try Checkpoint.open(src.path)
        try GGUFConverter.hfToGGUF(original, output: dir.file("q.gguf"), dtype: .q8_0)
        let f = try GGUFFile(path: dir.file("q.gguf").path)
        #expect(f["general.file_type"] == .uint32(7))
        #expect(f.tensor("blk.0.attn_q.weight")?.type == .q8_0)
        #expect(f.tensor("token_embd.weight")?.type == .q8_0)
        #expect(f.tensor("blk.0.attn_norm.weight")?.type == .f32)
        #expect(f.tensor("blk.0.ffn_gate_inp.weight")?.type == .f32)
        let g = try Checkpoint.open(dir.file("q.gguf").path)
        #expect(g.store.info("model.layers.1.self_attn.k_proj.weight")?.dtype == .q8_0)
        for n in original.store.names {
            let a = try original.store.tensor(n), b = try g.store.tensor(n)
            // Q8_0 of the HF tensor, dequantised: what the GGUF must hold (up to row order).
            let want = Tensor(shape: a.shape)
            if original.store.info(n)!.shape.count == 2, !n.hasSuffix("block_sparse_moe.gate.weight") {
                let buf = UnsafeMutableRawPointer.allocate(byteCount: a.count / 32 * 34, alignment: 8)
                defer { buf.deallocate() }
                Q8_0.quantize(a.data, count: a.count, into: buf)
                Q8_0.dequantize(buf, count: a.count, into: want.data)
            } else {
                want.data.update(from: a.data, count: a.count)
            }
            #expect(b.array == want.array, "\(n)")
        }
        // GGUF (Q8_0) -> HF defaults to f32, which holds Q8_0 values exactly.
        try GGUFConverter.ggufToHF(g, outputDirectory: dir.file("back"), dtype: nil)
        let back = try Checkpoint.open(dir.file("back").path)
        #expect(back.config.storedDType == .f32)
        #expect(try back.store.tensor("model.layers.0.self_attn.q_proj.weight").array == g.store.tensor("model.layers.0.self_attn.q_proj.weight").array)
        expectBamError(["f32, f16 or bf16"]) { try GGUFConverter.ggufToHF(g, outputDirectory: dir.file("x"), dtype: .q8_0) }
    }

    @Test("conversion refuses an existing non-empty output directory and leaves no temporary files")
    func outputSafety() throws {
        let dir = try FormatTempDir()
        let src = try TinyHF.write("llama", dtype: .f32, to: dir.file("src"))
        try GGUFConverter.hfToGGUF(try Checkpoint.open(src.path), output: dir.file("m.gguf"), dtype: .f16)
        let g = try Checkpoint.open(dir.file("m.gguf").path)
        expectBamError(["already exists"]) { try GGUFConverter.ggufToHF(g, outputDirectory: src, dtype: nil) }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.url.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}

@Suite("tokenizer metadata between tokenizer.json and GGUF")
struct GGUFTokenizerTests {
    @Test("byte-level BPE: gpt2 vocabulary, merges and pre-tokenizer, and back to an equivalent tokenizer.json")
    func byteLevel() throws {
        let dir = try FormatTempDir()
        let tokDir = FormatFixtures.gguf("tokenizers/bytelevel")
        let original = try readJSONObject(tokDir.appendingPathComponent("tokenizer.json"))
        let vocabCount = original["model"]!["vocab"]!.objectValue!.count
        // A model whose vocab_size leaves room for llama.cpp-style [PADn] tokens.
        let src = try TinyHF.write("llama", dtype: .f32, to: dir.file("src"), vocab: vocabCount + 3, tokenizer: tokDir)
        try GGUFConverter.hfToGGUF(try Checkpoint.open(src.path), output: dir.file("m.gguf"), dtype: nil)
        let f = try GGUFFile(path: dir.file("m.gguf").path)
        #expect(f["tokenizer.ggml.model"] == "gpt2")
        #expect(f["tokenizer.ggml.pre"] == "gpt-2")
        let tokens = f["tokenizer.ggml.tokens"]!.stringArray!
        #expect(tokens.count == vocabCount + 3)
        #expect(tokens.last == "[PAD\(vocabCount + 2)]")
        let types = f["tokenizer.ggml.token_type"]!.arrayValue!.compactMap(\.intValue)
        #expect(types[0] == 3, "<|endoftext|> is a control token")
        #expect(types.last == 5)
        let merges = try GGUFTokenizer.mergePairs(original["model"]!["merges"], file: "").map { "\($0.0) \($0.1)" }
        #expect(f["tokenizer.ggml.merges"]!.stringArray! == merges)
        #expect(f["tokenizer.ggml.bos_token_id"] == .uint32(0))
        #expect(f["tokenizer.ggml.add_bos_token"] == .bool(false))

        let g = try Checkpoint.open(dir.file("m.gguf").path)
        #expect(g.tokenizerURL != nil)
        try GGUFConverter.ggufToHF(g, outputDirectory: dir.file("back"), dtype: nil)
        let rebuilt = try readJSONObject(dir.file("back/tokenizer.json"))
        func idMap(_ t: JSONObject) -> [Int: String] {
            var m: [Int: String] = [:]
            for (k, v) in t["model"]!["vocab"]!.objectValue!.pairs { m[v.intValue!] = k }
            for a in t["added_tokens"]!.arrayValue! { m[a["id"]!.intValue!] = a["content"]!.stringValue! }
            return m
        }
        #expect(idMap(rebuilt) == idMap(original))
        // Added tokens must also sit in the model's vocab under their id (the tokenizers library
        // renumbers an added token missing from it).
        for a in rebuilt["added_tokens"]!.arrayValue! {
            #expect(rebuilt["model"]!["vocab"]![a["content"]!.stringValue!] == a["id"], "\(a)")
        }
        #expect(try GGUFTokenizer.mergePairs(rebuilt["model"]!["merges"], file: "").map { "\($0.0) \($0.1)" } == merges)
        #expect(rebuilt["pre_tokenizer"]!["type"] == "ByteLevel")
        #expect(rebuilt["decoder"]!["type"] == "ByteLevel")
    }

    @Test("SentencePiece-style BPE: scores follow the merge ranks, and the rebuilt merges are the original ones")
    func sentencePiece() throws {
        let dir = try FormatTempDir()
        let hfDir = FormatFixtures.gguf("tiny_llama")
        try GGUFConverter.hfToGGUF(try Checkpoint.open(hfDir.path), output: dir.file("m.gguf"), dtype: .f16)
        let f = try GGUFFile(path: dir.file("m.gguf").path)
        #expect(f["tokenizer.ggml.model"] == "llama")
        let original = try readJSONObject(hfDir.appendingPathComponent("tokenizer.json"))
        let merges = try GGUFTokenizer.mergePairs(original["model"]!["merges"], file: "")
        let tokens = f["tokenizer.ggml.tokens"]!.stringArray!
        let scores = f["tokenizer.ggml.scores"]!.arrayValue!.compactMap(\.doubleValue)
        let first = merges[0].0 + merges[0].1
        #expect(scores[tokens.firstIndex(of: first)!] == 0)
        #expect(scores[tokens.firstIndex(of: merges[1].0 + merges[1].1)!] == -1)

        let (rebuilt, cfg) = try GGUFTokenizer.hfTokenizer(from: f)
        let again = try GGUFTokenizer.mergePairs(rebuilt["model"]!["merges"], file: "")
        // Every original merge is there, in the original order (extra splits of the same piece may follow it).
        var pos = 0
        for m in merges {
            guard let i = again[pos...].firstIndex(where: { $0 == m }) else { Issue.record("merge \(m) missing or out of order"); break }
            pos = i + 1
        }
        #expect(rebuilt["model"]!["byte_fallback"] == .bool(true))
        #expect(rebuilt["model"]!["unk_token"] == "<unk>")
        #expect(rebuilt["model"]!["vocab"]!.objectValue!.count == tokens.count)
        #expect(cfg["bos_token"] == "<s>" && cfg["add_bos_token"] == .bool(true))
    }

    @Test("rebuilt tokenizer.json files tokenize like the originals")
    func rebuiltTokenizersEncode() throws {
        let dir = try FormatTempDir()
        // Byte-level: ids the tokenizers library produced with the original (fixture script).
        let tokDir = FormatFixtures.gguf("tokenizers/bytelevel")
        let enc = try readJSONObject(tokDir.appendingPathComponent("encoded.json"))
        let n = try readJSONObject(tokDir.appendingPathComponent("tokenizer.json"))["model"]!["vocab"]!.objectValue!.count
        let src = try TinyHF.write("llama", dtype: .f32, to: dir.file("bl"), vocab: n, tokenizer: tokDir)
        try GGUFConverter.hfToGGUF(try Checkpoint.open(src.path), output: dir.file("bl.gguf"), dtype: nil)
        try GGUFConverter.ggufToHF(try Checkpoint.open(dir.file("bl.gguf").path), outputDirectory: dir.file("bl-back"), dtype: nil)
        let rebuilt = try BamTokenizers.Tokenizer.load(url: dir.file("bl-back"))
        #expect(rebuilt.encode(enc["text"]!.stringValue!) == enc["ids"]!.arrayValue!.compactMap(\.intValue))
        // SentencePiece-style: rebuilt from llama.cpp's GGUF (placeholder scores) and from ours.
        let text = try String(contentsOf: FormatFixtures.gguf("perplexity.txt"), encoding: .utf8) + " odd   spacing\tand ünïcödé 🙂 </s>"
        let original = try BamTokenizers.Tokenizer.load(url: FormatFixtures.gguf("tiny_llama"))
        try GGUFConverter.hfToGGUF(try Checkpoint.open(FormatFixtures.gguf("tiny_llama").path), output: dir.file("l.gguf"), dtype: .f16)
        for g in [FormatFixtures.gguf("tiny_llama.llamacpp.gguf"), dir.file("l.gguf")] {
            let out = dir.file("back-\(g.lastPathComponent)")
            try GGUFConverter.ggufToHF(try Checkpoint.open(g.path), outputDirectory: out, dtype: nil)
            let t = try BamTokenizers.Tokenizer.load(url: out)
            #expect(t.encode(text) == original.encode(text), "\(g.lastPathComponent)")
            #expect(t.addsBOS == original.addsBOS)
        }
    }

    @Test("pre-tokenizer names: GPT-2, Llama 3 and Qwen2 regexes; unknown ones refused")
    func preNames() throws {
        func pre(_ json: String) throws -> String {
            try GGUFTokenizer.preTokenizerName(BamFormats.JSONParser.parse(json).objectValue!, file: "t.json")
        }
        func split(_ regex: String) -> String {
            let escaped = JSONValue.string(regex).serialized(indent: nil)
            return #"{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "#
                + escaped + #"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}}"#
        }
        #expect(try pre(#"{"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}}"#) == "gpt-2")
        #expect(try pre(split(GGUFTokenizer.llama3Regex)) == "llama-bpe")
        #expect(try pre(split(GGUFTokenizer.qwen2Regex)) == "qwen2")
        expectBamError(["not one llama.cpp knows"]) { _ = try pre(split("\\s+")) }
    }
}
