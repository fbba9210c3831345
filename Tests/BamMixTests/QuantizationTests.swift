@testable import BamFormats
import BamMixing
import BamModels
import BamTensors
import Foundation
import Testing

// Fixtures from tools/make_quant_fixtures.py (gguf-py's quants module and llama.cpp's
// llama-quantize, run by hand): Tests/Fixtures/gguf/quants/.

enum QuantFixtures {
    static func url(_ p: String) -> URL { FormatFixtures.gguf("quants/\(p)") }
    static let blocks = url("blocks.gguf")
    /// Every type the reader decodes, as gguf-py names them.
    static let readable = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                           "Q6_K", "Q8_K", "IQ4_NL", "IQ4_XS"]
    /// The types bam-mix writes, with gguf-py's bytes in the fixture.
    static let writable = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "F16", "BF16"]
    static let models = ["legacy/Q4_0", "legacy/Q4_1", "legacy/Q5_0", "legacy/Q5_1", "legacy/Q8_0", "legacy/IQ4_NL",
                         "kquant/Q2_K", "kquant/Q3_K_M", "kquant/Q4_K_M", "kquant/Q5_K_M", "kquant/Q6_K", "kquant/IQ4_XS"]

    static func floats(_ f: GGUFFile, _ name: String) throws -> [Float] {
        guard let t = f.tensor(name) else { throw BamError.format(f.path, "fixture tensor \(name) missing") }
        return try decode(f, t)
    }

    static func decode(_ f: GGUFFile, _ t: GGUFTensorInfo) throws -> [Float] {
        guard let d = t.type.dtype else { throw BamError.unsupported("\(t.type.name)") }
        var out = [Float](repeating: .nan, count: t.count)
        try out.withUnsafeMutableBufferPointer { try DTypeConversion.toFloat32(f.bytes(t), dtype: d, count: t.count, into: $0.baseAddress!) }
        return out
    }

    /// sum_i bits(v_i) * splitmix64(i) mod 2^64 (make_quant_fixtures.py's checksum).
    static func checksum(_ v: [Float]) -> UInt64 {
        var sum: UInt64 = 0
        for (i, x) in v.enumerated() {
            var z = (UInt64(i) &+ 1) &* 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            sum = sum &+ UInt64(x.bitPattern) &* z
        }
        return sum
    }

    /// Indices where two float arrays differ bit for bit.
    static func bitDifferences(_ a: [Float], _ b: [Float]) -> [Int] {
        guard a.count == b.count else { return [-1] }
        return a.indices.filter { a[$0].bitPattern != b[$0].bitPattern }
    }
}

@Suite("ggml block types: dequantisation and quantisation against gguf-py")
struct BlockTypeTests {
    @Test("every readable type decodes to gguf-py's values, bit for bit", arguments: QuantFixtures.readable)
    func dequantise(_ type: String) throws {
        let f = try GGUFFile(path: QuantFixtures.blocks.path)
        let t = try #require(f.tensor("random.\(type)"))
        #expect(t.type.name == type)
        let dtype = try #require(t.type.dtype)
        #expect(dtype.rawValue == type)
        let ours = try QuantFixtures.decode(f, t)
        let want = try QuantFixtures.floats(f, "expected.\(type)")
        let bad = QuantFixtures.bitDifferences(ours, want)
        #expect(bad.isEmpty, "\(type): \(bad.count) values differ, first at \(bad.first ?? -1): ours \(bad.first.map { ours[max($0, 0)] } ?? 0) gguf-py \(bad.first.map { want[max($0, 0)] } ?? 0)")
    }

