// Dimension glossary used throughout bam-mix (after llm.c):
//   B batch, T time (sequence positions), C channels (hidden size), V vocabulary,
//   NH query heads, NKV key/value heads, HS head size, F FFN intermediate size,
//   L layers, E experts, K experts chosen per token (top-k).
// Every buffer is row-major and float32; a comment beside each field gives its shape.

import Foundation

/// A dense float32 tensor. Storage is either owned (allocated and freed here) or borrowed from
/// an object that keeps it alive, e.g. a memory-mapped safetensors file for zero-copy F32 weights.
///
/// It is a class on purpose: model parameters are shared between the forward pass, the optimiser
/// and the checkpoint writer without copies. Borrowed storage comes from private (copy-on-write)
/// mappings, so writing into a parameter never touches the file it came from.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>
    private let owner: AnyObject?

    /// A zero-filled tensor.
    public init(shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        self.data.initialize(repeating: 0, count: max(count, 1))
        self.owner = nil
    }

    /// A tensor whose values are unspecified until written: a KV cache, of which only the
    /// positions stored are ever read. Zeroing it cost a 512-token prefill of the 58M Llama 9 ms
    /// (16.8 MB, one thread, every page faulted in by the memset) before the first product.
    public init(uninitializedShape shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        self.owner = nil
        #if DEBUG
        // Test builds fill it with NaN, so that reading a value never written shows in the results.
        data.initialize(repeating: .nan, count: max(count, 1))
        #endif
    }

    public convenience init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "Tensor: shape \(shape) does not hold \(values.count) values")
        self.init(shape: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
    }

    /// Borrows `data`, which must stay valid as long as `owner` lives.
    public init(shape: [Int], borrowing data: UnsafeMutablePointer<Float>, owner: AnyObject) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = data
        self.owner = owner
    }

    deinit {
        if owner == nil { data.deallocate() }
    }

    public var isBorrowed: Bool { owner != nil }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public var array: [Float] { Array(buffer) }
    public var byteCount: Int { count * MemoryLayout<Float>.stride }

    /// Rows and columns of a 2-D tensor (a [out, in] linear weight has rows = out).
    public var rows: Int { shape.count >= 2 ? shape[0] : 1 }
    public var columns: Int { shape.last ?? 1 }

    public subscript(index: Int) -> Float {
        get { data[index] }
        set { data[index] = newValue }
    }

    /// A fresh owned copy (with an optional new shape of the same size).
    public func copy(shape newShape: [Int]? = nil) -> Tensor {
        let s = newShape ?? shape
        precondition(s.reduce(1, *) == count, "Tensor.copy: \(s) does not match \(count) values")
        let t = Tensor(shape: s)
        t.data.update(from: data, count: count)
        return t
    }

    public func zero() { data.update(repeating: 0, count: count) }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    /// Pointer to row `r` of a tensor viewed as [rows, columns].
    @inline(__always) public func row(_ r: Int) -> UnsafeMutablePointer<Float> { data + r * columns }

    /// True when every value is finite.
    public var isFinite: Bool {
        for i in 0..<count where !data[i].isFinite { return false }
        return true
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
}

/// A growable scratch buffer reused across calls (activations), so hot paths do not allocate.
public final class Scratch: @unchecked Sendable {
    public private(set) var data: UnsafeMutablePointer<Float>
    public private(set) var capacity: Int

    public init(capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        self.data = .allocate(capacity: self.capacity)
        self.data.initialize(repeating: 0, count: self.capacity)
    }

    deinit { data.deallocate() }

    /// Returns a pointer to at least `count` floats; contents are unspecified after growth.
    @discardableResult
    public func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            data.deallocate()
            capacity = count
            data = .allocate(capacity: count)
            data.initialize(repeating: 0, count: count)
        }
        return data
    }
}

/// Lets `@Sendable` closures (Dispatch workers) capture a raw pointer; each worker must write a
/// disjoint range, which the call sites state.
public struct SendablePointer<T>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<T>
    public init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

public struct SendableRawPointer: @unchecked Sendable {
    public let pointer: UnsafeRawPointer
    public init(_ pointer: UnsafeRawPointer) { self.pointer = pointer }
}
