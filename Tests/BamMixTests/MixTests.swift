import BamMixing
import BamModels
import Foundation
import Testing

/// The dense experts of tools/make_mix_fixtures.py: a seed and two branches of it.
enum MixFixtures {
    static func expert(_ name: String) -> String { Fixtures.url("mix/experts/\(name)").path }
    static let llama = ["llama_seed", "llama_e1", "llama_e2"].map(expert)
    static let cohere = ["cohere_seed", "cohere_e1", "cohere_e2"].map(expert)

    /// Runs a mix into a fresh temporary directory and opens the result.
    static func mix(_ options: (URL) -> MixOptions, in dir: TemporaryDirectory) throws -> Checkpoint {
        let out = dir.file("mixed")
        _ = try Mixer.run(options(out))
        return try Checkpoint.open(out.path)
    }

    /// Our forward on the mixed checkpoint against the logits transformers (or the BAM reference)
    /// computed on the same mix.
    static func expectMatchesReference(_ ckpt: Checkpoint, fixture: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let ids = try NumPy.readInts(Fixtures.url("mix/\(fixture)/ids.npy")).values
        let expected = try NumPy.readFloat(Fixtures.url("mix/\(fixture)/hf_logits.npy")).values
        let model = try Transformer.load(ckpt)
        let logits = try model.forward(tokens: ids, cache: model.makeCache(capacity: ids.count)).array
        let (maxDiff, firstBad) = compare(logits, expected, tolerance: 1e-4)
        #expect(firstBad == nil, "\(fixture): max |diff| \(maxDiff)", sourceLocation: sourceLocation)
    }
}

@Suite("Mixing: BTX, BAM and upcycling")
struct MixTests {
    @Test("BTX of three Llama experts is a Mixtral that transformers runs with our logits")
    func btxLlama() throws {
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({ var o = MixOptions(method: .btx, experts: MixFixtures.llama, output: $0); o.seed = 7; return o }, in: dir)
        #expect(ckpt.config.family == .mixtral)
        #expect(ckpt.config.moe == MoEConfig(experts: 3, topK: 2, renormalize: true, routerAuxLossCoef: 0.01, routerZLossCoef: 0))
        try MixFixtures.expectMatchesReference(ckpt, fixture: "btx_llama")
        // Side files and provenance.
        #expect(FileManager.default.fileExists(atPath: ckpt.path.appendingPathComponent("tokenizer.json").path))
        let provenance = try readJSONFile(ckpt.path.appendingPathComponent("bam_mix_provenance.json"))
        #expect(provenance["options"]?["method"]?.stringValue == "btx")
        let files = provenance["sources"]?.arrayValue?.first?["files"]?.objectValue
        #expect(files?["model.safetensors"]?.stringValue?.hasPrefix("sha256:") == true)
    }

    @Test("weighted BTX, top-1")
    func btxWeighted() throws {
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({
            var o = MixOptions(method: .btx, experts: MixFixtures.llama, output: $0)
            o.weights = [2, 1, 1]; o.topK = 1; o.seed = 8; return o
        }, in: dir)
        try MixFixtures.expectMatchesReference(ckpt, fixture: "btx_llama_weighted")
    }

    @Test("averaged tensors are the (weighted) mean and expert tensors byte copies")
    func exactRecipes() throws {
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({
            var o = MixOptions(method: .btx, experts: MixFixtures.llama, output: $0); o.weights = [2, 1, 1]; return o
        }, in: dir)
        let experts = try MixFixtures.llama.map { try Checkpoint.open($0) }
        let w = [0.5, 0.25, 0.25]
        for name in [ParameterNames.embed, ParameterNames.attention(1, "k"), ParameterNames.inputNorm(0), ParameterNames.lmHead] {
            let sources = try experts.map { try $0.store.tensor(name) }
            let mixed = try ckpt.store.tensor(name)
            for i in 0..<mixed.count {
                let mean = Float(zip(w, sources).reduce(0.0) { $0 + $1.0 * Double($1.1.data[i]) })
                #expect(mixed.data[i] == mean, "\(name)[\(i)]")
                if mixed.data[i] != mean { break }
            }
        }
        for (e, expert) in experts.enumerated() {
            for (w, p) in [("w1", "gate"), ("w3", "up"), ("w2", "down")] {
                let a = try ckpt.store.bytes(ParameterNames.moeExpert(1, e, w))
                let b = try expert.store.bytes(ParameterNames.mlp(1, p))
                #expect(Array(a) == Array(b), "expert \(e) \(w) is a byte copy")
            }
        }
    }

    @Test("a cast to bf16 stores exactly the rounded values")
    func castExact() throws {
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({ var o = MixOptions(method: .btx, experts: MixFixtures.llama, output: $0); o.dtype = .bf16; return o }, in: dir)
        let src = try Checkpoint.open(MixFixtures.llama[1]).store.tensor(ParameterNames.mlp(0, "up"))
        #expect(ckpt.store.info(ParameterNames.moeExpert(0, 1, "w3"))?.dtype == .bf16)
        let mixed = try ckpt.store.tensor(ParameterNames.moeExpert(0, 1, "w3"))
        let expected = src.copy()
        DTypeConversion.round(expected.data, count: expected.count, to: .bf16)
        #expect(mixed.array == expected.array)
    }

