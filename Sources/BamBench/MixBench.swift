import BamMixing
import BamModels
import Foundation

/// Issue 4's mixing benchmark: BTX of four 58M-shape f32 experts, timed against `cat`-ing the
/// four input files into one output in the same run, with the mixer's peak RSS (measured in a
/// child process), also at twice the layer count to show that memory does not grow with depth.
func runMixBench(arguments: [String]) throws {
    let repeats = option(arguments, "--repeats").flatMap(Int.init) ?? 3
    for layers in [8, 16] {
        let experts = try (1...4).map { try ensureModel(.llama58m, name: "llama58m-L\(layers)-e\($0)", seed: $0, layers: layers) }
        let files = experts.map { $0.appendingPathComponent("model.safetensors").path }
        let inputBytes = files.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
        let out = benchDirectory().appendingPathComponent("mix-out")
        var catTimes: [Double] = [], catSyncTimes: [Double] = [], mixTimes: [Double] = [], rss: [Int] = []
        for _ in 0..<repeats {
            let catTarget = benchDirectory().appendingPathComponent("cat-out.bin").path
            catTimes.append(try seconds { try shell("cat \(files.joined(separator: " ")) > \(catTarget)") })
            catSyncTimes.append(try seconds { try shell("cat \(files.joined(separator: " ")) > \(catTarget) && sync \(catTarget)") })
            try? FileManager.default.removeItem(atPath: catTarget)
            try? FileManager.default.removeItem(at: out)
            let t = try seconds {
                let child = try runSelfCapturing(["mix-child", out.path] + experts.map(\.path))
                rss.append(Int(child.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
            }
            mixTimes.append(t)
        }
        let outBytes = ((try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []).reduce(0) {
            $0 + ((try? FileManager.default.attributesOfItem(atPath: out.appendingPathComponent($1).path)[.size] as? Int) ?? 0)
        }
        try? FileManager.default.removeItem(at: out)
        let cat = catTimes.min()!, catSync = catSyncTimes.min()!, mix = mixTimes.min()!
        print("BTX mix of 4 experts, \(layers) layers: inputs \(inputBytes / 1_000_000) MB, output \(outBytes / 1_000_000) MB (best of \(repeats))")
        print(String(format: "  mix (incl. process start, validation, SHA-256 of inputs, fsync)  %.2f s", mix))
        print(String(format: "  cat of the inputs                %.2f s   -> mix / cat       = %.2fx (target <= 2)", cat, mix / cat))
        print(String(format: "  cat + sync of its output         %.2f s   -> mix / cat+sync  = %.2fx", catSync, mix / catSync))
        print(String(format: "  mixer peak RSS                   %.0f MB (target < 400)", Double(rss.max() ?? 0) / 1e6))
    }
}

/// `mix-child OUT EXPERT...`: runs one BTX mix and prints its peak RSS in bytes.
func runMixChild(arguments: [String]) throws {
    let o = MixOptions(method: .btx, experts: Array(arguments.dropFirst()), output: URL(fileURLWithPath: arguments[0]))
    _ = try Mixer.run(o)
    print(peakRSS())
}

func shell(_ command: String) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command]
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw BamError.io("`\(command)` failed") }
}

func runSelfCapturing(_ arguments: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw BamError.io("\(arguments.joined(separator: " ")) failed") }
    return String(decoding: data, as: UTF8.self)
}
