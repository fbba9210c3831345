// The ops of inference and training, after llm.c: one free function per op and direction, one
// file per op, and in that file the optimised kernel, its backward and their naive twins side by
// side (Norms, Rope, Activations (softmax, SwiGLU), Attention (over a KV cache for inference;
// causal over B sequences for training), Encoder, Linear, CrossEntropy, Router).
//
//   xxxForward(outputs, saved activations, inputs, weights, dimensions)
//   xxxBackward(input gradients, weight gradients, output gradient, saved activations, inputs, weights, dimensions)
//   xxxNaive: the same contract, written as plain loops accumulating in double; the tests
//             (KernelTests, TrainingOpTests) hold each kernel to its twin and each backward to
//             finite differences.
//
// Backward functions ACCUMULATE (+=) into every gradient they are given; zeroing is always an
// explicit call by the caller. A nil weight gradient means the weight is frozen: that product is
// skipped.
//
// Two ops keep their forward elsewhere, for a reason: the linear layer's forward `linearForward`
// and its twin sit in BLAS.swift with `gemm`/`gemv`, whose row/column blocking they share (Linear.swift
// holds the backward); the router's forward `route` is here but the routing *rule* of a config
// (BamModels/Routing.swift) dispatches forward and backward, because the rule is a model type.
//
// Dimensions (the glossary of BamTensors/Tensor.swift): B sequences of T tokens, N = B*T token rows,
// C hidden, V vocabulary, NH query heads, NKV key/value heads, HS head size, Q = NH*HS,
// KV = NKV*HS, F FFN width, E experts, K experts per token. Row-major float32 throughout.
import Foundation

/// Zeroes `count` floats (the explicit call before a backward accumulates into a buffer).
@inline(__always)
public func zeroGradient(_ p: UnsafeMutablePointer<Float>, count: Int) {
    p.update(repeating: 0, count: count)
}
