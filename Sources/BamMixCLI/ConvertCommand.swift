import ArgumentParser
import BamModels
import Foundation

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert between HF directories, GGUF files and PyTorch .bin checkpoints, with dtype casts.",
        discussion: """
        HF dir (Llama, Mistral, Qwen2, Mixtral, BAM) -> GGUF:  --output model.gguf [--dtype f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1]
        GGUF (any readable type) -> GGUF, re-quantised:         --output out.gguf --dtype f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1
        GGUF -> HF dir:                                         --output DIR [--dtype f32|f16|bf16]
        PyTorch pytorch_model*.bin dir -> HF safetensors dir:   --output DIR [--dtype ...]
        HF dir -> HF dir with another dtype:                    --output DIR --dtype f16
        GGUF inputs may hold F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, Q8_K, IQ4_NL or IQ4_XS
        tensors (dequantised on the way). The q* outputs are bit-identical to the gguf Python package's quantisers;
        k-quants and IQ4 are not written (use llama-quantize). llama.cpp runs the Llama/Mistral/Qwen2/Mixtral GGUFs; BAM GGUFs use a custom architecture "bam"
        that only bam-mix reads (docs/gguf.md). The output runs in `forward` with the same logits, up to the
        dtype's rounding. Outputs are written under a temporary name and renamed when complete.
        """)

    @Option(help: "Input model PATH (HF directory, .gguf file, or a directory of pytorch_model*.bin).")
    var input: String

    @Option(help: "Output: a .gguf file, or an HF directory (must not exist).")
    var output: String

    @Option(help: "Output dtype: f32, f16, bf16, or q8_0, q4_0, q4_1, q5_0, q5_1 (GGUF only); default: the input's.")
    var dtype: String?

    func run() throws {
        let ckpt = try Checkpoint.open(input)
        var d: DType? = nil
        if let dtype {
            guard let parsed = DType(userName: dtype), GGUFConverter.writableTypes.contains(parsed) else {
                throw ValidationError("--dtype must be one of \(GGUFConverter.writableTypes.map { $0.rawValue.lowercased() }.joined(separator: ", ")) (bam-mix writes no k-quants or IQ types; llama-quantize does)")
            }
            d = parsed
        }
        let out = URL(fileURLWithPath: output)
        if FileManager.default.fileExists(atPath: out.path) {
            throw BamError.usage("\(out.path) already exists; choose a new output path")
        }
        let start = Date()
        if out.pathExtension.lowercased() == "gguf" {
            if ckpt.container == .gguf, d == nil {
                throw BamError.usage("the input is already GGUF; pass --dtype to re-quantise it (e.g. --dtype q8_0), or write an HF directory")
            }
            let report = try GGUFConverter.hfToGGUF(ckpt, output: out, dtype: d)
            for n in report.notes { printError(n) }
        } else if ckpt.container == .gguf {
            if let d, d.isQuantized { throw BamError.usage("HF directories cannot hold \(d.rawValue); choose f32, f16 or bf16, or a .gguf output") }
            let report = try GGUFConverter.ggufToHF(ckpt, outputDirectory: out, dtype: d)
            for n in report.notes { printError(n) }
        } else {
            // HF or PyTorch .bin -> HF safetensors, every tensor under its own name, cast on the way.
            if let d, d.isQuantized { throw BamError.usage("safetensors cannot hold \(d.rawValue); convert to a .gguf output for \(d.rawValue.lowercased())") }
            var json = ckpt.config.raw
            if let d { json["torch_dtype"] = nil; json["dtype"] = .string(d.torchName) }
            let entries = ckpt.store.names.map { name -> TensorWriteEntry in
                let info = ckpt.store.info(name)!
                let target = d ?? (info.dtype.isQuantized ? .f32 : info.dtype)
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
