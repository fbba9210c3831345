import CShims
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Crash safety of outputs (docs/reliability.md). Every output is written under a temporary name
/// beside its final one, `.NAME.tmp-PID` (files) or `.NAME.tmp-PID-RANDOM` (directories), and
/// renamed into place when complete; a directory being replaced is swapped with the new one in a
/// single rename (or, where the filesystem cannot swap, moved aside to `.NAME.old-PID` first).
/// A run killed with SIGKILL cannot clean up, so the next writer of the same output removes what
/// such a run left: only names whose PID no longer runs, which is proof that nothing is still
/// writing them. A SIGINT removes the temporaries in flight (see `installInterruptHandler`).
public enum TemporaryOutputs {
    /// The temporary name this process uses for `name` (`suffix` tells apart several at once).
    public static func temporaryName(for name: String, suffix: String? = nil) -> String {
        ".\(name).tmp-\(getpid())" + (suffix.map { "-\($0)" } ?? "")
    }

    static func asideName(for name: String) -> String { ".\(name).old-\(getpid())" }

    /// Whether a process with this id exists (kill with signal 0 probes without sending anything).
    public static func isRunning(_ pid: Int32) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
    }

    /// The PID in a temporary or set-aside name of `name`, nil when `entry` is not one.
    static func deadRunPID(_ entry: String, name: String) -> (pid: Int32, aside: Bool)? {
        for (marker, aside) in [(".\(name).tmp-", false), (".\(name).old-", true)] where entry.hasPrefix(marker) {
            let digits = entry.dropFirst(marker.count).prefix { $0.isASCII && $0.isNumber }
            let rest = entry.dropFirst(marker.count + digits.count)
            guard !digits.isEmpty, rest.isEmpty || rest.hasPrefix("-"), let pid = Int32(digits) else { return nil }
            return (pid, aside)
        }
        return nil
    }

    /// Removes the temporaries of `finalURL` that runs no longer running left beside it, and puts
    /// back a set-aside previous output when a run died between moving it aside and moving the new
    /// one in (so the previous complete output is never lost). Returns the names it removed or
    /// restored.
    @discardableResult
    public static func cleanUpDeadRuns(for finalURL: URL) -> [String] {
        let fm = FileManager.default
        let dir = finalURL.deletingLastPathComponent()
        let name = finalURL.lastPathComponent
        guard let entries = try? fm.contentsOfDirectory(atPath: dir.path) else { return [] }
        var handled: [String] = []
        for entry in entries.sorted() {
            guard let (pid, aside) = deadRunPID(entry, name: name), pid != getpid(), !isRunning(pid) else { continue }
            let url = dir.appendingPathComponent(entry)
            if aside, !fm.fileExists(atPath: finalURL.path) {
                if rename(url.path, finalURL.path) == 0 { handled.append(entry) }
            } else if (try? fm.removeItem(at: url)) != nil {
                handled.append(entry)
            }
        }
        return handled
    }

    /// Moves the complete directory `newDirectory` onto `target`, replacing what is there: one
    /// atomic exchange where the kernel supports it, after which the old contents (now under the
    /// temporary name) are removed; otherwise the old directory is moved aside first.
    public static func replaceDirectory(_ target: URL, with newDirectory: URL) throws {
        let fm = FileManager.default
        guard fm.fileExists(atPath: target.path) else {
            guard rename(newDirectory.path, target.path) == 0 else {
                throw BamError.io("cannot move \(newDirectory.lastPathComponent) into place: \(String(cString: strerror(errno)))", file: target.path)
            }
            return
        }
        if bam_exchange_paths(newDirectory.path, target.path) == 0 {
            try? fm.removeItem(at: newDirectory)
            return
        }
        let aside = target.deletingLastPathComponent().appendingPathComponent(asideName(for: target.lastPathComponent))
        try fm.moveItem(at: target, to: aside)
        try fm.moveItem(at: newDirectory, to: target)
        try? fm.removeItem(at: aside)
    }

    // MARK: in flight (for SIGINT)

    private static let lock = NSLock()
    nonisolated(unsafe) private static var inFlight: Set<String> = []

    /// Records a temporary this process is writing, so an interrupt can remove it.
    public static func register(_ url: URL) {
        lock.lock(); defer { lock.unlock() }
        inFlight.insert(url.path)
    }

    public static func unregister(_ url: URL) {
        lock.lock(); defer { lock.unlock() }
        inFlight.remove(url.path)
    }

    /// Removes every temporary in flight for an exit that follows at once; returns how many there
    /// were. The other threads keep running meanwhile, so this holds the registry's lock to the end
    /// (no temporary is registered or unregistered any more) and guards against the two ways a
    /// writer could leave something behind: a directory being filled while it is deleted (a
    /// recursive delete fails when a file appears in it), and a temporary registered but created
    /// just after the first pass. Each temporary is first renamed out of the way (writes by path into
    /// it fail from then on), then deleted; a second pass 20 ms later catches late creations.
    /// killtest's SIGINT check found both (`convert`, about 1 run in 10 on a loaded machine).
    @discardableResult
    static func removeInFlightBeforeExit() -> Int {
        lock.lock()   // never released: the caller exits
        let paths = inFlight
        let fm = FileManager.default
        var serial = 0
        func discard(_ path: String) {
            guard fm.fileExists(atPath: path) else { return }
            // The same temporary name with a suffix: a dead run's leftover the next writer removes,
            // should even this delete fail.
            serial += 1
            let trash = path + "-interrupted\(serial)"
            let target = rename(path, trash) == 0 ? trash : path
            for _ in 0..<3 where fm.fileExists(atPath: target) { try? fm.removeItem(atPath: target) }
        }
        for p in paths { discard(p) }
        usleep(20_000)
        for p in paths { discard(p) }
        return paths.count
    }

    /// On SIGINT or SIGTERM: removes the temporaries in flight, says so on stderr, and exits with
    /// 128 + the signal number. Outputs already renamed into place are complete and stay. The
    /// signal handler (CShims) only writes the signal number to a pipe; a thread reading it does
    /// the removal, where that is safe (not inside a signal handler).
    public static func installInterruptHandler(program: String) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        let readEnd = fds[0]
        let waiter = Thread {
            var sig: Int32 = 0
            while read(readEnd, &sig, MemoryLayout<Int32>.size) != MemoryLayout<Int32>.size {
                if errno != EINTR { return }
            }
            let n = removeInFlightBeforeExit()
            let name = sig == SIGINT ? "SIGINT" : "SIGTERM"
            let message = "\(program): interrupted (\(name)); stopped, removed \(n) unfinished temporary output(s); outputs completed before it are kept\n"
            FileHandle.standardError.write(Data(message.utf8))
            _exit(128 + sig)
        }
        waiter.start()
        _ = bam_install_signal_pipe(fds[1])
    }
}
