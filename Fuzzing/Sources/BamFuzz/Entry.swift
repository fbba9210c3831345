import BamFuzzTargets
import Foundation

// libFuzzer's two entry points. The target is chosen by BAM_FUZZ_TARGET (libFuzzer owns the
// command line); BAM_FUZZ_TARGET=list prints the targets, one per line: name, -max_len, summary.

nonisolated(unsafe) private var selected: FuzzTargets.Target?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<Int32>,
                             _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    let name = ProcessInfo.processInfo.environment["BAM_FUZZ_TARGET"] ?? ""
    if name == "list" {
        for t in FuzzTargets.all { print("\(t.name)\t\(t.maxLength)\t\(t.summary)") }
        exit(0)
    }
    guard let target = FuzzTargets.named(name) else {
        FileHandle.standardError.write(Data("BamFuzz: set BAM_FUZZ_TARGET to one of \(FuzzTargets.all.map(\.name).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    selected = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    selected!.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

// SwiftPM links an executable target with `main` defined as `<Target>_main` (so that tests can
// link executables), which would hide libFuzzer's own `main`; this is that function, doing what
// libFuzzer's `main` does: hand the command line and the callback to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("BamFuzz_main")
public func bamFuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, fuzzerTestOneInput)
}
