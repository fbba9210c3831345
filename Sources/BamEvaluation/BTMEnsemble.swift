import BamModels
import Foundation

// Branch-Train-Merge (Li et al. 2022; the tf-idf routing of c-BTM, Gururangan et al. 2023):
// no mixing at all. The dense experts stay separate models; for every prediction the top-k
// experts are chosen by the cosine similarity between the tf-idf vector of the context and each
// expert's mean training tf-idf vector, and their next-token probabilities are averaged
// (docs/methods.md: probabilities, not logits). "Context" here is exactly the tokens the experts see
// when they predict: the prefix tokens[0...p] of the chunk being scored (docs/evaluation.md).

/// The tf-idf statistics of the experts' training data and the per-prefix expert choice.
///
/// Dimensions: E experts, V vocabulary, T tokens of a chunk.
/// - Documents: each expert's training tokens cut into consecutive windows of `documentLength`
///   tokens (the last, shorter window kept); N documents over all experts.
/// - idf(v) = ln((1 + N) / (1 + df(v))) + 1 (the smoothed idf of scikit-learn's TfidfVectorizer),
///   df(v) = the number of documents containing v.
/// - A document's vector: tf(v) * idf(v) with tf the raw count, L2-normalised.
/// - Expert e's centroid m_e: the mean of its documents' normalised vectors.
/// - A context's vector c: raw counts of its tokens times idf (not normalised: cosine divides by
///   |c| anyway). similarity_e = c . m_e / (|c| |m_e|), 0 when either is the zero vector.
public struct TFIDFRouter: Sendable {
    public let vocabularySize: Int
    public let documentLength: Int
    public let idf: [Double]              // (V)
    public let centroids: [[Double]]      // (E, V)
    public let centroidNorms: [Double]    // (E)
    public let documentCounts: [Int]      // (E)

    public var experts: Int { centroids.count }

    /// `trainingTokens[e]`: expert e's training data as token ids.
    public init(trainingTokens: [[Int]], vocabularySize V: Int, documentLength: Int) throws {
        guard documentLength >= 1 else { throw BamError.usage("BTM document length must be at least 1, got \(documentLength)") }
        guard !trainingTokens.isEmpty else { throw BamError.usage("BTM needs at least one expert") }
        var documents: [[[Int]]] = []
        for (e, tokens) in trainingTokens.enumerated() {
            guard !tokens.isEmpty else {
                throw BamError.usage("BTM expert \(e + 1): its training text has no tokens; give a non-empty text with PATH@TRAIN.txt")
            }
            if let bad = tokens.first(where: { $0 < 0 || $0 >= V }) {
                throw BamError.mismatch("BTM expert \(e + 1): training token id \(bad) is outside the vocabulary (0..<\(V))")
            }
            documents.append(stride(from: 0, to: tokens.count, by: documentLength).map {
                Array(tokens[$0..<min(tokens.count, $0 + documentLength)])
            })
        }
        var df = [Int](repeating: 0, count: V)
        for docs in documents {
            for doc in docs { for v in Set(doc) { df[v] += 1 } }
        }
        let n = Double(documents.reduce(0) { $0 + $1.count })
        let idf = df.map { log((1 + n) / (1 + Double($0))) + 1 }
        var centroids: [[Double]] = []
        for docs in documents {
            var m = [Double](repeating: 0, count: V)
            for doc in docs {
                var counts: [Int: Int] = [:]
                for v in doc { counts[v, default: 0] += 1 }
                var norm2 = 0.0
                for (v, c) in counts { let w = Double(c) * idf[v]; norm2 += w * w }
                let inv = 1 / norm2.squareRoot()
                for (v, c) in counts { m[v] += Double(c) * idf[v] * inv }
            }
            let scale = 1 / Double(docs.count)
            for v in 0..<V where m[v] != 0 { m[v] *= scale }
            centroids.append(m)
        }
        self.vocabularySize = V
        self.documentLength = documentLength
        self.idf = idf
        self.centroids = centroids
        centroidNorms = centroids.map { $0.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        documentCounts = documents.map(\.count)
    }

    /// similarities[p][e] for the prefix tokens[0...p], every p in 0..<T, in O(T E) by updating
    /// the prefix's dot products and squared norm token by token:
    ///   dot_e += idf(v) m_e(v);  |c|^2 += ((n+1)^2 - n^2) idf(v)^2 = (2n + 1) idf(v)^2
    /// where n is v's count in the prefix before this token.
    public func prefixSimilarities(_ tokens: [Int]) -> [[Double]] {
        let E = experts
        var dots = [Double](repeating: 0, count: E)
        var norm2 = 0.0
        var counts: [Int: Int] = [:]
        var out: [[Double]] = []
        out.reserveCapacity(tokens.count)
        for v in tokens {
            if v >= 0 && v < vocabularySize {
                let w = idf[v]
                let n = counts[v, default: 0]
                counts[v] = n + 1
                norm2 += Double(2 * n + 1) * w * w
                for e in 0..<E { dots[e] += w * centroids[e][v] }
            }
            let cn = norm2.squareRoot()
            out.append((0..<E).map { e in cn > 0 && centroidNorms[e] > 0 ? dots[e] / (cn * centroidNorms[e]) : 0 })
        }
        return out
    }

    /// The naive twin of `prefixSimilarities` for one prefix: builds its tf-idf vector from scratch.
    public func similarities(context: [Int]) -> [Double] {
        var counts: [Int: Int] = [:]
        for v in context where v >= 0 && v < vocabularySize { counts[v, default: 0] += 1 }
        var norm2 = 0.0
        for (v, c) in counts { let w = Double(c) * idf[v]; norm2 += w * w }
        return (0..<experts).map { e in
            var dot = 0.0
            for (v, c) in counts { dot += Double(c) * idf[v] * centroids[e][v] }
            let cn = norm2.squareRoot()
            return cn > 0 && centroidNorms[e] > 0 ? dot / (cn * centroidNorms[e]) : 0
        }
    }

    /// The k experts of highest similarity, highest first; ties go to the lower expert index
    /// (so a context that shares no token with any training text picks experts 0..<k).
    public static func topK(_ similarities: [Double], k: Int) -> [Int] {
        let order = similarities.indices.sorted {
            similarities[$0] != similarities[$1] ? similarities[$0] > similarities[$1] : $0 < $1
        }
        return Array(order.prefix(k))
    }
}

/// A BTM ensemble as a `ScoringModel`, so `perplexity` and `compare` use it unchanged.
///
/// For a chunk, each expert that some scored position chooses runs the whole chunk once (all
/// positions in one forward pass); the per-position choice comes from the incremental tf-idf of
/// the prefix. The NLL at position p is
///   -log( (1/k) sum_{e in TopK(p)} P_e(tokens[p+1] | tokens[0...p]) )
/// computed as a log-sum-exp of the experts' log-probabilities.
public final class BTMEnsemble: ScoringModel {
    public let experts: [any ScoringModel]
    /// nil when every expert is always used (k = E): the uniform mixture needs no routing.
    public let router: TFIDFRouter?
    public let topK: Int
    public let vocabularySize: Int
    /// How many scored positions chose each expert, over every call so far (for reports).
    public private(set) var selections: [Int]

