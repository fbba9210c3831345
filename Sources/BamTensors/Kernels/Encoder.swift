import Foundation

/// Token embedding lookup: out[n] = wte[tokens[n]].
/// out (N, C); tokens (N); wte (V, C).
public func encoderForward(_ out: UnsafeMutablePointer<Float>, _ tokens: UnsafePointer<Int32>,
                           _ wte: UnsafePointer<Float>, N: Int, C: Int) {
    for n in 0..<N { (out + n * C).update(from: wte + Int(tokens[n]) * C, count: C) }
}

/// dwte[tokens[n]] += dout[n]. With tied embeddings the lm_head's gradient lands in the same
/// buffer (the output projection's weight gradient is accumulated into it as well).
/// `paddingToken`'s row receives nothing, as torch's nn.Embedding(padding_idx: pad_token_id)
/// does in every transformers model whose config names a pad token.
/// dwte (V, C); dout (N, C); tokens (N).
public func encoderBackward(_ dwte: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>,
                            _ tokens: UnsafePointer<Int32>, N: Int, C: Int, paddingToken: Int32? = nil) {
    for n in 0..<N where tokens[n] != paddingToken {
        let d = dwte + Int(tokens[n]) * C, g = dout + n * C
        for i in 0..<C { d[i] += g[i] }
    }
}

/// Naive twin of `encoderBackward`: dwte += onehot(tokens)^T dout, row by row of the vocabulary,
/// accumulated in double (the padding token's row excluded).
/// dwte (V, C); dout (N, C); tokens (N).
public func encoderBackwardNaive(_ dwte: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>,
                                 _ tokens: UnsafePointer<Int32>, N: Int, C: Int, V: Int, paddingToken: Int32? = nil) {
    for v in 0..<V where Int32(v) != paddingToken {
        for i in 0..<C {
            var s = 0.0
            for n in 0..<N where Int(tokens[n]) == v { s += Double(dout[n * C + i]) }
            dwte[v * C + i] += Float(s)
        }
    }
}
