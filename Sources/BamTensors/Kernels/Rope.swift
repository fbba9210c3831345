import Foundation

/// How rotary embeddings pair up the dimensions of a head.
public enum RopeStyle: String, Sendable, Codable {
    /// Llama/NEOX (transformers' `rotate_half`): dimension i pairs with i + HS/2.
    case rotateHalf = "rotate_half"
    /// GPT-J / Cohere / llama.cpp's llama architecture: dimension 2i pairs with 2i + 1.
    case interleaved
}

/// RoPE frequency scaling (config `rope_scaling` / `rope_parameters`).
public enum RopeScaling: Sendable, Equatable {
    case none
    /// Positions divided by `factor` (transformers "linear").
    case linear(factor: Float)
    /// Llama 3.1's wavelength-dependent scaling (transformers `_compute_llama3_parameters`).
    case llama3(factor: Float, lowFreqFactor: Float, highFreqFactor: Float, originalMaxPositions: Int)
}

/// The inverse frequencies transformers computes in float32:
/// inv_freq[i] = 1 / theta^(2i / HS), then adjusted by the scaling rule.
public func ropeInverseFrequencies(headSize HS: Int, theta: Float, scaling: RopeScaling) -> [Float] {
    var inv = (0..<(HS / 2)).map { i in 1 / powf(theta, Float(2 * i) / Float(HS)) }
    switch scaling {
    case .none: break
    case let .linear(factor):
        inv = inv.map { $0 / factor }
    case let .llama3(factor, low, high, original):
        let lowWavelen = Float(original) / low
        let highWavelen = Float(original) / high
        inv = inv.map { f in
            let wavelen = 2 * Float.pi / f
            let scaled = wavelen > lowWavelen ? f / factor : f
            let isMedium = !(wavelen < highWavelen) && !(wavelen > lowWavelen)
            if !isMedium { return scaled }
            let smooth = (Float(original) / wavelen - low) / (high - low)
            return (1 - smooth) * scaled / factor + smooth * scaled
        }
    }
    return inv
}

/// Cos/sin of position x inverse frequency, cached per position: (P, HS/2) each.
public final class RopeTable: @unchecked Sendable {
    public let headSize: Int
    public let style: RopeStyle
    public let inverseFrequencies: [Float]
    public private(set) var positions = 0
    private var cosTable: [Float] = []   // (P, HS/2)
    private var sinTable: [Float] = []   // (P, HS/2)

    public init(headSize: Int, theta: Float, style: RopeStyle, scaling: RopeScaling = .none) {
        self.headSize = headSize
        self.style = style
        self.inverseFrequencies = ropeInverseFrequencies(headSize: headSize, theta: theta, scaling: scaling)
    }

    /// Makes sure positions 0..<n are tabulated.
    public func ensure(_ n: Int) {
        guard n > positions else { return }
        let half = headSize / 2
        let newCount = max(n, positions * 2)
        cosTable.reserveCapacity(newCount * half)
        sinTable.reserveCapacity(newCount * half)
        for p in positions..<newCount {
            for i in 0..<half {
                // transformers multiplies in float32 (inv_freq @ position_ids), then cos/sin.
                let angle = Float(p) * inverseFrequencies[i]
                cosTable.append(cosf(angle))
                sinTable.append(sinf(angle))
            }
        }
        positions = newCount
    }

