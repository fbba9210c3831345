import BamModels
import Foundation
import Testing

/// Fixtures committed beside the tests (written by the scripts under tools/).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func url(_ path: String) -> URL { root.appendingPathComponent(path) }
}

/// A fresh temporary directory, removed when the returned object dies.
final class TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("bam-mix-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
}

/// Largest absolute difference, and where the first difference above `tolerance` is (for messages).
func compare(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, tolerance: Float) -> (maxDiff: Float, firstBad: Int?) {
    var m: Float = 0
    var first: Int? = nil
    for i in 0..<count {
        let d = abs(a[i] - b[i])
        if !(d <= tolerance) && first == nil { first = i }
        if d > m || d.isNaN { m = d.isNaN ? .infinity : d }
    }
    return (m, first)
}

func compare(_ a: [Float], _ b: [Float], tolerance: Float) -> (maxDiff: Float, firstBad: Int?) {
    precondition(a.count == b.count)
    return a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
        compare(pa.baseAddress!, pb.baseAddress!, count: a.count, tolerance: tolerance)
    } }
}

/// What a twin test reports when a kernel and its twin disagree: the first index beyond the
/// tolerance, both values there, and the largest difference; nil when they agree.
func twinMismatch(_ kernel: UnsafePointer<Float>, _ twin: UnsafePointer<Float>, count: Int, tolerance: Float) -> String? {
    let (maxDiff, firstBad) = compare(kernel, twin, count: count, tolerance: tolerance)
    guard let i = firstBad else { return nil }
    return "first element beyond \(tolerance) at index \(i) of \(count): kernel \(kernel[i]), twin \(twin[i]) (largest |difference| \(maxDiff))"
}

/// Double values (scalars, per-row losses) must differ by strictly less than `tolerance`.
func twinMismatch(_ kernel: [Double], _ twin: [Double], tolerance: Double) -> String? {
    precondition(kernel.count == twin.count)
    var maxDiff = 0.0
    var first: Int? = nil
    for i in kernel.indices {
        let d = abs(kernel[i] - twin[i])
        if !(d < tolerance) && first == nil { first = i }
        maxDiff = d.isNaN ? .infinity : max(maxDiff, d)
    }
    guard let i = first else { return nil }
    return "first element not within \(tolerance) at index \(i) of \(kernel.count): kernel \(kernel[i]), twin \(twin[i]) (largest |difference| \(maxDiff))"
}

/// Holds an optimised kernel's output to its naive twin's, element by element; a failure names
/// `what`, the first bad index and both values there.
func expectTwins(_ kernel: UnsafePointer<Float>, _ twin: UnsafePointer<Float>, count: Int, tolerance: Float, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    if let message = twinMismatch(kernel, twin, count: count, tolerance: tolerance) {
        Issue.record("\(what): \(message)", sourceLocation: sourceLocation)
    }
}

func expectTwins(_ kernel: [Double], _ twin: [Double], tolerance: Double, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    if let message = twinMismatch(kernel, twin, tolerance: tolerance) {
        Issue.record("\(what): \(message)", sourceLocation: sourceLocation)
    }
}

/// Deterministic pseudo-random floats (SplitMix64), so kernel tests need no global RNG state.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
    mutating func normal() -> Float {
        let u1 = max(uniform(), 1e-7), u2 = uniform()
        return (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
    }
    mutating func tensor(_ shape: [Int], scale: Float = 1) -> Tensor {
        let t = Tensor(shape: shape)
        for i in 0..<t.count { t.data[i] = normal() * scale }
        return t
    }
}

/// The BamError `body` throws (nil, with an issue recorded, when it throws nothing or something else).
func bamError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> BamError? {
    do {
        try body()
        Issue.record("expected a BamError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let e as BamError {
        return e
    } catch {
        Issue.record("expected a BamError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
