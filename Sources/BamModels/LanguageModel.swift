import BamTensors
import Foundation

/// Anything perplexity can score: a transformer, or an ensemble of them (BTM).
public protocol ScoringModel: AnyObject {
    var vocabularySize: Int { get }
    /// Evaluates `tokens` as one sequence from an empty context and returns, for each position p
    /// in `positions`, the negative log-likelihood of tokens[p + 1] given tokens[0...p].
    func negativeLogLikelihoods(_ tokens: [Int], positions: Range<Int>) throws -> [Double]
}

extension Transformer: ScoringModel {
    public var vocabularySize: Int { config.vocabSize }

    /// Projects the scored rows in blocks of 64, reducing each block to its NLLs at once, so the
    /// (rows, V) logits never exist whole (32 MB for 256 rows of a 32k vocabulary).
    public func negativeLogLikelihoods(_ tokens: [Int], positions: Range<Int>) throws -> [Double] {
        guard positions.upperBound < tokens.count else {
            throw BamError.usage("scored positions \(positions) need \(positions.upperBound + 1) tokens, have \(tokens.count)")
        }
        let hidden = try finalHidden(tokens: tokens, cache: makeCache(capacity: tokens.count), outputRows: positions)
        let V = config.vocabSize
        var out = [Double](repeating: 0, count: positions.count)
        let block = 64
        for b in stride(from: 0, to: positions.count, by: block) {
            let rows = b..<min(positions.count, b + block)
            let logits = logits(normalizedHidden: hidden, rows: rows)
            let lp = SendablePointer(logits.data)
            let targets = rows.map { tokens[positions.lowerBound + $0 + 1] }
            out.withUnsafeMutableBufferPointer { o in
                let op = SendablePointer(o.baseAddress! + rows.lowerBound)
                // Each row's log-sum-exp is independent; rows are split across workers.
                BLASThreads.parallelRanges(rows.count, minimumPerChunk: 8) { range in
                    for r in range {
                        let row = lp.pointer + r * V
                        op.pointer[r] = logSumExp(row, n: V) - Double(row[targets[r]])
                    }
                }
            }
        }
        return out
    }
}
