// Training ops, after llm.c: one free function per op and direction.
//
//   xxxForward(outputs, saved activations, inputs, weights, dimensions)
//   xxxBackward(input gradients, weight gradients, output gradient, saved activations, inputs, weights, dimensions)
//
// Backward functions ACCUMULATE (+=) into every gradient they are given; zeroing is always an
// explicit call by the caller. A nil weight gradient means the weight is frozen: that product is
// skipped. Each optimised op has a naive twin (loops, double accumulation) that the tests hold it to.
//
// Dimensions (the glossary of BamTensors/Tensor.swift): B sequences of T tokens, N = B*T token rows,
// C hidden, V vocabulary, NH query heads, NKV key/value heads, HS head size, Q = NH*HS,
// KV = NKV*HS, F FFN width, E experts, K experts per token. Row-major float32 throughout.
import BamTensors
import Foundation

/// Zeroes `count` floats (the explicit call before a backward accumulates into a buffer).
@inline(__always)
public func zeroGradient(_ p: UnsafeMutablePointer<Float>, count: Int) {
    p.update(repeating: 0, count: count)
}
