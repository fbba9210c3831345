@testable import BamFormats
import BamFuzzTargets
import BamModels
import BamTokenizers
import Foundation
import Testing

/// The repository root (Fuzzing/ and Tests/ live there).
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// docs/reliability.md: the fuzz targets over their committed corpus and every input a fuzzing
/// run ever found (Tests/Fixtures/fuzz-regressions/TARGET), the resource limits, and the crash
/// safety of outputs.
@Suite("Reliability")
struct ReliabilityTests {
    static func inputs(_ target: String) -> [URL] {
        let fm = FileManager.default
        var files: [URL] = []
        for dir in [repositoryRoot.appendingPathComponent("Fuzzing/corpus/\(target)"),
                    Fixtures.url("fuzz-regressions/\(target)")] {
            for name in ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() where !name.hasPrefix(".") {
                files.append(dir.appendingPathComponent(name))
            }
        }
        return files
    }

    @Test("every fuzz target runs its committed corpus and past findings without a crash",
          arguments: FuzzTargets.all.map(\.name))
    func corpusReplay(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let files = Self.inputs(name)
        #expect(!files.isEmpty, "Fuzzing/corpus/\(name) is empty; run tools/make_fuzz_seeds.py")
        for url in files {
            // Two regression inputs are empty files, and Data(contentsOf:) leaks a 4 KB buffer on
            // an empty file (Foundation; LeakSanitizer reports it under `tools/test --sanitize`).
            let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int ?? 0
            let data = size == 0 ? Data() : try Data(contentsOf: url)
            // What libFuzzer would feed: at most the target's -max_len bytes.
            data.prefix(target.maxLength).withUnsafeBytes { target.run($0) }
        }
    }

    // MARK: configs (the issue's findings)

    static func llamaConfig(_ changes: [(String, JSONValue)]) -> JSONObject {
        var o = JSONObject([("model_type", "llama"), ("vocab_size", 32), ("hidden_size", 16), ("intermediate_size", 32),
                            ("num_hidden_layers", 2), ("num_attention_heads", 2)])
        for (k, v) in changes { o[k] = v }
        return o
    }

    @Test("absurd sizes are refused when the config is parsed, naming the key and the limit")
    func configCaps() throws {
        let cases: [([(String, JSONValue)], String)] = [
            ([("vocab_size", .int(Int.max)), ("hidden_size", .double(1e12))], "vocab_size"),
            ([("hidden_size", .double(1e12))], "hidden_size"),
            ([("num_hidden_layers", .double(1e12))], "num_hidden_layers"),
            ([("num_attention_heads", .int(1 << 40)), ("hidden_size", .int(1 << 41))], "hidden_size"),
            ([("head_dim", .int(1 << 62))], "head_dim"),
            ([("max_position_embeddings", .int(Int.max))], "max_position_embeddings"),
            ([("intermediate_size", .int(1 << 30))], "intermediate_size"),
            ([("rope_theta", .double(.infinity))], "rope_theta"),
        ]
        for (changes, key) in cases {
            do {
                _ = try ModelConfig(json: Self.llamaConfig(changes))
                Issue.record("a config with \(changes) was accepted")
            } catch let e as BamError {
                #expect(e.kind == .config && e.location == .key(key) && e.found != nil, "\(e.message)")
            }
        }
        // Every cap on its own holds, yet together they would be ~10^16 parameters.
        let big: [(String, JSONValue)] = [("model_type", "mixtral"), ("num_local_experts", .int(64)), ("num_experts_per_tok", 2),
                                          ("hidden_size", .int(1 << 17)), ("intermediate_size", .int(1 << 20)),
                                          ("num_hidden_layers", .int(1 << 11)), ("num_attention_heads", .int(1 << 10))]
        #expect(throws: BamError.self) { try ModelConfig(json: Self.llamaConfig(big)) }
        // A real size passes (Llama 3 70B's).
        let real = try ModelConfig(json: Self.llamaConfig([("vocab_size", 128_256), ("hidden_size", 8192), ("intermediate_size", 28_672),
                                                          ("num_hidden_layers", 80), ("num_attention_heads", 64), ("num_key_value_heads", 8)]))
        #expect(real.layers == 80)
    }

    @Test("a config within the caps but larger than the machine is refused with the bytes it needs")
    func memoryCheck() throws {
        // Llama 3.1 405B's shape: about 406 G parameters, 1.6 TB in float32.
        let c = try ModelConfig(json: Self.llamaConfig([("vocab_size", 128_256), ("hidden_size", 16_384),
                                                       ("intermediate_size", 53_248), ("num_hidden_layers", 126),
                                                       ("num_attention_heads", 128), ("num_key_value_heads", 8)]))
        let need = ModelMemory.requiredBytes(config: c, bytesPerParameter: 4)
        #expect(need > 1_600_000_000_000 && need < 1_700_000_000_000)
        do {
            try ModelMemory.requireFits(config: c, bytesPerParameter: 4, purpose: "running")
            Issue.record("a 1.6 TB model was accepted on a machine with \(ModelMemory.availableBytes) bytes")
        } catch let e as BamError {
            #expect(e.message.contains("\(need) bytes"), "\(e.message)")
        }
        // The tiny model fits.
        try ModelMemory.requireFits(config: try ModelConfig(json: Self.llamaConfig([])), bytesPerParameter: 16, purpose: "training")
    }

