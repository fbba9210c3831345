// `BamBench tokenizer TOKENIZER.json TEXT [--runs N] [--ids-out FILE]`
//
// Times Tokenizer.encode on the whole text (one call, one thread, special tokens as the
// post-processor says), best of N runs after one warm-up, and prints seconds and MB/s.
// tools/bench_tokenizer.py runs this next to HF tokenizers on the same files and checks the ids
// written by --ids-out (one id per line) against HF's.
import BamTokenizers
import Foundation

func runTokenizerBench(arguments: [String]) {
    var args = arguments
    if args.first == "tokenizer" { args.removeFirst() }
    var runs = 5
    var idsOut: String?
    var positional: [String] = []
    var i = 0
    while i < args.count {
        switch args[i] {
        case "--runs" where i + 1 < args.count:
            runs = max(1, Int(args[i + 1]) ?? runs)
            i += 2
        case "--ids-out" where i + 1 < args.count:
            idsOut = args[i + 1]
            i += 2
        default:
            positional.append(args[i])
            i += 1
        }
    }
    func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("tokenizer bench: \(message)\n".utf8))
        exit(code)
    }
    guard positional.count == 2 else {
        fail("usage: BamBench tokenizer TOKENIZER.json TEXT [--runs N] [--ids-out FILE]", code: 2)
    }

    let clock = ContinuousClock()
    func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
    do {
        var tokenizer: Tokenizer?
        let loadTime = try clock.measure { tokenizer = try Tokenizer.load(url: URL(fileURLWithPath: positional[0])) }
        guard let tok = tokenizer else { return }
        let text = try String(contentsOfFile: positional[1], encoding: .utf8)
        let megabytes = Double(text.utf8.count) / 1e6

        var ids = tok.encode(text)  // warm-up (also builds the Unicode class table)
        var best = Double.infinity
        for _ in 0..<runs {
            let d = clock.measure { ids = tok.encode(text) }
            best = min(best, seconds(d))
        }
        print("tokenizer: \(tok.kindDescription), \(tok.vocabSize) tokens, loaded in \(String(format: "%.3f", seconds(loadTime))) s")
        print("text: \(text.utf8.count) bytes -> \(ids.count) ids")
        print(String(format: "encode: %.4f s (best of %d), %.2f MB/s", best, runs, megabytes / best))
        if let idsOut {
            try Data(ids.map(String.init).joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: idsOut))
        }
    } catch {
        fail("\(error)", code: 1)
    }
}