    @Test("the split across workers gives the single-thread values", arguments: [DType.q4_K, .q5_0, .iq4_xs])
    func parallelDequantisation(_ dtype: DType) throws {
        let f = try GGUFFile(path: QuantFixtures.blocks.path)
        let t = try #require(f.tensor("random.\(dtype.rawValue)"))
        let src = f.bytes(t)
        // Tile the random blocks past the size at which the work is split.
        let copies = BlockDequantization.parallelValues / t.count + 3
        var tiled = [UInt8]()
        for _ in 0..<copies { tiled += src }
        let blocks = tiled.count / dtype.blockBytes
        var split = [Float](repeating: .nan, count: blocks * dtype.blockSize), serial = split
        tiled.withUnsafeBytes { raw in
            split.withUnsafeMutableBufferPointer { BlockDequantization.dequantize(raw.baseAddress!, dtype: dtype, blocks: blocks, into: $0.baseAddress!) }
            serial.withUnsafeMutableBufferPointer { BlockDequantization.serial(raw.baseAddress!, dtype: dtype, blocks: blocks, into: $0.baseAddress!) }
        }
        #expect(QuantFixtures.bitDifferences(split, serial).isEmpty)
        let want = try QuantFixtures.floats(f, "expected.\(dtype.rawValue)")
        #expect(QuantFixtures.bitDifferences(Array(split[0..<want.count]), want).isEmpty)
        #expect(QuantFixtures.bitDifferences(Array(split[(split.count - want.count)...]), want).isEmpty)
    }

    @Test("Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (and F16, BF16) encode to gguf-py's bytes", arguments: QuantFixtures.writable)
    func quantise(_ type: String) throws {
        let f = try GGUFFile(path: QuantFixtures.blocks.path)
        let input = try QuantFixtures.floats(f, "input")
        let want = try #require(f.tensor("quantize.\(type)"))
        let dtype = try #require(DType(rawValue: type))
        #expect(want.type.dtype == dtype)
        let n = try #require(dtype.byteCount(elements: input.count))
        var ours = [UInt8](repeating: 0xAA, count: n)
        try input.withUnsafeBufferPointer { x in
            try ours.withUnsafeMutableBytes { try DTypeConversion.fromFloat32(x.baseAddress!, count: input.count, dtype: dtype, into: $0.baseAddress!) }
        }
        let theirs = Array(f.bytes(want))
        let bad = (0..<n).filter { ours[$0] != theirs[$0] }
        #expect(bad.isEmpty, "\(type): \(bad.count) bytes differ, first in block \((bad.first ?? 0) / dtype.blockBytes)")
    }

    @Test("DType and GGMLType agree on every block layout")
    func layouts() throws {
        for d in DType.allCases where d.isFloatingPoint && d != .f64 {
            let g = try #require(GGMLType(dtype: d))
            #expect(g.dtype == d && g.name == d.rawValue && g.blockSize == d.blockSize && g.blockBytes == d.blockBytes, "\(d)")
        }
        #expect(DType.q4_K.byteCount(elements: 512) == 288)
        #expect(DType.q4_K.byteCount(elements: 100) == nil, "not whole blocks")
        #expect(DType.q8_K.byteCount(elements: Int.max / 256 * 256) == nil, "overflow (Q8_K blocks are larger than their f32 values)")
        #expect(DType.q4_0.byteCount(elements: -32) == nil)
        #expect(DType(userName: "q4_k") == .q4_K && DType(userName: "IQ4_XS") == .iq4_xs && DType(userName: "q8") == .q8_0)
        #expect(DType.q4_0.isQuantized && !DType.bf16.isQuantized && DType.q6_K.isFloatingPoint && DType.q6_K.size == 0)
    }
}

