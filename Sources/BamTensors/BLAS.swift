import CBLAS
import Dispatch
import Foundation

/// Who owns the cores (docs/architecture.md). OpenBLAS is pinned to ONE thread for the whole process: its own
/// pool busy-waits (sched_yield) between calls and whenever other code runs, which cost ~15 % of
/// a forward pass in measurements (perf: `sched_yield`), and it serialises concurrent level-3 calls.
/// Parallelism is ours instead, decided per region in this one place, on one `WorkerPool` (the
/// caller plus helper threads that poll briefly between hand-offs; Dispatch when the pool is busy):
///  - `fanOut`: many independent units (attention heads, experts, branches) on the workers,
///    each calling single-threaded BLAS;
///  - `gemm` / `linearForward` outside any fan-out: one large product split into column (or row)
///    blocks, one single-threaded BLAS call per worker;
///  - `splitDecodeRows` / `splitPrefillRows`: the rows of one weight matrix in contiguous blocks,
///    one per worker and one hand-off (the low-precision kernels of `WeightMatrix`).
/// Inside a fan-out region products are never split again (the region already uses every core).
public enum BLASThreads {
    /// Dispatch workers (all cores unless BAM_MIX_THREADS says otherwise).
    nonisolated(unsafe) public private(set) static var defaultCount: Int = {
        BLASCore.selectNativeKernels()
        openblas_set_num_threads(1)
        BLASCore.stopIdleThreads()
        let env = ProcessInfo.processInfo.environment["BAM_MIX_THREADS"].flatMap { Int($0) }
        return max(1, env ?? ProcessInfo.processInfo.activeProcessorCount)
    }()

    private static let lock = NSLock()
    nonisolated(unsafe) private static var regionDepth = 0

    public static func setDefault(_ n: Int) {
        configure()
        defaultCount = max(1, n)
    }

    /// The pool for `defaultCount` workers, made at first use (its helper threads start then).
    nonisolated(unsafe) private static var pools: [Int: WorkerPool] = [:]
    private static var pool: WorkerPool {
        lock.lock()
        defer { lock.unlock() }
        let n = defaultCount
        if let p = pools[n] { return p }
        let p = WorkerPool.make(size: n)
        pools[n] = p
        return p
    }

    /// Runs `body(0..<count)` on the pool, or on Dispatch's workers when the pool is taken (a
    /// nested fan-out, another thread's job) or the job has more items than a pool job holds.
    private static func runConcurrently(_ count: Int, _ body: (Int) -> Void) {
        if !pool.run(count, body) {
            withoutActuallyEscaping(body) { b in
                let sendable = UncheckedSendableBody(body: b)
                DispatchQueue.concurrentPerform(iterations: count) { sendable.body($0) }
            }
        }
    }

    /// Selects OpenBLAS's native kernels (BLASCore), pins it to one thread and reads
    /// BAM_MIX_THREADS (idempotent; `gemm` calls it, so no product runs before it).
    public static func configure() { _ = defaultCount }

    /// The OpenBLAS kernel family in use (e.g. SkylakeX, Haswell, Prescott), for benchmark reports.
    public static var kernels: String {
        configure()
        return BLASCore.current
    }

    /// True while a fan-out region runs (its units must not split their products again).
    public static var inParallelRegion: Bool {
        lock.lock()
        defer { lock.unlock() }
        return regionDepth > 0
    }

    private static func region<R>(_ body: () -> R) -> R {
        lock.lock(); regionDepth += 1; lock.unlock()
        defer { lock.lock(); regionDepth -= 1; lock.unlock() }
        return body()
    }

    /// Runs `count` iterations concurrently on the workers (claimed one at a time, so uneven units
    /// balance). Each iteration must write a disjoint range of any shared buffer.
    public static func fanOut(_ count: Int, _ body: @Sendable (Int) -> Void) {
        configure()
        if count <= 1 || defaultCount == 1 {
            for i in 0..<count { body(i) }
            return
        }
        region { runConcurrently(count, body) }
    }

    /// Splits `0..<n` into contiguous chunks (at most 4 per worker, at least `minimumPerChunk`
    /// long) and runs them concurrently. Small `n`, one worker, or a call from inside a fan-out
    /// region runs inline.
    public static func parallelRanges(_ n: Int, minimumPerChunk: Int = 1, _ body: @Sendable (Range<Int>) -> Void) {
        configure()
        let workers = defaultCount
        let chunks = min(max(1, n / max(1, minimumPerChunk)), workers * 4)
        if workers == 1 || chunks <= 1 || inParallelRegion {
            body(0..<n)
            return
        }
        let per = (n + chunks - 1) / chunks
        region {
            runConcurrently(chunks) { c in
                let lo = c * per
                let hi = min(n, lo + per)
                if lo < hi { body(lo..<hi) }
            }
        }
    }

