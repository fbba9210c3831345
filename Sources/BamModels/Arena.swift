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

/// Free buffers by exact size, shared by the arenas of one model (thread-safe). It holds at most
/// what one forward call used at its peak, since every buffer given back is taken again by the
/// next call of the same shape.
final class BufferPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]

    deinit { for list in free.values { for p in list { p.deallocate() } } }

    func take(_ n: Int) -> UnsafeMutablePointer<Float> {
        lock.lock()
        let p = free[n]?.popLast()
        lock.unlock()
        return p ?? UnsafeMutablePointer<Float>.allocate(capacity: n)
    }

    func give(_ p: UnsafeMutablePointer<Float>, count n: Int) {
        lock.lock()
        free[n, default: []].append(p)
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
