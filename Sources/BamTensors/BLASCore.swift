import CBLAS
import Foundation

/// OpenBLAS picks its kernels from the CPU's family/model number (DYNAMIC_ARCH builds). A release
/// that predates the CPU does not know the model and falls back to "Prescott", the SSE3 kernels:
/// Debian's OpenBLAS 0.3.21 on an Emerald Rapids Xeon (family 6, model 0xCF, AVX-512) runs sgemm
/// at ~25 GFLOP/s on two cores instead of ~250. When that happens, and the user has not chosen a
/// core with OPENBLAS_CORETYPE, this re-initialises OpenBLAS with the newest kernel set that the
/// CPU's feature flags support (SkylakeX for AVX-512, Haswell for AVX2 + FMA), through the
/// exported `gotoblas_dynamic_quit` / `gotoblas_dynamic_init` pair that reads OPENBLAS_CORETYPE —
/// the same switch as setting the variable before start-up. Looked up with dlsym, so builds
/// without DYNAMIC_ARCH are left alone. Runs once, before the first BLAS call (BLASThreads).
enum BLASCore {
    /// Kernel families OpenBLAS falls back to for unknown CPUs.
    static let fallbacks: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "sandybridge", "katmai",
                                         "coppermine", "northwood", "banias", "unknown"]

    static func selectNativeKernels() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["BAM_MIX_KEEP_BLAS_CORE"] == nil,
              let name = openblas_get_corename().map({ String(cString: $0).lowercased() }), fallbacks.contains(name),
              let flags = cpuFlags() else { return }
        let core: String
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"].allSatisfy(flags.contains) {
            core = "SkylakeX"
        } else if ["avx2", "fma"].allSatisfy(flags.contains) {
            core = "Haswell"
        } else {
            return
        }
        typealias Hook = @convention(c) () -> Void
        guard let handle = dlopen(nil, RTLD_NOW), let quit = dlsym(handle, "gotoblas_dynamic_quit"),
              let initialise = dlsym(handle, "gotoblas_dynamic_init") else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        unsafeBitCast(quit, to: Hook.self)()
        unsafeBitCast(initialise, to: Hook.self)()
    }

    /// Ends the helper threads OpenBLAS started in its library constructor, before main (one per
    /// core, or OPENBLAS_NUM_THREADS). bam-mix calls OpenBLAS on one thread (BLASThreads), and
    /// `openblas_set_num_threads(1)` only stops handing those threads work: each keeps spinning in
    /// sched_yield for about 0.1 s after its last job before it sleeps, and on two cores that spin
    /// took one of them from a forward pass begun soon after start-up (the first 512-token prefill
    /// of the 58M Llama: 0.216-0.267 s in five runs, 0.216-0.223 s with OPENBLAS_NUM_THREADS=1;
    /// BamBench prefill, EPYC Zen 3). Setting the variable from the program comes too late (the
    /// constructor has read it), so this calls `blas_thread_shutdown_`, the exported function
    /// OpenBLAS's own fork handler uses; OpenBLAS starts a pool again by itself if a later call
    /// asks for more threads. Looked up with dlsym: serial and OpenMP builds without it are left
    /// alone.
    static func stopIdleThreads() {
        typealias Shutdown = @convention(c) () -> Int32
        guard let handle = dlopen(nil, RTLD_NOW), let shutdown = dlsym(handle, "blas_thread_shutdown_") else { return }
        _ = unsafeBitCast(shutdown, to: Shutdown.self)()
    }

    /// The CPU feature flags (Linux /proc/cpuinfo), or nil elsewhere.
    static func cpuFlags() -> Set<String>? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return nil }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// The kernel family OpenBLAS is using.
    static var current: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }
}
