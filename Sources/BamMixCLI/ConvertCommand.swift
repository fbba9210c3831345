import ArgumentParser
import BamModels
import Foundation

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert between HF directories, GGUF files and PyTorch .bin checkpoints, with dtype casts.",
        discussion: """
        HF dir (Llama, Mistral, Qwen2, Mixtral, BAM) -> GGUF:  --output model.gguf [--dtype f32|f16|bf16|q8_0]
        GGUF -> HF dir:                                         --output DIR [--dtype f32|f16|bf16]
        PyTorch pytorch_model*.bin dir -> HF safetensors dir:   --output DIR [--dtype ...]
        HF dir -> HF dir with another dtype:                    --output DIR --dtype f16
        llama.cpp runs the Llama/Mistral/Qwen2/Mixtral GGUFs; BAM GGUFs use a custom architecture "bam"
        that only bam-mix reads (docs/gguf.md). The output runs in `forward` with the same logits, up to the
        dtype's rounding. Outputs are written under a temporary name and renamed when complete.
        """)

    @Option(help: "Input model PATH (HF directory, .gguf file, or a directory of pytorch_model*.bin).")
    var input: String

    @Option(help: "Output: a .gguf file, or an HF directory (must not exist).")
    var output: String

    @Option(help: "Output dtype: f32, f16, bf16 or q8_0 (GGUF only); default: the input's.")
    var dtype: String?

    func run() throws {
        let ckpt = try Checkpoint.open(input)
        var d: DType? = nil
        if let dtype {
            guard let parsed = DType(userName: dtype) else { throw ValidationError("--dtype must be f32, f16, bf16 or q8_0") }
            d = parsed
        }
        let out = URL(fileURLWithPath: output)
        if FileManager.default.fileExists(atPath: out.path) {
            throw BamError.usage("\(out.path) already exists; choose a new output path")
        }
        let start = Date()
        if out.pathExtension.lowercased() == "gguf" {
            guard ckpt.container != .gguf else { throw BamError.usage("the input is already GGUF; convert it to an HF directory, or pass --dtype with a directory output first") }
            let report = try GGUFConverter.hfToGGUF(ckpt, output: out, dtype: d)
            for n in report.notes { printError(n) }
        } else if ckpt.container == .gguf {
            guard d != .q8_0 else { throw BamError.usage("HF directories cannot hold Q8_0; choose f32, f16 or bf16") }
            let report = try GGUFConverter.ggufToHF(ckpt, outputDirectory: out, dtype: d)
            for n in report.notes { printError(n) }
        } else {
            // HF or PyTorch .bin -> HF safetensors, every tensor under its own name, cast on the way.
            guard d != .q8_0 else { throw BamError.usage("safetensors cannot hold Q8_0; convert to a .gguf output for q8_0") }
            var json = ckpt.config.raw
            if let d { json["torch_dtype"] = nil; json["dtype"] = .string(d.torchName) }
            let entries = ckpt.store.names.map { name -> TensorWriteEntry in
                let info = ckpt.store.info(name)!
                let target = d ?? (info.dtype == .q8_0 ? .f32 : info.dtype)
                return TensorWriteEntry(name: name, dtype: target, shape: info.shape) { write in
                    if info.dtype == target {
                        try write(try ckpt.store.bytes(name))
                    } else {
                        try TensorWriteEntry.float(name, try ckpt.store.tensor(name), as: target).produce(write)
                    }
                    ckpt.store.release(name)
                }
            }
            try CheckpointWriter.write(directory: out, config: json, entries: entries,
                                       extraFiles: CheckpointWriter.sideFiles(of: ckpt.directory))
        }
        print("wrote \(out.path) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
    }
}
