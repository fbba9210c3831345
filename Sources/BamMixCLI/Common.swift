import ArgumentParser
import BamEvaluation
import BamModels
import ConsoleKitTerminal
import Foundation

/// Writes a string to standard error (errors, warnings and stage lines never go to stdout, which
/// carries only results — and only the JSON document under `--json`).
func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

func warn(_ s: String) { printError("warning: \(s)") }

/// Prints an Encodable as one JSON document on stdout (or into `file`).
func emitJSON<T: Encodable>(_ value: T, to file: String? = nil) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(value)
    if let file {
        try writeFileAtomically(data + Data("\n".utf8), to: URL(fileURLWithPath: file))
    } else {
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}

/// Parses "1,2,3" or "1 2 3" into token ids.
func parseIds(_ s: String, what: String) throws -> [Int] {
    let parts = s.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" || $0 == "\t" })
    var ids: [Int] = []
    for p in parts {
        guard let v = Int(p) else { throw ValidationError("\(what): `\(p)` is not an integer token id") }
        ids.append(v)
    }
    return ids
}

/// A progress bar with a count and an ETA on a terminal (console-kit's ActivityIndicator); when
/// stdout is not a terminal, one line on stderr instead.
/// Disabled entirely under `--json`, whose stdout must hold only the JSON document.
final class Progress: @unchecked Sendable {
    struct Bar: ActivityBar {
        var title: String
        var done = 0
        var total = 1
        var detail = ""
        var started = Date()

        func renderActiveBar(tick: UInt, width: Int) -> ConsoleText {
            let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
            let filled = Int(fraction * Double(width))
            let eta = Progress.eta(since: started, done: done, total: total)
            let bar = "[" + String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled) + "]"
            return (bar + " \(done)/\(total)  ETA \(formatDuration(eta))  \(detail)").consoleText(.info)
        }
    }

    private let indicator: ActivityIndicator<Bar>?
    // For the lines `reportIfDue` prints without a terminal.
    private let title: String, total: Int, enabled: Bool, started = Date()
    private var lastReport = Date()

    /// Seconds left at the rate since `started` (NaN before the first step).
    static func eta(since started: Date, done: Int, total: Int) -> Double {
        done > 0 ? Date().timeIntervalSince(started) / Double(done) * Double(total - done) : .nan
    }

    init(title: String, total: Int, enabled: Bool = true) {
        self.title = title
        self.total = total
        self.enabled = enabled
        guard enabled else {
            indicator = nil
            return
        }
        let terminal = Terminal()
        guard terminal.supportsANSICommands else {
            // Not a terminal: one line per stage, on stderr, so stdout keeps only results.
            printError("\(title): \(total) step(s)")
            indicator = nil
            return
        }
        indicator = Bar(title: title, total: total).newActivity(for: terminal)
        indicator?.start(refreshRate: 100)
    }

    /// True when a bar is drawn (a terminal); false when only stage lines go to stderr.
    var isInteractive: Bool { indicator != nil }

    func update(done: Int, detail: String = "") {
        indicator?.activity.done = done
        indicator?.activity.detail = detail
    }

    /// Without a terminal (a log file, CI) no bar is drawn: a line with the count and ETA, at most
    /// once per `interval` seconds, for stages that run for minutes. Nothing on a terminal or when
    /// disabled.
    func reportIfDue(done: Int, interval: TimeInterval = 60) {
        guard enabled, !isInteractive, done > 0, done < total, Date().timeIntervalSince(lastReport) >= interval else { return }
        lastReport = Date()
        printError("\(title): \(done)/\(total)  ETA \(formatDuration(Progress.eta(since: started, done: done, total: total)))")
    }

    func finish() { indicator?.succeed() }
    func fail() { indicator?.fail() }
}

extension WeightLoading: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }
    public static var allValueStrings: [String] { ["stored"] + WeightLoading.kernelTypes.map { $0.rawValue.lowercased() } }
}

extension KVCacheType: ExpressibleByArgument {}

/// `--weights` and `--kv-cache`, shared by every command that runs a model: the types its
/// matrices and its KV cache are kept in.
struct RunOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Type the model's matrices are kept and multiplied in: stored (as the file has them, used in place), or f32, bf16, f16 or q8_0 (converted at load; q8_0 runs a 4/5/6-bit GGUF fastest).",
        valueName: "type"))
    var weights: WeightLoading = .stored

    @Option(name: .customLong("kv-cache"), help: ArgumentHelp(
        "Type the KV cache keeps keys and values in: f32 (the logits equal transformers') or f16 (llama.cpp's default: half the cache memory and decode's cache reads; logits move by about f16's precision).",
        valueName: "type"))
    var kvCache: KVCacheType = .f32
}
