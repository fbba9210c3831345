import BamModels
import BamTensors
import CBLAS
import Foundation

/// `kernels [--rows N] [--cols N] [--tokens T] [--rounds R]`: the low-precision weight kernels.
///  - decode: each family's fused kernel on one (and eight) activation rows against a weight
///    matrix larger than the caches, split across the workers with one hand-off, as GB/s of
///    stored weight read, beside the floor measured in the same run: the same number of bytes
///    summed as float32 by single-threaded OpenBLAS sasum on the same workers and split. f32 also
///    shows sgemv/sgemm (today's path) for comparison.
///  - prefill: `linearForward` with a bf16 / f16 / Q8_0 weight (panels converted to float32,
///    then sgemm) as GFLOP/s against plain sgemm on the f32 weight of the same shape.
/// Prints the CPU model and the kernel families. Numbers from a shared machine are indicative
/// only: every figure is a best of `rounds`, and ratios come from the same run.
func runKernelBench(arguments: [String]) throws {
    let rows = option(arguments, "--rows").flatMap(Int.init) ?? 8192
    let cols = option(arguments, "--cols").flatMap(Int.init) ?? 4096
    let tokens = option(arguments, "--tokens").flatMap(Int.init) ?? 512
    let rounds = option(arguments, "--rounds").flatMap(Int.init) ?? 5
    guard cols % 32 == 0, rows > 0 else { throw BamError.usage("kernels: --cols must be a multiple of 32 (Q8_0 blocks)") }
    BLASThreads.configure()
    let workers = BLASThreads.defaultCount
    print("CPU: \(cpuModel()); features: \(KernelFamily.cpuFeatures.joined(separator: " "))")
    print("kernel families: \(KernelFamily.supported.map(\.rawValue).joined(separator: ", ")); active \(WeightKernels.active.name); OpenBLAS \(BLASThreads.kernels); \(workers) workers")
    print("(a shared machine gives indicative numbers only: best of \(rounds), ratios from this run)")

    var rng = SplitMix64(seed: 11)
    let source = Tensor(shape: [rows, cols])
    for i in 0..<source.count { source.data[i] = Float(Int64(rng.next() % 2001) - 1000) * 1e-4 }
    let f32 = try WeightMatrix(source)
    let stored: [(String, WeightMatrix)] = try [("f32", f32), ("f16", f32.converted(to: .f16)), ("bf16", f32.converted(to: .bf16)),
                                               ("q8_0", f32.converted(to: .q8_0))]

    // The floor: bytes read once by sasum, split and handed off exactly like the kernels.
    let floorBuffer = Tensor(shape: [rows * cols])
    floorBuffer.fill(1)
    func floorSeconds(bytes: Int) -> Double {
        let n = bytes / 4, perRow = max(1, n / rows)
        let p = SendablePointer(floorBuffer.data)
        let sink = Tensor(shape: [rows])
        let s = SendablePointer(sink.data)
        return best(rounds) {
            BLASThreads.splitDecodeRows(rows, bytes: bytes) { r in
                let lo = r.lowerBound * perRow, hi = r.upperBound == rows ? n : r.upperBound * perRow
                s.pointer[r.lowerBound] = cblas_sasum(Int32(hi - lo), p.pointer + lo, 1)
            }
        }
    }

    print("\ndecode: \(rows) x \(cols) weight, GB/s of stored bytes (x floor = share of the memory floor)")
    let x = Tensor(shape: [8, cols])
    for i in 0..<x.count { x.data[i] = Float(Int64(rng.next() % 2001) - 1000) * 1e-3 }
    let y = Tensor(shape: [8, rows])
    for (name, w) in stored {
        let floor = floorSeconds(bytes: w.residentBytes)
        let gb = Double(w.residentBytes) / 1e9
        var line = String(format: "  %-5@ %7.1f MB  floor %6.1f GB/s |", name as NSString, Double(w.residentBytes) / 1e6, gb / floor)
        for family in KernelFamily.supported {
            let k = family.kernels!
            for T in [1, 8] {
                let t = best(rounds) { decodeSplit(k, y.data, x.data, w, T: T) }
                line += String(format: " %@ T=%d %5.1f (%.2fx)", family.rawValue as NSString, T, gb / t, floor / t)
            }
        }
        if name == "f32" {
            // OpenBLAS on the same split: sgemv for one row, sgemm for eight.
            let wp = SendablePointer(source.data), xp = SendablePointer(x.data), yp = SendablePointer(y.data)
            for T in [1, 8] {
                let t = best(rounds) {
                    BLASThreads.splitDecodeRows(rows, bytes: w.residentBytes) { r in
                        if T == 1 {
                            gemv(yp.pointer + r.lowerBound, wp.pointer + r.lowerBound * cols, xp.pointer, rows: r.count, cols: cols)
                        } else {
                            gemm(yp.pointer + r.lowerBound, xp.pointer, wp.pointer + r.lowerBound * cols, m: T, n: r.count, k: cols,
                                 transB: true, ldc: rows)
                        }
                    }
                }
                line += String(format: " | %@ T=%d %5.1f (%.2fx)", (T == 1 ? "sgemv" : "sgemm") as NSString, T, gb / t, floor / t)
            }
        }
        print(line)
    }

    print("\nprefill: T = \(tokens) rows, GFLOP/s of linearForward (panels to f32 + sgemm) against sgemm on f32 weights")
    let shapes = [(2048, 2048), (5632, 2048), (2048, 5632)]
    for (oc, c) in shapes {
        let src = Tensor(shape: [oc, c])
        for i in 0..<src.count { src.data[i] = Float(Int64(rng.next() % 2001) - 1000) * 1e-4 }
        let inp = Tensor(shape: [tokens, c])
        for i in 0..<inp.count { inp.data[i] = Float(Int64(rng.next() % 2001) - 1000) * 1e-3 }
        let out = Tensor(shape: [tokens, oc])
        let flops = 2 * Double(tokens) * Double(oc) * Double(c)
        let base = best(max(2, rounds / 2)) { gemm(out.data, inp.data, src.data, m: tokens, n: oc, k: c, transB: true) }
        var line = String(format: "  %5d x %-5d sgemm %6.1f |", oc, c, flops / base / 1e9)
        let w = try WeightMatrix(src)
        for dtype in [DType.bf16, .f16, .q8_0] {
            let lw = try w.converted(to: dtype)
            let t = best(max(2, rounds / 2)) { linearForward(out.data, inp.data, lw, nil, T: tokens) }
            line += String(format: " %@ %6.1f (%.2fx)", dtype.rawValue as NSString, flops / t / 1e9, base / t)
        }
        print(line)
    }
}