    /// Not bit-exact: each expert's GEMMs run over the token rows routed to it, and BLAS blocks a
    /// 7-row product differently from a 16-row one, so sums are ordered differently (~1e-7).
    @Test("upcycling with zero noise reproduces the dense model, to float rounding")
    func upcycleExact() throws {
        let dense = try Checkpoint.open(MixFixtures.llama[0])
        let denseModel = try Transformer.load(dense)
        let ids = try NumPy.readInts(Fixtures.url("mix/btx_llama/ids.npy")).values
        let reference = try denseModel.forward(tokens: ids, cache: denseModel.makeCache(capacity: ids.count)).array
        for k in [1, 2] {
            let dir = try TemporaryDirectory()
            let ckpt = try MixFixtures.mix({
                var o = MixOptions(method: .upcycle, experts: [MixFixtures.llama[0]], output: $0)
                o.numExperts = 4; o.topK = k; return o
            }, in: dir)
            let model = try Transformer.load(ckpt)
            let logits = try model.forward(tokens: ids, cache: model.makeCache(capacity: ids.count)).array
            let (maxDiff, firstBad) = compare(logits, reference, tolerance: 1e-5)
            #expect(firstBad == nil, "top-\(k): max |diff| \(maxDiff)")
        }
    }

    @Test("upcycling with noise matches transformers on the noisy copies")
    func upcycleNoisy() throws {
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({
            var o = MixOptions(method: .upcycle, experts: [MixFixtures.llama[0]], output: $0)
            o.numExperts = 4; o.upcycleNoise = 0.01; o.seed = 9; return o
        }, in: dir)
        try MixFixtures.expectMatchesReference(ckpt, fixture: "upcycle_llama")
        let a = try ckpt.store.tensor(ParameterNames.moeExpert(0, 0, "w1")).array
        let b = try ckpt.store.tensor(ParameterNames.moeExpert(0, 1, "w1")).array
        #expect(compare(a, b, tolerance: 0).firstBad != nil, "the copies differ")
    }

    @Test("BTX of Cohere (parallel) experts writes the BAM format with one averaged attention")
    func btxCohere() throws {
        let dir = try TemporaryDirectory()
        let ckpt = try MixFixtures.mix({ var o = MixOptions(method: .btx, experts: MixFixtures.cohere, output: $0); o.seed = 12; return o }, in: dir)
        #expect(ckpt.config.family == .bam)
        #expect(ckpt.config.moa == nil)
        #expect(ckpt.config.parallelBlock)
        try MixFixtures.expectMatchesReference(ckpt, fixture: "btx_cohere_dense_attention")
    }
}

@Suite("Mixing refuses what cannot be mixed, before writing anything")
struct MixValidationTests {
    /// A random Llama-shaped expert written into `dir/name`.
    func expert(_ dir: TemporaryDirectory, _ name: String, intermediate: Int = 48, layers: Int = 2, dtype: DType = .f32,
                tokenizer: String? = "tok-a") throws -> String {
        let config = try ModelConfig(json: ModelConfig.llamaJSON(vocab: 64, hidden: 16, intermediate: intermediate, layers: layers, heads: 2))
        let url = dir.file(name)
        try CheckpointWriter.save(weights: .random(config: config, seed: 1), config: config, to: url, dtype: dtype)
        if let tokenizer { try Data(tokenizer.utf8).write(to: url.appendingPathComponent("tokenizer.json")) }
        return url.path
    }