    /// Products at least this large (multiply-adds) are split across workers.
    static let splitThreshold = 1 << 21

    /// Matrix-vector-like products (decode: one to a few activation rows) that read at least this
    /// many bytes of weights are split across workers. They are memory-bound, so the bytes read
    /// decide. With the pool's polling helpers a hand-off costs about a microsecond, so matrices
    /// down to 256 KiB gain from the second core (at q8_0 the 58M Llama's attention and down
    /// projections are 0.27-0.8 MB): BamBench decode, interleaved runs on an EPYC Zen 3, q8_0
    /// 5.7-6.1 ms per token at 1 MiB against 4.8-4.9 at 256 KiB and 4.6-4.9 at 64 KiB, f32 and
    /// bf16 unchanged within the noise (f32 a little slower at 64 KiB).
    static let splitBytes = 1 << 18

    /// Runs `body` over the rows `0..<rows` of one weight matrix in a memory-bound product,
    /// splitting them across the workers when it reads `bytes` >= `splitBytes`: one contiguous
    /// block per worker (a multiple of 16 rows, whole cache lines of a float output row), one
    /// hand-off. Inline with one worker, for fewer than 64 rows per worker, or inside a fan-out
    /// region.
    public static func splitDecodeRows(_ rows: Int, bytes: Int, _ body: @Sendable (Range<Int>) -> Void) {
        configure()
        splitRows(rows, worthIt: bytes >= splitBytes && rows >= 64 * defaultCount, body)
    }

    /// Runs `body` over the rows `0..<rows` of one weight matrix in a compute-bound product
    /// (prefill: `multiplyAdds` in all), one contiguous block of rows per worker, one hand-off,
    /// under the same rules as `gemm`.
    public static func splitPrefillRows(_ rows: Int, multiplyAdds: Int, _ body: @Sendable (Range<Int>) -> Void) {
        configure()
        splitRows(rows, worthIt: multiplyAdds >= splitThreshold && rows >= 16 * defaultCount, body)
    }

    private static func splitRows(_ rows: Int, worthIt: Bool, _ body: @Sendable (Range<Int>) -> Void) {
        let workers = defaultCount
        guard rows > 0 else { return }
        guard workers > 1, worthIt, !inParallelRegion else {
            body(0..<rows)
            return
        }
        fanOut(workers) { w in
            let r = block(of: rows, worker: w, of: workers)
            if !r.isEmpty { body(r) }
        }
    }

    /// Worker `w`'s block of `count` rows (or columns) split across `workers`: contiguous, a
    /// multiple of 16 long (whole cache lines of a float output row) except the last; empty when
    /// the earlier blocks already cover them all.
    public static func block(of count: Int, worker w: Int, of workers: Int) -> Range<Int> {
        let per = ((count + workers - 1) / workers + 15) / 16 * 16
        return min(count, w * per)..<min(count, (w + 1) * per)
    }

    /// Units of these costs dealt largest first, each to the least loaded of `workers` (LPT
    /// scheduling, as a fan-out's workers claim units sorted largest first): the worker each unit
    /// goes to, and each worker's load.
    public static func deal(_ costs: [Double], over workers: Int) -> (owner: [Int], load: [Double]) {
        var owner = [Int](repeating: 0, count: costs.count), load = [Double](repeating: 0, count: max(1, workers))
        for i in costs.indices.sorted(by: { costs[$0] > costs[$1] }) {
            let w = load.indices.min { load[$0] < load[$1] }!
            owner[i] = w
            load[w] += costs[i]
        }
        return (owner, load)
    }
}

