// swift-tools-version: 6.2
//
// bam-mix: Branch-Train-MiX and Branch-Attend-Mix on CPU.
//
// Module graph (imports point one way only):
//   BamTensors (tensors, dtypes, kernels; no I/O)
//     -> BamFormats (safetensors, GGUF, PyTorch .bin, HF configs, .npy)
//     -> BamTokenizers (tokenizer.json; uses BamFormats' JSON parser)
//   BamCorpora (generated domain corpora)          [depends on nothing; used by the CLI and tests]
//   BamPlots (SVG charts, HTML pages)               [depends on nothing; used by evaluation and the CLI]
//     -> BamModels (forward / backward of dense, Mixtral/BTX and BAM models)
//     -> BamMixCore (re-exports BamTensors, BamFormats, BamTokenizers, BamModels: `import BamMixCore`)
//     -> BamMixing, BamTraining, BamEvaluation (+ BamPlots, SVG), BamCorpora (generated domain text)
//     -> BamPipeline (the demo and the reproduction: corpora -> branch-train -> mix -> finetune -> compare)
//     -> BamMixCLI (the `bam-mix` executable; the only module that parses arguments or draws on a terminal)
import PackageDescription

// The numeric kernels are unusable at -Onone (10-50x slower), which would make even the tiny test
// models slow; they are compiled optimised in every configuration. A package that depends on
// bam-mix by version accepts these flags because the manifest is tools-version 6.2 (SwiftPM 6.1
// refused any unsafe flag in a versioned dependency: "contains unsafe build flags");
// tools/check-dependent builds such a dependent. No architecture-specific flag is global: code
// that needs an instruction set extension selects it at run time.
let optimised: [SwiftSetting] = [.unsafeFlags(["-O"])]

/// Reading and running models: tensors and kernels, file formats, tokenizers, the transformer.
let coreTargets = ["BamTensors", "BamFormats", "BamTokenizers", "BamModels"]

let package = Package(
    name: "bam-mix",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "bam-mix", targets: ["BamMixCLI"]),
        // Needs neither swift-crypto, nor the plots, nor the corpora.
        .library(name: "BamMixCore", targets: ["BamMixCore"] + coreTargets),
        // Everything: mixing (BTX, BAM, upcycling), training, evaluation, plots, corpora, the pipeline.
        .library(name: "BamMix", targets: ["BamMixCore"] + coreTargets
                    + ["BamMixing", "BamTraining", "BamEvaluation", "BamPlots", "BamCorpora", "BamPipeline"]),
        // The fuzz targets (docs/reliability.md): built instrumented by Fuzzing/Package.swift
        // (`tools/fuzz`), and replayed over their corpus by the normal tests.
        .library(name: "BamFuzzTargets", targets: ["BamFuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/vapor/console-kit", from: "4.16.2"),
        // SHA-256 of the mixer's provenance record (BamMixing) only.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Low-precision weight kernels in C, chosen at run time from the CPU's flags (no -m flags).
        // Optimised in debug builds too, like the Swift targets: at -O0 they run 5-10x slower
        // (measured), and clang has no per-function way to raise the level.
        .target(name: "BamKernelsC", cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "BamTensors", dependencies: ["CBLAS", "BamKernelsC"], swiftSettings: optimised),
        .target(name: "CShims"),
        .target(name: "BamFormats", dependencies: ["BamTensors", "CZlib", "CShims"], swiftSettings: optimised),
        .target(name: "BamTokenizers", dependencies: ["BamFormats"], swiftSettings: optimised),
        .target(name: "BamCorpora", swiftSettings: optimised),
        .target(name: "BamModels", dependencies: ["BamTensors", "BamFormats", "CBLAS"], swiftSettings: optimised),
        // `import BamMixCore`: re-exports the four modules of the BamMixCore product.
        .target(name: "BamMixCore", dependencies: coreTargets.map { .target(name: $0) }),
        .target(name: "BamMixing", dependencies: ["BamModels", "BamFormats", "BamTensors", "BamTokenizers",
                                                  .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: optimised),
        .target(name: "BamTraining", dependencies: ["BamModels", "BamFormats", "BamTensors", "BamTokenizers", "CBLAS"],
                swiftSettings: optimised),
        .target(name: "BamPlots"),
        .target(name: "BamEvaluation", dependencies: ["BamModels", "BamFormats", "BamTensors", "BamTokenizers", "BamPlots"],
                swiftSettings: optimised),
        .target(name: "BamPipeline",
                dependencies: ["BamModels", "BamMixing", "BamTraining", "BamEvaluation", "BamCorpora", "BamPlots", "BamTokenizers"],
                swiftSettings: optimised),
        .executableTarget(
            name: "BamMixCLI",
            dependencies: [
                "BamTensors", "BamFormats", "BamTokenizers", "BamModels", "BamMixing", "BamTraining", "BamEvaluation",
                "BamPlots", "BamCorpora", "BamPipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ConsoleKitTerminal", package: "console-kit"),
            ],
            swiftSettings: optimised),
        .target(name: "BamFuzzTargets", dependencies: ["BamTensors", "BamFormats", "BamTokenizers", "BamModels", "CZlib"],
                swiftSettings: optimised),
        .executableTarget(
            name: "BamBench",
            dependencies: ["BamTensors", "BamFormats", "BamTokenizers", "BamModels", "BamMixing", "BamTraining", "BamEvaluation", "CBLAS"],
            swiftSettings: optimised),
        .testTarget(
            name: "BamMixTests",
            dependencies: ["BamTensors", "BamFormats", "BamTokenizers", "BamModels", "BamMixing", "BamTraining",
                           "BamEvaluation", "BamPlots", "BamCorpora", "BamPipeline", "BamFuzzTargets",
                           // The CLI's wording of errors (ErrorWording) is tested directly.
                           "BamMixCLI"],
            swiftSettings: optimised),
    ]
)
