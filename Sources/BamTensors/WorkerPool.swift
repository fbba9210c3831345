import BamKernelsC
import Foundation
import Synchronization

/// The threads behind `BLASThreads`' fan-outs: the caller plus `size - 1` helper threads that,
/// after a job, poll for the next one for a short while (`spinNanoseconds`) before they park.
///
/// Why not Dispatch alone: decode is a chain of small hand-offs (4 per dense layer, each a few
/// tens of microseconds of memory traffic), and waking a parked Dispatch worker costs 40-90 µs on
/// the development VMs (BamBench `bam` prints it) — as much as the work it hands off. A helper that
/// is still polling picks a job up in about a microsecond, as llama.cpp's own thread pool does. The
/// poll is bounded so that an idle process, or one sharing a loaded machine, gives its cores back:
/// an earlier pool that spun without bound made decode several times slower at load average 7-9.
///
/// Work is claimed item by item from one atomic word (generation | count | next index), so uneven
/// items balance as with `DispatchQueue.concurrentPerform`, and a helper that wakes late for a job
/// already finished cannot claim an item of the next one (its claim names the generation). One job
/// at a time: a call while another job runs (a nested fan-out, or a second thread) is refused and
/// the caller falls back to Dispatch.
final class WorkerPool: @unchecked Sendable {
    /// Participants in a job, the calling thread included.
    let size: Int
    /// How long a helper polls for the next job before it parks.
    let spinNanoseconds: UInt64

    /// generation (high 32 bits) | item count (16 bits) | next unclaimed item (low 16 bits).
    private let word = Atomic<UInt64>(0)
    /// Items of the current job finished.
    private let done = Atomic<Int>(0)
    /// Helpers parked (or about to park) on `wake`.
    private let sleepers = Atomic<Int>(0)
    /// True while a job runs.
    private let busy = Atomic<Bool>(false)
    /// The current job; written only by the thread that owns `busy`, before the generation that
    /// publishes it, and read by helpers only after claiming one of its items.
    nonisolated(unsafe) private var job: ((Int) -> Void)?
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let started = Atomic<Bool>(false)

    /// The most items one job may have (the width of the count field).
    static let maxItems = 0xFFFF

    init(size: Int, spinNanoseconds: UInt64) {
        self.size = max(1, size)
        self.spinNanoseconds = spinNanoseconds
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wake, nil)
    }

    /// The pool `BLASThreads` uses: BAM_MIX_SPIN_US sets the poll (default 200 µs; 0 parks at
    /// once, which costs a wake-up per hand-off like Dispatch).
    static func make(size: Int) -> WorkerPool {
        let env = ProcessInfo.processInfo.environment["BAM_MIX_SPIN_US"].flatMap { UInt64($0) }
        return WorkerPool(size: size, spinNanoseconds: (env ?? 200) * 1000)
    }

    /// Runs `body(0..<count)` on the caller and the helpers; returns false, having run nothing,
    /// when another job holds the pool or `count` does not fit one job.
    func run(_ count: Int, _ body: (Int) -> Void) -> Bool {
        guard count > 0, count <= Self.maxItems, size > 1,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        startHelpers()
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            done.store(0, ordering: .relaxed)
            let generation = (word.load(ordering: .relaxed) >> 32) &+ 1
            // Sequentially consistent with the helpers' `sleepers` increment: either this store is
            // seen by a helper about to park, or that helper's increment is seen below.
            word.store(generation << 32 | UInt64(count) << 16, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(lock)
                pthread_cond_broadcast(wake)
                pthread_mutex_unlock(lock)
            }
            work(generation: generation)
            var polls = 0
            while done.load(ordering: .acquiring) < count {
                bam_cpu_relax()
                polls += 1
                if polls & 1023 == 0 { sched_yield() }   // a helper descheduled on a loaded machine
            }
            job = nil
        }
        return true
    }

    /// Claims and runs items of `generation` until none is left (or a newer job has started).
    private func work(generation: UInt64) {
        while true {
            let w = word.load(ordering: .acquiring)
            let count = (w >> 16) & 0xFFFF, next = w & 0xFFFF
            guard w >> 32 == generation, next < count else { return }
            guard word.compareExchange(expected: w, desired: w + 1, ordering: .acquiringAndReleasing).exchanged else { continue }
            job!(Int(next))
            done.add(1, ordering: .releasing)
        }
    }

    private func startHelpers() {
        guard !started.load(ordering: .acquiring) else { return }
        started.store(true, ordering: .releasing)   // only the `busy` owner gets here
        for _ in 1..<size {
            let thread = Thread { [self] in helperLoop() }
            thread.stackSize = 8 << 20   // as the main thread: kernels keep tiles on the stack
            thread.name = "bam-mix worker"
            thread.start()
        }
    }

    private func helperLoop() {
        var seen = word.load(ordering: .acquiring) >> 32
        while true {
            var generation = word.load(ordering: .acquiring) >> 32
            if generation == seen {
                let start = DispatchTime.now().uptimeNanoseconds
                var polls = 0
                while generation == seen {
                    bam_cpu_relax()
                    polls += 1
                    if polls & 255 == 0, DispatchTime.now().uptimeNanoseconds - start > spinNanoseconds {
                        park(seen: seen)
                    }
                    generation = word.load(ordering: .acquiring) >> 32
                }
            }
            seen = generation
            work(generation: generation)
        }
    }

    /// Sleeps until a generation after `seen` is published (returns at once if it already is).
    private func park(seen: UInt64) {
        pthread_mutex_lock(lock)
        sleepers.add(1, ordering: .sequentiallyConsistent)
        while word.load(ordering: .sequentiallyConsistent) >> 32 == seen {
            pthread_cond_wait(wake, lock)
        }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(lock)
    }
}
