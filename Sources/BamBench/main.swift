// bam-bench: benchmarks that report ratios against a baseline measured in the same run
// (a raw cblas_sgemm, a file copy, ...), because these machines are noisy. Not part of the tests.
//
//   swift run -c release BamBench perplexity [--chunks N] [--model DIR]
//   swift run -c release BamBench tokenizer TOKENIZER.json TEXT
//   swift run -c release BamBench dequant [--values N]        (ggml block types, MB/s)
//   swift run -c release BamBench gguf-load --model X.gguf    (tools/bench_gguf_load.py compares llama.cpp)
//   swift run -c release BamBench kernels [--rows N] [--cols N] [--tokens T] [--rounds R]
//   swift run -c release BamBench prefill [--model DIR] [--tokens 512] [--weights W] [--rounds R] [--json]
//   swift run -c release BamBench decode [--model DIR] [--tokens 128] [--past 1] [--weights f32,bf16,q8_0] [--kv-cache f32|f16] [--rounds R] [--json]
//   swift run -c release BamBench bam [--attention expert-kv|shared-kv] [--decode 64] [--past 64] [--kv-cache f32|f16] [--rounds R]
//   swift run -c release BamBench info      (what the benchmarks run on, one "name: value" per line; tools/bench reads it)
import BamModels
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else {
    print("usage: BamBench perplexity|tokenizer|make-model ... (see the header of Sources/BamBench/main.swift)")
    exit(2)
}
do {
    switch command {
    case "perplexity": try runPerplexityBench(arguments: Array(arguments.dropFirst()))
    case "make-model": try runMakeModel(arguments: Array(arguments.dropFirst()))
    case "gemm": print(String(format: "sgemm ceiling: %.1f GFLOP/s", gemmCeiling()))
    case "info":
        print("OpenBLAS kernels: \(BLASThreads.kernels)")
        print("workers: \(BLASThreads.defaultCount)")
    default:
        if let extra = extraBenchmarks[command] {
            try extra(Array(arguments.dropFirst()))
        } else {
            print("unknown benchmark \(command)")
            exit(2)
        }
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
