@testable import BamTensors
import Foundation
import Synchronization
import Testing

/// The worker pool behind every fan-out: each item of each job runs exactly once, whether the
/// helpers are polling or parked, whatever the job sizes, and a second job offered while one runs
/// is refused (its caller falls back to Dispatch) rather than mixed into it.
@Suite("Worker pool")
struct WorkerPoolTests {
    /// Runs `jobs` jobs of varying sizes and checks every item ran once per job.
    private func exercise(_ pool: WorkerPool, jobs: Int, pauseEvery: Int = 0) -> Bool {
        var allOnce = true
        for j in 0..<jobs {
            let count = 1 + (j * 7) % 37
            // One slot per item, each written only by the thread that claimed the item.
            let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
            defer { hits.deallocate() }
            hits.initialize(repeating: 0)
            let ran = pool.run(count) { i in hits[i] += 1 }
            if !ran { return false }
            allOnce = allOnce && hits.allSatisfy { $0 == 1 }
            if pauseEvery > 0 && j % pauseEvery == 0 { usleep(300) }   // longer than the poll: helpers park
        }
        return allOnce
    }

    @Test("every item of every job runs exactly once, helpers polling")
    func polling() {
        let pool = WorkerPool(size: 3, spinNanoseconds: 5_000_000)
        #expect(exercise(pool, jobs: 2000))
    }

    @Test("every item runs exactly once when helpers park between jobs")
    func parking() {
        let pool = WorkerPool(size: 3, spinNanoseconds: 0)
        #expect(exercise(pool, jobs: 500))
        let spinning = WorkerPool(size: 2, spinNanoseconds: 100_000)
        #expect(exercise(spinning, jobs: 200, pauseEvery: 3))
    }

    @Test("a job offered while another runs is refused, and so is one larger than a job holds")
    func refusesSecondJob() {
        let pool = WorkerPool(size: 2, spinNanoseconds: 1_000_000)
        let nestedRan = Atomic<Int>(0)
        let ran = pool.run(4) { _ in
            if pool.run(2, { _ in nestedRan.add(1, ordering: .relaxed) }) { nestedRan.add(100, ordering: .relaxed) }
        }
        #expect(ran)
        #expect(nestedRan.load(ordering: .relaxed) == 0)
        #expect(!pool.run(WorkerPool.maxItems + 1) { _ in })
        #expect(exercise(pool, jobs: 10))
    }

    @Test("fan-outs from several threads at once, and nested ones, each run every item once")
    func concurrentCallers() {
        let total = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<200 {
                BLASThreads.fanOut(5) { _ in
                    total.add(1, ordering: .relaxed)
                    BLASThreads.fanOut(3) { _ in total.add(1, ordering: .relaxed) }
                }
            }
        }
        #expect(total.load(ordering: .relaxed) == 4 * 200 * 5 * 4)
        let ranges = Atomic<Int>(0)
        BLASThreads.parallelRanges(100_000, minimumPerChunk: 1000) { r in ranges.add(r.count, ordering: .relaxed) }
        #expect(ranges.load(ordering: .relaxed) == 100_000)
    }
}