/// One decode product through a given family, split across the workers as `linearForward` does.
private func decodeSplit(_ k: WeightKernels, _ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ w: WeightMatrix, T: Int) {
    let C = w.columns, OC = w.rows
    var x = UnsafeRawPointer(inp), xStride = C * 4
    var quantized: UnsafeMutableRawPointer? = nil
    if w.storage == .q8_0 {
        let q = UnsafeMutableRawPointer.allocate(byteCount: T * w.rowBytes, alignment: 64)
        for t in 0..<T { k.quantizeQ8_0(q + t * w.rowBytes, inp + t * C, count: C) }
        quantized = q
        x = UnsafeRawPointer(q)
        xStride = w.rowBytes
    }
    defer { quantized?.deallocate() }
    let op = SendablePointer(out), xp = SendableRawPointer(x), stride = xStride
    BLASThreads.splitDecodeRows(OC, bytes: w.residentBytes) { r in
        k.matmul(op.pointer + r.lowerBound, ldy: OC, w.row(r.lowerBound), wStride: w.rowBytes, storage: w.storage, xp.pointer,
                 xStride: stride, T: T, rows: r.count, cols: C)
    }
}

private func best(_ rounds: Int, _ body: () -> Void) -> Double {
    body()   // warm-up (page faults, caches)
    var t = Double.infinity
    for _ in 0..<max(1, rounds) { t = min(t, seconds(body)) }
    return t
}

private func cpuModel() -> String {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
          let colon = line.firstIndex(of: ":") else { return "unknown" }
    return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
}