    /// Rotates x: (T, NH, HS) in place; token t sits at position `start + t`.
    /// `inverse` rotates by the negative angle. Each pair (a, b) -> (a c - b s, b c + a s) is an
    /// orthogonal map, so its transpose — the backward pass of RoPE — is the inverse rotation.
    public func apply(_ x: UnsafeMutablePointer<Float>, T: Int, heads NH: Int, start: Int, inverse: Bool = false) {
        ensure(start + T)
        let half = headSize / 2
        let sign: Float = inverse ? -1 : 1
        cosTable.withUnsafeBufferPointer { cp in
            sinTable.withUnsafeBufferPointer { sp in
                for t in 0..<T {
                    let c = cp.baseAddress! + (start + t) * half
                    let s = sp.baseAddress! + (start + t) * half
                    for h in 0..<NH {
                        let v = x + (t * NH + h) * headSize
                        switch style {
                        case .rotateHalf:
                            for i in 0..<half {
                                let a = v[i], b = v[i + half], si = sign * s[i]
                                v[i] = a * c[i] - b * si
                                v[i + half] = b * c[i] + a * si
                            }
                        case .interleaved:
                            for i in 0..<half {
                                let a = v[2 * i], b = v[2 * i + 1], si = sign * s[i]
                                v[2 * i] = a * c[i] - b * si
                                v[2 * i + 1] = b * c[i] + a * si
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Naive twin of `RopeTable.apply`: recomputes every angle in double precision.
public func ropeApplyNaive(_ x: UnsafeMutablePointer<Float>, T: Int, heads NH: Int, headSize HS: Int,
                           start: Int, inverseFrequencies inv: [Float], style: RopeStyle) {
    let half = HS / 2
    for t in 0..<T {
        for h in 0..<NH {
            let v = x + (t * NH + h) * HS
            for i in 0..<half {
                let angle = Double(start + t) * Double(inv[i])
                let c = cos(angle), s = sin(angle)
                let (ia, ib) = style == .rotateHalf ? (i, i + half) : (2 * i, 2 * i + 1)
                let a = Double(v[ia]), b = Double(v[ib])
                v[ia] = Float(a * c - b * s)
                v[ib] = Float(b * c + a * s)
            }
        }
    }
}

// MARK: training (B sequences, positions from 0)

/// RoPE on B sequences whose positions start at 0 each: x (B, T, H, HS), rotated in place
/// (the training forward keeps only the rotated q and k, which is all the backward needs).
public func ropeForward(_ x: UnsafeMutablePointer<Float>, _ rope: RopeTable, B: Int, T: Int, heads H: Int) {
    for b in 0..<B { rope.apply(x + b * T * H * rope.headSize, T: T, heads: H, start: 0) }
}

/// Backward of RoPE: the rotation is orthogonal, so dL/dx = R^T dL/dy = the inverse rotation of
/// the gradient. Applied in place to dx (B, T, H, HS), which holds dL/dy on entry and dL/dx on exit
/// — the one backward op that transforms its buffer instead of accumulating, because the
/// pre-rotation gradient is only ever consumed by the projection's backward right after.
public func ropeBackward(_ dx: UnsafeMutablePointer<Float>, _ rope: RopeTable, B: Int, T: Int, heads H: Int) {
    for b in 0..<B { rope.apply(dx + b * T * H * rope.headSize, T: T, heads: H, start: 0, inverse: true) }
}

/// Naive twin of `ropeBackward`: the transpose of each pair's rotation applied to the gradient,
/// dx_a = c dy_a + s dy_b, dx_b = -s dy_a + c dy_b, with every angle recomputed in double. dx
/// (B, T, H, HS) holds dL/dy on entry and dL/dx on exit, as in `ropeBackward`.
public func ropeBackwardNaive(_ dx: UnsafeMutablePointer<Float>, B: Int, T: Int, heads H: Int, headSize HS: Int,
                              inverseFrequencies inv: [Float], style: RopeStyle) {
    let half = HS / 2
    for b in 0..<B {
        for t in 0..<T {
            for h in 0..<H {
                let v = dx + ((b * T + t) * H + h) * HS
                for i in 0..<half {
                    let angle = Double(t) * Double(inv[i])
                    let c = cos(angle), s = sin(angle)
                    let (ia, ib) = style == .rotateHalf ? (i, i + half) : (2 * i, 2 * i + 1)
                    let da = Double(v[ia]), db = Double(v[ib])
                    v[ia] = Float(c * da + s * db)
                    v[ib] = Float(-s * da + c * db)
                }
            }
        }
    }
}