/// C[M, N] = alpha * op(A) op(B) + beta * C, row-major, through cblas_sgemm.
/// `transA`/`transB` say whether A is stored [K, M] / B is stored [N, K].
/// Large products outside a fan-out region are split into blocks of columns of C (or rows, when C
/// is narrow), one single-threaded sgemm per Dispatch worker (see `BLASThreads`).
public func gemm(_ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                 m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
                 alpha: Float = 1, beta: Float = 0, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil) {
    if m == 0 || n == 0 { return }
    BLASThreads.configure()
    let la = lda ?? (transA ? m : k)
    let lb = ldb ?? (transB ? k : n)
    let lc = ldc ?? n
    if k == 0 {
        for i in 0..<m { for j in 0..<n { c[i * lc + j] *= beta } }
        return
    }
    BLASThreads.configure()
    let workers = BLASThreads.defaultCount
    @Sendable func call(_ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ m: Int, _ n: Int) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(la), b, Int32(lb), beta, c, Int32(lc))
    }
    guard workers > 1, m * n * k >= BLASThreads.splitThreshold, !BLASThreads.inParallelRegion else {
        call(c, a, b, m, n)
        return
    }
    let cp = SendablePointer(c), ap = SendablePointer(UnsafeMutablePointer(mutating: a))
    let bp = SendablePointer(UnsafeMutablePointer(mutating: b))
    if n >= 64 * workers {
        // Column blocks of C (multiples of 16 wide): each worker reads all of op(A) and its columns of op(B).
        BLASThreads.fanOut(workers) { w in
            let columns = BLASThreads.block(of: n, worker: w, of: workers)
            let n0 = columns.lowerBound, n1 = columns.upperBound
            guard n0 < n1 else { return }
            let bBlock = transB ? bp.pointer + n0 * lb : bp.pointer + n0
            call(cp.pointer + n0, ap.pointer, bBlock, m, n1 - n0)
        }
    } else {
        let per = (m + workers - 1) / workers
        BLASThreads.fanOut(workers) { w in
            let m0 = w * per, m1 = min(m, m0 + per)
            guard m0 < m1 else { return }
            let aBlock = transA ? ap.pointer + m0 : ap.pointer + m0 * la
            call(cp.pointer + m0 * lc, aBlock, bp.pointer, m1 - m0, n)
        }
    }
}

/// y[rows or cols] = alpha * op(A) x + beta * y for a row-major A (rows, cols) with leading
/// dimension `lda`, through cblas_sgemv: `transA` gives A^T x (length cols), otherwise A x
/// (length rows). A one-row product goes here rather than to `gemm`: OpenBLAS 0.3.21's sgemm
/// packs (copies) its whole B operand even for a single row.
public func gemv(_ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                 rows: Int, cols: Int, transA: Bool = false, alpha: Float = 1, beta: Float = 0, lda: Int? = nil) {
    if rows == 0 || cols == 0 {
        let n = transA ? cols : rows
        for i in 0..<n { y[i] = beta == 0 ? 0 : beta * y[i] }
        return
    }
    BLASThreads.configure()
    cblas_sgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, Int32(rows), Int32(cols), alpha, a, Int32(lda ?? cols),
                x, 1, beta, y, 1)
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
    let kernels = WeightKernels.active
    if T <= WeightMatrix.fusedRowLimit && !accumulate && (T > 1 || kernels.family.streamsOneF32RowFasterThanSGEMV) {
        // Decode (one row, or a few: several sequences decoding, an expert's handful of tokens):
        // the fused kernel reads each weight row once for all rows, split by output rows across
        // the workers (memory bandwidth is the limit, and two cores draw more). OpenBLAS 0.3.21's
        // sgemm would first pack (copy) the whole weight, and ran 1.4-3.5x slower on 2 to 8 rows;
        // on one row its sgemv streams the short rows of small matrices more slowly than the
        // kernel's next-tile prefetch (BamBench kernels / decode, EPYC Zen 3).
        let k = kernels
        let op = SendablePointer(out), ip = SendableRawPointer(UnsafeRawPointer(inp))
        let wp = SendableRawPointer(UnsafeRawPointer(weight))
        BLASThreads.splitDecodeRows(OC, bytes: OC * C * MemoryLayout<Float>.size) { r in
            k.matmul(op.pointer + r.lowerBound, ldy: OC, wp.pointer + r.lowerBound * C * 4, wStride: C * 4, storage: .f32,
                     ip.pointer, xStride: C * 4, T: T, rows: r.count, cols: C)
        }
    } else if T == 1 {
        // One row accumulated (beta = 1), or a kernel family slower than sgemv on one row:
        // sgemv, split by output rows as above.
        let op = SendablePointer(out), ip = SendablePointer(UnsafeMutablePointer(mutating: inp))
        let wp = SendablePointer(UnsafeMutablePointer(mutating: weight))
        BLASThreads.splitDecodeRows(OC, bytes: OC * C * MemoryLayout<Float>.size) { r in
            gemv(op.pointer + r.lowerBound, wp.pointer + r.lowerBound * C, ip.pointer, rows: r.count, cols: C,
                 beta: accumulate ? 1 : 0)
        }
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

/// A body handed to Dispatch from `runConcurrently`, whose callers' bodies are `@Sendable` or only
/// touch disjoint ranges of shared buffers (the fan-out contract).
private struct UncheckedSendableBody: @unchecked Sendable {
    let body: (Int) -> Void
}
