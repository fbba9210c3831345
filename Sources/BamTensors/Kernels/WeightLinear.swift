import BamKernelsC
import Foundation

// A linear layer whose weight stays in its stored type (WeightMatrix): out[T, OC] = inp[T, C] W^T
// (+ bias[OC]), as transformers defines it. Two regimes:
//  - decode (T <= fusedRowLimit activation rows): memory-bound, so the fused kernels of
//    BamKernelsC read each weight row once, widening or dequantizing it in registers, for all T
//    rows; the rows of W are split across the workers with one hand-off.
//  - prefill (more rows): compute-bound, so a panel of W's rows is converted to float32 into a
//    buffer reused for the next panel, and sgemm multiplies it by all T rows (the conversion
//    costs one pass over W, amortised over T). f32 weights go straight to sgemm/sgemv.

extension WeightMatrix {
    /// The most activation rows that take the fused decode kernels (BAM_MATMUL_MAX_ROWS); more
    /// take the panel path.
    public static let fusedRowLimit = Int(BAM_MATMUL_MAX_ROWS)

    /// Rows per float32 panel in prefill for `columns` inputs: up to 16 MiB of floats, at least 64
    /// rows and at most 512, a multiple of 16. sgemm packs the whole (T, columns) activation
    /// matrix once per call, i.e. once per panel, so a panel of n rows adds about 1/n to the work:
    /// wide inputs need the bytes. The limit was 2 MiB, which gave a 7B-class down projection
    /// (18944 inputs) 64-row panels, repacking 38 MB of activations per 64 rows: a 2-layer Qwen2-7B
    /// shape in Q8_0 prefilled 512 tokens in 3.00-3.11 s, with 16 MiB in 2.82 (8 MiB 2.86-2.95,
    /// 32 MiB or no 512-row cap 2.86-2.92; `BamBench prefill`, two alternations, EPYC Zen 3).
    /// On the 58M and 1.1B Llama shapes (down projections of 1408 and 5632 inputs: 368 and 80 rows
    /// per panel before, 512 now) nothing changed beyond the noise (bf16 and q8_0).
    static func panelRows(columns: Int) -> Int {
        let rows = (16 << 20) / (4 * max(columns, 1))
        return min(512, max(64, rows / 16 * 16))
    }
}

/// out[T, OC] = inp[T, C] @ W^T (+ bias[OC]) for W stored as `weight.storage` (C = weight.columns,
/// OC = weight.rows). Block-quantized weights with a fused kernel (Q8_0 and the 4-6-bit types
/// whose `WeightStorage.decodeActivations` is Q8_0 or Q8_K) in decode multiply activations
/// quantized to that form (as llama.cpp); every other case is float32 arithmetic on exactly
/// widened or dequantized weights.
public func linearForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: WeightMatrix,
                          _ bias: UnsafePointer<Float>?, T: Int) {
    let C = weight.columns, OC = weight.rows
    if T == 0 || OC == 0 { return }
    if weight.storage == .f32 {
        linearForward(out, inp, weight.floats, bias, T: T, C: C, OC: OC)
        return
    }
    if C == 0 {
        out.update(repeating: 0, count: T * OC)
    } else if T <= WeightMatrix.fusedRowLimit {
        linearDecode(out, inp, weight, T: T)
    } else {
        linearPrefill(out, inp, weight, T: T)
    }
    if let bias {
        for t in 0..<T {
            let o = out + t * OC
            for j in 0..<OC { o[j] += bias[j] }
        }
    }
}

