import BamFormats
import Foundation

/// The fuzz targets of docs/reliability.md: one function per parser that reads outside input.
/// Each takes arbitrary bytes and must return normally: any thrown error is a clean refusal, and
/// anything else (a trap, an out-of-bounds access, a hang, an allocation beyond the caps) is a
/// finding. The same functions run under libFuzzer (Fuzzing/, `tools/fuzz`) and, over the committed
/// corpus and every past finding, in the normal test suite (ReliabilityTests), so a crash once
/// found stays a regression test.
public enum FuzzTargets {
    public struct Target: Sendable {
        public let name: String
        /// What it feeds the bytes to, for `tools/fuzz --list` and docs/reliability.md.
        public let summary: String
        /// Largest input libFuzzer should generate (-max_len).
        public let maxLength: Int
        public let run: @Sendable (UnsafeRawBufferPointer) -> Void
    }

    public static let all: [Target] = [
        Target(name: "json", summary: "JSONParser (both duplicate-key modes), serialise/reparse round trip",
               maxLength: 16_384, run: JSONTarget.run),
        Target(name: "safetensors", summary: "SafetensorsFile: header, dtypes, shapes, data_offsets; every tensor decoded to float32",
               maxLength: 16_384, run: SafetensorsTarget.run),
        Target(name: "safetensors-index", summary: "SafetensorsStore over model.safetensors.index.json with two real shards beside it",
               maxLength: 4_096, run: SafetensorsIndexTarget.run),
        Target(name: "gguf", summary: "GGUFFile (header, metadata, tensor infos) + GGUFStore (names, config synthesis, tensor decoding)",
               maxLength: 65_536, run: GGUFTarget.run),
        Target(name: "gguf-tokenizer", summary: "GGUF vocabulary -> tokenizer.json (GGUFTokenizer) -> Tokenizer, encode/decode",
               maxLength: 65_536, run: GGUFTokenizerTarget.run),
        Target(name: "quant-blocks", summary: "every block/element type's reader (DTypeConversion.toFloat32) over arbitrary bytes",
               maxLength: 8_192, run: QuantBlocksTarget.run),
        Target(name: "zip", summary: "ZipArchive: end records, ZIP64, central directory, local headers; entries read with CRC and inflate",
               maxLength: 16_384, run: ZipTarget.run),
        Target(name: "pytorch", summary: "PyTorchBinFile: a whole torch.save zip (archive + restricted unpickler + storages)",
               maxLength: 16_384, run: PyTorchTarget.run),
        Target(name: "pickle", summary: "the restricted unpickler: bytes as data.pkl in a zip with fixed storages, through PyTorchBinFile",
               maxLength: 8_192, run: PickleTarget.run),
        Target(name: "npy", summary: "NumPy .npy reader (float and integer)",
               maxLength: 4_096, run: NumPyTarget.run),
        Target(name: "tokenizer", summary: "Tokenizer(jsonData:) for tokenizer.json, then encode/decode of fixed and input-derived text",
               maxLength: 65_536, run: TokenizerTarget.run),
        Target(name: "config", summary: "ModelConfig(json:) for every architecture, its limits, parameter/FLOP statistics (inspect)",
               maxLength: 8_192, run: ConfigTarget.run),
    ]

    public static func named(_ name: String) -> Target? { all.first { $0.name == name } }
}

/// A per-process scratch directory for targets whose parser reads from a path (mmap): on a
/// tmpfs when there is one, so an execution costs microseconds.
enum FuzzScratch {
    static let directory: URL = {
        let shm = URL(fileURLWithPath: "/dev/shm")
        let base = FileManager.default.isWritableFile(atPath: shm.path) ? shm : FileManager.default.temporaryDirectory
        let dir = base.appendingPathComponent("bam-fuzz-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// Writes `bytes` to `name` in the scratch directory and returns its URL.
    static func write(_ bytes: UnsafeRawBufferPointer, name: String, in dir: URL = directory) -> URL {
        let url = dir.appendingPathComponent(name)
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "fuzz scratch: cannot create \(url.path)")
        var done = 0
        while done < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + done, bytes.count - done)
            precondition(n > 0, "fuzz scratch: cannot write \(url.path)")
            done += n
        }
        close(fd)
        return url
    }

    static func write(_ bytes: [UInt8], name: String, in dir: URL = directory) -> URL {
        bytes.withUnsafeBytes { write($0, name: name, in: dir) }
    }
}

/// Reads a tensor's stored bytes back as float32, as every consumer of a store does; bounded so
/// one input cannot make the harness itself allocate much.
func decodeForFuzzing(_ store: any TensorStore, limitBytes: Int = 1 << 20) {
    for name in store.names {
        guard let info = store.info(name), info.byteCount <= limitBytes, info.count <= limitBytes else { continue }
        _ = try? store.tensor(name)
    }
}