    public init(experts: [any ScoringModel], router: TFIDFRouter?, topK: Int) throws {
        guard !experts.isEmpty else { throw BamError.usage("a BTM ensemble needs at least one expert") }
        guard topK >= 1 else { throw BamError.usage("BTM top-k must be at least 1, got \(topK)") }
        let V = experts[0].vocabularySize
        for (i, e) in experts.enumerated() where e.vocabularySize != V {
            throw BamError.mismatch("BTM expert \(i + 1) has a vocabulary of \(e.vocabularySize) tokens, expert 1 has \(V); BTM averages next-token distributions, so every expert needs the same vocabulary")
        }
        if let router {
            guard router.experts == experts.count else {
                throw BamError.mismatch("BTM: \(experts.count) experts but tf-idf statistics for \(router.experts)")
            }
        } else if topK < experts.count {
            throw BamError.usage("BTM with top-\(topK) of \(experts.count) experts needs each expert's training text for the tf-idf routing (PATH@TRAIN.txt); without them only k = all (\(experts.count)) is possible")
        }
        self.experts = experts
        self.router = router
        self.topK = min(topK, experts.count)
        vocabularySize = V
        selections = [Int](repeating: 0, count: experts.count)
    }

    /// The experts chosen for each scored position (contexts tokens[0...p], p in `positions`).
    public func choices(_ tokens: [Int], positions: Range<Int>) -> [[Int]] {
        let E = experts.count
        guard topK < E, let router else { return positions.map { _ in Array(0..<E) } }
        let sims = router.prefixSimilarities(Array(tokens[0..<positions.upperBound]))
        return positions.map { TFIDFRouter.topK(sims[$0], k: topK) }
    }

    public func negativeLogLikelihoods(_ tokens: [Int], positions: Range<Int>) throws -> [Double] {
        guard positions.upperBound < tokens.count else {
            throw BamError.usage("scored positions \(positions) need \(positions.upperBound + 1) tokens, have \(tokens.count)")
        }
        let chosen = choices(tokens, positions: positions)
        var used = Set<Int>()
        for c in chosen { used.formUnion(c) }
        var nll: [Int: [Double]] = [:]
        for e in used.sorted() { nll[e] = try experts[e].negativeLogLikelihoods(tokens, positions: positions) }
        var out = [Double](repeating: 0, count: positions.count)
        for i in 0..<positions.count {
            let set = chosen[i]
            // log mean_e P_e = logsumexp_e(-nll_e) - log k
            var m = -Double.infinity
            for e in set { m = max(m, -nll[e]![i]) }
            var s = 0.0
            for e in set { s += exp(-nll[e]![i] - m) }
            out[i] = -(m + log(s) - log(Double(set.count)))
            for e in set { selections[e] += 1 }
        }
        return out
    }
}
