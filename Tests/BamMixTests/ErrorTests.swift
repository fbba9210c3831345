import BamEvaluation
import BamFormats
import BamModels
@testable import BamMixCLI
import BamMixing
import BamPipeline
import BamTensors
import BamTraining
import Foundation
import Testing

@Suite("BamError: one error type with fields, rendered as one sentence")
struct ErrorTests {
    @Test("the sentence is FILE: LOCATION: WHAT: expected E, found F; HINT, each part only when present")
    func rendering() {
        let full = BamError(.format, file: "m.gguf", at: .tensor("blk.0.attn_q.weight"), "data offset", expected: "a multiple of 32",
                            found: "4", hint: "re-convert the model")
        #expect(full.message == "m.gguf: tensor `blk.0.attn_q.weight`: data offset: expected a multiple of 32, found 4; re-convert the model")
        #expect(full.description == full.message && full.localizedDescription == full.message)
        #expect(BamError.config("config.json", key: "head_dim", expected: "a positive even number", found: "7").message
                == "config.json: key `head_dim`: expected a positive even number, found 7")
        #expect(BamError.format("t.json", at: .key(""), "missing \"model\"").message == "t.json: top level: missing \"model\"")
        #expect(BamError.format("a.txt", at: .line(3, column: 9), "bad").message == "a.txt: line 3, column 9: bad")
        #expect(BamError(.numeric, at: .step(7), "the loss is not finite", found: "nan").message == "step 7: the loss is not finite: found nan")
        #expect(BamError.usage("plain").message == "plain")
        // The legacy shapes keep their text: file and clause, or the clause alone.
        #expect(BamError.format("x.bin", "truncated").message == "x.bin: truncated")
        #expect(BamError.config("c.json", key: "k", "not supported") == BamError(.config, file: "c.json", at: .key("k"), "not supported"))
    }

    @Test("options are named by the library's API, or by whatever wording the caller passes (the CLI: flags)")
    func optionWording() {
        let e = BamError.usage("\(MixOptions.Field.method, "upcycle") needs \(MixOptions.Field.numExperts)", expected: "at least 2",
                               found: "none", hint: "or drop \(MixOptions.Field.dropRatio)")
        #expect(e.options == [MixOptions.Field.method, MixOptions.Field.numExperts, MixOptions.Field.dropRatio])
        #expect(e.message == "`MixOptions.method` = upcycle needs `MixOptions.numExperts`: expected at least 2, found none; or drop `MixOptions.dropRatio`")
        let flags: [BamError.Option: String] = [MixOptions.Field.method: "--method", MixOptions.Field.numExperts: "--num-experts"]
        let worded = e.rendered { option, value in
            let name = flags[option] ?? option.description
            return value.map { "\(name) \($0)" } ?? name
        }
        #expect(worded == "--method upcycle needs --num-experts: expected at least 2, found none; or drop MixOptions.dropRatio")
        // An option is its owner type and property; the key path ties it to a real property.
        #expect(MixOptions.Field.numExperts == BamError.Option(owner: "MixOptions", name: "numExperts"))
        #expect(TrainingOptions.Field.sequenceLength.description == "TrainingOptions.sequenceLength")
        #expect(Set(MixOptions.Field.all).count == MixOptions.Field.all.count)
        #expect(Set(TrainingOptions.Field.all).count == TrainingOptions.Field.all.count)
    }

    @Test("a config key error carries the key, what was expected and what was found")
    func configFields() throws {
        func refusal(_ changes: [(String, JSONValue)]) -> BamError? {
            var j = ModelConfig.llamaJSON(vocab: 64, hidden: 16, intermediate: 32, layers: 2, heads: 4)
            for (k, v) in changes { j[k] = v }
            return bamError { _ = try ModelConfig(json: j, file: "m/config.json") }
        }
        let gqa = refusal([("num_key_value_heads", 3)])
        #expect(gqa?.kind == .config && gqa?.file == "m/config.json" && gqa?.location == .key("num_key_value_heads"))
        #expect(gqa?.expected == "a divisor of num_attention_heads = 4" && gqa?.found == "3")
        let type = refusal([("vocab_size", "many")])
        #expect(type?.location == .key("vocab_size") && type?.expected == "a non-negative integer" && type?.found == "\"many\"")
        let missing = refusal([("model_type", .null)])
        #expect(missing?.location == .key("model_type") && missing?.what == "missing")
        let family = refusal([("model_type", "gpt2")])
        #expect(family?.found == "gpt2" && family?.expected?.contains("llama") == true)
        let rope = refusal([("rope_scaling", .object(JSONObject([("rope_type", "yarn"), ("factor", 4.0)])))])
        #expect(rope?.location == .key("rope_scaling.rope_type") && rope?.found == "yarn")
        let act = refusal([("hidden_act", "gelu")])
        #expect(act?.location == .key("hidden_act") && act?.expected == "silu" && act?.found == "gelu")
    }

    @Test("weights that disagree with the config: the tensor, its file, the shape expected and the shape found")
    func shapeMismatch() throws {
        let dir = try TemporaryDirectory()
        let config = try ModelConfig(json: ModelConfig.llamaJSON(vocab: 64, hidden: 16, intermediate: 48, layers: 2, heads: 2))
        try CheckpointWriter.save(weights: .random(config: config, seed: 1), config: config, to: dir.file("m"))
        let store = try Checkpoint.open(dir.file("m").path).store
        let other = try ModelConfig(json: ModelConfig.llamaJSON(vocab: 64, hidden: 16, intermediate: 40, layers: 2, heads: 2))
        let e = bamError { _ = try TransformerWeights.load(config: other, store: store) }
        #expect(e?.kind == .mismatch && e?.location == .tensor("model.layers.0.mlp.gate_proj.weight"))
        #expect(e?.expected == "[40, 16]" && e?.found == "[48, 16]" && e?.file?.hasSuffix(".safetensors") == true)
        let fewer = try ModelConfig(json: ModelConfig.llamaJSON(vocab: 64, hidden: 16, intermediate: 48, layers: 1, heads: 2))
        let extra = bamError { _ = try TransformerWeights.load(config: fewer, store: store) }
        #expect(extra?.kind == .mismatch)
        if case .tensor(let name)? = extra?.location { #expect(name.hasPrefix("model.layers.1.")) } else { Issue.record("no tensor named: \(String(describing: extra))") }
    }

    @Test("training options are refused by their API names, with the value found")
    func trainingOptions() {
        var o = TrainingOptions()
        o.sequenceLength = 0
        let e = bamError { try o.validate() }
        #expect(e?.kind == .usage && e?.options == [TrainingOptions.Field.sequenceLength])
        #expect(e?.expected == "at least 1" && e?.found == "0")
        #expect(e?.message.contains("--") == false)
    }

    @Test("the CLI words the same error with its flags and exits 1")
    func commandLineWording() throws {
        let binary = try #require(Self.bamMixBinary(), "the bam-mix executable is built beside the tests")
        let dir = try TemporaryDirectory()
        let out = dir.file("out")
        let (status, stderr) = try Self.run(binary, ["mix", "--method", "upcycle", "--expert", MixFixtures.llama[0], "--out", out.path])
        #expect(status == 1)
        #expect(stderr == "Error: --method upcycle needs --num-experts: expected at least 2, found none\n")
        #expect(!FileManager.default.fileExists(atPath: out.path))
        let (trainStatus, trainErr) = try Self.run(binary, ["train", "--model", MixFixtures.llama[0], "--data", "x.txt",
                                                            "--out", dir.file("t").path, "--seq", "0"])
        #expect(trainStatus == 1)
        // (Progress may print a line before the error; the error is the last line.)
        #expect(trainErr.hasSuffix("Error: --seq: expected at least 1, found 0\n"), "\(trainErr)")
    }

    /// `bam-mix` in the build directory the test bundle runs from.
    static func bamMixBinary() -> URL? {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("bam-mix")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir.deleteLastPathComponent()
        }
        return nil
    }

    static func run(_ binary: URL, _ arguments: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = binary
        p.arguments = arguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}


@Suite("the CLI's flag for every option a library error can name")
struct ErrorWordingTests {
    @Test("every declared option has a flag, and flags are what the commands accept")
    func everyOptionHasAFlag() {
        let options = MixOptions.Field.all + TrainingOptions.Field.all + PerplexityOptions.Field.all + RoutesOptions.Field.all
            + CompareOptions.Field.all + [GGUFConverter.dtypeOption, Pipeline.checkpointsOption]
        for o in options {
            #expect(ErrorWording.flags[o]?.hasPrefix("--") == true, "no flag for \(o)")
        }
        #expect(ErrorWording.word(MixOptions.Field.method, value: "upcycle") == "--method upcycle")
        #expect(ErrorWording.word(BamError.Option(owner: "Elsewhere", name: "x"), value: nil) == "`Elsewhere.x`")
        let e = BamError.usage("\(MixOptions.Field.numExperts) is for \(MixOptions.Field.method, "upcycle")")
        #expect(ErrorWording.message(e) == "--num-experts is for --method upcycle")
    }
}
