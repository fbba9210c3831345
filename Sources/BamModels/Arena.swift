import BamTensors
import Foundation

/// Activation buffers of one forward call, handed out by size and given back together when the
/// arena dies. Buffers come from a `BufferPool` that outlives the call: a perplexity run asks for
/// the same sizes chunk after chunk, and reusing them saves the page faults and zeroing of fresh
/// allocations (~4 % of a pass). Contents are uninitialised until written (every user writes
/// before reading).
final class Arena: @unchecked Sendable {
    private let pool: BufferPool
    private var blocks: [(UnsafeMutablePointer<Float>, Int)] = []
    private var children: [Arena] = []

    init(pool: BufferPool) { self.pool = pool }

    deinit { for (p, n) in blocks { pool.give(p, count: n) } }

    func take(_ n: Int) -> UnsafeMutablePointer<Float> {
        let count = max(1, n)
        let p = pool.take(count)
        blocks.append((p, count))
        return p
    }

    /// A new arena on the same pool, kept alive as long as this one (one per concurrent unit of work).
    func child() -> Arena {
        let a = Arena(pool: pool)
        children.append(a)
        return a
    }
}

/// Free buffers by size class, shared by the arenas of one model (thread-safe). Sizes are rounded
/// up to one of four classes per power of two (at most 25 % slack), so that buffers whose size
/// varies from call to call — the token rows routed to each expert — still find a match. The pool
/// holds about what one forward call used at its peak: what is given back is taken again.
final class BufferPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]

    deinit { for list in free.values { for p in list { p.deallocate() } } }

    /// The capacity actually allocated for a request of n floats.
    static func sizeClass(_ n: Int) -> Int {
        guard n > 64 else { return 64 }
        let top = Int.bitWidth - 1 - (n - 1).leadingZeroBitCount   // floor(log2(n - 1))
        let step = 1 << (top - 2)
        return (n + step - 1) / step * step
    }

    func take(_ n: Int) -> UnsafeMutablePointer<Float> {
        let c = Self.sizeClass(n)
        lock.lock()
        let p = free[c]?.popLast()
        lock.unlock()
        return p ?? UnsafeMutablePointer<Float>.allocate(capacity: c)
    }

    func give(_ p: UnsafeMutablePointer<Float>, count n: Int) {
        let c = Self.sizeClass(n)
        lock.lock()
        free[c, default: []].append(p)
        lock.unlock()
    }

    /// Frees every pooled buffer (after a long prefill, before many small decode steps).
    func drain() {
        lock.lock()
        for list in free.values { for p in list { p.deallocate() } }
        free = [:]
        lock.unlock()
    }
}
