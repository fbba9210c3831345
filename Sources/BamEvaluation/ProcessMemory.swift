import Foundation

/// Resident memory of this process, from /proc/self/status (Linux; zero elsewhere).
public enum ProcessMemory {
    /// VmRSS: resident now, in bytes.
    public static func resident() -> Int { statusField("VmRSS:") }

    /// VmHWM: the peak resident size since the process started or the last `resetPeak`, in bytes.
    public static func peakResident() -> Int { statusField("VmHWM:") }

    /// Resets VmHWM to the current RSS by writing "5" to /proc/self/clear_refs (Linux 4.0+).
    /// Returns false where that is not allowed (then callers sample instead).
    public static func resetPeak() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? h.close() }
        do { try h.write(contentsOf: Data("5".utf8)) } catch { return false }
        // The reset worked only if the peak now equals the current size (within a few pages
        // allocated in between).
        return peakResident() <= resident() + 1 << 20
    }

    static func statusField(_ key: String) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix(key) {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
}

/// The peak resident memory while a piece of work runs. With `/proc/self/clear_refs` writable it
/// resets the kernel's high-water mark (VmHWM) at `start` and reads it at `stop` (exact); otherwise
/// it samples VmRSS every 20 ms on a background queue (may miss a short spike).
public final class PeakMemoryMonitor: @unchecked Sendable {
    public enum Method: String, Codable, Sendable {
        case highWaterMark = "vmhwm_reset"
        case sampled = "vmrss_sampled_20ms"
    }

    public private(set) var method: Method = .highWaterMark
    public private(set) var startResident = 0
    private var sampledPeak = 0
    private var timer: DispatchSourceTimer?
    private let lock = NSLock()

    public init() {}

    public func start() {
        startResident = ProcessMemory.resident()
        if ProcessMemory.resetPeak() {
            method = .highWaterMark
            return
        }
        method = .sampled
        sampledPeak = startResident
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "bam-mix.memory-sampler"))
        t.schedule(deadline: .now(), repeating: .milliseconds(20))
        t.setEventHandler { [weak self] in
            guard let self else { return }
            let r = ProcessMemory.resident()
            self.lock.lock()
            self.sampledPeak = max(self.sampledPeak, r)
            self.lock.unlock()
        }
        t.resume()
        timer = t
    }

    /// The peak resident bytes since `start`.
    public func stop() -> Int {
        switch method {
        case .highWaterMark:
            return max(ProcessMemory.peakResident(), ProcessMemory.resident())
        case .sampled:
            timer?.cancel()
            timer = nil
            let now = ProcessMemory.resident()
            lock.lock()
            defer { lock.unlock() }
            return max(sampledPeak, now)
        }
    }
}
