import ArgumentParser
import BamModels
import BamTokenizers
import Foundation

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text with the KV cache (prefill the prompt once, then one token at a time).")

    @Option(help: "Model PATH.")
    var model: String

    @Option(help: "The prompt text (BOS is added when the tokenizer adds it).")
    var prompt: String

    @Option(name: .customLong("max-tokens"), help: "Maximum new tokens.")
    var maxTokens = 128

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0.8

    @Option(name: .customLong("top-k"), help: "Sample among the K most likely tokens (0 = all).")
    var topK = 0

    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold (1 = off).")
    var topP: Float = 1

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    @Flag(name: .customLong("ignore-eos"), help: "Do not stop at the end-of-sequence token.")
    var ignoreEOS = false

    @Flag(help: "Print one JSON document (text, token counts, prefill and decode seconds and tokens/s) instead of streaming the text.")
    var json = false

    @OptionGroup var runOptions: RunOptions

    func run() throws {
        let ckpt = try Checkpoint.open(model)
        let tokenizer = try loadTokenizer(for: ckpt)
        let transformer = try Transformer.load(ckpt, weights: runOptions.weights, kvCache: runOptions.kvCache)
        let ids = tokenizer.encode(prompt, addSpecialTokens: true)
        var stop = Set(ckpt.config.eosTokenIds)
        if let e = tokenizer.eosTokenId { stop.insert(e) }
        if ignoreEOS { stop = [] }
        let options = SamplingOptions(temperature: temperature, topK: topK, topP: topP, seed: seed, maxTokens: maxTokens,
                                      stopTokens: stop)
        if !json { FileHandle.standardOutput.write(Data(prompt.utf8)) }
        var generated: [Int] = []
        var printed = ""
        let start = Date()
        // The first token is sampled from the prompt's logits: everything before it is the prefill,
        // everything after it one single-token forward per token (the last one's output unused).
        var firstToken: Date?
        let out = try transformer.generate(prompt: ids, options: options) { token in
            if firstToken == nil { firstToken = Date() }
            generated.append(token)
            if json { return true }
            // Decode the whole continuation and print what is new, so multi-byte characters split
            // across tokens appear once complete.
            let text = tokenizer.decode(generated, skipSpecialTokens: true)
            if text.hasPrefix(printed), !text.hasSuffix("\u{FFFD}") {
                FileHandle.standardOutput.write(Data(text.dropFirst(printed.count).utf8))
                printed = text
            }
            return true
        }
        let end = Date()
        let rest = tokenizer.decode(out, skipSpecialTokens: true)
        let s = end.timeIntervalSince(start)
        if json {
            let prefill = (firstToken ?? end).timeIntervalSince(start)
            // A stop token ends the loop before its forward; otherwise every token had one.
            let forwards = out.last.map { options.stopTokens.contains($0) } == true ? out.count - 1 : out.count
            let decode = end.timeIntervalSince(firstToken ?? end)
            try emitJSON(GenerateTiming(text: rest, promptTokens: ids.count, generatedTokens: out.count, seconds: s,
                                        prefillSeconds: prefill, prefillTokensPerSecond: Double(ids.count) / prefill,
                                        decodeForwards: forwards, decodeSeconds: decode,
                                        decodeTokensPerSecond: decode > 0 ? Double(forwards) / decode : 0))
            return
        }
        if rest.hasPrefix(printed) { FileHandle.standardOutput.write(Data(rest.dropFirst(printed.count).utf8)) }
        FileHandle.standardOutput.write(Data("\n".utf8))
        printError(String(format: "%d prompt + %d generated tokens in %.2f s (%.1f tokens/s)", ids.count, out.count, s, Double(out.count) / s))
    }
}

/// `generate --json`: the continuation and where the time went. Prefill is the prompt's forward pass
/// up to the first sampled token; decode is the single-token forwards after it.
struct GenerateTiming: Encodable {
    let text: String
    let promptTokens, generatedTokens: Int
    let seconds, prefillSeconds, prefillTokensPerSecond: Double
    let decodeForwards: Int
    let decodeSeconds, decodeTokensPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case text, seconds
        case promptTokens = "prompt_tokens", generatedTokens = "generated_tokens"
        case prefillSeconds = "prefill_seconds", prefillTokensPerSecond = "prefill_tokens_per_second"
        case decodeForwards = "decode_forwards", decodeSeconds = "decode_seconds"
        case decodeTokensPerSecond = "decode_tokens_per_second"
    }
}
