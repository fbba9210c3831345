import ArgumentParser
import BamFormats
import BamTensors

@main
struct BamMix: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bam-mix",
        abstract: "Branch-Train-MiX and Branch-Attend-Mix on CPU: mix dense experts into MoE models, run, train and compare them.",
        discussion: """
        A model PATH is an HF directory (config.json + *.safetensors, sharded or not), a .gguf file, or
        (read-only) a directory of PyTorch pytorch_model*.bin files. Set BAM_MIX_THREADS to limit the cores used.
        """,
        // The second line names the kernels this CPU runs (benchmarks print it beside their numbers).
        version: BamMixVersion.current + "\nkernels: \(WeightKernels.active.name) (CPU: \(KernelFamily.cpuFeatures.joined(separator: " ")))",
        subcommands: [
            InspectCommand.self, ForwardCommand.self, TokenizeCommand.self, PerplexityCommand.self, MixCommand.self, ConvertCommand.self,
            GenerateCommand.self, CorpusCommand.self, InitCommand.self, TrainCommand.self, FinetuneCommand.self,
            CompareCommand.self, RoutesCommand.self, DemoCommand.self,
        ])

    /// ArgumentParser's entry point, after the interrupt handler is in place: Ctrl-C stops a long
    /// job with a message and removes its unfinished temporary outputs (docs/reliability.md).
    static func main() {
        TemporaryOutputs.installInterruptHandler(program: "bam-mix")
        // ArgumentParser's `main`, with library errors worded for the command line (flags, not API
        // option names; ErrorWording).
        do {
            var command = try parseAsRoot(nil)
            try command.run()
        } catch let error as BamError {
            exit(withError: CommandLineError(error: error))
        } catch {
            exit(withError: error)
        }
    }
}
