import ArgumentParser
import BamCorpora
import BamFormats
import Foundation

extension CorpusDomain: ExpressibleByArgument {}
extension CorpusSplit: ExpressibleByArgument {}

/// `bam-mix corpus`: the project's own domain corpora (docs/corpora.md).
struct CorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corpus",
        abstract: "Generate a domain corpus (math, code, knowledge, general) with train and held-out splits.",
        discussion: """
            The text is a function of --domain, --split, --seed and --bytes only (and --world-seed for knowledge \
            and general): the same arguments give the same bytes on every machine. Documents are separated by an \
            empty line; generation stops at the first document boundary at or past --bytes. Train and held-out \
            never share a document whatever the seeds (knowledge: never a sentence; held-out articles restate \
            training facts in other words). The file is written under a temporary name and renamed when complete. \
            --list describes the domains.
            """)

    @Option(help: "The domain (--list describes them).")
    var domain: CorpusDomain?

    @Option(help: "The split.")
    var split: CorpusSplit = .train

    @Option(help: "Size in bytes (whole documents; at least this many).")
    var bytes: Int = 1_000_000

    @Option(help: "Seed of the document stream.")
    var seed: UInt64 = 1

    @Option(name: .customLong("world-seed"), help: "Seed of the knowledge world (the same for train and held-out).")
    var worldSeed: UInt64 = KnowledgeWorld.defaultSeed

    @Option(help: ArgumentHelp("Output file (default: standard output).", valueName: "file"))
    var out: String?

    @Flag(help: "Describe the domains and exit.")
    var list = false

    func validate() throws {
        if list { return }
        guard domain != nil else { throw ValidationError("give --domain math|code|knowledge|general (or --list)") }
        guard bytes > 0 else { throw ValidationError("--bytes must be positive, got \(bytes)") }
        guard bytes <= 1 << 31 else { throw ValidationError("--bytes \(bytes) is more than 2 GiB; generate several files") }
    }

    func run() throws {
        if list {
            for d in CorpusDomain.allCases { print("\(d.rawValue): \(d.summary)") }
            let world = KnowledgeWorld.shared(seed: worldSeed)
            print("""
                knowledge world \(worldSeed): \(world.countries.count) countries, \(world.cities.count) cities, \
                \(world.rivers.count) rivers, \(world.mountains.count) mountains, \(world.people.count) people, \
                \(world.companies.count) companies; \(world.facts.count) facts in \(world.articles.count) articles
                """)
            return
        }
        let options = CorpusOptions(domain: domain!, split: split, seed: seed, bytes: bytes, worldSeed: worldSeed)
        let started = Date()
        let docs = Corpus.documents(options)
        let text = docs.joined(separator: Corpus.documentSeparator) + "\n"
        let data = Data(text.utf8)
        let seconds = Date().timeIntervalSince(started)
        if let out {
            try writeFileAtomically(data, to: URL(fileURLWithPath: out))
            printError("corpus: \(domain!.rawValue)/\(split.rawValue) seed \(seed): \(data.count) bytes, "
                + "\(docs.count) documents in \(String(format: "%.2f", seconds)) s -> \(out)")
        } else {
            FileHandle.standardOutput.write(data)
        }
    }
}
