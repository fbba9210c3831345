import ArgumentParser
import BamEvaluation
import BamModels
import BamTokenizers
import Foundation

extension PerplexityScoring: ExpressibleByArgument {}

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "llama.cpp-compatible perplexity of a model on a text (or token-id) file.",
        discussion: """
        The text is tokenised once (with BOS when the tokenizer adds one) and cut into floor(tokens / ctx)
        chunks; each chunk's first token is replaced by BOS and the chunk is evaluated from an empty cache.
        `--scoring half` (the default, as llama-perplexity) scores positions ctx/2 .. ctx-2 predicting the next
        token; `--scoring full` scores every token after the first. PPL = exp(mean NLL), with its standard error.

        A Branch-Train-Merge ensemble of dense experts is scored with --model btm=PATH1@TRAIN1.txt,PATH2@TRAIN2.txt
        (add k=N to the list, or --btm-top-k N, for the top-k experts per context; k=all averages every expert
        and needs no training texts). See docs/evaluation.md.
        """)

    @Option(help: "Model PATH, or a BTM ensemble btm=PATH1@TRAIN1,PATH2@TRAIN2[,k=N].")
    var model: String

    @Option(name: .customLong("text-file"), help: "UTF-8 text to score (tokenised with the model's tokenizer.json).")
    var textFile: String?

    @Option(name: .customLong("ids-file"), help: "Token ids to score instead of text (whitespace- or comma-separated).")
    var idsFile: String?

    @Option(help: "Context length (tokens per chunk).")
    var ctx: Int = 512

    @Option(help: "Evaluate at most this many chunks.")
    var chunks: Int?

    @Option(help: "Which positions are scored: half (llama.cpp) or full.")
    var scoring: PerplexityScoring = .half

    @Flag(name: .customLong("no-bos"), help: "Do not replace each chunk's first token with BOS.")
    var noBOS = false

    @Option(name: .customLong("btm-top-k"), help: "BTM ensembles: experts averaged per context (unless the spec has k=N).")
    var btmTopK: Int = 1

    @OptionGroup var runOptions: RunOptions

    @Flag(help: "Print one JSON document (ppl, ppl_stderr, nll_mean, tokens_scored, chunks, ctx, scoring, seconds, tokens_per_second).")
    var json = false

    func validate() throws {
        if (textFile == nil) == (idsFile == nil) { throw ValidationError("give exactly one of --text-file and --ids-file") }
        if ctx < 4 { throw ValidationError("--ctx must be at least 4") }
        if btmTopK < 1 { throw ValidationError("--btm-top-k must be at least 1") }
    }

    func run() throws {
        let opened = try OpenedModel(spec: ModelSpec.parse(model), defaultBTMTopK: btmTopK)
        let (tokens, bos) = try loadTokens(checkpoint: opened.primary, textFile: textFile, idsFile: idsFile)
        let scoringModel = try opened.load(documentLength: ctx, weights: runOptions.weights, kvCache: runOptions.kvCache)
        let options = PerplexityOptions(contextLength: ctx, maxChunks: chunks, scoring: scoring, bosToken: noBOS ? nil : bos)
        let plan = try PerplexityPlan(tokens: tokens, options: options)
        let progress = Progress(title: "perplexity", total: plan.chunks.count, enabled: !json)
        let result: PerplexityResult
        do {
            result = try perplexity(model: scoringModel, tokens: tokens, options: options) { done, _, ppl in
                progress.update(done: done, detail: String(format: "PPL %.4f", ppl))
            }
            progress.finish()
        } catch {
            progress.fail()
            throw error
        }
        if json {
            try emitJSON(result)
        } else {
            print(String(format: "PPL = %.4f +/- %.5f", result.ppl, result.pplStderr))
            print("\(result.tokensScored) tokens scored in \(result.chunks) chunks of \(result.ctx) (scoring: \(result.scoring.rawValue)\(result.scoring == .half ? ", as llama-perplexity" : "")), "
                  + String(format: "%.2f s, %.0f tokens/s", result.seconds, result.tokensPerSecond))
            if let btm = scoringModel as? BTMEnsemble, let k = opened.btmTopK {
                let total = Double(max(1, btm.selections.reduce(0, +)))
                print("BTM top-\(k) of \(btm.experts.count) experts; share of scored positions choosing each: "
                      + btm.selections.map { String(format: "%.1f%%", Double($0) / total * 100) }.joined(separator: " / "))
            }
        }
    }
}

/// Token ids from a text file (through the checkpoint's tokenizer) or an ids file, and the BOS id
/// that replaces each chunk's first token (nil when the vocabulary does not add BOS).
func loadTokens(checkpoint: Checkpoint, textFile: String?, idsFile: String?) throws -> (tokens: [Int], bos: Int?) {
    if let idsFile {
        let text = try String(contentsOfFile: idsFile, encoding: .utf8)
        return (try parseIds(text, what: idsFile), checkpoint.config.bosTokenId)
    }
    guard let textFile else { throw BamError.usage("give --text-file or --ids-file") }
    let tokenizer = try loadTokenizer(for: checkpoint)
    let text: String
    do { text = try String(contentsOfFile: textFile, encoding: .utf8) } catch {
        throw BamError.io("\(textFile): cannot read as UTF-8 text (\(error.localizedDescription))")
    }
    // llama.cpp tokenises the whole file once, with BOS when the vocabulary adds one (and special-token
    // strings in the text as text), and replaces each chunk's first token with BOS in that case only.
    let tokens = perplexityTokens(text, tokenizer: tokenizer)
    return (tokens, tokenizer.addsBOS ? tokenizer.bosTokenId : nil)
}

/// The checkpoint's tokenizer (tokenizer.json beside the weights), with an error that says what to do.
func loadTokenizer(for checkpoint: Checkpoint) throws -> Tokenizer { try checkpoint.loadTokenizer() }