/// The fused path: one pass over W's rows for all T <= 8 activation rows.
private func linearDecode(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: WeightMatrix, T: Int) {
    let C = weight.columns, OC = weight.rows
    let k = WeightKernels.active
    let op = SendablePointer(out)
    guard let form = weight.storage.decodeActivations else {
        // No fused kernel: a few rows at a time are dequantized into a small float32 buffer
        // (L1/L2-resident) and multiplied there.
        let xp = SendableRawPointer(UnsafeRawPointer(inp))
        BLASThreads.splitDecodeRows(OC, bytes: weight.residentBytes) { r in
            let chunk = 16
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: chunk * C)
            defer { buffer.deallocate() }
            var r0 = r.lowerBound
            while r0 < r.upperBound {
                let r1 = min(r0 + chunk, r.upperBound)
                weight.rowsToFloat32(r0..<r1, into: buffer)
                k.matmul(op.pointer + r0, ldy: OC, buffer, wStride: C * 4, storage: .f32, xp.pointer, xStride: C * 4,
                         T: T, rows: r1 - r0, cols: C)
                r0 = r1
            }
        }
        return
    }
    // Quantized activations are made once, before the hand-off (T * C values: cheap).
    let quantized = QuantizedActivations(inp, T: T, columns: C, forms: [form], kernels: k)
    defer { quantized.deallocate() }
    let xp = SendableRawPointer(quantized.rows(form) ?? UnsafeRawPointer(inp))
    let xStride = form.rowBytes(columns: C)
    BLASThreads.splitDecodeRows(OC, bytes: weight.residentBytes) { r in
        k.matmul(op.pointer + r.lowerBound, ldy: OC, weight.row(r.lowerBound), wStride: weight.rowBytes,
                 storage: weight.storage, xp.pointer, xStride: xStride, T: T, rows: r.count, cols: C)
    }
}

/// The panel path: each worker converts panels of its rows of W to float32 in one reused buffer
/// and multiplies them by all T rows with single-threaded sgemm into its columns of `out`.
private func linearPrefill(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: WeightMatrix, T: Int) {
    let C = weight.columns, OC = weight.rows
    let panelRows = WeightMatrix.panelRows(columns: C)
    let op = SendablePointer(out), ip = SendablePointer(UnsafeMutablePointer(mutating: inp))
    BLASThreads.splitPrefillRows(OC, multiplyAdds: T * OC * C) { r in
        let panel = UnsafeMutablePointer<Float>.allocate(capacity: min(panelRows, r.count) * C)
        defer { panel.deallocate() }
        var p0 = r.lowerBound
        while p0 < r.upperBound {
            let p1 = min(p0 + panelRows, r.upperBound)
            weight.rowsToFloat32(p0..<p1, into: panel)
            gemm(op.pointer + p0, ip.pointer, panel, m: T, n: p1 - p0, k: C, transB: true, ldc: OC)
            p0 = p1
        }
    }
}

/// Naive twin of `linearForward(_:_:_:_:T:)`: the same arithmetic in the simplest code, sums in
/// double. Block-quantized weights with a fused kernel in decode (T <= fusedRowLimit): the
/// activations quantized by `Q8_0.quantize` / `Q8_K.quantize` and every product taken exactly
/// (`BlockProducts`); otherwise the weights dequantized by `DTypeConversion` (scalar Swift, not
/// the SIMD kernels) times float32 inputs.
public func linearForwardNaive(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: WeightMatrix,
                               _ bias: UnsafePointer<Float>?, T: Int) {
    let C = weight.columns, OC = weight.rows
    if let form = weight.storage.decodeActivations, form != .float32, T <= WeightMatrix.fusedRowLimit {
        let xq = UnsafeMutableRawPointer.allocate(byteCount: max(form.rowBytes(columns: C), 1), alignment: 1)
        defer { xq.deallocate() }
        for t in 0..<T {
            switch form {
            case .q8_0: Q8_0.quantize(inp + t * C, count: C, into: xq)
            case .q8_K: Q8_K.quantize(inp + t * C, count: C, into: xq)
            case .float32: break
            }
            for o in 0..<OC {
                let s = BlockProducts.row(weight.row(o), storage: weight.storage, xq, cols: C).sum
                out[t * OC + o] = Float(s + (bias.map { Double($0[o]) } ?? 0))
            }
        }
        return
    }
    let w = UnsafeMutablePointer<Float>.allocate(capacity: max(OC * C, 1))
    defer { w.deallocate() }
    for o in 0..<OC {
        // A valid WeightMatrix decodes (checked when it was made).
        try! DTypeConversion.toFloat32(weight.row(o), dtype: weight.storage.dtype, count: C, into: w + o * C)
    }
    linearForwardNaive(out, inp, w, bias, T: T, C: C, OC: OC)
}

