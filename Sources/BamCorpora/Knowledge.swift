/// The knowledge domain: encyclopaedia articles about `KnowledgeWorld`.
///
/// An article is the entity's name on a line of its own, then its lead fact and a random subset of
/// its other facts in a random order, four sentences to a paragraph line. Training articles phrase
/// each fact with any phrasing but the held-out one; held-out articles use only the held-out
/// phrasing. So the held-out split states the facts of the training split in sentences the training
/// split never contains: a model that learned the world predicts the names, years and numbers.
struct KnowledgeSource: DocumentSource {
    let world: KnowledgeWorld
    let split: CorpusSplit
    var rng: CorpusRandom

    mutating func next() -> String {
        let article = world.articles[rng.below(world.articles.count)]
        var chosen = article.body.filter { _ in rng.chance(80) }
        if chosen.isEmpty { chosen = [rng.pick(article.body)] }
        rng.shuffle(&chosen)
        var sentences: [String] = []
        for f in [article.lead] + chosen { sentences.append(phrasing(f)) }
        var lines = [article.title]
        var i = 0
        while i < sentences.count {
            lines.append(sentences[i..<min(i + 4, sentences.count)].joined(separator: " "))
            i += 4
        }
        return lines.joined(separator: "\n")
    }

    mutating func phrasing(_ f: Int) -> String {
        let phrasings = world.facts[f].phrasings
        let held = world.heldOutPhrasing(f)
        if split == .heldout { return phrasings[held] }
        var k = rng.below(phrasings.count - 1)
        if k >= held { k += 1 }
        return phrasings[k]
    }
}
