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

    /// Rows per float32 panel in prefill for `columns` inputs: about 2 MiB of floats, so that each
    /// sgemm call is large enough to amortise packing the activations (which OpenBLAS does once
    /// per call), at least 64 rows and at most 512, a multiple of 16.
    static func panelRows(columns: Int) -> Int {
        let rows = (2 << 20) / (4 * max(columns, 1))
        return min(512, max(64, rows / 16 * 16))
    }
}

/// out[T, OC] = inp[T, C] @ W^T (+ bias[OC]) for W stored as `weight.storage` (C = weight.columns,
/// OC = weight.rows). Q8_0 weights in decode multiply Q8_0-quantized activations (as llama.cpp);
/// every other case is float32 arithmetic on exactly widened or dequantized weights.
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
    switch weight.storage {
    case .q8_0:
        // The activations are quantized once, before the hand-off (T * C values: cheap).
        let xRowBytes = weight.rowBytes
        let xq = UnsafeMutableRawPointer.allocate(byteCount: T * xRowBytes, alignment: 64)
        defer { xq.deallocate() }
        for t in 0..<T { k.quantizeQ8_0(xq + t * xRowBytes, inp + t * C, count: C) }
        let xp = SendableRawPointer(UnsafeRawPointer(xq))
        BLASThreads.splitDecodeRows(OC, bytes: weight.residentBytes) { r in
            k.matmul(op.pointer + r.lowerBound, ldy: OC, weight.row(r.lowerBound), wStride: weight.rowBytes, storage: .q8_0,
                     xp.pointer, xStride: xRowBytes, T: T, rows: r.count, cols: C)
        }
    case .f16, .bf16, .f32:
        let xp = SendableRawPointer(UnsafeRawPointer(inp))
        BLASThreads.splitDecodeRows(OC, bytes: weight.residentBytes) { r in
            k.matmul(op.pointer + r.lowerBound, ldy: OC, weight.row(r.lowerBound), wStride: weight.rowBytes,
                     storage: weight.storage, xp.pointer, xStride: C * 4, T: T, rows: r.count, cols: C)
        }
    case .dequantized:
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
/// double. Q8_0 weights in decode (T <= fusedRowLimit): activations quantized by `Q8_0.quantize`,
/// integer products summed per block and scaled by both half scales; otherwise the weights
/// dequantized by `DTypeConversion` (scalar Swift, not the SIMD kernels) times float32 inputs.
public func linearForwardNaive(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ weight: WeightMatrix,
                               _ bias: UnsafePointer<Float>?, T: Int) {
    let C = weight.columns, OC = weight.rows
    if weight.storage == .q8_0 && T <= WeightMatrix.fusedRowLimit {
        let nb = C / Q8_0.blockSize
        let xq = UnsafeMutableRawPointer.allocate(byteCount: max(weight.rowBytes, 1), alignment: 1)
        defer { xq.deallocate() }
        for t in 0..<T {
            Q8_0.quantize(inp + t * C, count: C, into: xq)
            for o in 0..<OC {
                let w = weight.row(o)
                var s: Double = bias.map { Double($0[o]) } ?? 0
                for b in 0..<nb {
                    let wb = w + b * Q8_0.blockBytes, xb = UnsafeRawPointer(xq) + b * Q8_0.blockBytes
                    var dot: Int32 = 0
                    for j in 0..<Q8_0.blockSize {
                        dot += Int32(wb.load(fromByteOffset: 2 + j, as: Int8.self)) * Int32(xb.load(fromByteOffset: 2 + j, as: Int8.self))
                    }
                    let dw = Float(wb.loadUnaligned(as: Float16.self)), dx = Float(xb.loadUnaligned(as: Float16.self))
                    s += Double(dw) * Double(dx) * Double(dot)
                }
                out[t * OC + o] = Float(s)
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
        && weights.allSatisfy { if case .dequantized = $0.storage { false } else { true } }
    guard fusable, workers > 1, bytes >= BLASThreads.splitBytes, !BLASThreads.inParallelRegion else {
        for i in weights.indices { linearForward(outs[i], inp, weights[i], biases[i], T: T) }
        return
    }
    let k = WeightKernels.active
    // Q8_0 weights multiply Q8_0 activations, quantized once for all of them.
    let xRowBytes = Q8_0.blockBytes * (C / Q8_0.blockSize)
    let xq = weights.contains { $0.storage == .q8_0 } ? UnsafeMutableRawPointer.allocate(byteCount: T * xRowBytes, alignment: 64) : nil
    defer { xq?.deallocate() }
    if let xq { for t in 0..<T { k.quantizeQ8_0(xq + t * xRowBytes, inp + t * C, count: C) } }
    let ip = SendableRawPointer(UnsafeRawPointer(inp)), qp = xq.map { SendableRawPointer(UnsafeRawPointer($0)) }
    let op = outs.map { SendablePointer($0) }
    BLASThreads.fanOut(workers) { w in
        for (i, m) in weights.enumerated() {
            // Contiguous blocks of 16-row multiples, as splitDecodeRows cuts one matrix.
            let rows = BLASThreads.block(of: m.rows, worker: w, of: workers)
            let r0 = rows.lowerBound, r1 = rows.upperBound
            guard r0 < r1 else { continue }
            let y = op[i].pointer + r0
            switch m.storage {
            case .f32 where T == 1 && !k.family.streamsOneF32RowFasterThanSGEMV:
                gemv(y, m.floats + r0 * C, ip.pointer.assumingMemoryBound(to: Float.self), rows: r1 - r0, cols: C)
            case .q8_0:
                k.matmul(y, ldy: m.rows, m.row(r0), wStride: m.rowBytes, storage: .q8_0, qp!.pointer, xStride: xRowBytes,
                         T: T, rows: r1 - r0, cols: C)
            default:
                k.matmul(y, ldy: m.rows, m.row(r0), wStride: m.rowBytes, storage: m.storage, ip.pointer, xStride: C * 4,
                         T: T, rows: r1 - r0, cols: C)
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