@Suite("ggml block types: damaged and unsupported data are errors")
struct BlockTypeErrorTests {
    func expectTensorError(_ needles: [String], _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("expected an error mentioning \(needles)", sourceLocation: sourceLocation)
        } catch let e as TensorError {
            for n in needles { #expect(e.description.contains(n), "message: \(e.description)", sourceLocation: sourceLocation) }
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("a truncated block, a byte length that does not match the shape, a count that is not whole blocks")
    func lengths() {
        var out = [Float](repeating: 0, count: 512)
        let bytes = [UInt8](repeating: 0, count: 288)
        bytes.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { o in
                expectTensorError(["512 values of Q4_K take 288 bytes", "287 bytes are stored", "truncated"]) {
                    try DTypeConversion.toFloat32(UnsafeRawBufferPointer(rebasing: raw[0..<287]), dtype: .q4_K, count: 512, into: o.baseAddress!)
                }
                expectTensorError(["256 values of Q4_K take 144 bytes", "288 bytes are stored"]) {
                    try DTypeConversion.toFloat32(raw, dtype: .q4_K, count: 256, into: o.baseAddress!)
                }
                expectTensorError(["300 values are not a whole number of Q4_K blocks of 256"]) {
                    try DTypeConversion.toFloat32(raw, dtype: .q4_K, count: 300, into: o.baseAddress!)
                }
                expectTensorError(["40 values are not a whole number of Q4_0 blocks of 32"]) {
                    try DTypeConversion.toFloat32(raw.baseAddress!, dtype: .q4_0, count: 40, into: o.baseAddress!)
                }
                expectTensorError(["Q4_K", "writing"]) {
                    try DTypeConversion.fromFloat32(o.baseAddress!, count: 256, dtype: .q4_K, into: UnsafeMutableRawPointer(mutating: raw.baseAddress!))
                }
            }
        }
    }

    /// The error opening `bytes` as a GGUF file (or store); it names the file and the tensor.
    func expectFileError(_ bytes: [UInt8], store: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws -> BamError? {
        let dir = try FormatTempDir()
        let url = dir.file("bad.gguf")
        try Data(bytes).write(to: url)
        let e = bamError(sourceLocation: sourceLocation) {
            if store { _ = try GGUFStore(path: url.path) } else { _ = try GGUFFile(path: url.path) }
        }
        #expect(e?.file == url.path && e?.location == .tensor("blk.0.attn_q.weight"), "\(String(describing: e))", sourceLocation: sourceLocation)
        return e
    }

    /// A GGUF with `general.architecture` = llama and one tensor of ggml type `type`, dims `dims`.
    func oneTensor(type: UInt32, dims: [UInt64], dataBytes: Int) -> [UInt8] {
        var b = GGUFBytes()
        b.u32(3); b.u64(1); b.u64(1)
        b.str("general.architecture"); b.u32(8); b.str("llama")
        b.str("blk.0.attn_q.weight"); b.u32(UInt32(dims.count))
        for d in dims { b.u64(d) }
        b.u32(type); b.u64(0)
        b.pad()
        b.bytes += [UInt8](repeating: 0, count: dataBytes)
        return b.bytes
    }

    @Test("rows that are not whole blocks and data past the end are refused when the file is opened")
    func header() throws {
        let q4k = try expectFileError(oneTensor(type: 12, dims: [100, 2], dataBytes: 288))
        #expect(q4k?.kind == .format && q4k?.expected == "a multiple of Q4_K's block size 256" && q4k?.found == "100")
        let iq4 = try expectFileError(oneTensor(type: 20, dims: [48, 2], dataBytes: 64))
        #expect(iq4?.expected == "a multiple of IQ4_NL's block size 32" && iq4?.found == "48")
        let cut = try expectFileError(oneTensor(type: 14, dims: [256, 3], dataBytes: 2 * 210))
        #expect(cut?.expected == "bytes [0, 0 + 630)" && cut?.found == "a data section of 420 bytes")
        let huge = try expectFileError(oneTensor(type: 15, dims: [7936, 1 << 50], dataBytes: 0))
        #expect(huge?.what == "GGUF: [7936, \(1 << 50)] of Q8_K needs more bytes than are addressable")
    }

    @Test("types bam-mix cannot decode are named; unknown and removed ids too")
    func unsupported() throws {
        let iq2 = try expectFileError(oneTensor(type: 16, dims: [256, 2], dataBytes: 132), store: true)
        #expect(iq2?.kind == .unsupported && iq2?.found == "IQ2_XXS" && iq2?.expected == GGUFStore.readableTypes && iq2?.hint != nil)
        let tq1 = try expectFileError(oneTensor(type: 34, dims: [256, 1], dataBytes: 54), store: true)
        #expect(tq1?.kind == .unsupported && tq1?.found == "TQ1_0")
        let removed = try expectFileError(oneTensor(type: 4, dims: [32, 1], dataBytes: 32))
        #expect(removed?.kind == .format && removed?.found == "type 4 (Q4_2, removed from ggml)")
        let unknown = try expectFileError(oneTensor(type: 99, dims: [32, 1], dataBytes: 32))
        #expect(unknown?.kind == .format && unknown?.found == "type 99")
    }
}

@Suite("quantised Llama models made by llama-quantize")
struct QuantisedModelTests {
    static let reference: JSONObject = (try? readJSONObject(QuantFixtures.url("models.json"))) ?? JSONObject()

    func entry(_ model: String) throws -> JSONObject {
        try #require(Self.reference[model]?.objectValue, "models.json has no \(model)")
    }

    @Test("every tensor dequantises to llama.cpp's own F32 conversion (llama-quantize ... F32), bit for bit", arguments: QuantFixtures.models)
    func weights(_ model: String) throws {
        let e = try entry(model)
        let f = try GGUFFile(path: QuantFixtures.url(try #require(e["file"]?.stringValue)).path)
        let tensors = try #require(e["tensors"]?.objectValue)
        #expect(tensors.count == f.tensors.count)
        var types = Set<String>()
        for t in f.tensors {
            let want = try #require(tensors[t.name]?.objectValue, "\(t.name)")
            #expect(t.type.name == want["type"]?.stringValue, "\(t.name)")
            types.insert(t.type.name)
            let values = try QuantFixtures.decode(f, t)
            #expect(values.count == want["count"]?.intValue)
            #expect(String(QuantFixtures.checksum(values)) == want["checksum"]?.stringValue, "\(model) \(t.name) (\(t.type.name))")
        }
        let name = String(model.split(separator: "/")[1])
        let base = name.hasSuffix("_M") ? String(name.dropLast(2)) : name
        #expect(types.contains(base), "the file holds its own type: \(types)")
    }

    @Test("logits and perplexity on the quantised file equal those of its F32 dequantisation", arguments: QuantFixtures.models)
    func forward(_ model: String) throws {
        let e = try entry(model)
        let ckpt = try Checkpoint.open(QuantFixtures.url(try #require(e["file"]?.stringValue)).path)
        let tokens: [Int] = try #require(e["tokens"]?.arrayValue).compactMap { $0.intValue }
        let lf = try GGUFFile(path: QuantFixtures.url("models_logits.gguf").path)
        let want = try QuantFixtures.floats(lf, try #require(e["logits"]?.stringValue))
        let m = try Transformer.load(ckpt)
        let logits = try m.forward(tokens: tokens, cache: m.makeCache(capacity: tokens.count)).array
        let (maxDiff, firstBad) = compare(logits, want, tolerance: 1e-4)
        #expect(firstBad == nil, "\(model): max |logit diff| \(maxDiff) against transformers on the F32 dequantisation")
        let nll = try m.negativeLogLikelihoods(tokens, positions: 0..<(tokens.count - 1))
        let ppl = exp(nll.reduce(0, +) / Double(nll.count))
        let reference = try #require(e["perplexity"]?.doubleValue)
        #expect(abs(ppl - reference) / reference < 1e-5, "\(model): perplexity \(ppl) vs \(reference)")
    }
}

@Suite("convert re-quantises; mix takes quantised GGUF experts")
struct QuantisedConversionTests {
    @Test("convert --dtype T writes gguf-py's bytes for every 2-D weight, and back to HF f32 exactly", arguments: ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"])
    func convert(_ type: String) throws {
        let dir = try FormatTempDir()
        let dtype = try #require(DType(rawValue: type))
        let src = try Checkpoint.open(FormatFixtures.gguf("tiny_llama").path)
        try GGUFConverter.hfToGGUF(src, output: dir.file("q.gguf"), dtype: dtype)
        let g = try Checkpoint.open(dir.file("q.gguf").path)
        let expected = try GGUFFile(path: QuantFixtures.url("convert_expected.gguf").path)
        var quantised = 0
        for n in src.store.names {
            let info = try #require(g.store.info(n))
            if let want = expected.tensor("\(type):\(n)") {
                #expect(info.dtype == dtype, "\(n)")
                // The store un-permutes Q/K rows, so its bytes are in HF order like gguf-py's input.
                #expect(try g.store.bytes(n).elementsEqual(expected.bytes(want)), "\(n): bytes differ from gguf-py's")
                quantised += 1
            } else {
                #expect(info.dtype == .f32, "\(n) kept F32")
                #expect(try g.store.tensor(n).array == src.store.tensor(n).array, "\(n) kept F32")
            }
        }
        #expect(quantised == src.store.names.filter { src.store.info($0)!.shape.count == 2 }.count)
        let file = try GGUFFile(path: dir.file("q.gguf").path)
        let fileTypes: [String: UInt32] = ["Q8_0": 7, "Q4_0": 2, "Q4_1": 3, "Q5_0": 8, "Q5_1": 9]
        #expect(file["general.file_type"] == .uint32(fileTypes[type]!))
        // GGUF -> HF: f32 by default, holding the dequantised values exactly.
        try GGUFConverter.ggufToHF(g, outputDirectory: dir.file("back"), dtype: nil)
        let back = try Checkpoint.open(dir.file("back").path)
        for n in src.store.names {
            #expect(back.store.info(n)?.dtype == .f32)
            #expect(try back.store.tensor(n).array == g.store.tensor(n).array, "\(n)")
        }
    }

    @Test("a k-quant GGUF re-quantises to Q8_0 and Q4_0: each weight is the quantisation of its dequantised values")
    func requantise() throws {
        let dir = try FormatTempDir()
        let src = try Checkpoint.open(QuantFixtures.url("kquant/Q4_K_M.gguf").path)
        for dtype in [DType.q8_0, .q4_0] {
            let out = dir.file("\(dtype.rawValue).gguf")
            try GGUFConverter.hfToGGUF(src, output: out, dtype: dtype)
            let g = try Checkpoint.open(out.path)
            #expect(g.config.vocabSize == src.config.vocabSize && g.config.hidden == src.config.hidden)
            let file = try GGUFFile(path: out.path)
            #expect(file["tokenizer.ggml.tokens"] == (src.store as! GGUFStore).file["tokenizer.ggml.tokens"], "the vocabulary is carried over")
            for n in src.store.names {
                let a = try src.store.tensor(n)
                let info = try #require(g.store.info(n))
                guard a.shape.count == 2 else {
                    #expect(info.dtype == .f32, "\(n)")
                    #expect(try g.store.tensor(n).array == a.array, "\(n)")
                    continue
                }
                #expect(info.dtype == dtype, "\(n)")
                var want = [UInt8](repeating: 0, count: dtype.byteCount(elements: a.count)!)
                try want.withUnsafeMutableBytes { try DTypeConversion.fromFloat32(a.data, count: a.count, dtype: dtype, into: $0.baseAddress!) }
                #expect(try g.store.bytes(n).elementsEqual(want), "\(n)")
            }
        }
        expectBamError(["q4_k", "no quantiser", "llama-quantize"]) { try GGUFConverter.hfToGGUF(src, output: dir.file("k.gguf"), dtype: .q4_K) }
    }

    @Test("mixing Q4_0, Q8_0 and IQ4_NL GGUF experts: bf16 by default, or the dtype asked for, as HF or GGUF")
    func mixQuantisedExperts() throws {
        let dir = try FormatTempDir()
        let experts = ["legacy/Q4_0", "legacy/Q8_0", "legacy/IQ4_NL"].map { QuantFixtures.url("\($0).gguf").path }
        let opened = try experts.map { try Checkpoint.open($0) }
        var o = MixOptions(method: .btx, experts: experts, output: dir.file("hf"))
        o.seed = 3
        let report = try Mixer.run(o)
        #expect(report.formatName.hasPrefix("Mixtral"))
        let hf = try Checkpoint.open(dir.file("hf").path)
        #expect(hf.config.moe?.experts == 3)
        // Every expert's FFN is its own dequantised weight, rounded to bf16; attention is the mean.
        for (e, x) in opened.enumerated() {
            let want = try x.store.tensor("model.layers.1.mlp.down_proj.weight").copy()
            DTypeConversion.round(want.data, count: want.count, to: .bf16)
            let got = try hf.store.tensor("model.layers.1.block_sparse_moe.experts.\(e).w2.weight")
            #expect(hf.store.info("model.layers.1.block_sparse_moe.experts.\(e).w2.weight")?.dtype == .bf16)
            #expect(got.array == want.array, "expert \(e)")
        }
        let q = try opened.map { try $0.store.tensor("model.layers.0.self_attn.q_proj.weight").array }
        // Mixer.average: a float64 accumulator of weight * value, experts in order.
        let mean = (0..<q[0].count).map { i in Float(q.reduce(0.0) { $0 + (1.0 / 3) * Double($1[i]) }) }
        var rounded = mean
        DTypeConversion.round(&rounded, count: rounded.count, to: .bf16)
        #expect(try hf.store.tensor("model.layers.0.self_attn.q_proj.weight").array == rounded)

        // The same mix as an F32 GGUF: llama.cpp's layout, the experts' vocabulary, the provenance.
        o.output = dir.file("mix.gguf")
        o.dtype = .f32
        _ = try Mixer.run(o)
        let g = try Checkpoint.open(dir.file("mix.gguf").path)
        let file = try GGUFFile(path: dir.file("mix.gguf").path)
        #expect(file.tensor("blk.0.ffn_down_exps.weight")?.dims.last == 3)
        #expect(file["tokenizer.ggml.tokens"] == (opened[0].store as! GGUFStore).file["tokenizer.ggml.tokens"])
        #expect(file["bam.mix_provenance"]?.stringValue?.contains("sha256:") == true)
        #expect(file["general.name"] == .string("mix"))
        for (e, x) in opened.enumerated() {
            #expect(try g.store.tensor("model.layers.1.block_sparse_moe.experts.\(e).w2.weight").array
                    == x.store.tensor("model.layers.1.mlp.down_proj.weight").array, "F32 holds expert \(e) exactly")
        }
        #expect(try g.store.tensor("model.layers.0.self_attn.q_proj.weight").array == mean)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.url.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "staging directory removed: \(leftovers)")

        // A quantised GGUF mixture, and an F16 expert beside a Q4_0 one (default: f16).
        o.output = dir.file("mix-q8.gguf")
        o.dtype = .q8_0
        _ = try Mixer.run(o)
        #expect(try GGUFFile(path: dir.file("mix-q8.gguf").path).tensor("blk.0.attn_q.weight")?.type == .q8_0)
        try GGUFConverter.hfToGGUF(opened[1], output: dir.file("f16.gguf"), dtype: .f16)
        var h = MixOptions(method: .btx, experts: [experts[0], dir.file("f16.gguf").path], output: dir.file("half"))
        h.seed = 1
        _ = try Mixer.run(h)
        #expect(try Checkpoint.open(dir.file("half").path).store.info("model.embed_tokens.weight")?.dtype == .f16)
    }

    @Test("the default mix dtype: widest float type, f32 for f16 + bf16, bf16 when all are quantised")
    func widest() {
        #expect(MixDType.widest([[.q4_K, .q6_K], [.q8_0]]) == .bf16)
        #expect(MixDType.widest([[.q4_K], [.f16]]) == .f16)
        #expect(MixDType.widest([[.bf16], [.q4_0]]) == .bf16)
        #expect(MixDType.widest([[.f16], [.bf16]]) == .f32)
        #expect(MixDType.widest([[.f32, .q8_0], [.bf16]]) == .f32)
    }
}
