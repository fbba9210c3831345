import ArgumentParser
import BamModels
import Foundation

struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "One forward pass over exactly the given token ids (nothing added); writes float32 logits [T, V] as .npy.")

    @Option(help: "Model PATH.")
    var model: String

    @Option(help: "Token ids, comma- or space-separated.")
    var ids: String

    @Option(name: .customLong("logits-out"), help: "Output .npy file for the logits [T, V].")
    var logitsOut: String

    @OptionGroup var runOptions: RunOptions

    func run() throws {
        let tokens = try parseIds(ids, what: "--ids")
        guard !tokens.isEmpty else { throw ValidationError("--ids is empty") }
        let ckpt = try Checkpoint.open(model)
        let transformer = try Transformer.load(ckpt, weights: runOptions.weights, kvCache: runOptions.kvCache)
        let logits = try transformer.forward(tokens: tokens, cache: transformer.makeCache(capacity: tokens.count))
        try NumPy.write(logits.data, shape: logits.shape, to: URL(fileURLWithPath: logitsOut))
        printError("wrote logits \(logits.shape) to \(logitsOut)")
    }
}
