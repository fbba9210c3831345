import BamModels
import Foundation

/// Drop-Upcycling (Nakamura et al., "Drop-Upcycling: Training Sparse Mixture of Experts with
/// Partial Re-initialization", arXiv 2502.19261, ICLR 2025), the diversity re-initialisation of
/// one expert matrix.
///
/// Every expert starts as a copy of the dense FFN; then a random set S of floor(r F) of the F
/// intermediate dimensions is re-initialised: the rows S of W_gate (w1) and W_up (w3) and the
/// columns S of W_down (w2). S is the same for the three matrices of one expert (a whole
/// intermediate neuron is replaced) and drawn independently per expert and layer. Each matrix's new
/// entries are N(mu, sigma^2) with mu and sigma the mean and standard deviation of the entries they
/// replace, as the authors' conversions/drop_upcycling.py computes them (torch's unbiased std).
/// r = 0 is plain upcycling, r = 1 a statistically matched from-scratch FFN; the paper uses 0.5.
public struct DropUpcycling: Sendable, Equatable {
    /// Which matrix of the SwiGLU expert.
    public enum Part: Sendable, Equatable {
        /// w1 (F, C): rows S are re-initialised.
        case gate
        /// w3 (F, C): rows S.
        case up
        /// w2 (C, F): columns S.
        case down

        /// The part of an expert tensor name `...experts.E.w1.weight` (w1 gate, w3 up, w2 down).
        public init?(hfName name: String) {
            if name.hasSuffix(".w1.weight") { self = .gate } else if name.hasSuffix(".w3.weight") { self = .up } else if name.hasSuffix(".w2.weight") { self = .down } else { return nil }
        }

        /// The offset upcycling noise seeds have always used for this matrix (w1 1, w2 2, w3 3).
        var noiseIndex: UInt64 {
            switch self {
            case .gate: 1
            case .down: 2
            case .up: 3
            }
        }
    }

    /// r, the fraction of intermediate dimensions re-initialised (0...1).
    public var ratio: Double
    /// F, the intermediate size.
    public var intermediate: Int
    public var part: Part
    public var seed: UInt64
    public var layer: Int
    public var expert: Int

    public init(ratio: Double, intermediate: Int, part: Part, seed: UInt64, layer: Int, expert: Int) {
        self.ratio = ratio
        self.intermediate = intermediate
        self.part = part
        self.seed = seed
        self.layer = layer
        self.expert = expert
    }

    /// |S| = floor(r F), as the authors' int(target_size * ffn_init_ratio).
    public var count: Int { Int((Double(intermediate) * ratio).rounded(.down)) }

    /// S, sorted: a uniformly random subset of 0..<F of size `count` (partial Fisher-Yates), the same
    /// for the three matrices of one (layer, expert).
    public func indices() -> [Int] {
        var rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(layer) &* 0x1_0000_0001 &+ UInt64(expert) &* 0x1F1F_1F1F &+ 0xD20B)
        var all = Array(0..<intermediate)
        let n = min(count, intermediate)
        for i in 0..<n {
            let j = i + Int(rng.next() % UInt64(intermediate - i))
            all.swapAt(i, j)
        }
        return all[0..<n].sorted()
    }

    /// Re-initialises the entries of S in `t`, a copy of the dense matrix ((F, C) for gate and up,
    /// (C, F) for down).
    public func apply(to t: Tensor) {
        let S = indices()
        guard !S.isEmpty else { return }
        let F = intermediate
        let C = t.count / F
        // The positions of the re-initialised entries, in a fixed order.
        var positions: [Int] = []
        positions.reserveCapacity(S.count * C)
        switch part {
        case .gate, .up:
            for f in S { for c in 0..<C { positions.append(f * C + c) } }
        case .down:
            for c in 0..<C { for f in S { positions.append(c * F + f) } }
        }
        var sum = 0.0
        for p in positions { sum += Double(t.data[p]) }
        let mean = sum / Double(positions.count)
        var ss = 0.0
        for p in positions { let d = Double(t.data[p]) - mean; ss += d * d }
        let std = positions.count > 1 ? (ss / Double(positions.count - 1)).squareRoot() : 0
        var rng = SplitMix64(seed: seed &* 0xBF58_476D_1CE4_E5B9 &+ UInt64(layer) &* 0x1_0000_0001 &+ UInt64(expert) &* 0x1F1F_1F1F
            &+ part.noiseIndex &* 0x94D0_49BB)
        for p in positions { t.data[p] = Float(mean + Double(rng.normal()) * std) }
    }
}
