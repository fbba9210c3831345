import BamTensors
import Foundation
import Testing

@Suite("Kernels agree with their naive twins")
struct KernelTests {
    @Test("gemm in all transpose combinations", arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemmTwins(trans: (Bool, Bool)) {
        var r = TestRandom(seed: 1)
        let (m, n, k) = (7, 5, 9)
        let a = r.tensor([m * k]), b = r.tensor([k * n])
        let c1 = r.tensor([m * n]), c2 = c1.copy()
        gemm(c1.data, a.data, b.data, m: m, n: n, k: k, transA: trans.0, transB: trans.1, alpha: 0.5, beta: 2)
        gemmNaive(c2.data, a.data, b.data, m: m, n: n, k: k, transA: trans.0, transB: trans.1, alpha: 0.5, beta: 2)
        expectTwins(c1.data, c2.data, count: m * n, tolerance: 1e-5, "gemm transA \(trans.0) transB \(trans.1)")
    }

    @Test("gemv, plain and transposed, equals the one-row gemm", arguments: [false, true])
    func gemvTwin(trans: Bool) {
        var r = TestRandom(seed: 11)
        let (rows, cols, lda) = (9, 6, 8)   // a strided matrix: 6 of every 8 columns are used
        let a = r.tensor([rows * lda]), x = r.tensor([trans ? rows : cols])
        let n = trans ? cols : rows
        let y1 = r.tensor([n]), y2 = y1.copy()
        gemv(y1.data, a.data, x.data, rows: rows, cols: cols, transA: trans, alpha: 0.5, beta: 2, lda: lda)
        // y = 0.5 op(A) x + 2 y as a one-row product: x^T op(A)^T, i.e. B = A (transB) or A^T.
        gemmNaive(y2.data, x.data, a.data, m: 1, n: n, k: trans ? rows : cols, transB: !trans, alpha: 0.5, beta: 2, ldb: lda)
        expectTwins(y1.data, y2.data, count: n, tolerance: 1e-5, "gemv transA \(trans)")
    }

    @Test("linear with bias")
    func linear() {
        var r = TestRandom(seed: 2)
        let (T, C, OC) = (6, 16, 10)
        let x = r.tensor([T, C]), w = r.tensor([OC, C]), b = r.tensor([OC])
        let y1 = Tensor(shape: [T, OC]), y2 = Tensor(shape: [T, OC])
        linearForward(y1.data, x.data, w.data, b.data, T: T, C: C, OC: OC)
        linearForwardNaive(y2.data, x.data, w.data, b.data, T: T, C: C, OC: OC)
        expectTwins(y1.data, y2.data, count: y1.count, tolerance: 1e-5, "linearForward")
    }

    @Test("RMSNorm and LayerNorm")
    func norms() {
        var r = TestRandom(seed: 3)
        let (T, C) = (5, 33)
        let x = r.tensor([T, C], scale: 3), w = r.tensor([C]), b = r.tensor([C])
        let a = Tensor(shape: [T, C]), n = Tensor(shape: [T, C])
        rmsnormForward(a.data, x.data, w.data, T: T, C: C, eps: 1e-5)
        rmsnormForwardNaive(n.data, x.data, w.data, T: T, C: C, eps: 1e-5)
        expectTwins(a.data, n.data, count: a.count, tolerance: 1e-5, "rmsnormForward")
        layernormForward(a.data, x.data, w.data, T: T, C: C, eps: 1e-5)
        layernormForwardNaive(n.data, x.data, w.data, T: T, C: C, eps: 1e-5)
        expectTwins(a.data, n.data, count: a.count, tolerance: 1e-5, "layernormForward")
        layernormForward(a.data, x.data, w.data, bias: b.data, T: T, C: C, eps: 1e-5)
        layernormForwardNaive(n.data, x.data, w.data, bias: b.data, T: T, C: C, eps: 1e-5)
        expectTwins(a.data, n.data, count: a.count, tolerance: 1e-5, "layernormForward with bias")
    }

    @Test("RoPE, both pairings, at an offset", arguments: [RopeStyle.rotateHalf, .interleaved])
    func rope(style: RopeStyle) {
        var r = TestRandom(seed: 4)
        let (T, NH, HS) = (6, 3, 16)
        let x = r.tensor([T, NH, HS]), y = x.copy()
        let table = RopeTable(headSize: HS, theta: 10000, style: style)
        table.apply(x.data, T: T, heads: NH, start: 37)
        ropeApplyNaive(y.data, T: T, heads: NH, headSize: HS, start: 37, inverseFrequencies: table.inverseFrequencies, style: style)
        expectTwins(x.data, y.data, count: x.count, tolerance: 2e-5, "RoPE \(style)")
    }

    @Test("RoPE pairs the dimensions the style says")
    func ropePairing() {
        // A vector with only dimension 1 set, rotated by position 1: rotate-half mixes it with
        // dimension 1 + HS/2, interleaved with dimension 0.
        let HS = 8
        for style in [RopeStyle.rotateHalf, .interleaved] {
            let x = Tensor(shape: [1, 1, HS])
            x.data[1] = 1
            let table = RopeTable(headSize: HS, theta: 100, style: style)
            table.apply(x.data, T: 1, heads: 1, start: 1)
            let partner = style == .rotateHalf ? 1 + HS / 2 : 0
            let freq = style == .rotateHalf ? table.inverseFrequencies[1] : table.inverseFrequencies[0]
            #expect(abs(x.data[1] - cosf(freq)) < 1e-6)
            #expect(abs(abs(x.data[partner]) - abs(sinf(freq))) < 1e-6)
        }
    }

    @Test("softmax, SwiGLU")
    func pointwise() {
        var r = TestRandom(seed: 5)
        let x = r.tensor([4, 11], scale: 5), y = x.copy()
        softmaxRows(x.data, rows: 4, n: 11)
        softmaxRowsNaive(y.data, rows: 4, n: 11)
        expectTwins(x.data, y.data, count: x.count, tolerance: 1e-6, "softmaxRows")
        let g = r.tensor([50], scale: 4), u = r.tensor([50])
        let a = Tensor(shape: [50]), b = Tensor(shape: [50])
        swigluForward(a.data, g.data, u.data, count: 50)
        swigluForwardNaive(b.data, g.data, u.data, count: 50)
        expectTwins(a.data, b.data, count: 50, tolerance: 1e-5, "swigluForward")
    }

    @Test("causal GQA attention over a cache with past positions (short, a decode row, long enough for query blocks, a one-row last block)",
          arguments: [(5, 4), (1, 37), (300, 21), (257, 3)])
    func attention(sizes: (Int, Int)) {
        var r = TestRandom(seed: 6)
        let (T, past, NH, NKV, HS) = (sizes.0, sizes.1, 4, 2, 8)
        let S = T + past + 3
        let q = r.tensor([T, NH, HS]), k = r.tensor([NKV, S, HS]), v = r.tensor([NKV, S, HS])
        let o1 = Tensor(shape: [T, NH, HS]), o2 = Tensor(shape: [T, NH, HS])
        let shape = AttentionShape(T: T, past: past, NH: NH, NKV: NKV, HS: HS, S: S)
        let scores = Tensor(shape: [shape.scoresCount])
        attentionForward(o1.data, q.data, k.data, v.data, scores: scores.data, shape: shape)
        attentionForwardNaive(o2.data, q.data, k.data, v.data, shape: shape)
        expectTwins(o1.data, o2.data, count: o1.count, tolerance: 1e-5, "attentionForward T \(T) past \(past)")
    }

    @Test("bf16 rounds to nearest even and keeps NaN a NaN")
    func bfloat16() {
        #expect(BFloat16.toFloat(BFloat16.fromFloat(1.0)) == 1.0)
        // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even mantissa (1.0).
        #expect(BFloat16.toFloat(BFloat16.fromFloat(1 + 1.0 / 256)) == 1.0)
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
        #expect(BFloat16.toFloat(BFloat16.fromFloat(1 + 3.0 / 256)) == 1 + 1.0 / 64)
        #expect(BFloat16.toFloat(BFloat16.fromFloat(.nan)).isNaN)
        // A NaN whose payload sits only in the low bits must not become infinity.
        #expect(BFloat16.toFloat(BFloat16.fromFloat(Float(bitPattern: 0x7F80_0001))).isNaN)
        #expect(BFloat16.toFloat(BFloat16.fromFloat(.infinity)) == .infinity)
        #expect(BFloat16.toFloat(BFloat16.fromFloat(Float.greatestFiniteMagnitude)) == .infinity)
    }

    @Test("f16 and bf16 decode through DTypeConversion, aligned and not")
    func conversions() throws {
        let values: [Float] = [0, 1, -2.5, 65504, 1e-8, .infinity]
        for dtype in [DType.f16, .bf16] {
            let bytes = UnsafeMutableRawPointer.allocate(byteCount: 2 * values.count + 1, alignment: 8)
            defer { bytes.deallocate() }
            for offset in [0, 1] {
                try values.withUnsafeBufferPointer {
                    try DTypeConversion.fromFloat32($0.baseAddress!, count: values.count, dtype: dtype, into: bytes + offset)
                }
                var out = [Float](repeating: 0, count: values.count)
                try out.withUnsafeMutableBufferPointer {
                    try DTypeConversion.toFloat32(UnsafeRawPointer(bytes + offset), dtype: dtype, count: values.count, into: $0.baseAddress!)
                }
                var expected = values
                expected.withUnsafeMutableBufferPointer { DTypeConversion.round($0.baseAddress!, count: values.count, to: dtype) }
                #expect(out == expected, "\(dtype) at offset \(offset)")
            }
        }
    }
}

@Suite("Vectorised exp")
struct FastMathTests {
    @Test("fastExp is within 2 ulp of exp over the range the kernels use")
    func accuracy() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let e = fastExp(x)
            let ref = Float(Foundation.exp(Double(x)))
            worst = max(worst, abs(e - ref) / ref.ulp)
            x += 0.0137
        }
        #expect(worst <= 2, "worst error \(worst) ulp")
        #expect(fastExp(-1000) < 1e-37 && fastExp(-1000) >= 0)
        #expect(fastExp(200).isFinite)
        #expect(fastExp(0) == 1)
    }

    @Test("log-sum-exp agrees with its naive twin")
    func logSumExpTwin() {
        var r = TestRandom(seed: 9)
        for n in [1, 7, 8, 33, 1000] {
            let x = r.tensor([n], scale: 6)
            expectTwins([logSumExp(x.data, n: n)], [logSumExpNaive(x.data, n: n)], tolerance: 1e-6, "logSumExp n \(n)")
        }
    }
}
