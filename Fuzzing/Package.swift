// swift-tools-version: 6.1
//
// The libFuzzer build of bam-mix's fuzz targets (docs/reliability.md), kept in its own package so
// that the main build and `swift test` never see the fuzzer flags. Build and run through
// `tools/fuzz`, which passes `-Xswiftc -sanitize=fuzzer,address` so that every Swift module of
// the parsers is instrumented for coverage and AddressSanitizer; the executable has no main of
// its own (libFuzzer provides it) and reads the target's name from BAM_FUZZ_TARGET.
import PackageDescription

let package = Package(
    name: "bam-mix-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "bam-mix", path: "..")],
    targets: [
        .executableTarget(
            name: "BamFuzz",
            dependencies: [.product(name: "BamFuzzTargets", package: "bam-mix")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ]
)
