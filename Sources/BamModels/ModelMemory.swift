import BamFormats
import Foundation

/// Refuses, before anything is allocated, a model whose weights (and whatever a job keeps per
/// parameter) would not fit in this machine's memory, with the number it would need. Configs are
/// already capped when parsed (ModelConfig+Limits.swift); this is the second rule of
/// docs/reliability.md: sizes within the caps can still be more than the machine has.
public enum ModelMemory {
    /// Bytes to hold every parameter at `bytesPerParameter` (4 for float32 inference; training
    /// keeps weights, gradients and two AdamW moments, 16).
    public static func requiredBytes(config: ModelConfig, bytesPerParameter: Int) -> Int {
        let params = ModelStatistics(config: config, context: 1).totalParameters
        let (bytes, overflow) = params.multipliedReportingOverflow(by: bytesPerParameter)
        return overflow ? .max : bytes
    }

    /// Physical memory, or the cgroup (v2 or v1) limit when the process runs under a smaller one.
    public static var availableBytes: Int {
        var limit = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let s = try? String(contentsOfFile: path, encoding: .utf8),
               let v = Int(s.trimmingCharacters(in: .whitespacesAndNewlines)), v > 0 {
                limit = min(limit, v)
            }
        }
        return limit
    }

    /// Throws when `requiredBytes + extraBytes` exceeds the memory available. `purpose` names the
    /// job in the message ("forward", "training", ...).
    public static func requireFits(config: ModelConfig, bytesPerParameter: Int, extraBytes: Int = 0,
                                   purpose: String) throws {
        let weights = requiredBytes(config: config, bytesPerParameter: bytesPerParameter)
        try require(weights, extraBytes: extraBytes, purpose: purpose,
                    what: "its \(ModelStatistics(config: config, context: 1).totalParameters) parameters at \(bytesPerParameter) bytes each")
    }

    /// Bytes an inference model's weights keep resident when loaded as `loading` says: each matrix
    /// at the size of the type it is kept in (its stored type, mapped, or the converted copy), the
    /// other parameters (norms, biases, routers) as float32. Computed from the table and the
    /// file's types, before anything is read; `InferenceWeights.residentBytes` is the same sum
    /// over the loaded weights.
    public static func inferenceBytes(config: ModelConfig, store: any TensorStore, loading: WeightLoading) -> Int {
        let store = (try? InferenceWeights.presented(config: config, store: store)) ?? store
        var total = 0
        for spec in config.parameterSpecs {
            let count = spec.shape.reduce(1, *)
            let bytes: Int
            if spec.isModelMatrix {
                let stored = store.info(spec.name)?.dtype ?? .f32
                let type = loading.residentType(stored: stored)
                bytes = type.byteCount(elements: count) ?? count * 4
            } else {
                bytes = count * 4
            }
            let (sum, overflow) = total.addingReportingOverflow(bytes)
            total = overflow ? .max : sum
        }
        return total
    }

    /// Throws when the checkpoint's weights, kept as `loading` says, do not fit in memory.
    public static func requireFits(inference checkpoint: Checkpoint, loading: WeightLoading, extraBytes: Int = 0) throws {
        let bytes = inferenceBytes(config: checkpoint.config, store: checkpoint.store, loading: loading)
        try require(bytes, extraBytes: extraBytes, purpose: "running",
                    what: "its \(ModelStatistics(config: checkpoint.config, context: 1).totalParameters) parameters with weights \(loading)")
    }

    /// Throws when `weights + extraBytes` bytes (`Int.max`: more than can be counted) exceed the
    /// memory available, naming `purpose`, `what` the bytes are for, and what to do (`hint`).
    static func require(_ weights: Int, extraBytes: Int, purpose: String, what: String,
                        hint: String = "use a smaller model (or --weights q8_0) or a machine with more memory") throws {
        let (need, overflow) = weights.addingReportingOverflow(max(0, extraBytes))
        let have = availableBytes
        guard overflow || need > have else { return }
        func gib(_ b: Int) -> String { String(format: "%.1f GiB", Double(b) / Double(1 << 30)) }
        let needText = overflow || need == .max ? "more than 2^63 bytes" : "\(gib(need)) (\(need) bytes)"
        throw BamError.unsupported("\(purpose) of this model needs \(needText) for \(what), but this machine has \(gib(have)) — refused before allocating; \(hint)")
    }
}