    /// Runs a mix that must be refused before writing anything; returns the error for its fields.
    /// A library error names options by their API names, never by a flag.
    func refusal(_ options: MixOptions, sourceLocation: SourceLocation = #_sourceLocation) -> BamError? {
        defer { #expect(!FileManager.default.fileExists(atPath: options.output.path), "nothing written", sourceLocation: sourceLocation) }
        do {
            _ = try Mixer.run(options)
            Issue.record("the mix should have been refused", sourceLocation: sourceLocation)
        } catch let e as BamError {
            #expect(!e.message.contains("--"), "a library error names no flag: \(e.message)", sourceLocation: sourceLocation)
            return e
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    @Test("different shapes: the error names the config key, both values and the differing expert's file")
    func shapes() throws {
        let dir = try TemporaryDirectory()
        let a = try expert(dir, "a"), b = try expert(dir, "b", intermediate: 40)
        let e = refusal(MixOptions(method: .btx, experts: [a, b], output: dir.file("out")))
        #expect(e?.kind == .mismatch && e?.location == .key("intermediate_size"))
        #expect(e?.expected == "48" && e?.found == "40" && e?.file == b)
    }

    @Test("a missing tensor (different layer count) is refused")
    func layers() throws {
        let dir = try TemporaryDirectory()
        let e = refusal(MixOptions(method: .bam, experts: [try expert(dir, "a"), try expert(dir, "b", layers: 3)], output: dir.file("out")))
        #expect(e?.location == .key("num_hidden_layers") && e?.expected == "2" && e?.found == "3")
    }

    @Test("an MoE input is refused with a reason")
    func moeInput() throws {
        let dir = try TemporaryDirectory()
        let moe = Fixtures.url("models/mixtral_legacy").path
        let e = refusal(MixOptions(method: .btx, experts: [try expert(dir, "a"), moe], output: dir.file("out")))
        #expect(e?.kind == .mismatch && e?.file == moe && e?.location == .key("model_type"))
        #expect(e?.expected == "a dense model" && e?.found == "mixtral")
    }

    @Test("different tokenizers are refused unless allowed")
    func tokenizers() throws {
        let dir = try TemporaryDirectory()
        let a = try expert(dir, "a"), b = try expert(dir, "b", tokenizer: "tok-b")
        let e = refusal(MixOptions(method: .btx, experts: [a, b], output: dir.file("out")))
        #expect(e?.kind == .mismatch && e?.location == .expert(1))
        #expect(e?.hint?.options == [MixOptions.Field.allowTokenizerMismatch])
        var o = MixOptions(method: .btx, experts: [a, b], output: dir.file("out"))
        o.allowTokenizerMismatch = true
        _ = try Mixer.run(o)
        #expect(FileManager.default.fileExists(atPath: dir.file("out/config.json").path))
    }

    @Test("different dtypes: the widest by default (f32 over bf16, f32 for f16 + bf16), or --dtype")
    func dtypes() throws {
        let dir = try TemporaryDirectory()
        let a = try expert(dir, "a"), b = try expert(dir, "b", dtype: .bf16), c = try expert(dir, "c", dtype: .f16)
        _ = try Mixer.run(MixOptions(method: .btx, experts: [a, b], output: dir.file("wide")))
        #expect(try Checkpoint.open(dir.file("wide").path).store.info(ParameterNames.embed)?.dtype == .f32)
        _ = try Mixer.run(MixOptions(method: .btx, experts: [b, c], output: dir.file("halves")))
        #expect(try Checkpoint.open(dir.file("halves").path).store.info(ParameterNames.embed)?.dtype == .f32)
        _ = try Mixer.run(MixOptions(method: .btx, experts: [b, b], output: dir.file("same")))
        #expect(try Checkpoint.open(dir.file("same").path).store.info(ParameterNames.embed)?.dtype == .bf16)
        var o = MixOptions(method: .btx, experts: [a, b], output: dir.file("out"))
        o.dtype = .f16
        _ = try Mixer.run(o)
        #expect(try Checkpoint.open(dir.file("out").path).store.info(ParameterNames.embed)?.dtype == .f16)
        o = MixOptions(method: .btx, experts: [a, b], output: dir.file("q"))
        o.dtype = .q8_0
        let e = refusal(o)
        #expect(e?.kind == .usage && e?.options == [MixOptions.Field.dtype])
        #expect(e?.expected == "f32, f16, bf16" && e?.found == "q8_0" && e?.hint != nil)
    }

    @Test("an existing output, a bad top-k, wrong upcycle arguments and bad weights are refused")
    func usage() throws {
        let dir = try TemporaryDirectory()
        let a = try expert(dir, "a"), b = try expert(dir, "b")
        let one = refusal(MixOptions(method: .btx, experts: [a], output: dir.file("o1")))
        #expect(one?.kind == .usage && one?.expected == "at least 2 experts" && one?.found == "1")
        #expect(one?.what.pieces.first == .option(MixOptions.Field.method, value: "btx"))
        #expect(one?.options == [MixOptions.Field.method, MixOptions.Field.experts, MixOptions.Field.method])
        var o = MixOptions(method: .btx, experts: [a, b], output: dir.file("o2")); o.topK = 3
        let topK = refusal(o)
        #expect(topK?.options == [MixOptions.Field.topK] && topK?.expected == "1 ... 2" && topK?.found == "3")
        o = MixOptions(method: .upcycle, experts: [a], output: dir.file("o3"))
        let upcycle = refusal(o)
        #expect(upcycle?.options == [MixOptions.Field.method, MixOptions.Field.numExperts])
        #expect(upcycle?.expected == "at least 2" && upcycle?.found == "none")
        #expect(upcycle?.message == "`MixOptions.method` = upcycle needs `MixOptions.numExperts`: expected at least 2, found none")
        o = MixOptions(method: .btx, experts: [a, b], output: dir.file("o4")); o.weights = [1]
        let weights = refusal(o)
        #expect(weights?.options == [MixOptions.Field.weights] && weights?.expected == "2 values" && weights?.found == "1")
        o = MixOptions(method: .btx, experts: [a, b], output: URL(fileURLWithPath: a))
        #expect(throws: BamError.self) { try Mixer.run(o) }
    }
}