    // MARK: parsers

    @Test(".npy shapes must be non-negative integers whose product does not overflow")
    func npyShapes() throws {
        let dir = try TemporaryDirectory()
        func npy(_ shape: String, dataBytes: Int) -> URL {
            var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
            while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
            header += "\n"
            var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
            bytes += Array(header.utf8) + [UInt8](repeating: 0, count: dataBytes)
            let url = dir.file("a\(shape.hashValue).npy")
            _ = FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
            return url
        }
        #expect(try NumPy.readFloat(npy("(2, 3)", dataBytes: 24)).shape == [2, 3])
        for bad in ["(-2, -2)", "(4294967296, 4294967296)", "(3037000500, 3037000500)", "(2, x)"] {
            #expect(throws: BamError.self, "\(bad)") { try NumPy.readFloat(npy(bad, dataBytes: 16)) }
        }
    }

    @Test("a deflated zip entry claiming more than deflate's 1032:1 is refused before inflating")
    func zipInflateRatio() throws {
        var zip = StoredZip.build([("a/data.pkl", [UInt8](repeating: 0, count: 8))])
        // Central directory entry: method 8 (deflated) and an uncompressed size of 1 GiB.
        let cd = try #require(zip.indices.first { zip[$0] == 0x50 && zip[$0 + 1] == 0x4B && zip[$0 + 2] == 1 && zip[$0 + 3] == 2 })
        zip[cd + 10] = 8
        for (i, b) in withUnsafeBytes(of: UInt32(1 << 30).littleEndian, Array.init).enumerated() { zip[cd + 24 + i] = b }
        let dir = try TemporaryDirectory()
        let url = dir.file("bomb.zip")
        _ = FileManager.default.createFile(atPath: url.path, contents: Data(zip))
        do {
            _ = try ZipArchive(path: url.path)
            Issue.record("the entry was accepted")
        } catch let e as BamError {
            #expect(e.kind == .format && e.file == url.path && e.location == .entry("a/data.pkl"), "\(e.message)")
            #expect(e.what.description.contains("1032:1"), "\(e.message)")
        }
    }

    @Test("a pickle whose list contains itself is refused or read, and its boxes are freed")
    func pickleCycles() throws {
        // PROTO 2, EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP: a list that contains itself.
        let code: [UInt8] = [0x80, 2, 0x5D, 0x71, 0, 0x68, 0, 0x61, 0x2E]
        weak var box: Pickle.Box?
        do {
            let value = try Pickle.load(code, file: "cycle.pkl")
            if case let .list(b) = value { box = b }
            #expect(box?.items.isEmpty == true)
        }
        #expect(box == nil, "the self-containing list was never freed")
    }

    // MARK: crash safety

    /// The id of a process that has exited (a child that was waited for).
    static func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    @Test("the next writer removes temporaries of runs that no longer run, and only those")
    func deadRunCleanup() throws {
        let dir = try TemporaryDirectory()
        let fm = FileManager.default
        let dead = try Self.deadPID()
        let live = getppid()
        for name in [".out.tmp-\(dead)-123", ".out.tmp-\(live)-456", ".model.gguf.tmp-\(dead)", ".other.tmp-\(dead)", ".out.tmpx-\(dead)"] {
            try fm.createDirectory(at: dir.file(name), withIntermediateDirectories: true)
        }
        try CheckpointWriter.write(directory: dir.file("out"), config: JSONObject([("model_type", "llama")]), entries: [])
        try writeFileAtomically(Data("x".utf8), to: dir.file("model.gguf"))
        let left = Set(try fm.contentsOfDirectory(atPath: dir.url.path))
        #expect(left == ["out", "model.gguf", ".out.tmp-\(live)-456", ".other.tmp-\(dead)", ".out.tmpx-\(dead)"])
    }

    @Test("a previous output set aside by a run killed mid-replace is put back")
    func asideRestored() throws {
        let dir = try TemporaryDirectory()
        let fm = FileManager.default
        let aside = dir.file(".run.old-\(try Self.deadPID())")
        try fm.createDirectory(at: aside, withIntermediateDirectories: true)
        try Data("previous".utf8).write(to: aside.appendingPathComponent("config.json"))
        #expect(TemporaryOutputs.cleanUpDeadRuns(for: dir.file("run")) == [aside.lastPathComponent])
        #expect(try String(contentsOf: dir.file("run/config.json"), encoding: .utf8) == "previous")
    }

    @Test("replacing a checkpoint directory swaps it in one step and leaves nothing beside it")
    func replaceDirectory() throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("ckpt")
        for generation in ["first", "second"] {
            try CheckpointWriter.write(directory: out, config: JSONObject([("model_type", .string(generation))]), entries: [],
                                       replace: true)
        }
        #expect(try readJSONFile(out.appendingPathComponent("config.json"))["model_type"]?.stringValue == "second")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["ckpt"])
    }
}
