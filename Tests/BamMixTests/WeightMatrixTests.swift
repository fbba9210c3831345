import BamTensors
import Foundation
import Testing

/// Keeps borrowed bytes alive, as a file mapping does, and frees them with the last reference
/// (LeakSanitizer, `tools/test --sanitize`, caught the test's buffers never being freed).
private final class ByteOwner {
    private let base: UnsafeMutableRawPointer
    let pointer: UnsafeMutableRawPointer
    init(count: Int, offset: Int = 0) {
        base = .allocate(byteCount: count + offset, alignment: 64)
        pointer = base + offset
    }
    deinit { base.deallocate() }
}

@Suite("WeightMatrix: stored types, conversions and linear")
struct WeightMatrixTests {
    @Test("an f32 tensor is borrowed without a copy; sizes are the stored sizes")
    func borrowAndSizes() throws {
        var r = TestRandom(seed: 21)
        let t = r.tensor([6, 64])
        let w = try WeightMatrix(t)
        #expect(w.isBorrowed && w.data == UnsafeRawPointer(t.data))
        #expect(w.residentBytes == 6 * 64 * 4)
        let q = try w.converted(to: .q8_0)
        #expect(!q.isBorrowed && q.storage == .q8_0 && q.residentBytes == 6 * 2 * 34 && q.rowBytes == 68)
        let h = try w.converted(to: .bf16)
        #expect(h.residentBytes == 6 * 64 * 2)
        #expect(try w.converted(to: .f32) === w)
    }

    @Test("conversions at load equal the scalar converters")
    func conversions() throws {
        var r = TestRandom(seed: 22)
        let (rows, cols) = (9, 96)
        let t = r.tensor([rows, cols], scale: 3)
        let w = try WeightMatrix(t)
        let q = try w.converted(to: .q8_0)
        let want = UnsafeMutableRawPointer.allocate(byteCount: rows * cols / 32 * 34, alignment: 1)
        defer { want.deallocate() }
        Q8_0.quantize(t.data, count: rows * cols, into: want)
        #expect(memcmp(q.data, want, rows * cols / 32 * 34) == 0)
        for dtype in [DType.bf16, .f16] {
            let n = try w.converted(to: dtype)
            for i in 0..<(rows * cols) {
                let bits = n.data.load(fromByteOffset: 2 * i, as: UInt16.self)
                let expected = dtype == .bf16 ? BFloat16.fromFloat(t.data[i]) : Float16(t.data[i]).bitPattern
                if bits != expected { Issue.record("\(dtype) value \(i): \(bits) != \(expected)"); break }
            }
            // Widening back is exact: the f32 copy holds exactly the rounded values.
            let back = try n.converted(to: .f32).toTensor()
            var rounded = t.array
            DTypeConversion.round(&rounded, count: rounded.count, to: dtype)
            #expect(back.array == rounded)
        }
        // Q8_0 -> f32 is the dequantization.
        let deq = try q.converted(to: .f32).toTensor()
        var expected = [Float](repeating: 0, count: rows * cols)
        Q8_0.dequantize(want, count: rows * cols, into: &expected)
        #expect(deq.array == expected)
    }

    @Test("bad shapes and types are refused with a clear error")
    func errors() throws {
        let owner = ByteOwner(count: 4096)
        #expect(throws: BamError.self) { try WeightMatrix(rows: 2, columns: 33, dtype: .q8_0, borrowing: owner.pointer, owner: owner) }
        #expect(throws: BamError.self) { try WeightMatrix(rows: 2, columns: 8, dtype: .i32, borrowing: owner.pointer, owner: owner) }
        #expect(throws: BamError.self) { try WeightMatrix(rows: 2, columns: 8, dtype: .f32, borrowing: owner.pointer + 2, owner: owner) }
        var r = TestRandom(seed: 23)
        let w = try WeightMatrix(r.tensor([2, 40]))
        do {
            _ = try w.converted(to: .q8_0)
            Issue.record("40 columns converted to Q8_0")
        } catch let e as BamError {
            #expect(e.message.contains("32"))
        }
    }

    /// A weight of `storage` made from random values (misaligned for the 2-byte types, as a
    /// safetensors mapping may be), borrowed like a mapped tensor.
    private func weight(_ storage: WeightStorage, rows: Int, cols: Int, seed: UInt64) throws -> WeightMatrix {
        var r = TestRandom(seed: seed)
        let t = r.tensor([rows, cols], scale: 0.5)
        let dtype = storage.dtype
        let bytes = dtype.byteCount(elements: rows * cols)!
        let owner = ByteOwner(count: bytes, offset: dtype == .f32 ? 0 : 1)
        try DTypeConversion.fromFloat32(t.data, count: rows * cols, dtype: dtype, into: owner.pointer)
        return try WeightMatrix(rows: rows, columns: cols, dtype: dtype, borrowing: owner.pointer, owner: owner)
    }

    /// linearForward against its naive twin, each output within the summation-order bound of its
    /// dot product (see WeightKernelTests), over the terms the chosen path multiplies.
    private func checkLinear(_ w: WeightMatrix, T: Int, seed: UInt64) {
        var r = TestRandom(seed: seed)
        let (C, OC) = (w.columns, w.rows)
        let x = r.tensor([T, C]), b = r.tensor([OC])
        let got = Tensor(shape: [T, OC]), want = Tensor(shape: [T, OC])
        linearForward(got.data, x.data, w, b.data, T: T)
        linearForwardNaive(want.data, x.data, w, b.data, T: T)
        let wf = w.toTensor()
        let quantizedDecode = w.storage == .q8_0 && T <= WeightMatrix.fusedRowLimit
        var xs = [Float](repeating: 0, count: C)
        var worst = 0.0
        for t in 0..<T {
            if quantizedDecode {
                var q = [UInt8](repeating: 0, count: C / 32 * 34)
                Q8_0.quantize(x.data + t * C, count: C, into: &q)
                Q8_0.dequantize(q, count: C, into: &xs)
            } else {
                for c in 0..<C { xs[c] = x.data[t * C + c] }
            }
            for o in 0..<OC {
                var abs = Swift.abs(Double(b.data[o]))
                for c in 0..<C { abs += Swift.abs(Double(wf.data[o * C + c]) * Double(xs[c])) }
                let bound = Double(C + 4) * 0x1p-24 * abs + 1e-30
                let err = Swift.abs(Double(got.data[t * OC + o]) - Double(want.data[t * OC + o]))
                worst = max(worst, err.isNaN ? .infinity : err / bound)
            }
        }
        #expect(worst <= 1, "\(w) T=\(T): error \(worst)x the summation-order bound")
    }

    @Test("linear, decode and prefill, every stored type (f64 stands in for a dequantized block type)",
          arguments: [WeightStorage.f32, .f16, .bf16, .q8_0, .dequantized(.f64)])
    func linear(storage: WeightStorage) throws {
        let w = try weight(storage, rows: 70, cols: 96, seed: 31)
        for T in [1, 2, 5, 8, 9, 37] { checkLinear(w, T: T, seed: 40 + UInt64(T)) }
    }

    @Test("linear split across workers (decode reads >= 1 MiB, prefill many multiply-adds)",
          arguments: [WeightStorage.bf16, .q8_0])
    func linearSplit(storage: WeightStorage) throws {
        let w = try weight(storage, rows: 2048, cols: 512, seed: 32)
        for T in [1, 3, 24] { checkLinear(w, T: T, seed: 50 + UInt64(T)) }
    }
}
