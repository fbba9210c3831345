import BamTensors
import Foundation

/// A model on disk: its architecture and its tensors under HF names, whatever the container.
/// PATH forms (docs/formats.md): an HF directory (config.json + safetensors), a `.gguf` file, or a
/// directory of PyTorch `pytorch_model*.bin` files (read-only).
public final class Checkpoint: @unchecked Sendable {
    public enum Container: String, Sendable { case safetensors, gguf, pytorch, memory }

    public let path: URL
    public let container: Container
    public let config: ModelConfig
    public let store: any TensorStore
    /// tokenizer.json when the checkpoint has one (HF directories; for GGUF files the one beside the
    /// file, else the vocabulary rebuilt in a cache). Tokenise with `loadTokenizer()` (BamTokenizers),
    /// which runs a GGUF's own vocabulary when no tokenizer.json is beside it.
    public let tokenizerURL: URL?

    public init(path: URL, container: Container, config: ModelConfig, store: any TensorStore, tokenizerURL: URL?) {
        self.path = path
        self.container = container
        self.config = config
        self.store = store
        self.tokenizerURL = tokenizerURL
    }

    /// Opens any supported checkpoint, with an error that says what was found when nothing fits.
    public static func open(_ pathString: String) throws -> Checkpoint {
        let url = URL(fileURLWithPath: pathString).standardizedFileURL
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw BamError.io("no such file or directory", file: url.path)
        }
        if !isDir.boolValue {
            if url.pathExtension.lowercased() == "gguf" { return try CheckpointOpeners.gguf(url) }
            if url.lastPathComponent == "config.json" { return try open(url.deletingLastPathComponent().path) }
            throw BamError.format(url.path, "not a model", expected: "an HF directory (config.json + *.safetensors), a .gguf file, or a directory of pytorch_model*.bin files",
                                  found: "a .\(url.pathExtension) file")
        }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        let tokenizer = files.contains("tokenizer.json") ? url.appendingPathComponent("tokenizer.json") : nil
        if files.contains(where: { $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") }) {
            let config = try ModelConfig.load(directory: url)
            let store = try SafetensorsStore(directory: url)
            return Checkpoint(path: url, container: .safetensors, config: config, store: store, tokenizerURL: tokenizer)
        }
        if files.contains(where: { $0.hasPrefix("pytorch_model") && $0.hasSuffix(".bin") }) {
            return try CheckpointOpeners.pytorch(url)
        }
        let ggufs = files.filter { $0.hasSuffix(".gguf") }
        if ggufs.count == 1 { return try CheckpointOpeners.gguf(url.appendingPathComponent(ggufs[0])) }
        throw BamError.format(url.path, "no weights found", expected: "*.safetensors (with config.json), pytorch_model*.bin, or a single .gguf file",
                              found: files.isEmpty ? "an empty directory" : files.sorted().prefix(8).joined(separator: ", "))
    }

    /// tokenizer_config.json beside the weights, if any.
    public var tokenizerConfigURL: URL? {
        let u = (container == .gguf ? path.deletingLastPathComponent() : path).appendingPathComponent("tokenizer_config.json")
        return FileManager.default.fileExists(atPath: u.path) ? u : nil
    }

    /// The directory holding the checkpoint's side files (tokenizer, generation config).
    public var directory: URL { container == .gguf ? path.deletingLastPathComponent() : path }
}

/// Openers for containers implemented in their own files (GGUF, PyTorch .bin).
enum CheckpointOpeners {
    /// A `.gguf` file (GGUFStore.swift). tokenizerURL is a tokenizer.json beside the file, else the
    /// file's vocabulary rebuilt as a tokenizer.json in a cache directory
    /// (GGUFTokenizer.cachedTokenizerURL) when it can be, for what copies tokenizer files (mix and
    /// train outputs); text is tokenised with the vocabulary itself (BamTokenizers'
    /// `Checkpoint.loadTokenizer`), as llama.cpp does.
    static func gguf(_ url: URL) throws -> Checkpoint {
        let store = try GGUFStore(path: url.path)
        let beside = url.deletingLastPathComponent().appendingPathComponent("tokenizer.json")
        return Checkpoint(path: url, container: .gguf, config: store.config, store: store,
                          tokenizerURL: FileManager.default.fileExists(atPath: beside.path)
                              ? beside : GGUFTokenizer.cachedTokenizerURL(for: store.file))
    }

    /// A directory of `pytorch_model.bin` or sharded `pytorch_model-0000i-of-0000n.bin` files
    /// (PyTorchBin.swift), with config.json beside them.
    static func pytorch(_ url: URL) throws -> Checkpoint {
        let config = try ModelConfig.load(directory: url)
        let store = try PyTorchBinStore(directory: url)
        let tok = url.appendingPathComponent("tokenizer.json")
        return Checkpoint(path: url, container: .pytorch, config: config, store: store,
                          tokenizerURL: FileManager.default.fileExists(atPath: tok.path) ? tok : nil)
    }
}

/// transformers 5's Mixtral layout: `model.layers.N.mlp.gate.weight` (the router [E, H]),
/// `model.layers.N.mlp.experts.gate_up_proj` [E, 2I, H] and `...experts.down_proj` [E, H, I]
/// (docs/formats.md). Matched by hand: a Swift regex literal is parsed again at every evaluation,
/// which cost ~5 % of a conversion when it ran once per tensor.
public enum FusedMixtralTensor: Sendable, Equatable {
    case router, gateUp, down

    /// The layer and the kind of a tensor name in that layout, or nil for any other name.
    public static func parse(_ name: String) -> (layer: Int, kind: FusedMixtralTensor)? {
        let prefix = "model.layers."
        guard name.hasPrefix(prefix) else { return nil }
        let tail = name.dropFirst(prefix.count)
        guard let dot = tail.firstIndex(of: "."), tail[..<dot].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let layer = Int(tail[..<dot]) else { return nil }
        switch tail[tail.index(after: dot)...] {
        case "mlp.gate.weight": return (layer, .router)
        case "mlp.experts.gate_up_proj": return (layer, .gateUp)
        case "mlp.experts.down_proj": return (layer, .down)
        default: return nil
        }
    }
}
