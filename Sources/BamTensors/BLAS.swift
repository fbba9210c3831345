import CBLAS
import Dispatch
import Foundation

/// Who owns the cores in a region of code (style.md): OpenBLAS is itself multi-threaded and
/// serialises concurrent level-3 calls, so either one GEMM runs with all BLAS threads, or many
/// small GEMMs are fanned out over Dispatch workers with BLAS pinned to one thread each.
/// Every concurrent region in bam-mix goes through `BLASThreads.fanOut`.
public enum BLASThreads {
    /// The thread count BLAS uses outside fan-out regions (all cores unless BAM_MIX_THREADS says otherwise).
    nonisolated(unsafe) public private(set) static var defaultCount: Int = {
        let env = ProcessInfo.processInfo.environment["BAM_MIX_THREADS"].flatMap { Int($0) }
        let n = max(1, env ?? ProcessInfo.processInfo.activeProcessorCount)
        openblas_set_num_threads(Int32(n))
        return n
    }()

    private static let lock = NSLock()
    nonisolated(unsafe) private static var fanOutDepth = 0

    public static func setDefault(_ n: Int) {
        defaultCount = max(1, n)
        openblas_set_num_threads(Int32(defaultCount))
    }

    /// Ensures the configured thread count is applied (call once at start-up).
    public static func configure() { _ = defaultCount }

    /// Runs `count` iterations concurrently on Dispatch workers with BLAS single-threaded inside.
    /// Each iteration must write a disjoint range of any shared buffer.
    public static func fanOut(_ count: Int, _ body: @Sendable (Int) -> Void) {
        configure()
        if count <= 1 || defaultCount == 1 {
            for i in 0..<count { body(i) }
            return
        }
        lock.lock()
        fanOutDepth += 1
        if fanOutDepth == 1 { openblas_set_num_threads(1) }
        lock.unlock()
        DispatchQueue.concurrentPerform(iterations: count, execute: body)
        lock.lock()
        fanOutDepth -= 1
        if fanOutDepth == 0 { openblas_set_num_threads(Int32(defaultCount)) }
        lock.unlock()
    }

    /// Splits `0..<n` into about `parts` contiguous chunks and runs them concurrently (plain Swift
    /// kernels; no BLAS inside). Small `n` runs inline.
    public static func parallelRanges(_ n: Int, minimumPerChunk: Int = 1, _ body: @Sendable (Range<Int>) -> Void) {
        configure()
        let workers = defaultCount
        let chunks = min(max(1, n / max(1, minimumPerChunk)), workers * 4)
        if workers == 1 || chunks <= 1 {
            body(0..<n)
            return
        }
        let per = (n + chunks - 1) / chunks
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = c * per
            let hi = min(n, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// C[M, N] = alpha * op(A) op(B) + beta * C, row-major, through cblas_sgemm.
/// `transA`/`transB` say whether A is stored [K, M] / B is stored [N, K].
@inline(__always)
public func gemm(_ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                 m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
                 alpha: Float = 1, beta: Float = 0, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil) {
    if m == 0 || n == 0 { return }
    let la = lda ?? (transA ? m : k)
    let lb = ldb ?? (transB ? k : n)
    let lc = ldc ?? n
    if k == 0 {
        for i in 0..<m { for j in 0..<n { c[i * lc + j] *= beta } }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(la), b, Int32(lb), beta, c, Int32(lc))
}

/// Naive twin of `gemm` (same arguments), used by tests to hold the BLAS path honest.
public func gemmNaive(_ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                      m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
                      alpha: Float = 1, beta: Float = 0, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil) {
    let la = lda ?? (transA ? m : k)
    let lb = ldb ?? (transB ? k : n)
    let lc = ldc ?? n
    for i in 0..<m {
        for j in 0..<n {
            var s: Double = 0
            for p in 0..<k {
                let av = transA ? a[p * la + i] : a[i * la + p]
                let bv = transB ? b[j * lb + p] : b[p * lb + j]
                s += Double(av) * Double(bv)
            }
            c[i * lc + j] = alpha * Float(s) + (beta == 0 ? 0 : beta * c[i * lc + j])
        }
    }
}

/// A linear layer as transformers defines it: out[T, OC] = inp[T, C] @ weight[OC, C]^T (+ bias[OC]).
public func linearForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                          _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                          T: Int, C: Int, OC: Int, accumulate: Bool = false) {
    if T == 1 {
        // One row (decode): a matrix-vector product reads the weight once; OpenBLAS 0.3.21's sgemm
        // would first pack (copy) the whole weight for a single row.
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(OC), Int32(C), 1, weight, Int32(C), inp, 1,
                    accumulate ? 1 : 0, out, 1)
    } else {
        gemm(out, inp, weight, m: T, n: OC, k: C, transB: true, beta: accumulate ? 1 : 0)
    }
    if let bias {
        for t in 0..<T {
            let o = out + t * OC
            for j in 0..<OC { o[j] += bias[j] }
        }
    }
}

/// Naive twin of `linearForward`.
public func linearForwardNaive(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
                               _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                               T: Int, C: Int, OC: Int) {
    for t in 0..<T {
        for o in 0..<OC {
            var s: Double = bias.map { Double($0[o]) } ?? 0
            for c in 0..<C { s += Double(inp[t * C + c]) * Double(weight[o * C + c]) }
            out[t * OC + o] = Float(s)
        }
    }
}
