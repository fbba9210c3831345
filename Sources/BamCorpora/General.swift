/// The general domain: what the seed model is trained on.
///
/// Everyday narrative for most of the bytes, plus a small share of each domain so the seed has seen
/// every domain's characters and formats (as a general-purpose seed such as Llama 2 has in the
/// papers); the experts then specialise. Shares are by bytes and held exactly: the next document
/// comes from the source furthest below its share. Each share comes from that domain's own
/// generator with the same split, so general train text never contains a held-out document of any
/// domain.
struct GeneralSource: DocumentSource {
    /// Byte shares in percent: narrative, math, code, knowledge.
    static let shares: [(String, Int)] = [("narrative", 70), ("math", 10), ("code", 10), ("knowledge", 10)]

    var sources: [any DocumentSource]
    var written: [Int]

    init(options o: CorpusOptions) {
        func stream(_ name: String) -> CorpusRandom { CorpusRandom(seed: o.seed, "general", o.split.rawValue, name) }
        sources = [
            PartitionedSource(rng: stream("narrative"), split: o.split, candidate: { Narrative.document(&$0) }),
            PartitionedSource(rng: stream("math"), split: o.split, candidate: { MathProblems.document(&$0) }),
            PartitionedSource(rng: stream("code"), split: o.split, candidate: { CodeModules.document(&$0) }),
            KnowledgeSource(world: KnowledgeWorld.shared(seed: o.worldSeed), split: o.split, rng: stream("knowledge")),
        ]
        written = [0, 0, 0, 0]
    }

    mutating func next() -> String {
        // The source with the smallest written/share ratio (ties: the first); integer cross-multiplication.
        var best = 0
        for i in 1..<sources.count where written[i] * Self.shares[best].1 < written[best] * Self.shares[i].1 {
            best = i
        }
        let doc = sources[best].next()
        written[best] += doc.utf8.count + 2
        return doc
    }
}