/// Several linear layers that read the same input (Q, K and V; an FFN's gate and up):
/// outs[i][T, weights[i].rows] = inp[T, C] W_i^T (+ biases[i]). In decode every matrix's rows are
/// split across the workers in ONE hand-off, instead of one per matrix: a hand-off to a parked
/// worker costs tens of microseconds (a Dispatch or futex wake-up on a VM), about what reading a
/// 1 MB matrix costs, and even to a polling one (`WorkerPool`) each hand-off ends with the faster
/// worker waiting for the slower. Elsewhere (prefill, one worker,
/// inside a fan-out, types read through a row dequantizer) each runs as `linearForward`.
public func linearForward(_ outs: [UnsafeMutablePointer<Float>], _ inp: UnsafePointer<Float>, _ weights: [WeightMatrix],
                          _ biases: [UnsafePointer<Float>?], T: Int) {
    precondition(outs.count == weights.count && biases.count == weights.count, "one output and one bias slot per weight")
    let C = weights.first?.columns ?? 0
    let bytes = weights.reduce(0) { $0 + $1.residentBytes }
    BLASThreads.configure()
    let workers = BLASThreads.defaultCount
    let fusable = T >= 1 && T <= WeightMatrix.fusedRowLimit && C > 0 && weights.allSatisfy { $0.columns == C && $0.rows > 0 }
        && weights.allSatisfy { $0.storage.decodeActivations != nil }
    guard fusable, workers > 1, bytes >= BLASThreads.splitBytes, !BLASThreads.inParallelRegion else {
        for i in weights.indices { linearForward(outs[i], inp, weights[i], biases[i], T: T) }
        return
    }
    let k = WeightKernels.active
    // Block-quantized weights multiply quantized activations, made once per form for all of them
    // (a Q4_K_M file's Q and K are Q4_K, its V Q6_K: one Q8_K copy; Q8_0 weights beside them one more).
    let quantized = QuantizedActivations(inp, T: T, columns: C, forms: Set(weights.compactMap(\.storage.decodeActivations)),
                                         kernels: k)
    defer { quantized.deallocate() }
    let inputs = weights.map { m in
        let form = m.storage.decodeActivations!
        return (SendableRawPointer(quantized.rows(form) ?? UnsafeRawPointer(inp)), form.rowBytes(columns: C))
    }
    let ip = SendableRawPointer(UnsafeRawPointer(inp))
    let op = outs.map { SendablePointer($0) }
    BLASThreads.fanOut(workers) { w in
        for (i, m) in weights.enumerated() {
            // Contiguous blocks of 16-row multiples, as splitDecodeRows cuts one matrix.
            let rows = BLASThreads.block(of: m.rows, worker: w, of: workers)
            let r0 = rows.lowerBound, r1 = rows.upperBound
            guard r0 < r1 else { continue }
            let y = op[i].pointer + r0
            if m.storage == .f32 && T == 1 && !k.family.streamsOneF32RowFasterThanSGEMV {
                gemv(y, m.floats + r0 * C, ip.pointer.assumingMemoryBound(to: Float.self), rows: r1 - r0, cols: C)
            } else {
                k.matmul(y, ldy: m.rows, m.row(r0), wStride: m.rowBytes, storage: m.storage, inputs[i].0.pointer,
                         xStride: inputs[i].1, T: T, rows: r1 - r0, cols: C)
            }
        }
    }
    for (i, m) in weights.enumerated() {
        guard let b = biases[i] else { continue }
        for t in 0..<T {
            let o = outs[i] + t * m.rows
            for j in 0..<m.rows { o[j] += b[j] }
        }
    }
}
